// SPDX-License-Identifier: Apache-2.0
// Opening a catalog: SQLite or PostgreSQL by the DATABASE_URL, and the PostgreSQL pool.

#include <memory>

#include "stowage/catalog/catalog.hpp"
#include "stowage/catalog/pg_internal.hpp"
#include "stowage/catalog/sql_catalog.hpp"
#include "stowage/config/config.hpp"

namespace stowage::catalog {

bool is_postgres_url(std::string_view url) noexcept {
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) return true;
  // A libpq keyword string: "host=db dbname=stowage ...".
  return url.find("://") == std::string_view::npos && url.find('=') != std::string_view::npos &&
         !url.starts_with("sqlite:");
}

Result<int> probe_postgres(const std::string& conninfo) {
  const std::string where = config::redact_database_url(conninfo);
  auto conn = pg::Connection::open(conninfo);
  if (!conn) {
    Error error = std::move(conn).error();
    error.message = where + ": " + error.message;
    return error;
  }
  auto version = pg::schema_version(**conn);
  if (!version) {
    Error error = std::move(version).error();
    error.message = where + ": " + error.message;
    return error;
  }
  return *version;
}

Result<std::unique_ptr<sql::Pool>> open_postgres_pool(const std::string& conninfo) {
  const std::string where = config::redact_database_url(conninfo);
  auto first = pg::Connection::open(conninfo);
  if (!first) {
    Error error = std::move(first).error();
    error.message = "open catalog " + where + ": " + error.message;
    return error;
  }
  STOWAGE_TRY(pg::migrate(**first, where));
  auto pool = std::make_unique<sql::Pool>(
      [conninfo]() -> Result<std::unique_ptr<sql::Connection>> {
        STOWAGE_ASSIGN_OR_RETURN(auto conn, pg::Connection::open(conninfo));
        return std::unique_ptr<sql::Connection>(std::move(conn));
      },
      pg::kPoolSize, std::move(*first),
      [](sql::Connection& conn) { return pg::schema_version(static_cast<pg::Connection&>(conn)); });
  return pool;
}

Result<std::unique_ptr<Catalog>> Catalog::open_postgres(const std::string& conninfo) {
  STOWAGE_ASSIGN_OR_RETURN(auto pool, open_postgres_pool(conninfo));
  return make_sql_catalog(std::move(pool));
}

Result<std::unique_ptr<sql::Pool>> open_pool(const std::string& url) {
  if (url.starts_with("sqlite:")) {
    std::string_view path = std::string_view(url).substr(7);
    if (path.starts_with("///")) path.remove_prefix(2);
    if (path.empty()) return make_error(ErrorCode::InvalidArgument, "sqlite: the path is empty");
    return open_sqlite_pool(std::filesystem::path(path));
  }
  if (is_postgres_url(url)) return open_postgres_pool(url);
  return make_error(ErrorCode::InvalidArgument,
                    "not a database URL: " + config::redact_database_url(url) +
                        " (use sqlite:PATH or postgresql://user:password@host/db)");
}

Result<std::unique_ptr<Catalog>> Catalog::open(const std::string& url,
                                               const std::filesystem::path& default_file) {
  if (url.empty()) return open_sqlite(default_file);
  STOWAGE_ASSIGN_OR_RETURN(auto pool, open_pool(url));
  return make_sql_catalog(std::move(pool));
}

}  // namespace stowage::catalog
