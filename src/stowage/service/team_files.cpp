// SPDX-License-Identifier: Apache-2.0
#include "stowage/service/team_files.hpp"

#include <algorithm>
#include <cctype>

#include "stowage/media/probe.hpp"
#include "stowage/service/service.hpp"

namespace stowage::service {
namespace {

/// Longest team-file path: the key adds "teams/<id>/files/" (at most 37 bytes) and every
/// provider takes keys up to 1024 bytes.
constexpr std::size_t kMaxPathBytes = 900;

Error bad_path(std::string_view path, std::string_view why) {
  // The path is shown only when it is printable, so that an error never carries raw bytes.
  const bool printable = std::all_of(path.begin(), path.end(), [](char c) {
    return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f;
  });
  return make_error(ErrorCode::InvalidArgument,
                    "invalid team-files path" +
                        (printable && path.size() <= kMaxPathBytes ? " '" + std::string(path) + "'"
                                                                   : std::string()) +
                        ": " + std::string(why) +
                        "; write it as /folder/name.ext with '/' between plain names");
}

/// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string extension_of(std::string_view name) {
  const std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == name.size()) return {};
  return std::string(name.substr(dot + 1));
}

std::string last_segment(std::string_view path) {
  std::string_view p = path;
  if (!p.empty() && p.back() == '/') p.remove_suffix(1);
  const std::size_t slash = p.rfind('/');
  return std::string(slash == std::string_view::npos ? p : p.substr(slash + 1));
}

}  // namespace

std::string team_file_mime(std::string_view name) {
  static constexpr std::pair<std::string_view, std::string_view> kArtifacts[] = {
      {"json", "application/json"},  {"yaml", "application/x-yaml"},
      {"yml", "application/x-yaml"}, {"txt", "text/plain"},
      {"csv", "text/csv"},           {"md", "text/markdown"},
      {"env", "text/plain"},         {"xml", "application/xml"},
      {"html", "text/html"},         {"zip", "application/zip"},
      {"tar", "application/x-tar"},  {"gz", "application/gzip"},
      {"tgz", "application/gzip"},   {"pdf", "application/pdf"},
      {"py", "text/x-python"},       {"onnx", "application/octet-stream"},
  };
  const std::string ext = lower(extension_of(name));
  for (const auto& [e, mime] : kArtifacts) {
    if (e == ext) return std::string(mime);
  }
  return media::mime_from_name(name);
}

// --- Paths -----------------------------------------------------------------------------------

Result<TeamPath> TeamFiles::parse_path(std::string_view path, bool folder_ok) {
  if (path.empty()) return bad_path(path, "it is empty");
  if (path.size() > kMaxPathBytes) {
    return bad_path(path, "it is longer than " + std::to_string(kMaxPathBytes) + " bytes");
  }
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return bad_path(path, "it contains a NUL or control character");
    if (c == '\\') return bad_path(path, "it contains a backslash");
  }
  if (!valid_utf8(path)) return bad_path(path, "it is not valid UTF-8");
  TeamPath out;
  out.relative = std::string(path.front() == '/' ? path.substr(1) : path);
  out.is_folder = out.relative.empty() || out.relative.back() == '/';
  if (out.is_folder && !folder_ok) {
    return bad_path(path, "it names a folder (ends with '/') where a file is expected");
  }
  // Every segment is a plain name: no "", "." or "..", so nothing climbs out of the team's root.
  std::string_view rest = out.relative;
  if (out.is_folder && !rest.empty()) rest.remove_suffix(1);
  if (!rest.empty()) {
    std::size_t start = 0;
    for (;;) {
      const std::size_t end = std::min(rest.find('/', start), rest.size());
      const std::string_view segment = rest.substr(start, end - start);
      if (segment.empty()) return bad_path(path, "it contains an empty segment ('//')");
      if (segment == "." || segment == "..") {
        return bad_path(path, "it contains a '.' or '..' segment");
      }
      if (end == rest.size()) break;
      start = end + 1;
    }
  }
  out.path = "/" + out.relative;
  return out;
}

