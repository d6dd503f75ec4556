// SPDX-License-Identifier: Apache-2.0
// Issue 13: linked items behind the storage cache, on every cloud test server. A counting proxy
// stands between Stowage and the server, so "no remote request" is measured where the remote
// would see it; stopping the proxy is the remote going down. The server is restarted over the
// same data folder, as an operator would restart it.
#include <gtest/gtest.h>
#include <unistd.h>
#include <vips/vips.h>

#include <chrono>
#include <thread>

#include "support/cloud_server.hpp"
#include "support/fault_proxy.hpp"
#include "support/http_client.hpp"
#include "support/link_http_server.hpp"
#include "support/test_server.hpp"

namespace stowage::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

std::int64_t id_of(const json::value& v) { return v.at("id").to_number<std::int64_t>(); }

/// What the SDK's resize_image_url() makes of a fullStorageUrl: the preview options right
/// after scheme://netloc.
std::string sdk_resize_path(std::string_view full_storage_url, int width, int height) {
  return "/previews/q/ext:jpeg/resize:fill:" + std::to_string(width) + ":" +
         std::to_string(height) + ":0/q:70/plain" + path_of(full_storage_url);
}

/// The port of an endpoint "http://127.0.0.1:PORT[/...]".
unsigned short port_of(const std::string& endpoint) {
  const auto colon = endpoint.find(':', endpoint.find("://") + 3);
  return static_cast<unsigned short>(std::stoi(endpoint.substr(colon + 1)));
}

/// The same endpoint on another port (Azurite's keeps its account path).
std::string with_port(const std::string& endpoint, unsigned short port) {
  const auto colon = endpoint.find(':', endpoint.find("://") + 3);
  const auto rest = endpoint.find('/', colon);
  return endpoint.substr(0, colon + 1) + std::to_string(port) +
         (rest == std::string::npos ? "" : endpoint.substr(rest));
}

void put(store::ObjectStore& store, const store::ObjectPath& path, const std::string& bytes) {
  auto writer = store.open_write(path, {}).value();
  writer->write(std::as_bytes(std::span(bytes))).value();
  writer->commit().value();
}

/// Bytes compared by size and content, without printing megabytes of them on a failure.
#define EXPECT_SAME_BYTES(a, b) \
  EXPECT_TRUE((a) == (b)) << #a " (" << (a).size() << " bytes) differs from " #b " (" << (b).size() << " bytes)"

/// How many requests the proxy has logged once its log stops growing: it logs a request when
/// the answer ends, which may be just after the client has read the last byte.
std::size_t settled_requests(const FaultProxy& proxy) {
  for (std::size_t n = proxy.requests().size();;) {
    std::this_thread::sleep_for(200ms);
    const std::size_t now = proxy.requests().size();
    if (now == n) return n;
    n = now;
  }
}

/// Requests the proxy saw after the first `since`.
std::size_t requests_since(const FaultProxy& proxy, std::size_t since) {
  return settled_requests(proxy) - since;
}

