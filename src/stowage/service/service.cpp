// SPDX-License-Identifier: Apache-2.0
#include "stowage/service/service.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <functional>
#include <set>
#include <thread>

#include "stowage/media/probe.hpp"
#include "stowage/media/video.hpp"
#include "stowage/service/video_meta.hpp"

namespace stowage::service {
namespace {

/// The token cache is dropped whole when it reaches this many entries: a bound, not an LRU,
/// since a server sees few distinct tokens.
constexpr std::size_t kMaxCachedTokens = 10'000;
/// An upload's spool file is handed to the disk in steps of this many bytes while it streams.
constexpr std::uint64_t kWritebackBytes = 8 << 20;
/// A link's first bytes read for its image header; enough for JPEG (even with a large EXIF
/// block), PNG, WebP, GIF and most TIFFs.
constexpr std::uint64_t kLinkHeaderBytes = 1 << 20;
/// Read at most this much of a link when its header is not in the first bytes.
constexpr std::uint64_t kLinkWholeBytes = 64 << 20;
/// How long an upload waits for a garbage collection of the same bytes to finish, and how often
/// it looks (service/gc.hpp): gc deletes one object per collection, so this is seconds at most.
constexpr std::chrono::seconds kCollectionWait{60};
constexpr std::chrono::milliseconds kCollectionPoll{50};
/// Likewise for remembered item locations (a few hundred bytes each).
constexpr std::size_t kMaxCachedItems = 100'000;

Error forbidden(std::string_view what, Id id) {
  return make_error(ErrorCode::PermissionDenied, std::string(what) + " " + std::to_string(id) +
                                                     " belongs to a team you are not in");
}

}  // namespace

// --- Upload
// ---------------------------------------------------------------------------------------

Upload::Upload(Service& service, MediaKind kind, Id uploader, io::File file,
               std::filesystem::path path)
    : service_(service),
      kind_(kind),
      uploader_(uploader),
      file_(std::move(file)),
      path_(std::move(path)) {}

Upload::~Upload() {
  if (!finished_) {
    (void)file_.close();
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
}

Status Upload::write(std::span<const std::byte> bytes) {
  hash_.update(bytes);
  STOWAGE_TRY(file_.write_all(bytes));
  size_ += bytes.size();
  // Start writing the spool file to disk as it grows, so that the fsync at the end (and with it
  // the upload's answer) does not wait for a whole file's worth of dirty pages.
  if (size_ - written_back_ >= kWritebackBytes) {
    file_.start_writeback(written_back_, size_ - written_back_);
    written_back_ = size_;
  }
  return {};
}

Result<catalog::Blob> Upload::finish() {
  const auto digest = hash_.finish();
  STOWAGE_TRY(file_.sync());
  STOWAGE_TRY(file_.close());
  auto blob = service_.publish(*this, digest);
  if (blob) finished_ = true;  // the spool file was consumed or removed
  // Whoever sent the bytes may name them by their hash from now on (see usable_blobs()).
  if (blob && uploader_ != 0) {
    STOWAGE_TRY(service_.catalog_.grant_blob(blob->sha256_hex, uploader_));
  }
  return blob;
}

// --- Service
// --------------------------------------------------------------------------------------

Service::Service(catalog::Catalog& catalog, store::ObjectStore& store, ServiceOptions options)
    : catalog_(catalog), store_(store), options_(std::move(options)) {}

namespace {
/// The token cache's key: the token's hash, so that the cache holds no secret.
std::string token_key(const std::string& token) {
  return io::to_hex(io::Sha256::of(std::as_bytes(std::span(token))));
}
}  // namespace

std::optional<Principal> Service::cached_principal(const std::string& token) {
  if (token.empty()) return std::nullopt;
  const std::string key = token_key(token);
  std::lock_guard lock(token_mutex_);
  if (auto it = token_cache_.find(key);
      it != token_cache_.end() && it->second.expires > std::chrono::steady_clock::now()) {
    return it->second.principal;
  }
  return std::nullopt;
}

Result<Principal> Service::authenticate(const std::string& token) {
  if (token.empty()) {
    return make_error(ErrorCode::Unauthenticated, "missing x-api-key header");
  }
  if (auto cached = cached_principal(token)) return *cached;
  const std::string key = token_key(token);
  const auto now = std::chrono::steady_clock::now();
  STOWAGE_ASSIGN_OR_RETURN(auto principal, catalog_.authenticate(token));
  std::lock_guard lock(token_mutex_);
  if (token_cache_.size() >= kMaxCachedTokens) token_cache_.clear();
  token_cache_[key] = {principal, now + options_.token_cache_ttl};
  return principal;
}

Status Service::revoke_token(Id token_id) {
  STOWAGE_TRY(catalog_.revoke_token(token_id));
  std::lock_guard lock(token_mutex_);
  std::erase_if(token_cache_,
                [token_id](const auto& entry) { return entry.second.principal.token_id == token_id; });
  return {};
}

Status Service::check_team(const Principal& who, Id team_id) {
  if (std::find(who.team_ids.begin(), who.team_ids.end(), team_id) == who.team_ids.end()) {
    return forbidden("team", team_id);
  }
  return {};
}

Result<catalog::Team> Service::team(const Principal& who, Id id) {
  STOWAGE_ASSIGN_OR_RETURN(auto team, catalog_.get_team(id));
  STOWAGE_TRY(check_team(who, team.id));
  return team;
}

Result<std::vector<catalog::Team>> Service::teams(const Principal& who) {
  STOWAGE_ASSIGN_OR_RETURN(auto memberships, catalog_.memberships(who.user.id));
  std::vector<catalog::Team> out;
  out.reserve(memberships.size());
  for (auto& m : memberships) out.push_back(std::move(m.team));
  return out;
}

Result<catalog::Workspace> Service::workspace(const Principal& who, Id id) {
  STOWAGE_ASSIGN_OR_RETURN(auto ws, catalog_.get_workspace(id));
  if (!check_team(who, ws.team_id)) return forbidden("workspace", id);
  return ws;
}

Result<catalog::Project> Service::project(const Principal& who, Id id) {
  STOWAGE_ASSIGN_OR_RETURN(auto project, catalog_.get_project(id));
  if (!check_team(who, project.team_id)) return forbidden("project", id);
  return project;
}

Result<catalog::Dataset> Service::dataset(const Principal& who, Id id) {
  STOWAGE_ASSIGN_OR_RETURN(auto dataset, catalog_.get_dataset(id));
  if (!check_team(who, dataset.team_id)) return forbidden("dataset", id);
  return dataset;
}

Result<catalog::Item> Service::item(const Principal& who, Id id) {
  STOWAGE_ASSIGN_OR_RETURN(auto item, catalog_.get_item(id));
  if (!check_team(who, item.team_id)) return forbidden("item", id);
  return item;
}

Result<catalog::Workspace> Service::add_workspace(const Principal& who, Id team_id,
                                                  const std::string& name,
                                                  const std::string& description) {
  STOWAGE_TRY(check_team(who, team_id));
  if (name.empty()) return make_error(ErrorCode::InvalidArgument, "workspace name is empty");
  return catalog_.create_workspace(team_id, name, description);
}

Result<catalog::Project> Service::add_project(const Principal& who, catalog::Project project) {
  STOWAGE_ASSIGN_OR_RETURN(auto ws, workspace(who, project.workspace_id));
  if (project.name.empty()) return make_error(ErrorCode::InvalidArgument, "project name is empty");
  if (project.type != "images" && project.type != "videos") {
    return make_error(ErrorCode::InvalidArgument,
                      "project type '" + project.type + "' is not supported (images, videos)");
  }
  project.team_id = ws.team_id;
  project.created_by = who.user.id;
  return catalog_.create_project(project);
}

Result<catalog::Dataset> Service::add_dataset(const Principal& who, catalog::Dataset dataset) {
  STOWAGE_ASSIGN_OR_RETURN(auto project, this->project(who, dataset.project_id));
  if (dataset.name.empty()) return make_error(ErrorCode::InvalidArgument, "dataset name is empty");
  if (dataset.parent_id) {
    STOWAGE_ASSIGN_OR_RETURN(auto parent, this->dataset(who, *dataset.parent_id));
    if (parent.project_id != project.id) {
      return make_error(ErrorCode::InvalidArgument,
                        "parent dataset " + std::to_string(parent.id) + " is in another project");
    }
  }
  dataset.team_id = project.team_id;
  dataset.workspace_id = project.workspace_id;
  dataset.created_by = who.user.id;
  return catalog_.create_dataset(dataset);
}

Result<std::string> Service::hash_base64_to_hex(std::string_view base64) {
  const std::string raw = io::from_base64(base64);
  if (raw.size() != 32) {
    return make_error(ErrorCode::InvalidArgument,
                      "'" + std::string(base64.substr(0, 64)) + "' is not a base64 SHA-256 hash");
  }
  return io::to_hex(std::span(reinterpret_cast<const unsigned char*>(raw.data()), raw.size()));
}

std::string Service::hash_hex_to_base64(std::string_view hex) {
  std::vector<unsigned char> raw;
  raw.reserve(hex.size() / 2);
  auto nibble = [](char c) -> unsigned char {
    return static_cast<unsigned char>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  };
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    raw.push_back(static_cast<unsigned char>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
  }
  return io::to_base64(raw);
}

namespace {

/// The file extension of a video container's mime type (probe_video() names them).
std::string_view video_extension(std::string_view mime) {
  static constexpr std::pair<std::string_view, std::string_view> kExtensions[] = {
      {"video/mp4", "mp4"},        {"video/quicktime", "mov"}, {"video/3gpp", "3gp"},
      {"video/3gpp2", "3g2"},      {"video/webm", "webm"},     {"video/x-matroska", "mkv"},
      {"video/x-msvideo", "avi"},  {"video/x-flv", "flv"},     {"video/x-ms-asf", "wmv"}};
  for (const auto& [m, ext] : kExtensions) {
    if (m == mime) return ext;
  }
  return {};
}

}  // namespace

std::string Service::blob_key(std::string_view sha256_hex, std::string_view mime) {
  const bool video = mime.starts_with("video/");
  std::string key = video ? "videos/original/" : "images/original/";
  key.append(sha256_hex.substr(0, 2)).append("/").append(sha256_hex.substr(2, 2)).append("/");
  key.append(sha256_hex);
  const std::string ext =
      video ? std::string(video_extension(mime)) : media::extension_for_mime(mime);
  if (!ext.empty()) key.append(".").append(ext);
  return key;
}

Result<std::vector<std::string>> Service::existing_hashes(
    const Principal& who, const std::vector<std::string>& base64_hashes) {
  std::vector<std::string> hex;
  hex.reserve(base64_hashes.size());
  for (const auto& b64 : base64_hashes) {
    auto h = hash_base64_to_hex(b64);
    if (h) hex.push_back(std::move(*h));  // a malformed hash simply does not exist
  }
  // Only hashes the caller may name: another team's bytes are not even said to exist.
  STOWAGE_ASSIGN_OR_RETURN(auto found, catalog_.usable_blobs(hex, who.user.id, who.team_ids));
  std::vector<std::string> out;
  out.reserve(found.size());
  for (const auto& h : found) out.push_back(hash_hex_to_base64(h));
  return out;
}

Result<std::unique_ptr<Upload>> Service::begin_upload(MediaKind kind, Id uploader) {
  STOWAGE_TRY(io::create_directories_durable(options_.staging_dir));
  const auto path = io::unique_temp_path(options_.staging_dir, "upload");
  STOWAGE_ASSIGN_OR_RETURN(auto file, io::File::create_exclusive(path, 0600));
  return std::unique_ptr<Upload>(new Upload(*this, kind, uploader, std::move(file), path));
}

namespace {

/// The container metadata of a video file, or why it is not one.
Result<media::VideoMeta> probe_video_file(const std::filesystem::path& path) {
  STOWAGE_ASSIGN_OR_RETURN(auto file, io::File::open_read(path));
  STOWAGE_ASSIGN_OR_RETURN(const std::uint64_t size, file.size());
  io::FileRandomReader reader(std::move(file), size);
  return media::probe_video(reader);
}

}  // namespace

Status Service::check_hash_usable(const Principal& who, std::string_view base64_hash,
                                  std::string_view upload_method) {
  auto hex = hash_base64_to_hex(base64_hash);
  if (hex) {
    STOWAGE_ASSIGN_OR_RETURN(auto usable,
                             catalog_.usable_blobs({*hex}, who.user.id, who.team_ids));
    if (!usable.empty()) return {};
  }
  // The same answer as for bytes never uploaded: a hash of another team's bytes reveals nothing.
  return make_error(ErrorCode::NotFound, "no uploaded file has hash " + std::string(base64_hash) +
                                             ": upload it with " + std::string(upload_method) +
                                             " first");
}

Result<std::vector<std::string>> Service::video_metas(
    const Principal& who, const std::vector<std::string>& base64_hashes) {
  for (const std::string& b64 : base64_hashes) {
    STOWAGE_TRY(check_hash_usable(who, b64, "videos.bulk.upload"));
  }
  return probe_video_metas(base64_hashes);
}

Result<std::vector<std::string>> Service::probe_video_metas(
    const std::vector<std::string>& base64_hashes) {
  std::vector<std::string> out;
  out.reserve(base64_hashes.size());
  for (const std::string& b64 : base64_hashes) {
    STOWAGE_ASSIGN_OR_RETURN(auto hex, hash_base64_to_hex(b64));
    auto blob = catalog_.get_blob(hex);
    if (!blob) {
      if (blob.error().code != ErrorCode::NotFound) return blob.error();
      return make_error(ErrorCode::NotFound, "no uploaded file has hash " + b64 +
                                                 ": upload it with videos.bulk.upload first");
    }
    if (!has_streams(blob->file_meta)) {
      // Bytes uploaded before they were known as a video: probe them where they are, once.
      STOWAGE_ASSIGN_OR_RETURN(auto info, store_.stat({blob->bucket, blob->key}));
      STOWAGE_ASSIGN_OR_RETURN(auto reader, store_.open_random(info));
      auto meta = media::probe_video(*reader);
      if (!meta) {
        Error e = meta.error();
        e.message = "file " + b64 + ": " + e.message;
        return e;
      }
      blob->file_meta = container_meta_json(*meta);
      STOWAGE_TRY(catalog_.set_blob_file_meta(hex, blob->file_meta));
    }
    out.push_back(std::move(blob->file_meta));
  }
  return out;
}

Result<catalog::Blob> Service::publish(Upload& upload, const io::Sha256::Digest& digest) {
  const std::string hex = io::to_hex(digest);
  if (auto existing = catalog_.get_blob(hex); existing) {
    std::error_code ec;
    std::filesystem::remove(upload.path_, ec);  // identical bytes are stored once
    return *existing;
  } else if (existing.error().code != ErrorCode::NotFound) {
    return existing.error();
  }
  catalog::Blob blob;
  blob.sha256_hex = hex;
  blob.size = upload.size_;
  if (upload.kind_ == MediaKind::Video) {
    STOWAGE_ASSIGN_OR_RETURN(auto meta, probe_video_file(upload.path_));
    blob.mime = meta.mime;
    blob.file_meta = container_meta_json(meta);
    for (const auto& stream : meta.streams) {
      if (stream.codec_type == "video" && stream.width && stream.height) {
        blob.width = *stream.width;
        blob.height = *stream.height;
        break;
      }
    }
  } else {
    STOWAGE_ASSIGN_OR_RETURN(auto header, media::probe_image(upload.path_));
    blob.mime = header.mime;
    blob.width = header.width;
    blob.height = header.height;
  }
  blob.bucket = options_.public_bucket;
  blob.key = blob_key(hex, blob.mime);
  const store::ObjectPath object{blob.bucket, blob.key};
  // Bytes first, row second: a crash in between leaves an unreferenced object, never a row
  // without bytes. gc may be deleting an older, unused object of these same bytes meanwhile
  // (catalog::begin_blob_collection): put_blob() refuses while it does, and once the row is
  // recorded the object is stat'ed, since gc's delete may have landed after our write. Either
  // way the bytes are published again, from a second name of the spool file kept until then.
  const std::filesystem::path keep = upload.path_.string() + ".keep";
  std::error_code ec;
  std::filesystem::create_hard_link(upload.path_, keep, ec);
  if (ec) {
    std::filesystem::copy_file(upload.path_, keep, ec);
    if (ec) {
      return make_error(ErrorCode::IoError,
                        "keeping a copy of an upload in " + keep.parent_path().string() + ": " +
                            ec.message());
    }
  }
  struct Cleanup {
    const std::filesystem::path& path;
    ~Cleanup() {
      std::error_code ignored;
      std::filesystem::remove(path, ignored);
    }
  } cleanup{keep};
  const auto deadline = std::chrono::steady_clock::now() + kCollectionWait;
  std::filesystem::path source = upload.path_;
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) {
      // The spool was consumed by the last publish: a fresh name of the kept bytes.
      source = upload.path_.string() + ".retry";
      std::filesystem::remove(source, ec);
      std::filesystem::create_hard_link(keep, source, ec);
      if (ec) std::filesystem::copy_file(keep, source, ec);
      if (ec) return make_error(ErrorCode::IoError, "republishing an upload: " + ec.message());
    }
    STOWAGE_TRY(store_.adopt_file(source, object, {.size_hint = blob.size}));
    auto recorded = catalog_.put_blob(blob);
    if (!recorded) {
      if (recorded.error().code != ErrorCode::Unavailable ||
          std::chrono::steady_clock::now() >= deadline) {
        return recorded.error();
      }
      std::this_thread::sleep_for(kCollectionPoll);  // gc is deleting these bytes: wait
      continue;
    }
    auto there = store_.stat(object);
    if (there && there->size == blob.size) return recorded;
    if (there || there.error().code != ErrorCode::NotFound) {
      if (!there) return there.error();
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return make_error(ErrorCode::Unavailable,
                        "the bytes of blob " + hex + " kept disappearing after publishing "
                        "(a garbage collection racing this upload?): retry");
    }
  }
}

