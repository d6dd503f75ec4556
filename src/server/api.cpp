// SPDX-License-Identifier: Apache-2.0
#include "server/api.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse_query.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <unordered_map>

#include "server/multipart.hpp"
#include "server/previews.hpp"
#include "server/link_sync_api.hpp"
#include "server/team_files_api.hpp"
#include "stowage/media/probe.hpp"

namespace stowage::server {
namespace json = boost::json;
using catalog::Id;

namespace {

/// The instance version the SDK compares with its minimum (`MINIMUM_INSTANCE_VERSION_FOR_SDK`,
/// the last key of supervisely/versions.json: "6.17.8" at the SDK revision we follow).
constexpr std::string_view kInstanceVersion = "6.17.8";
/// Page size when the client names none; the Supervisely server's default is "20k" items.
constexpr std::int64_t kDefaultPerPage = 20000;
constexpr std::int64_t kMaxPerPage = 20000;
/// The most entries one remote-storage.list answers (the SDK's maximum `limit`).
constexpr std::int64_t kMaxRemoteListLimit = 10000;

/// An error of the request itself: wrong JSON types, missing fields.
Error bad_request(std::string message) {
  return make_error(ErrorCode::InvalidArgument, std::move(message));
}

// --- Reading the request
// --------------------------------------------------------------------------

/// The request's parameters as one JSON object: the JSON body, or form fields / query
/// parameters as strings (the SDK's aiohttp callers post `id=123` as a form).
Result<json::value> parse_params(const ApiRequest& request) {
  auto from_pairs = [](std::string_view text) -> Result<json::value> {
    auto parsed = boost::urls::parse_query(text);
    if (!parsed) return bad_request("malformed form or query string");
    boost::urls::encoding_opts decoding;
    decoding.space_as_plus = true;  // HTML forms encode spaces as '+'
    json::object out;
    for (const auto& param : boost::urls::params_view(text, decoding)) {
      out[param.key] = param.has_value ? json::value(param.value) : json::value(true);
    }
    return json::value(std::move(out));
  };
  if (request.is_get) {
    json::object out;
    for (const auto& [k, v] : request.query) out[k] = v;
    return json::value(std::move(out));
  }
  if (request.content_type.starts_with("multipart/form-data")) return json::value(json::object{});
  // curl -d and some scripts label JSON as a form; a form never starts with '{' or '['.
  const bool looks_json =
      !request.body.empty() && (request.body.front() == '{' || request.body.front() == '[');
  if (request.content_type.starts_with("application/x-www-form-urlencoded") && !looks_json) {
    return from_pairs(request.body);
  }
  if (request.body.empty()) return json::value(json::object{});
  boost::system::error_code ec;
  json::value value = json::parse(request.body, ec);
  if (ec) return bad_request("the request body is not valid JSON: " + ec.message());
  return value;
}

/// Typed access to a JSON object's fields, with errors that name the field.
class Params {
 public:
  explicit Params(const json::value& value) : object_(value.if_object()) {}

  Status require_object() const {
    if (object_ == nullptr) return bad_request("the request body must be a JSON object");
    return {};
  }
  bool has(std::string_view key) const {
    return object_ != nullptr && object_->contains(key) && !object_->at(key).is_null();
  }
  const json::value* get(std::string_view key) const {
    if (object_ == nullptr) return nullptr;
    const auto* v = object_->if_contains(key);
    return v != nullptr && !v->is_null() ? v : nullptr;
  }

  /// An integer field; digit strings are accepted (form posts carry only strings).
  Result<std::optional<std::int64_t>> optional_int(std::string_view key) const {
    const auto* v = get(key);
    if (v == nullptr) return std::optional<std::int64_t>{};
    return as_int(*v, key);
  }
  Result<std::int64_t> int_field(std::string_view key) const {
    STOWAGE_ASSIGN_OR_RETURN(auto v, optional_int(key));
    if (!v) return bad_request("field '" + std::string(key) + "' is required");
    return *v;
  }
  Result<std::string> string_field(std::string_view key, std::string fallback = {}) const {
    const auto* v = get(key);
    if (v == nullptr) return fallback;
    if (!v->is_string()) return bad_request("field '" + std::string(key) + "' must be a string");
    return std::string(v->get_string());
  }
  Result<bool> bool_field(std::string_view key, bool fallback) const {
    const auto* v = get(key);
    if (v == nullptr) return fallback;
    if (v->is_bool()) return v->get_bool();
    if (v->is_string()) {  // GET query strings carry Python's True/False
      std::string s(v->get_string());
      std::transform(s.begin(), s.end(), s.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      if (s == "true" || s == "1") return true;
      if (s == "false" || s == "0") return false;
    }
    return bad_request("field '" + std::string(key) + "' must be a boolean");
  }
  /// A JSON object field kept as serialized text ("{}" when absent).
  Result<std::string> object_text(std::string_view key) const {
    const auto* v = get(key);
    if (v == nullptr) return std::string("{}");
    if (!v->is_object()) return bad_request("field '" + std::string(key) + "' must be an object");
    return json::serialize(*v);
  }

  static Result<std::int64_t> as_int(const json::value& v, std::string_view key) {
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
      return static_cast<std::int64_t>(v.get_uint64());
    }
    if (v.is_string()) {
      const auto s = v.get_string();
      std::int64_t out = 0;
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
      if (ec == std::errc{} && end == s.data() + s.size() && !s.empty()) return out;
    }
    return bad_request("field '" + std::string(key) + "' must be an integer");
  }