std::string TeamFiles::root_key(catalog::Id team_id) {
  return "teams/" + std::to_string(team_id) + "/files/";
}

store::ObjectPath TeamFiles::object_of(catalog::Id team_id, const TeamPath& path) const {
  return {service_.options().private_bucket, root_key(team_id) + path.relative};
}

Status TeamFiles::check(const catalog::Principal& who, catalog::Id team_id) {
  STOWAGE_ASSIGN_OR_RETURN(auto team, service_.team(who, team_id));
  (void)team;
  return {};
}

TeamFile TeamFiles::file_of(catalog::Id team_id, const store::ObjectInfo& info) const {
  TeamFile f;
  f.team_id = team_id;
  const std::string root = root_key(team_id);
  f.path = "/" + info.path.key.substr(std::min(root.size(), info.path.key.size()));
  f.name = last_segment(f.path);
  f.size = info.size;
  f.mime = team_file_mime(f.name);
  f.ext = extension_of(f.name);
  f.modified = info.last_modified;
  f.object = info.path;
  f.etag = info.etag;
  return f;
}

// --- Uploads ---------------------------------------------------------------------------------

TeamFileUpload::TeamFileUpload(catalog::Id team_id, TeamPath path, store::ObjectPath object,
                               std::unique_ptr<store::Writer> writer)
    : team_id_(team_id),
      path_(std::move(path)),
      object_(std::move(object)),
      writer_(std::move(writer)) {}

TeamFileUpload::~TeamFileUpload() {
  if (!committed_ && writer_) (void)writer_->abort();
}

Status TeamFileUpload::write(std::span<const std::byte> bytes) {
  STOWAGE_TRY(writer_->write(bytes));
  size_ += bytes.size();
  return {};
}

Result<TeamFile> TeamFileUpload::commit() {
  STOWAGE_ASSIGN_OR_RETURN(auto info, writer_->commit());
  committed_ = true;
  TeamFile f;
  f.team_id = team_id_;
  f.path = path_.path;
  f.name = last_segment(f.path);
  f.size = info.size;
  f.mime = team_file_mime(f.name);
  f.ext = extension_of(f.name);
  f.modified = info.last_modified.time_since_epoch().count() != 0
                   ? info.last_modified
                   : std::chrono::system_clock::now();
  f.object = object_;
  f.etag = info.etag;
  return f;
}

Result<std::unique_ptr<TeamFileUpload>> TeamFiles::begin_upload(
    const catalog::Principal& who, catalog::Id team_id, std::string_view path,
    std::optional<std::uint64_t> size_hint) {
  STOWAGE_ASSIGN_OR_RETURN(auto checked, parse_path(path, false));
  STOWAGE_TRY(check(who, team_id));
  store::ObjectStore& store = service_.store();
  const auto object = object_of(team_id, checked);
  // A file and a folder never share a name (local disk could not hold both, and the SDK could
  // not tell them apart): a folder at the path, or a file at a parent, is a clash.
  store::ListOptions one;
  one.max_keys = 1;
  STOWAGE_ASSIGN_OR_RETURN(auto below,
                           store.list({object.bucket, object.key + "/"}, one));
  if (!below.objects.empty()) {
    return make_error(ErrorCode::AlreadyExists,
                      "team files: '" + checked.path + "' is a folder; upload to a path inside it");
  }
  for (std::size_t slash = checked.relative.find('/'); slash != std::string::npos;
       slash = checked.relative.find('/', slash + 1)) {
    const std::string parent = checked.relative.substr(0, slash);
    auto info = store.stat({object.bucket, root_key(team_id) + parent});
    if (info) {
      return make_error(ErrorCode::AlreadyExists, "team files: '/" + parent +
                                                      "' is a file, so it cannot hold '" +
                                                      checked.path + "'");
    }
    if (info.error().code != ErrorCode::NotFound) return info.error();
  }
  store::WriteOptions options;
  options.size_hint = size_hint;
  STOWAGE_ASSIGN_OR_RETURN(auto writer, store.open_write(object, options));
  return std::make_unique<TeamFileUpload>(team_id, std::move(checked), object, std::move(writer));
}

