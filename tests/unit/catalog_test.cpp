// SPDX-License-Identifier: Apache-2.0
#include "stowage/catalog/catalog.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "stowage/io/checksum.hpp"
#include "support/postgres.hpp"

namespace stowage::catalog {
namespace {

namespace fs = std::filesystem;

std::string sha_hex(std::string_view text) {
  io::Sha256 sha;
  sha.update(text);
  const auto digest = sha.finish();
  return io::to_hex(digest);
}

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Filter filter(std::string field, Filter::Op op, std::vector<FilterValue> values) {
  return Filter{std::move(field), op, std::move(values)};
}

/// The engines every catalog test runs on.
enum class Engine { Sqlite, Postgres };

std::string engine_name(const ::testing::TestParamInfo<Engine>& info) {
  return info.param == Engine::Sqlite ? "sqlite" : "postgres";
}

/// One catalog per test: a fresh SQLite file, or a fresh database on the test PostgreSQL
/// (scripts/test-servers/postgres.sh; skipped when it is not running, a failure when CI=true).
class CatalogTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "stowage-catalog-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    file_ = dir_ / "catalog.db";
    if (GetParam() == Engine::Postgres) {
      const std::string server = testing::postgres_server_url();
      if (server.empty()) {
        if (testing::running_in_ci()) FAIL() << "the test PostgreSQL is not running";
        GTEST_SKIP() << "STOWAGE_TEST_POSTGRES_ENV not set: no test PostgreSQL";
      }
      auto db = testing::ScratchDatabase::create(server);
      ASSERT_TRUE(db) << db.error().to_string();
      db_.emplace(std::move(*db));
    }
    open();
  }
  void TearDown() override {
    catalog_.reset();
    db_.reset();
    fs::remove_all(dir_);
  }

  bool postgres() const { return GetParam() == Engine::Postgres; }

  /// The catalog's URL, as DATABASE_URL would name it.
  std::string url() const { return postgres() ? db_->url() : "sqlite:" + file_.string(); }

  Result<std::unique_ptr<Catalog>> open_another() const { return Catalog::open(url(), {}); }

  void open() {
    auto opened = open_another();
    ASSERT_TRUE(opened) << opened.error().to_string();
    catalog_ = std::move(*opened);
  }

  /// Everything the engine keeps of the catalog's tokens, as bytes: SQLite's file and WAL, or
  /// PostgreSQL's api_tokens table as text.
  std::string stored_token_bytes() const {
    if (postgres()) return db_->query("SELECT string_agg(t::text, ',') FROM api_tokens t").value();
    return file_bytes(file_) + file_bytes(fs::path(file_.string() + "-wal"));
  }

  /// A user, team, workspace, project and dataset to hang things on.
  void make_tree() {
    user_ = catalog_->create_user("alice", false).value();
    team_ = catalog_->create_team("vision", "").value();
    catalog_->add_member(team_.id, user_.id, Role::Developer).value();
    workspace_ = catalog_->create_workspace(team_.id, "ws", "").value();
    Project p;
    p.workspace_id = workspace_.id;
    p.name = "cars";
    p.type = "images";
    p.created_by = user_.id;
    project_ = catalog_->create_project(p).value();
    dataset_ = make_dataset("train");
  }

  Dataset make_dataset(const std::string& name, std::optional<Id> parent = std::nullopt,
                       std::optional<Id> project = std::nullopt) {
    Dataset d;
    d.project_id = project.value_or(project_.id);
    d.parent_id = parent;
    d.name = name;
    return catalog_->create_dataset(d).value();
  }

  Blob make_blob(std::string_view content, std::uint64_t size = 100) {
    Blob b;
    b.sha256_hex = sha_hex(content);
    b.size = size;
    b.mime = "image/jpeg";
    b.width = 640;
    b.height = 480;
    b.bucket = "pfx-public";
    b.key = "images/original/" + b.sha256_hex + ".jpg";
    return catalog_->put_blob(b).value();
  }

  static NewItem blob_item(const std::string& name, const Blob& blob) {
    NewItem item;
    item.name = name;
    item.blob_sha256_hex = blob.sha256_hex;
    return item;
  }

  static NewItem link_item(const std::string& name, std::uint64_t size = 7) {
    NewItem item;
    item.name = name;
    item.link = "s3://bucket/" + name;
    item.mime = "image/png";
    item.size = size;
    return item;
  }

  fs::path dir_;
  fs::path file_;
  std::optional<testing::ScratchDatabase> db_;
  std::unique_ptr<Catalog> catalog_;
  User user_;
  Team team_;
  Workspace workspace_;
  Project project_;
  Dataset dataset_;
};

TEST_P(CatalogTest, MigratesAnEmptyFileAndKeepsVersionAndDataOnReopen) {
  const int version = catalog_->schema_version().value();
  EXPECT_GE(version, 1);
  make_tree();
  catalog_.reset();

  open();
  EXPECT_EQ(catalog_->schema_version().value(), version);
  EXPECT_EQ(catalog_->find_user("alice").value().id, user_.id);
  EXPECT_EQ(catalog_->get_project(project_.id).value().name, "cars");
  EXPECT_EQ(catalog_->get_dataset(dataset_.id).value().name, "train");
}

TEST_P(CatalogTest, RefusesADatabaseNewerThanTheBuild) {
  catalog_.reset();
  if (postgres()) {
    db_->query("INSERT INTO stowage_schema (version) VALUES (999)").value();
  } else {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 999", nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }

  auto opened = open_another();
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, ErrorCode::Unsupported);
  EXPECT_NE(opened.error().message.find("999"), std::string::npos) << opened.error().message;
  EXPECT_NE(opened.error().message.find("newer"), std::string::npos) << opened.error().message;
}

TEST_P(CatalogTest, BootstrapsOnlyAnEmptyCatalog) {
  auto first = catalog_->bootstrap().value();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->info.user_login, "admin");
  const User admin = catalog_->find_user("admin").value();
  EXPECT_TRUE(admin.is_admin);
  const auto teams = catalog_->memberships(admin.id).value();
  ASSERT_EQ(teams.size(), 1u);
  EXPECT_EQ(teams[0].team.name, "admin's team");
  EXPECT_EQ(teams[0].role, Role::Admin);
  const auto workspaces = catalog_->list_workspaces(teams[0].team.id, {}).value();
  ASSERT_EQ(workspaces.total, 1);
  EXPECT_EQ(workspaces.entities[0].name, "First Workspace");
  const Principal who = catalog_->authenticate(first->secret).value();
  EXPECT_EQ(who.user.id, admin.id);
  EXPECT_EQ(who.team_ids, std::vector<Id>{teams[0].team.id});

  EXPECT_FALSE(catalog_->bootstrap().value().has_value());
  EXPECT_EQ(catalog_->list_tokens().value().size(), 1u);
  EXPECT_EQ(catalog_->memberships(admin.id).value().size(), 1u);
}

TEST_P(CatalogTest, BootstrapDoesNothingWhenUsersExist) {
  catalog_->create_user("someone", false).value();
  EXPECT_FALSE(catalog_->bootstrap().value().has_value());
  EXPECT_EQ(catalog_->find_user("admin").error().code, ErrorCode::NotFound);
}

