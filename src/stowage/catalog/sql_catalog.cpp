// SPDX-License-Identifier: Apache-2.0
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <boost/json/array.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <limits>
#include <random>
#include <system_error>
#include <thread>
#include <deque>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "stowage/catalog/catalog.hpp"
#include "stowage/catalog/sql_catalog.hpp"
#include "stowage/catalog/sql_internal.hpp"
#include "stowage/io/checksum.hpp"

namespace stowage::catalog {

std::string_view to_string(Role role) noexcept {
  switch (role) {
    case Role::Admin:
      return "admin";
    case Role::Developer:
      return "developer";
    case Role::Viewer:
      return "viewer";
  }
  return "viewer";
}

namespace {

using sql::Connection;
using sql::Dialect;
using sql::Stmt;
using sql::Txn;
using sql::Value;

/// How often a write transaction is run before a conflict with concurrent writers (PostgreSQL's
/// serialization failures) is given up and returned (Unavailable, retryable).
constexpr int kMaxWriteAttempts = 12;
/// The first pause before running a conflicting transaction again; it doubles, with jitter.
constexpr std::chrono::milliseconds kFirstConflictPause{2};
/// The largest page a list call returns; the Supervisely server's default page is 20k.
constexpr std::int64_t kMaxPerPage = 20000;
/// last_used_at is refreshed at most this often per token, so that authenticating is a read.
constexpr std::chrono::seconds kLastUsedGranularity{60};
/// Token secrets carry 256 bits of entropy, printed as 64 hex digits (URL-safe).
constexpr std::size_t kSecretBytes = 32;

// ---- small helpers ------------------------------------------------------------------------------

std::string iso_time(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char out[80];  // 24 bytes in practice; room for what the compiler cannot rule out
  std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return out;
}

std::string now_iso() { return iso_time(std::chrono::system_clock::now()); }

Error invalid(std::string message) {
  return make_error(ErrorCode::InvalidArgument, std::move(message));
}
Error not_found(std::string message) { return make_error(ErrorCode::NotFound, std::move(message)); }

/// Gives an error of kind `code` a message naming the entity; other errors pass unchanged.
Error explain(Error error, ErrorCode code, std::string message) {
  if (error.code == code) error.message = std::move(message);
  return error;
}

Result<Role> role_from_string(std::string_view text) {
  for (Role role : {Role::Admin, Role::Developer, Role::Viewer}) {
    if (to_string(role) == text) return role;
  }
  return make_error(ErrorCode::Corrupt, "unknown role '" + std::string(text) + "' in catalog");
}

bool is_sha256_hex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status check_size(std::uint64_t size, std::string_view what) {
  if (size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return invalid(std::string(what) + ": size " + std::to_string(size) + " is too large");
  }
  return {};
}

/// JSON text columns default to an empty object.
std::string json_or_empty(const std::string& json) { return json.empty() ? "{}" : json; }

/// NULL for "no user" (the API's 0), so that the foreign key is not violated.
std::optional<std::int64_t> user_ref(Id id) {
  return id == 0 ? std::nullopt : std::optional<std::int64_t>(id);
}

Result<std::string> random_secret() {
  std::array<unsigned char, kSecretBytes> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return make_error(ErrorCode::Internal, "create token: OpenSSL RAND_bytes failed");
  }
  return io::to_hex(bytes);
}

std::string secret_hash(std::string_view secret) {
  io::Sha256 sha;
  sha.update(secret);
  const io::Sha256::Digest digest = sha.finish();
  return io::to_hex(digest);
}

/// True when `sql` (one `?` for the id) yields a row.
Result<bool> row_exists(Connection& conn, std::string_view sql, std::int64_t id) {
  STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn.prepare(sql));
  STOWAGE_TRY(stmt.bind(1, id));
  return stmt.step();
}

Status require_user(Connection& conn, Id user_id) {
  STOWAGE_ASSIGN_OR_RETURN(const bool found,
                           row_exists(conn, "SELECT 1 FROM users WHERE id = ?", user_id));
  if (!found) return not_found("user " + std::to_string(user_id) + " not found");
  return {};
}

Status require_team(Connection& conn, Id team_id) {
  STOWAGE_ASSIGN_OR_RETURN(const bool found,
                           row_exists(conn, "SELECT 1 FROM teams WHERE id = ?", team_id));
  if (!found) return not_found("team " + std::to_string(team_id) + " not found");
  return {};
}

Status bind_values(Stmt& stmt, const std::vector<Value>& values) {
  int index = 0;
  for (const Value& value : values) STOWAGE_TRY(stmt.bind(++index, value));
  return {};
}

// ---- row readers --------------------------------------------------------------------------------

constexpr std::string_view kTeamColumns = "t.id, t.name, t.description, t.created_at, t.updated_at";
Team read_team(const Stmt& s, int c = 0) {
  return Team{s.int64(c), s.text(c + 1), s.text(c + 2), s.text(c + 3), s.text(c + 4)};
}

constexpr std::string_view kUserColumns = "u.id, u.login, u.is_admin, u.created_at";
User read_user(const Stmt& s, int c = 0) {
  return User{s.int64(c), s.text(c + 1), s.int64(c + 2) != 0, s.text(c + 3)};
}

constexpr std::string_view kTokenSelect =
    "SELECT t.id, t.user_id, u.login, t.name, t.created_at, t.last_used_at, "
    "t.revoked_at IS NOT NULL FROM api_tokens t JOIN users u ON u.id = t.user_id";
TokenInfo read_token(const Stmt& s) {
  return TokenInfo{s.int64(0), s.int64(1),    s.text(2),      s.text(3),
                   s.text(4),  s.opt_text(5), s.int64(6) != 0};
}

Workspace read_workspace(const Stmt& s) {
  return Workspace{s.int64(0), s.int64(1), s.text(2), s.text(3), s.text(4), s.text(5)};
}

Project read_project(const Stmt& s) {
  Project p;
  p.id = s.int64(0);
  p.workspace_id = s.int64(1);
  p.team_id = s.int64(2);
  p.name = s.text(3);
  p.description = s.text(4);
  p.type = s.text(5);
  p.readme = s.text(6);
  p.custom_data = s.text(7);
  p.settings = s.text(8);
  p.created_by = s.opt_int64(9).value_or(0);
  p.created_at = s.text(10);
  p.updated_at = s.text(11);
  p.items_count = s.int64(12);
  p.datasets_count = s.int64(13);
  p.size_bytes = static_cast<std::uint64_t>(s.int64(14));
  return p;
}

Dataset read_dataset(const Stmt& s) {
  Dataset d;
  d.id = s.int64(0);
  d.project_id = s.int64(1);
  d.team_id = s.int64(2);
  d.workspace_id = s.int64(3);
  d.parent_id = s.opt_int64(4);
  d.name = s.text(5);
  d.description = s.text(6);
  d.custom_data = s.text(7);
  d.created_by = s.opt_int64(8).value_or(0);
  d.created_at = s.text(9);
  d.updated_at = s.text(10);
  d.items_count = s.int64(11);
  d.size_bytes = static_cast<std::uint64_t>(s.int64(12));
  return d;
}

Item read_item(const Stmt& s) {
  Item i;
  i.id = s.int64(0);
  i.dataset_id = s.int64(1);
  i.project_id = s.int64(2);
  i.team_id = s.int64(3);
  i.workspace_id = s.int64(4);
  i.name = s.text(5);
  i.blob_sha256_hex = s.opt_text(6);
  i.link = s.opt_text(7);
  i.mime = s.text(8);
  i.size = static_cast<std::uint64_t>(s.int64(9));
  i.width = s.opt_int64(10);
  i.height = s.opt_int64(11);
  i.meta = s.text(12);
  i.created_by_login = s.text(13);
  i.created_at = s.text(14);
  i.updated_at = s.text(15);
  i.blob_bucket = s.text(16);
  i.blob_key = s.text(17);
  i.file_meta = s.text(18);
  i.content_sha256_hex = s.opt_text(19);
  return i;
}

constexpr std::string_view kBlobSelect =
    "SELECT sha256_hex, size, mime, width, height, bucket, object_key, created_at, file_meta "
    "FROM blobs";
Blob read_blob(const Stmt& s) {
  return Blob{s.text(0),      static_cast<std::uint64_t>(s.int64(1)),
              s.text(2),      s.opt_int64(3),
              s.opt_int64(4), s.text(5),
              s.text(6),      s.text(7),
              s.text(8)};
}

// ---- list queries -------------------------------------------------------------------------------

enum class FieldType { Int, Text };

/// An API field name a list may filter or sort on, and the SQL it stands for.
struct Field {
  std::string_view api;
  std::string_view expr;
  FieldType type;
  bool nullable = false;
};

/// How to read one kind of row: the SELECT (without WHERE), the table to count, the fields.
/// `fields[0]` is the id.
template <class T>
struct Entity {
  std::string_view noun;
  std::string select;
  std::string_view from;
  std::vector<Field> fields;
  T (*read)(const Stmt&);
};

// Item counts and bytes are kept per project and dataset by the schema's triggers (version 6):
// lists read them instead of counting millions of items per row.
constexpr std::string_view kProjectItems =
    "COALESCE((SELECT s.items FROM project_stats s WHERE s.project_id = p.id), 0)";
