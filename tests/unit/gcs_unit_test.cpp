// SPDX-License-Identifier: Apache-2.0
// GCS provider pieces that need no server: endpoints, encodings, the error translator, and the
// store over a scripted transport (401 refresh, 503 retry, no secret in messages).
#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <mutex>

#include "stowage/store/gcs/gcs_internal.hpp"
#include "stowage/store/gcs/gcs_options.hpp"
#include "stowage/uri/percent.hpp"
#include "stowage/store/gcs/gcs_store.hpp"

namespace stowage::store::gcs {
namespace {

TEST(GcsOptions, EndpointDefaultsToHttpsAndAcceptsHttpForTests) {
  EXPECT_EQ(GcsOptions::normalize_endpoint("", std::nullopt).value(),
            "https://storage.googleapis.com");
  EXPECT_EQ(GcsOptions::normalize_endpoint("storage.googleapis.com", std::nullopt).value(),
            "https://storage.googleapis.com");
  EXPECT_EQ(GcsOptions::normalize_endpoint("http://127.0.0.1:4443/", std::nullopt).value(),
            "http://127.0.0.1:4443");
  EXPECT_EQ(GcsOptions::normalize_endpoint("gcs.internal", 8443).value(),
            "https://gcs.internal:8443");
  EXPECT_EQ(GcsOptions::normalize_endpoint("http://h:1", 2).value(), "http://h:1");
  EXPECT_FALSE(GcsOptions::normalize_endpoint("ftp://h", std::nullopt));
  EXPECT_FALSE(GcsOptions::normalize_endpoint("https://h/path", std::nullopt));
  GcsOptions bad;
  bad.chunk_bytes = 100000;
  EXPECT_FALSE(bad.validate()) << "chunks are multiples of 256 KiB";
}

TEST(GcsInternal, EncodingGenerationsAndRanges) {
  EXPECT_EQ(uri::percent_encode("a/b c+d?#%~"), "a%2Fb%20c%2Bd%3F%23%25~");
  EXPECT_EQ(internal::generation_of("1700000000123456"), "1700000000123456");
  EXPECT_EQ(internal::generation_of("\"42\""), "42");
  EXPECT_EQ(internal::generation_of("\"not-the-etag\""), std::nullopt);
  EXPECT_EQ(internal::persisted_from_range(std::nullopt), 0u);
  EXPECT_EQ(internal::persisted_from_range("bytes=0-262143"), 262144u);
  EXPECT_EQ(internal::persisted_from_range("bytes=5-9"), std::nullopt);
  const auto t = internal::parse_rfc3339("2024-05-01T12:00:00.250Z").value();
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count(),
            1714564800250);
}

TEST(GcsInternal, OneTranslatorSetsCodeRetryableAndMessage) {
  const ObjectPath p{"bkt", "a/b.jpg"};
  const std::string body =
      R"({"error":{"code":503,"message":"Backend Error","errors":[{"reason":"backendError"}]}})";
  const Error e = internal::gcs_error(503, body, "upload", p);
  EXPECT_EQ(e.code, ErrorCode::Unavailable);
  EXPECT_TRUE(e.retryable);
  EXPECT_EQ(e.message, "upload gcs://bkt/a/b.jpg: 503 backendError: Backend Error");
  EXPECT_EQ(e.provider_code, "backendError");
  EXPECT_TRUE(internal::gcs_error(429, "", "stat", p).retryable);
  EXPECT_TRUE(internal::gcs_error(408, "", "stat", p).retryable);
  struct Case {
    long status;
    ErrorCode code;
  };
  for (const Case c :
       {Case{404, ErrorCode::NotFound}, Case{412, ErrorCode::PreconditionFailed},
        Case{416, ErrorCode::RangeNotSatisfiable}, Case{401, ErrorCode::Unauthenticated},
        Case{403, ErrorCode::PermissionDenied}, Case{400, ErrorCode::InvalidArgument},
        Case{409, ErrorCode::AlreadyExists}}) {
    const Error x = internal::gcs_error(c.status, "<html>", "stat", p);
    EXPECT_EQ(x.code, c.code) << c.status;
    EXPECT_FALSE(x.retryable) << c.status;
  }
}

/// Hands out the tokens "tok-1", "tok-2", ... ; each invalidate() moves to the next.
class CountingTokens : public auth::TokenSource {
 public:
  Result<auth::AccessToken> token() override {
    std::lock_guard lock(mutex_);
    return auth::AccessToken{Redacted("SENTINEL-tok-" + std::to_string(n_)),
                             std::chrono::system_clock::now() + std::chrono::hours(1)};
  }
  void invalidate(const Redacted<>&) override {
    std::lock_guard lock(mutex_);
    ++n_;
  }
  int n_ = 1;
  std::mutex mutex_;
};

/// Answers each request with the next scripted response; records the requests.
class ScriptedTransport : public http::Transport {
 public:
  Result<http::Response> send(const http::Request& request, std::uint64_t) override {
    seen.push_back(request);
    if (script.empty()) return make_error(ErrorCode::Internal, "script exhausted");
    auto next = script.front();
    script.pop_front();
    return next(request);
  }
  Result<std::unique_ptr<http::ResponseStream>> open(const http::Request&) override {
    return make_error(ErrorCode::Unsupported, "not scripted");
  }
  static http::Response respond(long status, std::string_view body) {
    http::Response r;
    r.status = status;
    r.body.assign(reinterpret_cast<const std::byte*>(body.data()),
                  reinterpret_cast<const std::byte*>(body.data() + body.size()));
    return r;
  }
  std::deque<std::function<Result<http::Response>(const http::Request&)>> script;
  std::vector<http::Request> seen;
};

constexpr std::string_view kObject =
    R"({"name":"k","bucket":"bkt","size":"3","generation":"17","updated":"2024-05-01T12:00:00Z"})";

std::unique_ptr<GcsStore> scripted_store(std::shared_ptr<ScriptedTransport> transport,
                                         std::shared_ptr<CountingTokens> tokens, int* sleeps) {
  GcsOptions options;
  options.endpoint = "http://gcs.test";
  options.retry.sleep = [sleeps](std::chrono::milliseconds) { ++*sleeps; };
  return GcsStore::open(options, transport, tokens).value();
}

TEST(GcsStoreScripted, RefusedTokenIsReplacedOnceThenTheCallSucceeds) {
  auto transport = std::make_shared<ScriptedTransport>();
  auto tokens = std::make_shared<CountingTokens>();
  int sleeps = 0;
  auto store = scripted_store(transport, tokens, &sleeps);
  transport->script.push_back([](auto&) { return ScriptedTransport::respond(401, "{}"); });
  transport->script.push_back([](auto&) { return ScriptedTransport::respond(200, kObject); });
  const auto info = store->stat({"bkt", "k"}).value();
  EXPECT_EQ(info.size, 3u);
  EXPECT_EQ(info.etag, "17") << "the generation is the etag";
  ASSERT_EQ(transport->seen.size(), 2u);
  EXPECT_EQ(http::find_header(transport->seen[0].headers, "Authorization"),
            "Bearer SENTINEL-tok-1");
  EXPECT_EQ(http::find_header(transport->seen[1].headers, "Authorization"),
            "Bearer SENTINEL-tok-2");
  EXPECT_EQ(transport->seen[0].url, "http://gcs.test/storage/v1/b/bkt/o/k");

  // A second 401 in a row is an answer, not a reason to loop.
  transport->script.push_back([](auto&) { return ScriptedTransport::respond(401, "{}"); });
  transport->script.push_back([](auto&) { return ScriptedTransport::respond(401, "{}"); });
  auto refused = store->stat({"bkt", "k"});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::Unauthenticated);
  EXPECT_EQ(refused.error().to_string().find("SENTINEL"), std::string::npos);
}

