// SPDX-License-Identifier: Apache-2.0
// The PostgreSQL that scripts/test-servers/postgres.sh started, as the tests reach it.
#pragma once

#include <string>

#include "stowage/base/error.hpp"

namespace stowage::testing {

/// POSTGRES_URL (postgresql://user:password@127.0.0.1:PORT, no database) from the .env file
/// that STOWAGE_TEST_POSTGRES_ENV or <STOWAGE_TEST_SERVERS_DIR>/postgres.env names; empty when
/// there is none. (TestServer puts its catalog there when STOWAGE_TEST_CATALOG_ENV names that
/// file: the API suite on PostgreSQL.)
std::string postgres_server_url(const char* env_var = "STOWAGE_TEST_POSTGRES_ENV");

/// True when CI=true: a missing test server is then a failure, not a skip.
bool running_in_ci();

/// A database of its own for one test on the test server, dropped (closing whatever still
/// uses it) when this goes.
class ScratchDatabase {
 public:
  /// Creates a database with a fresh name on the server `server_url` names.
  static Result<ScratchDatabase> create(const std::string& server_url);

  ScratchDatabase(ScratchDatabase&& other) noexcept;
  ScratchDatabase& operator=(ScratchDatabase&&) = delete;
  ~ScratchDatabase();

  /// The database's URL, for DATABASE_URL or Catalog::open_postgres.
  const std::string& url() const noexcept { return url_; }
  const std::string& name() const noexcept { return name_; }

  /// Runs SQL on the database (for tests that look under the catalog); returns the first
  /// column of the first row, or an empty string.
  Result<std::string> query(const std::string& sql) const;

 private:
  ScratchDatabase(std::string server, std::string name);
  std::string server_;
  std::string name_;
  std::string url_;
};

}  // namespace stowage::testing
