// SPDX-License-Identifier: Apache-2.0
#include "stowage/catalog/pg_internal.hpp"

#include <array>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <vector>

namespace stowage::catalog::pg {

namespace {

/// libpq's OID of `boolean` (catalog/pg_type_d.h, which the client headers do not ship).
constexpr Oid kBoolOid = 16;

/// The key of the advisory lock taken while migrating: "stowage1" in ASCII, so that another
/// application's locks on the same database are unlikely to collide with it.
constexpr std::int64_t kMigrationLockKey = 0x73746f7761676531;

/// How long connecting may take before the server counts as unreachable, unless the URL says
/// (connect_timeout=N).
constexpr const char* kConnectTimeoutSeconds = "10";

std::string_view field(const PGresult* result, int code) {
  const char* value = result != nullptr ? PQresultErrorField(result, code) : nullptr;
  return value != nullptr ? std::string_view(value) : std::string_view();
}

std::string trimmed(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  return std::string(text);
}

}  // namespace

Error to_error(const PGresult* result, PGconn* conn, std::string_view what) {
  const std::string_view state = field(result, PG_DIAG_SQLSTATE);
  ErrorCode code = ErrorCode::Internal;
  bool retryable = false;
  bool conflict = false;
  if (state == "23505") {
    code = ErrorCode::AlreadyExists;
  } else if (state == "23503") {
    code = ErrorCode::NotFound;
  } else if (state == "40001" || state == "40P01") {
    code = ErrorCode::Unavailable;
    retryable = conflict = true;
  } else if (state.starts_with("23") || state.starts_with("22")) {
    code = ErrorCode::InvalidArgument;  // NOT NULL, CHECK, bad values
  } else if (state.starts_with("08") || state.starts_with("57P") || state.starts_with("53") ||
             state.empty() || PQstatus(conn) != CONNECTION_OK) {
    // No SQLSTATE: libpq itself failed (the connection is gone).
    code = ErrorCode::Unavailable;
    retryable = true;
  } else if (state == "42501" || state.starts_with("28")) {
    code = ErrorCode::PermissionDenied;
  } else if (state == "57014") {
    code = ErrorCode::Cancelled;
  }
  std::string message(what);
  message += ": ";
  const std::string_view primary = field(result, PG_DIAG_MESSAGE_PRIMARY);
  message += primary.empty() ? trimmed(PQerrorMessage(conn)) : std::string(primary);
  Error error = make_error(code, std::move(message));
  error.provider_code = "postgres " + (state.empty() ? std::string("connection") : std::string(state));
  if (conflict) error.provider_code += " " + std::string(sql::kConflictCode);
  error.retryable = retryable;
  return error;
}

std::pair<std::string, int> number_placeholders(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int count = 0;
  char quote = 0;
  for (const char c : sql) {
    if (quote != 0) {
      if (c == quote) quote = 0;  // a doubled quote re-enters at once: still right
      out += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      out += c;
    } else if (c == '?') {
      out += '$';
      out += std::to_string(++count);
    } else {
      out += c;
    }
  }
  return {std::move(out), count};
}

// ---- Statement ----------------------------------------------------------------------------------

/// A command with its parameters as text; run at the first step(), whose rows it then walks.
class Statement final : public sql::Statement {
 public:
  Statement(Connection* conn, std::string sql, int params)
      : conn_(conn), sql_(std::move(sql)), params_(static_cast<std::size_t>(params)) {}

  Status bind(int index, std::int64_t value) override {
    return set(index, std::to_string(value));
  }
  Status bind(int index, std::string_view value) override { return set(index, std::string(value)); }
  Status bind_null(int index) override { return set(index, std::nullopt); }

  Result<bool> step() override {
    if (!result_) {
      std::vector<const char*> values;
      std::vector<int> lengths;
      values.reserve(params_.size());
      lengths.reserve(params_.size());
      for (const auto& p : params_) {
        values.push_back(p ? p->c_str() : nullptr);
        lengths.push_back(p ? static_cast<int>(p->size()) : 0);
      }
      STOWAGE_ASSIGN_OR_RETURN(result_, conn_->run(sql_, values, lengths));
      rows_ = PQntuples(result_.get());
      row_ = -1;
    }
    if (row_ < rows_) ++row_;
    return row_ < rows_;
  }