Result<std::vector<NameConflict>> Service::name_conflicts(const Principal& who, Id dataset_id,
                                                          const std::vector<std::string>& names) {
  STOWAGE_TRY(dataset(who, dataset_id));
  std::vector<NameConflict> out;
  STOWAGE_ASSIGN_OR_RETURN(auto taken, catalog_.find_items_by_name(dataset_id, names));
  for (const auto& item : taken) out.push_back({item.name, item.id});
  std::set<std::string_view> seen;
  for (const auto& name : names) {
    if (!seen.insert(name).second) out.push_back({name, 0});
  }
  return out;
}

Result<ItemSource> Service::item_source(const Principal& who, Id item_id) {
  STOWAGE_ASSIGN_OR_RETURN(auto item, this->item(who, item_id));
  STOWAGE_ASSIGN_OR_RETURN(ItemSource out, locate(std::move(item)));
  std::lock_guard lock(item_mutex_);
  if (item_cache_.size() >= kMaxCachedItems) item_cache_.clear();
  item_cache_[item_id] = {out, std::chrono::steady_clock::now() + options_.item_cache_ttl};
  return out;
}

Result<ItemSource> Service::locate(catalog::Item item) {
  ItemSource out;
  if (item.link) {
    STOWAGE_ASSIGN_OR_RETURN(auto target, resolve_link(*item.link));
    out.store = std::move(target.store);
    out.path = std::move(target.path);
  } else {
    out.path = {item.blob_bucket, item.blob_key};
    out.sha256_base64 = hash_hex_to_base64(item.blob_sha256_hex.value_or(""));
  }
  out.item = std::move(item);
  return out;
}

