// SPDX-License-Identifier: Apache-2.0
#pragma once

// Private to src/stowage/catalog: what the catalog needs of a SQL engine, implemented by
// sqlite_internal (SQLite) and pg_internal (PostgreSQL through libpq). The catalog itself
// (sql_catalog.cpp) is written once against these classes, with the same SQL text for both
// engines bar a few fragments chosen by `Dialect`.
//
// Placeholders are `?` in every SQL text; the PostgreSQL back end numbers them ($1, $2, ...).

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "stowage/base/error.hpp"

namespace stowage::catalog::sql {

enum class Dialect { Sqlite, Postgres };

/// A value for a `?` placeholder, for SQL built at run time.
using Value = std::variant<std::nullptr_t, std::int64_t, std::string>;

/// One statement of an engine, prepared with its parameters unbound. Not thread-safe: it
/// belongs to the thread that holds its connection.
class Statement {
 public:
  virtual ~Statement() = default;
  /// Binds a 1-based parameter.
  virtual Status bind(int index, std::int64_t value) = 0;
  virtual Status bind(int index, std::string_view value) = 0;
  virtual Status bind_null(int index) = 0;
  /// Runs one step: true when a row is ready, false when done.
  virtual Result<bool> step() = 0;
  /// Columns of the current row (0-based). A boolean column reads as 0 or 1.
  virtual std::int64_t int64(int col) const = 0;
  virtual std::string text(int col) const = 0;
  virtual bool is_null(int col) const = 0;
};

/// A statement handle with the conveniences the catalog uses.
class Stmt {
 public:
  explicit Stmt(std::unique_ptr<Statement> impl) noexcept : impl_(std::move(impl)) {}

  Status bind(int index, std::int64_t value) { return impl_->bind(index, value); }
  Status bind(int index, std::string_view value) { return impl_->bind(index, value); }
  Status bind(int index, const std::string& value) { return bind(index, std::string_view(value)); }
  Status bind(int index, const char* value) { return bind(index, std::string_view(value)); }
  Status bind(int index, std::nullptr_t) { return impl_->bind_null(index); }
  Status bind(int index, const Value& value) {
    return std::visit([&](const auto& v) -> Status { return bind(index, v); }, value);
  }
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

  Result<bool> step() { return impl_->step(); }
  /// Steps to the end, ignoring rows; for INSERT/UPDATE/DELETE.
  Status run() {
    for (;;) {
      STOWAGE_ASSIGN_OR_RETURN(const bool row, step());
      if (!row) return {};
    }
  }

  std::int64_t int64(int col) const { return impl_->int64(col); }
  std::string text(int col) const { return impl_->text(col); }
  bool is_null(int col) const { return impl_->is_null(col); }
  std::optional<std::int64_t> opt_int64(int col) const {
    return is_null(col) ? std::nullopt : std::optional<std::int64_t>(int64(col));
  }
  std::optional<std::string> opt_text(int col) const {
    return is_null(col) ? std::nullopt : std::optional<std::string>(text(col));
  }

 private:
  std::unique_ptr<Statement> impl_;
};

/// One connection to the database. Used by one thread at a time.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual Dialect dialect() const noexcept = 0;
  /// A statement for one SQL text with `?` placeholders.
  virtual Result<Stmt> prepare(std::string_view sql) = 0;
  /// Rows changed by the last INSERT, UPDATE or DELETE that ran to its end.
  virtual std::int64_t changes() const noexcept = 0;

  /// A read transaction: one consistent snapshot for every statement until it ends.
  virtual Status begin_read() = 0;
  /// A write transaction, serializable against every other writer (of any process). It may
  /// still fail with a conflict (`is_conflict`) at any statement or at commit: the caller then
  /// runs it again from the start.
  virtual Status begin_write() = 0;
  virtual Status commit() = 0;
  /// Ends the transaction, if any, without its changes. Never fails.
  virtual void rollback() noexcept = 0;
  /// True once the connection is unusable (the server went away): the pool drops it.
  virtual bool broken() const noexcept { return false; }
};

/// True for a write transaction that lost against a concurrent one (serialization failure or
/// deadlock) and can be run again as a whole.
bool is_conflict(const Error& error) noexcept;

/// Marks an error as such a conflict (provider_code carries the engine's code).
inline constexpr std::string_view kConflictCode = "serialization conflict";

/// A transaction on one connection; rolled back on destruction unless committed.
class Txn {
 public:
  static Result<Txn> read(Connection& conn) {
    STOWAGE_TRY(conn.begin_read());
    return Txn(&conn);
  }
  static Result<Txn> write(Connection& conn) {
    STOWAGE_TRY(conn.begin_write());
    return Txn(&conn);
  }
  Txn(Txn&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}
  Txn& operator=(Txn&&) = delete;
  ~Txn() {
    if (conn_ != nullptr) conn_->rollback();
  }
  /// Commits; afterwards the destructor does nothing.
  Status commit() { return std::exchange(conn_, nullptr)->commit(); }

 private:
  explicit Txn(Connection* conn) noexcept : conn_(conn) {}
  Connection* conn_;  ///< nullptr once finished
};

class Pool;

/// A connection checked out of a pool; returned to it on destruction.
class Lease {
 public:
  Lease(Pool* pool, std::unique_ptr<Connection> conn) noexcept
      : pool_(pool), conn_(std::move(conn)) {}
  Lease(Lease&& other) noexcept = default;
  Lease& operator=(Lease&&) = delete;
  ~Lease();

  Connection& operator*() const noexcept { return *conn_; }
  Connection* operator->() const noexcept { return conn_.get(); }

 private:
  Pool* pool_;
  std::unique_ptr<Connection> conn_;
};

/// Up to `max_size` connections to one database, opened on demand; acquire() blocks while all
/// are in use. Broken connections are closed when returned, so the next acquire() reconnects.
/// Thread-safe.
class Pool {
 public:
  using Opener = std::function<Result<std::unique_ptr<Connection>>()>;
  using VersionReader = std::function<Result<int>(Connection&)>;

  Pool(Opener open, std::size_t max_size, std::unique_ptr<Connection> first,
       VersionReader version);

  /// A free connection, opening one if the pool is below its size; blocks otherwise.
  Result<Lease> acquire();
  /// The schema version in force.
  Result<int> schema_version(Connection& conn) { return version_(conn); }

 private:
  friend class Lease;
  void release(std::unique_ptr<Connection> conn) noexcept;

  const Opener open_;
  const std::size_t max_size_;
  const VersionReader version_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_count_ = 0;  ///< connections that exist or are being opened
};

inline Lease::~Lease() {
  if (conn_) pool_->release(std::move(conn_));
}

}  // namespace stowage::catalog::sql
