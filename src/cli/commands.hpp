// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>

#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/catalog/catalog.hpp"
#include "stowage/config/config.hpp"

/// The `stowage` subcommands. Each takes what it needs, writes its output and returns the
/// process exit code; none throws for an expected failure.
namespace stowage::cli {

/// Exit codes of every subcommand (shared/design.md, "Processes and commands").
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  ///< the work failed (I/O, a refused request, ...)
inline constexpr int kExitUsage = 2;   ///< bad usage or bad configuration
inline constexpr int kExitBusy = 3;    ///< the same migration is running elsewhere (its lease)

/// Prints `stowage: <message>` on stderr; returns `exit_code` for a one-line `return`.
int fail(std::ostream& err, std::string_view message, int exit_code);

/// Exit code for a library error: InvalidArgument/Corrupt/Unsupported are configuration
/// problems (2), anything else is failed work (1).
int exit_code_for(const Error& error);

/// Loads the configuration (`--env FILE` when given, then the usual lookup) from the process
/// environment and working directory.
Result<config::Config> load_config(const std::optional<std::string>& env_file);

/// `stowage where`: where the configuration, data, buckets and database are. No secrets.
int run_where(const config::Config& config, std::ostream& out, std::ostream& err);

/// `stowage config check`: validates and probes the storage; prints a check/status/detail
/// table. 0 when every check passes, 1 otherwise.
int run_config_check(const config::Config& config, std::ostream& out, std::ostream& err);

/// Options of `stowage token create`.
struct TokenCreateOptions {
  std::string user = "admin";
  std::string name = "cli";
};

/// `stowage token create`: prints the new token's secret, and nothing else, on stdout. On an
/// empty catalog it first bootstraps (user admin, as `serve` does) and writes admin's first token
/// to DATA_PATH/admin-token (mode 0600). Unknown user: 2.
int run_token_create(const config::Config& config, const TokenCreateOptions& options,
                     std::ostream& out, std::ostream& err);
/// `stowage token list`: id / user / name / created / last used / revoked. No secrets.
int run_token_list(const config::Config& config, std::ostream& out, std::ostream& err);
/// `stowage token revoke ID`: 0, or 1 when there is no such token.
int run_token_revoke(const config::Config& config, catalog::Id id, std::ostream& out,
                     std::ostream& err);

/// Options of `stowage links import`.
struct LinksImportOptions {
  std::string file;
  catalog::Id dataset_id = 0;
  bool force_metadata = true;
};
/// `stowage links import FILE --dataset ID`: the Links plugin from the command line, acting as
/// user admin. Prints one row per link (added, exists, failed and why) and a summary; 0 when no
/// line failed, 1 otherwise.
int run_links_import(const config::Config& config, const LinksImportOptions& options,
                     std::ostream& out, std::ostream& err);

/// Options of `stowage migrate project` (see its --help in main.cpp).
struct MigrateProjectOptions {
  catalog::Id project_id = 0;
  std::string to;    ///< a link prefix, or "local"
  std::string from;  ///< "", "local", "links" or a link prefix
  bool nested = false;
  std::size_t concurrency = 10;
  std::size_t batch = 1000;
  bool dry_run = false;
  bool switch_partial = false;
  bool json = false;
  /// How long the run's lease lasts unless renewed (`--lease`): a crashed run's lease is taken
  /// over after it.
  std::chrono::milliseconds lease_ttl{std::chrono::seconds(60)};
  bool share = false;  ///< publish the copy work for helpers
  bool join = false;   ///< help the --share run of the project
  std::chrono::milliseconds join_wait{std::chrono::seconds(30)};
  std::chrono::milliseconds hold{std::chrono::minutes(5)};  ///< a claim's life
};
/// `stowage migrate project ID --to PREFIX|local`: moves a project's items between local storage
/// and links (service/project_migration.hpp), acting on the catalog directly. Progress on
/// stderr (a bar on a terminal), the summary or the --json report on stdout. 0 when every item
/// was moved and switched, 1 when some failed or changed meanwhile, 2 for bad usage or config.
int run_migrate_project(const config::Config& config, const MigrateProjectOptions& options,
                        std::ostream& out, std::ostream& err);

/// Options of `stowage migrate storage`.
struct MigrateStorageOptions {
  /// A .env file describing the target storage, or the name of a remote_links.yml connection.
  std::string to;
  bool dry_run = false;
  std::size_t concurrency = 8;
  bool json = false;
  std::chrono::milliseconds lease_ttl{std::chrono::seconds(60)};  ///< as for a project
};
/// `stowage migrate storage --to TARGET`: copies every object of the instance's two buckets
/// from the configured storage to the same buckets and keys at the target, verified by SHA-256
/// and journaled under DATA_PATH/migrations/ so that a rerun skips what is done. Never deletes
/// at the source. Progress on stderr (a bar on a terminal), the summary (or --json) on stdout.
/// 0 when every object is at the target and verified, 1 when some failed, 2 for bad usage or
/// configuration (e.g. a missing target bucket).
int run_migrate_storage(config::Config config, const MigrateStorageOptions& options,
                        std::ostream& out, std::ostream& err);

struct CatalogMigrateOptions {
  std::string from;  ///< a DATABASE_URL, e.g. sqlite:data/stowage.db
  std::string to;    ///< a DATABASE_URL, e.g. postgresql://...
};
/// `stowage catalog migrate --from URL --to URL`: copies the whole catalog (catalog_copy.hpp),
/// progress on stderr, a table of rows and verification per table on stdout. 0 when every
/// table is verified, 1 when one is not or the copy stopped (rerun to resume), 2 for bad usage.
int run_catalog_migrate(const CatalogMigrateOptions& options, std::ostream& out,
                        std::ostream& err);

/// Prints `rows` under `header` in aligned columns separated by two spaces, with a dashed rule
/// under the header.
void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);

/// "512 B", "3.2 MiB", "1.0 GiB": a size for people, in powers of 1024.
std::string human_bytes(std::uint64_t bytes);

/// Prints `label:  value` lines with the values aligned.
void print_fields(std::ostream& out,
                  const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace stowage::cli