Result<links::LinkTarget> Service::resolve_link(std::string_view link) {
  if (links_ == nullptr) {
    return make_error(ErrorCode::PermissionDenied,
                      "links are not enabled on this server (no links configuration)");
  }
  return links_->resolve(link);
}

Result<bool> Service::may_use_connection(const Principal& who,
                                         const std::vector<std::string>& teams) {
  if (who.user.is_admin) return true;
  std::optional<std::vector<catalog::Membership>> memberships;  // read once, when a name needs it
  for (const std::string& entry : teams) {
    Id id = 0;
    const auto [end, ec] = std::from_chars(entry.data(), entry.data() + entry.size(), id);
    if (ec == std::errc{} && end == entry.data() + entry.size()) {
      if (check_team(who, id)) return true;
      continue;
    }
    if (!memberships) {
      STOWAGE_ASSIGN_OR_RETURN(auto found, catalog_.memberships(who.user.id));
      memberships = std::move(found);
    }
    for (const auto& m : *memberships) {
      if (m.team.name == entry) return true;
    }
  }
  return false;
}

Status Service::check_connection(const Principal& who, const links::LinkTarget& target) {
  if (target.connection.empty()) return {};  // a public URL: the SSRF rules apply, not teams
  STOWAGE_ASSIGN_OR_RETURN(const bool allowed, may_use_connection(who, target.teams));
  if (allowed) return {};
  return make_error(ErrorCode::PermissionDenied,
                    "connection '" + target.connection + "' of the links configuration is not " +
                        "open to your teams (an administrator lists them under its 'teams')");
}

