// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "stowage/base/error.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

/// The catalog: teams, users, tokens, workspaces, projects, datasets, items and blobs. One
/// interface and one implementation over two engines: SQLite (embedded, WAL) by default, and
/// PostgreSQL (libpq) for several servers over one database.
/// Timestamps are ISO 8601 UTC strings with milliseconds ("2026-11-25T22:36:16.123Z"), as the
/// Supervisely API writes them. JSON-valued columns (meta, customData, settings) are kept as
/// serialized JSON text; the catalog does not parse them.
namespace stowage::catalog {

using Id = std::int64_t;

struct Team {
  Id id = 0;
  std::string name;
  std::string description;
  std::string created_at;
  std::string updated_at;
};

struct User {
  Id id = 0;
  std::string login;
  bool is_admin = false;
  std::string created_at;
};

enum class Role { Admin, Developer, Viewer };
std::string_view to_string(Role role) noexcept;

/// A team a user belongs to, with the user's role there.
struct Membership {
  Team team;
  Role role = Role::Developer;
};

/// Who is calling: the owner of a valid API token.
struct Principal {
  User user;
  Id token_id = 0;
  std::vector<Id> team_ids;  ///< teams the user may act in
};

struct TokenInfo {
  Id id = 0;
  Id user_id = 0;
  std::string user_login;
  std::string name;
  std::string created_at;
  std::optional<std::string> last_used_at;
  bool revoked = false;
};

/// A freshly created token. `secret` is shown once and stored only as its SHA-256.
struct IssuedToken {
  TokenInfo info;
  std::string secret;
};

struct Workspace {
  Id id = 0;
  Id team_id = 0;
  std::string name;
  std::string description;
  std::string created_at;
  std::string updated_at;
};

struct Project {
  Id id = 0;
  Id workspace_id = 0;
  Id team_id = 0;
  std::string name;
  std::string description;
  std::string type;         ///< "images" or "videos"
  std::string readme;
  std::string custom_data;  ///< JSON object text, "{}" by default
  std::string settings;     ///< JSON object text, "{}" by default
  Id created_by = 0;
  std::string created_at;
  std::string updated_at;
  // Aggregates, filled by get/list:
  std::int64_t items_count = 0;
  std::int64_t datasets_count = 0;
  std::uint64_t size_bytes = 0;  ///< sum of item sizes
};

struct Dataset {
  Id id = 0;
  Id project_id = 0;
  Id team_id = 0;
  Id workspace_id = 0;
  std::optional<Id> parent_id;
  std::string name;
  std::string description;
  std::string custom_data;  ///< JSON object text
  Id created_by = 0;
  std::string created_at;
  std::string updated_at;
  // Aggregates, filled by get/list (items directly in this dataset):
  std::int64_t items_count = 0;
  std::uint64_t size_bytes = 0;
};

/// Stored bytes, content-addressed: one row per distinct SHA-256 in the whole instance.
struct Blob {
  std::string sha256_hex;  ///< primary key
  std::uint64_t size = 0;
  std::string mime;
  std::optional<std::int64_t> width;
  std::optional<std::int64_t> height;
  std::string bucket;  ///< where the bytes are, e.g. "<prefix>-public"
  std::string key;
  std::string created_at;
  /// What a container probe found (a video's streams, duration, frames), as JSON object text;
  /// "{}" for images, whose mime and size say enough.
  std::string file_meta = "{}";
};

/// An image or video of a dataset: stored bytes (blob) or a link, never neither.
struct Item {
  Id id = 0;
  Id dataset_id = 0;
  Id project_id = 0;
  Id team_id = 0;
  Id workspace_id = 0;
  std::string name;
  std::optional<std::string> blob_sha256_hex;
  std::optional<std::string> link;
  /// The SHA-256 (hex) of the item's bytes wherever they are, when known: its blob's for stored
  /// items, kept when the item is switched to a link that holds the same bytes (set_remote,
  /// a project migration), so that the item keeps its identity. Unset for items added by link.
  std::optional<std::string> content_sha256_hex;
  std::string mime;
  std::uint64_t size = 0;
  std::optional<std::int64_t> width;
  std::optional<std::int64_t> height;
  std::string meta;  ///< JSON object text, "{}" by default
  std::string file_meta = "{}";  ///< JSON object text: the probed container metadata of a video
  std::string created_by_login;
  std::string created_at;
  std::string updated_at;
  // Where the bytes are when stored (copied from the blob on read):
  std::string blob_bucket;
  std::string blob_key;
};

struct NewItem {
  std::string name;
  std::optional<std::string> blob_sha256_hex;  ///< must name an existing blob
  std::optional<std::string> link;
  std::string mime;
  std::uint64_t size = 0;
  std::optional<std::int64_t> width;
  std::optional<std::int64_t> height;
  std::string meta = "{}";
  std::string file_meta = "{}";  ///< unset ("{}") with a blob: the blob's is taken
};

/// Points a stored item at a link (its bytes now live there); the blob stays, and so does the
/// item's content hash, size, mime and dimensions: the item is the same image at a new place.
struct LinkChange {
  Id item_id = 0;
  std::string link;
  /// The blob the item must still have, so that an item replaced meanwhile is not switched to
  /// bytes copied from its old contents. Unset: whatever the item has now.
  std::optional<std::string> expect_blob_sha256_hex;
  /// The link the item must still have (a linked item moved to another link: cloud to cloud),
  /// so that an item relinked meanwhile is not switched to bytes copied from its old link.
  /// Unset: whatever the item has now.
  std::optional<std::string> expect_link;
};

/// Points a linked item at stored bytes (the reverse of LinkChange); the link is cleared and the
/// content hash becomes the blob's.
struct BlobChange {
  Id item_id = 0;
  std::string blob_sha256_hex;  ///< must name an existing blob
  /// The link the item must still have. Unset: whatever the item has now.
  std::optional<std::string> expect_link;
};

/// A filter as the API sends it: `{"field","operator","value"}`. Values are integers or strings.
using FilterValue = std::variant<std::int64_t, std::string>;
struct Filter {
  enum class Op { Eq, NotEq, In, NotIn, Less, LessEq, Greater, GreaterEq, Like };
  std::string field;  ///< API field name: "id", "name", "parentId", "createdAt", ...
  Op op = Op::Eq;
  std::vector<FilterValue> values;  ///< one value except for In / NotIn
};

/// Paging and order of a list call. Either page mode (page >= 1) or token mode (`after`, which
/// is the last id of the previous page; requires sorting by id).
struct ListQuery {
  std::vector<Filter> filters;
  std::string sort = "id";  ///< API field name: id, name, createdAt, updatedAt, size
  bool descending = false;
  std::int64_t page = 1;
  std::int64_t per_page = 20000;
  std::optional<Id> after;  ///< token mode
};

/// The items of a shared run by state (Catalog::count_work).
struct WorkCounts {
  std::int64_t pending = 0;
  std::int64_t taken = 0;
  std::int64_t done = 0;
  std::int64_t failed = 0;
};

/// A finished item of a shared run (Catalog::finished_work).
struct WorkResult {
  Id item_id = 0;
  bool failed = false;
  std::string result;
};

template <class T>
struct Page {
  std::vector<T> entities;
  std::int64_t total = 0;  ///< all rows matching the filters, over every page
};

/// True for a DATABASE_URL that names a PostgreSQL database (postgres://, postgresql:// or a
/// libpq keyword string such as "host=db dbname=stowage").
bool is_postgres_url(std::string_view url) noexcept;

/// Connects to a PostgreSQL catalog and returns its schema version (0 when empty), changing
/// nothing: for `stowage config check`. Unavailable when it cannot connect.
Result<int> probe_postgres(const std::string& conninfo);

/// The metadata store. Every method is safe to call from several threads at once and blocks on
/// disk. Unknown ids are NotFound; unique-name clashes are AlreadyExists; a filter on an unknown
/// field or a bad value type is InvalidArgument.
class Catalog {
 public:
  virtual ~Catalog() = default;

