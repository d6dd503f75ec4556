// SPDX-License-Identifier: Apache-2.0
// `links.sync` (issue 17): a bucket prefix on radosgw imported as linked items through the API,
// with include filters, a regex, a dry run, reruns that add only new objects, and an object
// removed at the source.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "support/cloud_server.hpp"
#include "support/http_client.hpp"
#include "support/test_server.hpp"

namespace stowage::testing {
namespace {

namespace json = boost::json;

/// Objects a test puts in the shared bucket, removed when it ends.
class Objects {
 public:
  explicit Objects(CloudServer& cloud) : cloud_(cloud) {}
  ~Objects() {
    for (const auto& k : keys_) (void)cloud_.store->remove({cloud_.config.public_bucket(), k});
  }
  void put(const std::string& key, const std::string& bytes) {
    auto w = cloud_.store->open_write({cloud_.config.public_bucket(), key}, {}).value();
    w->write(std::as_bytes(std::span(bytes))).value();
    w->commit().value();
    keys_.push_back(key);
  }

 private:
  CloudServer& cloud_;
  std::vector<std::string> keys_;
};

std::string unique_prefix() {
  std::random_device rd;
  return "sync-" + std::to_string(rd()) + "/";
}

std::int64_t new_dataset(HttpClient& api, const std::string& name) {
  auto ws = api.call("workspaces.list", {{"teamId", 1}}).json().at("entities").at(0).at("id");
  auto p = api.call("projects.add", {{"workspaceId", ws}, {"name", name}}).json();
  auto d = api.call("datasets.add", {{"projectId", p.at("id")}, {"name", "d"}}).json();
  return d.at("id").to_number<std::int64_t>();
}

std::map<std::string, std::string> statuses(const json::value& report) {
  std::map<std::string, std::string> out;
  for (const auto& e : report.at("entries").as_array()) {
    std::string link(e.at("link").as_string());
    out[link.substr(link.rfind('/') + 1)] = std::string(e.at("status").as_string());
  }
  return out;
}

TEST(LinkSync, APrefixOnRadosgwBecomesItemsAndARerunAddsOnlyWhatIsNew) {
  STOWAGE_REQUIRE_CLOUD(cloud, "STOWAGE_TEST_RADOSGW_ENV", "minio");
  Objects objects(cloud);
  const std::string prefix = unique_prefix();
  const std::string one = make_image(40, 30, "png", 1);
  const std::string two = make_image(50, 20, "jpeg", 2);
  objects.put(prefix + "cams/1.png", one);
  objects.put(prefix + "cams/2.jpg", two);
  objects.put(prefix + "cams/notes.txt", "not an image");
  objects.put(prefix + "cams/readme.md", "filtered out");
  objects.put(prefix + "cams/night/3.png", make_image(10, 10, "png", 3));

  links::RemoteLinks remote;
  remote.connections.push_back(cloud.connection);
  TestServer server;
  server.enable_links(remote);
  auto api = server.client();
  const auto dataset = new_dataset(api, "sync");
  const std::string base = "s3://" + cloud.config.public_bucket() + "/" + prefix + "cams/";
  const json::array include{"*.png", "*.jpg", "*.txt"};
  auto sync = [&](json::object extra = {}) {
    json::object body{{"datasetId", dataset}, {"prefix", base}, {"include", include}};
    for (auto& [k, v] : extra) body[k] = v;
    auto r = api.call("links.sync", body);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? r.json() : json::value(json::object{});
  };

  // A dry run plans and adds nothing.
  auto dry = sync({{"dryRun", true}});
  EXPECT_EQ(dry.at("added").to_number<int>(), 3);  // 1.png, 2.jpg, notes.txt (not yet probed)
  auto listed = api.call("images.list", {{"datasetId", dataset}}).json();
  EXPECT_EQ(listed.at("total").to_number<int>(), 0);

  // Not recursive: the folder's own objects; the text file is read and skipped.
  auto first = sync();
  EXPECT_EQ(first.at("added").to_number<int>(), 2);
  EXPECT_EQ(first.at("skipped").to_number<int>(), 1);
  EXPECT_EQ(first.at("failed").to_number<int>(), 0);
  EXPECT_EQ(statuses(first), (std::map<std::string, std::string>{
                                 {"1.png", "added"}, {"2.jpg", "added"}, {"notes.txt", "skipped"}}));
  listed = api.call("images.list", {{"datasetId", dataset}}).json();
  ASSERT_EQ(listed.at("total").to_number<int>(), 2);
  std::map<std::string, json::value> by_name;
  for (const auto& e : listed.at("entities").as_array()) {
    by_name[std::string(e.at("name").as_string())] = e;
  }
  // Header-probed: dimensions and size from the bytes; downloads are the bytes.
  EXPECT_EQ(by_name.at("1.png").at("width").to_number<int>(), 40);
  EXPECT_EQ(by_name.at("2.jpg").at("height").to_number<int>(), 20);
  EXPECT_EQ(by_name.at("2.jpg").at("size").to_number<std::size_t>(), two.size());
  EXPECT_EQ(by_name.at("1.png").at("link").as_string(), base + "1.png");
  auto dl = api.call("images.download", {{"id", by_name.at("1.png").at("id")}});
  EXPECT_EQ(dl.body, one);

  // A rerun adds nothing.
  auto again = sync();
  EXPECT_EQ(again.at("added").to_number<int>(), 0);
  EXPECT_EQ(again.at("existing").to_number<int>(), 2);

  // A new object and a removed one: the new one is added, the gone one reported (kept).
  objects.put(prefix + "cams/4.png", make_image(8, 8, "png", 4));
  ASSERT_TRUE(cloud.store->remove({cloud.config.public_bucket(), prefix + "cams/1.png"}));
  auto third = sync();
  EXPECT_EQ(third.at("added").to_number<int>(), 1);
  EXPECT_EQ(third.at("existing").to_number<int>(), 1);
  EXPECT_EQ(third.at("removed").to_number<int>(), 1);
  EXPECT_EQ(statuses(third).at("1.png"), "removed");
  EXPECT_EQ(statuses(third).at("4.png"), "added");
  EXPECT_EQ(api.call("images.list", {{"datasetId", dataset}}).json().at("total").to_number<int>(),
            3);

  // Recursive: the sub-folder's image, named by its path below the prefix.
  auto deep = sync({{"recursive", true}});
  EXPECT_EQ(deep.at("added").to_number<int>(), 1);
  bool found = false;
  for (const auto& e : deep.at("entries").as_array()) {
    if (e.at("status").as_string() == "added") {
      EXPECT_EQ(e.at("name").as_string(), "night__3.png");
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(LinkSync, ARegexSelectsAndBadInputIsRefused) {
  STOWAGE_REQUIRE_CLOUD(cloud, "STOWAGE_TEST_RADOSGW_ENV", "minio");
  Objects objects(cloud);
  const std::string prefix = unique_prefix();
  for (int i = 0; i < 5; ++i) {
    objects.put(prefix + "frame_" + std::to_string(i) + ".png", make_image(6, 6, "png", i));
  }
  links::RemoteLinks remote;
  remote.connections.push_back(cloud.connection);
  TestServer server;
  server.enable_links(remote);
  auto api = server.client();
  const auto dataset = new_dataset(api, "regex");
  const std::string base = "s3://" + cloud.config.public_bucket() + "/" + prefix;
  auto r = api.call("links.sync",
                    {{"datasetId", dataset}, {"prefix", base}, {"regex", "frame_[13]\\.png$"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at("listed").to_number<int>(), 5);
  EXPECT_EQ(r.json().at("added").to_number<int>(), 2);

  EXPECT_EQ(api.call("links.sync", {{"datasetId", dataset}, {"prefix", base}, {"regex", "("}})
                .status,
            400);
  // A bucket no connection lists, and another team's dataset.
  EXPECT_EQ(api.call("links.sync",
                     {{"datasetId", dataset},
                      {"prefix", "s3://" + cloud.config.private_bucket() + "/"}})
                .status,
            403);
  auto outsider = api.with_token(server.make_outsider_token());
  EXPECT_EQ(outsider.call("links.sync", {{"datasetId", dataset}, {"prefix", base}}).status, 403);
  EXPECT_EQ(api.call("images.list", {{"datasetId", dataset}}).json().at("total").to_number<int>(),
            2);
}

}  // namespace
}  // namespace stowage::testing