Result<links::LinkTarget> Service::resolve_link_for(const Principal& who, std::string_view link) {
  STOWAGE_ASSIGN_OR_RETURN(auto target, resolve_link(link));
  STOWAGE_TRY(check_connection(who, target));
  return target;
}

Result<catalog::NewItem> Service::link_metadata(const links::LinkTarget& target) {
  STOWAGE_ASSIGN_OR_RETURN(auto info, target.store->stat(target.path));
  catalog::NewItem out;
  out.size = info.size;
  // Most formats keep their dimensions in the first bytes; read more only when those fail
  // (TIFF may keep its directory at the end).
  for (const std::uint64_t want : {kLinkHeaderBytes, kLinkWholeBytes}) {
    const std::uint64_t take = std::min(want, info.size);
    STOWAGE_ASSIGN_OR_RETURN(
        auto reader, target.store->open_read(
                         target.path, {.range = store::ByteRange{0, take},
                                       .if_match = info.etag.empty() ? std::nullopt
                                                                     : std::optional(info.etag)}));
    std::vector<std::byte> head(static_cast<std::size_t>(take));
    std::size_t got = 0;
    while (got < head.size()) {
      STOWAGE_ASSIGN_OR_RETURN(std::size_t n, reader->read(std::span(head).subspan(got)));
      if (n == 0) break;
      got += n;
    }
    head.resize(got);
    auto header = media::probe_image_buffer(head);
    if (header) {
      out.mime = header->mime;
      out.width = header->width;
      out.height = header->height;
      return out;
    }
    if (take == info.size) return header.error();
  }
  // The caller names the link.
  return make_error(ErrorCode::InvalidArgument, "no image header in its first " +
                                                    std::to_string(kLinkWholeBytes >> 20) + " MiB");
}