TEST_P(CatalogTest, TokensAuthenticateUntilRevokedAndOnlyTheirHashIsStored) {
  make_tree();
  const IssuedToken token = catalog_->create_token(user_.id, "laptop").value();
  EXPECT_EQ(token.secret.size(), 64u);
  EXPECT_TRUE(std::all_of(token.secret.begin(), token.secret.end(),
                          [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }));
  EXPECT_NE(catalog_->create_token(user_.id, "other").value().secret, token.secret);

  const Principal who = catalog_->authenticate(token.secret).value();
  EXPECT_EQ(who.user.login, "alice");
  EXPECT_EQ(who.token_id, token.info.id);
  EXPECT_EQ(who.team_ids, std::vector<Id>{team_.id});

  const auto tokens = catalog_->list_tokens().value();
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].name, "laptop");
  EXPECT_EQ(tokens[0].user_login, "alice");
  EXPECT_TRUE(tokens[0].last_used_at.has_value());
  EXPECT_FALSE(tokens[0].revoked);
  EXPECT_FALSE(tokens[1].last_used_at.has_value());

  // The bytes on disk (database and WAL) hold the secret's hash, never the secret.
  const std::string disk = stored_token_bytes();
  EXPECT_NE(disk.find(sha_hex(token.secret)), std::string::npos);
  EXPECT_EQ(disk.find(token.secret), std::string::npos);

  catalog_->revoke_token(token.info.id).value();
  auto refused = catalog_->authenticate(token.secret);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::Unauthenticated);
  EXPECT_EQ(refused.error().message.find(token.secret), std::string::npos);
  EXPECT_TRUE(catalog_->list_tokens().value()[0].revoked);

  EXPECT_EQ(catalog_->authenticate("nope").error().code, ErrorCode::Unauthenticated);
  EXPECT_EQ(catalog_->authenticate("").error().code, ErrorCode::Unauthenticated);
  EXPECT_EQ(catalog_->revoke_token(12345).error().code, ErrorCode::NotFound);
  EXPECT_EQ(catalog_->create_token(12345, "x").error().code, ErrorCode::NotFound);
}

TEST_P(CatalogTest, NamesAreUniquePerWorkspaceAndPerSiblings) {
  make_tree();
  EXPECT_EQ(catalog_->create_user("alice", true).error().code, ErrorCode::AlreadyExists);
  EXPECT_EQ(catalog_->create_workspace(team_.id, "ws", "").error().code, ErrorCode::AlreadyExists);
  EXPECT_EQ(catalog_->create_workspace(999, "ws", "").error().code, ErrorCode::NotFound);

  Project again = project_;
  auto clash = catalog_->create_project(again);
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().code, ErrorCode::AlreadyExists);
  EXPECT_NE(clash.error().message.find("cars"), std::string::npos);
  again.workspace_id = catalog_->create_workspace(team_.id, "ws2", "").value().id;
  EXPECT_TRUE(catalog_->create_project(again));
  again.workspace_id = 999;
  EXPECT_EQ(catalog_->create_project(again).error().code, ErrorCode::NotFound);
  again.workspace_id = workspace_.id;
  again.name = "other";
  again.type = "point_clouds";
  EXPECT_EQ(catalog_->create_project(again).error().code, ErrorCode::InvalidArgument);

  // Top-level siblings clash although parent_id is NULL; children of different parents do not.
  Dataset top;
  top.project_id = project_.id;
  top.name = "train";
  EXPECT_EQ(catalog_->create_dataset(top).error().code, ErrorCode::AlreadyExists);
  const Dataset val = make_dataset("val");
  make_dataset("images", dataset_.id);
  make_dataset("images", val.id);
  Dataset child = top;
  child.name = "images";
  child.parent_id = val.id;
  EXPECT_EQ(catalog_->create_dataset(child).error().code, ErrorCode::AlreadyExists);

  // A parent must belong to the same project.
  Project other_project = project_;
  other_project.name = "bikes";
  const Project bikes = catalog_->create_project(other_project).value();
  Dataset foreign;
  foreign.project_id = bikes.id;
  foreign.name = "x";
  foreign.parent_id = dataset_.id;
  EXPECT_EQ(catalog_->create_dataset(foreign).error().code, ErrorCode::NotFound);
  foreign.parent_id = 424242;
  EXPECT_EQ(catalog_->create_dataset(foreign).error().code, ErrorCode::NotFound);
  foreign.parent_id.reset();
  foreign.project_id = 424242;
  EXPECT_EQ(catalog_->create_dataset(foreign).error().code, ErrorCode::NotFound);
}

TEST_P(CatalogTest, ListsNestedDatasetsByLevelOrRecursively) {
  make_tree();
  const Dataset b = make_dataset("b", dataset_.id);
  const Dataset c = make_dataset("c", b.id);
  const Dataset d = make_dataset("d");
  EXPECT_EQ(c.parent_id, b.id);
  EXPECT_EQ(c.team_id, team_.id);
  EXPECT_EQ(c.workspace_id, workspace_.id);

  auto names = [](const Page<Dataset>& page) {
    std::vector<std::string> out;
    for (const Dataset& ds : page.entities) out.push_back(ds.name);
    return out;
  };
  const auto top = catalog_->list_datasets(project_.id, false, {}).value();
  EXPECT_EQ(names(top), (std::vector<std::string>{"train", "d"}));
  EXPECT_EQ(top.total, 2);
  const auto all = catalog_->list_datasets(project_.id, true, {}).value();
  EXPECT_EQ(names(all), (std::vector<std::string>{"train", "b", "c", "d"}));
  EXPECT_EQ(all.total, 4);

  ListQuery children;
  children.filters = {filter("parentId", Filter::Op::Eq, {b.id})};
  EXPECT_EQ(names(catalog_->list_datasets(project_.id, false, children).value()),
            std::vector<std::string>{"c"});
  EXPECT_EQ(names(catalog_->list_datasets(project_.id, true, children).value()),
            std::vector<std::string>{"c"});

  ListQuery by_name;
  by_name.filters = {filter("name", Filter::Op::Eq, {std::string("c")})};
  EXPECT_EQ(catalog_->list_datasets(project_.id, false, by_name).value().total, 0);
  EXPECT_EQ(catalog_->list_datasets(project_.id, true, by_name).value().total, 1);

  ListQuery not_child;  // NULL parents differ from any value
  not_child.filters = {filter("parentId", Filter::Op::NotEq, {b.id})};
  EXPECT_EQ(catalog_->list_datasets(project_.id, true, not_child).value().total, 3);
  (void)d;
}

TEST_P(CatalogTest, FiltersOnWhitelistedFieldsOnly) {
  make_tree();
  const Blob blob = make_blob("bytes");
  const auto items = catalog_
                         ->add_items(dataset_.id,
                                     {blob_item("a.jpg", blob), link_item("b.png"),
                                      link_item("c.png"), link_item("d.png")},
                                     user_.id)
                         .value();

  ListQuery eq;
  eq.filters = {filter("name", Filter::Op::Eq, {std::string("c.png")})};
  auto page = catalog_->list_items(dataset_.id, std::nullopt, eq).value();
  ASSERT_EQ(page.total, 1);
  EXPECT_EQ(page.entities[0].id, items[2].id);

  ListQuery in;
  in.filters = {filter("id", Filter::Op::In, {items[0].id, items[3].id, Id{999999}})};
  page = catalog_->list_items(dataset_.id, std::nullopt, in).value();
  ASSERT_EQ(page.total, 2);
  EXPECT_EQ(page.entities[0].name, "a.jpg");
  EXPECT_EQ(page.entities[1].name, "d.png");

  ListQuery names_in;
  names_in.filters = {
      filter("name", Filter::Op::In, {std::string("b.png"), std::string("it's \"odd\"")})};
  EXPECT_EQ(catalog_->list_items(dataset_.id, std::nullopt, names_in).value().total, 1);

  ListQuery not_in;
  not_in.filters = {filter("hash", Filter::Op::NotIn, {blob.sha256_hex})};
  EXPECT_EQ(catalog_->list_items(dataset_.id, std::nullopt, not_in).value().total, 3);

  ListQuery by_hash;
  by_hash.filters = {filter("hash", Filter::Op::Eq, {blob.sha256_hex})};
  page = catalog_->list_items(std::nullopt, project_.id, by_hash).value();
  ASSERT_EQ(page.total, 1);
  EXPECT_EQ(page.entities[0].name, "a.jpg");

  ListQuery like;
  like.filters = {filter("name", Filter::Op::Like, {std::string("%.png")}),
                  filter("id", Filter::Op::Greater, {items[1].id})};
  EXPECT_EQ(catalog_->list_items(dataset_.id, std::nullopt, like).value().total, 2);

  ListQuery unknown;
  unknown.filters = {filter("password", Filter::Op::Eq, {std::string("x")})};
  auto bad = catalog_->list_items(dataset_.id, std::nullopt, unknown);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(bad.error().message.find("password"), std::string::npos);

  ListQuery wrong_type;
  wrong_type.filters = {filter("id", Filter::Op::Eq, {std::string("1")})};
  bad = catalog_->list_items(dataset_.id, std::nullopt, wrong_type);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(bad.error().message.find("'id'"), std::string::npos);

  ListQuery two_values;
  two_values.filters = {filter("id", Filter::Op::Eq, {Id{1}, Id{2}})};
  EXPECT_EQ(catalog_->list_items(dataset_.id, std::nullopt, two_values).error().code,
            ErrorCode::InvalidArgument);

  ListQuery parent_on_items;  // parentId is a dataset field, not an item field
  parent_on_items.filters = {filter("parentId", Filter::Op::Eq, {Id{1}})};
  EXPECT_EQ(catalog_->list_items(dataset_.id, std::nullopt, parent_on_items).error().code,
            ErrorCode::InvalidArgument);

  ListQuery bad_sort;
  bad_sort.sort = "secret";
  EXPECT_EQ(catalog_->list_projects(workspace_.id, std::nullopt, bad_sort).error().code,
            ErrorCode::InvalidArgument);
}