  std::int64_t int64(int col) const override {
    const char* text = PQgetvalue(result_.get(), row_, col);
    if (PQftype(result_.get(), col) == kBoolOid) return text[0] == 't' ? 1 : 0;
    std::int64_t value = 0;
    const int length = PQgetlength(result_.get(), row_, col);
    std::from_chars(text, text + length, value);  // numeric sums are integral here
    return value;
  }
  std::string text(int col) const override {
    return std::string(PQgetvalue(result_.get(), row_, col),
                       static_cast<std::size_t>(PQgetlength(result_.get(), row_, col)));
  }
  bool is_null(int col) const override { return PQgetisnull(result_.get(), row_, col) == 1; }

 private:
  Status set(int index, std::optional<std::string> value) {
    if (index < 1 || static_cast<std::size_t>(index) > params_.size()) {
      return make_error(ErrorCode::Internal, "postgres bind: no parameter " +
                                                 std::to_string(index) + " in " + sql_);
    }
    params_[static_cast<std::size_t>(index) - 1] = std::move(value);
    return {};
  }

  Connection* conn_;
  std::string sql_;
  std::vector<std::optional<std::string>> params_;
  ResultPtr result_;
  int rows_ = 0;
  int row_ = -1;
};

// ---- Connection ---------------------------------------------------------------------------------

Result<std::unique_ptr<Connection>> Connection::open(const std::string& conninfo) {
  // Defaults first: with expand_dbname the URL's own settings override them.
  const std::array<const char*, 4> keys = {"connect_timeout", "application_name", "dbname",
                                           nullptr};
  const std::array<const char*, 4> values = {kConnectTimeoutSeconds, "stowage", conninfo.c_str(),
                                             nullptr};
  ConnPtr conn(PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1));
  if (!conn) return make_error(ErrorCode::Internal, "connect to PostgreSQL: out of memory");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    // libpq's message names the host and user, never the password.
    Error error = make_error(ErrorCode::Unavailable,
                             "connect to PostgreSQL: " + trimmed(PQerrorMessage(conn.get())));
    error.provider_code = "postgres connection";
    error.retryable = true;
    return error;
  }
  // Notices ("relation already exists, skipping") are not for the user's terminal.
  PQsetNoticeProcessor(conn.get(), [](void*, const char*) {}, nullptr);
  std::unique_ptr<Connection> out(new Connection(std::move(conn)));
  // Text sorts as SQLite does (bytes) whatever the database's locale: the columns say COLLATE
  // "C"; UTC so that server-side times, were any used, are not local.
  STOWAGE_TRY(out->exec("SET TIME ZONE 'UTC'"));
  // No JIT: every catalog query reads a page or a row, and JIT only pays for long scans. A
  // prepared list query shared by page 1 and deep pages gets a generic plan whose estimate
  // (a LIMIT of unknown size) passed jit_above_cost: 10 ms of compiling per page at 10 M items.
  STOWAGE_TRY(out->exec("SET jit = off"));
  return out;
}

Status Connection::exec(const char* sql, std::string_view what) {
  ResultPtr result(PQexec(conn_.get(), sql));
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return to_error(result.get(), conn_.get(), what);
  }
  return {};
}

Result<ResultPtr> Connection::run(const std::string& numbered_sql,
                                  std::span<const char* const> params,
                                  std::span<const int> lengths) {
  // Parameters go as text (format 0) with their types inferred by the server from the SQL. A
  // text run before is a prepared statement of this connection: parsed and planned once (a
  // batch of 50 inserts is 50 executions, not 50 parses).
  const int count = static_cast<int>(params.size());
  auto it = prepared_.find(numbered_sql);
  if (it == prepared_.end() && prepared_.size() < kMaxPrepared) {
    std::string name = "stowage_" + std::to_string(prepared_.size());
    ResultPtr made(PQprepare(conn_.get(), name.c_str(), numbered_sql.c_str(), count, nullptr));
    if (!made || PQresultStatus(made.get()) != PGRES_COMMAND_OK) {
      return to_error(made.get(), conn_.get(), "postgres");
    }
    it = prepared_.emplace(numbered_sql, std::move(name)).first;
  }
  ResultPtr result(it != prepared_.end()
                       ? PQexecPrepared(conn_.get(), it->second.c_str(), count, params.data(),
                                        lengths.data(), nullptr, 0)
                       : PQexecParams(conn_.get(), numbered_sql.c_str(), count, nullptr,
                                      params.data(), lengths.data(), nullptr, 0));
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return to_error(result.get(), conn_.get(), "postgres");
  }
  const char* tuples = PQcmdTuples(result.get());
  changes_ = tuples != nullptr && tuples[0] != '\0' ? std::atoll(tuples) : 0;
  return result;
}

