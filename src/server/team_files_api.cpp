// SPDX-License-Identifier: Apache-2.0
#include "server/team_files_api.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cstdio>
#include <ctime>

#include "stowage/service/team_files.hpp"
#include "stowage/uri/percent.hpp"

namespace stowage::server {
namespace json = boost::json;
using catalog::Id;

namespace {

/// A `name` or `path` field of an upload is a path: refuse much more than one.
constexpr std::size_t kMaxTextField = 4096;
/// The most entries one paged file-storage.list answers.
constexpr std::int64_t kMaxListLimit = 10000;

Error bad_request(std::string message) {
  return make_error(ErrorCode::InvalidArgument, std::move(message));
}

std::string iso_time(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms.count() % 1000));
  return buf;
}

Result<Id> int_param(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return bad_request("field '" + std::string(key) + "' is required");
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<Id>(v->get_uint64());
  }
  if (v->is_string()) {
    const auto s = v->get_string();
    Id out = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc{} && end == s.data() + s.size() && !s.empty()) return out;
  }
  return bad_request("field '" + std::string(key) + "' must be an integer");
}

Result<std::string> string_param(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return bad_request("field '" + std::string(key) + "' is required");
  if (!v->is_string()) return bad_request("field '" + std::string(key) + "' must be a string");
  return std::string(v->get_string());
}

Result<bool> bool_param(const json::object& o, std::string_view key, bool fallback) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return fallback;
  if (v->is_bool()) return v->get_bool();
  if (v->is_string()) {
    const auto s = v->get_string();
    if (s == "true" || s == "True" || s == "1") return true;
    if (s == "false" || s == "False" || s == "0") return false;
  }
  return bad_request("field '" + std::string(key) + "' must be a boolean");
}

/// A file (or folder) as the SDK's FileInfo reads it: meta.{ext,mime,size} are its mime, ext
/// and sizeb; `hash` and `id` are null (team files keep no catalog rows).
json::object file_json(const service::TeamFile& f, const ApiRequest& request) {
  json::object o{
      {"id", nullptr},
      {"teamId", f.team_id},
      {"userId", nullptr},
      {"name", f.name},
      {"path", f.path},
      {"type", f.is_folder ? "folder" : "file"},
      {"isDir", f.is_folder},
      {"hash", nullptr},
      {"storagePath", "/" + f.object.bucket + "/" + f.object.key},
  };
  if (f.is_folder) {
    o["meta"] = json::object{{"ext", ""}, {"mime", ""}, {"size", 0}};
    o["size"] = 0;
    o["createdAt"] = nullptr;
    o["updatedAt"] = nullptr;
    o["fullStorageUrl"] = nullptr;
  } else {
    o["meta"] = json::object{{"ext", f.ext}, {"mime", f.mime}, {"size", f.size}};
    o["size"] = f.size;
    o["createdAt"] = iso_time(f.modified);
    o["updatedAt"] = iso_time(f.modified);
    // A GET of this URL needs the team's token (x-api-key): without one it is refused, and the
    // SDK's get_json_file_content falls back to file-storage.download.
    o["fullStorageUrl"] = request.base_url + "/public/api/v3/file-storage.download?teamId=" +
                          std::to_string(f.team_id) + "&path=" + uri::percent_encode(f.path);
  }
  return o;
}

ApiResponse json_answer(const json::value& v) {
  ApiResponse r;
  r.json = json::serialize(v);
  return r;
}

Result<ApiResponse> files_list(service::TeamFiles& files, const ApiRequest& request,
                               const json::object& p) {
  STOWAGE_ASSIGN_OR_RETURN(Id team, int_param(p, "teamId"));
  STOWAGE_ASSIGN_OR_RETURN(std::string path, string_param(p, "path"));
  STOWAGE_ASSIGN_OR_RETURN(bool recursive, bool_param(p, "recursive", true));
  // Paged on request ({"limit", "token"}): {"entities", "nextToken"}. Without a limit, the
  // whole listing as one array, which is what the SDK's list() reads.
  if (const auto* limit = p.if_contains("limit"); limit && !limit->is_null()) {
    STOWAGE_ASSIGN_OR_RETURN(Id n, int_param(p, "limit"));
    if (n < 1 || n > kMaxListLimit) {
      return bad_request("'limit' must be 1 to " + std::to_string(kMaxListLimit));
    }
    std::string token;
    if (const auto* t = p.if_contains("token"); t && t->is_string()) token = t->get_string();
    STOWAGE_ASSIGN_OR_RETURN(auto page, files.list(request.principal, team, path, recursive,
                                                   token, static_cast<std::size_t>(n)));
    json::array entities;
    for (const auto& f : page.entries) entities.push_back(file_json(f, request));
    json::object out{{"entities", std::move(entities)}};
    out["nextToken"] = page.next_token.empty() ? json::value(nullptr) : json::value(page.next_token);
    return json_answer(out);
  }
  json::array out;
  std::string token;
  do {
    STOWAGE_ASSIGN_OR_RETURN(auto page,
                             files.list(request.principal, team, path, recursive, token));
    for (const auto& f : page.entries) out.push_back(file_json(f, request));
    token = std::move(page.next_token);
  } while (!token.empty());
  return json_answer(out);
}