TEST(GcsStoreScripted, ServerErrorsAreRetriedWithBackoffAndReportedWithoutSecrets) {
  auto transport = std::make_shared<ScriptedTransport>();
  auto tokens = std::make_shared<CountingTokens>();
  int sleeps = 0;
  auto store = scripted_store(transport, tokens, &sleeps);
  for (int i = 0; i < 5; ++i) {
    transport->script.push_back([](auto&) {
      return ScriptedTransport::respond(
          503,
          R"({"error":{"code":503,"message":"Backend Error","errors":[{"reason":"backendError"}]}})");
    });
  }
  auto writer = store->open_write({"bkt", "a/k"}, {}).value();
  ASSERT_TRUE(writer->write(std::as_bytes(std::span("abc", 3))));
  auto committed = writer->commit();
  ASSERT_FALSE(committed);
  EXPECT_EQ(committed.error().code, ErrorCode::Unavailable);
  EXPECT_EQ(committed.error().message, "upload gcs://bkt/a/k: 503 backendError: Backend Error");
  EXPECT_EQ(transport->seen.size(), 5u);
  EXPECT_EQ(sleeps, 4);
  EXPECT_NE(transport->seen[0].url.find("uploadType=media&name=a%2Fk"), std::string::npos);
}

}  // namespace
}  // namespace stowage::store::gcs
