// SPDX-License-Identifier: Apache-2.0
// The service-account JWT and the caching token source, with a key made here and a scripted
// token endpoint: no network, no process.
#include "stowage/auth/gcp_token.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <atomic>
#include <boost/json.hpp>
#include <mutex>
#include <thread>

#include "stowage/io/checksum.hpp"

namespace stowage::auth {
namespace {

namespace json = boost::json;
using Clock = std::chrono::system_clock;

/// A 2048-bit RSA key pair, generated once for the whole file.
struct KeyPair {
  std::string private_pem;
  EVP_PKEY* key = nullptr;
};

const KeyPair& test_key() {
  static const KeyPair pair = [] {
    KeyPair out;
    out.key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, out.key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    out.private_pem.assign(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return out;
  }();
  return pair;
}

ServiceAccount test_account() {
  ServiceAccount a;
  a.client_email = "robot@proj.iam.gserviceaccount.com";
  a.private_key_id = "key-1";
  a.private_key_pem = Redacted(test_key().private_pem);
  a.token_uri = "http://127.0.0.1:1/token";
  return a;
}

std::string b64url_decode(std::string text) {
  for (char& c : text) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (text.size() % 4 != 0) text += '=';
  return io::from_base64(text);
}

std::vector<std::string> split_jwt(const std::string& jwt) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const auto dot = jwt.find('.', start);
    parts.push_back(jwt.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

bool verify_rs256(EVP_PKEY* key, const std::string& data, const std::string& signature) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                       data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

TEST(GcpJwt, HeaderClaimsAndSignatureVerifyWithThePublicKey) {
  const auto now = Clock::time_point(std::chrono::seconds(1'700'000'000));
  const auto jwt = make_jwt_assertion(test_account(), kGcsReadWriteScope, now).value();
  const auto parts = split_jwt(jwt.reveal());
  ASSERT_EQ(parts.size(), 3u);
  for (const auto& p : parts) {
    EXPECT_EQ(p.find_first_of("+/="), std::string::npos) << "base64url without padding";
  }
  const auto header = json::parse(b64url_decode(parts[0])).as_object();
  EXPECT_EQ(header.at("alg").as_string(), "RS256");
  EXPECT_EQ(header.at("typ").as_string(), "JWT");
  EXPECT_EQ(header.at("kid").as_string(), "key-1");
  const auto claims = json::parse(b64url_decode(parts[1])).as_object();
  EXPECT_EQ(claims.at("iss").as_string(), "robot@proj.iam.gserviceaccount.com");
  EXPECT_EQ(claims.at("aud").as_string(), "http://127.0.0.1:1/token");
  EXPECT_EQ(claims.at("scope").as_string(), kGcsReadWriteScope);
  EXPECT_EQ(claims.at("iat").as_int64(), 1'700'000'000);
  EXPECT_EQ(claims.at("exp").as_int64(), 1'700'003'600) << "at most one hour";

  const std::string signed_part = parts[0] + "." + parts[1];
  EXPECT_TRUE(verify_rs256(test_key().key, signed_part, b64url_decode(parts[2])));
  EXPECT_FALSE(verify_rs256(test_key().key, signed_part + "x", b64url_decode(parts[2])))
      << "the signature covers header and claims";
  EVP_PKEY* other = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048));
  EXPECT_FALSE(verify_rs256(other, signed_part, b64url_decode(parts[2])));
  EVP_PKEY_free(other);
}

TEST(GcpJwt, BadKeysFailWithoutEchoingThem) {
  ServiceAccount a = test_account();
  a.private_key_pem = Redacted(std::string("-----BEGIN PRIVATE KEY-----\nSENTINEL-SECRET\n"));
  auto jwt = make_jwt_assertion(a, kGcsReadWriteScope, Clock::now());
  ASSERT_FALSE(jwt);
  EXPECT_EQ(jwt.error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(jwt.error().message.find("SENTINEL"), std::string::npos);
}

TEST(GcpServiceAccount, ParsesKeyFilesAndNamesMissingFields) {
  json::object file{{"type", "service_account"},
                    {"client_email", "robot@p.iam.gserviceaccount.com"},
                    {"private_key", "SENTINEL-KEY"},
                    {"private_key_id", "abc"}};
  auto parsed = ServiceAccount::from_json(json::serialize(file)).value();
  EXPECT_EQ(parsed.client_email, "robot@p.iam.gserviceaccount.com");
  EXPECT_EQ(parsed.token_uri, kGoogleTokenUri) << "Google's endpoint by default";

  file.erase("client_email");
  auto missing = ServiceAccount::from_json(json::serialize(file));
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("client_email"), std::string::npos);
  EXPECT_EQ(missing.error().message.find("SENTINEL"), std::string::npos);

  auto user = ServiceAccount::from_json(R"({"type": "authorized_user"})");
  ASSERT_FALSE(user);
  EXPECT_EQ(user.error().code, ErrorCode::Unsupported);
  EXPECT_FALSE(ServiceAccount::from_json("not json"));
}

/// A token endpoint in memory: counts exchanges, checks each assertion's signature.
class FakeTokenEndpoint : public http::Transport {
 public:
  Result<http::Response> send(const http::Request& request, std::uint64_t) override {
    std::lock_guard lock(mutex_);
    ++calls;
    last_body.assign(reinterpret_cast<const char*>(request.body.data()), request.body.size());
    http::Response r;
    if (fail_with_status != 0) {
      r.status = fail_with_status;
      const std::string body =
          R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})";
      r.body.assign(reinterpret_cast<const std::byte*>(body.data()),
                    reinterpret_cast<const std::byte*>(body.data() + body.size()));
      return r;
    }
    const auto at = last_body.find("assertion=");
    const auto parts = split_jwt(last_body.substr(at + 10));
    if (parts.size() != 3 ||
        !verify_rs256(test_key().key, parts[0] + "." + parts[1], b64url_decode(parts[2])) ||
        last_body.find("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer") ==
            std::string::npos) {
      r.status = 400;
      return r;
    }
    r.status = 200;
    const std::string body = R"({"access_token":"tok-)" + std::to_string(calls) +
                             R"(","expires_in":)" + std::to_string(expires_in) +
                             R"(,"token_type":"Bearer"})";
    r.body.assign(reinterpret_cast<const std::byte*>(body.data()),
                  reinterpret_cast<const std::byte*>(body.data() + body.size()));
    return r;
  }
  Result<std::unique_ptr<http::ResponseStream>> open(const http::Request&) override {
    return make_error(ErrorCode::Unsupported, "not used");
  }

  std::mutex mutex_;
  int calls = 0;
  int expires_in = 3600;
  long fail_with_status = 0;
  std::string last_body;
};

struct FakeClock {
  std::shared_ptr<std::atomic<std::int64_t>> seconds =
      std::make_shared<std::atomic<std::int64_t>>(1'700'000'000);
  Clock::time_point operator()() const { return Clock::time_point(std::chrono::seconds(*seconds)); }
};

TEST(GcpTokenSource, OneExchangeServesEveryRequestUntilNearExpiry) {
  FakeTokenEndpoint endpoint;
  FakeClock clock;
  TokenSourceOptions options;
  options.clock = clock;
  ServiceAccountTokenSource source(test_account(), endpoint, options);

  for (int i = 0; i < 100; ++i) EXPECT_EQ(source.token().value().value.reveal(), "tok-1");
  EXPECT_EQ(endpoint.calls, 1);
  EXPECT_EQ(source.exchanges(), 1u);

  *clock.seconds += 3600 - 301;  // 5 min + 1 s left: still good
  EXPECT_EQ(source.token().value().value.reveal(), "tok-1");
  *clock.seconds += 2;  // inside the refresh margin: replaced before it expires
  EXPECT_EQ(source.token().value().value.reveal(), "tok-2");
  EXPECT_EQ(endpoint.calls, 2);
  EXPECT_EQ(source.token().value().expires_at, clock() + std::chrono::seconds(3600));
}

TEST(GcpTokenSource, ShortLivedTokensRefreshAtHalfLife) {
  FakeTokenEndpoint endpoint;
  endpoint.expires_in = 60;
  FakeClock clock;
  TokenSourceOptions options;
  options.clock = clock;
  ServiceAccountTokenSource source(test_account(), endpoint, options);
  EXPECT_EQ(source.token().value().value.reveal(), "tok-1");
  *clock.seconds += 29;
  EXPECT_EQ(source.token().value().value.reveal(), "tok-1");
  *clock.seconds += 1;
  EXPECT_EQ(source.token().value().value.reveal(), "tok-2");
}

TEST(GcpTokenSource, InvalidateForcesAFreshExchangeOnce) {
  FakeTokenEndpoint endpoint;
  ServiceAccountTokenSource source(test_account(), endpoint, {});
  const auto first = source.token().value();
  source.invalidate(Redacted<>(std::string("some-other-token")));
  EXPECT_EQ(source.token().value().value, first.value) << "only the refused token is dropped";
  source.invalidate(first.value);
  EXPECT_EQ(source.token().value().value.reveal(), "tok-2");
  EXPECT_EQ(endpoint.calls, 2);
}

TEST(GcpTokenSource, ConcurrentCallersShareOneExchange) {
  FakeTokenEndpoint endpoint;
  ServiceAccountTokenSource source(test_account(), endpoint, {});
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) ok += source.token() ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 400);
  EXPECT_EQ(endpoint.calls, 1);
}

TEST(GcpTokenSource, InvalidGrantIsUnauthenticatedAndLeaksNoSecret) {
  FakeTokenEndpoint endpoint;
  endpoint.fail_with_status = 400;
  ServiceAccountTokenSource source(test_account(), endpoint, {});
  auto token = source.token();
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().code, ErrorCode::Unauthenticated);
  EXPECT_EQ(token.error().provider_code, "invalid_grant");
  EXPECT_FALSE(token.error().retryable);
  const std::string text = token.error().to_string();
  EXPECT_NE(text.find("invalid_grant"), std::string::npos) << text;
  EXPECT_NE(text.find("robot@proj.iam.gserviceaccount.com"), std::string::npos) << text;
  const auto assertion = endpoint.last_body.substr(endpoint.last_body.find("assertion=") + 10);
  EXPECT_EQ(text.find(assertion.substr(0, 40)), std::string::npos) << "no JWT in messages";
  EXPECT_EQ(text.find("PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(endpoint.calls, 1) << "a refusal is not retried";
}

TEST(GcpTokenSource, ServerErrorsAreRetried) {
  FakeTokenEndpoint endpoint;
  endpoint.fail_with_status = 503;
  TokenSourceOptions options;
  int sleeps = 0;
  options.retry.sleep = [&](std::chrono::milliseconds) { ++sleeps; };
  ServiceAccountTokenSource source(test_account(), endpoint, options);
  auto token = source.token();
  ASSERT_FALSE(token);
  EXPECT_EQ(token.error().code, ErrorCode::Unavailable);
  EXPECT_TRUE(token.error().retryable);
  EXPECT_EQ(endpoint.calls, options.retry.max_attempts);
  EXPECT_EQ(sleeps, options.retry.max_attempts - 1);
}

}  // namespace
}  // namespace stowage::auth