  /// Opens (creating if needed) a SQLite catalog at `file` in WAL mode and applies the schema
  /// migrations it lacks. A database newer than this build is refused.
  static Result<std::unique_ptr<Catalog>> open_sqlite(const std::filesystem::path& file);

  /// Connects to a PostgreSQL catalog (a libpq URL or keyword string, e.g.
  /// `postgresql://user:password@host:5432/db?sslmode=require` or `host=db dbname=stowage`)
  /// and applies the schema migrations it lacks, once even when several processes start at
  /// the same time (an advisory lock). Unavailable when the server cannot be reached. Messages
  /// never hold the password.
  static Result<std::unique_ptr<Catalog>> open_postgres(const std::string& conninfo);

  /// Opens the catalog a DATABASE_URL names: empty is SQLite at `default_file`, `sqlite:PATH`
  /// SQLite, `postgres://`, `postgresql://` or a libpq keyword string PostgreSQL.
  static Result<std::unique_ptr<Catalog>> open(const std::string& url,
                                               const std::filesystem::path& default_file);

  /// The schema version in force.
  virtual Result<int> schema_version() = 0;

  // --- Bootstrap, users and tokens -------------------------------------------------------------
  /// On an empty catalog: creates user "admin", team "admin's team" (with admin as Admin) and
  /// workspace "First Workspace", then an API token for admin, and returns it. On a catalog that
  /// already has users: returns std::nullopt and changes nothing.
  virtual Result<std::optional<IssuedToken>> bootstrap() = 0;