constexpr std::string_view kProjectDatasets =
    "(SELECT COUNT(*) FROM datasets d WHERE d.project_id = p.id)";
constexpr std::string_view kProjectSize =
    "COALESCE((SELECT s.bytes FROM project_stats s WHERE s.project_id = p.id), 0)";
constexpr std::string_view kDatasetItems =
    "COALESCE((SELECT s.items FROM dataset_stats s WHERE s.dataset_id = d.id), 0)";
constexpr std::string_view kDatasetSize =
    "COALESCE((SELECT s.bytes FROM dataset_stats s WHERE s.dataset_id = d.id), 0)";

std::string concat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view part : parts) out += part;
  return out;
}

const Entity<Workspace>& workspace_entity() {
  static const Entity<Workspace> entity{
      "workspace",
      "SELECT w.id, w.team_id, w.name, w.description, w.created_at, w.updated_at "
      "FROM workspaces w",
      "workspaces w",
      {{"id", "w.id", FieldType::Int},
       {"name", "w.name", FieldType::Text},
       {"createdAt", "w.created_at", FieldType::Text},
       {"updatedAt", "w.updated_at", FieldType::Text}},
      &read_workspace};
  return entity;
}

const Entity<Project>& project_entity() {
  static const Entity<Project> entity{
      "project",
      concat({"SELECT p.id, p.workspace_id, p.team_id, p.name, p.description, p.type, p.readme, "
              "p.custom_data, p.settings, p.created_by, p.created_at, p.updated_at, ",
              kProjectItems, ", ", kProjectDatasets, ", ", kProjectSize, " FROM projects p"}),
      "projects p",
      {{"id", "p.id", FieldType::Int},
       {"name", "p.name", FieldType::Text},
       {"createdAt", "p.created_at", FieldType::Text},
       {"updatedAt", "p.updated_at", FieldType::Text},
       {"size", kProjectSize, FieldType::Int}},
      &read_project};
  return entity;
}

const Entity<Dataset>& dataset_entity() {
  static const Entity<Dataset> entity{
      "dataset",
      concat({"SELECT d.id, d.project_id, p.team_id, p.workspace_id, d.parent_id, d.name, "
              "d.description, d.custom_data, d.created_by, d.created_at, d.updated_at, ",
              kDatasetItems, ", ", kDatasetSize,
              " FROM datasets d JOIN projects p ON p.id = d.project_id"}),
      "datasets d",
      {{"id", "d.id", FieldType::Int},
       {"name", "d.name", FieldType::Text},
       {"parentId", "d.parent_id", FieldType::Int, true},
       {"createdAt", "d.created_at", FieldType::Text},
       {"updatedAt", "d.updated_at", FieldType::Text},
       {"size", kDatasetSize, FieldType::Int}},
      &read_dataset};
  return entity;
}

const Entity<Item>& item_entity() {
  static const Entity<Item> entity{
      "item",
      "SELECT i.id, i.dataset_id, i.project_id, i.team_id, i.workspace_id, i.name, "
      "i.blob_sha256, i.link, i.mime, i.size, i.width, i.height, i.meta, COALESCE(u.login, ''), "
      "i.created_at, i.updated_at, COALESCE(b.bucket, ''), COALESCE(b.object_key, ''), "
      "i.file_meta, i.content_sha256 "
      "FROM items i LEFT JOIN blobs b ON b.sha256_hex = i.blob_sha256 "
      "LEFT JOIN users u ON u.id = i.created_by",
      "items i",
      {{"id", "i.id", FieldType::Int},
       {"name", "i.name", FieldType::Text},
       {"createdAt", "i.created_at", FieldType::Text},
       {"updatedAt", "i.updated_at", FieldType::Text},
       {"hash", "i.content_sha256", FieldType::Text, true},
       {"size", "i.size", FieldType::Int}},
      &read_item};
  return entity;
}

/// A WHERE clause under construction: conditions joined by AND, and their `?` values in order.
struct Where {
  std::string sql = "TRUE";
  std::vector<Value> args;

  void add(std::string_view condition) {
    sql += " AND ";
    sql += condition;
  }
  void add(std::string_view condition, Value arg) {
    add(condition);
    args.push_back(std::move(arg));
  }
};

template <class T>
Result<const Field*> find_field(const Entity<T>& entity, std::string_view api,
                                std::string_view role) {
  for (const Field& field : entity.fields) {
    if (field.api == api) return &field;
  }
  std::string allowed;
  for (const Field& field : entity.fields) {
    allowed += allowed.empty() ? "" : ", ";
    allowed += field.api;
  }
  return invalid(std::string(role) + ": unknown " + std::string(entity.noun) + " field '" +
                 std::string(api) + "' (allowed: " + allowed + ")");
}

std::string_view op_sql(Filter::Op op, Dialect dialect, FieldType type) {
  const bool pg = dialect == Dialect::Postgres;
  switch (op) {
    case Filter::Op::Eq:
      return " = ?";
    case Filter::Op::NotEq:
      return " IS DISTINCT FROM ?";  // NULL parentId/hash differ from any value
    case Filter::Op::Less:
      return " < ?";
    case Filter::Op::LessEq:
      return " <= ?";
    case Filter::Op::Greater:
      return " > ?";
    case Filter::Op::GreaterEq:
      return " >= ?";
    case Filter::Op::Like:
      // SQLite's LIKE ignores ASCII case and has no escape character unless told: the same in
      // PostgreSQL is ILIKE with an empty ESCAPE.
      return pg ? " ILIKE ? ESCAPE ''" : " LIKE ?";
    case Filter::Op::In:
      if (!pg) return " IN (SELECT value FROM json_each(?))";
      return type == FieldType::Int ? " IN (SELECT value::bigint FROM json_array_elements_text(?::json))"
                                    : " IN (SELECT value FROM json_array_elements_text(?::json))";
    case Filter::Op::NotIn:
      if (!pg) return " NOT IN (SELECT value FROM json_each(?))";
      return type == FieldType::Int
                 ? " NOT IN (SELECT value::bigint FROM json_array_elements_text(?::json))"
                 : " NOT IN (SELECT value FROM json_array_elements_text(?::json))";
  }
  return " = ?";
}

template <class T>
Status add_filter(const Entity<T>& entity, const Filter& filter, Dialect dialect, Where& where) {
  STOWAGE_ASSIGN_OR_RETURN(const Field* field, find_field(entity, filter.field, "filter"));
  const std::string name = "filter on '" + filter.field + "'";
  for (const FilterValue& value : filter.values) {
    const bool is_int = std::holds_alternative<std::int64_t>(value);
    if (is_int != (field->type == FieldType::Int)) {
      return invalid(name + ": expected " + (is_int ? "a string" : "an integer") + " value");
    }
  }
  const bool is_list = filter.op == Filter::Op::In || filter.op == Filter::Op::NotIn;
  if (!is_list && filter.values.size() != 1) {
    return invalid(name + ": the operator takes exactly one value");
  }
  if (filter.op == Filter::Op::Like && field->type != FieldType::Text) {
    return invalid(name + ": LIKE applies to text fields only");
  }
  std::string condition(field->expr);
  condition += op_sql(filter.op, dialect, field->type);
  if (filter.op == Filter::Op::NotIn && field->nullable) {
    condition = "(" + std::string(field->expr) + " IS NULL OR " + condition + ")";
  }
  if (!is_list) {
    where.add(condition, std::visit([](const auto& v) { return Value(v); }, filter.values[0]));
    return {};
  }
  // One JSON array parameter instead of N placeholders: no limit on the list's length, and the
  // SQL text (hence the cached statement) does not depend on it.
  boost::json::array list;
  for (const FilterValue& value : filter.values) {
    std::visit([&](const auto& v) { list.emplace_back(v); }, value);
  }
  where.add(condition, boost::json::serialize(list));
  return {};
}

/// Where recent pages ended. The SDK walks a page-numbered list in order (pages 2..pagesCount;
/// spec/api.md), and with OFFSET page k costs O(k × per_page): walking 10 M items would be
/// quadratic. A page sorted by id that follows a page this catalog served starts after that
/// page's last id instead (keyset), O(page) at any depth. A page asked out of order, or first on
/// another server, is read by OFFSET. Within a walk the keyset is also the steadier answer: an
/// item added or removed on an earlier page shifts an OFFSET page, not this one.
class PageCursors {
 public:
  std::optional<Id> find(const std::string& key) const {
    std::lock_guard lock(mutex_);
    const auto it = ends_.find(key);
    if (it == ends_.end()) return std::nullopt;
    return it->second;
  }
  void remember(const std::string& key, Id last_id) {
    std::lock_guard lock(mutex_);
    const auto [it, added] = ends_.insert_or_assign(key, last_id);
    if (!added) return;
    order_.push_back(key);
    if (order_.size() > kCapacity) {
      ends_.erase(order_.front());
      order_.pop_front();
    }
  }

 private:
  static constexpr std::size_t kCapacity = 4096;  // walks in progress at once, ~100 bytes each
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Id> ends_;
  std::deque<std::string> order_;  // oldest first
};

