// SPDX-License-Identifier: Apache-2.0
// The `stowage` command: parses the command line, loads the configuration and runs one
// subcommand. The only place that catches exceptions.
#include <spdlog/cfg/env.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/storage_commands.hpp"
#include "server/serve.hpp"
#include "cli/instance.hpp"

#ifndef STOWAGE_VERSION
#define STOWAGE_VERSION "unknown"
#endif

namespace stowage::cli {
namespace {

constexpr std::string_view kEnvHelp =
    "The .env file to read (must exist). Without it: $STOWAGE_ENV_FILE, then ./.env, then "
    "defaults. Variables set in the process environment override the file's.";
constexpr std::string_view kTokenCreateHelp =
    "Create an API token and print it, and nothing else, on stdout. On an empty catalog this "
    "first bootstraps user admin as `stowage serve` does, writing admin's first token to "
    "DATA_PATH/admin-token (mode 0600). An unknown user exits with 2.";

constexpr std::string_view kMigrateStorageHelp =
    "Copy every object of the two buckets (<prefix>-public, <prefix>-private) from the storage in "
    "use to the same buckets and keys at the target: the docs' migration from local storage, "
    "and cloud to cloud. Objects stream with bounded memory, every copy is verified by SHA-256 "
    "read back from the target, and verified copies are journaled under DATA_PATH/migrations/, "
    "so a rerun (after a failure or a kill) skips them. Nothing is deleted. The target buckets "
    "must exist. Afterwards switch STORAGE_PROVIDER to the target and restart. Exits 0 when "
    "everything is copied and verified, 1 when objects failed (rerun to retry), 2 for bad usage "
    "or configuration.";
constexpr std::string_view kMigrateToHelp =
    "The target: a .env file with its STORAGE_PROVIDER, STORAGE_ENDPOINT, keys etc. (the .env you "
    "will switch to; a path, or a name ending in .env), the name of a connection in "
    "remote_links.yml (its provider, endpoint and credentials), or a link scheme such as s3:// "
    "(the connection that allows both buckets with it)";

constexpr std::string_view kLeaseHelp =
    "How long this run's lease (which refuses a second run of the same migration, here or on "
    "another server) lasts unless renewed; a run that died is taken over after it";

/// A duration option (`--lease 60s`) as milliseconds; at least one second.
Result<std::chrono::milliseconds> duration_option(std::string_view option,
                                                  const std::string& text) {
  auto seconds = config::parse_duration(text);
  if (!seconds) {
    return make_error(ErrorCode::InvalidArgument,
                      std::string(option) + ": " + seconds.error().message);
  }
  if (seconds->count() < 1) {
    return make_error(ErrorCode::InvalidArgument, std::string(option) + " must be at least 1s");
  }
  return std::chrono::milliseconds(*seconds);
}

constexpr std::string_view kMigrateProjectHelp =
    "Move a project's items between local storage and links: the docs' \"Migrating existing "
    "projects to Cloud Storage\", natively. With --to PREFIX, every item without a link is "
    "copied to PREFIX/<images|videos>/<project>/<dataset>/<name> (names escaped as one key "
    "segment), verified by SHA-256 (the stored bytes must match their blob's hash; the target is "
    "read back), and only once every item is copied are the links switched, in catalog "
    "transactions of --batch items, each guarded by the blob the item had when copied (an item "
    "changed meanwhile is left alone and reported). --to local does the reverse: linked items "
    "become content-addressed blobs again. --to PREFIX --from LINKPREFIX moves linked items "
    "from one cloud to another. Nothing is deleted. Safe to kill and rerun: switched items are "
    "not selected again and verified copies are journaled under DATA_PATH/migrations/. Exits 0 "
    "when every item is moved and switched, 1 when items failed (with failures nothing is "
    "switched unless --switch-partial) or changed meanwhile, 2 for bad usage or configuration. "
    "With --share, the copies are shared with helper runs (`stowage migrate project ID --join`, "
    "on this or other machines over the same catalog): each claims items from the catalog a few "
    "at a time; this run switches once every item is copied.";
constexpr std::string_view kMigrateProjectJoinHelp =
    "Help the --share run of this project: claim and copy its items (target and selection come "
    "from the catalog; this machine's remote_links.yml must resolve them) until none is left, "
    "then exit; the --share run switches. Waits up to --wait for the run to start";
constexpr std::string_view kMigrateProjectToHelp =
    "Where the bytes go: a link prefix that resolves through remote_links.yml "
    "(s3://bucket/dir, azure://container/dir, google://bucket/dir, fs://storage-id/dir), or "
    "'local' for the instance's own storage";
constexpr std::string_view kMigrateProjectFromHelp =
    "Which items move: 'local' (items without a link; the default with a link prefix), 'links' "
    "(every linked item; the default with --to local) or a link prefix such as s3://bucket/ "
    "(items whose link starts with it). Items already linked under --to are never moved";

int run(int argc, char** argv) {
  CLI::App app{
      "Stowage: a storage gateway for computer-vision datasets.\n"
      "Exit codes: 0 ok, 1 failed work, 2 bad usage or configuration.",
      "stowage"};
  app.fallthrough();  // `stowage where --env FILE` works as well as `stowage --env FILE where`
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("stowage ") + STOWAGE_VERSION);
  std::string env_file;
  app.add_option("--env", env_file, std::string(kEnvHelp))->type_name("FILE");