Result<catalog::NewItem> Service::link_video_metadata(const links::LinkTarget& target,
                                                      std::optional<int> stream_index) {
  STOWAGE_ASSIGN_OR_RETURN(auto info, target.store->stat(target.path));
  STOWAGE_ASSIGN_OR_RETURN(auto reader, target.store->open_random(info));
  STOWAGE_ASSIGN_OR_RETURN(auto meta, media::probe_video(*reader));
  STOWAGE_ASSIGN_OR_RETURN(auto item, video_item_meta(container_meta_json(meta), stream_index));
  catalog::NewItem out;
  out.size = info.size;
  out.mime = std::move(item.mime);
  out.width = item.width;
  out.height = item.height;
  out.file_meta = std::move(item.file_meta);
  return out;
}

Result<MediaKind> Service::dataset_kind(const Principal& who, Id dataset_id) {
  STOWAGE_ASSIGN_OR_RETURN(auto ds, dataset(who, dataset_id));
  STOWAGE_ASSIGN_OR_RETURN(auto p, catalog_.get_project(ds.project_id));
  return p.type == "videos" ? MediaKind::Video : MediaKind::Image;
}

namespace {

std::string_view noun(MediaKind kind) { return kind == MediaKind::Video ? "videos" : "images"; }

Status check_kind(MediaKind wanted, MediaKind actual, std::string_view what) {
  if (wanted == actual) return {};
  return make_error(ErrorCode::InvalidArgument,
                    std::string(what) + " belongs to a project of " + std::string(noun(actual)) +
                        ": use the " + std::string(noun(actual)) + ".* methods");
}

}  // namespace