 private:
  const json::object* object_;
};

/// Reads `filter`, paging, sort and token mode into a catalog query.
Result<catalog::ListQuery> list_query(const Params& p) {
  catalog::ListQuery q;
  if (const auto* filters = p.get("filter")) {
    if (!filters->is_array()) return bad_request("field 'filter' must be an array");
    for (const auto& f : filters->get_array()) {
      const Params fp(f);
      STOWAGE_TRY(fp.require_object());
      catalog::Filter filter;
      STOWAGE_ASSIGN_OR_RETURN(filter.field, fp.string_field("field"));
      STOWAGE_ASSIGN_OR_RETURN(std::string op, fp.string_field("operator", "="));
      static const std::unordered_map<std::string, catalog::Filter::Op> kOps{
          {"=", catalog::Filter::Op::Eq},       {"!=", catalog::Filter::Op::NotEq},
          {"in", catalog::Filter::Op::In},      {"!in", catalog::Filter::Op::NotIn},
          {"<", catalog::Filter::Op::Less},     {"<=", catalog::Filter::Op::LessEq},
          {">", catalog::Filter::Op::Greater},  {">=", catalog::Filter::Op::GreaterEq},
          {"ilike", catalog::Filter::Op::Like}, {"like", catalog::Filter::Op::Like}};
      const auto it = kOps.find(op);
      if (filter.field.empty()) return bad_request("a filter has no 'field'");
      if (it == kOps.end()) return bad_request("unknown filter operator '" + op + "'");
      filter.op = it->second;
      const json::value* value = fp.get("value");
      if (value == nullptr) return bad_request("filter on '" + filter.field + "' has no 'value'");
      auto push = [&](const json::value& v) -> Status {
        if (v.is_string() && filter.field == "hash") {
          // The SDK's hashes are base64 (sha256); the catalog keeps hex.
          auto hex = service::Service::hash_base64_to_hex(v.get_string());
          if (!hex) return bad_request("filter on 'hash': '" + std::string(v.get_string()) +
                                       "' is not a base64 SHA-256");
          filter.values.emplace_back(std::move(*hex));
        } else if (v.is_string()) {
          filter.values.emplace_back(std::string(v.get_string()));
        } else if (v.is_int64() || v.is_uint64()) {
          STOWAGE_ASSIGN_OR_RETURN(auto n, Params::as_int(v, filter.field));
          filter.values.emplace_back(n);
        } else {
          return bad_request("filter on '" + filter.field + "' needs integer or string values");
        }
        return {};
      };
      const bool is_list =
          filter.op == catalog::Filter::Op::In || filter.op == catalog::Filter::Op::NotIn;
      if (is_list) {
        if (!value->is_array()) return bad_request("operator '" + op + "' needs an array value");
        for (const auto& v : value->get_array()) STOWAGE_TRY(push(v));
      } else {
        STOWAGE_TRY(push(*value));
      }
      q.filters.push_back(std::move(filter));
    }
  }
  STOWAGE_ASSIGN_OR_RETURN(q.sort, p.string_field("sort", "id"));
  STOWAGE_ASSIGN_OR_RETURN(std::string order, p.string_field("sort_order", "asc"));
  if (order != "asc" && order != "desc") return bad_request("sort_order must be 'asc' or 'desc'");
  q.descending = order == "desc";
  STOWAGE_ASSIGN_OR_RETURN(auto page, p.optional_int("page"));
  STOWAGE_ASSIGN_OR_RETURN(auto per_page, p.optional_int("per_page"));
  q.page = page.value_or(1);
  q.per_page = per_page.value_or(kDefaultPerPage);
  if (q.page < 1) return bad_request("page must be 1 or more");
  if (q.per_page < 1 || q.per_page > kMaxPerPage) {
    return bad_request("per_page must be between 1 and " + std::to_string(kMaxPerPage));
  }
  STOWAGE_ASSIGN_OR_RETURN(std::string mode, p.string_field("pagination_mode", ""));
  if (mode == "token") {
    STOWAGE_ASSIGN_OR_RETURN(auto after, p.optional_int("after"));
    q.after = after.value_or(0);
  } else if (!mode.empty()) {
    return bad_request("pagination_mode must be 'token' when given");
  }
  return q;
}

/// `{"total","perPage","pagesCount","entities"}` (+ "after" in token mode).
template <class T, class ToJson>
json::value page_json(const catalog::Page<T>& page, const catalog::ListQuery& q, ToJson&& to_json) {
  json::array entities;
  entities.reserve(page.entities.size());
  for (const auto& e : page.entities) entities.push_back(to_json(e));
  json::object out;
  out["total"] = page.total;
  out["perPage"] = q.per_page;
  out["pagesCount"] = (page.total + q.per_page - 1) / q.per_page;
  if (q.after) {
    if (!page.entities.empty() && static_cast<std::int64_t>(page.entities.size()) == q.per_page) {
      out["after"] = std::to_string(page.entities.back().id);
    } else {
      out["after"] = nullptr;
    }
  }
  out["entities"] = std::move(entities);
  return out;
}

json::value parse_object_text(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return json::object{};
  return v;
}

// --- Entities as the SDK reads them (shared/spec/api.md, sections 1.1 to 1.6) --------------------

json::value team_json(const catalog::Team& t, std::string_view role) {
  return {{"id", t.id},
          {"name", t.name},
          {"description", t.description},
          {"role", role},
          {"createdAt", t.created_at},
          {"updatedAt", t.updated_at},
          {"usage", nullptr}};
}

json::value workspace_json(const catalog::Workspace& w) {
  return {{"id", w.id},
          {"name", w.name},
          {"description", w.description},
          {"teamId", w.team_id},
          {"createdAt", w.created_at},
          {"updatedAt", w.updated_at}};
}

json::value project_json(const catalog::Project& p) {
  json::object o;
  o["id"] = p.id;
  o["name"] = p.name;
  o["title"] = p.name;
  o["description"] = p.description;
  o["size"] = std::to_string(p.size_bytes);  // a string, as the Supervisely server sends it
  o["readme"] = p.readme;
  o["workspaceId"] = p.workspace_id;
  o["imagesCount"] = p.items_count;
  o["itemsCount"] = p.items_count;
  o["datasetsCount"] = p.datasets_count;
  o["createdAt"] = p.created_at;
  o["updatedAt"] = p.updated_at;
  o["type"] = p.type;
  o["referenceImageUrl"] = nullptr;
  o["customData"] = parse_object_text(p.custom_data);
  o["backupArchive"] = nullptr;
  o["teamId"] = p.team_id;
  o["groupId"] = p.team_id;
  o["settings"] = parse_object_text(p.settings);
  o["importSettings"] = json::object{};
  o["version"] = nullptr;
  o["createdBy"] = p.created_by;
  return o;
}

json::value dataset_json(const catalog::Dataset& d, bool with_custom_data) {
  json::object o;
  o["id"] = d.id;
  o["name"] = d.name;
  o["description"] = d.description;
  o["size"] = std::to_string(d.size_bytes);
  o["projectId"] = d.project_id;
  o["imagesCount"] = d.items_count;
  o["itemsCount"] = d.items_count;
  o["createdAt"] = d.created_at;
  o["updatedAt"] = d.updated_at;
  o["referenceImageUrl"] = nullptr;
  o["teamId"] = d.team_id;
  o["workspaceId"] = d.workspace_id;
  if (d.parent_id) {
    o["parentId"] = *d.parent_id;
  } else {
    o["parentId"] = nullptr;
  }
  // A dict here would make DatasetInfo unhashable in the SDK's get_tree(): only on request.
  if (with_custom_data) o["customData"] = parse_object_text(d.custom_data);
  o["createdBy"] = d.created_by;
  return o;
}

/// An image's JSON. `previewUrl` (Stowage's own field) is the SDK's preview URL of the item, signed
/// so that a browser <img> can load it without a token.
json::value item_json(const catalog::Item& i, const std::string& base_url,
                      const service::ServiceOptions& options) {
  json::object o;
  o["id"] = i.id;
  o["name"] = i.name;
  if (i.link) {
    o["link"] = *i.link;
  } else {
    o["link"] = nullptr;
  }
  if (i.content_sha256_hex) {
    o["hash"] = service::Service::hash_hex_to_base64(*i.content_sha256_hex);
  } else {
    o["hash"] = nullptr;
  }
  o["mime"] = i.mime;
  o["ext"] = media::extension_for_mime(i.mime);
  o["size"] = i.size;
  if (i.width)
    o["width"] = *i.width;
  else
    o["width"] = nullptr;
  if (i.height)
    o["height"] = *i.height;
  else
    o["height"] = nullptr;
  o["labelsCount"] = 0;
  o["datasetId"] = i.dataset_id;
  o["projectId"] = i.project_id;
  o["createdAt"] = i.created_at;
  o["updatedAt"] = i.updated_at;
  o["meta"] = parse_object_text(i.meta);
  if (i.blob_sha256_hex) {
    const std::string path = "/" + i.blob_bucket + "/" + i.blob_key;
    o["pathOriginal"] = path;
    o["fullStorageUrl"] = base_url + path;
    if (options.sign_preview) {
      o["previewUrl"] =
          base_url + std::string(kSdkPreviewPrefix) + path + "?" + options.sign_preview(path);
    }
  } else {
    // A linked image is previewed through the server (its storage cache), like a stored one:
    // the SDK's preview_url() and resize_image_url() work on its fullStorageUrl unchanged.
    const std::string path = std::string(kLinkedImageSource) + std::to_string(i.id);
    o["pathOriginal"] = path;
    o["fullStorageUrl"] = base_url + path;
    if (options.sign_preview) {
      o["previewUrl"] =
          base_url + std::string(kSdkPreviewPrefix) + path + "?" + options.sign_preview(path);
    }
  }
  o["tags"] = json::array{};
  o["createdBy"] = i.created_by_login;
  o["description"] = "";
  return o;
}

/// The processingPath of a video item: what the SDK's image_preview_url puts after
/// `videoframe/<position>/`, and what the previews handler resolves back to the item.
std::string processing_path(Id id) { return std::string(kVideoProcessingPrefix) + std::to_string(id); }

/// A video's JSON (VideoInfo, shared/spec/api.md 1.4): the SDK reads frames, size and duration
/// from `fileMeta`.
json::value video_json(const catalog::Item& i, const std::string& base_url,
                       const service::ServiceOptions& options) {
  json::object o;
  o["id"] = i.id;
  o["name"] = i.name;
  if (i.content_sha256_hex) {
    o["hash"] = service::Service::hash_hex_to_base64(*i.content_sha256_hex);
  } else {
    o["hash"] = nullptr;
  }
  if (i.link) {
    o["link"] = *i.link;
  } else {
    o["link"] = nullptr;
  }
  o["teamId"] = i.team_id;
  o["workspaceId"] = i.workspace_id;
  o["projectId"] = i.project_id;
  o["datasetId"] = i.dataset_id;
  if (i.blob_sha256_hex) {
    const std::string path = "/" + i.blob_bucket + "/" + i.blob_key;
    o["pathOriginal"] = path;
    o["fullStorageUrl"] = base_url + path;
  } else {
    o["pathOriginal"] = nullptr;
    o["fullStorageUrl"] = i.link ? json::value(*i.link) : json::value(nullptr);
  }
  json::value file_meta = parse_object_text(i.file_meta);
  json::object& fm = file_meta.as_object();
  fm["mime"] = i.mime;
  fm["size"] = std::to_string(i.size);  // a string, as Supervisely sends it
  if (!fm.contains("duration")) fm["duration"] = 0.0;
  if (!fm.contains("framesCount")) fm["framesCount"] = 0;
  if (!fm.contains("framesToTimecodes")) fm["framesToTimecodes"] = json::array{};
  if (!fm.contains("streams")) fm["streams"] = json::array{};
  if (i.width && !fm.contains("width")) fm["width"] = *i.width;
  if (i.height && !fm.contains("height")) fm["height"] = *i.height;
  o["fileMeta"] = std::move(file_meta);
  o["meta"] = parse_object_text(i.meta);
  o["customData"] = json::object{};
  o["tags"] = json::array{};
  o["createdAt"] = i.created_at;
  o["updatedAt"] = i.updated_at;
  o["createdBy"] = i.created_by_login;
  o["description"] = "";
  const std::string processing = processing_path(i.id);
  o["processingPath"] = processing;
  if (options.sign_preview) {
    const std::string source = std::string(kVideoFrameSource) + "33p/" + processing;
    o["previewUrl"] = base_url + std::string(kSdkVideoPreviewPrefix) + source +
                      "?videoStreamIndex=0&" + options.sign_preview(source);
  }
  return o;
}

}  // namespace

namespace {

ApiResponse json_response(const json::value& value) {
  ApiResponse r;
  r.json = json::serialize(value);
  return r;
}

/// The conflict answer of images.bulk.add that the SDK's conflict_resolution reads.
ApiResponse nonunique_response(const std::vector<service::NameConflict>& conflicts) {
  json::array errors;
  for (const auto& c : conflicts) {
    json::object e{{"name", c.name}};
    if (c.id != 0)
      e["id"] = c.id;
    else
      e["id"] = nullptr;
    errors.push_back(std::move(e));
  }
  std::string names;
  for (const auto& c : conflicts) names += (names.empty() ? "" : ", ") + c.name;
  ApiResponse r;
  r.status = 400;
  r.json =
      json::serialize(json::object{{"error", "Names must be unique in a dataset"},
                                   {"details",
                                    {{"type", "NONUNIQUE"},
                                     {"message", "these names are taken or repeated: " + names},
                                     {"errors", std::move(errors)}}}});
  return r;
}

/// One API call: the service, the decoded request and its parameters.
struct Call {
  service::Service& service;
  const ApiRequest& request;
  const Params& params;
  const catalog::Principal& who() const { return request.principal; }
};

using Handler = Result<ApiResponse> (*)(Call&);

Result<ApiResponse> instance_version(Call&) {
  return json_response({{"version", kInstanceVersion}, {"server", "stowage"}});
}

Result<ApiResponse> teams_list(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(auto memberships, c.service.catalog().memberships(c.who().user.id));
  STOWAGE_ASSIGN_OR_RETURN(auto q, list_query(c.params));
  std::vector<json::value> rows;
  for (const auto& m : memberships) rows.push_back(team_json(m.team, catalog::to_string(m.role)));
  // Teams are few: page them here rather than in SQL.
  json::array entities;
  const std::int64_t first = (q.page - 1) * q.per_page;
  for (std::int64_t i = first; i < static_cast<std::int64_t>(rows.size()) && i < first + q.per_page;
       ++i) {
    entities.push_back(rows[static_cast<std::size_t>(i)]);
  }
  const auto total = static_cast<std::int64_t>(rows.size());
  return json_response({{"total", total},
                        {"perPage", q.per_page},
                        {"pagesCount", (total + q.per_page - 1) / q.per_page},
                        {"entities", std::move(entities)}});
}

Result<ApiResponse> teams_info(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(Id id, c.params.int_field("id"));
  STOWAGE_ASSIGN_OR_RETURN(auto memberships, c.service.catalog().memberships(c.who().user.id));
  for (const auto& m : memberships) {
    if (m.team.id == id) return json_response(team_json(m.team, catalog::to_string(m.role)));
  }
  STOWAGE_TRY(c.service.team(c.who(), id));  // NotFound, or PermissionDenied
  return make_error(ErrorCode::NotFound, "team " + std::to_string(id) + " not found");
}

Result<ApiResponse> workspaces_list(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(Id team_id, c.params.int_field("teamId"));
  STOWAGE_TRY(c.service.team(c.who(), team_id));
  STOWAGE_ASSIGN_OR_RETURN(auto q, list_query(c.params));
  STOWAGE_ASSIGN_OR_RETURN(auto page, c.service.catalog().list_workspaces(team_id, q));
  return json_response(page_json(page, q, workspace_json));
}

Result<ApiResponse> workspaces_info(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(Id id, c.params.int_field("id"));
  STOWAGE_ASSIGN_OR_RETURN(auto ws, c.service.workspace(c.who(), id));
  return json_response(workspace_json(ws));
}

Result<ApiResponse> workspaces_add(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(Id team_id, c.params.int_field("teamId"));
  STOWAGE_ASSIGN_OR_RETURN(std::string name, c.params.string_field("name"));
  STOWAGE_ASSIGN_OR_RETURN(std::string description, c.params.string_field("description"));
  STOWAGE_ASSIGN_OR_RETURN(auto ws, c.service.add_workspace(c.who(), team_id, name, description));
  return json_response(workspace_json(ws));
}

Result<ApiResponse> projects_add(Call& c) {
  catalog::Project p;
  STOWAGE_ASSIGN_OR_RETURN(p.workspace_id, c.params.int_field("workspaceId"));
  STOWAGE_ASSIGN_OR_RETURN(p.name, c.params.string_field("name"));
  STOWAGE_ASSIGN_OR_RETURN(p.description, c.params.string_field("description"));
  STOWAGE_ASSIGN_OR_RETURN(p.type, c.params.string_field("type", "images"));
  STOWAGE_ASSIGN_OR_RETURN(p.readme, c.params.string_field("readme"));
  STOWAGE_ASSIGN_OR_RETURN(p.custom_data, c.params.object_text("customData"));
  STOWAGE_ASSIGN_OR_RETURN(p.settings, c.params.object_text("settings"));
  STOWAGE_ASSIGN_OR_RETURN(auto created, c.service.add_project(c.who(), std::move(p)));
  return json_response(project_json(created));
}

Result<ApiResponse> projects_info(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(Id id, c.params.int_field("id"));
  STOWAGE_ASSIGN_OR_RETURN(auto project, c.service.project(c.who(), id));
  return json_response(project_json(project));
}

Result<ApiResponse> projects_list(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(auto workspace_id, c.params.optional_int("workspaceId"));
  STOWAGE_ASSIGN_OR_RETURN(auto team_id, c.params.optional_int("groupId"));
  if (!team_id) {
    STOWAGE_ASSIGN_OR_RETURN(team_id, c.params.optional_int("teamId"));
  }
  if (workspace_id) {
    STOWAGE_TRY(c.service.workspace(c.who(), *workspace_id));
  } else if (team_id) {
    STOWAGE_TRY(c.service.team(c.who(), *team_id));
  } else {
    return bad_request("projects.list needs 'workspaceId' or 'groupId'");
  }
  STOWAGE_ASSIGN_OR_RETURN(auto q, list_query(c.params));
  STOWAGE_ASSIGN_OR_RETURN(auto page, c.service.catalog().list_projects(
                                          workspace_id, workspace_id ? std::nullopt : team_id, q));
  return json_response(page_json(page, q, project_json));
}

bool wants_extra(const Params& p, std::string_view field) {
  const auto* extra = p.get("extraFields");
  if (extra == nullptr || !extra->is_array()) return false;
  for (const auto& f : extra->get_array()) {
    if (f.is_string() && f.get_string() == field) return true;
  }
  return false;
}

Result<ApiResponse> datasets_add(Call& c) {
  catalog::Dataset d;
  STOWAGE_ASSIGN_OR_RETURN(d.project_id, c.params.int_field("projectId"));
  STOWAGE_ASSIGN_OR_RETURN(d.name, c.params.string_field("name"));
  STOWAGE_ASSIGN_OR_RETURN(d.description, c.params.string_field("description"));
  STOWAGE_ASSIGN_OR_RETURN(d.parent_id, c.params.optional_int("parentId"));
  STOWAGE_ASSIGN_OR_RETURN(d.custom_data, c.params.object_text("customData"));
  STOWAGE_ASSIGN_OR_RETURN(auto created, c.service.add_dataset(c.who(), std::move(d)));
  return json_response(dataset_json(created, c.params.has("customData")));
}

Result<ApiResponse> datasets_info(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(Id id, c.params.int_field("id"));
  STOWAGE_ASSIGN_OR_RETURN(auto dataset, c.service.dataset(c.who(), id));
  return json_response(dataset_json(dataset, true));
}

Result<ApiResponse> datasets_list(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(Id project_id, c.params.int_field("projectId"));
  STOWAGE_TRY(c.service.project(c.who(), project_id));
  STOWAGE_ASSIGN_OR_RETURN(bool recursive, c.params.bool_field("recursive", false));
  STOWAGE_ASSIGN_OR_RETURN(auto q, list_query(c.params));
  STOWAGE_ASSIGN_OR_RETURN(auto page, c.service.catalog().list_datasets(project_id, recursive, q));
  const bool custom = wants_extra(c.params, "customData");
  return json_response(
      page_json(page, q, [custom](const catalog::Dataset& d) { return dataset_json(d, custom); }));
}

Result<ApiResponse> hashes_list(Call& c) {
  boost::system::error_code ec;
  json::value body = json::parse(c.request.body, ec);
  if (ec || !body.is_array())
    return bad_request("images.internal.hashes.list takes a JSON array of hashes");
  std::vector<std::string> hashes;
  for (const auto& h : body.get_array()) {
    if (!h.is_string()) return bad_request("every hash must be a string");
    hashes.emplace_back(h.get_string());
  }
  STOWAGE_ASSIGN_OR_RETURN(auto found, c.service.existing_hashes(c.who(), hashes));
  json::array out;
  for (auto& h : found) out.emplace_back(h);
  return json_response(out);
}

/// The JSON of an item as the API of its kind writes it.
json::value kind_json(service::MediaKind kind, const catalog::Item& i, const std::string& base_url,
                      const service::ServiceOptions& options) {
  return kind == service::MediaKind::Video ? video_json(i, base_url, options)
                                           : item_json(i, base_url, options);
}

std::string_view kind_noun(service::MediaKind kind) {
  return kind == service::MediaKind::Video ? "videos" : "images";
}

/// One item to add: `{"title", "hash"|"link", "meta": {...}}`; a video's meta may name the
/// stream it shows (`videoStreamIndex`).
Result<service::Service::NewItem> new_item(const Params& ip) {
  STOWAGE_TRY(ip.require_object());
  service::Service::NewItem item;
  STOWAGE_ASSIGN_OR_RETURN(item.name, ip.string_field("title"));
  if (item.name.empty()) {
    STOWAGE_ASSIGN_OR_RETURN(item.name, ip.string_field("name"));
  }
  STOWAGE_ASSIGN_OR_RETURN(std::string link, ip.string_field("link"));
  STOWAGE_ASSIGN_OR_RETURN(std::string hash, ip.string_field("hash"));
  if (!link.empty()) {
    item.link = std::move(link);
  } else if (!hash.empty()) {
    item.hash_base64 = std::move(hash);
  } else {
    return bad_request("every item needs a 'hash' or a 'link'");
  }
  STOWAGE_ASSIGN_OR_RETURN(item.meta, ip.object_text("meta"));
  if (const auto* meta = ip.get("meta"); meta && meta->is_object()) {
    if (const auto* index = meta->get_object().if_contains("videoStreamIndex")) {
      if (!index->is_null()) {
        STOWAGE_ASSIGN_OR_RETURN(std::int64_t n, Params::as_int(*index, "videoStreamIndex"));
        item.video_stream_index = static_cast<int>(n);
      }
    }
  }
  return item;
}

/// images.bulk.add / videos.bulk.add: `{"datasetId", "images"|"videos": [...],
/// "forceMetadataForLinks"}`; the added items' JSON in request order, or NONUNIQUE.
Result<ApiResponse> bulk_add(Call& c, service::MediaKind kind) {
  const std::string key(kind_noun(kind));
  STOWAGE_ASSIGN_OR_RETURN(Id dataset_id, c.params.int_field("datasetId"));
  STOWAGE_ASSIGN_OR_RETURN(bool force_metadata, c.params.bool_field("forceMetadataForLinks", true));
  const auto* entries = c.params.get(key);
  if (entries == nullptr || !entries->is_array()) {
    return bad_request("field '" + key + "' must be an array");
  }
  std::vector<service::Service::NewItem> items;
  std::vector<std::string> names;
  for (const auto& entry : entries->get_array()) {
    STOWAGE_ASSIGN_OR_RETURN(auto item, new_item(Params(entry)));
    names.push_back(item.name);
    items.push_back(std::move(item));
  }
  STOWAGE_ASSIGN_OR_RETURN(auto conflicts, c.service.name_conflicts(c.who(), dataset_id, names));
  if (!conflicts.empty()) return nonunique_response(conflicts);
  auto added = c.service.add_items(c.who(), dataset_id, items, force_metadata, kind);
  if (!added && added.error().code == ErrorCode::AlreadyExists) {
    // Lost a race with another call adding the same names: report them the same way.
    STOWAGE_ASSIGN_OR_RETURN(auto raced, c.service.name_conflicts(c.who(), dataset_id, names));
    return nonunique_response(raced);
  }
  if (!added) return added.error();
  json::array out;
  for (const auto& item : *added) {
    out.push_back(kind_json(kind, item, c.request.base_url, c.service.options()));
  }
  return json_response(out);
}

/// images.list / videos.list: a page of a dataset's or a project's items.
Result<ApiResponse> list_items(Call& c, service::MediaKind kind) {
  STOWAGE_ASSIGN_OR_RETURN(auto dataset_id, c.params.optional_int("datasetId"));
  STOWAGE_ASSIGN_OR_RETURN(auto project_id, c.params.optional_int("projectId"));
  if (dataset_id.has_value() == project_id.has_value()) {
    return bad_request(std::string(kind_noun(kind)) +
                       ".list needs exactly one of 'datasetId' and 'projectId'");
  }
  if (dataset_id) STOWAGE_TRY(c.service.dataset(c.who(), *dataset_id));
  if (project_id) STOWAGE_TRY(c.service.project(c.who(), *project_id));
  STOWAGE_ASSIGN_OR_RETURN(auto q, list_query(c.params));
  STOWAGE_ASSIGN_OR_RETURN(auto page, c.service.catalog().list_items(dataset_id, project_id, q));
  const std::string& base = c.request.base_url;
  const auto& options = c.service.options();
  return json_response(page_json(
      page, q, [&](const catalog::Item& i) { return kind_json(kind, i, base, options); }));
}

Result<ApiResponse> item_info(Call& c, service::MediaKind kind) {
  STOWAGE_ASSIGN_OR_RETURN(Id id, c.params.int_field("id"));
  STOWAGE_ASSIGN_OR_RETURN(auto item, c.service.item(c.who(), id));
  return json_response(kind_json(kind, item, c.request.base_url, c.service.options()));
}

Result<ApiResponse> images_bulk_add(Call& c) { return bulk_add(c, service::MediaKind::Image); }
Result<ApiResponse> images_list(Call& c) { return list_items(c, service::MediaKind::Image); }
Result<ApiResponse> images_info(Call& c) { return item_info(c, service::MediaKind::Image); }
Result<ApiResponse> videos_bulk_add(Call& c) { return bulk_add(c, service::MediaKind::Video); }
Result<ApiResponse> videos_list(Call& c) { return list_items(c, service::MediaKind::Video); }
Result<ApiResponse> videos_info(Call& c) { return item_info(c, service::MediaKind::Video); }

Result<ApiResponse> images_download(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(Id id, c.params.int_field("id"));
  STOWAGE_ASSIGN_OR_RETURN(auto source, c.service.item_source(c.who(), id));
  ApiResponse r;
  r.download = Api::download_of(source);
  return r;
}

Result<std::vector<Id>> id_list(const Params& p, std::string_view key) {
  const auto* ids = p.get(key);
  if (ids == nullptr || !ids->is_array()) {
    return bad_request("field '" + std::string(key) + "' must be an array of ids");
  }
  std::vector<Id> out;
  for (const auto& v : ids->get_array()) {
    STOWAGE_ASSIGN_OR_RETURN(Id id, Params::as_int(v, key));
    out.push_back(id);
  }
  return out;
}

Result<ApiResponse> images_bulk_download(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(Id dataset_id, c.params.int_field("datasetId"));
  STOWAGE_ASSIGN_OR_RETURN(auto ids, id_list(c.params, "imageIds"));
  STOWAGE_TRY(c.service.dataset(c.who(), dataset_id));
  ApiResponse r;
  for (Id id : ids) {
    STOWAGE_ASSIGN_OR_RETURN(auto source, c.service.item_source(c.who(), id));
    if (source.item.dataset_id != dataset_id) {
      return bad_request("image " + std::to_string(id) + " is not in dataset " +
                         std::to_string(dataset_id));
    }
    r.bulk_download.push_back(Api::download_of(source));
  }
  return r;
}

Result<ApiResponse> images_bulk_remove(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(auto ids, id_list(c.params, "imageIds"));
  STOWAGE_TRY(c.service.remove_items(c.who(), ids));
  return json_response({{"success", true}});
}

// --- Videos (shared/spec/api.md 1.4) and links of stored items ---------------------------------

Result<ApiResponse> videos_bulk_remove(Call& c) {
  const char* key = c.params.get("videoIds") ? "videoIds" : "ids";
  STOWAGE_ASSIGN_OR_RETURN(auto ids, id_list(c.params, key));
  STOWAGE_TRY(c.service.remove_items(c.who(), ids));
  return json_response({{"success", true}});
}

Result<ApiResponse> video_metas(Call& c) {
  const auto* hashes = c.params.get("hashes");
  if (hashes == nullptr || !hashes->is_array()) {
    return bad_request("field 'hashes' must be an array of hashes");
  }
  std::vector<std::string> list;
  for (const auto& h : hashes->get_array()) {
    if (!h.is_string()) return bad_request("every hash must be a string");
    list.emplace_back(h.get_string());
  }
  STOWAGE_ASSIGN_OR_RETURN(auto metas, c.service.video_metas(c.who(), list));
  json::array out;
  for (std::size_t i = 0; i < metas.size(); ++i) {
    out.push_back(json::object{{"hash", list[i]}, {"meta", parse_object_text(metas[i])}});
  }
  return json_response(out);
}

/// images.update.links / videos.update.links: `{"images"|"videos": [{"id", "link"}],
/// "clearLocalDataSource": true}`. Links are checked to exist with the item's size unless
/// `"checkExists": false`.
Result<ApiResponse> update_links(Call& c, service::MediaKind kind) {
  const std::string_view key = kind == service::MediaKind::Video ? "videos" : "images";
  const auto* entries = c.params.get(key);
  if (entries == nullptr || !entries->is_array()) {
    return bad_request("field '" + std::string(key) + "' must be an array of {id, link}");
  }
  STOWAGE_ASSIGN_OR_RETURN(bool clear, c.params.bool_field("clearLocalDataSource", true));
  if (!clear) {
    return bad_request(
        "clearLocalDataSource=false is not supported: an item has stored bytes or a link");
  }
  STOWAGE_ASSIGN_OR_RETURN(bool check, c.params.bool_field("checkExists", true));
  std::vector<service::Service::LinkUpdate> updates;
  for (const auto& entry : entries->get_array()) {
    const Params ep(entry);
    STOWAGE_TRY(ep.require_object());
    service::Service::LinkUpdate u;
    STOWAGE_ASSIGN_OR_RETURN(u.item_id, ep.int_field("id"));
    STOWAGE_ASSIGN_OR_RETURN(u.link, ep.string_field("link"));
    if (u.link.empty()) return bad_request("every entry needs a 'link'");
    updates.push_back(std::move(u));
  }
  STOWAGE_TRY(c.service.set_links(c.who(), kind, updates, check));
  return json_response({{"success", true}});
}

Result<ApiResponse> images_update_links(Call& c) {
  return update_links(c, service::MediaKind::Image);
}
Result<ApiResponse> videos_update_links(Call& c) {
  return update_links(c, service::MediaKind::Video);
}

// --- remote-storage.* (shared/spec/api.md 1.5) ---------------------------------------------------

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

/// One entry of remote-storage.list as the ecosystem's apps read it.
json::object remote_entry(const links::LinkTarget& base, std::string_view key, bool folder,
                          std::uint64_t size,
                          std::optional<std::chrono::system_clock::time_point> t) {
  std::string_view trimmed = key;
  if (folder && trimmed.ends_with('/')) trimmed.remove_suffix(1);
  const std::size_t slash = trimmed.rfind('/');
  const std::string name(slash == std::string_view::npos ? trimmed : trimmed.substr(slash + 1));
  const std::string prefix(slash == std::string_view::npos ? std::string_view()
                                                           : trimmed.substr(0, slash));
  json::object o{
      {"type", folder ? "folder" : "file"},
      {"name", name},
      {"prefix", prefix},
      {"size", size},
      {"path", base.locator.scheme_text + "://" + base.path.bucket + "/" + std::string(key)}};
  if (t) o["updatedAt"] = iso_time(*t);
  return o;
}

Result<std::string> required_path(const Params& p, std::string_view key = "path") {
  STOWAGE_ASSIGN_OR_RETURN(std::string path, p.string_field(key));
  if (path.empty()) return bad_request("field '" + std::string(key) + "' (a link) is required");
  return path;
}

Result<ApiResponse> remote_list(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(std::string path, required_path(c.params));
  STOWAGE_ASSIGN_OR_RETURN(bool recursive, c.params.bool_field("recursive", true));
  STOWAGE_ASSIGN_OR_RETURN(bool files, c.params.bool_field("files", true));
  STOWAGE_ASSIGN_OR_RETURN(bool folders, c.params.bool_field("folders", true));
  STOWAGE_ASSIGN_OR_RETURN(auto limit_opt, c.params.optional_int("limit"));
  STOWAGE_ASSIGN_OR_RETURN(std::string start_after, c.params.string_field("startAfter"));
  const std::int64_t limit = limit_opt.value_or(kMaxRemoteListLimit);
  if (limit < 1 || limit > kMaxRemoteListLimit) {
    return bad_request("limit must be between 1 and " + std::to_string(kMaxRemoteListLimit));
  }
  if (c.service.link_resolver() == nullptr) return c.service.resolve_link(path).error();
  STOWAGE_ASSIGN_OR_RETURN(auto target, c.service.link_resolver()->resolve_prefix(path));
  STOWAGE_TRY(c.service.check_connection(c.who(), target));
  json::array out;
  const auto room = [&] { return static_cast<std::int64_t>(out.size()) < limit; };
  // An exact object comes first: get_file_info_by_path reads entry [0] of a limit=1 listing.
  const bool exact_candidate = !target.path.key.empty() && !target.path.key.ends_with('/');
  if (exact_candidate && files && start_after < target.path.key) {
    auto info = target.store->stat(target.path);
    if (info) {
      out.push_back(remote_entry(target, target.path.key, false, info->size, info->last_modified));
    } else if (info.error().code != ErrorCode::NotFound &&
               info.error().code != ErrorCode::InvalidArgument) {
      return info.error();
    }
  }
  store::ListOptions options;
  if (!recursive) options.delimiter = "/";
  options.start_after = start_after;
  options.max_keys = static_cast<std::size_t>(std::min<std::int64_t>(limit + 1, 1000));
  for (int pages = 0; room() && pages < 100; ++pages) {
    STOWAGE_ASSIGN_OR_RETURN(auto page, target.store->list(target.path, options));
    // Objects and folders in key order, as one listing.
    std::size_t oi = 0, pi = 0;
    while ((oi < page.objects.size() || pi < page.prefixes.size()) && room()) {
      const bool take_folder =
          pi < page.prefixes.size() &&
          (oi == page.objects.size() || page.prefixes[pi] < page.objects[oi].path.key);
      if (take_folder) {
        if (folders) out.push_back(remote_entry(target, page.prefixes[pi], true, 0, std::nullopt));
        ++pi;
      } else {
        const auto& o = page.objects[oi++];
        if (exact_candidate && o.path.key == target.path.key) continue;  // listed first already
        if (files) out.push_back(remote_entry(target, o.path.key, false, o.size, o.last_modified));
      }
    }
    if (page.next_page_token.empty()) break;
    options.page_token = page.next_page_token;
  }
  return json_response(out);
}

Result<ApiResponse> remote_exists(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(std::string path, required_path(c.params));
  STOWAGE_ASSIGN_OR_RETURN(auto target, c.service.resolve_link_for(c.who(), path));
  auto info = target.store->stat(target.path);
  if (!info && info.error().code != ErrorCode::NotFound) return info.error();
  return json_response({{"exists", static_cast<bool>(info)}});
}

Result<ApiResponse> remote_stat(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(std::string path, required_path(c.params));
  STOWAGE_ASSIGN_OR_RETURN(auto target, c.service.resolve_link_for(c.who(), path));
  STOWAGE_ASSIGN_OR_RETURN(auto info, target.store->stat(target.path));
  return json_response({{"size", info.size}, {"lastModified", iso_time(info.last_modified)}});
}

Result<ApiResponse> remote_download(Call& c) {
  STOWAGE_ASSIGN_OR_RETURN(std::string link, required_path(c.params, "link"));
  STOWAGE_ASSIGN_OR_RETURN(auto target, c.service.resolve_link_for(c.who(), link));
  ApiResponse r;
  Download d;
  d.store = target.store;
  d.path = target.path;
  const std::string& key = target.path.key;
  d.filename = key.substr(key.rfind('/') == std::string::npos ? 0 : key.rfind('/') + 1);
  d.content_type = media::mime_from_name(d.filename);
  r.download = std::move(d);
  return r;
}

json::array providers_json(const std::vector<links::ProviderSummary>& providers, bool buckets) {
  json::array out;
  for (const auto& p : providers) {
    json::array protocols;
    for (const auto& proto : p.protocols) protocols.emplace_back(proto);
    json::object o{{"id", p.id},
                   {"name", p.name},
                   {"defaultProtocol", p.default_protocol},
                   {"protocols", std::move(protocols)}};
    if (buckets) {
      json::array names;
      for (const auto& b : p.buckets) names.emplace_back(b);
      o["buckets"] = std::move(names);
    }
    out.push_back(std::move(o));
  }
  return out;
}

Result<ApiResponse> remote_available_providers(Call& c) {
  if (c.service.link_resolver() == nullptr) return json_response(json::array{});
  // Only the connections the caller may use: the others' buckets are not theirs to know.
  std::optional<Error> failed;
  auto usable = [&](const links::Connection& connection) {
    auto allowed = c.service.may_use_connection(c.who(), connection.teams);
    if (!allowed && !failed) failed = allowed.error();
    return allowed && *allowed;
  };
  auto providers = c.service.link_resolver()->available_providers(usable);
  if (failed) return *failed;
  return json_response(providers_json(providers, true));
}

Result<ApiResponse> remote_supported_providers(Call&) {
  return json_response(providers_json(links::LinkResolver::supported_providers(), false));
}

// --- The Links plugin ---------------------------------------------------------------------------

json::value link_lines_json(const std::vector<service::Service::LinkLine>& lines) {
  using Status = service::Service::LinkLine::Status;
  std::int64_t added = 0, existing = 0, failed = 0;
  json::array rows;
  for (const auto& l : lines) {
    json::object row{{"line", l.line}, {"link", l.link}};
    switch (l.status) {
      case Status::Added:
        row["status"] = "added";
        ++added;
        break;
      case Status::Exists:
        row["status"] = "exists";
        ++existing;
        break;
      case Status::Failed:
        row["status"] = "failed";
        ++failed;
        break;
    }
    if (l.item_id != 0) row["id"] = l.item_id;
    if (!l.error.empty()) row["error"] = l.error;
    rows.push_back(std::move(row));
  }
  return {{"added", added}, {"existing", existing}, {"failed", failed}, {"lines", std::move(rows)}};
}

/// links.import: a .txt of links (one per line) becomes items of a dataset. Either JSON
/// {"datasetId", "links": "<text>"} or multipart/form-data with a `datasetId` field and the file
/// in a `file` part, as a browser form sends it.
Result<ApiResponse> links_import(Call& c) {
  std::optional<Id> dataset_id;
  std::string text;
  bool force_metadata = true;
  if (c.request.content_type.starts_with("multipart/form-data")) {
    STOWAGE_ASSIGN_OR_RETURN(auto boundary, multipart_boundary(c.request.content_type));
    MultipartParser parser(boundary);
    STOWAGE_ASSIGN_OR_RETURN(auto events, parser.feed(std::as_bytes(std::span(c.request.body))));
    STOWAGE_TRY(parser.finish());
    std::string current;
    std::string dataset_text;
    for (const auto& e : events) {
      if (e.kind == PartEvent::Kind::Begin) current = e.headers.name;
      if (e.kind != PartEvent::Kind::Data) continue;
      const std::string_view data(reinterpret_cast<const char*>(e.data.data()), e.data.size());
      if (current == "file") text.append(data);
      if (current == "datasetId") dataset_text.append(data);
    }
    STOWAGE_ASSIGN_OR_RETURN(dataset_id, Params::as_int(json::value(dataset_text), "datasetId"));
  } else {
    STOWAGE_ASSIGN_OR_RETURN(dataset_id, c.params.int_field("datasetId"));
    STOWAGE_ASSIGN_OR_RETURN(text, c.params.string_field("links"));
    STOWAGE_ASSIGN_OR_RETURN(force_metadata, c.params.bool_field("forceMetadataForLinks", true));
  }
  STOWAGE_ASSIGN_OR_RETURN(auto lines,
                           c.service.import_links(c.who(), *dataset_id, text, force_metadata));
  return json_response(link_lines_json(lines));
}

const std::unordered_map<std::string_view, Handler>& handlers() {
  static const std::unordered_map<std::string_view, Handler> kHandlers{
      {"instance.version", instance_version},
      {"teams.list", teams_list},
      {"teams.info", teams_info},
      {"workspaces.list", workspaces_list},
      {"workspaces.info", workspaces_info},
      {"workspaces.add", workspaces_add},
      {"projects.add", projects_add},
      {"projects.info", projects_info},
      {"projects.list", projects_list},
      {"datasets.add", datasets_add},
      {"datasets.info", datasets_info},
      {"datasets.list", datasets_list},
      {"images.internal.hashes.list", hashes_list},
      {"images.bulk.add", images_bulk_add},
      {"images.list", images_list},
      {"images.info", images_info},
      {"images.download", images_download},
      {"images.bulk.download", images_bulk_download},
      {"images.bulk.remove", images_bulk_remove},
      {"images.update.links", images_update_links},
      {"videos.bulk.add", videos_bulk_add},
      {"videos.list", videos_list},
      {"videos.info", videos_info},
      {"videos.download", images_download},
      {"videos.bulk.remove", videos_bulk_remove},
      {"videos.update.links", videos_update_links},
      {"import-storage.internal.meta.list", video_metas},
      {"remote-storage.list", remote_list},
      {"remote-storage.exists", remote_exists},
      {"remote-storage.stat", remote_stat},
      {"remote-storage.download", remote_download},
      {"remote-storage.available_providers", remote_available_providers},
      {"remote-storage.supported_providers", remote_supported_providers},
      {"links.import", links_import},
  };
  return kHandlers;
}

}  // namespace

Api::Api(service::Service& service) : service_(service) {}

Download Api::download_of(const service::ItemSource& source) {
  Download d;
  d.store = source.store;
  d.path = source.path;
  d.size = source.item.size;
  d.content_type = source.item.mime;
  d.filename = source.item.name;
  d.sha256_base64 = source.sha256_base64;
  d.part_name = std::to_string(source.item.id);
  return d;
}

std::optional<catalog::Id> Api::download_id(const ApiRequest& request) {
  auto params = parse_params(request);
  if (!params) return std::nullopt;
  const Params p(*params);
  if (!p.require_object()) return std::nullopt;
  auto id = p.int_field("id");
  if (!id) return std::nullopt;
  return *id;
}

namespace {
/// The uploads the server streams itself (server.cpp), besides the team files'.
constexpr std::string_view kUploadMethods[] = {"images.bulk.upload", "videos.bulk.upload",
                                               "remote-storage.upload"};
}  // namespace

std::vector<std::string_view> Api::methods() {
  std::vector<std::string_view> out;
  for (const auto& [name, handler] : handlers()) out.push_back(name);
  out.insert(out.end(), std::begin(kUploadMethods), std::end(kUploadMethods));
  for (std::string_view m : team_files_methods()) out.push_back(m);
  for (std::string_view m : link_sync_methods()) out.push_back(m);
  std::sort(out.begin(), out.end());
  return out;
}

bool Api::handles(std::string_view method) {
  return handlers().contains(method) || team_files_handles(method) || link_sync_handles(method);
}

bool Api::is_upload(std::string_view method) {
  return std::find(std::begin(kUploadMethods), std::end(kUploadMethods), method) !=
             std::end(kUploadMethods) ||
         team_files_is_upload(method);
}

int Api::http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::NotFound:
      return 404;
    case ErrorCode::AlreadyExists:
      return 409;
    case ErrorCode::PreconditionFailed:
      return 412;
    case ErrorCode::InvalidArgument:
      return 400;
    case ErrorCode::Unauthenticated:
      return 401;
    case ErrorCode::PermissionDenied:
      return 403;
    case ErrorCode::RangeNotSatisfiable:
      return 416;
    case ErrorCode::TooLarge:
      return 413;
    case ErrorCode::Unavailable:
      return 503;
    case ErrorCode::Timeout:
      return 504;
    case ErrorCode::Cancelled:
      return 499;
    case ErrorCode::Unsupported:
      return 501;
    case ErrorCode::IoError:
    case ErrorCode::Corrupt:
    case ErrorCode::Internal:
      return 500;
  }
  return 500;
}