// --- Listing, info, removal --------------------------------------------------------------------

Result<TeamFilePage> TeamFiles::list(const catalog::Principal& who, catalog::Id team_id,
                                     std::string_view path, bool recursive,
                                     const std::string& page_token, std::size_t max_entries) {
  STOWAGE_ASSIGN_OR_RETURN(auto checked, parse_path(path, true));
  STOWAGE_TRY(check(who, team_id));
  store::ObjectStore& store = service_.store();
  TeamFilePage page;
  const auto object = object_of(team_id, checked);
  std::string prefix = object.key;
  if (!checked.is_folder) {
    // A file path: that file first (on the first page), then a folder of the same name if any.
    if (page_token.empty()) {
      auto info = store.stat(object);
      if (info) {
        page.entries.push_back(file_of(team_id, *info));
      } else if (info.error().code != ErrorCode::NotFound) {
        return info.error();
      }
    }
    prefix += "/";
  }
  store::ListOptions options;
  options.max_keys = std::max<std::size_t>(1, max_entries);
  options.page_token = page_token;
  if (!recursive) options.delimiter = "/";
  auto listed = store.list({object.bucket, prefix}, options);
  if (!listed) {
    if (listed.error().code == ErrorCode::NotFound) return page;
    return listed.error();
  }
  for (const auto& p : listed->prefixes) {
    TeamFile folder;
    folder.team_id = team_id;
    const std::string root = root_key(team_id);
    folder.path = "/" + p.substr(std::min(root.size(), p.size()));
    folder.name = last_segment(folder.path);
    folder.is_folder = true;
    folder.object = {object.bucket, p};
    page.entries.push_back(std::move(folder));
  }
  for (const auto& o : listed->objects) page.entries.push_back(file_of(team_id, o));
  page.next_token = std::move(listed->next_page_token);
  return page;
}

Result<TeamFile> TeamFiles::info(const catalog::Principal& who, catalog::Id team_id,
                                 std::string_view path) {
  STOWAGE_ASSIGN_OR_RETURN(auto checked, parse_path(path, false));
  STOWAGE_TRY(check(who, team_id));
  auto info = service_.store().stat(object_of(team_id, checked));
  if (!info) {
    if (info.error().code == ErrorCode::NotFound) {
      return make_error(ErrorCode::NotFound, "team files: no file at '" + checked.path + "'");
    }
    return info.error();
  }
  return file_of(team_id, *info);
}

Result<std::uint64_t> TeamFiles::remove(const catalog::Principal& who, catalog::Id team_id,
                                        std::string_view path) {
  STOWAGE_ASSIGN_OR_RETURN(auto checked, parse_path(path, true));
  STOWAGE_TRY(check(who, team_id));
  store::ObjectStore& store = service_.store();
  const auto object = object_of(team_id, checked);
  std::uint64_t removed = 0;
  if (!checked.is_folder) {
    auto info = store.stat(object);
    if (info) {
      STOWAGE_TRY(store.remove(object));
      ++removed;
    } else if (info.error().code != ErrorCode::NotFound) {
      return info.error();
    }
  }
  // Everything under the folder: list the first page again after each round of removals, so
  // that no page token outlives the keys it pointed past.
  const std::string prefix = checked.is_folder ? object.key : object.key + "/";
  store::ListOptions options;
  options.max_keys = 1000;
  for (;;) {
    auto listed = store.list({object.bucket, prefix}, options);
    if (!listed) {
      if (listed.error().code == ErrorCode::NotFound) break;
      return listed.error();
    }
    if (listed->objects.empty()) break;
    for (const auto& o : listed->objects) {
      STOWAGE_TRY(store.remove(o.path));
      ++removed;
    }
  }
  if (removed == 0) {
    return make_error(ErrorCode::NotFound, "team files: nothing at '" + checked.path + "'");
  }
  return removed;
}

}  // namespace stowage::service