/// The whole story of the issue on one cloud test server.
void linked_items_read_through_the_cache(const char* env_var, const std::string& provider,
                                         const std::string& scheme) {
  STOWAGE_REQUIRE_CLOUD(cloud, env_var, provider);
  const std::string bucket = cloud.config.public_bucket();
  const std::string prefix = "link-cache/" + std::to_string(::getpid()) + "/";
  const std::string photo = make_image(640, 480, "jpeg", 7);
  const std::string other = make_image(300, 200, "png", 8);
  put(*cloud.store, {bucket, prefix + "photo.jpg"}, photo);
  put(*cloud.store, {bucket, prefix + "other.png"}, other);

  auto proxy = std::make_unique<FaultProxy>(port_of(cloud.connection.endpoint));
  links::RemoteLinks remote;
  remote.connections.push_back(cloud.connection);
  remote.connections[0].endpoint = with_port(cloud.connection.endpoint, proxy->port());

  std::string pattern = (fs::temp_directory_path() / "stowage-link-cache-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const fs::path dir = pattern;
  // Short, so that the test can wait it out; the default is an hour.
  const TestServerSetup setup{dir, {{"CACHE_STORAGE_REVALIDATE", "3s"}}};

  std::int64_t photo_id = 0, other_id = 0;
  json::value other_json;
  {
    TestServer server({}, 0ms, setup);
    server.enable_links(remote);
    auto api = server.client();
    auto ws = api.call("workspaces.list", {{"teamId", 1}}).json().at("entities").at(0).at("id");
    auto p = api.call("projects.add", {{"workspaceId", ws}, {"name", "linked"}}).json();
    auto d = api.call("datasets.add", {{"projectId", p.at("id")}, {"name", "d"}}).json();
    const std::string base = scheme + "://" + bucket + "/" + prefix;
    auto added = api.call("images.bulk.add",
                          {{"datasetId", d.at("id")},
                           {"images", json::array{{{"title", "photo.jpg"}, {"link", base + "photo.jpg"}},
                                                  {{"title", "other.png"}, {"link", base + "other.png"}}}},
                           {"forceMetadataForLinks", true}});
    ASSERT_EQ(added.status, 200) << added.body;
    photo_id = id_of(added.json().at(0));
    other_id = id_of(added.json().at(1));

    // A miss reads the remote; the same download again reads nothing from it.
    auto first = api.call("images.download", {{"id", photo_id}});
    ASSERT_EQ(first.status, 200) << first.body;
    EXPECT_SAME_BYTES(first.body, photo);
    const std::size_t after_miss = settled_requests(*proxy);
    for (int i = 0; i < 3; ++i) {
      auto again = api.call("images.download", {{"id", photo_id}});
      ASSERT_EQ(again.status, 200);
      EXPECT_SAME_BYTES(again.body, photo);
    }
    auto ranged = api.post("/public/api/v3/images.download",
                           json::serialize(json::object{{"id", photo_id}}), "application/json",
                           {{"Range", "bytes=100-199"}});
    EXPECT_EQ(ranged.status, 206);
    EXPECT_SAME_BYTES(ranged.body, photo.substr(100, 100));
    EXPECT_EQ(requests_since(*proxy, after_miss), 0u) << "cached reads asked the remote";

    // The other image is read once (into the cache) but never previewed.
    const std::string other_read = api.call("images.download", {{"id", other_id}}).body;
    EXPECT_SAME_BYTES(other_read, other);
    other_json = api.call("images.info", {{"id", other_id}}).json();
    const std::string text = api.get("/metrics").body;
    EXPECT_GE(metric(text, "stowage_cache_hits_total{cache=\"storage\"}"), 4) << text;
    EXPECT_GE(metric(text, "stowage_cache_misses_total{cache=\"storage\"}"), 2) << text;
  }

  // The remote goes down, the cached entries go stale, and the server restarts.
  proxy.reset();
  std::this_thread::sleep_for(3100ms);
  {
    TestServer server({}, 0ms, setup);
    server.enable_links(remote);
    auto api = server.client();
    auto dl = api.call("images.download", {{"id", photo_id}});
    ASSERT_EQ(dl.status, 200) << dl.body;
    EXPECT_SAME_BYTES(dl.body, photo);

    // A preview of the never-previewed image, asked for every way the image JSON allows.
    auto info = api.call("images.info", {{"id", other_id}}).json();
    EXPECT_EQ(info.at("pathOriginal"), other_json.at("pathOriginal"));
    const std::string full = std::string(info.at("fullStorageUrl").as_string());
    auto by_sdk = api.get(sdk_resize_path(full, 120, 90));
    ASSERT_EQ(by_sdk.status, 200) << by_sdk.body;
    EXPECT_EQ(by_sdk.header("content-type"), "image/jpeg");
    EXPECT_EQ(decode(by_sdk.body).width, 120);
    EXPECT_EQ(decode(by_sdk.body).height, 90);
    auto by_path = api.get("/previews/q/ext:png/resize:fit:60:60:0/plain" +
                           std::string(info.at("pathOriginal").as_string()));
    ASSERT_EQ(by_path.status, 200) << by_path.body;
    EXPECT_EQ(by_path.header("content-type"), "image/png");
    EXPECT_EQ(decode(by_path.body).width, 60);
    EXPECT_EQ(decode(by_path.body).height, 40);
    // The signed previewUrl needs no token, as for a browser's <img>.
    auto signed_url = api.with_token("").get(path_of(info.at("previewUrl").as_string()));
    ASSERT_EQ(signed_url.status, 200) << signed_url.body;
    EXPECT_GT(decode(signed_url.body).width, 0);
    // The same access rules as stored images: another team sees nothing.
    auto outsider = api.with_token(server.make_outsider_token()).get(sdk_resize_path(full, 50, 50));
    EXPECT_TRUE(outsider.status == 403 || outsider.status == 404) << outsider.status;
    EXPECT_EQ(outsider.body.find("JFIF"), std::string::npos);
    auto anonymous = api.with_token("").get(sdk_resize_path(full, 50, 50));
    EXPECT_EQ(anonymous.status, 401);

    const std::string text = api.get("/metrics").body;
    EXPECT_GE(metric(text, "stowage_cache_hits_total{cache=\"storage\"}"), 1) << text;
    EXPECT_GE(metric(text, "stowage_cache_stale_served_total{cache=\"storage\"}"), 1) << text;
  }

  // The remote is back, and its owner rewrote the photo in place: past the revalidation
  // interval, the new bytes are served.
  proxy = std::make_unique<FaultProxy>(port_of(cloud.connection.endpoint));
  remote.connections[0].endpoint = with_port(cloud.connection.endpoint, proxy->port());
  const std::string rewritten = make_image(640, 480, "jpeg", 9);
  ASSERT_NE(rewritten, photo);
  put(*cloud.store, {bucket, prefix + "photo.jpg"}, rewritten);
  std::this_thread::sleep_for(3100ms);  // the interval, since the failed revalidation above
  {
    TestServer server({}, 0ms, setup);
    server.enable_links(remote);
    auto api = server.client();
    auto dl = api.call("images.download", {{"id", photo_id}});
    ASSERT_EQ(dl.status, 200) << dl.body;
    EXPECT_SAME_BYTES(dl.body, rewritten);
    const std::size_t after = settled_requests(*proxy);
    const std::string again = api.call("images.download", {{"id", photo_id}}).body;
    EXPECT_SAME_BYTES(again, rewritten);
    EXPECT_EQ(requests_since(*proxy, after), 0u);
    const std::string text = api.get("/metrics").body;
    EXPECT_GE(metric(text,
                     "stowage_cache_revalidations_total{cache=\"storage\",result=\"changed\"}"),
              1)
        << text;
  }
  (void)cloud.store->remove({bucket, prefix + "photo.jpg"});
  (void)cloud.store->remove({bucket, prefix + "other.png"});
  std::error_code ec;
  fs::remove_all(dir, ec);
}

/// The SDK's set_remote: the image's bytes are copied to the cloud, then the item is pointed at
/// them; it stays the same image (hash, mime, size, dimensions) and downloads the same bytes.
void set_remote_keeps_the_images_identity(const char* env_var, const std::string& provider,
                                          const std::string& scheme) {
  STOWAGE_REQUIRE_CLOUD(cloud, env_var, provider);
  links::RemoteLinks remote;
  remote.connections.push_back(cloud.connection);
  TestServer server;
  server.enable_links(remote);
  auto api = server.client();
  auto ws = api.call("workspaces.list", {{"teamId", 1}}).json().at("entities").at(0).at("id");
  auto p = api.call("projects.add", {{"workspaceId", ws}, {"name", "remote"}}).json();
  auto d = api.call("datasets.add", {{"projectId", p.at("id")}, {"name", "d"}}).json();
  const std::string bytes = make_image(123, 45, "png", 11);
  auto up = api.upload({{"0-file", "0", "image/png", bytes}});
  ASSERT_EQ(up.status, 200) << up.body;
  const std::string hash = std::string(up.json().at(0).at("hash").as_string());
  auto added = api.call("images.bulk.add",
                        {{"datasetId", d.at("id")},
                         {"images", json::array{{{"title", "cell.png"}, {"hash", hash}}}}});
  ASSERT_EQ(added.status, 200) << added.body;
  const std::int64_t id = id_of(added.json().at(0));
  const json::value before = api.call("images.info", {{"id", id}}).json();

  const std::string key = "set-remote/" + std::to_string(::getpid()) + "/cell.png";
  put(*cloud.store, {cloud.config.public_bucket(), key}, bytes);
  const std::string link = scheme + "://" + cloud.config.public_bucket() + "/" + key;
  auto switched = api.call("images.update.links",
                           {{"images", json::array{{{"id", id}, {"link", link}}}},
                            {"clearLocalDataSource", true}});
  ASSERT_EQ(switched.status, 200) << switched.body;

  const json::value after = api.call("images.info", {{"id", id}}).json();
  EXPECT_EQ(after.at("link").as_string(), link);
  for (const char* field : {"hash", "mime", "size", "width", "height", "name"}) {
    EXPECT_EQ(after.at(field), before.at(field)) << field;
  }
  EXPECT_EQ(after.at("hash").as_string(), sdk_hash(bytes));
  // Listed and filtered by hash, as the SDK's get_list(filters=[hash]) does.
  auto listed = api.call("images.list",
                         {{"datasetId", d.at("id")},
                          {"filter", json::array{{{"field", "hash"},
                                                  {"operator", "="},
                                                  {"value", hash}}}}});
  ASSERT_EQ(listed.status, 200) << listed.body;
  ASSERT_EQ(listed.json().at("entities").as_array().size(), 1u);
  EXPECT_EQ(listed.json().at("entities").at(0).at("hash"), before.at("hash"));
  auto dl = api.call("images.download", {{"id", id}});
  ASSERT_EQ(dl.status, 200);
  EXPECT_SAME_BYTES(dl.body, bytes);
  (void)cloud.store->remove({cloud.config.public_bucket(), key});
}

/// Public http(s) links are remote bytes too: read once, then served from the cache, and
/// previewed like any linked image.
TEST(LinkCache, PublicUrlLinksAreReadOnce) {
  LinkHttpServer web;
  const std::string photo = make_image(200, 100, "jpeg", 21);
  web.serve_bytes("/pics/photo.jpg", photo);
  TestServer server;
  server.enable_links({}, {.allow_private_networks = true});
  auto api = server.client();
  auto ws = api.call("workspaces.list", {{"teamId", 1}}).json().at("entities").at(0).at("id");
  auto p = api.call("projects.add", {{"workspaceId", ws}, {"name", "web"}}).json();
  auto d = api.call("datasets.add", {{"projectId", p.at("id")}, {"name", "d"}}).json();
  auto added = api.call(
      "images.bulk.add",
      {{"datasetId", d.at("id")},
       {"images", json::array{{{"title", "photo.jpg"}, {"link", web.base_url() + "/pics/photo.jpg"}}}},
       {"forceMetadataForLinks", true}});
  ASSERT_EQ(added.status, 200) << added.body;
  const auto id = id_of(added.json().at(0));
  const std::string first = api.call("images.download", {{"id", id}}).body;
  EXPECT_SAME_BYTES(first, photo);
  const std::size_t after_miss = web.hits("/pics/photo.jpg");
  for (int i = 0; i < 3; ++i) {
    const std::string again = api.call("images.download", {{"id", id}}).body;
    EXPECT_SAME_BYTES(again, photo);
  }
  auto preview = api.get(sdk_resize_path(
      std::string(api.call("images.info", {{"id", id}}).json().at("fullStorageUrl").as_string()),
      40, 20));
  ASSERT_EQ(preview.status, 200) << preview.body;
  EXPECT_EQ(decode(preview.body).width, 40);
  EXPECT_EQ(web.hits("/pics/photo.jpg"), after_miss);
}

TEST(LinkCache, S3OnRadosgw) {
  linked_items_read_through_the_cache("STOWAGE_TEST_RADOSGW_ENV", "minio", "s3");
}
TEST(LinkCache, AzureOnAzurite) {
  linked_items_read_through_the_cache("STOWAGE_TEST_AZURITE_ENV", "azure", "azure");
}
TEST(LinkCache, GoogleOnTheGcsTestServer) {
  linked_items_read_through_the_cache("STOWAGE_TEST_GCS_ENV", "google", "gcs");
}
TEST(SetRemote, S3OnRadosgwKeepsTheImagesIdentity) {
  set_remote_keeps_the_images_identity("STOWAGE_TEST_RADOSGW_ENV", "minio", "s3");
}
TEST(SetRemote, AzureOnAzuriteKeepsTheImagesIdentity) {
  set_remote_keeps_the_images_identity("STOWAGE_TEST_AZURITE_ENV", "azure", "azure");
}
TEST(SetRemote, GoogleOnTheGcsTestServerKeepsTheImagesIdentity) {
  set_remote_keeps_the_images_identity("STOWAGE_TEST_GCS_ENV", "google", "google");
}

}  // namespace
}  // namespace stowage::testing
