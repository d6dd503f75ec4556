// SPDX-License-Identifier: Apache-2.0
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "cli/commands.hpp"

namespace stowage::cli {
namespace {

namespace fs = std::filesystem;

/// Opens the catalog named by the configuration, creating its folder when needed.
Result<std::unique_ptr<catalog::Catalog>> open_catalog(const config::Config& config) {
  const fs::path file = config.sqlite_path();
  if (file.empty()) return catalog::Catalog::open_postgres(config.database_url.reveal());
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) {
    return make_error(ErrorCode::IoError,
                      "create " + file.parent_path().string() + ": " + ec.message());
  }
  auto opened = catalog::Catalog::open_sqlite(file);
  if (!opened) {
    Error error = std::move(opened).error();
    error.message = "open catalog " + file.string() + ": " + error.message;
    return error;
  }
  return opened;
}

/// Saves admin's first token as `serve` does: DATA_PATH/admin-token, mode 0600, replaced
/// atomically (a token left by an earlier, deleted catalog is stale anyway).
Status write_admin_token(const fs::path& data_path, const std::string& secret) {
  const fs::path file = data_path / "admin-token";
  const fs::path temp = data_path / ".admin-token.tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return make_error(ErrorCode::IoError, "create " + temp.string() + ": " + std::strerror(errno));
  }
  const std::string text = secret + "\n";
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  const int write_errno = errno;
  ::close(fd);
  if (!written || ::rename(temp.c_str(), file.c_str()) != 0) {
    const int err = written ? errno : write_errno;
    ::unlink(temp.c_str());
    return make_error(ErrorCode::IoError, "write " + file.string() + ": " + std::strerror(err));
  }
  return {};
}

}  // namespace

int run_token_create(const config::Config& config, const TokenCreateOptions& options,
                     std::ostream& out, std::ostream& err) {
  auto catalog = open_catalog(config);
  if (!catalog) return fail(err, catalog.error().message, exit_code_for(catalog.error()));

  auto bootstrapped = (*catalog)->bootstrap();
  if (!bootstrapped) {
    return fail(err, "bootstrap catalog: " + bootstrapped.error().message, kExitFailed);
  }
  if (*bootstrapped) {
    if (auto saved = write_admin_token(config.data_path, (*bootstrapped)->secret); !saved) {
      return fail(err, saved.error().message, kExitFailed);
    }
    err << "stowage: the catalog was empty: created user admin; its first token is in "
        << (config.data_path / "admin-token").string() << '\n';
  }

  auto user = (*catalog)->find_user(options.user);
  if (!user) {
    if (user.error().code == ErrorCode::NotFound) {
      return fail(err, "no user \"" + options.user + "\" in the catalog", kExitUsage);
    }
    return fail(err, "find user: " + user.error().message, kExitFailed);
  }
  auto issued = (*catalog)->create_token(user->id, options.name);
  if (!issued) return fail(err, "create token: " + issued.error().message, kExitFailed);
  out << issued->secret << '\n';
  return kExitOk;
}

int run_token_list(const config::Config& config, std::ostream& out, std::ostream& err) {
  auto catalog = open_catalog(config);
  if (!catalog) return fail(err, catalog.error().message, exit_code_for(catalog.error()));
  auto tokens = (*catalog)->list_tokens();
  if (!tokens) return fail(err, "list tokens: " + tokens.error().message, kExitFailed);
  std::vector<std::vector<std::string>> rows;
  for (const catalog::TokenInfo& token : *tokens) {
    rows.push_back({std::to_string(token.id), token.user_login, token.name, token.created_at,
                    token.last_used_at.value_or("never"), token.revoked ? "yes" : "no"});
  }
  print_table(out, {"id", "user", "name", "created", "last used", "revoked"}, rows);
  return kExitOk;
}

int run_token_revoke(const config::Config& config, catalog::Id id, std::ostream& out,
                     std::ostream& err) {
  auto catalog = open_catalog(config);
  if (!catalog) return fail(err, catalog.error().message, exit_code_for(catalog.error()));
  if (auto revoked = (*catalog)->revoke_token(id); !revoked) {
    if (revoked.error().code == ErrorCode::NotFound) {
      return fail(err, "no token with id " + std::to_string(id), kExitFailed);
    }
    return fail(err, "revoke token " + std::to_string(id) + ": " + revoked.error().message,
                kExitFailed);
  }
  out << "revoked token " << id << '\n';
  return kExitOk;
}

}  // namespace stowage::cli