Result<std::vector<catalog::Item>> Service::add_items(const Principal& who, Id dataset_id,
                                                      const std::vector<NewItem>& items,
                                                      bool force_metadata, MediaKind kind) {
  STOWAGE_ASSIGN_OR_RETURN(const MediaKind actual, dataset_kind(who, dataset_id));
  STOWAGE_TRY(check_kind(kind, actual, "dataset " + std::to_string(dataset_id)));
  std::vector<catalog::NewItem> rows;
  rows.reserve(items.size());
  for (const auto& in : items) {
    if (in.name.empty())
      return make_error(ErrorCode::InvalidArgument, "an item has an empty title");
    catalog::NewItem row;
    if (in.link) {
      STOWAGE_ASSIGN_OR_RETURN(auto target, resolve_link_for(who, *in.link));
      if (kind == MediaKind::Video || force_metadata) {
        auto meta = kind == MediaKind::Video ? link_video_metadata(target, in.video_stream_index)
                                             : link_metadata(target);
        if (!meta) {
          Error e = meta.error();
          e.message = "link " + target.locator.to_display() + ": " + e.message;
          return e;
        }
        row = std::move(*meta);
      } else {
        row.mime = media::mime_from_name(in.name);
      }
      row.link = target.locator.to_string();
    } else if (in.hash_base64) {
      STOWAGE_ASSIGN_OR_RETURN(auto hex, hash_base64_to_hex(*in.hash_base64));
      STOWAGE_TRY(
          check_hash_usable(who, *in.hash_base64, std::string(noun(kind)) + ".bulk.upload"));
      auto blob = catalog_.get_blob(hex);
      if (!blob) {
        if (blob.error().code == ErrorCode::NotFound) {
          return make_error(ErrorCode::NotFound, "no uploaded file has hash " + *in.hash_base64 +
                                                     ": upload it with " +
                                                     std::string(noun(kind)) +
                                                     ".bulk.upload first");
        }
        return blob.error();
      }
      row.blob_sha256_hex = hex;
      row.mime = blob->mime;
      row.size = blob->size;
      row.width = blob->width;
      row.height = blob->height;
      if (kind == MediaKind::Video) {
        if (!has_streams(blob->file_meta)) {
          STOWAGE_ASSIGN_OR_RETURN(auto probed, probe_video_metas({*in.hash_base64}));
          blob->file_meta = std::move(probed.front());
        }
        auto meta = video_item_meta(blob->file_meta, in.video_stream_index);
        if (!meta) {
          Error e = meta.error();
          e.message = "video '" + in.name + "': " + e.message;
          return e;
        }
        row.file_meta = std::move(meta->file_meta);
        row.width = meta->width;
        row.height = meta->height;
      }
    } else {
      return make_error(ErrorCode::InvalidArgument,
                        "item '" + in.name + "' needs a 'hash' or a 'link'");
    }
    row.name = in.name;
    row.meta = in.meta;
    rows.push_back(std::move(row));
  }
  return catalog_.add_items(dataset_id, rows, who.user.id);
}

