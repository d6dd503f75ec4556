// SPDX-License-Identifier: Apache-2.0
// Previews over real HTTP, as the SDK and a browser ask for them: the SDK's preview_url with a
// token, the API's signed previewUrl without one, refusals, the preview cache, the docs' rule
// (a preview of an original in the storage cache costs no remote request) and /metrics.
// Runs against every store STOWAGE_TEST_STORE_ENV configures, like the API tests.
#include <gtest/gtest.h>
#include <vips/vips.h>

#include <regex>
#include <thread>

#include "support/http_client.hpp"
#include "support/test_server.hpp"

namespace stowage::testing {
namespace {

namespace json = boost::json;

std::int64_t id_of(const json::value& v) { return v.at("id").to_number<std::int64_t>(); }

/// The SDK's _utils.resize_image_url(): the preview prefix right after scheme://netloc.
std::string sdk_preview_path(std::string_view full_storage_url) {
  return "/previews/q/ext:jpeg/resize:auto:0:0:0/q:70/plain" + path_of(full_storage_url);
}

class PreviewsTest : public ::testing::Test {
 protected:
  TestServer server;
  HttpClient api = server.client();

  json::value ok(const std::string& method, const json::value& body) {
    auto r = api.call(method, body);
    EXPECT_EQ(r.status, 200) << method << ": " << r.body;
    return r.status == 200 ? r.json() : json::value{};
  }

  std::int64_t new_dataset() {
    auto teams = ok("teams.list", {{"filter", json::array{}}});
    const auto team = id_of(teams.at("entities").at(0));
    auto ws = ok("workspaces.list", {{"teamId", team}, {"filter", json::array{}}});
    const auto workspace = id_of(ws.at("entities").at(0));
    static int n = 0;
    const auto project = id_of(ok("projects.add", {{"workspaceId", workspace},
                                                   {"name", "previews" + std::to_string(n++)},
                                                   {"description", ""},
                                                   {"type", "images"}}));
    return id_of(ok("datasets.add", {{"projectId", project}, {"name", "ds"}, {"description", ""}}));
  }

  /// Uploads one image and returns its image info JSON.
  json::object upload(std::int64_t dataset, const std::string& name, const std::string& bytes) {
    auto up = api.upload({{"0-file", "0", "image/*", bytes}});
    EXPECT_EQ(up.status, 200) << up.body;
    auto added = ok("images.bulk.add",
                    {{"datasetId", dataset},
                     {"images", json::array{{{"title", name}, {"hash", sdk_hash(bytes)}}}}});
    return added.as_array().at(0).as_object();
  }