Result<ApiResponse> files_info(service::TeamFiles& files, const ApiRequest& request,
                               const json::object& p) {
  if (!p.contains("path") && p.contains("id")) {
    return make_error(ErrorCode::Unsupported,
                      "team files have no ids here: ask file-storage.info with "
                      "{\"teamId\", \"path\"} (or file-storage.list, as the SDK's "
                      "get_info_by_path does)");
  }
  STOWAGE_ASSIGN_OR_RETURN(Id team, int_param(p, "teamId"));
  STOWAGE_ASSIGN_OR_RETURN(std::string path, string_param(p, "path"));
  STOWAGE_ASSIGN_OR_RETURN(auto f, files.info(request.principal, team, path));
  return json_answer(file_json(f, request));
}

Result<ApiResponse> files_exists(service::TeamFiles& files, const ApiRequest& request,
                                 const json::object& p) {
  STOWAGE_ASSIGN_OR_RETURN(Id team, int_param(p, "teamId"));
  STOWAGE_ASSIGN_OR_RETURN(std::string path, string_param(p, "path"));
  auto f = files.info(request.principal, team, path);
  if (!f && f.error().code != ErrorCode::NotFound) return f.error();
  return json_answer(json::object{{"exists", static_cast<bool>(f)}});
}

Result<ApiResponse> files_download(service::TeamFiles& files, const ApiRequest& request,
                                   const json::object& p) {
  STOWAGE_ASSIGN_OR_RETURN(Id team, int_param(p, "teamId"));
  STOWAGE_ASSIGN_OR_RETURN(std::string path, string_param(p, "path"));
  STOWAGE_ASSIGN_OR_RETURN(auto f, files.info(request.principal, team, path));
  Download d;
  d.path = f.object;
  d.size = f.size;
  d.content_type = f.mime;
  d.filename = f.name;
  ApiResponse r;
  r.download = std::move(d);
  return r;
}

Result<ApiResponse> files_remove(service::TeamFiles& files, const ApiRequest& request,
                                 const json::object& p) {
  STOWAGE_ASSIGN_OR_RETURN(Id team, int_param(p, "teamId"));
  std::vector<std::string> paths;
  if (const auto* list = p.if_contains("paths"); list && !list->is_null()) {
    if (!list->is_array()) return bad_request("field 'paths' must be an array of strings");
    for (const auto& v : list->get_array()) {
      if (!v.is_string()) return bad_request("field 'paths' must be an array of strings");
      paths.emplace_back(v.get_string());
    }
  } else {
    STOWAGE_ASSIGN_OR_RETURN(std::string path, string_param(p, "path"));
    paths.push_back(std::move(path));
  }
  // Every path is checked before anything is removed.
  for (const auto& path : paths) {
    STOWAGE_ASSIGN_OR_RETURN(auto checked, service::TeamFiles::parse_path(path, true));
    (void)checked;
  }
  const bool bulk = p.contains("paths");
  std::uint64_t removed = 0;
  for (const auto& path : paths) {
    auto n = files.remove(request.principal, team, path);
    // A bulk removal skips what is already gone; a single one says so.
    if (!n && !(bulk && n.error().code == ErrorCode::NotFound)) return n.error();
    if (n) removed += *n;
  }
  return json_answer(json::object{{"success", true}, {"removed", removed}});
}

/// The upload sink: `name` and `path` text fields, then the `file` part that goes to
/// path + name, repeated.
class TeamFilesSink final : public UploadSink {
 public:
  TeamFilesSink(service::Service& service, const ApiRequest& request, Id team,
                std::optional<std::uint64_t> body_bytes)
      : files_(service), request_(request), team_(team), body_bytes_(body_bytes) {}

