// SPDX-License-Identifier: Apache-2.0
// `stowage migrate storage --to TARGET`: the docs' "copying will be enough" migration (the two
// bucket folders, or the current provider's buckets, copied key for key to the target's
// buckets), through the verified, resumable copy engine of stowage/migration.
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <iostream>
#include <mutex>

#include "cli/commands.hpp"
#include "cli/instance.hpp"
#include "cli/lease.hpp"
#include "stowage/links/link_resolver.hpp"
#include "stowage/links/remote_links.hpp"
#include "stowage/migration/runner.hpp"
#include "stowage/store/registry.hpp"

namespace stowage::cli {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// Redraws of the progress bar on a terminal; about five a second, which reads as live without
/// costing the copy anything.
constexpr std::chrono::milliseconds kBarInterval{200};
/// One plain progress line this often when stderr is not a terminal (logs, CI).
constexpr std::chrono::seconds kLineInterval{5};

std::string human_duration(std::chrono::seconds s) {
  char text[32];
  const auto n = s.count();
  if (n >= 3600) {
    std::snprintf(text, sizeof text, "%lldh%02lldm", static_cast<long long>(n / 3600),
                  static_cast<long long>(n % 3600 / 60));
  } else {
    std::snprintf(text, sizeof text, "%lldm%02llds", static_cast<long long>(n / 60),
                  static_cast<long long>(n % 60));
  }
  return text;
}

/// "1,234/5,000 objects  1.2 GiB/4.0 GiB  85.3 MiB/s  ETA 0m38s".
std::string progress_text(const migration::Progress& p) {
  std::string objects = std::to_string(p.objects_done);
  std::string bytes = human_bytes(p.bytes_done);
  if (p.totals) {
    objects += "/" + std::to_string(p.totals->objects);
    bytes += "/" + human_bytes(p.totals->bytes);
  }
  std::string line = objects + " objects  " + bytes + "  " + human_bytes(p.bytes_per_second) +
                     "/s  ETA " + (p.eta ? human_duration(*p.eta) : std::string("?"));
  if (p.failed > 0) line += "  " + std::to_string(p.failed) + " failed";
  return line;
}

/// Draws the bar on a terminal (one line, rewritten), or prints a plain line now and then.
class ProgressPrinter {
 public:
  ProgressPrinter(std::ostream& err, bool tty) : err_(err), tty_(tty) {}

  void operator()(const migration::Progress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (tty_) {
      constexpr std::size_t kWidth = 24;
      std::string bar;
      if (p.totals && p.totals->bytes > 0) {
        const std::size_t filled = static_cast<std::size_t>(
            std::min<std::uint64_t>(kWidth, p.bytes_done * kWidth / p.totals->bytes));
        bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
      }
      err_ << "\r\033[K" << bar << progress_text(p) << std::flush;
      drawn_ = true;
      return;
    }
    if (now - last_ < kLineInterval) return;
    last_ = now;
    err_ << "progress: " << progress_text(p) << '\n' << std::flush;
  }
  /// Ends the bar's line before the summary.
  void finish() {
    if (drawn_) err_ << '\n';
  }

