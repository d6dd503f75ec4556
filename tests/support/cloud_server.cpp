// SPDX-License-Identifier: Apache-2.0
#include "support/cloud_server.hpp"

#include <cstdlib>
#include <filesystem>

#include "stowage/store/registry.hpp"

namespace stowage::testing {

std::optional<CloudServer> cloud_server(const char* env_var, const std::string& provider) {
  const char* env_file = std::getenv(env_var);
  if (env_file == nullptr || *env_file == '\0') return std::nullopt;
  namespace fs = std::filesystem;
  config::LoadOptions load;
  load.env_file = env_file;
  load.cwd = fs::temp_directory_path();
  load.environment = {{"DATA_PATH", (fs::temp_directory_path() / "stowage-cloud-tests").string()}};
  CloudServer out;
  out.config = config::load(load).value();
  config::resolve_bucket_prefix(out.config).value();
  out.store = store::open_configured_store(out.config).value();
  links::Connection& c = out.connection;
  c.name = "cloud";
  c.provider = provider;
  c.endpoint = out.config.storage_endpoint;
  if (out.config.storage_port) c.endpoint += ":" + std::to_string(*out.config.storage_port);
  c.access_key = out.config.storage_access_key;
  c.secret_key = out.config.storage_secret_key;
  c.credentials_path = out.config.storage_credentials_path;
  c.region = out.config.storage_region;
  c.force_path_style = true;
  c.buckets = {out.config.public_bucket()};
  return out;
}

}  // namespace stowage::testing
