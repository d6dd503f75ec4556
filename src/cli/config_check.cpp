// SPDX-License-Identifier: Apache-2.0
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "cli/commands.hpp"
#include "stowage/catalog/catalog.hpp"
#include "stowage/links/remote_links.hpp"
#include "stowage/store/registry.hpp"

namespace stowage::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kOk = "ok";
constexpr std::string_view kFail = "FAIL";

struct Check {
  std::string name;
  bool passed = false;
  std::string detail;
};

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

/// Whether `dir` is a writable directory, or could be created: its nearest existing ancestor is
/// a writable directory. Changes nothing that it does not undo.
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

/// Lists one key of `bucket`: ok, or the store's own words for what is wrong (unreachable
/// endpoint, wrong key, missing bucket, clock skew...).
Check probe_bucket(std::string name, store::ObjectStore& store, const std::string& bucket) {
  store::ListOptions options;
  options.max_keys = 1;
  auto page = store.list({bucket, ""}, options);
  if (!page) return {std::move(name), false, page.error().message};
  return {std::move(name), true, std::string(store.name()) + ": reachable, listing allowed"};
}

Check check_database(const config::Config& config) {
  const fs::path file = config.sqlite_path();
  if (file.empty()) {
    // PostgreSQL: connect (which checks the address, the login and the database) and read the
    // schema version, without migrating anything.
    const std::string where = config::redact_database_url(config.database_url.reveal());
    auto version = catalog::probe_postgres(config.database_url.reveal());
    if (!version) return {"database", false, version.error().message};
    return {"database", true,
            where + ": reachable, schema version " + std::to_string(*version)};
  }
  std::error_code ec;
  if (fs::exists(file, ec)) {
    if (!fs::is_regular_file(file, ec)) return {"database", false, file.string() + ": not a file"};
    if (::access(file.c_str(), R_OK | W_OK) != 0) {
      return {"database", false, file.string() + ": " + std::strerror(errno)};
    }
    return {"database", true, file.string() + ": exists, writable"};
  }
  Check parent = check_directory("database", file.parent_path());
  if (!parent.passed) return parent;
  return {"database", true, file.string() + ": missing, will be created"};
}

}  // namespace

int run_config_check(const config::Config& config, std::ostream& out, std::ostream& err) {
  std::vector<Check> checks;
  checks.push_back({"configuration", true,
                    config.env_file.empty() ? std::string("no .env file, defaults")
                                            : config.env_file.string() + " is valid"});

  if (config.provider != config::Provider::Http) {
    // A remote provider: reach each of the instance's buckets with one listing call, the
    // cheapest request that needs the endpoint, the credentials and the bucket all to be right.
    const std::string provider(config::to_string(config.provider));
    if (config.bucket_prefix.empty()) {
      checks.push_back(
          {"bucket prefix", false, "set STORAGE_BUCKET_PREFIX to the prefix of your two buckets"});
    } else {
      auto store = store::open_configured_store(config);
      if (!store) {
        checks.push_back({"storage", false, provider + ": " + store.error().message});
      } else {
        for (const std::string& bucket : {config.public_bucket(), config.private_bucket()}) {
          checks.push_back(probe_bucket("bucket " + bucket, **store, bucket));
        }
      }
    }
  } else {
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
  }
  checks.push_back(check_database(config));
  std::error_code ec;
  if (!fs::exists(config.remote_links_path, ec)) {
    checks.push_back(
        {"remote links", true, config.remote_links_path.string() + ": none (optional)"});
  } else if (auto links =
                 links::RemoteLinks::load(config.remote_links_path, config::process_environment());
             !links) {
    checks.push_back({"remote links", false, links.error().message});
  } else {
    checks.push_back({"remote links", true,
                      config.remote_links_path.string() + ": " +
                          std::to_string(links->connections.size()) + " connection(s)"});
    // Every bucket of every connection, as links will reach it.
    for (const auto& connection : links->connections) {
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
  }

  std::vector<std::vector<std::string>> rows;
  bool all_passed = true;
  for (const Check& check : checks) {
    all_passed = all_passed && check.passed;
    rows.push_back({check.name, std::string(check.passed ? kOk : kFail), check.detail});
  }
  print_table(out, {"check", "status", "detail"}, rows);
  if (!all_passed) return fail(err, "some checks failed", kExitFailed);
  return kExitOk;
}

}  // namespace stowage::cli