Result<sql::Stmt> Connection::prepare(std::string_view sql) {
  auto [numbered, count] = number_placeholders(sql);
  return sql::Stmt(std::make_unique<Statement>(this, std::move(numbered), count));
}

Status Connection::begin_read() { return exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); }

Status Connection::begin_write() { return exec("BEGIN ISOLATION LEVEL SERIALIZABLE"); }

Status Connection::commit() {
  // COMMIT of a failed transaction "succeeds" as a ROLLBACK: refuse to call that a commit.
  if (PQtransactionStatus(conn_.get()) == PQTRANS_INERROR) {
    rollback();
    return make_error(ErrorCode::Internal, "postgres: commit of a failed transaction");
  }
  Status status = exec("COMMIT");
  if (!status) rollback();
  return status;
}

void Connection::rollback() noexcept {
  const PGTransactionStatusType state = PQtransactionStatus(conn_.get());
  if (state == PQTRANS_INTRANS || state == PQTRANS_INERROR) (void)exec("ROLLBACK");
}

// ---- Migrations ---------------------------------------------------------------------------------

namespace {

// The same tables, columns and constraints as SQLite's (sqlite_internal.cpp), in PostgreSQL's
// words: BIGINT identities for INTEGER PRIMARY KEY, BIGINT sizes, and text compared as bytes
// (COLLATE "C", SQLite's BINARY) so that names and timestamps sort the same on both.
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE teams (
  id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  name        TEXT COLLATE "C" NOT NULL UNIQUE CHECK (name <> ''),
  description TEXT NOT NULL DEFAULT '',
  created_at  TEXT COLLATE "C" NOT NULL,
  updated_at  TEXT COLLATE "C" NOT NULL
);

CREATE TABLE users (
  id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  login      TEXT COLLATE "C" NOT NULL UNIQUE CHECK (login <> ''),
  is_admin   INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
  created_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE memberships (
  team_id BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role    TEXT NOT NULL CHECK (role IN ('admin', 'developer', 'viewer')),
  PRIMARY KEY (team_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id, team_id);

-- Only the SHA-256 of a token's secret is kept: a copy of the database grants no access.
CREATE TABLE api_tokens (
  id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name          TEXT NOT NULL DEFAULT '',
  secret_sha256 TEXT COLLATE "C" NOT NULL CHECK (length(secret_sha256) = 64),
  created_at    TEXT COLLATE "C" NOT NULL,
  last_used_at  TEXT COLLATE "C",
  revoked_at    TEXT COLLATE "C"
);
CREATE UNIQUE INDEX api_tokens_by_secret ON api_tokens (secret_sha256);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

CREATE TABLE workspaces (
  id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  team_id     BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  name        TEXT COLLATE "C" NOT NULL CHECK (name <> ''),
  description TEXT NOT NULL DEFAULT '',
  created_at  TEXT COLLATE "C" NOT NULL,
  updated_at  TEXT COLLATE "C" NOT NULL,
  UNIQUE (team_id, name)
);

CREATE TABLE projects (
  id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  workspace_id BIGINT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  team_id      BIGINT NOT NULL REFERENCES teams (id),
  name         TEXT COLLATE "C" NOT NULL CHECK (name <> ''),
  description  TEXT NOT NULL DEFAULT '',
  type         TEXT NOT NULL CHECK (type IN ('images', 'videos')),
  readme       TEXT NOT NULL DEFAULT '',
  custom_data  TEXT NOT NULL DEFAULT '{}',
  settings     TEXT NOT NULL DEFAULT '{}',
  created_by   BIGINT REFERENCES users (id),
  created_at   TEXT COLLATE "C" NOT NULL,
  updated_at   TEXT COLLATE "C" NOT NULL,
  UNIQUE (workspace_id, name)
);
CREATE INDEX projects_by_team ON projects (team_id);

-- A parent must be a dataset of the same project: the composite key enforces it (MATCH SIMPLE
-- skips the check when parent_id is NULL, as SQLite does).
CREATE TABLE datasets (
  id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  project_id  BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  parent_id   BIGINT,
  name        TEXT COLLATE "C" NOT NULL CHECK (name <> ''),
  description TEXT NOT NULL DEFAULT '',
  custom_data TEXT NOT NULL DEFAULT '{}',
  created_by  BIGINT REFERENCES users (id),
  created_at  TEXT COLLATE "C" NOT NULL,
  updated_at  TEXT COLLATE "C" NOT NULL,
  UNIQUE (id, project_id),
  FOREIGN KEY (parent_id, project_id) REFERENCES datasets (id, project_id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX datasets_sibling_names ON datasets (project_id, COALESCE(parent_id, 0), name);
CREATE INDEX datasets_by_project ON datasets (project_id, parent_id);
CREATE INDEX datasets_by_parent ON datasets (parent_id, project_id);

CREATE TABLE blobs (
  sha256_hex TEXT COLLATE "C" PRIMARY KEY CHECK (length(sha256_hex) = 64),
  size       BIGINT NOT NULL CHECK (size >= 0),
  mime       TEXT NOT NULL DEFAULT '',
  width      BIGINT,
  height     BIGINT,
  bucket     TEXT NOT NULL,
  object_key TEXT NOT NULL,
  created_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE items (
  id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  dataset_id   BIGINT NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
  project_id   BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  workspace_id BIGINT NOT NULL,
  team_id      BIGINT NOT NULL,
  name         TEXT COLLATE "C" NOT NULL CHECK (name <> ''),
  blob_sha256  TEXT COLLATE "C" REFERENCES blobs (sha256_hex),
  link         TEXT,
  mime         TEXT NOT NULL DEFAULT '',
  size         BIGINT NOT NULL DEFAULT 0 CHECK (size >= 0),
  width        BIGINT,
  height       BIGINT,
  meta         TEXT NOT NULL DEFAULT '{}',
  created_by   BIGINT REFERENCES users (id),
  created_at   TEXT COLLATE "C" NOT NULL,
  updated_at   TEXT COLLATE "C" NOT NULL,
  UNIQUE (dataset_id, name),
  CHECK ((blob_sha256 IS NULL) <> (link IS NULL))
);
-- Unlike SQLite's rowid tables, an index does not end with the id by itself: these do, so
-- that "ORDER BY id" per scope is an index walk.
CREATE INDEX items_by_dataset ON items (dataset_id, id);
CREATE INDEX items_by_project ON items (project_id, id);
CREATE INDEX items_by_blob ON items (blob_sha256) WHERE blob_sha256 IS NOT NULL;
)sql";

// Version 2 (as SQLite's): the probed container metadata of videos.
constexpr std::string_view kSchemaV2 = R"sql(
ALTER TABLE blobs ADD COLUMN file_meta TEXT NOT NULL DEFAULT '{}';
ALTER TABLE items ADD COLUMN file_meta TEXT NOT NULL DEFAULT '{}';
)sql";

// Version 3 (as SQLite's, issue 13): the hash of an item's bytes wherever they are.
constexpr std::string_view kSchemaV3 = R"sql(
ALTER TABLE items ADD COLUMN content_sha256 TEXT COLLATE "C" CHECK (length(content_sha256) = 64);
UPDATE items SET content_sha256 = blob_sha256 WHERE blob_sha256 IS NOT NULL;
CREATE INDEX items_by_content ON items (content_sha256) WHERE content_sha256 IS NOT NULL;
)sql";

// Version 4 (as SQLite's): settings shared by every server over one catalog, and leases.
constexpr std::string_view kSchemaV4 = R"sql(
CREATE TABLE IF NOT EXISTS settings (
  key        TEXT COLLATE "C" PRIMARY KEY CHECK (key <> ''),
  value      TEXT NOT NULL,
  created_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE IF NOT EXISTS leases (
  name       TEXT COLLATE "C" PRIMARY KEY CHECK (name <> ''),
  holder     TEXT NOT NULL,
  taken_at   TEXT COLLATE "C" NOT NULL,
  expires_at TEXT COLLATE "C" NOT NULL
);
)sql";

// Version 5 (as SQLite's): gc's collections in progress (issue 17).
constexpr std::string_view kSchemaV5 = R"sql(
CREATE TABLE IF NOT EXISTS blob_collections (
  sha256_hex TEXT COLLATE "C" PRIMARY KEY CHECK (length(sha256_hex) = 64),
  size       BIGINT NOT NULL,
  bucket     TEXT NOT NULL,
  object_key TEXT NOT NULL,
  started_at TEXT COLLATE "C" NOT NULL
);
)sql";

// Version 6 (as SQLite's): kept item counts and bytes per dataset and project. Statement-level
// triggers over transition tables: a bulk insert or a cascading delete updates each touched
// dataset once, and the rows are locked in id order first, so that two writers touching the same
// datasets queue rather than deadlock.
constexpr std::string_view kSchemaV6 = R"sql(
CREATE TABLE IF NOT EXISTS dataset_stats (
  dataset_id BIGINT PRIMARY KEY REFERENCES datasets (id) ON DELETE CASCADE,
  items      BIGINT NOT NULL DEFAULT 0,
  bytes      BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS project_stats (
  project_id BIGINT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
  items      BIGINT NOT NULL DEFAULT 0,
  bytes      BIGINT NOT NULL DEFAULT 0
);
DELETE FROM dataset_stats;
DELETE FROM project_stats;
INSERT INTO dataset_stats (dataset_id, items, bytes)
  SELECT d.id, COUNT(i.id), COALESCE(SUM(i.size), 0)
  FROM datasets d LEFT JOIN items i ON i.dataset_id = d.id GROUP BY d.id;
INSERT INTO project_stats (project_id, items, bytes)
  SELECT p.id, COUNT(i.id), COALESCE(SUM(i.size), 0)
  FROM projects p LEFT JOIN items i ON i.project_id = p.id GROUP BY p.id;

CREATE OR REPLACE FUNCTION stowage_open_dataset_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO dataset_stats (dataset_id) SELECT id FROM added;
  RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER dataset_stats_open AFTER INSERT ON datasets
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION stowage_open_dataset_stats();

CREATE OR REPLACE FUNCTION stowage_open_project_stats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO project_stats (project_id) SELECT id FROM added;
  RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER project_stats_open AFTER INSERT ON projects
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION stowage_open_project_stats();

-- Adds n items and b bytes to the stats of each (dataset ds[i], project ps[i]), locking the
-- rows in id order first.
CREATE OR REPLACE FUNCTION stowage_add_stats(ds bigint[], ps bigint[], ns bigint[], bs bigint[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM dataset_stats WHERE dataset_id = ANY (ds) ORDER BY dataset_id FOR UPDATE;
  UPDATE dataset_stats s SET items = s.items + c.n, bytes = s.bytes + c.b
    FROM (SELECT u.d, SUM(u.n) AS n, SUM(u.b) AS b FROM unnest(ds, ns, bs) AS u (d, n, b)
          GROUP BY u.d) c
    WHERE s.dataset_id = c.d;
  PERFORM 1 FROM project_stats WHERE project_id = ANY (ps) ORDER BY project_id FOR UPDATE;
  UPDATE project_stats s SET items = s.items + c.n, bytes = s.bytes + c.b
    FROM (SELECT u.p, SUM(u.n) AS n, SUM(u.b) AS b FROM unnest(ps, ns, bs) AS u (p, n, b)
          GROUP BY u.p) c
    WHERE s.project_id = c.p;
END $$;

CREATE OR REPLACE FUNCTION stowage_items_counted_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM stowage_add_stats(array_agg(dataset_id), array_agg(project_id), array_agg(1::bigint),
                            array_agg(size::bigint)) FROM added;
  RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER items_counted_in AFTER INSERT ON items
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION stowage_items_counted_in();

CREATE OR REPLACE FUNCTION stowage_items_counted_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM stowage_add_stats(array_agg(dataset_id), array_agg(project_id), array_agg(-1::bigint),
                            array_agg(-size::bigint)) FROM removed;
  RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER items_counted_out AFTER DELETE ON items
  REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION stowage_items_counted_out();

-- Items never move between datasets; only their size changes (a re-probe, set_remote).
-- (A trigger with transition tables cannot name columns: every update comes here.)
CREATE OR REPLACE FUNCTION stowage_items_resized() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM stowage_add_stats(array_agg(a.dataset_id), array_agg(a.project_id),
                            array_agg(0::bigint), array_agg((a.size - o.size)::bigint))
    FROM after_rows a JOIN before_rows o ON o.id = a.id WHERE a.size <> o.size;
  RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER items_resized AFTER UPDATE ON items
  REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
  FOR EACH STATEMENT EXECUTE FUNCTION stowage_items_resized();
)sql";

// Version 7 (as SQLite's): runs whose items several workers share.
constexpr std::string_view kSchemaV7 = R"sql(
CREATE TABLE IF NOT EXISTS work_runs (
  run       TEXT COLLATE "C" PRIMARY KEY CHECK (run <> ''),
  spec      TEXT NOT NULL,
  opened_at TEXT COLLATE "C" NOT NULL
);
CREATE TABLE IF NOT EXISTS work_items (
  run        TEXT COLLATE "C" NOT NULL REFERENCES work_runs (run) ON DELETE CASCADE,
  item_id    BIGINT NOT NULL,
  state      TEXT COLLATE "C" NOT NULL DEFAULT 'pending'
             CHECK (state IN ('pending', 'taken', 'done', 'failed')),
  holder     TEXT,
  held_until TEXT COLLATE "C",
  result     TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run, item_id)
);
CREATE INDEX IF NOT EXISTS work_items_by_state ON work_items (run, state, item_id);
)sql";

// Version 8 (as SQLite's): who may name a blob by its hash (issue 18).
constexpr std::string_view kSchemaV8 = R"sql(
CREATE TABLE IF NOT EXISTS blob_grants (
  sha256_hex TEXT COLLATE "C" NOT NULL CHECK (length(sha256_hex) = 64),
  user_id    BIGINT NOT NULL,
  created_at TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (sha256_hex, user_id)
);
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

constexpr const char* kVersionTable =
    "CREATE TABLE IF NOT EXISTS stowage_schema (version INTEGER PRIMARY KEY, "
    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())";

Result<int> read_version(Connection& conn) {
  {
    // A statement naming a missing table fails to plan, even in a branch never taken: ask first.
    STOWAGE_ASSIGN_OR_RETURN(sql::Stmt stmt,
                             conn.prepare("SELECT to_regclass('stowage_schema') IS NOT NULL"));
    STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
    if (!row || stmt.int64(0) == 0) return 0;
  }
  STOWAGE_ASSIGN_OR_RETURN(sql::Stmt stmt,
                           conn.prepare("SELECT COALESCE(MAX(version), 0) FROM stowage_schema"));
  STOWAGE_ASSIGN_OR_RETURN(const bool row, stmt.step());
  if (!row) return make_error(ErrorCode::Internal, "reading the schema version gave no row");
  return static_cast<int>(stmt.int64(0));
}

}  // namespace

