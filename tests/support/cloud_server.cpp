// SPDX-License-Identifier: Apache-2.0
#include "support/cloud_server.hpp"

#include <cctype>
#include <cstdlib>
#include <filesystem>

#include "stowage/store/registry.hpp"

namespace stowage::testing {

namespace fs = std::filesystem;

std::string test_server_env_file(const char* env_var) {
  if (const char* env = std::getenv(env_var); env != nullptr && *env != '\0') return env;
  const char* dir = std::getenv("STOWAGE_TEST_SERVERS_DIR");
  std::string name(env_var);
  constexpr std::string_view kPrefix = "STOWAGE_TEST_", kSuffix = "_ENV";
  if (dir == nullptr || !name.starts_with(kPrefix) || !name.ends_with(kSuffix)) return {};
  name = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const fs::path file = fs::path(dir) / (name + ".env");
  return fs::exists(file) ? file.string() : std::string();
}

std::optional<CloudServer> cloud_server(const char* env_var, const std::string& provider) {
  const std::string env_file = test_server_env_file(env_var);
  if (env_file.empty()) return std::nullopt;
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
