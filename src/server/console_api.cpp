// SPDX-License-Identifier: Apache-2.0
#include "server/console_api.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "server/caches.hpp"
#include "stowage/migration/journal.hpp"
#include "stowage/service/instance_check.hpp"
#include "stowage/service/project_migration.hpp"
#include "stowage/service/project_migration_json.hpp"

namespace stowage::server {
namespace json = boost::json;
using catalog::Id;

namespace {

/// Finished migration jobs kept for status calls; the oldest go first beyond this.
constexpr std::size_t kMaxFinishedJobs = 50;

Error bad_request(std::string message) {
  return make_error(ErrorCode::InvalidArgument, std::move(message));
}

Status require_admin(const catalog::Principal& who, std::string_view what) {
  if (!who.user.is_admin) {
    return make_error(
        ErrorCode::PermissionDenied,
        std::string(what) + " is for administrators; user '" + who.user.login + "' is not one");
  }
  return {};
}

ApiResponse json_response(const json::value& value) {
  ApiResponse r;
  r.json = json::serialize(value);
  return r;
}

Result<json::object> body_object(const ApiRequest& request) {
  if (request.body.empty()) return json::object{};
  boost::system::error_code ec;
  json::value v = json::parse(request.body, ec);
  if (ec) return bad_request("the request body is not valid JSON: " + ec.message());
  if (!v.is_object()) return bad_request("the request body must be a JSON object");
  return std::move(v.as_object());
}

Result<Id> id_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v != nullptr && v->is_int64()) return v->get_int64();
  if (v != nullptr && v->is_uint64() && v->get_uint64() <= INT64_MAX)
    return static_cast<Id>(v->get_uint64());
  return bad_request("field '" + std::string(key) + "' must be an integer id");
}

Result<std::string> string_field(const json::object& o, std::string_view key,
                                 std::string fallback = {}) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return fallback;
  if (!v->is_string()) return bad_request("field '" + std::string(key) + "' must be a string");
  return std::string(v->get_string());
}

Result<bool> bool_field(const json::object& o, std::string_view key, bool fallback) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return fallback;
  if (!v->is_bool()) return bad_request("field '" + std::string(key) + "' must be a boolean");
  return v->get_bool();
}

/// An endpoint as shown: without a user:password@ or a query, should one carry a secret.
std::string shown_endpoint(std::string endpoint) {
  endpoint = endpoint.substr(0, endpoint.find('?'));
  const auto scheme = endpoint.find("://");
  const auto start = scheme == std::string::npos ? 0 : scheme + 3;
  const auto at = endpoint.find('@', start);
  if (at != std::string::npos && endpoint.find('/', start) > at)
    endpoint.erase(start, at + 1 - start);
  return endpoint;
}

json::array checks_json(const std::vector<service::Check>& checks) {
  json::array out;
  for (const auto& c : checks) {
    out.push_back({{"name", c.name}, {"passed", c.passed}, {"detail", c.detail}});
  }
  return out;
}

json::value cache_json(const cache::DiskCache* cache, std::chrono::seconds expires) {
  if (cache == nullptr) return {{"enabled", false}};
  return {{"enabled", true},
          {"usedBytes", cache->used_bytes()},
          {"maxBytes", cache->max_bytes()},
          {"entries", cache->entry_count()},
          {"expiresSeconds", expires.count()}};
}

json::value token_json(const catalog::TokenInfo& t, Id current) {
  json::object o{{"id", t.id},           {"user", t.user_login},
                 {"name", t.name},       {"createdAt", t.created_at},
                 {"revoked", t.revoked}, {"current", t.id == current}};
  if (t.last_used_at) {
    o["lastUsedAt"] = *t.last_used_at;
  } else {
    o["lastUsedAt"] = nullptr;
  }
  return o;
}