TEST_P(CatalogTest, PagesAndTokensWalkEveryItemOnce) {
  make_tree();
  std::vector<NewItem> batch;
  for (int i = 0; i < 25; ++i) batch.push_back(link_item("img" + std::to_string(100 + i) + ".png"));
  catalog_->add_items(dataset_.id, batch, user_.id).value();

  std::vector<Id> seen;
  ListQuery q;
  q.per_page = 10;
  for (q.page = 1; q.page <= 3; ++q.page) {
    const auto page = catalog_->list_items(dataset_.id, std::nullopt, q).value();
    EXPECT_EQ(page.total, 25);
    EXPECT_EQ(page.entities.size(), q.page < 3 ? 10u : 5u);
    for (const Item& item : page.entities) seen.push_back(item.id);
  }
  q.page = 4;
  EXPECT_TRUE(catalog_->list_items(dataset_.id, std::nullopt, q).value().entities.empty());
  EXPECT_EQ(seen.size(), 25u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<Id>(seen.begin(), seen.end()).size(), 25u);

  // Token mode: `after` is the last id of the previous page.
  std::vector<Id> walked;
  ListQuery t;
  t.per_page = 7;
  for (;;) {
    const auto page = catalog_->list_items(std::nullopt, project_.id, t).value();
    EXPECT_EQ(page.total, 25);
    if (page.entities.empty()) break;
    for (const Item& item : page.entities) walked.push_back(item.id);
    t.after = page.entities.back().id;
  }
  EXPECT_EQ(walked, seen);

  ListQuery by_name;
  by_name.sort = "name";
  by_name.descending = true;
  by_name.per_page = 3;
  const auto named = catalog_->list_items(dataset_.id, std::nullopt, by_name).value();
  ASSERT_EQ(named.entities.size(), 3u);
  EXPECT_EQ(named.entities[0].name, "img124.png");
  EXPECT_EQ(named.entities[2].name, "img122.png");

  ListQuery bad;
  bad.per_page = 0;
  EXPECT_EQ(catalog_->list_items(dataset_.id, std::nullopt, bad).error().code,
            ErrorCode::InvalidArgument);
  bad.per_page = 20001;
  EXPECT_EQ(catalog_->list_items(dataset_.id, std::nullopt, bad).error().code,
            ErrorCode::InvalidArgument);
  bad.per_page = 10;
  bad.page = 0;
  EXPECT_EQ(catalog_->list_items(dataset_.id, std::nullopt, bad).error().code,
            ErrorCode::InvalidArgument);
  ListQuery token_by_name;
  token_by_name.sort = "name";
  token_by_name.after = 1;
  EXPECT_EQ(catalog_->list_items(dataset_.id, std::nullopt, token_by_name).error().code,
            ErrorCode::InvalidArgument);
  EXPECT_EQ(catalog_->list_items(std::nullopt, std::nullopt, {}).error().code,
            ErrorCode::InvalidArgument);
}

// The SDK asks pages 1, 2, 3... in order: each page after one the catalog served starts where
// that one ended (by id), at any depth, so an item removed from an earlier page mid-walk shifts
// nothing. A page asked cold (another server, a restart) is found by its number.
TEST_P(CatalogTest, AWalkByPageNumberContinuesWhereItsLastPageEnded) {
  make_tree();
  std::vector<NewItem> batch;
  for (int i = 0; i < 25; ++i) batch.push_back(link_item("w" + std::to_string(100 + i) + ".png"));
  const auto items = catalog_->add_items(dataset_.id, batch, user_.id).value();
  auto ids = [](const Page<Item>& page) {
    std::vector<Id> out;
    for (const Item& item : page.entities) out.push_back(item.id);
    return out;
  };
  auto expected = [&](std::size_t from, std::size_t n) {
    std::vector<Id> out;
    for (std::size_t i = from; i < from + n && i < items.size(); ++i) out.push_back(items[i].id);
    return out;
  };
  for (const bool descending : {false, true}) {
    SCOPED_TRACE(descending ? "descending" : "ascending");
    ListQuery q;
    q.per_page = 10;
    q.descending = descending;
    std::vector<Id> walked;
    for (q.page = 1; q.page <= 3; ++q.page) {
      const auto page = ids(catalog_->list_items(dataset_.id, std::nullopt, q).value());
      walked.insert(walked.end(), page.begin(), page.end());
    }
    std::vector<Id> all = expected(0, 25);
    if (descending) std::reverse(all.begin(), all.end());
    EXPECT_EQ(walked, all);
  }

  ListQuery q;
  q.per_page = 10;
  EXPECT_EQ(ids(catalog_->list_items(dataset_.id, std::nullopt, q).value()), expected(0, 10));
  catalog_->remove_items({items[0].id}).value();
  q.page = 2;
  const auto second = catalog_->list_items(dataset_.id, std::nullopt, q).value();
  EXPECT_EQ(ids(second), expected(10, 10));
  EXPECT_EQ(second.total, 24);
  q.page = 3;
  EXPECT_EQ(ids(catalog_->list_items(dataset_.id, std::nullopt, q).value()), expected(20, 5));

  // Cold, by number: OFFSET over what is there now.
  catalog_.reset();
  open();
  q.page = 2;
  EXPECT_EQ(ids(catalog_->list_items(dataset_.id, std::nullopt, q).value()), expected(11, 10));
  // Another filter or page size is another walk.
  q.page = 1;
  q.per_page = 5;
  EXPECT_EQ(ids(catalog_->list_items(dataset_.id, std::nullopt, q).value()), expected(1, 5));
  q.page = 2;
  q.filters = {{"name", Filter::Op::NotEq, {std::string("w103.png")}}};
  EXPECT_EQ(ids(catalog_->list_items(dataset_.id, std::nullopt, q).value()), expected(7, 5));
}

TEST_P(CatalogTest, CountsTotalsAndAggregates) {
  make_tree();
  const Dataset child = make_dataset("child", dataset_.id);
  const Blob blob = make_blob("bytes", 1000);
  catalog_->add_items(dataset_.id, {blob_item("a.jpg", blob), link_item("b.png", 20)}, user_.id)
      .value();
  catalog_->add_items(child.id, {blob_item("a.jpg", blob)}, user_.id).value();

  const Project p = catalog_->get_project(project_.id).value();
  EXPECT_EQ(p.items_count, 3);
  EXPECT_EQ(p.datasets_count, 2);
  EXPECT_EQ(p.size_bytes, 2020u);
  EXPECT_EQ(p.team_id, team_.id);
  EXPECT_EQ(p.created_by, user_.id);
  EXPECT_EQ(p.custom_data, "{}");

  const Dataset d = catalog_->get_dataset(dataset_.id).value();
  EXPECT_EQ(d.items_count, 2);  // items directly in it
  EXPECT_EQ(d.size_bytes, 1020u);

  for (int i = 0; i < 4; ++i) {
    Project extra = project_;
    extra.name = "p" + std::to_string(i);
    catalog_->create_project(extra).value();
  }
  ListQuery q;
  q.per_page = 2;
  q.sort = "size";
  q.descending = true;
  const auto projects = catalog_->list_projects(std::nullopt, team_.id, q).value();
  EXPECT_EQ(projects.total, 5);
  ASSERT_EQ(projects.entities.size(), 2u);
  EXPECT_EQ(projects.entities[0].name, "cars");
  EXPECT_EQ(projects.entities[0].items_count, 3);
  EXPECT_EQ(catalog_->list_projects(workspace_.id, std::nullopt, {}).value().total, 5);
  EXPECT_EQ(catalog_->list_projects(std::nullopt, std::nullopt, {}).error().code,
            ErrorCode::InvalidArgument);
}