/// How a list learns its total, and where it may remember its pages.
struct ListOptions {
  /// Reads the scope's kept count (one `?`, bound to `kept_id`) instead of COUNT(*) when no
  /// filter narrows the list.
  std::string_view kept_count_sql;
  Id kept_id = 0;
  bool count = true;  ///< false: no total (scans that never show one)
  PageCursors* cursors = nullptr;
};

/// The cursor key of one page of a list: everything that selects its rows.
std::string page_key(std::string_view noun, const std::string& where_sql,
                     const std::vector<Value>& args, const ListQuery& query, std::int64_t page) {
  std::string key(noun);
  key += '\n';
  key += where_sql;
  for (const Value& arg : args) {
    key += '\n';
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::nullptr_t>) {
            key += "null";
          } else if constexpr (std::is_same_v<V, std::int64_t>) {
            key += 'i';
            key += std::to_string(v);
          } else {
            key += 's';
            key += v;
          }
        },
        arg);
  }
  key += '\n';
  key += std::to_string(query.per_page);
  key += query.descending ? "d#" : "a#";
  key += std::to_string(page);
  return key;
}

Result<std::int64_t> read_total(Connection& conn, std::string_view from, const Where& where,
                                const ListQuery& query, const ListOptions& options) {
  if (!options.count) return 0;
  const bool kept = !options.kept_count_sql.empty() && query.filters.empty();
  const std::string sql =
      kept ? std::string(options.kept_count_sql)
           : concat({"SELECT COUNT(*) FROM ", from, " WHERE ", where.sql});
  STOWAGE_ASSIGN_OR_RETURN(Stmt count, conn.prepare(sql));
  if (kept) {
    STOWAGE_TRY(count.bind(1, options.kept_id));
  } else {
    STOWAGE_TRY(bind_values(count, where.args));
  }
  STOWAGE_ASSIGN_OR_RETURN(const bool row, count.step());
  return row ? count.int64(0) : 0;
}

/// Runs a list query: `where` selects the parent (team, project, dataset...), `query` adds the
/// API filters, order and page. `total` and the page come from one read snapshot.
template <class T>
Result<Page<T>> list_rows(Connection& conn, const Entity<T>& entity, Where where,
                          const ListQuery& query, const ListOptions& options = {}) {
  if (query.per_page < 1 || query.per_page > kMaxPerPage) {
    return invalid("per_page must be between 1 and " + std::to_string(kMaxPerPage) + ", not " +
                   std::to_string(query.per_page));
  }
  if (query.after && query.sort != "id") {
    return invalid("token pagination (after) requires sorting by id, not '" + query.sort + "'");
  }
  if (!query.after &&
      (query.page < 1 || query.page > std::numeric_limits<std::int64_t>::max() / query.per_page)) {
    return invalid("page must be at least 1 and not absurdly large, not " +
                   std::to_string(query.page));
  }
  for (const Filter& filter : query.filters) {
    STOWAGE_TRY(add_filter(entity, filter, conn.dialect(), where));
  }
  STOWAGE_ASSIGN_OR_RETURN(const Field* sort, find_field(entity, query.sort, "sort"));
  const Field& id = entity.fields.front();

  STOWAGE_ASSIGN_OR_RETURN(Txn txn, Txn::read(conn));
  Page<T> page;
  STOWAGE_ASSIGN_OR_RETURN(page.total, read_total(conn, entity.from, where, query, options));

  // A walk by page number through a list sorted by id continues from its last page's end.
  const bool walkable = options.cursors != nullptr && !query.after && sort == &id;
  std::string key;  // of the page after this one
  std::optional<Id> after = query.after;
  if (walkable) {
    key = page_key(entity.noun, where.sql, where.args, query, query.page + 1);
    if (query.page > 1) {
      after = options.cursors->find(page_key(entity.noun, where.sql, where.args, query, query.page));
    }
  }
  const std::string_view dir = query.descending ? " DESC" : " ASC";
  std::int64_t offset = (query.page - 1) * query.per_page;
  if (after) {
    where.add(concat({id.expr, query.descending ? " < ?" : " > ?"}), *after);
    offset = 0;
  }
  std::string sql = concat({entity.select, " WHERE ", where.sql, " ORDER BY ", sort->expr, dir});
  if (sort != &id) sql += concat({", ", id.expr, dir});
  sql += " LIMIT ? OFFSET ?";
  where.args.emplace_back(query.per_page);
  where.args.emplace_back(offset);
  STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn.prepare(sql));
  STOWAGE_TRY(bind_values(stmt, where.args));
  for (;;) {
    STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
    if (!row) break;
    page.entities.push_back(entity.read(stmt));
  }
  if (walkable && std::cmp_equal(page.entities.size(), query.per_page)) {
    options.cursors->remember(key, page.entities.back().id);
  }
  return page;
}

template <class T>
Result<T> get_row(Connection& conn, const Entity<T>& entity, Id id) {
  const std::string sql = concat({entity.select, " WHERE ", entity.fields.front().expr, " = ?"});
  STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn.prepare(sql));
  STOWAGE_TRY(stmt.bind(1, id));
  STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
  if (!row) return not_found(std::string(entity.noun) + " " + std::to_string(id) + " not found");
  return entity.read(stmt);
}

// ---- writes shared by several calls (run inside the caller's transaction) -----------------------

/// Runs an `INSERT ... RETURNING id` and returns the id; a unique clash is AlreadyExists with
/// `clash` as its message.
Result<Id> inserted_id(Stmt& stmt, std::string clash) {
  auto row = stmt.step();
  if (!row) return explain(std::move(row).error(), ErrorCode::AlreadyExists, std::move(clash));
  if (!*row) return make_error(ErrorCode::Internal, "INSERT ... RETURNING id gave no row");
  const Id id = stmt.int64(0);
  STOWAGE_TRY(stmt.run());  // to the end, so that the statement is done
  return id;
}

Result<User> insert_user(Connection& conn, const std::string& login, bool is_admin,
                         const std::string& now) {
  if (login.empty()) return invalid("create user: the login is empty");
  STOWAGE_ASSIGN_OR_RETURN(
      Stmt stmt, conn.prepare("INSERT INTO users (login, is_admin, created_at) VALUES (?, ?, ?) "
                              "RETURNING id"));
  STOWAGE_TRY(stmt.bind_all(login, std::int64_t{is_admin ? 1 : 0}, now));
  STOWAGE_ASSIGN_OR_RETURN(const Id id, inserted_id(stmt, "user '" + login + "' already exists"));
  return User{id, login, is_admin, now};
}

Result<Team> insert_team(Connection& conn, const std::string& name, const std::string& description,
                         const std::string& now) {
  if (name.empty()) return invalid("create team: the name is empty");
  STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn.prepare("INSERT INTO teams (name, description, "
                                                   "created_at, updated_at) VALUES (?, ?, ?, ?) "
                                                   "RETURNING id"));
  STOWAGE_TRY(stmt.bind_all(name, description, now, now));
  STOWAGE_ASSIGN_OR_RETURN(const Id id, inserted_id(stmt, "team '" + name + "' already exists"));
  return Team{id, name, description, now, now};
}

Status upsert_member(Connection& conn, Id team_id, Id user_id, Role role) {
  STOWAGE_ASSIGN_OR_RETURN(
      Stmt stmt, conn.prepare("INSERT INTO memberships (team_id, user_id, role) VALUES (?, ?, ?) "
                              "ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role"));
  STOWAGE_TRY(stmt.bind_all(team_id, user_id, to_string(role)));
  return stmt.run();
}

Result<Workspace> insert_workspace(Connection& conn, Id team_id, const std::string& name,
                                   const std::string& description, const std::string& now) {
  if (name.empty()) return invalid("create workspace: the name is empty");
  STOWAGE_TRY(require_team(conn, team_id));
  STOWAGE_ASSIGN_OR_RETURN(
      Stmt stmt, conn.prepare("INSERT INTO workspaces (team_id, name, description, created_at, "
                              "updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id"));
  STOWAGE_TRY(stmt.bind_all(team_id, name, description, now, now));
  STOWAGE_ASSIGN_OR_RETURN(
      const Id id,
      inserted_id(stmt, "workspace '" + name + "' already exists in team " +
                            std::to_string(team_id)));
  return Workspace{id, team_id, name, description, now, now};
}

Result<IssuedToken> insert_token(Connection& conn, const User& user, const std::string& name,
                                 const std::string& now) {
  STOWAGE_ASSIGN_OR_RETURN(std::string secret, random_secret());
  STOWAGE_ASSIGN_OR_RETURN(
      Stmt stmt, conn.prepare("INSERT INTO api_tokens (user_id, name, secret_sha256, created_at) "
                              "VALUES (?, ?, ?, ?) RETURNING id"));
  STOWAGE_TRY(stmt.bind_all(user.id, name, secret_hash(secret), now));
  STOWAGE_ASSIGN_OR_RETURN(const Id id, inserted_id(stmt, "a token with that secret exists"));
  return IssuedToken{TokenInfo{id, user.id, user.login, name, now, std::nullopt, false},
      std::move(secret)};
}

