// SPDX-License-Identifier: Apache-2.0
#include "stowage/service/instance_check.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "stowage/store/registry.hpp"

namespace stowage::service {
namespace {

namespace fs = std::filesystem;

/// Creates and removes a temporary file in `dir`: the one test of writability that also catches
/// read-only mounts and full quotas, which access(2) does not.
std::optional<std::string> probe_writable(const fs::path& dir) {
  std::string name = (dir / ".stowage-check-XXXXXX").string();
  const int fd = ::mkstemp(name.data());
  if (fd < 0) return std::string(std::strerror(errno));
  ::close(fd);
  ::unlink(name.c_str());
  return std::nullopt;
}

}  // namespace

Check check_directory(std::string name, const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec))
      return {std::move(name), false, dir.string() + ": not a directory"};
    if (auto error = probe_writable(dir)) {
      return {std::move(name), false, dir.string() + ": not writable: " + *error};
    }
    return {std::move(name), true, dir.string() + ": exists, writable"};
  }
  fs::path ancestor = dir.parent_path();
  while (!ancestor.empty() && !fs::exists(ancestor, ec) && ancestor != ancestor.root_path()) {
    ancestor = ancestor.parent_path();
  }
  if (!fs::is_directory(ancestor, ec)) {
    return {std::move(name), false,
            dir.string() + ": cannot be created (" + ancestor.string() + " is not a directory)"};
  }
  if (auto error = probe_writable(ancestor)) {
    return {std::move(name), false,
            dir.string() + ": cannot be created (" + ancestor.string() + ": " + *error + ")"};
  }
  return {std::move(name), true, dir.string() + ": missing, will be created"};
}

Check probe_bucket(std::string name, store::ObjectStore& store, const std::string& bucket) {
  store::ListOptions options;
  options.max_keys = 1;
  auto page = store.list({bucket, ""}, options);
  if (!page) return {std::move(name), false, page.error().message};
  return {std::move(name), true, std::string(store.name()) + ": reachable, listing allowed"};
}

std::vector<Check> check_storage(const config::Config& config) {
  std::vector<Check> checks;
  if (config.provider != config::Provider::Http) {
    // A remote provider: reach each of the instance's buckets with one listing call, the
    // cheapest request that needs the endpoint, the credentials and the bucket all to be right.
    const std::string provider(config::to_string(config.provider));
    if (config.bucket_prefix.empty()) {
      checks.push_back(
          {"bucket prefix", false, "set STORAGE_BUCKET_PREFIX to the prefix of your two buckets"});
      return checks;
    }
    auto store = store::open_configured_store(config);
    if (!store) {
      checks.push_back({"storage", false, provider + ": " + store.error().message});
      return checks;
    }
    for (const std::string& bucket : {config.public_bucket(), config.private_bucket()}) {
      checks.push_back(probe_bucket("bucket " + bucket, **store, bucket));
    }
    return checks;
  }
  checks.push_back(check_directory("data path", config.data_path));
  std::optional<std::string> prefix;
  if (!config.bucket_prefix.empty()) {
    prefix = config.bucket_prefix;
    checks.push_back({"bucket prefix", true, *prefix + " (STORAGE_BUCKET_PREFIX)"});
  } else if (auto saved = config::read_saved_bucket_prefix(config); !saved) {
    checks.push_back({"bucket prefix", false, saved.error().message});
  } else if (*saved) {
    prefix = **saved;
    checks.push_back(
        {"bucket prefix", true,
         *prefix + " (saved in " + (config.data_path / "bucket-prefix").string() + ")"});
  } else {
    checks.push_back({"bucket prefix", true, "not generated yet; `stowage serve` will"});
  }
  if (prefix) {
    for (const std::string& bucket : {*prefix + "-public", *prefix + "-private"}) {
      checks.push_back(check_directory("bucket " + bucket, config.storage_root() / bucket));
    }
  } else {
    checks.push_back(check_directory("storage root", config.storage_root()));
  }
  return checks;
}

std::vector<Check> check_connections(const links::RemoteLinks& links) {
  std::vector<Check> checks;
  for (const auto& connection : links.connections) {
    auto store = store::open_link_store(connection);
    for (const auto& bucket : connection.buckets) {
      const std::string name =
          "link " + connection.name + " " + connection.provider + "://" + bucket;
      if (!store) {
        checks.push_back({name, false, store.error().message});
      } else {
        checks.push_back(probe_bucket(name, **store, bucket));
      }
    }
  }
  return checks;
}

std::vector<Check> check_remote_links(const config::Config& config) {
  std::vector<Check> checks;
  std::error_code ec;
  if (!fs::exists(config.remote_links_path, ec)) {
    checks.push_back(
        {"remote links", true, config.remote_links_path.string() + ": none (optional)"});
    return checks;
  }
  auto links = links::RemoteLinks::load(config.remote_links_path, config::process_environment());
  if (!links) {
    checks.push_back({"remote links", false, links.error().message});
    return checks;
  }
  checks.push_back({"remote links", true,
                    config.remote_links_path.string() + ": " +
                        std::to_string(links->connections.size()) + " connection(s)"});
  auto connections = check_connections(*links);
  checks.insert(checks.end(), connections.begin(), connections.end());
  return checks;
}

}  // namespace stowage::service