// The totals a list shows without filters are kept by triggers (schema 6); a filter that matches
// every item makes the catalog count instead. The two must agree after every kind of change.
TEST_P(CatalogTest, KeptCountsAgreeWithCountingAfterEveryChange) {
  make_tree();
  const Dataset other = make_dataset("other");
  ListQuery counted;
  counted.filters = {{"size", Filter::Op::GreaterEq, {std::int64_t{0}}}};
  auto expect_agree = [&](std::int64_t items, std::uint64_t bytes) {
    for (const Id d : {dataset_.id, other.id}) {
      EXPECT_EQ(catalog_->list_items(d, std::nullopt, {}).value().total,
                catalog_->list_items(d, std::nullopt, counted).value().total);
    }
    EXPECT_EQ(catalog_->list_items(std::nullopt, project_.id, {}).value().total, items);
    EXPECT_EQ(catalog_->list_items(std::nullopt, project_.id, counted).value().total, items);
    const Project p = catalog_->get_project(project_.id).value();
    EXPECT_EQ(p.items_count, items);
    EXPECT_EQ(p.size_bytes, bytes);
    const Dataset a = catalog_->get_dataset(dataset_.id).value();
    const Dataset b = catalog_->get_dataset(other.id).value();
    EXPECT_EQ(a.items_count + b.items_count, items);
    EXPECT_EQ(a.size_bytes + b.size_bytes, bytes);
  };
  expect_agree(0, 0);
  const Blob blob = make_blob("bytes", 1000);
  std::vector<NewItem> batch;
  for (int i = 0; i < 30; ++i) batch.push_back(link_item("l" + std::to_string(i) + ".png", 10));
  batch.push_back(blob_item("b.jpg", blob));
  const auto added = catalog_->add_items(dataset_.id, batch, user_.id).value();
  catalog_->add_items(other.id, {link_item("x.png", 5)}, user_.id).value();
  expect_agree(32, 30 * 10 + 1000 + 5);

  // A batch that fails adds nothing, counts included.
  EXPECT_FALSE(catalog_->add_items(other.id, {link_item("y.png", 5), link_item("x.png", 5)},
                                   user_.id));
  expect_agree(32, 1305);

  catalog_->remove_items({added[0].id, added[1].id, added[30].id}).value();
  expect_agree(29, 28 * 10 + 5);
  // A re-probe that finds another size; a stored item switched to a link of other bytes' size.
  catalog_->set_item_probe(added[2].id, "image/png", 110, 8, 8).value();
  expect_agree(29, 28 * 10 + 100 + 5);
  EXPECT_EQ(catalog_->get_dataset(other.id).value().size_bytes, 5u);
}

TEST_P(CatalogTest, AddItemsIsAllOrNothing) {
  make_tree();
  const Blob blob = make_blob("bytes", 1234);

  const auto added =
      catalog_->add_items(dataset_.id, {link_item("z.png"), blob_item("a.jpg", blob)}, user_.id)
          .value();
  ASSERT_EQ(added.size(), 2u);
  EXPECT_EQ(added[0].name, "z.png");  // request order
  EXPECT_EQ(added[1].name, "a.jpg");
  EXPECT_EQ(added[1].blob_bucket, "pfx-public");
  EXPECT_EQ(added[1].blob_key, blob.key);
  EXPECT_EQ(added[1].size, 1234u);  // taken from the blob
  EXPECT_EQ(added[1].mime, "image/jpeg");
  EXPECT_EQ(added[1].width, 640);
  EXPECT_EQ(added[1].project_id, project_.id);
  EXPECT_EQ(added[1].team_id, team_.id);
  EXPECT_EQ(added[1].workspace_id, workspace_.id);
  EXPECT_EQ(added[1].created_by_login, "alice");
  EXPECT_FALSE(added[0].blob_sha256_hex.has_value());

  const Item stored = catalog_->get_item(added[1].id).value();
  EXPECT_EQ(stored.blob_key, blob.key);
  EXPECT_EQ(stored.created_by_login, "alice");
  EXPECT_EQ(stored.created_at, added[1].created_at);
  EXPECT_EQ(stored.meta, "{}");
  EXPECT_EQ(stored.created_at.size(), 24u);  // 2026-11-25T22:36:16.123Z
  EXPECT_EQ(stored.created_at.back(), 'Z');

  auto count = [&] { return catalog_->list_items(dataset_.id, std::nullopt, {}).value().total; };
  auto fails_with = [&](std::vector<NewItem> items, ErrorCode code, Id ds = 0) {
    auto r = catalog_->add_items(ds == 0 ? dataset_.id : ds, items, user_.id);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, code) << r.error().to_string();
    EXPECT_EQ(count(), 2);
  };
  NewItem unknown_blob = blob_item("new2.jpg", blob);
  unknown_blob.blob_sha256_hex = sha_hex("never uploaded");
  fails_with({link_item("new1.png"), unknown_blob}, ErrorCode::NotFound);
  fails_with({link_item("new1.png"), link_item("z.png")}, ErrorCode::AlreadyExists);
  fails_with({link_item("new1.png"), link_item("new1.png")}, ErrorCode::AlreadyExists);
  NewItem both = blob_item("both.jpg", blob);
  both.link = "s3://b/k";
  fails_with({link_item("new1.png"), both}, ErrorCode::InvalidArgument);
  NewItem neither;
  neither.name = "neither.jpg";
  fails_with({neither}, ErrorCode::InvalidArgument);
  fails_with({link_item("new1.png")}, ErrorCode::NotFound, 987654);

  const auto found = catalog_->find_items_by_name(dataset_.id, {"a.jpg", "nope", "z.png"}).value();
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].id, added[1].id);
  EXPECT_EQ(found[1].id, added[0].id);
}

TEST_P(CatalogTest, BlobsAreDeduplicatedByHash) {
  const Blob first = make_blob("same bytes", 10);
  Blob again = first;
  again.bucket = "elsewhere";
  again.size = 99;
  const Blob stored = catalog_->put_blob(again).value();
  EXPECT_EQ(stored.bucket, "pfx-public");
  EXPECT_EQ(stored.size, 10u);
  EXPECT_EQ(stored.created_at, first.created_at);
  EXPECT_EQ(catalog_->get_blob(first.sha256_hex).value().key, first.key);

  const std::string missing = sha_hex("missing");
  EXPECT_EQ(catalog_->get_blob(missing).error().code, ErrorCode::NotFound);
  EXPECT_EQ(catalog_->existing_blobs({missing, first.sha256_hex}).value(),
            std::vector<std::string>{first.sha256_hex});

  Blob bad = first;
  bad.sha256_hex = "ABC";
  EXPECT_EQ(catalog_->put_blob(bad).error().code, ErrorCode::InvalidArgument);
}