  std::string metrics_text() { return api.with_token("").get("/metrics").body; }
};

TEST_F(PreviewsTest, TheSdksPreviewUrlOfEveryFormat) {
  const auto dataset = new_dataset();
  for (const std::string format : {"png", "jpeg", "webp", "tiff"}) {
    const auto info = upload(dataset, "a." + format, make_image(320, 200, format, 7));
    ASSERT_TRUE(info.at("pathOriginal").is_string());
    const std::string full = std::string(info.at("fullStorageUrl").as_string());
    auto r = api.get(sdk_preview_path(full));
    ASSERT_EQ(r.status, 200) << format << ": " << r.body;
    EXPECT_EQ(r.header("content-type"), "image/jpeg");
    const auto d = decode(r.body);
    EXPECT_EQ(d.width, 320) << format;
    EXPECT_EQ(d.height, 200) << format;
    // A thumbnail as the web UI asks for one.
    const std::string thumb = "/previews/q/ext:webp/resize:fill:64:64:0/q:70/plain" +
                              std::string(info.at("pathOriginal").as_string());
    auto t = api.get(thumb);
    ASSERT_EQ(t.status, 200) << t.body;
    EXPECT_EQ(t.header("content-type"), "image/webp");
    EXPECT_EQ(decode(t.body).width, 64);
    EXPECT_EQ(decode(t.body).height, 64);
  }
}

TEST_F(PreviewsTest, ASignedPreviewUrlNeedsNoToken) {
  const auto info = upload(new_dataset(), "s.png", make_image(100, 80, "png", 1));
  ASSERT_TRUE(info.contains("previewUrl")) << json::serialize(info);
  const std::string url = path_of(info.at("previewUrl").as_string());
  EXPECT_NE(url.find("?expires="), std::string::npos);
  EXPECT_NE(url.find("&signature="), std::string::npos);
  auto anonymous = api.with_token("");
  auto r = anonymous.get(url);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(decode(r.body).width, 100);
  // The same signature works for another size of the same picture...
  const std::string source = std::string(info.at("pathOriginal").as_string());
  const std::string query = url.substr(url.find('?'));
  EXPECT_EQ(anonymous.get("/previews/q/resize:fit:50:0:0/plain" + source + query).status, 200);
  // ...but not for another picture, nor once tampered with.
  const auto other = upload(new_dataset(), "o.png", make_image(90, 90, "png", 2));
  const std::string other_source = std::string(other.at("pathOriginal").as_string());
  EXPECT_EQ(anonymous.get("/previews/q/plain" + other_source + query).status, 403);
  std::string tampered = url;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  EXPECT_EQ(anonymous.get(tampered).status, 403);
  // The list answers the same URL (the expiry is rounded, so browsers can cache it).
  auto listed = ok("images.list", {{"datasetId", info.at("datasetId")}});
  EXPECT_EQ(listed.at("entities").at(0).at("previewUrl"), info.at("previewUrl"));
}

TEST_F(PreviewsTest, AnExpiredSignedUrlIsRefused) {
  const auto info = upload(new_dataset(), "e.png", make_image(60, 40, "png", 3));
  const std::string source = std::string(info.at("pathOriginal").as_string());
  const auto* signer = server.caches().signer();
  ASSERT_NE(signer, nullptr);
  const std::int64_t past = 1'000'000'000;  // 2001
  const std::string url = "/previews/q/plain" + source + "?expires=" + std::to_string(past) +
                          "&signature=" + signer->signature(source, past);
  auto r = api.with_token("").get(url);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_NE(r.body.find("expired"), std::string::npos);
}

TEST_F(PreviewsTest, PreviewsAreRefusedToStrangers) {
  const auto info = upload(new_dataset(), "p.png", make_image(60, 40, "png", 4));
  const std::string path = sdk_preview_path(std::string(info.at("fullStorageUrl").as_string()));
  EXPECT_EQ(api.with_token("").get(path).status, 401);
  EXPECT_EQ(api.with_token("not-a-token").get(path).status, 401);
  EXPECT_EQ(api.with_token(server.make_outsider_token()).get(path).status, 403);
  // Paths that are not a blob of this instance, in or out of its buckets.
  const std::string bucket = server.public_bucket();
  for (const std::string source :
       {"/" + bucket + "/images/original/00/00/" + std::string(64, '0') + ".png",
        "/" + bucket + "/other/key.png", std::string("/elsewhere/images/original/x.png"),
        std::string("/x")}) {
    auto r = api.get("/previews/q/plain" + source);
    EXPECT_TRUE(r.status == 404 || r.status == 403) << source << ": " << r.status;
  }
  EXPECT_EQ(api.get("/previews/q/blur:3/plain/" + bucket + "/k").status, 400);
}

TEST_F(PreviewsTest, ThePreviewCacheAnswersRepeats) {
  const auto info = upload(new_dataset(), "c.jpeg", make_image(200, 100, "jpeg", 5));
  const std::string path = sdk_preview_path(std::string(info.at("fullStorageUrl").as_string()));
  const auto first = api.get(path);
  ASSERT_EQ(first.status, 200);
  const std::string before = metrics_text();
  const auto second = api.get(path);
  ASSERT_EQ(second.status, 200);
  EXPECT_EQ(second.body, first.body);
  const std::string after = metrics_text();
  EXPECT_EQ(metric(after, "stowage_previews_rendered_total"),
            metric(before, "stowage_previews_rendered_total"));
  EXPECT_EQ(metric(after, "stowage_cache_hits_total{cache=\"previews\"}"),
            metric(before, "stowage_cache_hits_total{cache=\"previews\"}") + 1);
}

TEST_F(PreviewsTest, APreviewOfAnOriginalInTheStorageCacheCostsNoRemoteRequest) {
  // Registered only with a remote store (tests/CMakeLists.txt): local disk has no storage cache.
  ASSERT_NE(server.caches().storage_cache(), nullptr)
      << "the local store has no storage cache (set STOWAGE_TEST_STORE_ENV)";
  const auto info = upload(new_dataset(), "r.png", make_image(400, 300, "png", 6));
  // The original reaches the storage cache the first time it is read: a download here.
  auto download = api.call("images.download", {{"id", id_of(info)}});
  ASSERT_EQ(download.status, 200);
  const std::string before = metrics_text();
  const std::string source = std::string(info.at("pathOriginal").as_string());
  for (const std::string options : {"q/ext:jpeg/resize:auto:0:0:0/q:70", "q/resize:fill:32:32"}) {
    auto r = api.get("/previews/" + options + "/plain" + source);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  const std::string after = metrics_text();
  EXPECT_GE(metric(after, "stowage_previews_rendered_total"),
            metric(before, "stowage_previews_rendered_total") + 2);
  // Not one request to the remote between the two snapshots.
  const std::regex remote("stowage_remote_requests_total\\{[^}]*\\} ([0-9]+)");
  auto total = [&](const std::string& text) {
    double sum = 0;
    for (std::sregex_iterator it(text.begin(), text.end(), remote), end; it != end; ++it) {
      sum += std::stod((*it)[1]);
    }
    return sum;
  };
  EXPECT_GT(total(before), 0);
  EXPECT_EQ(total(after), total(before)) << before << "\n---\n" << after;
}

TEST_F(PreviewsTest, MetricsInPrometheusText) {
  ok("teams.list", {{"filter", json::array{}}});
  // A request is timed until its answer is written, so its sample lands just after the client
  // has the answer: look again for a moment rather than race it.
  const std::string teams_bucket =
      "stowage_request_duration_seconds_bucket{method=\"teams.list\",le=\"+Inf\"}";
  auto r = api.with_token("").get("/metrics");
  for (int i = 0; i < 40 && r.body.find(teams_bucket) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = api.with_token("").get("/metrics");
  }
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type").rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_NE(r.body.find("# TYPE stowage_request_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(
      r.body.find("stowage_request_duration_seconds_bucket{method=\"teams.list\",le=\"+Inf\"}"),
      std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("stowage_cache_hits_total{cache=\"previews\"}"), std::string::npos);
  // Unknown paths do not create series.
  api.get("/public/api/v3/no.such.method");
  EXPECT_EQ(api.with_token("").get("/metrics").body.find("no.such.method"), std::string::npos);
}

}  // namespace
}  // namespace stowage::testing
