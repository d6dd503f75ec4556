// SPDX-License-Identifier: Apache-2.0
#include "server/link_sync_api.hpp"

#include <algorithm>
#include <boost/json.hpp>

#include "stowage/service/link_sync.hpp"

namespace stowage::server {
namespace json = boost::json;

namespace {

Error bad_request(std::string message) {
  return make_error(ErrorCode::InvalidArgument, std::move(message));
}

Result<service::LinkSyncOptions> sync_options(const json::object& p) {
  service::LinkSyncOptions o;
  const auto* dataset = p.if_contains("datasetId");
  if (dataset == nullptr || !dataset->is_number()) {
    return bad_request("field 'datasetId' (an integer) is required");
  }
  o.dataset_id = dataset->to_number<catalog::Id>();
  const auto* prefix = p.if_contains("prefix");
  if (prefix == nullptr || !prefix->is_string() || prefix->get_string().empty()) {
    return bad_request("field 'prefix' (<provider>://<bucket>/<prefix>) is required");
  }
  o.prefix = prefix->get_string();
  if (const auto* include = p.if_contains("include"); include && !include->is_null()) {
    if (include->is_string()) {
      o.include.emplace_back(include->get_string());
    } else if (include->is_array()) {
      for (const auto& g : include->get_array()) {
        if (!g.is_string()) return bad_request("field 'include' must be strings (globs)");
        o.include.emplace_back(g.get_string());
      }
    } else {
      return bad_request("field 'include' must be a glob or an array of globs");
    }
  }
  if (const auto* regex = p.if_contains("regex"); regex && !regex->is_null()) {
    if (!regex->is_string()) return bad_request("field 'regex' must be a string");
    o.regex = regex->get_string();
  }
  for (auto [key, flag] : {std::pair<std::string_view, bool*>{"recursive", &o.recursive},
                           std::pair<std::string_view, bool*>{"dryRun", &o.dry_run}}) {
    if (const auto* v = p.if_contains(key); v && !v->is_null()) {
      if (!v->is_bool()) return bad_request("field '" + std::string(key) + "' must be a boolean");
      *flag = v->get_bool();
    }
  }
  return o;
}

}  // namespace

namespace {
constexpr std::string_view kMethods[] = {"links.sync"};
}  // namespace

std::span<const std::string_view> link_sync_methods() { return kMethods; }

bool link_sync_handles(std::string_view method) {
  return std::find(std::begin(kMethods), std::end(kMethods), method) != std::end(kMethods);
}

ApiResponse handle_link_sync(service::Service& service, const ApiRequest& request,
                             const json::value& params) {
  const auto* p = params.if_object();
  if (p == nullptr) {
    return Api::error_response(bad_request("the request body must be a JSON object"));
  }
  auto options = sync_options(*p);
  if (!options) return Api::error_response(options.error());
  Result<service::LinkSyncReport> report = make_error(ErrorCode::Internal, "not run");
  try {
    report = service::sync_links(service, request.principal, *options);
  } catch (const std::exception& e) {
    report = make_error(ErrorCode::Internal, std::string("internal error: ") + e.what());
  }
  if (!report) return Api::error_response(report.error());
  json::array entries;
  for (const auto& e : report->entries) {
    json::object o{{"status", service::to_string(e.status)}, {"link", e.link}, {"name", e.name}};
    o["itemId"] = e.item_id ? json::value(e.item_id) : json::value(nullptr);
    if (!e.reason.empty()) o["reason"] = e.reason;
    entries.push_back(std::move(o));
  }
  const auto& c = report->counts;
  ApiResponse r;
  r.json = json::serialize(json::object{{"listed", c.listed},
                                        {"matched", c.matched},
                                        {"added", c.added},
                                        {"existing", c.existing},
                                        {"skipped", c.skipped},
                                        {"failed", c.failed},
                                        {"removed", report->removed},
                                        {"dryRun", options->dry_run},
                                        {"entries", std::move(entries)}});
  return r;
}

}  // namespace stowage::server