TEST_P(CatalogTest, AHashIsUsableByItsUploaderAndTheTeamsWhoseItemsUseIt) {
  make_tree();
  const Blob blob = make_blob("granted");
  const Blob other = make_blob("not granted");
  const User stranger = catalog_->create_user("stranger", false).value();
  const Team theirs = catalog_->create_team("theirs", "").value();
  const std::vector<std::string> both{blob.sha256_hex, other.sha256_hex};
  // A blob nobody was granted and no item uses is nobody's to name.
  EXPECT_TRUE(catalog_->usable_blobs(both, stranger.id, {theirs.id}).value().empty());
  catalog_->grant_blob(blob.sha256_hex, stranger.id).value();
  catalog_->grant_blob(blob.sha256_hex, stranger.id).value();  // idempotent
  EXPECT_EQ(catalog_->usable_blobs(both, stranger.id, {theirs.id}).value(),
            std::vector<std::string>{blob.sha256_hex});
  // The team of an item that uses it may name it, whoever uploaded it; other teams may not.
  catalog_->add_items(dataset_.id, {blob_item("o.jpg", other)}, user_.id).value();
  EXPECT_EQ(catalog_->usable_blobs(both, user_.id, {team_.id}).value(),
            std::vector<std::string>{other.sha256_hex});
  EXPECT_EQ(catalog_->usable_blobs({other.sha256_hex}, stranger.id, {theirs.id}).value().size(),
            0u);
  EXPECT_EQ(catalog_->usable_blobs({other.sha256_hex}, stranger.id, {}).value().size(), 0u);
  EXPECT_EQ(catalog_->grant_blob("nothex", stranger.id).error().code, ErrorCode::InvalidArgument);
}

TEST_P(CatalogTest, RemovesItemsButKeepsBlobs) {
  make_tree();
  const Blob blob = make_blob("bytes");
  const auto items =
      catalog_
          ->add_items(dataset_.id, {blob_item("a.jpg", blob), blob_item("b.jpg", blob)}, user_.id)
          .value();
  catalog_->remove_items({items[0].id, 999999}).value();
  const auto left = catalog_->list_items(dataset_.id, std::nullopt, {}).value();
  ASSERT_EQ(left.total, 1);
  EXPECT_EQ(left.entities[0].id, items[1].id);
  EXPECT_EQ(catalog_->get_item(items[0].id).error().code, ErrorCode::NotFound);
  EXPECT_TRUE(catalog_->get_blob(blob.sha256_hex));
  // The name is free again.
  EXPECT_TRUE(catalog_->add_items(dataset_.id, {link_item("a.jpg")}, user_.id));
}

