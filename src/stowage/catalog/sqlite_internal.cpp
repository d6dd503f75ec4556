// SPDX-License-Identifier: Apache-2.0
#include "stowage/catalog/sqlite_internal.hpp"

#include "stowage/catalog/sql_catalog.hpp"

#include <array>
#include <chrono>
#include <thread>
#include <system_error>

namespace stowage::catalog::sqlite {

namespace {

/// How long a connection waits for another *process* holding the write lock (the CLI's
/// `stowage token create` next to a running server) before giving up with Unavailable. Writers
/// of this process queue on the writer mutex instead.
constexpr int kBusyTimeoutMs = 5000;
/// The pause between tries to switch a new file to WAL while another connection does.
constexpr int kWalSwitchPauseMs = 10;

}  // namespace

Error to_error(int rc, std::string_view what, sqlite3* db) {
  ErrorCode code = ErrorCode::Internal;
  bool retryable = false;
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      switch (rc) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
          code = ErrorCode::AlreadyExists;
          break;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
          code = ErrorCode::NotFound;
          break;
        default:
          code = ErrorCode::InvalidArgument;
          break;  // CHECK, NOT NULL
      }
      break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      code = ErrorCode::Unavailable;
      retryable = true;
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      code = ErrorCode::Corrupt;
      break;
    case SQLITE_FULL:
      code = ErrorCode::TooLarge;
      break;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      code = ErrorCode::IoError;
      break;
    case SQLITE_PERM:
    case SQLITE_READONLY:
      code = ErrorCode::PermissionDenied;
      break;
    default:
      break;
  }
  std::string message(what);
  message += ": ";
  // sqlite3_errmsg names the constraint's columns, never the bound values, so it holds no secret.
  message +=
      db != nullptr && sqlite3_extended_errcode(db) == rc ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  Error error = make_error(code, std::move(message));
  error.provider_code = "sqlite " + std::to_string(rc);
  error.retryable = retryable;
  return error;
}

// ---- Stmt ---------------------------------------------------------------------------------------

Stmt::~Stmt() {
  if (stmt_ == nullptr || owned_) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  *in_use_ = false;
}

namespace {

Status bind_result(int rc, sqlite3_stmt* stmt) {
  if (rc == SQLITE_OK) return {};
  return to_error(rc, "sqlite bind", sqlite3_db_handle(stmt));
}

}  // namespace

Status Stmt::bind(int index, std::int64_t value) {
  return bind_result(sqlite3_bind_int64(stmt_, index, value), stmt_);
}

Status Stmt::bind(int index, std::string_view value) {
  return bind_result(
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
      stmt_);
}

Status Stmt::bind(int index, std::nullptr_t) {
  return bind_result(sqlite3_bind_null(stmt_, index), stmt_);
}

Status Stmt::bind(int index, const Value& value) {
  return std::visit([&](const auto& v) -> Status { return bind(index, v); }, value);
}

Result<bool> Stmt::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(stmt_);
  return to_error(sqlite3_extended_errcode(db), "sqlite", db);
}

Status Stmt::run() {
  for (;;) {
    STOWAGE_ASSIGN_OR_RETURN(const bool row, step());
    if (!row) return {};
  }
}

std::string Stmt::text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  if (p == nullptr) return {};
  return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
}

// ---- Connection ---------------------------------------------------------------------------------

