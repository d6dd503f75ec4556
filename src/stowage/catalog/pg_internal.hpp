// SPDX-License-Identifier: Apache-2.0
#pragma once

// Private to src/stowage/catalog: RAII over libpq (connections, parameterized statements,
// transactions, SQLSTATE translation) behind the engine interface of sql_internal.hpp, and the
// PostgreSQL schema migrations.

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "stowage/base/error.hpp"
#include "stowage/catalog/sql_internal.hpp"

namespace stowage::catalog::pg {

struct ConnCloser {
  void operator()(PGconn* conn) const noexcept { PQfinish(conn); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnCloser>;

struct ResultClearer {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultClearer>;

/// Translates a failed command into an Error whose message starts with `what`. By SQLSTATE:
/// 23505 (unique) AlreadyExists, 23503 (foreign key) NotFound, other integrity and data errors
/// InvalidArgument, 40001/40P01 (serialization failure, deadlock) a conflict (sql::is_conflict,
/// retryable), connection loss and server shutdown Unavailable (retryable). The message is the
/// server's primary message, which names constraints but never the values (no DETAIL).
Error to_error(const PGresult* result, PGconn* conn, std::string_view what);

/// `sql` with its `?` placeholders numbered `$1, $2, ...` (outside quotes), and their count.
std::pair<std::string, int> number_placeholders(std::string_view sql);

/// One libpq connection. Used by one thread at a time.
/// Write transactions are SERIALIZABLE: PostgreSQL then guarantees the same outcome as running
/// them one after the other (what SQLite's single writer gives), failing the loser of a race
/// with 40001 for the catalog to run it again. Read transactions are REPEATABLE READ READ ONLY:
/// one snapshot, never blocked, never failing with a conflict.
class Connection final : public sql::Connection {
 public:
  /// Connects with a libpq URL (postgres://, postgresql://) or keyword string (host=... dbname=).
  /// Unavailable when the server cannot be reached or refuses the login.
  static Result<std::unique_ptr<Connection>> open(const std::string& conninfo);

  /// Runs SQL without parameters (may hold several statements).
  Status exec(const char* sql, std::string_view what = "postgres");
  /// Runs one parameterized command and returns its result (rows or a command status).
  Result<ResultPtr> run(const std::string& numbered_sql, std::span<const char* const> params,
                        std::span<const int> lengths);

  PGconn* handle() const noexcept { return conn_.get(); }

  // sql::Connection
  sql::Dialect dialect() const noexcept override { return sql::Dialect::Postgres; }
  Result<sql::Stmt> prepare(std::string_view sql) override;
  std::int64_t changes() const noexcept override { return changes_; }
  Status begin_read() override;
  Status begin_write() override;
  Status commit() override;
  void rollback() noexcept override;
  bool broken() const noexcept override { return PQstatus(conn_.get()) != CONNECTION_OK; }

 private:
  explicit Connection(ConnPtr conn) : conn_(std::move(conn)) {}
  friend class Statement;

  /// Dynamic SQL (list queries) varies a little; past this many texts, statements are run
  /// unnamed (parsed and planned each time) instead of prepared.
  static constexpr std::size_t kMaxPrepared = 128;

  ConnPtr conn_;
  std::int64_t changes_ = 0;
  /// SQL text -> the name of its server-side prepared statement on this connection.
  std::unordered_map<std::string, std::string> prepared_;
};

/// Connections per catalog (per process). Several servers share one PostgreSQL, whose default
/// max_connections is 100.
constexpr std::size_t kPoolSize = 8;

/// One schema step, applied under the migration lock in its own transaction, after which
/// `stowage_schema` holds `version`. Steps are append-only: a released step is never edited.
struct Migration {
  int version;
  std::string_view sql;
};

/// The ordered migrations of this build.
std::span<const Migration> migrations();

/// Brings the database up to the last migration. Safe when several processes start at once:
/// each step runs under a transaction-scoped advisory lock, and the version is re-read under
/// it, so a step is applied once. A database newer than this build is refused (Unsupported).
/// `where` names the database in messages (the URL without its password).
Status migrate(Connection& conn, const std::string& where);

/// The last applied schema version (0 on an empty database).
Result<int> schema_version(Connection& conn);

}  // namespace stowage::catalog::pg