TEST_P(CatalogTest, SurvivesConcurrentUseFromEightThreads) {
  make_tree();
  const IssuedToken token = catalog_->create_token(user_.id, "load").value();
  const Blob blob = make_blob("shared");
  constexpr int kThreads = 8;
  constexpr int kRounds = 25;
  std::atomic<int> unexpected{0};
  std::atomic<int> conflicts{0};
  std::atomic<int> items_added{0};
  std::vector<std::string> errors(kThreads);

  auto worker = [&](int t) {
    auto fail = [&](const Error& e) {
      ++unexpected;
      errors[t] = e.to_string();
    };
    for (int r = 0; r < kRounds; ++r) {
      // Every thread tries the same dataset names: one wins each, the others get AlreadyExists.
      Dataset d;
      d.project_id = project_.id;
      d.name = "shared-" + std::to_string(r);
      auto ds = catalog_->create_dataset(d);
      if (!ds && ds.error().code != ErrorCode::AlreadyExists) fail(ds.error());
      if (!ds) ++conflicts;

      std::vector<NewItem> batch;
      for (int i = 0; i < 3; ++i) {
        batch.push_back(blob_item(
            "t" + std::to_string(t) + "-" + std::to_string(r) + "-" + std::to_string(i) + ".jpg",
            blob));
      }
      if (auto added = catalog_->add_items(dataset_.id, batch, user_.id); added) {
        items_added += static_cast<int>(added->size());
      } else {
        fail(added.error());
      }
      ListQuery q;
      q.per_page = 5;
      if (auto page = catalog_->list_items(std::nullopt, project_.id, q); !page) fail(page.error());
      if (auto who = catalog_->authenticate(token.secret); !who) fail(who.error());
      if (auto p = catalog_->get_project(project_.id); !p) fail(p.error());
      if (auto all = catalog_->list_datasets(project_.id, true, {}); !all) fail(all.error());
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();

  for (const std::string& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(conflicts.load(), (kThreads - 1) * kRounds);
  EXPECT_EQ(items_added.load(), kThreads * kRounds * 3);
  const Project p = catalog_->get_project(project_.id).value();
  EXPECT_EQ(p.items_count, kThreads * kRounds * 3);
  EXPECT_EQ(p.datasets_count, 1 + kRounds);
}

TEST_P(CatalogTest, SwitchesItemsToLinksAndBackAllOrNothing) {
  make_tree();
  const Blob blob = make_blob("bytes", 1234);
  const auto items =
      catalog_
          ->add_items(dataset_.id, {blob_item("a.jpg", blob), blob_item("b.jpg", blob)}, user_.id)
          .value();
  const Id a = items[0].id;
  const Id b = items[1].id;

  // One bad change (an unknown item, a stale expectation) changes nothing.
  EXPECT_EQ(catalog_->set_item_links({{a, "s3://bk/a.jpg"}, {999999, "s3://bk/x.jpg"}}).error().code,
            ErrorCode::NotFound);
  EXPECT_EQ(catalog_
                ->set_item_links({{a, "s3://bk/a.jpg"},
                                  {b, "s3://bk/b.jpg", sha_hex("other bytes")}})
                .error()
                .code,
            ErrorCode::PreconditionFailed);
  EXPECT_EQ(catalog_->set_item_links({{a, ""}}).error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(catalog_->set_item_links({{a, "s3://bk/1"}, {a, "s3://bk/2"}}).error().code,
            ErrorCode::InvalidArgument);
  EXPECT_EQ(catalog_->get_item(a).value().blob_sha256_hex, blob.sha256_hex);
  EXPECT_FALSE(catalog_->get_item(a).value().link.has_value());

  catalog_->set_item_links({{a, "s3://bk/a.jpg", blob.sha256_hex}, {b, "s3://bk/b.jpg"}}).value();
  const Item linked = catalog_->get_item(a).value();
  EXPECT_EQ(linked.link, "s3://bk/a.jpg");
  EXPECT_FALSE(linked.blob_sha256_hex.has_value());
  EXPECT_EQ(linked.size, 1234u);  // what the item is stays
  EXPECT_EQ(linked.mime, "image/jpeg");
  EXPECT_EQ(linked.content_sha256_hex, blob.sha256_hex);  // the same bytes, elsewhere
  EXPECT_TRUE(catalog_->get_blob(blob.sha256_hex));  // the bytes' row stays

  // And back: the expectation guards against a link changed meanwhile.
  EXPECT_EQ(catalog_->set_item_blobs({{a, blob.sha256_hex, "s3://bk/other.jpg"}}).error().code,
            ErrorCode::PreconditionFailed);
  EXPECT_EQ(catalog_->set_item_blobs({{a, sha_hex("never stored")}}).error().code,
            ErrorCode::NotFound);
  catalog_->set_item_blobs({{a, blob.sha256_hex, "s3://bk/a.jpg"}}).value();
  const Item stored = catalog_->get_item(a).value();
  EXPECT_FALSE(stored.link.has_value());
  EXPECT_EQ(stored.blob_key, blob.key);
  EXPECT_EQ(stored.content_sha256_hex, blob.sha256_hex);
  EXPECT_EQ(catalog_->get_item(b).value().link, "s3://bk/b.jpg");

  // Link to link (cloud to cloud): guarded by the link the item had when it was copied.
  EXPECT_EQ(catalog_->set_item_links({{b, "azure://c/b.jpg", std::nullopt, "s3://bk/old.jpg"}})
                .error()
                .code,
            ErrorCode::PreconditionFailed);
  EXPECT_EQ(catalog_->get_item(b).value().link, "s3://bk/b.jpg");
  catalog_->set_item_links({{b, "azure://c/b.jpg", std::nullopt, "s3://bk/b.jpg"}}).value();
  EXPECT_EQ(catalog_->get_item(b).value().link, "azure://c/b.jpg");
}

TEST_P(CatalogTest, KeepsFileMetaOnBlobsAndItems) {
  make_tree();
  const Blob blob = make_blob("video bytes", 4096);
  EXPECT_EQ(blob.file_meta, "{}");
  const std::string meta = R"({"duration":2.0,"streams":[{"index":0,"codecType":"video"}]})";
  catalog_->set_blob_file_meta(blob.sha256_hex, meta).value();
  EXPECT_EQ(catalog_->get_blob(blob.sha256_hex).value().file_meta, meta);
  EXPECT_EQ(catalog_->set_blob_file_meta(sha_hex("absent"), meta).error().code,
            ErrorCode::NotFound);

  NewItem linked = link_item("v.mp4");
  linked.file_meta = R"({"duration":1.5})";
  const auto items =
      catalog_->add_items(dataset_.id, {blob_item("a.mp4", blob), linked}, user_.id).value();
  EXPECT_EQ(catalog_->get_item(items[0].id).value().file_meta, meta);  // from the blob
  EXPECT_EQ(catalog_->get_item(items[1].id).value().file_meta, linked.file_meta);
}

TEST_P(CatalogTest, AnItemKeepsItsContentHashWhereverItsBytesGo) {
  make_tree();
  const Blob blob = make_blob("the picture", 2048);
  const Blob other = make_blob("another picture", 4096);
  const auto items = catalog_
                         ->add_items(dataset_.id,
                                     {blob_item("a.jpg", blob), blob_item("b.jpg", other),
                                      link_item("c.jpg")},
                                     user_.id)
                         .value();
  EXPECT_EQ(items[0].content_sha256_hex, blob.sha256_hex);
  EXPECT_FALSE(items[2].content_sha256_hex.has_value());  // nobody hashed a link's bytes
  EXPECT_FALSE(catalog_->get_item(items[2].id).value().content_sha256_hex.has_value());

  catalog_->set_item_links({{items[0].id, "s3://bk/a.jpg", blob.sha256_hex}}).value();
  // The hash filter finds an item by its bytes whether they are stored or linked.
  ListQuery by_hash;
  by_hash.filters = {{"hash", Filter::Op::Eq, {blob.sha256_hex}}};
  const auto found = catalog_->list_items(dataset_.id, std::nullopt, by_hash).value();
  ASSERT_EQ(found.entities.size(), 1u);
  EXPECT_EQ(found.entities[0].id, items[0].id);
  EXPECT_EQ(found.entities[0].link, "s3://bk/a.jpg");

  // A linked item brought back onto a blob takes that blob's hash.
  catalog_->set_item_blobs({{items[2].id, other.sha256_hex}}).value();
  EXPECT_EQ(catalog_->get_item(items[2].id).value().content_sha256_hex, other.sha256_hex);
}

TEST_P(CatalogTest, UpgradingToVersion3GivesStoredItemsTheirBlobsHash) {
  make_tree();
  const Blob blob = make_blob("old bytes", 100);
  const Id stored = catalog_->add_items(dataset_.id, {blob_item("a.jpg", blob)}, user_.id)
                        .value()
                        .front()
                        .id;
  catalog_.reset();
  // Back to what a version-2 catalog held: no content hash yet (nor the later settings).
  if (postgres()) {
    db_->query("DROP INDEX items_by_content; ALTER TABLE items DROP COLUMN content_sha256; "
               "DROP TABLE settings; DROP TABLE leases; DROP TABLE dataset_stats; "
               "DROP TABLE project_stats; DROP TRIGGER items_counted_in ON items; "
               "DROP TRIGGER items_counted_out ON items; DROP TRIGGER items_resized ON items; "
               "DROP TRIGGER dataset_stats_open ON datasets; "
               "DROP TRIGGER project_stats_open ON projects; "
               "DELETE FROM stowage_schema WHERE version > 2")
        .value();
  } else {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "DROP INDEX items_by_content; ALTER TABLE items DROP COLUMN "
                           "content_sha256; DROP TABLE settings; DROP TABLE leases; "
                           "DROP TABLE dataset_stats; DROP TABLE project_stats; "
                           "DROP TRIGGER items_counted_in; DROP TRIGGER items_counted_out; "
                           "DROP TRIGGER items_resized; DROP TRIGGER dataset_stats_open; "
                           "DROP TRIGGER project_stats_open; PRAGMA user_version = 2",
                           nullptr, nullptr, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  }

  open();
  EXPECT_GE(catalog_->schema_version().value(), 3);
  EXPECT_EQ(catalog_->get_item(stored).value().content_sha256_hex, blob.sha256_hex);
  // Version 6 counted the items that were there before it.
  EXPECT_EQ(catalog_->get_dataset(dataset_.id).value().items_count, 1);
  EXPECT_EQ(catalog_->get_project(project_.id).value().size_bytes, 100u);
}

// ---- Issue 17: fsck and gc -------------------------------------------------------------------

TEST_P(CatalogTest, BlobsAndItemsCanBeScannedWhole) {
  make_tree();
  const Blob a = make_blob("a"), b = make_blob("b"), c = make_blob("c");
  auto first = catalog_->list_blobs("", 2).value();
  ASSERT_EQ(first.size(), 2u);
  auto rest = catalog_->list_blobs(first.back().sha256_hex, 2).value();
  ASSERT_EQ(rest.size(), 1u);
  std::set<std::string> all{first[0].sha256_hex, first[1].sha256_hex, rest[0].sha256_hex};
  EXPECT_EQ(all, (std::set<std::string>{a.sha256_hex, b.sha256_hex, c.sha256_hex}));
  EXPECT_LT(first[0].sha256_hex, first[1].sha256_hex);
  // Items of every project, in id order.
  Project other = project_;
  other.id = 0;
  other.name = "other";
  other = catalog_->create_project(other).value();
  const Dataset d2 = make_dataset("d2", std::nullopt, other.id);
  catalog_->add_items(dataset_.id, {blob_item("a.jpg", a), link_item("l.png")}, user_.id).value();
  catalog_->add_items(d2.id, {blob_item("b.jpg", b)}, user_.id).value();
  auto page = catalog_->scan_items(0, 2).value();
  ASSERT_EQ(page.size(), 2u);
  auto next = catalog_->scan_items(page.back().id, 2).value();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].name, "b.jpg");
  EXPECT_EQ(next[0].blob_key, b.key);
  EXPECT_TRUE(catalog_->scan_items(next[0].id, 2).value().empty());
}

TEST_P(CatalogTest, OnlyUnusedOldBlobsAreCollectedAndUploadsWaitForACollection) {
  make_tree();
  const Blob used = make_blob("used"), unused = make_blob("unused");
  catalog_->add_items(dataset_.id, {blob_item("a.jpg", used)}, user_.id).value();
  const std::string future = "9999-01-01T00:00:00.000Z", past = "2000-01-01T00:00:00.000Z";
  // Candidates: unused and recorded before the cutoff.
  auto candidates = catalog_->unreferenced_blobs(future, "", 10).value();
  ASSERT_EQ(candidates.size(), 1u);
  EXPECT_EQ(candidates[0].sha256_hex, unused.sha256_hex);
  EXPECT_TRUE(catalog_->unreferenced_blobs(past, "", 10).value().empty());
  // A used blob, or one too young, is not collected.
  EXPECT_FALSE(catalog_->begin_blob_collection(used.sha256_hex, future).value());
  EXPECT_FALSE(catalog_->begin_blob_collection(unused.sha256_hex, past).value());
  EXPECT_TRUE(catalog_->get_blob(used.sha256_hex));
  // Collecting: the row goes at once, the collection is recorded with where the bytes are.
  ASSERT_TRUE(catalog_->begin_blob_collection(unused.sha256_hex, future).value());
  EXPECT_EQ(catalog_->get_blob(unused.sha256_hex).error().code, ErrorCode::NotFound);
  auto pending = catalog_->pending_blob_collections().value();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].key, unused.key);
  EXPECT_EQ(pending[0].size, unused.size);
  // Meanwhile an upload cannot record those bytes, and an item cannot name them.
  Blob again = unused;
  auto refused = catalog_->put_blob(again);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::Unavailable);
  EXPECT_TRUE(refused.error().retryable);
  EXPECT_EQ(catalog_->add_items(dataset_.id, {blob_item("b.jpg", unused)}, user_.id).error().code,
            ErrorCode::NotFound);
  // Once it ends, the bytes may be recorded again (by an upload that published them).
  catalog_->end_blob_collection(unused.sha256_hex).value();
  EXPECT_TRUE(catalog_->pending_blob_collections().value().empty());
  EXPECT_TRUE(catalog_->put_blob(again));
  EXPECT_TRUE(catalog_->end_blob_collection(unused.sha256_hex));  // absent: no-op
}

