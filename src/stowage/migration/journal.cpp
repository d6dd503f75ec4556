// SPDX-License-Identifier: Apache-2.0
#include "stowage/migration/journal.hpp"

#include <sqlite3.h>

#include <mutex>

#include "stowage/io/file.hpp"

namespace stowage::migration {

struct Journal::Db {
  sqlite3* db = nullptr;
  std::string where;
  std::mutex mutex;  // one connection, used by every copying thread

  ~Db() {
    if (db != nullptr) sqlite3_close(db);
  }
  Error fail(std::string_view op) const {
    return make_error(ErrorCode::IoError, "migration journal " + where + ": " + std::string(op) +
                                              ": " + (db ? sqlite3_errmsg(db) : "cannot open"));
  }
  Status exec(const char* sql) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return fail("exec");
    return {};
  }
};

namespace {

/// A prepared statement, finalized on every path.
struct Statement {
  sqlite3_stmt* stmt = nullptr;
  ~Statement() { sqlite3_finalize(stmt); }
  void bind(int index, std::string_view text) {
    sqlite3_bind_text(stmt, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  }
  std::string text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
    return std::string(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, col)));
  }
};

}  // namespace

Journal::Journal(std::unique_ptr<Db> db) : db_(std::move(db)) {}
Journal::~Journal() = default;

Result<std::unique_ptr<Journal>> Journal::open(const std::filesystem::path& file) {
  if (file.has_parent_path()) STOWAGE_TRY(io::create_directories_durable(file.parent_path()));
  auto db = std::make_unique<Db>();
  db->where = file.string();
  if (sqlite3_open_v2(db->where.c_str(), &db->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return db->fail("open");
  }
  sqlite3_busy_timeout(db->db, 5000);
  // WAL + synchronous=NORMAL: a committed row survives a killed process, which is what resuming
  // after a kill needs. A power loss may drop the last rows; their objects are then compared by
  // hashing on the next run, never trusted blindly.
  STOWAGE_TRY(db->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
  if (auto made = db->exec(
          "CREATE TABLE IF NOT EXISTS verified (scope TEXT NOT NULL, bucket TEXT NOT NULL,"
          " key TEXT NOT NULL, size INTEGER NOT NULL, source_etag TEXT NOT NULL,"
          " target_etag TEXT NOT NULL, sha256 TEXT NOT NULL, verified_at INTEGER NOT NULL,"
          " PRIMARY KEY (scope, bucket, key)) WITHOUT ROWID");
      !made) {
    Error e = made.error();
    e.code = ErrorCode::Corrupt;
    return e;
  }
  return std::unique_ptr<Journal>(new Journal(std::move(db)));
}

Result<std::optional<Journal::Entry>> Journal::find(std::string_view scope,
                                                    const store::ObjectPath& target) {
  std::lock_guard lock(db_->mutex);
  Statement s;
  if (sqlite3_prepare_v2(db_->db,
                         "SELECT size, source_etag, target_etag, sha256 FROM verified"
                         " WHERE scope = ? AND bucket = ? AND key = ?",
                         -1, &s.stmt, nullptr) != SQLITE_OK) {
    return db_->fail("prepare");
  }
  s.bind(1, scope);
  s.bind(2, target.bucket);
  s.bind(3, target.key);
  const int rc = sqlite3_step(s.stmt);
  if (rc == SQLITE_DONE) return std::optional<Entry>();
  if (rc != SQLITE_ROW) return db_->fail("find");
  Entry e;
  e.size_bytes = static_cast<std::uint64_t>(sqlite3_column_int64(s.stmt, 0));
  e.source_etag = s.text(1);
  e.target_etag = s.text(2);
  e.sha256_hex = s.text(3);
  return std::optional<Entry>(std::move(e));
}

Status Journal::record(std::string_view scope, const store::ObjectPath& target,
                       const Entry& entry) {
  std::lock_guard lock(db_->mutex);
  Statement s;
  if (sqlite3_prepare_v2(db_->db,
                         "INSERT OR REPLACE INTO verified (scope, bucket, key, size, source_etag,"
                         " target_etag, sha256, verified_at) VALUES (?, ?, ?, ?, ?, ?, ?,"
                         " CAST(strftime('%s','now') AS INTEGER))",
                         -1, &s.stmt, nullptr) != SQLITE_OK) {
    return db_->fail("prepare");
  }
  s.bind(1, scope);
  s.bind(2, target.bucket);
  s.bind(3, target.key);
  sqlite3_bind_int64(s.stmt, 4, static_cast<sqlite3_int64>(entry.size_bytes));
  s.bind(5, entry.source_etag);
  s.bind(6, entry.target_etag);
  s.bind(7, entry.sha256_hex);
  if (sqlite3_step(s.stmt) != SQLITE_DONE) return db_->fail("record");
  return {};
}

Result<std::uint64_t> Journal::count(std::string_view scope) {
  std::lock_guard lock(db_->mutex);
  Statement s;
  if (sqlite3_prepare_v2(db_->db, "SELECT count(*) FROM verified WHERE scope = ?", -1, &s.stmt,
                         nullptr) != SQLITE_OK) {
    return db_->fail("prepare");
  }
  s.bind(1, scope);
  if (sqlite3_step(s.stmt) != SQLITE_ROW) return db_->fail("count");
  return static_cast<std::uint64_t>(sqlite3_column_int64(s.stmt, 0));
}

}  // namespace stowage::migration