std::string now_text() {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// A project migration running (or run) in the background.
struct Job {
  Id id = 0;
  Id project_id = 0;
  std::string to;
  bool dry_run = false;
  std::string started_at;
  std::string started_by;
  std::thread thread;

  std::mutex mutex;               // guards what follows
  std::string state = "running";  ///< running, done (the report is there), failed (error)
  json::object progress;
  json::object report;
  std::string error;
  std::string finished_at;

  json::object to_json() {
    std::lock_guard lock(mutex);
    json::object o{{"id", id},
                   {"projectId", project_id},
                   {"to", to},
                   {"dryRun", dry_run},
                   {"state", state},
                   {"startedAt", started_at},
                   {"startedBy", started_by},
                   {"progress", progress}};
    if (!report.empty()) o["report"] = report;
    if (!error.empty()) o["error"] = error;
    if (!finished_at.empty()) o["finishedAt"] = finished_at;
    return o;
  }
};

}  // namespace

struct ConsoleApi::Impl {
  const config::Config& config;
  service::Service& service;
  Caches* caches;

  std::mutex jobs_mutex;
  Id next_job = 1;
  std::map<Id, std::shared_ptr<Job>> jobs;

  Result<ApiResponse> session(const ApiRequest& r) {
    const auto& who = r.principal;
    return json_response(
        {{"user", {{"id", who.user.id}, {"login", who.user.login}, {"isAdmin", who.user.is_admin}}},
         {"tokenId", who.token_id},
         {"provider", std::string(config::to_string(config.provider))},
         {"teams", json::value_from(who.team_ids)}});
  }

  /// Admins only: the checks name server paths and endpoints, and each call probes every bucket.
  Result<ApiResponse> storage(const ApiRequest& r) {
    STOWAGE_TRY(require_admin(r.principal, "the storage status"));
    json::object out;
    out["provider"] = std::string(config::to_string(config.provider));
    out["endpoint"] = shown_endpoint(config.storage_endpoint);
    out["region"] = config.storage_region;
    out["publicBucket"] = config.public_bucket();
    out["privateBucket"] = config.private_bucket();
    out["checks"] = checks_json(service::check_storage(config));
    out["remoteLinksFile"] = config.remote_links_path.string();
    json::array connections;
    if (const auto* resolver = service.link_resolver()) {
      const auto links = resolver->config();
      for (const auto& c : links->connections) {
        links::RemoteLinks one;
        one.connections.push_back(c);
        json::array buckets;
        for (const auto& b : c.buckets) buckets.emplace_back(b);
        json::object o{{"name", c.name},
                       {"provider", c.provider},
                       {"endpoint", shown_endpoint(c.endpoint)},
                       {"region", c.region},
                       {"buckets", std::move(buckets)},
                       {"checks", checks_json(service::check_connections(one))}};
        if (c.provider == "fs") o["path"] = c.path.string();
        connections.push_back(std::move(o));
      }
    }
    out["connections"] = std::move(connections);
    return json_response(out);
  }

  Result<ApiResponse> cache_usage(const ApiRequest&) {
    cache::DiskCache* storage = caches ? caches->storage_cache() : nullptr;
    cache::DiskCache* previews = caches ? caches->preview_cache() : nullptr;
    return json_response({{"storage", cache_json(storage, config.cache_storage_expires)},
                          {"previews", cache_json(previews, config.cache_previews_expires)}});
  }

  Result<ApiResponse> tokens_list(const ApiRequest& r) {
    const auto& who = r.principal;
    STOWAGE_ASSIGN_OR_RETURN(auto tokens, service.catalog().list_tokens());
    json::array out;
    for (const auto& t : tokens) {
      if (who.user.is_admin || t.user_id == who.user.id) out.push_back(token_json(t, who.token_id));
    }
    return json_response(out);
  }

  Result<ApiResponse> tokens_create(const ApiRequest& r, const json::object& p) {
    STOWAGE_ASSIGN_OR_RETURN(std::string name, string_field(p, "name"));
    if (name.empty()) return bad_request("a token needs a name (what it is for)");
    if (name.size() > 200) return bad_request("a token's name is at most 200 characters");
    STOWAGE_ASSIGN_OR_RETURN(auto issued,
                             service.catalog().create_token(r.principal.user.id, name));
    json::value out = token_json(issued.info, r.principal.token_id);
    out.as_object()["token"] = issued.secret;  // shown this once; stored hashed
    return json_response(out);
  }