TEST_P(CatalogTest, AProbeOfALinkedItemIsRecordedButNotOfAStoredOne) {
  make_tree();
  const Blob blob = make_blob("stored");
  auto items = catalog_->add_items(dataset_.id, {blob_item("a.jpg", blob), link_item("l.png", 7)},
                                   user_.id)
                   .value();
  ASSERT_TRUE(catalog_->set_item_probe(items[1].id, "image/webp", 1234, 40, 30));
  const Item linked = catalog_->get_item(items[1].id).value();
  EXPECT_EQ(linked.size, 1234u);
  EXPECT_EQ(linked.mime, "image/webp");
  EXPECT_EQ(linked.width, 40);
  EXPECT_EQ(linked.height, 30);
  EXPECT_EQ(catalog_->set_item_probe(items[0].id, "image/png", 1, 1, 1).error().code,
            ErrorCode::InvalidArgument);
  EXPECT_EQ(catalog_->set_item_probe(999999, "image/png", 1, 1, 1).error().code,
            ErrorCode::NotFound);
}

// ---- several catalogs (processes, servers) over one database -----------------------------------

/// A second, empty database of the same engine, as a first start sees it.
struct FreshDatabase {
  std::optional<testing::ScratchDatabase> db;
  std::string url;
};

TEST_P(CatalogTest, ConcurrentFirstStartsMigrateOnceAndBootstrapOneAdmin) {
  FreshDatabase fresh;
  if (postgres()) {
    fresh.db.emplace(testing::ScratchDatabase::create(testing::postgres_server_url()).value());
    fresh.url = fresh.db->url();
  } else {
    fresh.url = "sqlite:" + (dir_ / "fresh.db").string();
  }
  constexpr int kServers = 6;
  std::barrier start(kServers);
  std::vector<std::string> errors(kServers);
  std::vector<std::optional<IssuedToken>> tokens(kServers);
  std::vector<std::unique_ptr<Catalog>> catalogs(kServers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kServers; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto opened = Catalog::open(fresh.url, {});
      if (!opened) {
        errors[i] = "open: " + opened.error().to_string();
        return;
      }
      catalogs[i] = std::move(*opened);
      auto token = catalogs[i]->bootstrap();
      if (!token) {
        errors[i] = "bootstrap: " + token.error().to_string();
        return;
      }
      tokens[i] = std::move(*token);
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string& e : errors) EXPECT_EQ(e, "");
  const auto made = std::count_if(tokens.begin(), tokens.end(), [](const auto& t) { return t; });
  EXPECT_EQ(made, 1) << "exactly one first start bootstraps";
  ASSERT_TRUE(catalogs[0]);
  EXPECT_EQ(catalogs[0]->list_tokens().value().size(), 1u);
  const User admin = catalogs[0]->find_user("admin").value();
  EXPECT_EQ(catalogs[0]->memberships(admin.id).value().size(), 1u);
  EXPECT_EQ(catalogs[0]->schema_version().value(), catalog_->schema_version().value());
  if (postgres()) {
    // One row per applied step: every step ran once.
    EXPECT_EQ(fresh.db->query("SELECT count(*) = max(version) FROM stowage_schema").value(), "t");
    EXPECT_EQ(fresh.db->query("SELECT count(*) FROM users").value(), "1");
  }
}

TEST_P(CatalogTest, SameBytesFromTwoConnectionsAtOnceMakeOneBlob) {
  auto other = open_another().value();
  constexpr int kRounds = 20;
  for (int r = 0; r < kRounds; ++r) {
    Blob blob;
    blob.sha256_hex = sha_hex("race " + std::to_string(r));
    blob.size = 5;
    blob.mime = "image/png";
    blob.bucket = "pfx-public";
    std::array<Result<Blob>, 2> results{make_error(ErrorCode::Internal, "not run"),
                                        make_error(ErrorCode::Internal, "not run")};
    std::barrier start(2);
    std::thread a([&] {
      Blob mine = blob;
      mine.key = "a/" + blob.sha256_hex;
      start.arrive_and_wait();
      results[0] = catalog_->put_blob(mine);
    });
    std::thread b([&] {
      Blob mine = blob;
      mine.key = "b/" + blob.sha256_hex;
      start.arrive_and_wait();
      results[1] = other->put_blob(mine);
    });
    a.join();
    b.join();
    ASSERT_TRUE(results[0]) << results[0].error().to_string();
    ASSERT_TRUE(results[1]) << results[1].error().to_string();
    // Both callers are told the one row that exists: the first writer's.
    EXPECT_EQ(results[0]->key, results[1]->key);
    EXPECT_EQ(results[0]->created_at, results[1]->created_at);
    EXPECT_EQ(catalog_->get_blob(blob.sha256_hex).value().key, results[0]->key);
  }
  if (postgres()) {
    EXPECT_EQ(db_->query("SELECT count(*) FROM blobs").value(), std::to_string(kRounds));
  }
}

TEST_P(CatalogTest, SameItemNameFromTwoConnectionsAtOnceMakesOneItem) {
  make_tree();
  auto other = open_another().value();
  const Blob blob = make_blob("bytes");
  constexpr int kRounds = 20;
  int clashes = 0;
  for (int r = 0; r < kRounds; ++r) {
    const std::string name = "same-" + std::to_string(r) + ".jpg";
    std::array<Result<std::vector<Item>>, 2> results{make_error(ErrorCode::Internal, "not run"),
                                                     make_error(ErrorCode::Internal, "not run")};
    std::barrier start(2);
    std::thread a([&] {
      start.arrive_and_wait();
      results[0] = catalog_->add_items(dataset_.id, {blob_item(name, blob)}, user_.id);
    });
    std::thread b([&] {
      start.arrive_and_wait();
      results[1] = other->add_items(dataset_.id, {link_item(name)}, user_.id);
    });
    a.join();
    b.join();
    const int won = (results[0] ? 1 : 0) + (results[1] ? 1 : 0);
    EXPECT_EQ(won, 1) << "round " << r;
    for (const auto& result : results) {
      if (result) continue;
      ++clashes;
      EXPECT_EQ(result.error().code, ErrorCode::AlreadyExists) << result.error().to_string();
      EXPECT_NE(result.error().message.find(name), std::string::npos) << result.error().message;
    }
    ListQuery q;
    q.filters = {filter("name", Filter::Op::Eq, {name})};
    EXPECT_EQ(catalog_->list_items(dataset_.id, std::nullopt, q).value().total, 1);
  }
  EXPECT_EQ(clashes, kRounds);
  EXPECT_EQ(catalog_->get_dataset(dataset_.id).value().items_count, kRounds);
}