  CLI::App* serve = app.add_subcommand("serve", "Run the HTTP server until SIGINT or SIGTERM.");
  CLI::App* where = app.add_subcommand(
      "where", "Print the .env file in use, the data path, buckets, database and links file.");
  CLI::App* config = app.add_subcommand("config", "Inspect the configuration.");
  config->require_subcommand(1);
  CLI::App* check = config->add_subcommand(
      "check",
      "Validate the configuration and probe the storage; print a check/status/detail table. "
      "Exits 0 when every check passes, 1 otherwise, 2 on an invalid configuration.");
  CLI::App* token = app.add_subcommand("token", "Create, list and revoke API tokens.");
  token->require_subcommand(1);
  TokenCreateOptions create_options;
  CLI::App* create = token->add_subcommand("create", std::string(kTokenCreateHelp));
  create->add_option("--user", create_options.user, "Login of the token's owner")
      ->capture_default_str();
  create->add_option("--name", create_options.name, "A label for the token")->capture_default_str();
  CLI::App* list = token->add_subcommand("list", "List tokens (never their secrets).");
  catalog::Id revoke_id = 0;
  CLI::App* revoke = token->add_subcommand("revoke", "Revoke a token; exits 1 if there is none.");
  revoke->add_option("ID", revoke_id, "The token's id, as `token list` shows it")->required();
  CLI::App* links = app.add_subcommand("links", "The Links plugin: items from files of links.");
  links->require_subcommand(1);
  LinksImportOptions import_options;
  bool no_metadata = false;
  CLI::App* import = links->add_subcommand(
      "import",
      "Add every link of a text file (one per line; blank lines and # comments skipped) to a "
      "dataset, named after its file. A rerun adds nothing twice. Exits 1 if any line failed.");
  import->add_option("FILE", import_options.file, "The .txt file of links")->required();
  import->add_option("--dataset", import_options.dataset_id, "The dataset's id")->required();
  import->add_flag("--no-metadata", no_metadata,
                   "Do not read the objects for mime, size and dimensions");
  CLI::App* catalog_cmd = app.add_subcommand("catalog", "Act on the catalog database.");
  catalog_cmd->require_subcommand(1);
  CatalogMigrateOptions catalog_options;
  CLI::App* catalog_migrate = catalog_cmd->add_subcommand(
      "migrate",
      "Copy the whole catalog to another database (e.g. SQLite to PostgreSQL), verified by row "
      "counts and a SHA-256 per table; rerun to resume");
  catalog_migrate->add_option("--from", catalog_options.from, "Source DATABASE_URL (sqlite:PATH)")
      ->required();
  catalog_migrate
      ->add_option("--to", catalog_options.to, "Target DATABASE_URL (postgresql://...)")
      ->required();

  CLI::App* migrate = app.add_subcommand("migrate", "Move bytes between storages.");
  migrate->require_subcommand(1);
  MigrateStorageOptions storage_options;
  std::string storage_lease = "60s";
  CLI::App* migrate_storage = migrate->add_subcommand("storage", std::string(kMigrateStorageHelp));
  migrate_storage->add_option("--to", storage_options.to, std::string(kMigrateToHelp))
      ->required()
      ->type_name("ENV_FILE|CONNECTION");
  migrate_storage->add_flag("--dry-run", storage_options.dry_run,
                            "List and compare both sides; write nothing");
  migrate_storage
      ->add_option("--concurrency", storage_options.concurrency, "Objects copied at once")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  migrate_storage->add_option("--lease", storage_lease, std::string(kLeaseHelp))
      ->type_name("DURATION")
      ->capture_default_str();
  migrate_storage->add_flag("--json", storage_options.json,
                            "Print the summary as one JSON object on stdout");
  MigrateProjectOptions project_options;
  std::string project_lease = "60s";
  CLI::App* migrate_project = migrate->add_subcommand("project", std::string(kMigrateProjectHelp));
  migrate_project->add_option("ID", project_options.project_id, "The project's id")->required();
  CLI::Option* project_to =
      migrate_project->add_option("--to", project_options.to, std::string(kMigrateProjectToHelp))
          ->type_name("PREFIX|local");
  CLI::Option* project_share = migrate_project->add_flag(
      "--share", project_options.share,
      "Publish the copy work in the catalog for helpers (--join) to share");
  CLI::Option* project_join =
      migrate_project->add_flag("--join", project_options.join, std::string(kMigrateProjectJoinHelp));
  project_join->excludes(project_to)->excludes(project_share);
  std::string project_wait = "30s";
  migrate_project->add_option("--wait", project_wait, "With --join: how long to wait for the run")
      ->type_name("DURATION")
      ->capture_default_str();
  std::string project_hold = "5m";
  migrate_project
      ->add_option("--hold", project_hold,
                   "With --share or --join: how long claimed items stay this worker's; a worker "
                   "that dies gives its items back to the others after it")
      ->type_name("DURATION")
      ->capture_default_str();
  migrate_project->add_option("--from", project_options.from, std::string(kMigrateProjectFromHelp))
      ->type_name("local|links|PREFIX");
  migrate_project->add_flag("--nested", project_options.nested,
                            "Target keys follow the dataset tree: <project>/<top>/<child>/<name> "
                            "(dataset ids) instead of the docs' flat <project>/<dataset>/<name>");
  migrate_project
      ->add_option("--concurrency", project_options.concurrency, "Objects copied at once")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  migrate_project
      ->add_option("--batch", project_options.batch, "Items switched per catalog transaction")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  migrate_project->add_flag("--dry-run", project_options.dry_run,
                            "Plan: compare with the targets; copy and switch nothing");
  migrate_project->add_flag("--switch-partial", project_options.switch_partial,
                            "When some items fail, still switch the ones that were copied");
  migrate_project->add_option("--lease", project_lease, std::string(kLeaseHelp))
      ->type_name("DURATION")
      ->capture_default_str();
  migrate_project->add_flag("--json", project_options.json,
                            "Print the report (counts, failed and changed items) as JSON on stdout");
  StorageCommands storage_commands(app, *links);  // files, links sync, fsck, gc
  CLI::App* version = app.add_subcommand("version", "Print the version.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, the version or the usage error
    return code == 0 ? kExitOk : kExitUsage;
  }

