// SPDX-License-Identifier: Apache-2.0
// The web console's server side without a browser: its static files (types, ETags, the CSP, no
// path outside web/) and its API methods' rules (who may see and do what), on a real SQLite
// catalog and a local store in a temp folder. The browser tests (tests/browser) drive the pages.
#include "server/console.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "server/api.hpp"
#include "server/console_api.hpp"
#include "stowage/catalog/catalog.hpp"
#include "stowage/service/service.hpp"
#include "stowage/store/registry.hpp"

namespace stowage::server {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

std::string header(const ConsoleReply& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

TEST(ConsoleFiles, TheIndexIsServedAtTheRootWithAStrictPolicy) {
  const auto r = console_reply("/", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(header(r, "Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("<script type=\"module\" src=\"/console/app.js\">"),
            std::string_view::npos);
  const std::string csp = header(r, "Content-Security-Policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
  EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(header(r, "Cache-Control"), "no-cache");
}

TEST(ConsoleFiles, EveryEmbeddedFileIsServedWithItsTypeAndEtag) {
  ASSERT_FALSE(console_assets().empty());
  for (const auto& asset : console_assets()) {
    if (asset.name == "index.html") continue;
    const auto r = console_reply("/console/" + std::string(asset.name), "");
    EXPECT_EQ(r.status, 200) << asset.name;
    EXPECT_EQ(r.body, asset.bytes) << asset.name;
    EXPECT_EQ(header(r, "Content-Type"), asset.content_type) << asset.name;
    EXPECT_EQ(header(r, "ETag"), asset.etag) << asset.name;
    if (asset.name.ends_with(".js")) {
      EXPECT_EQ(header(r, "Content-Type"), "text/javascript; charset=utf-8");
    }
  }
  EXPECT_EQ(header(console_reply("/console/sw.js", ""), "Service-Worker-Allowed"), "/");
}

TEST(ConsoleFiles, AMatchingEtagIsA304WithoutBody) {
  const std::string etag = header(console_reply("/console/app.js", ""), "ETag");
  ASSERT_FALSE(etag.empty());
  for (const std::string& condition : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    const auto r = console_reply("/console/app.js", condition);
    EXPECT_EQ(r.status, 304) << condition;
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(header(r, "ETag"), etag);
  }
  EXPECT_EQ(console_reply("/console/app.js", "\"other\"").status, 200);
}

TEST(ConsoleFiles, NothingOutsideTheEmbeddedFilesIsFound) {
  for (const char* path : {"/console/", "/console/nothing.js", "/console/../README.md",
                           "/console/%2e%2e/x", "/console/index.html", "/console/media/videos/1"}) {
    const auto r = console_reply(path, "");
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(header(r, "Content-Type"), "application/json; charset=utf-8") << path;
  }
  EXPECT_TRUE(is_console_path("/"));
  EXPECT_TRUE(is_console_path("/console/app.js"));
  EXPECT_FALSE(is_console_path("/public/api/v3/teams.list"));
  EXPECT_FALSE(is_console_path("/consoleX"));
}

/// An instance in a temp folder: catalog, local store, service, the console's API; an admin
/// and a user who is not one, in the admin's team.
class ConsoleApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("stowage-console-" + std::to_string(::getpid()) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(dir_);
    config_.data_path = dir_;
    config_.bucket_prefix = "test";
    config_.remote_links_path = dir_ / "remote_links.yml";
    catalog_ = catalog::Catalog::open_sqlite(dir_ / "stowage.db").value();
    admin_token_ = catalog_->bootstrap().value()->secret;
    const auto team = catalog_->memberships(catalog_->find_user("admin").value().id).value()[0];
    team_id_ = team.team.id;
    bob_ = catalog_->create_user("bob", false).value();
    catalog_->add_member(team.team.id, bob_.id, catalog::Role::Developer).value();
    bob_token_ = catalog_->create_token(bob_.id, "bob's laptop").value().secret;
    store_ = store::open_configured_store(config_).value();
    service::ServiceOptions options;
    options.public_bucket = config_.public_bucket();
    options.private_bucket = config_.private_bucket();
    options.staging_dir = dir_ / "staging";
    service_ = std::make_unique<service::Service>(*catalog_, *store_, options);
    console_ = std::make_unique<ConsoleApi>(config_, *service_, nullptr);
  }
  void TearDown() override {
    console_.reset();
    service_.reset();
    fs::remove_all(dir_);
  }

  /// Calls a method as the server does after authenticating `token`.
  ApiResponse call(const std::string& token, const std::string& method, json::object body = {}) {
    ApiRequest r;
    r.method = method;
    r.body = json::serialize(body);
    r.content_type = "application/json";
    r.principal = service_->authenticate(token).value();
    return console_->handle(r);
  }
  static json::value parse(const ApiResponse& r) { return json::parse(r.json); }

  fs::path dir_;
  config::Config config_;
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<store::ObjectStore> store_;
  std::unique_ptr<service::Service> service_;
  std::unique_ptr<ConsoleApi> console_;
  std::string admin_token_, bob_token_;
  catalog::User bob_;
  catalog::Id team_id_ = 0;
};

TEST_F(ConsoleApiTest, TheSessionSaysWhoCalls) {
  const auto admin = parse(call(admin_token_, "console.session"));
  EXPECT_EQ(admin.at("user").at("login"), "admin");
  EXPECT_EQ(admin.at("user").at("isAdmin"), true);
  EXPECT_EQ(admin.at("provider"), "http");
  const auto bob = parse(call(bob_token_, "console.session"));
  EXPECT_EQ(bob.at("user").at("isAdmin"), false);
}

TEST_F(ConsoleApiTest, OnlyAdminsSeeTheStorageOrRunMigrations) {
  EXPECT_EQ(call(bob_token_, "console.storage").status, 403);
  EXPECT_EQ(
      call(bob_token_, "console.migrations.start", {{"projectId", 1}, {"to", "s3://b/x"}}).status,
      403);
  EXPECT_EQ(call(bob_token_, "console.migrations.list").status, 403);
  const auto storage = call(admin_token_, "console.storage");
  ASSERT_EQ(storage.status, 200) << storage.json;
  const auto s = parse(storage);
  EXPECT_EQ(s.at("provider"), "http");
  EXPECT_EQ(s.at("publicBucket"), "test-public");
  EXPECT_FALSE(s.at("checks").as_array().empty());
  for (const auto& c : s.at("checks").as_array()) EXPECT_EQ(c.at("passed"), true) << c;
}

TEST_F(ConsoleApiTest, TheStorageShowsNoSecretEvenInAnEndpoint) {
  config_.storage_endpoint = "https://user:hunter2@s3.example.com:9000?sig=abc";
  const auto storage = call(admin_token_, "console.storage");
  ASSERT_EQ(storage.status, 200) << storage.json;
  EXPECT_EQ(parse(storage).at("endpoint"), "https://s3.example.com:9000");
  EXPECT_EQ(storage.json.find("hunter2"), std::string::npos);
  EXPECT_EQ(storage.json.find("sig=abc"), std::string::npos);
}

TEST_F(ConsoleApiTest, TokensAreListedWithoutSecretsAndUsersSeeTheirOwn) {
  const auto all = call(admin_token_, "console.tokens.list");
  EXPECT_EQ(parse(all).as_array().size(), 2u);
  EXPECT_EQ(all.json.find(admin_token_), std::string::npos);
  EXPECT_EQ(all.json.find(bob_token_), std::string::npos);
  const auto own = parse(call(bob_token_, "console.tokens.list")).as_array();
  ASSERT_EQ(own.size(), 1u);
  EXPECT_EQ(own[0].at("user"), "bob");
  EXPECT_EQ(own[0].at("current"), true);
}

TEST_F(ConsoleApiTest, ANewTokenIsShownOnceAndWorks) {
  const auto created = call(bob_token_, "console.tokens.create", {{"name", "ci"}});
  ASSERT_EQ(created.status, 200) << created.json;
  const std::string secret(parse(created).at("token").as_string());
  EXPECT_EQ(service_->authenticate(secret).value().user.login, "bob");
  EXPECT_EQ(call(bob_token_, "console.tokens.list").json.find(secret), std::string::npos);
  EXPECT_EQ(call(bob_token_, "console.tokens.create", {{"name", ""}}).status, 400);
}

TEST_F(ConsoleApiTest, ARevokedTokenIsRefusedAtOnceAndUsersRevokeOnlyTheirOwn) {
  const auto admin_id = service_->authenticate(admin_token_).value().token_id;
  const auto bob_id = service_->authenticate(bob_token_).value().token_id;
  // Both principals are now in the service's token cache.
  EXPECT_EQ(call(bob_token_, "console.tokens.revoke", {{"id", admin_id}}).status, 404);
  EXPECT_TRUE(service_->authenticate(admin_token_));
  EXPECT_EQ(call(admin_token_, "console.tokens.revoke", {{"id", bob_id}}).status, 200);
  const auto refused = service_->authenticate(bob_token_);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::Unauthenticated);
}

TEST_F(ConsoleApiTest, AMigrationThatCannotRunEndsFailedWithItsReason) {
  const auto ws = catalog_->list_workspaces(team_id_, {}).value().entities.at(0);
  catalog::Project p;
  p.workspace_id = ws.id;
  p.name = "p";
  p.type = "images";
  const auto admin = service_->authenticate(admin_token_).value();
  const auto project = service_->add_project(admin, p).value();
  const auto started =
      call(admin_token_, "console.migrations.start",
           {{"projectId", project.id}, {"to", "s3://nowhere/x"}, {"dryRun", true}});
  ASSERT_EQ(started.status, 200) << started.json;
  const auto id = parse(started).at("id").as_int64();
  json::value status;
  for (int i = 0; i < 200; ++i) {
    status = parse(call(admin_token_, "console.migrations.status", {{"id", id}}));
    if (status.at("state") != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(status.at("state"), "failed") << status;
  EXPECT_FALSE(status.at("error").as_string().empty());
  EXPECT_EQ(call(admin_token_, "console.migrations.status", {{"id", 999}}).status, 404);
  EXPECT_EQ(
      call(admin_token_, "console.migrations.start", {{"projectId", 424242}, {"to", "s3://b/x"}})
          .status,
      404);
  EXPECT_EQ(parse(call(admin_token_, "console.migrations.list")).as_array().size(), 1u);
}

TEST_F(ConsoleApiTest, MalformedRequestsAreRefusedInWords) {
  ApiRequest r;
  r.method = "console.tokens.revoke";
  r.body = "{not json";
  r.principal = service_->authenticate(admin_token_).value();
  const auto bad = console_->handle(r);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.json.find("not valid JSON"), std::string::npos) << bad.json;
  EXPECT_EQ(call(admin_token_, "console.tokens.revoke", {{"id", "seven"}}).status, 400);
  EXPECT_FALSE(ConsoleApi::handles("console.nothing"));
  EXPECT_TRUE(ConsoleApi::handles("console.migrations.start"));
}

}  // namespace
}  // namespace stowage::server