Result<std::unique_ptr<Connection>> Connection::open(const std::filesystem::path& file,
                                                    std::mutex* writer) {
  sqlite3* raw = nullptr;
  // NOMUTEX: a connection is only ever used by the thread that leased it from the pool.
  const int rc = sqlite3_open_v2(
      file.c_str(), &raw,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) return to_error(rc, "open catalog " + file.string(), db.get());
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  std::unique_ptr<Connection> conn(new Connection(std::move(db), writer));

  // WAL: readers never block the writer nor each other. It is a property of the file, so it is
  // set once and stays; asking again is cheap. Switching a new file to WAL needs its exclusive
  // lock, and SQLite answers BUSY at once, without waiting, to connections that would deadlock
  // doing so together (several processes opening a new catalog at the same time): wait here.
  STOWAGE_ASSIGN_OR_RETURN(Stmt wal, conn->prepare_native("PRAGMA journal_mode=WAL"));
  auto stepped = wal.step();
  for (int waited_ms = 0; !stepped && stepped.error().retryable && waited_ms < kBusyTimeoutMs;
       waited_ms += kWalSwitchPauseMs) {
    sqlite3_reset(wal.handle());
    std::this_thread::sleep_for(std::chrono::milliseconds(kWalSwitchPauseMs));
    stepped = wal.step();
  }
  STOWAGE_ASSIGN_OR_RETURN(const bool row, stepped);
  if (!row || wal.text(0) != "wal") {
    return make_error(ErrorCode::Unsupported,
                      "open catalog " + file.string() + ": the file system does not support " +
                          "SQLite's WAL mode (journal_mode is " + (row ? wal.text(0) : "?") + ")");
  }
  // synchronous=FULL fsyncs the WAL at every commit. NORMAL would keep the database consistent
  // too (bytes are always written before the rows that point at them, so a lost commit leaves
  // orphan bytes, never a dangling row), but a power cut could then undo commits that the API
  // already acknowledged: a client told "item added" would find it gone. Writes come in batches
  // (images.bulk.add sends 50 items per transaction), so one fsync per commit is affordable.
  STOWAGE_TRY(conn->exec("PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;"));
  return conn;
}

Result<Stmt> Connection::prepare_native(std::string_view sql) {
  auto it = cache_.find(std::string(sql));
  if (it != cache_.end() && !it->second.in_use) {
    it->second.in_use = true;
    return Stmt(it->second.stmt.get(), &it->second.in_use, nullptr);
  }
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) return to_error(rc, "sqlite prepare", db_.get());
  if (it == cache_.end() && cache_.size() < kMaxCachedStatements) {
    auto [slot, inserted] = cache_.emplace(std::string(sql), Cached{std::move(stmt), true});
    return Stmt(slot->second.stmt.get(), &slot->second.in_use, nullptr);
  }
  sqlite3_stmt* p = stmt.get();
  return Stmt(p, nullptr, std::move(stmt));
}

Status Connection::exec(const char* sql) {
  const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return to_error(sqlite3_extended_errcode(db_.get()), "sqlite", db_.get());
  return {};
}

namespace {

/// The engine-neutral statement over a native one.
class SqliteStatement final : public sql::Statement {
 public:
  explicit SqliteStatement(Stmt stmt) noexcept : stmt_(std::move(stmt)) {}
  Status bind(int index, std::int64_t value) override { return stmt_.bind(index, value); }
  Status bind(int index, std::string_view value) override { return stmt_.bind(index, value); }
  Status bind_null(int index) override { return stmt_.bind(index, nullptr); }
  Result<bool> step() override { return stmt_.step(); }
  std::int64_t int64(int col) const override { return stmt_.int64(col); }
  std::string text(int col) const override { return stmt_.text(col); }
  bool is_null(int col) const override { return stmt_.is_null(col); }

 private:
  Stmt stmt_;
};

}  // namespace

Result<sql::Stmt> Connection::prepare(std::string_view sql) {
  STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, prepare_native(sql));
  return sql::Stmt(std::make_unique<SqliteStatement>(std::move(stmt)));
}

Status Connection::begin_read() { return exec("BEGIN DEFERRED"); }

Status Connection::begin_write() {
  std::unique_lock lock(*writer_);
  STOWAGE_TRY(exec("BEGIN IMMEDIATE"));
  writing_ = std::move(lock);
  return {};
}

Status Connection::commit() {
  Status status = exec("COMMIT");
  if (!status && sqlite3_get_autocommit(db_.get()) == 0) (void)exec("ROLLBACK");
  if (writing_.owns_lock()) writing_.unlock();
  return status;
}

void Connection::rollback() noexcept {
  // SQLite may already have rolled back by itself (e.g. after SQLITE_FULL): only then is it
  // back in autocommit mode.
  if (sqlite3_get_autocommit(db_.get()) == 0) (void)exec("ROLLBACK");
  if (writing_.owns_lock()) writing_.unlock();
}

