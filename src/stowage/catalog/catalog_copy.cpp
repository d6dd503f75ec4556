// SPDX-License-Identifier: Apache-2.0
#include "stowage/catalog/catalog_copy.hpp"

#include <array>
#include <optional>
#include <string_view>

#include "stowage/catalog/sql_catalog.hpp"
#include "stowage/catalog/sql_internal.hpp"
#include "stowage/config/config.hpp"
#include "stowage/io/checksum.hpp"

namespace stowage::catalog {

namespace {

using sql::Connection;
using sql::Stmt;
using Row = std::vector<std::optional<std::string>>;

/// A table as copied: its columns (the same on both engines at one schema version) and the
/// key it is read in order of. `int_key`: the first key column is an integer.
struct TableSpec {
  std::string_view name;
  std::vector<std::string_view> columns;
  std::vector<std::string_view> key;
  bool int_key;
  bool identity;  ///< `id` comes from a sequence on PostgreSQL, to be moved past the copies
};

/// Every table of schema version 8, parents before children. Leases and shared work (work_runs,
/// work_items) are per run and not copied; nor are the kept item counts (dataset_stats, project_stats): the target's triggers count the
/// items as they arrive.
const std::vector<TableSpec>& tables() {
  static const std::vector<TableSpec> specs = {
      {"teams", {"id", "name", "description", "created_at", "updated_at"}, {"id"}, true, true},
      {"users", {"id", "login", "is_admin", "created_at"}, {"id"}, true, true},
      {"memberships", {"team_id", "user_id", "role"}, {"team_id", "user_id"}, true, false},
      {"api_tokens",
       {"id", "user_id", "name", "secret_sha256", "created_at", "last_used_at", "revoked_at"},
       {"id"},
       true,
       true},
      {"workspaces",
       {"id", "team_id", "name", "description", "created_at", "updated_at"},
       {"id"},
       true,
       true},
      {"projects",
       {"id", "workspace_id", "team_id", "name", "description", "type", "readme", "custom_data",
        "settings", "created_by", "created_at", "updated_at"},
       {"id"},
       true,
       true},
      // A parent dataset has a smaller id than its children (it existed first).
      {"datasets",
       {"id", "project_id", "parent_id", "name", "description", "custom_data", "created_by",
        "created_at", "updated_at"},
       {"id"},
       true,
       true},
      {"blobs",
       {"sha256_hex", "size", "mime", "width", "height", "bucket", "object_key", "created_at",
        "file_meta"},
       {"sha256_hex"},
       false,
       false},
      {"items",
       {"id", "dataset_id", "project_id", "workspace_id", "team_id", "name", "blob_sha256", "link",
        "mime", "size", "width", "height", "meta", "created_by", "created_at", "updated_at",
        "file_meta", "content_sha256"},
       {"id"},
       true,
       true},
      {"settings", {"key", "value", "created_at"}, {"key"}, false, false},
      // A gc that was killed mid-way leaves its collection here; the next gc finishes it.
      {"blob_collections",
       {"sha256_hex", "size", "bucket", "object_key", "started_at"},
       {"sha256_hex"},
       false,
       false},
      {"blob_grants",
       {"sha256_hex", "user_id", "created_at"},
       {"sha256_hex", "user_id"},
       false,
       false},
  };
  return specs;
}

/// The schema version the specs above describe.
constexpr int kSpecVersion = 8;

std::string join(const std::vector<std::string_view>& parts, std::string_view separator) {
  std::string out;
  for (std::string_view part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

Result<std::int64_t> count_rows(Connection& conn, const TableSpec& t) {
  STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn.prepare("SELECT COUNT(*) FROM " + std::string(t.name)));
  STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
  return row ? stmt.int64(0) : 0;
}

Status bind_key(Stmt& stmt, int index, const TableSpec& t, const std::string& value) {
  if (t.int_key) return stmt.bind(index, static_cast<std::int64_t>(std::stoll(value)));
  return stmt.bind(index, value);
}

/// One page of rows in key order. Single-column keys page by key (`after`); composite keys by
/// offset (their tables are small: memberships).
Result<std::vector<Row>> read_page(Connection& conn, const TableSpec& t,
                                   const std::optional<std::string>& after, std::int64_t offset,
                                   std::size_t limit) {
  const bool by_key = t.key.size() == 1;
  std::string sql = "SELECT " + join(t.columns, ", ") + " FROM " + std::string(t.name);
  if (by_key && after) sql += " WHERE " + std::string(t.key[0]) + " > ?";
  sql += " ORDER BY " + join(t.key, ", ") + " LIMIT ?";
  if (!by_key) sql += " OFFSET ?";
  STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn.prepare(sql));
  int index = 0;
  if (by_key && after) STOWAGE_TRY(bind_key(stmt, ++index, t, *after));
  STOWAGE_TRY(stmt.bind(++index, static_cast<std::int64_t>(limit)));
  if (!by_key) STOWAGE_TRY(stmt.bind(++index, offset));
  std::vector<Row> rows;
  for (;;) {
    STOWAGE_ASSIGN_OR_RETURN(const bool more, stmt.step());
    if (!more) return rows;
    Row row(t.columns.size());
    for (std::size_t c = 0; c < t.columns.size(); ++c) row[c] = stmt.opt_text(static_cast<int>(c));
    rows.push_back(std::move(row));
  }
}

/// Inserts rows that are not there yet (one multi-row INSERT); returns how many were new.
Result<std::int64_t> insert_rows(Connection& conn, const TableSpec& t, const std::vector<Row>& rows) {
  std::string sql = "INSERT INTO " + std::string(t.name) + " (" + join(t.columns, ", ") + ") VALUES ";
  std::string group = "(";
  for (std::size_t c = 0; c < t.columns.size(); ++c) group += c == 0 ? "?" : ", ?";
  group += ")";
  for (std::size_t r = 0; r < rows.size(); ++r) sql += (r == 0 ? "" : ", ") + group;
  sql += " ON CONFLICT DO NOTHING";
  STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn.prepare(sql));
  int index = 0;
  for (const Row& row : rows) {
    for (const auto& value : row) STOWAGE_TRY(stmt.bind(++index, value));
  }
  STOWAGE_TRY(stmt.run());
  return conn.changes();
}

/// SHA-256 over every row in key order; each value as a presence byte, its length and its text,
/// so that NULL, "" and neighbouring values cannot be confused.
Result<std::string> table_sha256(Connection& conn, const TableSpec& t, std::size_t page) {
  io::Sha256 sha;
  std::optional<std::string> after;
  std::int64_t offset = 0;
  STOWAGE_TRY(conn.begin_read());
  struct End {
    Connection& conn;
    ~End() { conn.rollback(); }
  } end{conn};
  for (;;) {
    STOWAGE_ASSIGN_OR_RETURN(auto rows, read_page(conn, t, after, offset, page));
    for (const Row& row : rows) {
      for (const auto& value : row) {
        if (!value) {
          sha.update(std::string_view("\0", 1));
          continue;
        }
        sha.update(std::string_view("\1", 1));
        sha.update(std::to_string(value->size()) + ":");
        sha.update(*value);
      }
    }
    if (rows.size() < page) break;
    after = rows.back()[0];
    offset += static_cast<std::int64_t>(rows.size());
  }
  const auto digest = sha.finish();
  return io::to_hex(digest);
}

Result<TableCopy> copy_table(Connection& from, Connection& to, const TableSpec& t,
                             const CopyOptions& options) {
  TableCopy report;
  report.table = std::string(t.name);
  STOWAGE_ASSIGN_OR_RETURN(report.source_rows, count_rows(from, t));
  // Resume after the largest key the target has: batches are copied in key order, each in one
  // transaction, so everything before it is there.
  std::optional<std::string> after;
  if (t.key.size() == 1) {
    STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, to.prepare("SELECT MAX(" + std::string(t.key[0]) +
                                                   ") FROM " + std::string(t.name)));
    STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
    if (row) after = stmt.opt_text(0);
  }
  std::int64_t offset = 0;
  for (;;) {
    STOWAGE_ASSIGN_OR_RETURN(auto rows, read_page(from, t, after, offset, options.batch_rows));
    if (rows.empty()) break;
    STOWAGE_TRY(to.begin_write());
    auto inserted = insert_rows(to, t, rows);
    if (!inserted) {
      to.rollback();
      Error e = std::move(inserted).error();
      e.message = "copy " + std::string(t.name) + ": " + e.message;
      return e;
    }
    if (Status committed = to.commit(); !committed) return std::move(committed).error();
    report.copied += *inserted;
    after = rows.back()[0];
    offset += static_cast<std::int64_t>(rows.size());
    if (options.on_progress) {
      STOWAGE_ASSIGN_OR_RETURN(const std::int64_t there, count_rows(to, t));
      options.on_progress(report.table, there, report.source_rows);
    }
    if (rows.size() < options.batch_rows) break;
  }
  if (t.identity && to.dialect() == sql::Dialect::Postgres) {
    // New rows made by the servers afterwards must not collide with the copied ids.
    const std::string sql = "SELECT setval(pg_get_serial_sequence('" + std::string(t.name) +
                            "', 'id'), COALESCE((SELECT MAX(id) FROM " + std::string(t.name) +
                            "), 0) + 1, false)";
    STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, to.prepare(sql));
    STOWAGE_TRY(stmt.run());
  }
  STOWAGE_ASSIGN_OR_RETURN(report.target_rows, count_rows(to, t));
  constexpr std::size_t kChecksumPage = 5000;
  STOWAGE_ASSIGN_OR_RETURN(report.source_sha256, table_sha256(from, t, kChecksumPage));
  STOWAGE_ASSIGN_OR_RETURN(report.target_sha256, table_sha256(to, t, kChecksumPage));
  return report;
}

