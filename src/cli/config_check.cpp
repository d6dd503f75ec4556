// SPDX-License-Identifier: Apache-2.0
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "cli/commands.hpp"
#include "stowage/service/instance_check.hpp"
#include "stowage/catalog/catalog.hpp"

namespace stowage::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kOk = "ok";
constexpr std::string_view kFail = "FAIL";

using service::Check;
using service::check_directory;

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

  auto storage = service::check_storage(config);
  checks.insert(checks.end(), storage.begin(), storage.end());
  checks.push_back(check_database(config));
  auto links = service::check_remote_links(config);
  checks.insert(checks.end(), links.begin(), links.end());

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