// ---- Migrations ---------------------------------------------------------------------------------

namespace {

// Conventions: ids are INTEGER PRIMARY KEY (rowid aliases); timestamps are ISO 8601 UTC text
// with milliseconds, so text order is time order; JSON is kept as text; created_by is NULL when
// no user is known (the API's 0).
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE teams (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE CHECK (name <> ''),
  description TEXT NOT NULL DEFAULT '',
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);

CREATE TABLE users (
  id         INTEGER PRIMARY KEY,
  login      TEXT NOT NULL UNIQUE CHECK (login <> ''),
  is_admin   INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
  created_at TEXT NOT NULL
);

CREATE TABLE memberships (
  team_id INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role    TEXT NOT NULL CHECK (role IN ('admin', 'developer', 'viewer')),
  PRIMARY KEY (team_id, user_id)
) WITHOUT ROWID;
CREATE INDEX memberships_by_user ON memberships (user_id, team_id);

-- Only the SHA-256 of a token's secret is kept: a copy of the database grants no access.
CREATE TABLE api_tokens (
  id            INTEGER PRIMARY KEY,
  user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name          TEXT NOT NULL DEFAULT '',
  secret_sha256 TEXT NOT NULL CHECK (length(secret_sha256) = 64),
  created_at    TEXT NOT NULL,
  last_used_at  TEXT,
  revoked_at    TEXT
);
CREATE UNIQUE INDEX api_tokens_by_secret ON api_tokens (secret_sha256);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

CREATE TABLE workspaces (
  id          INTEGER PRIMARY KEY,
  team_id     INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  name        TEXT NOT NULL CHECK (name <> ''),
  description TEXT NOT NULL DEFAULT '',
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  UNIQUE (team_id, name)
);

-- team_id is the workspace's, copied so that team-wide lists need no join.
CREATE TABLE projects (
  id           INTEGER PRIMARY KEY,
  workspace_id INTEGER NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  team_id      INTEGER NOT NULL REFERENCES teams (id),
  name         TEXT NOT NULL CHECK (name <> ''),
  description  TEXT NOT NULL DEFAULT '',
  type         TEXT NOT NULL CHECK (type IN ('images', 'videos')),
  readme       TEXT NOT NULL DEFAULT '',
  custom_data  TEXT NOT NULL DEFAULT '{}',
  settings     TEXT NOT NULL DEFAULT '{}',
  created_by   INTEGER REFERENCES users (id),
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  UNIQUE (workspace_id, name)
);
CREATE INDEX projects_by_team ON projects (team_id);

-- A parent must be a dataset of the same project: the composite key enforces it (SQLite skips
-- the check when parent_id is NULL). Sibling names are unique; COALESCE makes top-level
-- datasets siblings too, since NULLs are distinct in a plain unique index.
CREATE TABLE datasets (
  id          INTEGER PRIMARY KEY,
  project_id  INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  parent_id   INTEGER,
  name        TEXT NOT NULL CHECK (name <> ''),
  description TEXT NOT NULL DEFAULT '',
  custom_data TEXT NOT NULL DEFAULT '{}',
  created_by  INTEGER REFERENCES users (id),
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  UNIQUE (id, project_id),
  FOREIGN KEY (parent_id, project_id) REFERENCES datasets (id, project_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX datasets_sibling_names ON datasets (project_id, COALESCE(parent_id, 0), name);
CREATE INDEX datasets_by_project ON datasets (project_id, parent_id);
CREATE INDEX datasets_by_parent ON datasets (parent_id, project_id);

-- Content-addressed bytes: one row per distinct SHA-256, shared by items.
CREATE TABLE blobs (
  sha256_hex TEXT PRIMARY KEY CHECK (length(sha256_hex) = 64),
  size       INTEGER NOT NULL CHECK (size >= 0),
  mime       TEXT NOT NULL DEFAULT '',
  width      INTEGER,
  height     INTEGER,
  bucket     TEXT NOT NULL,
  object_key TEXT NOT NULL,
  created_at TEXT NOT NULL
) WITHOUT ROWID;

-- project/workspace/team ids are the dataset's, copied (items never move) for project-wide lists.
-- A blob cannot be deleted while an item uses it (no ON DELETE on blob_sha256).
CREATE TABLE items (
  id           INTEGER PRIMARY KEY,
  dataset_id   INTEGER NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
  project_id   INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  workspace_id INTEGER NOT NULL,
  team_id      INTEGER NOT NULL,
  name         TEXT NOT NULL CHECK (name <> ''),
  blob_sha256  TEXT REFERENCES blobs (sha256_hex),
  link         TEXT,
  mime         TEXT NOT NULL DEFAULT '',
  size         INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
  width        INTEGER,
  height       INTEGER,
  meta         TEXT NOT NULL DEFAULT '{}',
  created_by   INTEGER REFERENCES users (id),
  created_at   TEXT NOT NULL,
  updated_at   TEXT NOT NULL,
  UNIQUE (dataset_id, name),
  CHECK ((blob_sha256 IS NULL) <> (link IS NULL))
);
-- A rowid table's index ends with the rowid, so these also serve "ORDER BY id" per scope.
CREATE INDEX items_by_dataset ON items (dataset_id);
CREATE INDEX items_by_project ON items (project_id);
CREATE INDEX items_by_blob ON items (blob_sha256) WHERE blob_sha256 IS NOT NULL;
)sql";

// Version 2: the probed container metadata of videos (streams, duration, frames), kept per blob
// (probed once per distinct bytes) and per item (links have no blob).
constexpr std::string_view kSchemaV2 = R"sql(
ALTER TABLE blobs ADD COLUMN file_meta TEXT NOT NULL DEFAULT '{}';
ALTER TABLE items ADD COLUMN file_meta TEXT NOT NULL DEFAULT '{}';
)sql";

// Version 3: the hash of an item's bytes wherever they are (issue 13). A stored item's is its
// blob's; set_remote and project migrations move an item to a link that holds the same bytes,
// and the item keeps its hash (tools dedup and copy by it).
constexpr std::string_view kSchemaV3 = R"sql(
ALTER TABLE items ADD COLUMN content_sha256 TEXT CHECK (length(content_sha256) = 64);
UPDATE items SET content_sha256 = blob_sha256 WHERE blob_sha256 IS NOT NULL;
CREATE INDEX items_by_content ON items (content_sha256) WHERE content_sha256 IS NOT NULL;
)sql";