  Result<ApiResponse> tokens_revoke(const ApiRequest& r, const json::object& p) {
    STOWAGE_ASSIGN_OR_RETURN(Id id, id_field(p, "id"));
    const auto& who = r.principal;
    if (!who.user.is_admin) {
      STOWAGE_ASSIGN_OR_RETURN(auto tokens, service.catalog().list_tokens());
      const bool own = std::any_of(tokens.begin(), tokens.end(), [&](const auto& t) {
        return t.id == id && t.user_id == who.user.id;
      });
      if (!own)
        return make_error(ErrorCode::NotFound, "no token " + std::to_string(id) + " of yours");
    }
    STOWAGE_TRY(service.revoke_token(id));
    return json_response({{"success", true}, {"id", id}});
  }

  Result<ApiResponse> migrations_start(const ApiRequest& r, const json::object& p) {
    STOWAGE_TRY(require_admin(r.principal, "starting a migration"));
    auto job = std::make_shared<Job>();
    STOWAGE_ASSIGN_OR_RETURN(job->project_id, id_field(p, "projectId"));
    STOWAGE_ASSIGN_OR_RETURN(job->to, string_field(p, "to"));
    STOWAGE_ASSIGN_OR_RETURN(job->dry_run, bool_field(p, "dryRun", false));
    STOWAGE_ASSIGN_OR_RETURN(bool nested, bool_field(p, "nested", false));
    STOWAGE_ASSIGN_OR_RETURN(bool switch_partial, bool_field(p, "switchPartial", false));
    if (job->to.empty())
      return bad_request("field 'to' (a link prefix such as s3://bucket/dir) is required");
    STOWAGE_TRY(service.project(r.principal, job->project_id));
    job->started_at = now_text();
    job->started_by = r.principal.user.login;

    service::ProjectMigrationOptions options;
    options.project_id = job->project_id;
    options.to = job->to;
    options.nested = nested;
    options.dry_run = job->dry_run;
    options.switch_partial = switch_partial;
    // The engine reports every 200 ms and once at the end, from one thread.
    options.on_progress = [job](const migration::Progress& progress) {
      auto snapshot = service::migration_progress_json(progress);
      std::lock_guard lock(job->mutex);
      job->progress = std::move(snapshot);
    };

    std::lock_guard lock(jobs_mutex);
    for (const auto& [id, other] : jobs) {
      std::lock_guard other_lock(other->mutex);
      if (other->project_id == job->project_id && other->state == "running" && !other->dry_run &&
          !job->dry_run) {
        return make_error(ErrorCode::AlreadyExists, "project " + std::to_string(job->project_id) +
                                                        " is being migrated already (job " +
                                                        std::to_string(id) + ")");
      }
    }
    forget_finished_locked();
    job->id = next_job++;
    jobs[job->id] = job;
    const auto journal_path = config.data_path / "migrations" / "projects.db";
    job->thread = std::thread([this, job, options = std::move(options), journal_path]() mutable {
      run(*job, std::move(options), journal_path);
    });
    return json_response(job->to_json());
  }

  /// The job's thread: the same run as `stowage migrate project`, with the same journal.
  void run(Job& job, service::ProjectMigrationOptions options,
           const std::filesystem::path& journal_path) {
    auto finish = [&](std::string state, json::object report, std::string error) {
      std::lock_guard lock(job.mutex);
      job.state = std::move(state);
      job.report = std::move(report);
      job.error = std::move(error);
      job.finished_at = now_text();
    };
    try {
      auto journal = migration::Journal::open(journal_path);
      if (!journal) return finish("failed", {}, journal.error().message);
      options.journal = journal->get();
      const bool dry_run = options.dry_run;
      auto report = service::migrate_project(service, options);
      if (!report) return finish("failed", {}, report.error().message);
      finish("done", service::project_migration_report_json(*report, dry_run), "");
    } catch (const std::exception& e) {
      finish("failed", {}, std::string("internal error: ") + e.what());
    }
  }

  /// Drops the oldest finished jobs beyond kMaxFinishedJobs (jobs_mutex held).
  void forget_finished_locked() {
    std::size_t finished = 0;
    for (auto& [id, job] : jobs) {
      std::lock_guard lock(job->mutex);
      if (job->state != "running") ++finished;
    }
    for (auto it = jobs.begin(); it != jobs.end() && finished > kMaxFinishedJobs;) {
      bool done = false;
      {
        std::lock_guard lock(it->second->mutex);
        done = it->second->state != "running";
      }
      if (done) {
        if (it->second->thread.joinable()) it->second->thread.join();
        it = jobs.erase(it);
        --finished;
      } else {
        ++it;
      }
    }
  }

