// SPDX-License-Identifier: Apache-2.0
#include <chrono>
#include <iostream>

#include "cli/commands.hpp"
#include "stowage/catalog/catalog_copy.hpp"
#include "stowage/config/config.hpp"

namespace stowage::cli {

namespace {

/// At most one progress line per table this often (and one when a table is done).
constexpr std::chrono::seconds kProgressEvery{1};

}  // namespace

int run_catalog_migrate(const CatalogMigrateOptions& options, std::ostream& out,
                        std::ostream& err) {
  if (options.from.empty() || options.to.empty()) {
    return fail(err, "catalog migrate needs --from and --to (DATABASE_URL forms)", kExitUsage);
  }
  if (options.from == options.to) return fail(err, "--from and --to are the same", kExitUsage);
  out << "Copying the catalog " << config::redact_database_url(options.from) << " to "
      << config::redact_database_url(options.to) << '\n';
  catalog::CopyOptions copy;
  auto last = std::chrono::steady_clock::now() - kProgressEvery;
  copy.on_progress = [&](const std::string& table, std::int64_t done, std::int64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last < kProgressEvery) return;
    last = now;
    err << "progress: " << table << " " << done << "/" << total << " rows\n";
  };
  auto report = catalog::copy_catalog(options.from, options.to, copy);
  if (!report) {
    const Error& e = report.error();
    const int code = e.code == ErrorCode::InvalidArgument ? kExitUsage : kExitFailed;
    return fail(err, e.message + (code == kExitFailed ? " (rerun to resume)" : ""), code);
  }
  std::vector<std::vector<std::string>> rows;
  for (const catalog::TableCopy& t : report->tables) {
    rows.push_back({t.table, std::to_string(t.source_rows), std::to_string(t.target_rows),
                    std::to_string(t.copied), t.verified() ? "yes" : "NO",
                    t.target_sha256.substr(0, 12)});
  }
  print_table(out, {"table", "source rows", "target rows", "copied now", "verified", "sha256"},
              rows);
  if (!report->verified()) {
    return fail(err,
                "the target differs from the source (rows in the target that the source lacks?); "
                "nothing was changed at the source",
                kExitFailed);
  }
  out << "Every table verified (row counts and SHA-256). Point DATABASE_URL at the target.\n";
  return kExitOk;
}

}  // namespace stowage::cli