// Version 4 (issue 14): settings shared by every server over one catalog (the bucket prefix,
// the preview-URL signing secret; written once, insert if absent) and leases.
// IF NOT EXISTS: the upgrade test replays the steps after the one it undoes.
constexpr std::string_view kSchemaV4 = R"sql(
CREATE TABLE IF NOT EXISTS settings (
  key        TEXT PRIMARY KEY CHECK (key <> ''),
  value      TEXT NOT NULL,
  created_at TEXT NOT NULL
) WITHOUT ROWID;

-- Leases on work that must not run twice at once (migrations), taken over once expired.
CREATE TABLE IF NOT EXISTS leases (
  name       TEXT PRIMARY KEY CHECK (name <> ''),
  holder     TEXT NOT NULL,
  taken_at   TEXT NOT NULL,
  expires_at TEXT NOT NULL
) WITHOUT ROWID;
)sql";

// Version 5 (issue 17): gc's collections in progress. A row exists from the transaction that
// deletes an unused blob's row until its object is deleted; while it does, no upload may record
// that hash again (put_blob fails), so no row can point at bytes gc is deleting. A row left by a
// killed gc is finished by the next gc.
constexpr std::string_view kSchemaV5 = R"sql(
CREATE TABLE IF NOT EXISTS blob_collections (
  sha256_hex TEXT PRIMARY KEY CHECK (length(sha256_hex) = 64),
  size       INTEGER NOT NULL,
  bucket     TEXT NOT NULL,
  object_key TEXT NOT NULL,
  started_at TEXT NOT NULL
) WITHOUT ROWID;
)sql";