  Result<ApiResponse> migrations_status(const ApiRequest& r, const json::object& p) {
    STOWAGE_TRY(require_admin(r.principal, "a migration's status"));
    STOWAGE_ASSIGN_OR_RETURN(Id id, id_field(p, "id"));
    std::shared_ptr<Job> job;
    {
      std::lock_guard lock(jobs_mutex);
      const auto it = jobs.find(id);
      if (it == jobs.end()) {
        return make_error(ErrorCode::NotFound, "no migration job " + std::to_string(id) +
                                                   " (jobs are kept until the server restarts)");
      }
      job = it->second;
    }
    return json_response(job->to_json());
  }

  Result<ApiResponse> migrations_list(const ApiRequest& r) {
    STOWAGE_TRY(require_admin(r.principal, "the list of migrations"));
    std::vector<std::shared_ptr<Job>> all;
    {
      std::lock_guard lock(jobs_mutex);
      for (auto& [id, job] : jobs) all.push_back(job);
    }
    json::array out;
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
      json::object o = (*it)->to_json();
      // The list stays small (status has the whole report), but says whether a run was complete.
      if (const auto* report = o.if_contains("report")) o["complete"] = report->at("complete");
      o.erase("report");
      out.push_back(std::move(o));
    }
    return json_response(out);
  }

  Result<ApiResponse> dispatch(const ApiRequest& r) {
    STOWAGE_ASSIGN_OR_RETURN(auto p, body_object(r));
    const std::string_view m = r.method;
    if (m == "console.session") return session(r);
    if (m == "console.storage") return storage(r);
    if (m == "console.caches") return cache_usage(r);
    if (m == "console.tokens.list") return tokens_list(r);
    if (m == "console.tokens.create") return tokens_create(r, p);
    if (m == "console.tokens.revoke") return tokens_revoke(r, p);
    if (m == "console.migrations.start") return migrations_start(r, p);
    if (m == "console.migrations.status") return migrations_status(r, p);
    if (m == "console.migrations.list") return migrations_list(r);
    return make_error(ErrorCode::NotFound, "unknown API method '" + r.method + "'");
  }
};

ConsoleApi::ConsoleApi(const config::Config& config, service::Service& service, Caches* caches)
    : impl_(std::make_unique<Impl>(config, service, caches)) {}

ConsoleApi::~ConsoleApi() {
  std::map<Id, std::shared_ptr<Job>> jobs;
  {
    std::lock_guard lock(impl_->jobs_mutex);
    jobs.swap(impl_->jobs);
  }
  for (auto& [id, job] : jobs) {
    if (!job->thread.joinable()) continue;
    bool running = false;
    {
      std::lock_guard lock(job->mutex);
      running = job->state == "running";
    }
    if (running) {
      // A migration has no cancel point; it is safe to kill, and a rerun continues it.
      spdlog::info(
          "waiting for migration {} of project {} to finish (kill the server to stop it "
          "now: a rerun continues where it stopped)",
          id, job->project_id);
    }
    job->thread.join();
  }
}

std::span<const std::string_view> ConsoleApi::methods() {
  static constexpr std::string_view kMethods[] = {
      "console.session",          "console.storage",           "console.caches",
      "console.tokens.list",      "console.tokens.create",     "console.tokens.revoke",
      "console.migrations.start", "console.migrations.status", "console.migrations.list"};
  return kMethods;
}

bool ConsoleApi::handles(std::string_view method) {
  const auto all = methods();
  return std::find(all.begin(), all.end(), method) != all.end();
}

ApiResponse ConsoleApi::handle(const ApiRequest& request) {
  try {
    auto result = impl_->dispatch(request);
    if (!result) return Api::error_response(result.error());
    return std::move(*result);
  } catch (const std::exception& e) {
    return Api::error_response(
        make_error(ErrorCode::Internal, std::string("internal error: ") + e.what()));
  }
}

}  // namespace stowage::server