namespace {

/// Objects a set_links call stats at once: an SDK batch is up to 1,000 items, and one HEAD
/// after another to a remote store would take seconds.
constexpr std::size_t kLinkCheckConcurrency = 16;

/// Runs `check(i)` for i in [0, n) on up to kLinkCheckConcurrency threads; the first error in
/// index order, so that the answer does not depend on timing.
Status check_each(std::size_t n, const std::function<Status(std::size_t)>& check) {
  std::vector<Status> results(n);
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < n;) results[i] = check(i);
  };
  {
    std::vector<std::jthread> threads;
    for (std::size_t t = 1; t < std::min(n, kLinkCheckConcurrency); ++t) threads.emplace_back(worker);
    worker();
  }
  for (auto& r : results) {
    if (!r) return std::move(r).error();
  }
  return {};
}

}  // namespace

Status Service::set_links(const Principal& who, MediaKind kind,
                          const std::vector<LinkUpdate>& updates, bool check_exists) {
  struct Checked {
    catalog::Item item;
    links::LinkTarget target;
  };
  std::vector<Checked> checked;
  checked.reserve(updates.size());
  std::unordered_map<Id, MediaKind> project_kinds;
  for (const LinkUpdate& u : updates) {
    const std::string what = "item " + std::to_string(u.item_id);
    STOWAGE_ASSIGN_OR_RETURN(auto it, item(who, u.item_id));
    auto known = project_kinds.find(it.project_id);
    if (known == project_kinds.end()) {
      STOWAGE_ASSIGN_OR_RETURN(auto p, catalog_.get_project(it.project_id));
      known = project_kinds
                  .emplace(it.project_id,
                           p.type == "videos" ? MediaKind::Video : MediaKind::Image)
                  .first;
    }
    STOWAGE_TRY(check_kind(kind, known->second, what));
    auto target = resolve_link_for(who, u.link);
    if (!target) {
      Error e = target.error();
      e.message = what + ": " + e.message;
      return e;
    }
    checked.push_back({std::move(it), std::move(*target)});
  }
  if (check_exists) {
    STOWAGE_TRY(check_each(checked.size(), [&](std::size_t i) -> Status {
      const Checked& c = checked[i];
      const std::string what = "item " + std::to_string(c.item.id);
      auto info = c.target.store->stat(c.target.path);
      if (!info) {
        Error e = info.error();
        e.message = what + ": " + (e.code == ErrorCode::NotFound
                                       ? "nothing at " + c.target.locator.to_display()
                                       : e.message);
        return e;
      }
      if (info->size != c.item.size) {
        return make_error(ErrorCode::PreconditionFailed,
                          what + ": " + c.target.locator.to_display() + " has " +
                              std::to_string(info->size) + " bytes, the item " +
                              std::to_string(c.item.size));
      }
      return {};
    }));
  }
  std::vector<catalog::LinkChange> changes;
  changes.reserve(checked.size());
  for (const Checked& c : checked) {
    changes.push_back({c.item.id, c.target.locator.to_string(), c.item.blob_sha256_hex});
  }
  STOWAGE_TRY(catalog_.set_item_links(changes));
  std::vector<Id> ids;
  for (const auto& c : changes) ids.push_back(c.item_id);
  forget_items(ids);
  return {};
}

