// SPDX-License-Identifier: Apache-2.0
#pragma once

// Private to src/stowage/catalog: RAII over the SQLite C API (connections, cached prepared
// statements, transactions) behind the engine interface of sql_internal.hpp, and the schema
// migrations.

#include <sqlite3.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/catalog/sql_internal.hpp"

namespace stowage::catalog::sqlite {

/// Translates a SQLite result code into an Error whose message starts with `what`. Unique and
/// primary-key clashes are AlreadyExists, foreign-key failures NotFound, CHECK and NOT NULL
/// failures InvalidArgument, BUSY/LOCKED Unavailable (retryable), CORRUPT/NOTADB Corrupt.
Error to_error(int rc, std::string_view what, sqlite3* db);

struct DbCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
  void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

using sql::Value;

/// A prepared statement in use. Either borrowed from its connection's cache (reset and its
/// bindings cleared when this handle goes) or owned (finalized when it goes). Not thread-safe:
/// it belongs to the thread that holds its connection.
class Stmt {
 public:
  Stmt(sqlite3_stmt* stmt, bool* in_use, StmtPtr owned) noexcept
      : stmt_(stmt), in_use_(in_use), owned_(std::move(owned)) {}
  Stmt(Stmt&& other) noexcept
      : stmt_(std::exchange(other.stmt_, nullptr)),
        in_use_(std::exchange(other.in_use_, nullptr)),
        owned_(std::move(other.owned_)) {}
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt();

  /// Binds a 1-based parameter. Errors only on a wrong index or out of memory.
  Status bind(int index, std::int64_t value);
  Status bind(int index, std::string_view value);
  Status bind(int index, const std::string& value) { return bind(index, std::string_view(value)); }
  Status bind(int index, std::nullptr_t);
  Status bind(int index, const Value& value);
  template <class T>
  Status bind(int index, const std::optional<T>& value) {
    return value ? bind(index, *value) : bind(index, nullptr);
  }
  /// Binds the arguments to parameters 1..N in order.
  template <class... A>
  Status bind_all(const A&... args) {
    int index = 0;
    Status status;
    ((status ? (status = bind(++index, args), 0) : 0), ...);
    return status;
  }

  /// Runs one step: true when a row is ready, false when done.
  Result<bool> step();
  /// Steps to the end, ignoring rows; for INSERT/UPDATE/DELETE.
  Status run();

  std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string text(int col) const;
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::optional<std::int64_t> opt_int64(int col) const {
    return is_null(col) ? std::nullopt : std::optional<std::int64_t>(int64(col));
  }
  std::optional<std::string> opt_text(int col) const {
    return is_null(col) ? std::nullopt : std::optional<std::string>(text(col));
  }
  sqlite3_stmt* handle() const noexcept { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
  bool* in_use_;  ///< the cache slot's flag, or nullptr when owned
  StmtPtr owned_;
};

/// One SQLite connection with its statement cache. Used by one thread at a time.
/// Write transactions are `BEGIN IMMEDIATE` under the catalog's writer mutex: writers of this
/// process queue on the mutex instead of polling SQLite's busy handler, and the write lock is
/// taken up front so a transaction never fails half-way with SQLITE_BUSY when it upgrades.
/// Read transactions are `BEGIN DEFERRED`: a consistent snapshot that never blocks in WAL.
class Connection final : public sql::Connection {
 public:
  /// Opens (creating) the database and sets the pragmas every connection needs: busy_timeout,
  /// WAL, foreign_keys=ON, synchronous=FULL. `writer` is the mutex of every connection to this
  /// file in this process; it must outlive the connection.
  static Result<std::unique_ptr<Connection>> open(const std::filesystem::path& file,
                                                  std::mutex* writer);

  /// A native prepared statement, from the cache when the same SQL text was prepared before and
  /// that statement is not in use right now.
  Result<Stmt> prepare_native(std::string_view sql);
  /// Runs SQL without parameters (may hold several statements).
  Status exec(const char* sql);

  sqlite3* handle() const noexcept { return db_.get(); }

  // sql::Connection
  sql::Dialect dialect() const noexcept override { return sql::Dialect::Sqlite; }
  Result<sql::Stmt> prepare(std::string_view sql) override;
  std::int64_t changes() const noexcept override { return sqlite3_changes64(db_.get()); }
  Status begin_read() override;
  Status begin_write() override;
  Status commit() override;
  void rollback() noexcept override;

 private:
  Connection(DbPtr db, std::mutex* writer) : db_(std::move(db)), writer_(writer) {}

  struct Cached {
    StmtPtr stmt;
    bool in_use = false;
  };
  /// Dynamic SQL (list queries) varies a little; past this many texts, statements are not kept.
  static constexpr std::size_t kMaxCachedStatements = 128;

  DbPtr db_;
  std::unordered_map<std::string, Cached> cache_;  // node-based: element addresses are stable
  std::mutex* writer_;
  std::unique_lock<std::mutex> writing_;  ///< held during a write transaction
};

/// Connections per catalog. Readers run in parallel in WAL; one writer at a time.
constexpr std::size_t kPoolSize = 8;

/// One schema step. Applied in its own write transaction, after which `PRAGMA user_version`
/// equals `version`. Steps are append-only: a released step is never edited.
struct Migration {
  int version;
  std::string_view sql;
};

/// The ordered migrations of this build.
std::span<const Migration> migrations();

/// Brings the database up to the last migration. A database whose version is newer than this
/// build knows is refused (Unsupported) and left untouched. Safe against another process
/// migrating at the same time: the version is re-read under the write lock.
Status migrate(Connection& conn, const std::filesystem::path& file);

/// `PRAGMA user_version`.
Result<int> user_version(Connection& conn);

}  // namespace stowage::catalog::sqlite