TEST_P(CatalogTest, SharedSettingsKeepTheFirstValueStoredAcrossConnections) {
  constexpr int kServers = 4;
  std::vector<std::unique_ptr<Catalog>> catalogs;
  for (int i = 0; i < kServers; ++i) catalogs.push_back(open_another().value());
  std::barrier start(kServers);
  std::vector<std::string> got(kServers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kServers; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto value = catalogs[i]->shared_setting("bucket_prefix", "proposal-" + std::to_string(i));
      got[i] = value ? *value : "error: " + value.error().to_string();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(got[0].starts_with("proposal-")) << got[0];
  for (const std::string& value : got) EXPECT_EQ(value, got[0]);
  // Later proposals change nothing; other keys are separate.
  EXPECT_EQ(catalog_->shared_setting("bucket_prefix", "late").value(), got[0]);
  EXPECT_EQ(catalog_->shared_setting("preview_secret", "s").value(), "s");
  EXPECT_EQ(catalog_->shared_setting("", "x").error().code, ErrorCode::InvalidArgument);
}

TEST_P(CatalogTest, SharedWorkIsClaimedOnceAndComesBackWhenAHoldRunsOut) {
  using namespace std::chrono_literals;
  EXPECT_EQ(catalog_->add_work("copy", {1, 2}).error().code, ErrorCode::NotFound);
  catalog_->open_work_run("copy", R"({"to":"s3://b/dir"})").value();
  EXPECT_EQ(catalog_->work_run_spec("copy").value(), R"({"to":"s3://b/dir"})");
  std::vector<Id> ids;
  for (Id id = 1; id <= 20; ++id) ids.push_back(id);
  catalog_->add_work("copy", ids).value();
  catalog_->add_work("copy", {5, 6}).value();  // already there: left as they are

  const auto a = catalog_->claim_work("copy", "a", 8, 1h).value();
  const auto b = catalog_->claim_work("copy", "b", 8, 400ms).value();
  const auto c = catalog_->claim_work("copy", "c", 8, 1h).value();
  EXPECT_EQ(a, std::vector<Id>({1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(b.size(), 8u);
  EXPECT_EQ(c.size(), 4u);
  EXPECT_EQ(catalog_->finish_work("copy", 1, "b", false, "not b's").value(), false);
  EXPECT_EQ(catalog_->finish_work("copy", 1, "a", false, R"({"link":"x"})").value(), true);
  EXPECT_EQ(catalog_->finish_work("copy", 2, "a", true, R"({"error":"gone"})").value(), true);
  EXPECT_EQ(catalog_->finish_work("copy", 2, "a", false, "twice").value(), false);

  // b died: once its hold ran out, its items go to whoever claims next, and b's late results
  // are not taken.
  std::this_thread::sleep_for(450ms);
  const auto again = catalog_->claim_work("copy", "d", 100, 1h).value();
  EXPECT_EQ(again, b);
  EXPECT_EQ(catalog_->finish_work("copy", b[0], "b", false, "late").value(), false);
  EXPECT_EQ(catalog_->finish_work("copy", b[0], "d", false, "{}").value(), true);
  EXPECT_TRUE(catalog_->claim_work("copy", "e", 100, 1h).value().empty());

  const WorkCounts counts = catalog_->count_work("copy").value();
  EXPECT_EQ(counts.pending, 0);
  EXPECT_EQ(counts.taken, 17);
  EXPECT_EQ(counts.done, 2);
  EXPECT_EQ(counts.failed, 1);
  const auto finished = catalog_->finished_work("copy", 0, 10).value();
  ASSERT_EQ(finished.size(), 3u);
  EXPECT_EQ(finished[0].item_id, 1);
  EXPECT_EQ(finished[0].result, R"({"link":"x"})");
  EXPECT_TRUE(finished[1].failed);
  EXPECT_EQ(catalog_->finished_work("copy", finished[2].item_id, 10).value().size(), 0u);

  // Reopened: everything of the old run is forgotten.
  catalog_->open_work_run("copy", "{}").value();
  EXPECT_EQ(catalog_->count_work("copy").value().taken, 0);
  catalog_->close_work_run("copy").value();
  EXPECT_FALSE(catalog_->work_run_spec("copy").value().has_value());
}

TEST_P(CatalogTest, WorkersClaimingAtOnceFromSeveralConnectionsNeverGetTheSameItem) {
  using namespace std::chrono_literals;
  catalog_->open_work_run("race", "{}").value();
  std::vector<Id> ids;
  for (Id id = 1; id <= 400; ++id) ids.push_back(id);
  catalog_->add_work("race", ids).value();
  constexpr int kWorkers = 4;
  std::vector<std::unique_ptr<Catalog>> catalogs;
  for (int i = 0; i < kWorkers; ++i) catalogs.push_back(open_another().value());
  std::vector<std::vector<Id>> got(kWorkers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kWorkers; ++i) {
    threads.emplace_back([&, i] {
      for (;;) {
        auto claimed = catalogs[i]->claim_work("race", "w" + std::to_string(i), 7, 1h);
        ASSERT_TRUE(claimed) << claimed.error().to_string();
        if (claimed->empty()) return;
        got[i].insert(got[i].end(), claimed->begin(), claimed->end());
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<Id> all;
  for (const auto& g : got) all.insert(all.end(), g.begin(), g.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, ids);  // every item once, none twice
}

TEST_P(CatalogTest, LeasesRefuseASecondHolderUntilReleasedOrExpired) {
  using std::chrono::milliseconds;
  const std::string name = "migrate project 7";
  catalog_->take_lease(name, "host-a pid 1", milliseconds(60000)).value();
  catalog_->take_lease(name, "host-a pid 1", milliseconds(60000)).value();  // renewed
  auto refused = catalog_->take_lease(name, "host-b pid 2", milliseconds(60000));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::PreconditionFailed);
  EXPECT_NE(refused.error().message.find("host-a pid 1"), std::string::npos)
      << refused.error().message;
  EXPECT_NE(refused.error().message.find("already running"), std::string::npos);
  // Only the holder releases; other names are other leases.
  catalog_->release_lease(name, "host-b pid 2").value();
  EXPECT_FALSE(catalog_->take_lease(name, "host-b pid 2", milliseconds(60000)));
  catalog_->take_lease("migrate project 8", "host-b pid 2", milliseconds(60000)).value();
  catalog_->release_lease(name, "host-a pid 1").value();
  catalog_->take_lease(name, "host-b pid 2", milliseconds(60000)).value();

  // A holder that dies stops renewing: its lease is taken over once expired.
  catalog_->take_lease("migrate storage", "dead", milliseconds(30)).value();
  EXPECT_FALSE(catalog_->take_lease("migrate storage", "alive", milliseconds(60000)));
  std::this_thread::sleep_for(milliseconds(60));
  catalog_->take_lease("migrate storage", "alive", milliseconds(60000)).value();
  EXPECT_FALSE(catalog_->take_lease("migrate storage", "dead", milliseconds(60000)));

  // A holder known to be gone is taken over at once, but only while it still holds the lease.
  EXPECT_EQ(catalog_->lease_holder("migrate storage").value(), "alive");
  catalog_->take_over_lease("migrate storage", "heir", milliseconds(60000), "alive").value();
  EXPECT_EQ(catalog_->lease_holder("migrate storage").value(), "heir");
  EXPECT_EQ(catalog_->take_over_lease("migrate storage", "late", milliseconds(60000), "alive")
                .error()
                .code,
            ErrorCode::PreconditionFailed);
  EXPECT_FALSE(catalog_->lease_holder("nobody").value().has_value());
}

TEST_P(CatalogTest, OneOfSeveralConnectionsTakingALeaseAtOnceGetsIt) {
  constexpr int kHolders = 4;
  std::vector<std::unique_ptr<Catalog>> catalogs;
  for (int i = 0; i < kHolders; ++i) catalogs.push_back(open_another().value());
  for (int round = 0; round < 10; ++round) {
    const std::string name = "lease " + std::to_string(round);
    std::barrier start(kHolders);
    std::vector<Status> results(kHolders);
    std::vector<std::thread> threads;
    for (int i = 0; i < kHolders; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        results[i] = catalogs[i]->take_lease(name, "holder " + std::to_string(i),
                                             std::chrono::milliseconds(60000));
      });
    }
    for (auto& t : threads) t.join();
    int won = 0;
    for (const Status& r : results) {
      if (r) {
        ++won;
      } else {
        EXPECT_EQ(r.error().code, ErrorCode::PreconditionFailed) << r.error().to_string();
      }
    }
    EXPECT_EQ(won, 1) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Sqlite, CatalogTest, ::testing::Values(Engine::Sqlite), engine_name);
INSTANTIATE_TEST_SUITE_P(Postgres, CatalogTest, ::testing::Values(Engine::Postgres), engine_name);

}  // namespace
}  // namespace stowage::catalog