// Version 6 (issue 14): each dataset's and project's item count and bytes, kept by triggers in
// the transaction that changes the items, so that a list's total, datasets.list and
// projects.list cost O(page) rather than a count over millions of items. Rebuilt from the items
// when the step runs; never copied (`stowage catalog migrate` lets the target's triggers count).
constexpr std::string_view kSchemaV6 = R"sql(
CREATE TABLE IF NOT EXISTS dataset_stats (
  dataset_id INTEGER PRIMARY KEY REFERENCES datasets (id) ON DELETE CASCADE,
  items      INTEGER NOT NULL DEFAULT 0,
  bytes      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS project_stats (
  project_id INTEGER PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
  items      INTEGER NOT NULL DEFAULT 0,
  bytes      INTEGER NOT NULL DEFAULT 0
);
DELETE FROM dataset_stats;
DELETE FROM project_stats;
INSERT INTO dataset_stats (dataset_id, items, bytes)
  SELECT d.id, COUNT(i.id), COALESCE(SUM(i.size), 0)
  FROM datasets d LEFT JOIN items i ON i.dataset_id = d.id GROUP BY d.id;
INSERT INTO project_stats (project_id, items, bytes)
  SELECT p.id, COUNT(i.id), COALESCE(SUM(i.size), 0)
  FROM projects p LEFT JOIN items i ON i.project_id = p.id GROUP BY p.id;

CREATE TRIGGER IF NOT EXISTS dataset_stats_open AFTER INSERT ON datasets BEGIN
  INSERT INTO dataset_stats (dataset_id) VALUES (NEW.id);
END;
CREATE TRIGGER IF NOT EXISTS project_stats_open AFTER INSERT ON projects BEGIN
  INSERT INTO project_stats (project_id) VALUES (NEW.id);
END;
-- Items never move between datasets; only their size changes (a re-probe, set_remote).
CREATE TRIGGER IF NOT EXISTS items_counted_in AFTER INSERT ON items BEGIN
  UPDATE dataset_stats SET items = items + 1, bytes = bytes + NEW.size
    WHERE dataset_id = NEW.dataset_id;
  UPDATE project_stats SET items = items + 1, bytes = bytes + NEW.size
    WHERE project_id = NEW.project_id;
END;
CREATE TRIGGER IF NOT EXISTS items_counted_out AFTER DELETE ON items BEGIN
  UPDATE dataset_stats SET items = items - 1, bytes = bytes - OLD.size
    WHERE dataset_id = OLD.dataset_id;
  UPDATE project_stats SET items = items - 1, bytes = bytes - OLD.size
    WHERE project_id = OLD.project_id;
END;
CREATE TRIGGER IF NOT EXISTS items_resized AFTER UPDATE OF size ON items
  WHEN NEW.size <> OLD.size BEGIN
  UPDATE dataset_stats SET bytes = bytes + NEW.size - OLD.size WHERE dataset_id = NEW.dataset_id;
  UPDATE project_stats SET bytes = bytes + NEW.size - OLD.size WHERE project_id = NEW.project_id;
END;
)sql";

// Version 7 (issue 14): runs whose items several workers share (`stowage migrate project
// --share` and `--join`): the run's spec, and one row per item, claimed for a while by one
// worker, then done or failed with its result.
constexpr std::string_view kSchemaV7 = R"sql(
CREATE TABLE IF NOT EXISTS work_runs (
  run       TEXT PRIMARY KEY CHECK (run <> ''),
  spec      TEXT NOT NULL,
  opened_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS work_items (
  run        TEXT NOT NULL REFERENCES work_runs (run) ON DELETE CASCADE,
  item_id    INTEGER NOT NULL,
  state      TEXT NOT NULL DEFAULT 'pending'
             CHECK (state IN ('pending', 'taken', 'done', 'failed')),
  holder     TEXT,
  held_until TEXT,
  result     TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run, item_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS work_items_by_state ON work_items (run, state, item_id);
)sql";

// Version 8 (issue 18): who may name a blob by its hash. Blobs are shared by every item with the
// same bytes, so a hash alone must not let another team add (and so read) an item of them: a
// user may use a hash whose bytes they uploaded (a row here) or that an item of one of their
// teams uses already. No foreign key: gc removes unused blobs, and a grant outliving its blob
// grants nothing (the blob is needed too).
constexpr std::string_view kSchemaV8 = R"sql(
CREATE TABLE IF NOT EXISTS blob_grants (
  sha256_hex TEXT NOT NULL CHECK (length(sha256_hex) = 64),
  user_id    INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (sha256_hex, user_id)
) WITHOUT ROWID;
)sql";

