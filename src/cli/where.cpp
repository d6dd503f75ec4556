// SPDX-License-Identifier: Apache-2.0
#include <system_error>

#include "cli/commands.hpp"
#include "stowage/catalog/catalog.hpp"

namespace stowage::cli {
namespace {

std::string describe_env_file(const config::Config& config) {
  if (config.env_file.empty()) return "none (defaults)";
  std::string origin = config.env_file_origin;
  if (origin == "--env") {
    origin = "from --env";
  } else if (origin == "STOWAGE_ENV_FILE") {
    origin = "from $STOWAGE_ENV_FILE";
  } else if (origin == "./.env") {
    origin = "./.env in the working directory";
  }
  return config.env_file.string() + " (" + origin + ")";
}

std::string listen_address(const config::Config& config) {
  const bool ipv6 = config.listen_host.find(':') != std::string::npos;
  return (ipv6 ? "[" + config.listen_host + "]" : config.listen_host) + ":" +
         std::to_string(config.listen_port);
}

std::string describe_provider(const config::Config& config) {
  std::string text(config::to_string(config.provider));
  if (config.provider == config::Provider::Http) return text + " (local disk)";
  if (!config.storage_endpoint.empty()) {
    text += " (endpoint " + config.storage_endpoint;
    if (config.storage_port) text += ", port " + std::to_string(*config.storage_port);
    text += ")";
  }
  return text;
}

}  // namespace

int run_where(const config::Config& config, std::ostream& out, std::ostream& err) {
  int exit_code = kExitOk;
  std::string buckets;
  const auto names = [](const config::Config& c) {
    return c.public_bucket() + ", " + c.private_bucket();
  };
  if (!config.bucket_prefix.empty()) {
    buckets = names(config) + " (STORAGE_BUCKET_PREFIX)";
  } else if (catalog::is_postgres_url(config.database_url.reveal())) {
    buckets = "named by the prefix kept in the catalog, the same for every server over it";
  } else if (auto saved = config::read_saved_bucket_prefix(config); !saved) {
    exit_code = fail(err, saved.error().message, kExitFailed);
    buckets = "unknown (see the error above)";
  } else if (*saved) {
    config::Config with_prefix = config;
    with_prefix.bucket_prefix = **saved;
    buckets = names(with_prefix) + " (prefix saved in " +
              (config.data_path / "bucket-prefix").string() + ")";
  } else {
    buckets = "not named yet: `stowage serve` generates a prefix and saves it in " +
              (config.data_path / "bucket-prefix").string();
  }

  std::string database;
  if (const auto sqlite = config.sqlite_path(); !sqlite.empty()) {
    database = "sqlite " + sqlite.string();
  } else {
    database = "postgresql " + config::redact_database_url(config.database_url.reveal());
  }

  std::error_code ec;
  const bool links_exist = std::filesystem::exists(config.remote_links_path, ec);
  std::string storage_root = config.storage_root().string();
  if (config.provider != config::Provider::Http) storage_root += " (unused by this provider)";

  print_fields(out, {
                        {"env file", describe_env_file(config)},
                        {"data path", config.data_path.string()},
                        {"storage root", storage_root},
                        {"buckets", buckets},
                        {"provider", describe_provider(config)},
                        {"database", database},
                        {"remote links", config.remote_links_path.string() +
                                             (links_exist ? " (exists)" : " (missing)")},
                        {"listen", listen_address(config)},
                    });
  return exit_code;
}

}  // namespace stowage::cli