  Status begin_part(const PartHeaders& headers) override {
    part_ = Part::Other;
    if (headers.name == "file") {
      std::string name = name_;
      if (name.empty() && headers.filename) name = *headers.filename;
      if (name.empty()) return bad_request("each 'file' part needs a 'name' field before it");
      std::string dir = dir_.empty() ? "/" : dir_;
      if (dir.back() != '/') dir.push_back('/');
      STOWAGE_ASSIGN_OR_RETURN(
          upload_, files_.begin_upload(request_.principal, team_, dir + name, body_bytes_));
      part_ = Part::File;
      return {};
    }
    if (headers.filename) return {};  // some other file part: ignored
    if (headers.name == "name") part_ = Part::Name, name_.clear();
    if (headers.name == "path") part_ = Part::Path, dir_.clear();
    return {};
  }

  Status part_data(std::span<const std::byte> bytes) override {
    if (part_ == Part::File) return upload_->write(bytes);
    std::string* field = part_ == Part::Name ? &name_ : part_ == Part::Path ? &dir_ : nullptr;
    if (field == nullptr) return {};
    if (field->size() + bytes.size() > kMaxTextField) {
      return bad_request("a 'name' or 'path' field is longer than " +
                         std::to_string(kMaxTextField) + " bytes");
    }
    field->append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return {};
  }

  Status end_part() override {
    if (part_ == Part::File) {
      STOWAGE_ASSIGN_OR_RETURN(auto f, upload_->commit());
      upload_.reset();
      results_.push_back(file_json(f, request_));
      name_.clear();
    }
    part_ = Part::Other;
    return {};
  }

  Result<std::string> finish() override {
    if (results_.empty()) return bad_request("the upload holds no 'file' part");
    // file-storage.upload answers the file; file-storage.bulk.upload an array of them.
    if (request_.method == "file-storage.upload" && results_.size() == 1) {
      return json::serialize(results_.front());
    }
    return json::serialize(results_);
  }

 private:
  enum class Part { Other, Name, Path, File };
  service::TeamFiles files_;
  const ApiRequest& request_;
  Id team_;
  std::optional<std::uint64_t> body_bytes_;
  Part part_ = Part::Other;
  std::string name_;
  std::string dir_;
  std::unique_ptr<service::TeamFileUpload> upload_;
  json::array results_;
};

}  // namespace

namespace {
constexpr std::string_view kUploadMethods[] = {"file-storage.upload", "file-storage.bulk.upload"};
constexpr std::string_view kMethods[] = {
    "file-storage.list",     "file-storage.info",   "file-storage.exists",
    "file-storage.download", "file-storage.remove", "file-storage.bulk.remove",
    kUploadMethods[0],       kUploadMethods[1]};
}  // namespace

std::span<const std::string_view> team_files_methods() { return kMethods; }

bool team_files_is_upload(std::string_view method) {
  return std::find(std::begin(kUploadMethods), std::end(kUploadMethods), method) !=
         std::end(kUploadMethods);
}

bool team_files_handles(std::string_view method) {
  return !team_files_is_upload(method) &&
         std::find(std::begin(kMethods), std::end(kMethods), method) != std::end(kMethods);
}

ApiResponse handle_team_files(service::Service& service, const ApiRequest& request,
                              const json::value& params) {
  const auto* p = params.if_object();
  if (p == nullptr) {
    return Api::error_response(bad_request("the request body must be a JSON object"));
  }
  service::TeamFiles files(service);
  Result<ApiResponse> r = make_error(ErrorCode::NotFound, "unknown API method");
  try {
  if (request.method == "file-storage.list") {
    r = files_list(files, request, *p);
  } else if (request.method == "file-storage.info") {
    r = files_info(files, request, *p);
  } else if (request.method == "file-storage.exists") {
    r = files_exists(files, request, *p);
  } else if (request.method == "file-storage.download") {
    r = files_download(files, request, *p);
  } else if (request.method == "file-storage.remove" ||
             request.method == "file-storage.bulk.remove") {
    r = files_remove(files, request, *p);
  }
  } catch (const std::exception& e) {
    r = make_error(ErrorCode::Internal, std::string("internal error: ") + e.what());
  }
  if (!r) return Api::error_response(r.error());
  return std::move(*r);
}

Result<std::unique_ptr<UploadSink>> team_files_upload(service::Service& service,
                                                      const ApiRequest& request,
                                                      std::optional<std::uint64_t> body_bytes) {
  const auto it = request.query.find("teamId");
  if (it == request.query.end()) {
    return bad_request("the upload needs the team: file-storage.upload?teamId=<id>");
  }
  json::object q{{"teamId", it->second}};
  STOWAGE_ASSIGN_OR_RETURN(Id team, int_param(q, "teamId"));
  STOWAGE_TRY(service::Service::check_team(request.principal, team));
  return std::unique_ptr<UploadSink>(
      std::make_unique<TeamFilesSink>(service, request, team, body_bytes));
}

}  // namespace stowage::server