  virtual Result<User> create_user(const std::string& login, bool is_admin) = 0;
  virtual Result<User> find_user(const std::string& login) = 0;
  virtual Result<Team> create_team(const std::string& name, const std::string& description) = 0;
  virtual Status add_member(Id team_id, Id user_id, Role role) = 0;
  virtual Result<std::vector<Membership>> memberships(Id user_id) = 0;

  /// A new random token (at least 256 bits, URL-safe text) for the user.
  virtual Result<IssuedToken> create_token(Id user_id, const std::string& name) = 0;
  virtual Result<std::vector<TokenInfo>> list_tokens() = 0;
  /// Revoked tokens stop authenticating at once. NotFound for an unknown id.
  virtual Status revoke_token(Id token_id) = 0;
  /// The principal behind a token; Unauthenticated for an unknown or revoked one. Constant-time
  /// with respect to the secret (looked up by its hash).
  virtual Result<Principal> authenticate(const std::string& secret) = 0;

  // --- Teams and workspaces --------------------------------------------------------------------
  virtual Result<Team> get_team(Id id) = 0;
  virtual Result<Workspace> create_workspace(Id team_id, const std::string& name,
                                             const std::string& description) = 0;
  virtual Result<Workspace> get_workspace(Id id) = 0;
  /// Filters may use id and name.
  virtual Result<Page<Workspace>> list_workspaces(Id team_id, const ListQuery& query) = 0;

  // --- Projects and datasets -------------------------------------------------------------------
  /// AlreadyExists when the workspace has a project of that name.
  virtual Result<Project> create_project(const Project& project) = 0;
  virtual Result<Project> get_project(Id id) = 0;
  /// Projects of a workspace (or of a team when workspace_id is nullopt). Filters: id, name.
  virtual Result<Page<Project>> list_projects(std::optional<Id> workspace_id,
                                              std::optional<Id> team_id,
                                              const ListQuery& query) = 0;

  /// AlreadyExists when a sibling (same project and parent) has that name; NotFound when the
  /// parent is not a dataset of the same project.
  virtual Result<Dataset> create_dataset(const Dataset& dataset) = 0;
  virtual Result<Dataset> get_dataset(Id id) = 0;
  /// Datasets of a project. `recursive=false` and no parentId filter: top level only.
  /// Filters: id, name, parentId.
  virtual Result<Page<Dataset>> list_datasets(Id project_id, bool recursive,
                                              const ListQuery& query) = 0;