void Service::forget_items(const std::vector<Id>& ids) {
  std::lock_guard lock(item_mutex_);
  for (Id id : ids) item_cache_.erase(id);
}

namespace {

/// The item name of a link: the last segment of its key or URL path, without a query.
std::string name_of_link(std::string_view link) {
  std::string_view path = link.substr(0, link.find_first_of("?#", link.find("://") + 3));
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  const std::size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<std::vector<Service::LinkLine>> Service::import_links(const Principal& who, Id dataset_id,
                                                             std::string_view text,
                                                             bool force_metadata) {
  STOWAGE_ASSIGN_OR_RETURN(const MediaKind kind, dataset_kind(who, dataset_id));
  std::vector<LinkLine> out;
  std::size_t number = 0;
  while (!text.empty()) {
    const std::size_t eol = text.find('\n');
    const std::string_view raw = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    ++number;
    const std::string_view link = trim(raw);
    if (link.empty() || link.front() == '#') continue;
    LinkLine line;
    line.line = number;
    line.link = std::string(link);
    const std::string name = name_of_link(link);
    if (name.empty() || name.find('/') != std::string::npos) {
      line.error = "cannot take a file name from this link";
      out.push_back(std::move(line));
      continue;
    }
    auto taken = catalog_.find_items_by_name(dataset_id, {name});
    if (!taken) {
      line.error = taken.error().message;
    } else if (!taken->empty()) {
      const auto& item = taken->front();
      line.item_id = item.id;
      if (item.link && *item.link == line.link) {
        line.status = LinkLine::Status::Exists;
      } else {
        line.error = "the name '" + name + "' is taken by item " + std::to_string(item.id) +
                     " of this dataset";
      }
    } else {
      NewItem item;
      item.name = name;
      item.link = line.link;
      auto added = add_items(who, dataset_id, {item}, force_metadata, kind);
      if (added) {
        line.status = LinkLine::Status::Added;
        line.item_id = added->front().id;
      } else {
        line.error = added.error().message;
      }
    }
    out.push_back(std::move(line));
  }
  return out;
}

std::optional<ItemSource> Service::cached_item_source(const Principal& who, Id item_id) {
  std::lock_guard lock(item_mutex_);
  const auto it = item_cache_.find(item_id);
  if (it == item_cache_.end() || it->second.expires <= std::chrono::steady_clock::now() ||
      !check_team(who, it->second.source.item.team_id)) {
    return std::nullopt;
  }
  return it->second.source;
}

Status Service::remove_items(const Principal& who, const std::vector<Id>& ids) {
  for (Id id : ids) {
    auto found = catalog_.get_item(id);
    if (!found) {
      if (found.error().code == ErrorCode::NotFound) continue;
      return found.error();
    }
    if (!check_team(who, found->team_id)) return forbidden("item", id);
  }
  STOWAGE_TRY(catalog_.remove_items(ids));
  // After the rows are gone, so that no lookup in between can bring them back into the cache.
  forget_items(ids);
  return {};
}

}  // namespace stowage::service