  if (version->parsed()) {
    std::cout << "stowage " << STOWAGE_VERSION << '\n';
    return kExitOk;
  }

  // Needs no configuration: both databases are on the command line.
  if (catalog_migrate->parsed()) return run_catalog_migrate(catalog_options, std::cout, std::cerr);

  std::optional<std::string> env_option;
  if (app.count("--env") > 0) env_option = env_file;
  auto loaded = load_config(env_option);
  if (!loaded) return fail(std::cerr, loaded.error().message, kExitUsage);
  config::Config& cfg = *loaded;

  if (serve->parsed()) {
    if (auto resolved = resolve_instance_bucket_prefix(cfg); !resolved) {
      return fail(std::cerr, resolved.error().message, exit_code_for(resolved.error()));
    }
    return server::serve(cfg);
  }
  if (where->parsed()) return run_where(cfg, std::cout, std::cerr);
  if (check->parsed()) return run_config_check(cfg, std::cout, std::cerr);
  if (create->parsed()) return run_token_create(cfg, create_options, std::cout, std::cerr);
  if (list->parsed()) return run_token_list(cfg, std::cout, std::cerr);
  if (revoke->parsed()) return run_token_revoke(cfg, revoke_id, std::cout, std::cerr);
  if (import->parsed()) {
    import_options.force_metadata = !no_metadata;
    if (auto resolved = resolve_instance_bucket_prefix(cfg); !resolved) {
      return fail(std::cerr, resolved.error().message, exit_code_for(resolved.error()));
    }
    return run_links_import(cfg, import_options, std::cout, std::cerr);
  }
  if (migrate_storage->parsed()) {
    auto ttl = duration_option("--lease", storage_lease);
    if (!ttl) return fail(std::cerr, ttl.error().message, kExitUsage);
    storage_options.lease_ttl = *ttl;
    return run_migrate_storage(cfg, storage_options, std::cout, std::cerr);
  }
  if (migrate_project->parsed()) {
    auto ttl = duration_option("--lease", project_lease);
    if (!ttl) return fail(std::cerr, ttl.error().message, kExitUsage);
    project_options.lease_ttl = *ttl;
    if (project_options.to.empty() && !project_options.join) {
      return fail(std::cerr, "--to is required (or --join to help a --share run)", kExitUsage);
    }
    auto wait = duration_option("--wait", project_wait);
    auto hold = duration_option("--hold", project_hold);
    if (!wait || !hold) {
      return fail(std::cerr, (!wait ? wait : hold).error().message, kExitUsage);
    }
    project_options.join_wait = *wait;
    project_options.hold = *hold;
    if (auto resolved = resolve_instance_bucket_prefix(cfg); !resolved) {
      return fail(std::cerr, resolved.error().message, exit_code_for(resolved.error()));
    }
    return run_migrate_project(cfg, project_options, std::cout, std::cerr);
  }
  if (auto code = storage_commands.run(cfg)) return *code;
  return fail(std::cerr, "no subcommand (see --help)", kExitUsage);
}

}  // namespace
}  // namespace stowage::cli

int main(int argc, char** argv) {
  // SPDLOG_LEVEL=debug (or trace, warn...) sets how much is logged, as in every spdlog program.
  spdlog::cfg::load_env_levels();
  try {
    return stowage::cli::run(argc, argv);
  } catch (const stowage::ErrorException& e) {
    std::cerr << "stowage: " << e.error().message << '\n';
    return stowage::cli::kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "stowage: " << e.what() << '\n';
    return stowage::cli::kExitFailed;
  }
}