Result<std::unique_ptr<sql::Pool>> open_side(const std::string& url, std::string_view side) {
  auto pool = open_pool(url);
  if (!pool) {
    Error e = std::move(pool).error();
    e.message = std::string(side) + " " + config::redact_database_url(url) + ": " + e.message;
    return e;
  }
  return pool;
}

}  // namespace

Result<CopyReport> copy_catalog(const std::string& from_url, const std::string& to_url,
                                const CopyOptions& options) {
  if (options.batch_rows == 0) {
    return make_error(ErrorCode::InvalidArgument, "copy catalog: batch_rows must be at least 1");
  }
  STOWAGE_ASSIGN_OR_RETURN(auto from_pool, open_side(from_url, "--from"));
  STOWAGE_ASSIGN_OR_RETURN(auto to_pool, open_side(to_url, "--to"));
  STOWAGE_ASSIGN_OR_RETURN(auto from, from_pool->acquire());
  STOWAGE_ASSIGN_OR_RETURN(auto to, to_pool->acquire());
  STOWAGE_ASSIGN_OR_RETURN(const int from_version, from_pool->schema_version(*from));
  STOWAGE_ASSIGN_OR_RETURN(const int to_version, to_pool->schema_version(*to));
  if (from_version != kSpecVersion || to_version != kSpecVersion) {
    return make_error(ErrorCode::Unsupported,
                      "copy catalog: this build copies schema version " +
                          std::to_string(kSpecVersion) + ", found " +
                          std::to_string(from_version) + " and " + std::to_string(to_version));
  }
  CopyReport report;
  for (const TableSpec& t : tables()) {
    STOWAGE_ASSIGN_OR_RETURN(TableCopy copied, copy_table(*from, *to, t, options));
    report.tables.push_back(std::move(copied));
  }
  return report;
}

}  // namespace stowage::catalog