 private:
  std::ostream& err_;
  bool tty_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

/// The target, opened: its store, how to name it to a user, and its journal scope.
struct Target {
  std::unique_ptr<store::ObjectStore> store;
  std::string description;
  std::string scope;
};

struct Failed {
  std::string message;
  int exit_code;
};

/// `--to` names a .env file (an existing file, or anything with a '/' or ending in .env) or a
/// connection of remote_links.yml.
bool looks_like_env_file(const std::string& to) {
  std::error_code ec;
  return fs::is_regular_file(to, ec) || to.find('/') != std::string::npos ||
         (to.size() > 4 && to.ends_with(".env"));
}

/// `--to s3://` (or `azure://`, `google://`, optionally with one of the two bucket names): the
/// connection of remote_links.yml that allows both buckets with that scheme, as a link to them
/// would resolve.
Result<std::string> connection_of_link(const config::Config& source, const std::string& to) {
  auto links = links::RemoteLinks::load(source.remote_links_path, config::process_environment());
  if (!links) return links.error();
  const std::string scheme = to.substr(0, to.find("://"));
  std::string bucket = to.substr(scheme.size() + 3);
  while (!bucket.empty() && bucket.back() == '/') bucket.pop_back();
  const std::string pub = source.bucket_prefix + "-public", priv = source.bucket_prefix + "-private";
  if (!bucket.empty() && bucket != pub && bucket != priv) {
    return make_error(ErrorCode::InvalidArgument,
                      "--to " + to + ": the storage is the buckets " + pub + " and " + priv +
                          ", which keep their names; give the scheme alone, e.g. " + scheme +
                          "://");
  }
  links::LinkResolver resolver(std::move(*links), {});
  std::string name;
  for (const std::string& b : {pub, priv}) {
    auto target = resolver.resolve_prefix(scheme + "://" + b + "/");
    if (!target) return target.error();
    if (!name.empty() && target->connection != name) {
      return make_error(ErrorCode::InvalidArgument,
                        "--to " + to + ": " + pub + " and " + priv +
                            " are allowed by different connections (" + name + ", " +
                            target->connection + "); name one with --to");
    }
    name = target->connection;
  }
  return name;
}

Result<Target> open_target(const config::Config& source, std::string to) {
  Target t;
  if (to.find("://") != std::string::npos) {
    STOWAGE_ASSIGN_OR_RETURN(to, connection_of_link(source, to));
  } else if (looks_like_env_file(to)) {
    config::LoadOptions load;
    load.env_file = fs::path(to);
    // Only the target file counts: the variables of this process describe the source.
    auto loaded = config::load(load);
    if (!loaded) return loaded.error();
    config::Config target = std::move(*loaded);
    if (!target.bucket_prefix.empty() && target.bucket_prefix != source.bucket_prefix) {
      return make_error(ErrorCode::InvalidArgument,
                        "STORAGE_BUCKET_PREFIX=" + target.bucket_prefix + " in " + to +
                            " differs from the current prefix " + source.bucket_prefix +
                            ": after the switch Stowage would look for other buckets; set it to " +
                            source.bucket_prefix + " or remove it");
    }
    target.bucket_prefix = source.bucket_prefix;
    std::string where = target.provider == config::Provider::Http
                            ? target.storage_root().string()
                            : target.storage_endpoint +
                                  (target.storage_port ? ":" + std::to_string(*target.storage_port)
                                                       : std::string());
    if (target.provider == source.provider && target.storage_endpoint == source.storage_endpoint &&
        target.storage_port == source.storage_port &&
        target.storage_access_key == source.storage_access_key &&
        (target.provider != config::Provider::Http || target.data_path == source.data_path)) {
      return make_error(ErrorCode::InvalidArgument,
                        to + " describes the storage in use now (" + where +
                            "); --to must be the storage to move to");
    }
    t.description = std::string(config::to_string(target.provider)) + " " + where + " (from " +
                    to + ")";
    t.scope = "storage " + std::string(config::to_string(target.provider)) + " " + where + " " +
              target.storage_access_key;
    STOWAGE_ASSIGN_OR_RETURN(t.store, store::open_configured_store(target));
    return t;
  }
  auto links = links::RemoteLinks::load(source.remote_links_path, config::process_environment());
  if (!links) return links.error();
  const links::Connection* connection = nullptr;
  for (const auto& c : links->connections) {
    if (c.name == to) connection = &c;
  }
  if (connection == nullptr) {
    return make_error(ErrorCode::InvalidArgument,
                      "--to " + to + ": no such file, and no connection of that name in " +
                          (source.remote_links_path.empty() ? std::string("remote_links.yml")
                                                            : source.remote_links_path.string()));
  }
  if (connection->provider == "fs") {
    return make_error(ErrorCode::InvalidArgument,
                      "--to " + to +
                          ": an fs connection is one folder, not a storage with buckets; to move "
                          "to another disk, give a .env file with STORAGE_PROVIDER=http and its "
                          "DATA_PATH");
  }
  t.description = connection->provider + " " + connection->endpoint + " (connection " + to + ")";
  t.scope = "storage " + connection->provider + " " + connection->endpoint + " " +
            connection->access_key;
  STOWAGE_ASSIGN_OR_RETURN(t.store, store::open_link_store(*connection));
  return t;
}

/// Fails unless `bucket` can be listed in `store`, saying what to do.
std::optional<Failed> check_bucket(store::ObjectStore& store, const std::string& bucket,
                                   std::string_view side) {
  store::ListOptions one;
  one.max_keys = 1;
  auto page = store.list(store::ObjectPath{bucket, ""}, one);
  if (page) return std::nullopt;
  const Error& e = page.error();
  if (e.code == ErrorCode::NotFound) {
    return Failed{std::string(side) + " bucket " + bucket + " does not exist; create it (both " +
                      "-public and -private buckets are needed) and run this again",
                  kExitUsage};
  }
  const bool config = e.code == ErrorCode::Unauthenticated ||
                      e.code == ErrorCode::PermissionDenied ||
                      e.code == ErrorCode::InvalidArgument;
  return Failed{std::string(side) + " bucket " + bucket + ": " + e.to_string(),
                config ? kExitUsage : kExitFailed};
}

boost::json::object summary_json(const migration::Summary& s, const Target& target,
                                 const MigrateStorageOptions& options) {
  boost::json::array failures;
  for (const auto& f : s.failures) {
    failures.push_back(boost::json::object{{"object", f.source.to_string()},
                                           {"code", std::string(to_string(f.error.code))},
                                           {"error", f.error.message}});
  }
  return boost::json::object{
      {"target", target.description},
      {"dry_run", options.dry_run},
      {"complete", s.complete()},
      {"copied", s.copied},
      {"skipped", s.skipped},
      {"would_copy", s.would_copy},
      {"failed", s.failed},
      {"bytes_copied", s.bytes_copied},
      {"bytes_skipped", s.bytes_skipped},
      {"bytes_would_copy", s.bytes_would_copy},
      {"bytes_written", s.bytes_written},
      {"elapsed_ms", s.elapsed.count()},
      {"failures", std::move(failures)},
      {"aborted", s.aborted ? boost::json::value(s.aborted->to_string()) : nullptr},
  };
}

void print_summary(std::ostream& out, const migration::Summary& s, const Target& target,
                   const MigrateStorageOptions& options) {
  const double seconds = static_cast<double>(s.elapsed.count()) / 1000.0;
  char time[32];
  std::snprintf(time, sizeof time, "%.1f s", seconds);
  std::vector<std::pair<std::string, std::string>> fields{{"target", target.description}};
  if (options.dry_run) {
    fields.emplace_back("would copy", std::to_string(s.would_copy) + " objects, " +
                                          human_bytes(s.bytes_would_copy));
  } else {
    fields.emplace_back("copied", std::to_string(s.copied) + " objects, " +
                                      human_bytes(s.bytes_copied) + " (verified by SHA-256)");
  }
  fields.emplace_back("already there", std::to_string(s.skipped) + " objects, " +
                                           human_bytes(s.bytes_skipped));
  fields.emplace_back("failed", std::to_string(s.failed) + " objects");
  if (!options.dry_run) fields.emplace_back("bytes written", human_bytes(s.bytes_written));
  fields.emplace_back("time", time);
  print_fields(out, fields);
  if (!s.failures.empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& f : s.failures) rows.push_back({f.source.to_string(), f.error.to_string()});
    out << '\n';
    print_table(out, {"object", "error"}, rows);
  }
  if (s.aborted) out << "\nstopped early: " << s.aborted->to_string() << '\n';
  out << '\n';
  if (options.dry_run) {
    out << "Dry run: nothing was written. Run without --dry-run to copy.\n";
  } else if (s.complete()) {
    out << "Every object is at the target and verified. Switch STORAGE_PROVIDER (and its "
           "settings) to the target in the .env and restart Stowage.\n";
  } else {
    out << "Some objects were not copied. Run the same command again: verified objects are "
           "skipped, the rest is retried.\n";
  }
}

/// How many of the objects a dry run would copy are named (text and JSON); the counts cover all.
constexpr std::size_t kPlanShown = 1000;
constexpr std::size_t kPlanPrinted = 20;

/// The objects a dry run would copy; filled from the worker threads.
class Plan {
 public:
  void add(const store::ObjectPath& path, std::uint64_t size) {
    std::lock_guard lock(mutex_);
    if (objects_.size() < kPlanShown) objects_.emplace_back(path.to_string(), size);
  }
  boost::json::array json() const {
    std::lock_guard lock(mutex_);
    boost::json::array out;
    for (const auto& [path, size] : objects_) out.push_back({{"path", path}, {"size", size}});
    return out;
  }
  void print(std::ostream& out, std::uint64_t total) const {
    std::lock_guard lock(mutex_);
    if (objects_.empty()) return;
    out << "\nWould copy:\n";
    for (std::size_t i = 0; i < objects_.size() && i < kPlanPrinted; ++i) {
      out << "  " << objects_[i].first << " (" << human_bytes(objects_[i].second) << ")\n";
    }
    if (total > kPlanPrinted) out << "  ... and " << total - kPlanPrinted << " more (--json lists "
                                  << kPlanShown << ")\n";
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::uint64_t>> objects_;
};

}  // namespace

int run_migrate_storage(config::Config config, const MigrateStorageOptions& options,
                        std::ostream& out, std::ostream& err) {
  if (options.concurrency == 0) return fail(err, "--concurrency must be at least 1", kExitUsage);
  if (auto resolved = resolve_instance_bucket_prefix(config); !resolved) {
    return fail(err, resolved.error().message, exit_code_for(resolved.error()));
  }
  // One storage migration of the instance at a time, wherever it runs (a lease in the
  // catalog); a dry run changes nothing and needs none.
  std::unique_ptr<catalog::Catalog> catalog;
  std::unique_ptr<HeldLease> lease;
  if (!options.dry_run) {
    auto opened =
        catalog::Catalog::open(config.database_url.reveal(), config.data_path / "stowage.db");
    if (!opened) return fail(err, opened.error().message, exit_code_for(opened.error()));
    catalog = std::move(*opened);
    auto taken = HeldLease::take(*catalog, "migrate storage", options.lease_ttl);
    if (!taken) {
      const Error& e = taken.error();
      return fail(err, e.message, e.code == ErrorCode::PreconditionFailed ? kExitBusy : kExitFailed);
    }
    lease = std::move(*taken);
  }
  auto source = store::open_configured_store(config);
  if (!source) return fail(err, "source: " + source.error().message, exit_code_for(source.error()));
  auto target = open_target(config, options.to);
  if (!target) {
    return fail(err, "target: " + target.error().message, exit_code_for(target.error()));
  }
  const std::vector<std::string> buckets{config.public_bucket(), config.private_bucket()};
  for (const auto& bucket : buckets) {
    if (auto bad = check_bucket(**source, bucket, "source")) {
      return fail(err, bad->message, bad->exit_code);
    }
    if (auto bad = check_bucket(*target->store, bucket, "target")) {
      return fail(err, bad->message + " (at " + target->description + ")", bad->exit_code);
    }
  }
  auto journal = migration::Journal::open(config.data_path / "migrations" / "storage.db");
  if (!journal) return fail(err, journal.error().message, exit_code_for(journal.error()));

  migration::RunOptions run;
  run.concurrency = options.concurrency;
  run.copy.dry_run = options.dry_run;
  run.copy.journal = journal->get();
  run.copy.journal_scope = target->scope;
  const http::RetryPolicy list_retry = run.copy.retry;
  run.count = [&] { return migration::count_objects(**source, buckets, list_retry); };
  const bool tty = ::isatty(STDERR_FILENO) == 1 && &err == &std::cerr;
  ProgressPrinter printer(err, tty);
  run.on_progress = [&](const migration::Progress& p) { printer(p); };
  run.progress_interval = kBarInterval;

  if (!options.json) {
    out << (options.dry_run ? "Comparing " : "Copying ") << buckets[0] << " and " << buckets[1]
        << " from " << (*source)->name() << " to " << target->description << '\n';
  }
  // A dry run's plan: the objects it would copy (the first kPlanShown of them, in completion
  // order; the counts say how many in all).
  Plan plan;
  auto pager = migration::bucket_pager(**source, *target->store, buckets, list_retry);
  if (options.dry_run) {
    pager = [&plan, inner = std::move(pager)]() -> Result<std::vector<migration::CopyTask>> {
      STOWAGE_ASSIGN_OR_RETURN(auto tasks, inner());
      for (auto& task : tasks) {
        task.on_done = [&plan, path = task.source_info.path,
                        size = task.source_info.size](const Result<migration::CopyResult>& r) {
          if (r && r->outcome == migration::CopyOutcome::WouldCopy) plan.add(path, size);
        };
      }
      return tasks;
    };
  }
  const migration::Summary summary = migration::run_copies(pager, run);
  printer.finish();
  if (options.json) {
    auto report = summary_json(summary, *target, options);
    if (options.dry_run) report["would_copy_objects"] = plan.json();
    out << boost::json::serialize(report) << '\n';
  } else {
    print_summary(out, summary, *target, options);
    if (options.dry_run) plan.print(out, summary.would_copy);
  }
  return summary.complete() ? kExitOk : kExitFailed;
}

}  // namespace stowage::cli