std::span<const Migration> migrations() { return kMigrations; }

Result<int> schema_version(Connection& conn) { return read_version(conn); }

Status migrate(Connection& conn, const std::string& where) {
  const int latest = kMigrations.back().version;
  STOWAGE_ASSIGN_OR_RETURN(const int found, read_version(conn));
  if (found == latest) return {};  // the usual case: no lock needed
  for (const Migration& step : kMigrations) {
    // READ COMMITTED: each statement sees what was committed before it, so the version read
    // after taking the lock includes the steps of a migrator that held it before us.
    STOWAGE_TRY(conn.exec("BEGIN ISOLATION LEVEL READ COMMITTED"));
    struct Rollback {
      Connection& conn;
      ~Rollback() { conn.rollback(); }  // nothing once committed
    } guard{conn};
    const std::string lock =
        "SELECT pg_advisory_xact_lock(" + std::to_string(kMigrationLockKey) + ")";
    STOWAGE_TRY(conn.exec(lock.c_str(), "catalog " + where + ": migration lock"));
    STOWAGE_TRY(conn.exec(kVersionTable, "catalog " + where));
    STOWAGE_ASSIGN_OR_RETURN(const int version, read_version(conn));
    if (version > latest) {
      return make_error(ErrorCode::Unsupported,
                        "catalog " + where + " has schema version " + std::to_string(version) +
                            ", newer than this build of stowage knows (" +
                            std::to_string(latest) + "): run a newer stowage");
    }
    if (version >= step.version) continue;
    const std::string sql = std::string(step.sql) +
                            "\nINSERT INTO stowage_schema (version) VALUES (" +
                            std::to_string(step.version) + ");";
    STOWAGE_TRY(conn.exec(sql.c_str(), "catalog " + where + ": migration to schema version " +
                                           std::to_string(step.version) + " failed"));
    STOWAGE_TRY(conn.commit());
  }
  return {};
}

}  // namespace stowage::catalog::pg