  // --- Blobs and items -------------------------------------------------------------------------
  /// Records stored bytes. Idempotent: an existing row for the hash is returned unchanged.
  /// Unavailable (retryable) while gc collects that hash (begin_blob_collection()): the caller
  /// waits, publishes its bytes again and retries.
  virtual Result<Blob> put_blob(const Blob& blob) = 0;
  virtual Result<Blob> get_blob(const std::string& sha256_hex) = 0;
  /// Records the probed container metadata of a blob (JSON object text). NotFound when absent.
  virtual Status set_blob_file_meta(const std::string& sha256_hex,
                                    const std::string& file_meta) = 0;
  /// Which of these hashes have a blob, in the order given.
  virtual Result<std::vector<std::string>> existing_blobs(
      const std::vector<std::string>& sha256_hex) = 0;
  /// Records that `user_id` uploaded the bytes of a blob, so that they may name it by its hash
  /// (issue 18). Idempotent.
  virtual Status grant_blob(const std::string& sha256_hex, Id user_id) = 0;
  /// Which of these hashes have a blob that `user_id` was granted (grant_blob()) or that an item
  /// of one of `team_ids` uses, in the order given: the hashes that user may name.
  virtual Result<std::vector<std::string>> usable_blobs(const std::vector<std::string>& sha256_hex,
                                                        Id user_id,
                                                        const std::vector<Id>& team_ids) = 0;

  /// Adds items to a dataset in one transaction: all or none. AlreadyExists when a name is
  /// taken (in the dataset or twice in the call); NotFound when a blob hash is unknown.
  virtual Result<std::vector<Item>> add_items(Id dataset_id, const std::vector<NewItem>& items,
                                              Id created_by) = 0;
  virtual Result<Item> get_item(Id id) = 0;
  /// Items of one dataset, or of a whole project (dataset_id nullopt; `recursive` is implied).
  /// Filters: id, name, createdAt, updatedAt, hash (the content hash; base64 is the service's
  /// business: hex here).
  virtual Result<Page<Item>> list_items(std::optional<Id> dataset_id, std::optional<Id> project_id,
                                        const ListQuery& query) = 0;
  /// The items among `names` that already exist in the dataset.
  virtual Result<std::vector<Item>> find_items_by_name(Id dataset_id,
                                                       const std::vector<std::string>& names) = 0;
  /// Switches items to links in one transaction: all or none. NotFound for an unknown item,
  /// PreconditionFailed when an item no longer has the expected blob or link, InvalidArgument for
  /// an empty link or an item named twice. Content hash, size, mime and metadata stay; blobs and
  /// bytes stay.
  virtual Status set_item_links(const std::vector<LinkChange>& changes) = 0;
  /// Switches linked items to stored blobs in one transaction: all or none. NotFound for an
  /// unknown item or blob, PreconditionFailed when an item no longer has the expected link.
  virtual Status set_item_blobs(const std::vector<BlobChange>& changes) = 0;
  /// Removes items; unknown ids are ignored. Blobs stay (other items may share them).
  virtual Status remove_items(const std::vector<Id>& ids) = 0;
  // --- Settings shared by every server over this catalog ----------------------------------------
  /// The value stored under `key`, or, when there is none yet, `proposed`, stored and returned:
  /// callers racing on a new key all get the one value that won. For what several servers over
  /// one database must agree on (the bucket prefix, the preview-URL signing secret). Values are
  /// kept as given, in the database: whoever reads the database may read them.
  virtual Result<std::string> shared_setting(const std::string& key,
                                             const std::string& proposed) = 0;

  // --- Leases: work that must not run twice at once ---------------------------------------------
  /// Takes the lease `name` (e.g. "migrate project 12") for `holder` until now + `ttl`, or
  /// extends it when `holder` holds it already. A lease whose holder let it expire (it died, or
  /// stalled) is taken over. PreconditionFailed, naming the holder and its expiry, while another
  /// holder's lease runs. Times are the callers' clocks: servers must keep them in sync.
  virtual Status take_lease(const std::string& name, const std::string& holder,
                            std::chrono::milliseconds ttl) = 0;
  /// Takes the lease `name` from `dead_holder` whatever its expiry, when that holder still holds
  /// it: for a holder known to be gone (a process of this machine that no longer runs).
  /// PreconditionFailed when someone else holds it now.
  virtual Status take_over_lease(const std::string& name, const std::string& holder,
                                 std::chrono::milliseconds ttl,
                                 const std::string& dead_holder) = 0;
  /// Who holds the lease `name` (unexpired), or std::nullopt.
  virtual Result<std::optional<std::string>> lease_holder(const std::string& name) = 0;
  /// Gives the lease up if `holder` holds it; otherwise does nothing.
  virtual Status release_lease(const std::string& name, const std::string& holder) = 0;

