// SPDX-License-Identifier: Apache-2.0
// `stowage migrate project`: a thin layer over service::migrate_project. It opens what the
// server opens (catalog, store, remote_links.yml), shows progress, prints the report and maps it
// to an exit code.
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/instance.hpp"
#include "stowage/migration/journal.hpp"
#include "cli/lease.hpp"
#include "stowage/service/project_migration.hpp"
#include "stowage/service/project_migration_json.hpp"

namespace stowage::cli {
namespace {

namespace json = boost::json;

/// How often a line of progress is printed when stderr is not a terminal.
constexpr std::chrono::seconds kPlainProgressEvery{5};

std::string human_duration(std::chrono::seconds s) {
  const auto n = s.count();
  std::ostringstream out;
  if (n >= 3600) out << n / 3600 << 'h';
  if (n >= 60) out << (n % 3600) / 60 << 'm';
  out << n % 60 << 's';
  return out.str();
}

std::string progress_line(const migration::Progress& p) {
  std::ostringstream line;
  line << "items " << p.objects_done;
  if (p.totals) line << '/' << p.totals->objects;
  line << "  " << human_bytes(p.bytes_done);
  if (p.totals) line << '/' << human_bytes(p.totals->bytes);
  line << "  " << human_bytes(p.bytes_per_second) << "/s";
  if (p.eta) line << "  ETA " << human_duration(*p.eta);
  if (p.failed > 0) line << "  failed " << p.failed;
  return line.str();
}

void print_summary(std::ostream& out, const service::ProjectMigrationReport& r, bool dry_run,
                   bool helper) {
  const auto rows = [](const std::vector<service::ItemProblem>& problems) {
    std::vector<std::vector<std::string>> out;
    for (const auto& p : problems) {
      out.push_back({std::to_string(p.item_id), p.name, p.target, p.error.message});
    }
    return out;
  };
  if (!r.failed.empty()) {
    out << "Failed (not switched):\n";
    print_table(out, {"item", "name", "target", "error"}, rows(r.failed));
  }
  if (!r.changed.empty()) {
    out << "Changed while migrating (copied, not switched):\n";
    print_table(out, {"item", "name", "target", "reason"}, rows(r.changed));
  }
  std::vector<std::pair<std::string, std::string>> fields = {
      {"project", std::to_string(r.project_id) + " (" + r.project_type + ")"},
      {"target", r.target},
      {"items to move", std::to_string(r.selected) + " (" + human_bytes(r.selected_bytes) + ")"},
  };
  if (dry_run) {
    fields.push_back({"would copy", std::to_string(r.copies.would_copy) + " (" +
                                        human_bytes(r.copies.bytes_would_copy) + ")"});
    fields.push_back({"already there", std::to_string(r.copies.skipped)});
  } else {
    fields.push_back({"copied", std::to_string(r.copies.copied) + " (" +
                                    human_bytes(r.copies.bytes_copied) + ")"});
    fields.push_back({"already there", std::to_string(r.copies.skipped)});
    if (r.copied_by_helpers > 0) {
      fields.push_back({"copied by helpers", std::to_string(r.copied_by_helpers)});
    }
    if (!helper) fields.push_back({"switched", std::to_string(r.switched)});
  }
  fields.push_back({"failed", std::to_string(r.failed.size())});
  fields.push_back({"changed meanwhile", std::to_string(r.changed.size())});
  fields.push_back({"elapsed", human_duration(std::chrono::duration_cast<std::chrono::seconds>(
                                   r.elapsed))});
  print_fields(out, fields);
  if (helper) out << "The run this helped switches the links once every item is copied.\n";
  if (r.switch_withheld) {
    out << "Nothing was switched because some items failed; fix the cause and rerun (copies "
           "already made are kept and not repeated), or rerun with --switch-partial.\n";
  }
  if (r.aborted) out << "Stopped early: " << r.aborted->message << "; rerun to finish.\n";
}

}  // namespace

int run_migrate_project(const config::Config& config, const MigrateProjectOptions& cli,
                        std::ostream& out, std::ostream& err) {
  service::ProjectMigrationOptions options;
  options.project_id = cli.project_id;
  options.nested = cli.nested;
  options.concurrency = cli.concurrency;
  options.dry_run = cli.dry_run;
  options.switch_partial = cli.switch_partial;
  options.switch_batch = cli.batch;
  if (cli.to == "local") {
    if (cli.from == "local") {
      return fail(err, "--to local takes linked items back: --from local makes no sense",
                  kExitUsage);
    }
    options.from_links = cli.from.empty() || cli.from == "links" ? "" : cli.from;
  } else {
    options.to = cli.to;
    if (!cli.from.empty() && cli.from != "local") {
      options.from_links = cli.from == "links" ? "" : cli.from;
    }
  }
  if ((cli.share || cli.join) && cli.dry_run) {
    return fail(err, "--share and --join copy: a dry run shares nothing", kExitUsage);
  }
  if (cli.concurrency == 0 || cli.batch == 0) {
    return fail(err, "--concurrency and --batch must be at least 1", kExitUsage);
  }

  auto instance = open_instance(config);
  if (!instance) {
    return fail(err, instance.error().message, exit_code_for(instance.error()));
  }
  service::Service& service = *instance->service;
  // One run per project at a time, wherever it runs (a lease in the catalog); a dry run
  // changes nothing and needs none.
  // A helper (--join) takes none: it works under the lease of the run it helps.
  std::unique_ptr<HeldLease> lease;
  if (!cli.dry_run && !cli.join) {
    auto taken = HeldLease::take(*instance->catalog,
                                 service::project_migration_run(cli.project_id), cli.lease_ttl);
    if (!taken) {
      const Error& e = taken.error();
      return fail(err, e.message, e.code == ErrorCode::PreconditionFailed ? kExitBusy : kExitFailed);
    }
    lease = std::move(*taken);
  }

  auto journal = migration::Journal::open(config.data_path / "migrations" / "projects.db");
  if (!journal) return fail(err, journal.error().message, kExitFailed);
  options.journal = journal->get();

  const bool tty = ::isatty(STDERR_FILENO) == 1 && !cli.json;
  auto last_plain = std::chrono::steady_clock::now();
  options.on_progress = [&](const migration::Progress& p) {
    if (tty) {
      err << '\r' << progress_line(p) << "\033[K" << std::flush;
    } else if (std::chrono::steady_clock::now() - last_plain >= kPlainProgressEvery) {
      last_plain = std::chrono::steady_clock::now();
      err << "progress: " << progress_line(p) << '\n';
    }
  };

  service::SharedWork share;
  share.holder = this_process();
  share.hold = cli.hold;
  if (cli.share) options.share = share;
  if (cli.join) {
    err << "stowage: joining the --share run of project " << cli.project_id << " (waiting up to "
        << human_duration(std::chrono::duration_cast<std::chrono::seconds>(cli.join_wait))
        << " for it to start)" << std::endl;
  }
  auto report = cli.join ? service::join_project_migration(service, cli.project_id, options,
                                                           share, cli.join_wait)
                         : service::migrate_project(service, options);
  if (tty) err << '\n';
  if (!report) {
    const Error& e = report.error();
    const bool usage = e.code == ErrorCode::NotFound || e.code == ErrorCode::PermissionDenied ||
                       exit_code_for(e) == kExitUsage;
    return fail(err, e.message, usage ? kExitUsage : kExitFailed);
  }
  if (cli.json) {
    out << json::serialize(service::project_migration_report_json(*report, cli.dry_run)) << '\n';
  } else {
    print_summary(out, *report, cli.dry_run, cli.join);
  }
  return report->complete() ? kExitOk : kExitFailed;
}

}  // namespace stowage::cli