constexpr std::array kMigrations = {
    Migration{1, kSchemaV1},
    Migration{2, kSchemaV2},
    Migration{3, kSchemaV3},
    Migration{4, kSchemaV4},
    Migration{5, kSchemaV5},
    Migration{6, kSchemaV6},
    Migration{7, kSchemaV7},
    Migration{8, kSchemaV8},
};

}  // namespace

std::span<const Migration> migrations() { return kMigrations; }

Result<int> user_version(Connection& conn) {
  STOWAGE_ASSIGN_OR_RETURN(Stmt stmt, conn.prepare_native("PRAGMA user_version"));
  STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
  if (!row) return make_error(ErrorCode::Internal, "PRAGMA user_version returned no row");
  return static_cast<int>(stmt.int64(0));
}

Status migrate(Connection& conn, const std::filesystem::path& file) {
  const int latest = kMigrations.back().version;
  STOWAGE_ASSIGN_OR_RETURN(const int found, user_version(conn));
  if (found == latest) return {};  // the usual case: no write lock needed
  for (const Migration& step : kMigrations) {
    STOWAGE_ASSIGN_OR_RETURN(sql::Txn txn, sql::Txn::write(conn));
    STOWAGE_ASSIGN_OR_RETURN(const int version, user_version(conn));
    if (version > latest) {
      return make_error(ErrorCode::Unsupported,
                        "catalog " + file.string() + " has schema version " +
                            std::to_string(version) + ", newer than this build of stowage knows (" +
                            std::to_string(latest) + "): run a newer stowage");
    }
    if (version >= step.version) continue;
    const std::string sql =
        std::string(step.sql) + "\nPRAGMA user_version = " + std::to_string(step.version) + ";";
    Status applied = conn.exec(sql.c_str());
    if (!applied) {
      Error error = std::move(applied).error();
      error.message = "catalog " + file.string() + ": migration to schema version " +
                      std::to_string(step.version) + " failed: " + error.message;
      return error;
    }
    STOWAGE_TRY(txn.commit());
  }
  return {};
}

}  // namespace stowage::catalog::sqlite

// ---- Opening ------------------------------------------------------------------------------------

namespace stowage::catalog {

Result<std::unique_ptr<sql::Pool>> open_sqlite_pool(const std::filesystem::path& file) {
  if (file.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    if (ec) {
      return make_error(ErrorCode::IoError, "open catalog " + file.string() +
                                                ": cannot create its folder: " + ec.message());
    }
  }
  // Serialises this process's write transactions on the file (see sqlite::Connection); shared
  // by the pool's connections, so it lives as long as the pool's opener.
  auto writer = std::make_shared<std::mutex>();
  STOWAGE_ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Connection> first,
                           sqlite::Connection::open(file, writer.get()));
  STOWAGE_TRY(sqlite::migrate(*first, file));
  auto pool = std::make_unique<sql::Pool>(
      [file, writer]() -> Result<std::unique_ptr<sql::Connection>> {
        STOWAGE_ASSIGN_OR_RETURN(auto conn, sqlite::Connection::open(file, writer.get()));
        return std::unique_ptr<sql::Connection>(std::move(conn));
      },
      sqlite::kPoolSize, std::move(first),
      [](sql::Connection& conn) { return sqlite::user_version(static_cast<sqlite::Connection&>(conn)); });
  return pool;
}

Result<std::unique_ptr<Catalog>> Catalog::open_sqlite(const std::filesystem::path& file) {
  STOWAGE_ASSIGN_OR_RETURN(auto pool, open_sqlite_pool(file));
  return make_sql_catalog(std::move(pool));
}

}  // namespace stowage::catalog