std::string Api::error_json(std::string_view error, std::string_view message) {
  return json::serialize(json::object{{"error", error}, {"details", {{"message", message}}}});
}

ApiResponse Api::error_response(const Error& error) {
  ApiResponse r;
  r.status = http_status(error.code);
  r.json = error_json(to_string(error.code), error.message);
  return r;
}

ApiResponse Api::handle(const ApiRequest& request) {
  if (team_files_handles(request.method)) {  // file-storage.* (server/team_files_api.cpp)
    auto value = parse_params(request);
    if (!value) return error_response(value.error());
    return handle_team_files(service_, request, *value);
  }
  if (link_sync_handles(request.method)) {  // links.sync (server/link_sync_api.cpp)
    auto value = parse_params(request);
    if (!value) return error_response(value.error());
    return handle_link_sync(service_, request, *value);
  }
  const auto it = handlers().find(request.method);
  if (it == handlers().end()) {
    return error_response(
        make_error(ErrorCode::NotFound, "unknown API method '" + request.method + "'"));
  }
  try {
    auto value = parse_params(request);
    if (!value) return error_response(value.error());
    const Params params(*value);
    // Every method but the hash list takes an object.
    if (request.method != "images.internal.hashes.list") {
      if (auto ok = params.require_object(); !ok) return error_response(ok.error());
    }
    Call call{service_, request, params};
    auto result = it->second(call);
    if (!result) return error_response(result.error());
    return std::move(*result);
  } catch (const std::exception& e) {
    return error_response(
        make_error(ErrorCode::Internal, std::string("internal error: ") + e.what()));
  }
}

}  // namespace stowage::server
