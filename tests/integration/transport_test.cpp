// SPDX-License-Identifier: Apache-2.0
// The libcurl transport against a real HTTP server (Stowage's own, on an ephemeral port).
#include "stowage/http/transport.hpp"

#include <gtest/gtest.h>

#include "stowage/http/retry.hpp"
#include "support/test_server.hpp"

namespace stowage::testing {
namespace {

namespace json = boost::json;

class TransportTest : public ::testing::Test {
 protected:
  TestServer server;
  std::unique_ptr<http::Transport> transport = http::make_curl_transport();

  http::Request api_request(const std::string& method, const std::string& body_text) {
    body_ = body_text;
    http::Request r;
    r.method = "POST";
    r.url = server.base_url() + "/public/api/v3/" + method;
    r.headers = {{"x-api-key", server.admin_token()}, {"Content-Type", "application/json"}};
    r.body = std::as_bytes(std::span(body_));
    return r;
  }

  /// Uploads an image through the API and returns its item id.
  std::int64_t stored_image(const std::string& bytes) {
    auto api = server.client();
    auto ws = api.call("workspaces.list", {{"teamId", 1}}).json().at("entities").at(0).at("id");
    auto p = api.call("projects.add", {{"workspaceId", ws}, {"name", "t"}}).json().at("id");
    auto d = api.call("datasets.add", {{"projectId", p}, {"name", "d"}}).json().at("id");
    EXPECT_EQ(api.upload({{"0-file", "0", "image/*", bytes}}).status, 200);
    auto added = api.call(
        "images.bulk.add",
        {{"datasetId", d}, {"images", json::array{{{"title", "x"}, {"hash", sdk_hash(bytes)}}}}});
    return added.json().at(0).at("id").to_number<std::int64_t>();
  }

  std::string body_;
};

TEST_F(TransportTest, SendsJsonAndReadsWholeResponse) {
  auto r = transport->send(api_request("instance.version", "{}"));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->body_text().find("6.17.8"), std::string_view::npos);
  EXPECT_EQ(r->header("content-type").value_or(""), "application/json; charset=utf-8");
}

TEST_F(TransportTest, StatusCodesAreResponsesNotErrors) {
  auto r = transport->send(api_request("projects.info", R"({"id": 12345})"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

TEST_F(TransportTest, StreamsALargeBodyThroughASmallBuffer) {
  const std::string bytes = make_image(1500, 1000, "tiff", 3);  // ~4.5 MB
  const auto id = stored_image(bytes);
  auto small = http::make_curl_transport({.stream_buffer_bytes = 64 * 1024});
  auto stream = small->open(api_request("images.download", "{\"id\":" + std::to_string(id) + "}"));
  ASSERT_TRUE(stream) << stream.error().to_string();
  EXPECT_EQ((*stream)->status(), 200);
  EXPECT_EQ((*stream)->size(), bytes.size());
  std::string got;
  std::vector<std::byte> chunk(10000);
  for (;;) {
    auto n = (*stream)->read(chunk);
    ASSERT_TRUE(n) << n.error().to_string();
    if (*n == 0) break;
    got.append(reinterpret_cast<const char*>(chunk.data()), *n);
  }
  EXPECT_EQ(got, bytes);
}

TEST_F(TransportTest, TooLargeResponseIsAnError) {
  const std::string bytes = make_image(300, 300, "tiff", 4);
  const auto id = stored_image(bytes);
  auto r =
      transport->send(api_request("images.download", "{\"id\":" + std::to_string(id) + "}"), 1000);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::TooLarge);
}

TEST_F(TransportTest, StreamedRequestBodyFromAReader) {
  const std::string image = make_image(64, 64, "png", 5);
  const std::string boundary = "rdr";
  const std::string body =
      HttpClient::multipart_body({{"0-file", "0", "image/png", image}}, boundary);
  struct StringReader : io::Reader {
    explicit StringReader(const std::string& s) : s_(s) {}
    Result<std::size_t> read(std::span<std::byte> out) override {
      const std::size_t n = std::min(out.size(), std::min<std::size_t>(s_.size() - pos_, 777));
      std::memcpy(out.data(), s_.data() + pos_, n);
      pos_ += n;
      return n;
    }
    std::optional<std::uint64_t> size() const override { return s_.size(); }
    const std::string& s_;
    std::size_t pos_ = 0;
  } reader(body);
  http::Request r;
  r.method = "POST";
  r.url = server.base_url() + "/public/api/v3/images.bulk.upload";
  r.headers = {{"x-api-key", server.admin_token()},
               {"Content-Type", "multipart/form-data; boundary=" + boundary}};
  r.body_reader = &reader;
  r.body_size = body.size();
  auto response = transport->send(r);
  ASSERT_TRUE(response) << response.error().to_string();
  EXPECT_EQ(response->status, 200) << response->body_text();
  EXPECT_NE(response->body_text().find(sdk_hash(image)), std::string_view::npos);
}

TEST(TransportErrors, RefusedConnectionIsRetryableAndHidesTheQuery) {
  auto transport = http::make_curl_transport();
  http::Request r;
  r.url = "http://127.0.0.1:1/bucket/key?X-Amz-Signature=deadbeefsecret";
  auto response = transport->send(r);
  ASSERT_FALSE(response);
  EXPECT_TRUE(response.error().retryable);
  EXPECT_EQ(response.error().message.find("deadbeefsecret"), std::string::npos)
      << response.error().message;
  EXPECT_NE(response.error().message.find("/bucket/key"), std::string::npos);
}

TEST(RetryPolicy, RetriesOnlyRetryableErrorsWithBoundedBackoff) {
  http::RetryPolicy policy;
  policy.max_attempts = 4;
  std::vector<std::chrono::milliseconds> waits;
  policy.sleep = [&](std::chrono::milliseconds d) { waits.push_back(d); };
  int calls = 0;
  auto flaky = http::with_retries(policy, [&]() -> Result<int> {
    ++calls;
    Error e = make_error(ErrorCode::Unavailable, "503");
    e.retryable = true;
    return e;
  });
  EXPECT_FALSE(flaky);
  EXPECT_EQ(calls, 4);
  ASSERT_EQ(waits.size(), 3u);
  for (std::size_t i = 0; i < waits.size(); ++i) {
    EXPECT_LE(waits[i].count(), 100 << i);
  }
  calls = 0;
  auto permanent = http::with_retries(policy, [&]() -> Result<int> {
    ++calls;
    return make_error(ErrorCode::PermissionDenied, "403");
  });
  EXPECT_EQ(calls, 1);
  calls = 0;
  auto second_time = http::with_retries(policy, [&]() -> Result<int> {
    if (++calls == 1) {
      Error e = make_error(ErrorCode::Timeout, "slow");
      e.retryable = true;
      return e;
    }
    return 7;
  });
  EXPECT_EQ(second_time.value(), 7);
}

}  // namespace
}  // namespace stowage::testing