  // --- Shared work: a run's items, copied by several workers (issue 14) ----------------------
  /// Starts the run `run` (e.g. "migrate project 12") over: forgets its items and results and
  /// records `spec` (what every worker needs to know of the run, as text).
  virtual Status open_work_run(const std::string& run, const std::string& spec) = 0;
  /// The spec of an open run, or std::nullopt.
  virtual Result<std::optional<std::string>> work_run_spec(const std::string& run) = 0;
  /// Adds items to an open run, pending (items it has already are left as they are).
  virtual Status add_work(const std::string& run, const std::vector<Id>& item_ids) = 0;
  /// Takes up to `limit` items of the run for `holder` until now + `hold`: pending ones, and
  /// ones whose holder let its hold run out (it died). Several workers claiming at once get
  /// disjoint items, without waiting on each other (FOR UPDATE SKIP LOCKED on PostgreSQL).
  virtual Result<std::vector<Id>> claim_work(const std::string& run, const std::string& holder,
                                             std::size_t limit,
                                             std::chrono::milliseconds hold) = 0;
  /// Records what became of an item `holder` claimed: done or failed, with a result (text).
  /// False when the item was no longer `holder`'s (its hold ran out and another took it).
  virtual Result<bool> finish_work(const std::string& run, Id item_id, const std::string& holder,
                                   bool failed, const std::string& result) = 0;
  virtual Result<WorkCounts> count_work(const std::string& run) = 0;
  /// The run's finished items in id order, the first `limit` after `after_item_id`.
  virtual Result<std::vector<WorkResult>> finished_work(const std::string& run, Id after_item_id,
                                                        std::size_t limit) = 0;
  /// Forgets the run and its items.
  virtual Status close_work_run(const std::string& run) = 0;

  /// The teams that have at least one item using the blob, without repeats (empty when none
  /// does): who may see a blob's bytes, e.g. its previews.
  virtual Result<std::vector<Id>> blob_team_ids(const std::string& sha256_hex) = 0;

  // --- Checking and collecting blobs (issue 17: fsck, gc) --------------------------------------
  /// Blobs in hash order, the first `limit` after `after_sha256_hex` ("" from the start).
  virtual Result<std::vector<Blob>> list_blobs(const std::string& after_sha256_hex,
                                               std::size_t limit) = 0;
  /// Every item of the instance (all teams), in id order: the first `limit` with an id above
  /// `after_id`. For fsck; no team check here.
  virtual Result<std::vector<Item>> scan_items(Id after_id, std::size_t limit) = 0;
  /// Like list_blobs(), but only blobs that no item uses and that were recorded before
  /// `created_before` (an ISO 8601 UTC time as the catalog writes them): gc's candidates.
  virtual Result<std::vector<Blob>> unreferenced_blobs(const std::string& created_before,
                                                       const std::string& after_sha256_hex,
                                                       std::size_t limit) = 0;
  /// gc, step 1, in one transaction: when the blob exists, no item uses it and it was recorded
  /// before `created_before`, deletes its row and records a collection of it (bucket, key,
  /// size) until end_blob_collection(); returns true. Otherwise changes nothing and returns
  /// false. While a collection is recorded, put_blob() of that hash fails (Unavailable), so no
  /// upload can record a row for bytes that gc is about to delete; add_items() naming the hash
  /// fails NotFound as for any unknown blob.
  virtual Result<bool> begin_blob_collection(const std::string& sha256_hex,
                                             const std::string& created_before) = 0;
  /// gc, step 3, after the object is deleted: forgets the collection. Absent: no-op.
  virtual Status end_blob_collection(const std::string& sha256_hex) = 0;
  /// Collections begun and not ended (a gc that was killed): what they were deleting.
  virtual Result<std::vector<Blob>> pending_blob_collections() = 0;
  /// fsck --repair: records what a fresh probe of a linked item's object found (mime, size,
  /// dimensions). NotFound for an unknown item; InvalidArgument for a stored (blob) item.
  virtual Status set_item_probe(Id item_id, const std::string& mime, std::uint64_t size,
                                std::optional<std::int64_t> width,
                                std::optional<std::int64_t> height) = 0;
};

}  // namespace stowage::catalog
