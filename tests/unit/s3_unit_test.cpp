// SPDX-License-Identifier: Apache-2.0
// The S3 provider without an S3 server: part plans, endpoints and addressing, error translation,
// following a region, and IMDSv2 credentials from a local metadata server.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "stowage/auth/credentials.hpp"
#include "stowage/store/s3/s3_internal.hpp"
#include "stowage/store/s3/s3_store.hpp"

namespace stowage::store::s3 {
namespace {

using namespace std::chrono_literals;
constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;

TEST(PlanParts, OnePutBelowThresholdAndNeverMoreThan10000Parts) {
  const PartLimits limits;
  EXPECT_EQ(plan_parts(1000, limits).first_part_bytes, 8 * kMiB);
  EXPECT_FALSE(plan_parts(1000, limits).grows);
  for (std::uint64_t size : {std::uint64_t{100 * kMiB}, std::uint64_t{80'000 * kMiB},
                             std::uint64_t{1} << 40, std::uint64_t{5} << 40}) {
    const auto plan = plan_parts(size, limits);
    const std::uint64_t parts = (size + plan.first_part_bytes - 1) / plan.first_part_bytes;
    EXPECT_LE(parts, 10'000u) << size;
    EXPECT_EQ(plan.first_part_bytes % kMiB, 0u);
  }
  EXPECT_EQ(plan_parts(1ull << 40, limits).first_part_bytes, 105 * kMiB) << "ceil(1 TiB/10000)";
}

TEST(PlanParts, UnknownSizeDoublesEvery500Parts) {
  const auto plan = plan_parts(std::nullopt, PartLimits{});
  EXPECT_TRUE(plan.grows);
  EXPECT_EQ(plan.part_bytes(1), 8 * kMiB);
  EXPECT_EQ(plan.part_bytes(500), 8 * kMiB);
  EXPECT_EQ(plan.part_bytes(501), 16 * kMiB);
  EXPECT_EQ(plan.part_bytes(1001), 32 * kMiB);
  std::uint64_t total = 0;
  for (std::uint64_t n = 1; n <= 10'000; ++n) total += plan.part_bytes(n);
  EXPECT_GT(total, 5ull << 40) << "10,000 parts reach S3's 5 TiB object limit";
  EXPECT_EQ(plan.part_bytes(10'000), 5ull << 30) << "capped at 5 GiB";
}

TEST(Endpoint, AsUsersWriteThem) {
  auto aws = Endpoint::parse("s3.amazonaws.com", 443).value();
  EXPECT_EQ(aws.scheme, "https");
  EXPECT_FALSE(aws.port);
  EXPECT_TRUE(aws.is_aws);
  EXPECT_EQ(aws.authority("b.s3.amazonaws.com"), "b.s3.amazonaws.com");

  auto bare = Endpoint::parse("s3.amazonaws.com", std::nullopt).value();
  EXPECT_EQ(bare.scheme, "https");

  auto minio = Endpoint::parse("minio.internal", 9000).value();
  EXPECT_EQ(minio.scheme, "http");
  EXPECT_EQ(minio.authority(minio.host), "minio.internal:9000");
  EXPECT_FALSE(minio.is_aws);

  auto with_scheme = Endpoint::parse("https://storage.example.com:8443/", std::nullopt).value();
  EXPECT_EQ(with_scheme.scheme, "https");
  EXPECT_EQ(with_scheme.host, "storage.example.com");
  EXPECT_EQ(*with_scheme.port, 8443);

  auto ip = Endpoint::parse("http://10.0.0.5", 80).value();
  EXPECT_TRUE(ip.is_ip);
  EXPECT_FALSE(ip.port);

  EXPECT_EQ(Endpoint::parse("", 443).error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(Endpoint::parse("ftp://x", std::nullopt).error().code, ErrorCode::InvalidArgument);
}

/// Answers each request with the next scripted response and records the requests.
class ScriptedTransport final : public http::Transport {
 public:
  std::vector<http::Response> answers;
  std::vector<http::Request> requests;

  Result<http::Response> send(const http::Request& r, std::uint64_t) override {
    requests.push_back(r);
    if (answers.empty()) return make_error(ErrorCode::Internal, "script exhausted");
    auto a = answers.front();
    answers.erase(answers.begin());
    return a;
  }
  Result<std::unique_ptr<http::ResponseStream>> open(const http::Request&) override {
    return make_error(ErrorCode::Unsupported, "not scripted");
  }
};

http::Response answer(long status, std::string body = {}, std::vector<http::Header> h = {}) {
  http::Response r;
  r.status = status;
  r.headers = std::move(h);
  r.body.assign(reinterpret_cast<const std::byte*>(body.data()),
                reinterpret_cast<const std::byte*>(body.data()) + body.size());
  return r;
}

S3Options aws_options() {
  S3Options o;
  o.endpoint = Endpoint::parse("s3.amazonaws.com", 443).value();
  auth::Credentials c;
  c.access_key_id = "AKIDEXAMPLE";
  c.secret_access_key = Redacted<>(std::string("SECRET-SENTINEL"));
  o.credentials = auth::make_static_credentials(c);
  o.retry.sleep = [](std::chrono::milliseconds) {};
  return o;
}

TEST(S3Addressing, VirtualHostedOnAwsPathStyleWhenForced) {
  auto t = std::make_shared<ScriptedTransport>();
  t->answers = {answer(200, {}, {{"Content-Length", "3"}, {"ETag", "\"e\""}}),
                answer(200, {}, {{"Content-Length", "3"}})};
  auto s3 = S3Store::open(aws_options(), t).value();
  ASSERT_TRUE(s3->stat(ObjectPath{"my-bucket", "a b/c+d"}));
  EXPECT_EQ(t->requests[0].url, "https://my-bucket.s3.amazonaws.com/a%20b/c%2Bd");
  auto forced = aws_options();
  forced.force_path_style = true;
  auto s3p = S3Store::open(forced, t).value();
  ASSERT_TRUE(s3p->stat(ObjectPath{"my-bucket", "k"}));
  EXPECT_EQ(t->requests[1].url, "https://s3.amazonaws.com/my-bucket/k");
}

TEST(S3Addressing, FollowsTheRegionS3Names) {
  auto t = std::make_shared<ScriptedTransport>();
  t->answers = {
      answer(400,
             "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is "
             "wrong; expecting 'eu-central-1'</Message><Region>eu-central-1</Region>"
             "<RequestId>R1</RequestId></Error>"),
      answer(200, "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"),
      answer(200, "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")};
  auto s3 = S3Store::open(aws_options(), t).value();
  ASSERT_TRUE(s3->list(ObjectPath{"eu-bucket", ""}, {}));
  ASSERT_EQ(t->requests.size(), 2u);
  auto authz = [](const http::Request& r) {
    return std::string(*http::find_header(r.headers, "Authorization"));
  };
  EXPECT_NE(authz(t->requests[0]).find("/us-east-1/s3/"), std::string::npos);
  EXPECT_NE(authz(t->requests[1]).find("/eu-central-1/s3/"), std::string::npos);
  EXPECT_EQ(t->requests[1].url.find("https://eu-bucket.s3.eu-central-1.amazonaws.com/"), 0u)
      << t->requests[1].url;
  EXPECT_EQ(s3->region_of("eu-bucket"), "eu-central-1");
  ASSERT_TRUE(s3->list(ObjectPath{"eu-bucket", ""}, {}));
  EXPECT_EQ(t->requests.size(), 3u) << "remembered: no second detour";
}

TEST(S3Errors, RetriesOn5xxNotOn4xxAndNamesEverything) {
  auto t = std::make_shared<ScriptedTransport>();
  const std::string slow =
      "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
      "<RequestId>4F2A</RequestId></Error>";
  t->answers = {answer(503, slow), answer(503, slow), answer(200, {}, {{"Content-Length", "1"}})};
  int sleeps = 0;
  auto o = aws_options();
  o.retry.sleep = [&](std::chrono::milliseconds) { ++sleeps; };
  auto s3 = S3Store::open(o, t).value();
  ASSERT_TRUE(s3->stat(ObjectPath{"b-1", "k"}));
  EXPECT_EQ(sleeps, 2);

  t->requests.clear();
  t->answers = {answer(403,
                       "<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
                       "<RequestId>R9</RequestId></Error>")};
  auto denied = s3->list(ObjectPath{"b-1", "p/"}, {});
  ASSERT_FALSE(denied);
  EXPECT_EQ(t->requests.size(), 1u) << "no retry on 4xx";
  EXPECT_EQ(denied.error().code, ErrorCode::PermissionDenied);
  EXPECT_EQ(denied.error().request_id, "R9");
  EXPECT_EQ(denied.error().message.find("ListObjectsV2 s3://b-1"), 0u) << denied.error().message;

  const auto e = internal::s3_error(answer(503, slow), "UploadPart", "b", "k");
  EXPECT_TRUE(e.retryable);
  EXPECT_EQ(e.to_string(),
            "Unavailable: UploadPart s3://b/k: SlowDown: Please reduce your request rate. "
            "[SlowDown] (request 4F2A)");
  for (const auto& r : t->requests) {
    for (const auto& h : r.headers) EXPECT_EQ(h.value.find("SECRET-SENTINEL"), std::string::npos);
  }
}

// ---- instance metadata
// ---------------------------------------------------------------------------

/// A minimal IMDSv2 server on 127.0.0.1: PUT /latest/api/token gives a session token; the
/// credentials path answers only with that token. Each credentials answer has a new key id.
class FakeImds {
 public:
  FakeImds() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeImds() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int token_requests() const { return tokens_; }
  int credential_requests() const { return credentials_; }
  int refused() const { return refused_; }
  std::string expiration = "2030-01-01T00:00:00Z";

 private:
  void serve() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
      }
      std::string status = "200 OK";
      std::string body;
      if (req.starts_with("PUT /latest/api/token ") &&
          req.find("X-aws-ec2-metadata-token-ttl-seconds:") != std::string::npos) {
        ++tokens_;
        body = "SESSION-" + std::to_string(tokens_.load());
      } else if (req.starts_with("GET /latest/meta-data/iam/security-credentials/stowage-role ")) {
        if (req.find("X-aws-ec2-metadata-token: SESSION-") == std::string::npos) {
          ++refused_;
          status = "401 Unauthorized";
        } else {
          ++credentials_;
          body =
              "{\"Code\":\"Success\",\"AccessKeyId\":\"ASIA" + std::to_string(credentials_.load()) +
              "\",\"SecretAccessKey\":\"imds-secret\",\"Token\":\"imds-token\",\"Expiration\":\"" +
              expiration + "\"}";
        }
      } else {
        status = "404 Not Found";
      }
      const std::string resp = "HTTP/1.1 " + status +
                               "\r\nContent-Length: " + std::to_string(body.size()) +
                               "\r\nConnection: close\r\n\r\n" + body;
      (void)!::write(c, resp.data(), resp.size());
      ::close(c);
    }
  }

  int fd_ = -1;
  unsigned short port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> tokens_{0};
  std::atomic<int> credentials_{0};
  std::atomic<int> refused_{0};
};

TEST(Imds, SessionTokenThenRoleCredentialsCachedUntilNearExpiry) {
  FakeImds imds;
  imds.expiration = "2030-01-01T00:00:00Z";
  std::tm tm{};
  strptime("2030-01-01T00:00:00", "%Y-%m-%dT%H:%M:%S", &tm);
  const auto expiry = std::chrono::system_clock::from_time_t(timegm(&tm));
  std::atomic<std::int64_t> now_offset{-3600};  // an hour before expiry
  auth::ImdsOptions o;
  o.endpoint =
      auth::default_imds_endpoint({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint()}});
  o.role = "stowage-role";
  o.clock = [&] { return expiry + std::chrono::seconds(now_offset.load()); };
  auto provider = auth::make_imds_credentials(http::make_curl_transport(), o);

  auto first = provider->get().value();
  EXPECT_EQ(first.access_key_id, "ASIA1");
  EXPECT_EQ(first.secret_access_key.reveal(), "imds-secret");
  EXPECT_EQ(first.session_token.reveal(), "imds-token");
  ASSERT_TRUE(first.expiration);
  EXPECT_EQ(*first.expiration, expiry);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(provider->get().value().access_key_id, "ASIA1");
  EXPECT_EQ(imds.credential_requests(), 1) << "not fetched again while valid";
  EXPECT_EQ(imds.token_requests(), 1);

  now_offset = -60;  // within the refresh margin (5 minutes)
  EXPECT_EQ(provider->get().value().access_key_id, "ASIA2") << "refreshed before expiry";
  EXPECT_EQ(imds.credential_requests(), 2);
  EXPECT_EQ(imds.token_requests(), 2);
  EXPECT_EQ(imds.refused(), 0);
}

TEST(Imds, DefaultEndpointAndMissingRole) {
  EXPECT_EQ(auth::default_imds_endpoint({}), "http://169.254.169.254");
  FakeImds imds;
  auth::ImdsOptions o;
  o.endpoint = imds.endpoint();
  o.role = "no-such-role";
  o.retry.max_attempts = 1;
  auto got = auth::make_imds_credentials(http::make_curl_transport(), o)->get();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::Unauthenticated);
}

TEST(Imds, StoreSignsWithTheSessionToken) {
  FakeImds imds;
  auth::ImdsOptions io;
  io.endpoint = imds.endpoint();
  io.role = "stowage-role";
  auto o = aws_options();
  o.credentials = auth::make_imds_credentials(http::make_curl_transport(), io);
  auto t = std::make_shared<ScriptedTransport>();
  t->answers = {answer(200, {}, {{"Content-Length", "1"}})};
  auto s3 = S3Store::open(o, t).value();
  ASSERT_TRUE(s3->stat(ObjectPath{"b-1", "k"}));
  const auto& h = t->requests[0].headers;
  EXPECT_EQ(*http::find_header(h, "X-Amz-Security-Token"), "imds-token");
  EXPECT_NE(http::find_header(h, "Authorization")->find("Credential=ASIA1/"), std::string::npos);
  EXPECT_NE(http::find_header(h, "Authorization")->find("x-amz-security-token"), std::string::npos);
}

// Found by fuzz/cloud_answers_fuzz: a LastModified of year 1513 overflowed the conversion to a
// time point (undefined behaviour). Dates outside what a time point holds read as unknown.
TEST(S3Internal, DatesOutsideTheClocksRangeReadAsUnknown) {
  using std::chrono::system_clock;
  EXPECT_EQ(internal::parse_time("1513-06-01T00:00:00.000Z"), system_clock::time_point{});
  EXPECT_EQ(internal::parse_time("9999-12-31T23:59:59.000Z"), system_clock::time_point{});
  EXPECT_EQ(internal::parse_time("2026-11-25T23:03:41.123Z"),
            system_clock::time_point(std::chrono::seconds(1795647821)));
}

}  // namespace
}  // namespace stowage::store::s3