// ---- the catalog --------------------------------------------------------------------------------

class SqlCatalog final : public Catalog {
 public:
  explicit SqlCatalog(std::unique_ptr<sql::Pool> pool) : pool_(std::move(pool)) {}

  Result<int> schema_version() override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    return pool_->schema_version(*conn);
  }

  Result<std::optional<IssuedToken>> bootstrap() override {
    return write([&](Connection& conn) -> Result<std::optional<IssuedToken>> {
      {
        STOWAGE_ASSIGN_OR_RETURN(Stmt any, conn.prepare("SELECT 1 FROM users LIMIT 1"));
        STOWAGE_ASSIGN_OR_RETURN(const bool has_users, any.step());
        if (has_users) return std::optional<IssuedToken>();
      }
      const std::string now = now_iso();
      STOWAGE_ASSIGN_OR_RETURN(User admin, insert_user(conn, "admin", true, now));
      STOWAGE_ASSIGN_OR_RETURN(Team team, insert_team(conn, "admin's team", "", now));
      STOWAGE_TRY(upsert_member(conn, team.id, admin.id, Role::Admin));
      STOWAGE_TRY(insert_workspace(conn, team.id, "First Workspace", "", now));
      STOWAGE_ASSIGN_OR_RETURN(IssuedToken token, insert_token(conn, admin, "bootstrap", now));
      return std::optional<IssuedToken>(std::move(token));
    });
  }

  Result<User> create_user(const std::string& login, bool is_admin) override {
    return write([&](Connection& conn) -> Result<User> {
      STOWAGE_ASSIGN_OR_RETURN(User user, insert_user(conn, login, is_admin, now_iso()));
      return user;
    });
  }

  Result<User> find_user(const std::string& login) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(
        Stmt stmt,
        conn->prepare(concat({"SELECT ", kUserColumns, " FROM users u WHERE u.login = ?"})));
    STOWAGE_TRY(stmt.bind(1, login));
    STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
    if (!row) return not_found("user '" + login + "' not found");
    return read_user(stmt);
  }

  Result<Team> create_team(const std::string& name, const std::string& description) override {
    return write([&](Connection& conn) -> Result<Team> {
      STOWAGE_ASSIGN_OR_RETURN(Team team, insert_team(conn, name, description, now_iso()));
      return team;
    });
  }

  /// Adds the user to the team, or changes the role of a member.
  Status add_member(Id team_id, Id user_id, Role role) override {
    return write([&](Connection& conn) -> Status {
      STOWAGE_TRY(require_team(conn, team_id));
      STOWAGE_TRY(require_user(conn, user_id));
      STOWAGE_TRY(upsert_member(conn, team_id, user_id, role));
      return {};
    });
  }

  Result<std::vector<Membership>> memberships(Id user_id) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(Txn txn, Txn::read(*conn));
    STOWAGE_TRY(require_user(*conn, user_id));
    STOWAGE_ASSIGN_OR_RETURN(Stmt stmt,
                             conn->prepare(concat({"SELECT ", kTeamColumns,
                                                   ", m.role FROM memberships m JOIN teams t "
                                                   "ON t.id = m.team_id WHERE m.user_id = ? "
                                                   "ORDER BY t.id"})));
    STOWAGE_TRY(stmt.bind(1, user_id));
    std::vector<Membership> out;
    for (;;) {
      STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) break;
      STOWAGE_ASSIGN_OR_RETURN(const Role role, role_from_string(stmt.text(5)));
      out.push_back(Membership{read_team(stmt), role});
    }
    return out;
  }

  Result<IssuedToken> create_token(Id user_id, const std::string& name) override {
    return write([&](Connection& conn) -> Result<IssuedToken> {
      STOWAGE_ASSIGN_OR_RETURN(
          Stmt stmt,
          conn.prepare(concat({"SELECT ", kUserColumns, " FROM users u WHERE u.id = ?"})));
      STOWAGE_TRY(stmt.bind(1, user_id));
      STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) return not_found("user " + std::to_string(user_id) + " not found");
      const User user = read_user(stmt);
      STOWAGE_ASSIGN_OR_RETURN(IssuedToken token, insert_token(conn, user, name, now_iso()));
      return token;
    });
  }

  Result<std::vector<TokenInfo>> list_tokens() override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn->prepare(concat({kTokenSelect, " ORDER BY t.id"})));
    std::vector<TokenInfo> out;
    for (;;) {
      STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) break;
      out.push_back(read_token(stmt));
    }
    return out;
  }

  Status revoke_token(Id token_id) override {
    return write([&](Connection& conn) -> Status {
      STOWAGE_ASSIGN_OR_RETURN(
          Stmt stmt,
          conn.prepare("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?"));
      STOWAGE_TRY(stmt.bind_all(now_iso(), token_id));
      STOWAGE_TRY(stmt.run());
      if (conn.changes() == 0) return not_found("token " + std::to_string(token_id) + " not found");
      return {};
    });
  }

  Result<Principal> authenticate(const std::string& secret) override {
    if (secret.empty()) return make_error(ErrorCode::Unauthenticated, "no API token given");
    const std::string hash = secret_hash(secret);
    Principal principal;
    std::optional<std::string> last_used;
    {
      STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
      STOWAGE_ASSIGN_OR_RETURN(Txn txn, Txn::read(*conn));
      STOWAGE_ASSIGN_OR_RETURN(
          Stmt stmt, conn->prepare(concat(
                         {"SELECT t.id, t.revoked_at IS NOT NULL, t.last_used_at, ", kUserColumns,
                          " FROM api_tokens t JOIN users u ON u.id = t.user_id "
                          "WHERE t.secret_sha256 = ?"})));
      STOWAGE_TRY(stmt.bind(1, hash));
      STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
      // The messages never echo the secret.
      if (!row) return make_error(ErrorCode::Unauthenticated, "unknown API token");
      if (stmt.int64(1) != 0) {
        return make_error(ErrorCode::Unauthenticated, "the API token has been revoked");
      }
      principal.token_id = stmt.int64(0);
      last_used = stmt.opt_text(2);
      principal.user = read_user(stmt, 3);

      STOWAGE_ASSIGN_OR_RETURN(
          Stmt teams,
          conn->prepare("SELECT team_id FROM memberships WHERE user_id = ? ORDER BY team_id"));
      STOWAGE_TRY(teams.bind(1, principal.user.id));
      for (;;) {
        STOWAGE_ASSIGN_OR_RETURN(const bool more, teams.step());
        if (!more) break;
        principal.team_ids.push_back(teams.int64(0));
      }
    }
    const auto now = std::chrono::system_clock::now();
    const std::string stale = iso_time(now - kLastUsedGranularity);
    if (!last_used || *last_used < stale) {
      // Best effort: failing to record the use must not refuse a valid token.
      (void)touch_token(principal.token_id, iso_time(now), stale);
    }
    return principal;
  }

  Result<Team> get_team(Id id) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(
        Stmt stmt,
        conn->prepare(concat({"SELECT ", kTeamColumns, " FROM teams t WHERE t.id = ?"})));
    STOWAGE_TRY(stmt.bind(1, id));
    STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
    if (!row) return not_found("team " + std::to_string(id) + " not found");
    return read_team(stmt);
  }

  Result<Workspace> create_workspace(Id team_id, const std::string& name,
                                     const std::string& description) override {
    return write([&](Connection& conn) -> Result<Workspace> {
      STOWAGE_ASSIGN_OR_RETURN(Workspace workspace,
                               insert_workspace(conn, team_id, name, description, now_iso()));
      return workspace;
    });
  }

  Result<Workspace> get_workspace(Id id) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    return get_row(*conn, workspace_entity(), id);
  }

  Result<Page<Workspace>> list_workspaces(Id team_id, const ListQuery& query) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    Where where;
    where.add("w.team_id = ?", team_id);
    return list_rows(*conn, workspace_entity(), std::move(where), query);
  }

  Result<Project> create_project(const Project& project) override {
    if (project.name.empty()) return invalid("create project: the name is empty");
    const std::string type = project.type.empty() ? "images" : project.type;
    if (type != "images" && type != "videos") {
      return invalid("create project: type must be 'images' or 'videos', not '" + type + "'");
    }
    return write([&](Connection& conn) -> Result<Project> {
      Id team_id = 0;
      {
        STOWAGE_ASSIGN_OR_RETURN(Stmt ws,
                                 conn.prepare("SELECT team_id FROM workspaces WHERE id = ?"));
        STOWAGE_TRY(ws.bind(1, project.workspace_id));
        STOWAGE_ASSIGN_OR_RETURN(const bool row, ws.step());
        if (!row) {
          return not_found("workspace " + std::to_string(project.workspace_id) + " not found");
        }
        team_id = ws.int64(0);
      }
      if (project.created_by != 0) STOWAGE_TRY(require_user(conn, project.created_by));
      const std::string now = now_iso();
      STOWAGE_ASSIGN_OR_RETURN(
          Stmt stmt,
          conn.prepare("INSERT INTO projects (workspace_id, team_id, name, description, type, "
                        "readme, custom_data, settings, created_by, created_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"));
      STOWAGE_TRY(stmt.bind_all(project.workspace_id, team_id, project.name, project.description,
                                type, project.readme, json_or_empty(project.custom_data),
                                json_or_empty(project.settings), user_ref(project.created_by), now,
                                now));
      STOWAGE_ASSIGN_OR_RETURN(const Id id,
                               inserted_id(stmt, "project '" + project.name +
                                                     "' already exists in workspace " +
                                                     std::to_string(project.workspace_id)));
      return get_row(conn, project_entity(), id);
    });
  }

  Result<Project> get_project(Id id) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    return get_row(*conn, project_entity(), id);
  }

  Result<Page<Project>> list_projects(std::optional<Id> workspace_id, std::optional<Id> team_id,
                                      const ListQuery& query) override {
    if (!workspace_id && !team_id) return invalid("list projects: give a workspace or a team");
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    Where where;
    if (workspace_id) where.add("p.workspace_id = ?", *workspace_id);
    if (team_id) where.add("p.team_id = ?", *team_id);
    return list_rows(*conn, project_entity(), std::move(where), query);
  }

  Result<Dataset> create_dataset(const Dataset& dataset) override {
    if (dataset.name.empty()) return invalid("create dataset: the name is empty");
    return write([&](Connection& conn) -> Result<Dataset> {
      const std::string project = "project " + std::to_string(dataset.project_id);
      STOWAGE_ASSIGN_OR_RETURN(
          const bool project_found,
          row_exists(conn, "SELECT 1 FROM projects WHERE id = ?", dataset.project_id));
      if (!project_found) return not_found(project + " not found");
      if (dataset.parent_id) {
        STOWAGE_ASSIGN_OR_RETURN(
            Stmt parent, conn.prepare("SELECT 1 FROM datasets WHERE id = ? AND project_id = ?"));
        STOWAGE_TRY(parent.bind_all(*dataset.parent_id, dataset.project_id));
        STOWAGE_ASSIGN_OR_RETURN(const bool parent_found, parent.step());
        if (!parent_found) {
          return not_found("parent dataset " + std::to_string(*dataset.parent_id) +
                           " is not a dataset of " + project);
        }
      }
      if (dataset.created_by != 0) STOWAGE_TRY(require_user(conn, dataset.created_by));
      const std::string now = now_iso();
      STOWAGE_ASSIGN_OR_RETURN(
          Stmt stmt, conn.prepare("INSERT INTO datasets (project_id, parent_id, name, description, "
                                   "custom_data, created_by, created_at, updated_at) "
                                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"));
      STOWAGE_TRY(stmt.bind_all(dataset.project_id, dataset.parent_id, dataset.name,
                                dataset.description, json_or_empty(dataset.custom_data),
                                user_ref(dataset.created_by), now, now));
      const std::string where = dataset.parent_id
                                    ? "under dataset " + std::to_string(*dataset.parent_id)
                                    : "at the top level of " + project;
      STOWAGE_ASSIGN_OR_RETURN(
          const Id id,
          inserted_id(stmt, "dataset '" + dataset.name + "' already exists " + where));
      return get_row(conn, dataset_entity(), id);
    });
  }

  Result<Dataset> get_dataset(Id id) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    return get_row(*conn, dataset_entity(), id);
  }

  Result<Page<Dataset>> list_datasets(Id project_id, bool recursive,
                                      const ListQuery& query) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    Where where;
    where.add("d.project_id = ?", project_id);
    // A parentId filter means "children of": the API forces recursive then.
    bool by_parent = false;
    for (const Filter& filter : query.filters) by_parent = by_parent || filter.field == "parentId";
    if (!recursive && !by_parent) where.add("d.parent_id IS NULL");
    return list_rows(*conn, dataset_entity(), std::move(where), query);
  }

  Result<Blob> put_blob(const Blob& blob) override {
    if (!is_sha256_hex(blob.sha256_hex)) {
      return invalid("put blob: '" + blob.sha256_hex + "' is not 64 lower-case hex digits");
    }
    if (blob.bucket.empty() || blob.key.empty()) {
      return invalid("put blob " + blob.sha256_hex + ": bucket and key are required");
    }
    STOWAGE_TRY(check_size(blob.size, "put blob " + blob.sha256_hex));
    return write([&](Connection& conn) -> Result<Blob> {
      {
        STOWAGE_ASSIGN_OR_RETURN(
            Stmt stmt, conn.prepare("SELECT 1 FROM blob_collections WHERE sha256_hex = ?"));
        STOWAGE_TRY(stmt.bind(1, blob.sha256_hex));
        STOWAGE_ASSIGN_OR_RETURN(const bool collecting, stmt.step());
        if (collecting) {
          Error e = make_error(ErrorCode::Unavailable,
                               "blob " + blob.sha256_hex +
                                   " is being garbage-collected: publish the bytes again once "
                                   "`stowage gc` has finished, then retry");
          e.retryable = true;
          return e;
        }
      }
      {
        STOWAGE_ASSIGN_OR_RETURN(
            Stmt stmt,
            conn.prepare("INSERT INTO blobs (sha256_hex, size, mime, width, height, bucket, "
                          "object_key, created_at, file_meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                          "ON CONFLICT (sha256_hex) DO NOTHING"));
        STOWAGE_TRY(stmt.bind_all(blob.sha256_hex, static_cast<std::int64_t>(blob.size), blob.mime,
                                  blob.width, blob.height, blob.bucket, blob.key, now_iso(),
                                  json_or_empty(blob.file_meta)));
        STOWAGE_TRY(stmt.run());
      }
      STOWAGE_ASSIGN_OR_RETURN(Blob stored, select_blob(conn, blob.sha256_hex));
      return stored;
    });
  }

  Result<Blob> get_blob(const std::string& sha256_hex) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    return select_blob(*conn, sha256_hex);
  }

  Result<std::vector<std::string>> existing_blobs(
      const std::vector<std::string>& sha256_hex) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(Txn txn, Txn::read(*conn));
    std::vector<std::string> out;
    for (const std::string& hex : sha256_hex) {
      STOWAGE_ASSIGN_OR_RETURN(Stmt stmt,
                               conn->prepare("SELECT 1 FROM blobs WHERE sha256_hex = ?"));
      STOWAGE_TRY(stmt.bind(1, hex));
      STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (row) out.push_back(hex);
    }
    return out;
  }

  Status grant_blob(const std::string& sha256_hex, Id user_id) override {
    if (!is_sha256_hex(sha256_hex)) {
      return invalid("grant blob: '" + sha256_hex + "' is not 64 lower-case hex digits");
    }
    return write([&](Connection& conn) -> Status {
      STOWAGE_ASSIGN_OR_RETURN(
          Stmt stmt, conn.prepare("INSERT INTO blob_grants (sha256_hex, user_id, created_at) "
                                  "VALUES (?, ?, ?) ON CONFLICT (sha256_hex, user_id) DO NOTHING"));
      STOWAGE_TRY(stmt.bind_all(sha256_hex, user_id, now_iso()));
      return stmt.run();
    });
  }

  Result<std::vector<std::string>> usable_blobs(const std::vector<std::string>& sha256_hex,
                                                Id user_id,
                                                const std::vector<Id>& team_ids) override {
    // The team ids are integers from the catalog, so they are written into the statement.
    std::string teams;
    for (Id team : team_ids) teams += (teams.empty() ? "" : ", ") + std::to_string(team);
    std::string sql =
        "SELECT 1 FROM blobs b WHERE b.sha256_hex = ? AND (EXISTS (SELECT 1 FROM blob_grants g "
        "WHERE g.sha256_hex = b.sha256_hex AND g.user_id = ?)";
    if (!teams.empty()) {
      sql += " OR EXISTS (SELECT 1 FROM items i WHERE i.blob_sha256 = b.sha256_hex AND "
             "i.team_id IN (" + teams + "))";
    }
    sql += ")";
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(Txn txn, Txn::read(*conn));
    std::vector<std::string> out;
    for (const std::string& hex : sha256_hex) {
      STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn->prepare(sql));
      STOWAGE_TRY(stmt.bind_all(hex, user_id));
      STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (row) out.push_back(hex);
    }
    return out;
  }

  Result<std::vector<Item>> add_items(Id dataset_id, const std::vector<NewItem>& items,
                                      Id created_by) override {
    const std::string in_dataset = " in dataset " + std::to_string(dataset_id);
    std::unordered_set<std::string_view> names;
    for (const NewItem& item : items) {
      if (item.name.empty()) return invalid("add items: an item name is empty");
      const std::string what = "add item '" + item.name + "'";
      if (item.blob_sha256_hex.has_value() == item.link.has_value()) {
        return invalid(what + ": exactly one of blob and link must be set");
      }
      if (item.link && item.link->empty()) return invalid(what + ": the link is empty");
      STOWAGE_TRY(check_size(item.size, what));
      if (!names.insert(item.name).second) {
        return make_error(ErrorCode::AlreadyExists,
                          "item name '" + item.name + "' appears twice in the request");
      }
    }

    return write([&](Connection& conn) -> Result<std::vector<Item>> {
      Item base;
      base.dataset_id = dataset_id;
      {
        STOWAGE_ASSIGN_OR_RETURN(
            Stmt stmt, conn.prepare("SELECT d.project_id, p.workspace_id, p.team_id FROM datasets "
                                     "d JOIN projects p ON p.id = d.project_id WHERE d.id = ?"));
        STOWAGE_TRY(stmt.bind(1, dataset_id));
        STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
        if (!row) return not_found("dataset " + std::to_string(dataset_id) + " not found");
        base.project_id = stmt.int64(0);
        base.workspace_id = stmt.int64(1);
        base.team_id = stmt.int64(2);
      }
      if (created_by != 0) {
        STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn.prepare("SELECT login FROM users WHERE id = ?"));
        STOWAGE_TRY(stmt.bind(1, created_by));
        STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
        if (!row) return not_found("user " + std::to_string(created_by) + " not found");
        base.created_by_login = stmt.text(0);
      }
      base.created_at = base.updated_at = now_iso();

      std::vector<Item> out;
      out.reserve(items.size());
      for (const NewItem& in : items) {
        Item item = base;
        item.name = in.name;
        item.blob_sha256_hex = in.blob_sha256_hex;
        item.link = in.link;
        item.mime = in.mime;
        item.size = in.size;
        item.width = in.width;
        item.height = in.height;
        item.meta = json_or_empty(in.meta);
        item.file_meta = json_or_empty(in.file_meta);
        item.content_sha256_hex = in.blob_sha256_hex;
        if (in.blob_sha256_hex) {
          // Unset properties come from the blob, so an item is never poorer than its bytes.
          auto blob = select_blob(conn, *in.blob_sha256_hex);
          if (!blob) {
            return explain(std::move(blob).error(), ErrorCode::NotFound,
                           "add item '" + in.name + "': blob " + *in.blob_sha256_hex +
                               " not found (upload the bytes first)");
          }
          if (item.mime.empty()) item.mime = blob->mime;
          if (item.size == 0) item.size = blob->size;
          if (!item.width) item.width = blob->width;
          if (!item.height) item.height = blob->height;
          if (item.file_meta == "{}") item.file_meta = blob->file_meta;
          item.blob_bucket = blob->bucket;
          item.blob_key = blob->key;
        }
        STOWAGE_ASSIGN_OR_RETURN(
            Stmt stmt,
            conn.prepare(
                "INSERT INTO items (dataset_id, project_id, workspace_id, team_id, name, "
                "blob_sha256, link, mime, size, width, height, meta, created_by, "
                "created_at, updated_at, file_meta, content_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"));
        STOWAGE_TRY(stmt.bind_all(item.dataset_id, item.project_id, item.workspace_id, item.team_id,
                                  item.name, item.blob_sha256_hex, item.link, item.mime,
                                  static_cast<std::int64_t>(item.size), item.width, item.height,
                                  item.meta, user_ref(created_by), item.created_at, item.updated_at,
                                  item.file_meta, item.content_sha256_hex));
        STOWAGE_ASSIGN_OR_RETURN(
            item.id, inserted_id(stmt, "item '" + item.name + "' already exists" + in_dataset));
        out.push_back(std::move(item));
      }
      return out;
    });
  }

  Result<Item> get_item(Id id) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    return get_row(*conn, item_entity(), id);
  }

  Result<Page<Item>> list_items(std::optional<Id> dataset_id, std::optional<Id> project_id,
                                const ListQuery& query) override {
    if (!dataset_id && !project_id) return invalid("list items: give a dataset or a project");
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    Where where;
    if (dataset_id) where.add("i.dataset_id = ?", *dataset_id);
    if (project_id) where.add("i.project_id = ?", *project_id);
    ListOptions options;
    options.cursors = &cursors_;
    if (dataset_id && !project_id) {
      options.kept_count_sql = "SELECT items FROM dataset_stats WHERE dataset_id = ?";
      options.kept_id = *dataset_id;
    } else if (project_id && !dataset_id) {
      options.kept_count_sql = "SELECT items FROM project_stats WHERE project_id = ?";
      options.kept_id = *project_id;
    }
    return list_rows(*conn, item_entity(), std::move(where), query, options);
  }

  Result<std::vector<Item>> find_items_by_name(Id dataset_id,
                                               const std::vector<std::string>& names) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(Txn txn, Txn::read(*conn));
    const std::string sql =
        concat({item_entity().select, " WHERE i.dataset_id = ? AND i.name = ?"});
    std::vector<Item> out;
    for (const std::string& name : names) {
      STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn->prepare(sql));
      STOWAGE_TRY(stmt.bind_all(dataset_id, name));
      STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (row) out.push_back(read_item(stmt));
    }
    return out;
  }

  Result<std::vector<Id>> blob_team_ids(const std::string& sha256_hex) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(
        Stmt stmt, conn->prepare("SELECT DISTINCT team_id FROM items WHERE blob_sha256 = ?"));
    STOWAGE_TRY(stmt.bind(1, sha256_hex));
    std::vector<Id> out;
    for (;;) {
      STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) return out;
      out.push_back(stmt.int64(0));
    }
  }

  Result<std::vector<Blob>> list_blobs(const std::string& after_sha256_hex,
                                       std::size_t limit) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(
        Stmt stmt,
        conn->prepare(concat({kBlobSelect, " WHERE sha256_hex > ? ORDER BY sha256_hex LIMIT ?"})));
    STOWAGE_TRY(stmt.bind_all(after_sha256_hex, static_cast<std::int64_t>(limit)));
    return read_blobs(stmt);
  }

  Result<std::vector<Item>> scan_items(Id after_id, std::size_t limit) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    ListQuery query;
    query.after = after_id;
    query.per_page = static_cast<std::int64_t>(std::max<std::size_t>(1, limit));
    ListOptions options;
    options.count = false;
    STOWAGE_ASSIGN_OR_RETURN(auto page, list_rows(*conn, item_entity(), Where{}, query, options));
    return std::move(page.entities);
  }

  Result<std::vector<Blob>> unreferenced_blobs(const std::string& created_before,
                                               const std::string& after_sha256_hex,
                                               std::size_t limit) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(
        Stmt stmt,
        conn->prepare(concat({kBlobSelect,
                              " WHERE sha256_hex > ? AND created_at < ? AND NOT EXISTS (SELECT 1 "
                              "FROM items WHERE items.blob_sha256 = blobs.sha256_hex) "
                              "ORDER BY sha256_hex LIMIT ?"})));
    STOWAGE_TRY(
        stmt.bind_all(after_sha256_hex, created_before, static_cast<std::int64_t>(limit)));
    return read_blobs(stmt);
  }

  Result<bool> begin_blob_collection(const std::string& sha256_hex,
                                     const std::string& created_before) override {
    const std::string now = now_iso();
    return write([&](Connection& conn) -> Result<bool> {
      {
        STOWAGE_ASSIGN_OR_RETURN(
            Stmt stmt,
            conn.prepare("INSERT INTO blob_collections (sha256_hex, size, bucket, object_key, "
                         "started_at) SELECT sha256_hex, size, bucket, object_key, ? FROM blobs "
                         "WHERE sha256_hex = ? AND created_at < ? AND NOT EXISTS (SELECT 1 FROM "
                         "items WHERE blob_sha256 = ?) ON CONFLICT (sha256_hex) DO NOTHING"));
        STOWAGE_TRY(stmt.bind_all(now, sha256_hex, created_before, sha256_hex));
        STOWAGE_TRY(stmt.run());
      }
      if (conn.changes() == 0) return false;
      STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn.prepare("DELETE FROM blobs WHERE sha256_hex = ?"));
      STOWAGE_TRY(stmt.bind(1, sha256_hex));
      STOWAGE_TRY(stmt.run());
      return true;
    });
  }

  Status end_blob_collection(const std::string& sha256_hex) override {
    return write([&](Connection& conn) -> Status {
      STOWAGE_ASSIGN_OR_RETURN(Stmt stmt,
                               conn.prepare("DELETE FROM blob_collections WHERE sha256_hex = ?"));
      STOWAGE_TRY(stmt.bind(1, sha256_hex));
      return stmt.run();
    });
  }

  Result<std::vector<Blob>> pending_blob_collections() override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(
        Stmt stmt, conn->prepare("SELECT sha256_hex, size, bucket, object_key, started_at FROM "
                                 "blob_collections ORDER BY sha256_hex"));
    std::vector<Blob> out;
    for (;;) {
      STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) return out;
      Blob b;
      b.sha256_hex = stmt.text(0);
      b.size = static_cast<std::uint64_t>(stmt.int64(1));
      b.bucket = stmt.text(2);
      b.key = stmt.text(3);
      b.created_at = stmt.text(4);
      out.push_back(std::move(b));
    }
  }

  Status set_item_probe(Id item_id, const std::string& mime, std::uint64_t size,
                        std::optional<std::int64_t> width,
                        std::optional<std::int64_t> height) override {
    STOWAGE_TRY(check_size(size, "item " + std::to_string(item_id)));
    const std::string now = now_iso();
    return write([&](Connection& conn) -> Status {
      {
        STOWAGE_ASSIGN_OR_RETURN(
            Stmt stmt, conn.prepare("SELECT CASE WHEN link IS NULL THEN 0 ELSE 1 END FROM items "
                                    "WHERE id = ?"));
        STOWAGE_TRY(stmt.bind(1, item_id));
        STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
        if (!row) return not_found("item " + std::to_string(item_id) + " not found");
        if (stmt.int64(0) == 0) {
          return invalid("item " + std::to_string(item_id) +
                         " has stored bytes: its metadata is its blob's");
        }
      }
      STOWAGE_ASSIGN_OR_RETURN(
          Stmt stmt, conn.prepare("UPDATE items SET mime = ?, size = ?, width = ?, height = ?, "
                                  "updated_at = ? WHERE id = ?"));
      STOWAGE_TRY(stmt.bind_all(mime, static_cast<std::int64_t>(size), width, height, now,
                                item_id));
      return stmt.run();
    });
  }

  Status set_blob_file_meta(const std::string& sha256_hex, const std::string& file_meta) override {
    return write([&](Connection& conn) -> Status {
      {
        STOWAGE_ASSIGN_OR_RETURN(
            Stmt stmt, conn.prepare("UPDATE blobs SET file_meta = ? WHERE sha256_hex = ?"));
        STOWAGE_TRY(stmt.bind_all(json_or_empty(file_meta), sha256_hex));
        STOWAGE_TRY(stmt.run());
      }
      if (conn.changes() == 0) return not_found("blob " + sha256_hex + " not found");
      return {};
    });
  }

  Status set_item_links(const std::vector<LinkChange>& changes) override {
    std::unordered_set<Id> seen;
    for (const LinkChange& change : changes) {
      if (change.link.empty()) {
        return invalid("set links: the link of item " + std::to_string(change.item_id) +
                       " is empty");
      }
      if (!seen.insert(change.item_id).second) {
        return invalid("set links: item " + std::to_string(change.item_id) + " appears twice");
      }
    }
    return write([&](Connection& conn) -> Status {
      const std::string now = now_iso();
      for (const LinkChange& change : changes) {
        STOWAGE_ASSIGN_OR_RETURN(auto current, get_row(conn, item_entity(), change.item_id));
        if (change.expect_blob_sha256_hex && current.blob_sha256_hex != change.expect_blob_sha256_hex) {
          return make_error(ErrorCode::PreconditionFailed,
                            "item " + std::to_string(change.item_id) +
                                " changed meanwhile: it no longer has the bytes that were copied");
        }
        if (change.expect_link && current.link != change.expect_link) {
          return make_error(ErrorCode::PreconditionFailed,
                            "item " + std::to_string(change.item_id) +
                                " changed meanwhile: it no longer has the link that was copied");
        }
        STOWAGE_ASSIGN_OR_RETURN(
            Stmt stmt, conn.prepare("UPDATE items SET link = ?, blob_sha256 = NULL, "
                                     "updated_at = ? WHERE id = ?"));
        STOWAGE_TRY(stmt.bind_all(change.link, now, change.item_id));
        STOWAGE_TRY(stmt.run());
      }
      return {};
    });
  }

  Status set_item_blobs(const std::vector<BlobChange>& changes) override {
    std::unordered_set<Id> seen;
    for (const BlobChange& change : changes) {
      if (!seen.insert(change.item_id).second) {
        return invalid("set blobs: item " + std::to_string(change.item_id) + " appears twice");
      }
    }
    return write([&](Connection& conn) -> Status {
      const std::string now = now_iso();
      for (const BlobChange& change : changes) {
        STOWAGE_ASSIGN_OR_RETURN(auto current, get_row(conn, item_entity(), change.item_id));
        if (change.expect_link && current.link != change.expect_link) {
          return make_error(ErrorCode::PreconditionFailed,
                            "item " + std::to_string(change.item_id) +
                                " changed meanwhile: it no longer has the link that was copied");
        }
        auto blob = select_blob(conn, change.blob_sha256_hex);
        if (!blob) {
          return explain(std::move(blob).error(), ErrorCode::NotFound,
                         "item " + std::to_string(change.item_id) + ": blob " +
                             change.blob_sha256_hex + " not found");
        }
        STOWAGE_ASSIGN_OR_RETURN(
            Stmt stmt, conn.prepare("UPDATE items SET blob_sha256 = ?, content_sha256 = ?, "
                                     "link = NULL, updated_at = ? WHERE id = ?"));
        STOWAGE_TRY(
            stmt.bind_all(change.blob_sha256_hex, change.blob_sha256_hex, now, change.item_id));
        STOWAGE_TRY(stmt.run());
      }
      return {};
    });
  }

  Status remove_items(const std::vector<Id>& ids) override {
    return write([&](Connection& conn) -> Status {
      for (Id id : ids) {
        STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn.prepare("DELETE FROM items WHERE id = ?"));
        STOWAGE_TRY(stmt.bind(1, id));
        STOWAGE_TRY(stmt.run());
      }
      return {};
    });
  }

  Result<std::string> shared_setting(const std::string& key,
                                     const std::string& proposed) override {
    if (key.empty()) return invalid("shared setting: the key is empty");
    return write([&](Connection& conn) -> Result<std::string> {
      {
        STOWAGE_ASSIGN_OR_RETURN(
            Stmt stmt, conn.prepare("INSERT INTO settings (key, value, created_at) VALUES (?, ?, ?) "
                                    "ON CONFLICT (key) DO NOTHING"));
        STOWAGE_TRY(stmt.bind_all(key, proposed, now_iso()));
        STOWAGE_TRY(stmt.run());
      }
      STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn.prepare("SELECT value FROM settings WHERE key = ?"));
      STOWAGE_TRY(stmt.bind(1, key));
      STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) return make_error(ErrorCode::Internal, "setting '" + key + "' vanished");
      return stmt.text(0);
    });
  }

  Status take_lease(const std::string& name, const std::string& holder,
                    std::chrono::milliseconds ttl) override {
    if (name.empty() || holder.empty()) return invalid("take lease: name and holder are required");
    return write([&](Connection& conn) -> Status {
      const auto now = std::chrono::system_clock::now();
      const std::string now_text = iso_time(now);
      {
        // Inserted, or updated when it is ours or has expired; left alone otherwise.
        STOWAGE_ASSIGN_OR_RETURN(
            Stmt stmt,
            conn.prepare("INSERT INTO leases (name, holder, taken_at, expires_at) "
                         "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                         "holder = excluded.holder, expires_at = excluded.expires_at, "
                         "taken_at = CASE WHEN leases.holder = excluded.holder "
                         "THEN leases.taken_at ELSE excluded.taken_at END "
                         "WHERE leases.holder = excluded.holder OR leases.expires_at < ?"));
        STOWAGE_TRY(stmt.bind_all(name, holder, now_text, iso_time(now + ttl), now_text));
        STOWAGE_TRY(stmt.run());
      }
      if (conn.changes() == 1) return {};
      STOWAGE_ASSIGN_OR_RETURN(Stmt stmt,
                               conn.prepare("SELECT holder, taken_at, expires_at FROM leases "
                                            "WHERE name = ?"));
      STOWAGE_TRY(stmt.bind(1, name));
      STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) return make_error(ErrorCode::Internal, "lease '" + name + "' vanished");
      return make_error(ErrorCode::PreconditionFailed,
                        name + " is already running: " + stmt.text(0) + " holds it since " +
                            stmt.text(1) + " (the lease runs until " + stmt.text(2) +
                            " unless renewed)");
    });
  }

  Status take_over_lease(const std::string& name, const std::string& holder,
                         std::chrono::milliseconds ttl, const std::string& dead_holder) override {
    return write([&](Connection& conn) -> Status {
      const auto now = std::chrono::system_clock::now();
      STOWAGE_ASSIGN_OR_RETURN(
          Stmt stmt, conn.prepare("UPDATE leases SET holder = ?, taken_at = ?, expires_at = ? "
                                  "WHERE name = ? AND holder = ?"));
      STOWAGE_TRY(stmt.bind_all(holder, iso_time(now), iso_time(now + ttl), name, dead_holder));
      STOWAGE_TRY(stmt.run());
      if (conn.changes() == 1) return {};
      return make_error(ErrorCode::PreconditionFailed,
                        name + ": " + dead_holder + " no longer holds the lease");
    });
  }

  // --- Shared work ----------------------------------------------------------------------------

  Status open_work_run(const std::string& run, const std::string& spec) override {
    if (run.empty()) return invalid("open work run: the run needs a name");
    return write([&](Connection& conn) -> Status {
      {
        STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn.prepare("DELETE FROM work_items WHERE run = ?"));
        STOWAGE_TRY(stmt.bind(1, run));
        STOWAGE_TRY(stmt.run());
      }
      STOWAGE_ASSIGN_OR_RETURN(
          Stmt stmt, conn.prepare("INSERT INTO work_runs (run, spec, opened_at) VALUES (?, ?, ?) "
                                  "ON CONFLICT (run) DO UPDATE SET spec = excluded.spec, "
                                  "opened_at = excluded.opened_at"));
      STOWAGE_TRY(stmt.bind_all(run, spec, now_iso()));
      return stmt.run();
    });
  }

  Result<std::optional<std::string>> work_run_spec(const std::string& run) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn->prepare("SELECT spec FROM work_runs WHERE run = ?"));
    STOWAGE_TRY(stmt.bind(1, run));
    STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(stmt.text(0));
  }

  Status add_work(const std::string& run, const std::vector<Id>& item_ids) override {
    if (item_ids.empty()) return {};
    return write([&](Connection& conn) -> Status {
      // One JSON array parameter for the whole batch, as list filters do.
      boost::json::array ids;
      for (const Id id : item_ids) ids.emplace_back(id);
      const std::string_view source =
          conn.dialect() == Dialect::Postgres
              ? "SELECT value::bigint AS item FROM json_array_elements_text(?::json)"
              : "SELECT value AS item FROM json_each(?)";
      STOWAGE_ASSIGN_OR_RETURN(
          Stmt stmt,
          conn.prepare(concat({"INSERT INTO work_items (run, item_id) SELECT r.run, ids.item "
                               "FROM work_runs r, (", source,
                               ") ids WHERE r.run = ? ON CONFLICT DO NOTHING"})));
      STOWAGE_TRY(stmt.bind_all(boost::json::serialize(ids), run));
      STOWAGE_TRY(stmt.run());
      STOWAGE_ASSIGN_OR_RETURN(Stmt open, conn.prepare("SELECT 1 FROM work_runs WHERE run = ?"));
      STOWAGE_TRY(open.bind(1, run));
      STOWAGE_ASSIGN_OR_RETURN(const bool row, open.step());
      if (!row) return not_found("work run '" + run + "' is not open");
      return {};
    });
  }

  Result<std::vector<Id>> claim_work(const std::string& run, const std::string& holder,
                                     std::size_t limit, std::chrono::milliseconds hold) override {
    if (holder.empty() || limit == 0) return invalid("claim work: a holder and a limit >= 1");
    return write([&](Connection& conn) -> Result<std::vector<Id>> {
      const auto now = std::chrono::system_clock::now();
      const std::string now_text = iso_time(now);
      // PostgreSQL: rows another worker is claiming right now are skipped, not waited for.
      // SQLite has one writer at a time: the subquery sees every claim before it.
      const std::string_view lock =
          conn.dialect() == Dialect::Postgres ? " FOR UPDATE SKIP LOCKED" : "";
      STOWAGE_ASSIGN_OR_RETURN(
          Stmt stmt,
          conn.prepare(concat(
              {"UPDATE work_items SET state = 'taken', holder = ?, held_until = ? "
               "WHERE run = ? AND item_id IN (SELECT item_id FROM work_items WHERE run = ? AND "
               "(state = 'pending' OR (state = 'taken' AND held_until < ?)) "
               "ORDER BY item_id LIMIT ?",
               lock, ") RETURNING item_id"})));
      STOWAGE_TRY(stmt.bind_all(holder, iso_time(now + hold), run, run, now_text,
                                static_cast<std::int64_t>(limit)));
      std::vector<Id> out;
      for (;;) {
        STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
        if (!row) break;
        out.push_back(stmt.int64(0));
      }
      std::sort(out.begin(), out.end());
      return out;
    });
  }

  Result<bool> finish_work(const std::string& run, Id item_id, const std::string& holder,
                           bool failed, const std::string& result) override {
    return write([&](Connection& conn) -> Result<bool> {
      STOWAGE_ASSIGN_OR_RETURN(
          Stmt stmt, conn.prepare("UPDATE work_items SET state = ?, result = ?, held_until = NULL "
                                  "WHERE run = ? AND item_id = ? AND holder = ? AND "
                                  "state = 'taken'"));
      STOWAGE_TRY(
          stmt.bind_all(std::string(failed ? "failed" : "done"), result, run, item_id, holder));
      STOWAGE_TRY(stmt.run());
      return conn.changes() == 1;
    });
  }

  Result<WorkCounts> count_work(const std::string& run) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(
        Stmt stmt,
        conn->prepare("SELECT state, COUNT(*) FROM work_items WHERE run = ? GROUP BY state"));
    STOWAGE_TRY(stmt.bind(1, run));
    WorkCounts counts;
    for (;;) {
      STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) return counts;
      const std::string state = stmt.text(0);
      const std::int64_t n = stmt.int64(1);
      if (state == "pending") counts.pending = n;
      if (state == "taken") counts.taken = n;
      if (state == "done") counts.done = n;
      if (state == "failed") counts.failed = n;
    }
  }

  Result<std::vector<WorkResult>> finished_work(const std::string& run, Id after_item_id,
                                                std::size_t limit) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(
        Stmt stmt, conn->prepare("SELECT item_id, state, result FROM work_items WHERE run = ? "
                                 "AND item_id > ? AND state IN ('done', 'failed') "
                                 "ORDER BY item_id LIMIT ?"));
    STOWAGE_TRY(stmt.bind_all(run, after_item_id, static_cast<std::int64_t>(limit)));
    std::vector<WorkResult> out;
    for (;;) {
      STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) return out;
      out.push_back({stmt.int64(0), stmt.text(1) == "failed", stmt.text(2)});
    }
  }

  Status close_work_run(const std::string& run) override {
    return write([&](Connection& conn) -> Status {
      for (const char* sql :
           {"DELETE FROM work_items WHERE run = ?", "DELETE FROM work_runs WHERE run = ?"}) {
        STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn.prepare(sql));
        STOWAGE_TRY(stmt.bind(1, run));
        STOWAGE_TRY(stmt.run());
      }
      return {};
    });
  }

  Result<std::optional<std::string>> lease_holder(const std::string& name) override {
    STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
    STOWAGE_ASSIGN_OR_RETURN(
        Stmt stmt, conn->prepare("SELECT holder FROM leases WHERE name = ? AND expires_at >= ?"));
    STOWAGE_TRY(stmt.bind_all(name, now_iso()));
    STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
    if (!row) return std::optional<std::string>();
    return std::optional<std::string>(stmt.text(0));
  }

  Status release_lease(const std::string& name, const std::string& holder) override {
    return write([&](Connection& conn) -> Status {
      STOWAGE_ASSIGN_OR_RETURN(Stmt stmt,
                               conn.prepare("DELETE FROM leases WHERE name = ? AND holder = ?"));
      STOWAGE_TRY(stmt.bind_all(name, holder));
      return stmt.run();
    });
  }

 private:
  static Result<std::vector<Blob>> read_blobs(Stmt& stmt) {
    std::vector<Blob> out;
    for (;;) {
      STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
      if (!row) return out;
      out.push_back(read_blob(stmt));
    }
  }

  static Result<Blob> select_blob(Connection& conn, const std::string& sha256_hex) {
    STOWAGE_ASSIGN_OR_RETURN(Stmt stmt,
                             conn.prepare(concat({kBlobSelect, " WHERE sha256_hex = ?"})));
    STOWAGE_TRY(stmt.bind(1, sha256_hex));
    STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
    if (!row) return not_found("blob " + sha256_hex + " not found");
    return read_blob(stmt);
  }

  /// Records a use of the token unless another request did within the granularity.
  Status touch_token(Id token_id, const std::string& now, const std::string& stale) {
    return write([&](Connection& conn) -> Status {
      STOWAGE_ASSIGN_OR_RETURN(Stmt stmt,
                               conn.prepare("UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND "
                                            "(last_used_at IS NULL OR last_used_at < ?)"));
      STOWAGE_TRY(stmt.bind_all(now, token_id, stale));
      STOWAGE_TRY(stmt.run());
      return {};
    });
  }

  /// Runs `body` in a write transaction and commits it; runs it again from the start when it
  /// lost against a concurrent transaction (PostgreSQL's serialization failures and deadlocks;
  /// SQLite's writers queue and never conflict). `body` must have no effect outside the
  /// database, since it may run several times.
  template <class F>
  auto write(F&& body) -> decltype(body(std::declval<Connection&>())) {
    using R = decltype(body(std::declval<Connection&>()));
    std::chrono::milliseconds pause = kFirstConflictPause;
    for (int attempt = 1;; ++attempt) {
      R result = [&]() -> R {
        STOWAGE_ASSIGN_OR_RETURN(auto conn, pool_->acquire());
        STOWAGE_ASSIGN_OR_RETURN(Txn txn, Txn::write(*conn));
        R r = body(*conn);
        if (!r) return r;
        STOWAGE_TRY(txn.commit());
        return r;
      }();
      if (result || !sql::is_conflict(result.error()) || attempt == kMaxWriteAttempts) {
        return result;
      }
      thread_local std::minstd_rand jitter(std::random_device{}());
      std::this_thread::sleep_for(pause + std::chrono::milliseconds(jitter() % (pause.count() + 1)));
      pause *= 2;
    }
  }

  std::unique_ptr<sql::Pool> pool_;
  PageCursors cursors_;
};

}  // namespace

std::unique_ptr<Catalog> make_sql_catalog(std::unique_ptr<sql::Pool> pool) {
  return std::make_unique<SqlCatalog>(std::move(pool));
}

}  // namespace stowage::catalog
