// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "stowage/base/error.hpp"
#include "stowage/base/redacted.hpp"
#include "stowage/http/retry.hpp"
#include "stowage/http/transport.hpp"

/// Google service-account credentials: the OAuth 2.0 JWT-bearer grant (RFC 7523) as Google
/// documents it for server-to-server use, and a thread-safe, caching source of access tokens.
namespace stowage::auth {

/// Read and write access to objects; what Stowage asks for.
inline constexpr std::string_view kGcsReadWriteScope =
    "https://www.googleapis.com/auth/devstorage.read_write";
/// Google's token endpoint, for key files without a `token_uri`.
inline constexpr std::string_view kGoogleTokenUri = "https://oauth2.googleapis.com/token";
/// Google refuses assertions that claim more than an hour of validity.
inline constexpr std::chrono::seconds kMaxAssertionLifetime{3600};

/// The fields of a service-account key file (the JSON the Cloud Console hands out) that signing
/// needs. The private key never leaves this struct except into OpenSSL.
struct ServiceAccount {
  std::string client_email;
  std::string private_key_id;  ///< the JWT header's `kid`; may be empty
  Redacted<> private_key_pem;  ///< PKCS#8 PEM
  std::string token_uri;       ///< where assertions are exchanged for tokens
  std::string project_id;

  /// Parses a key file's text. InvalidArgument names the missing or malformed field (never its
  /// value); Unsupported for other credential types (e.g. `authorized_user`).
  static Result<ServiceAccount> from_json(std::string_view text);
  /// Reads and parses a key file; IoError when it cannot be read. Messages name the path.
  static Result<ServiceAccount> from_file(const std::filesystem::path& path);
};

/// base64url without padding (RFC 7515 section 2), as JWTs encode their parts.
std::string base64url(std::string_view bytes);

/// The signed assertion `header.claims.signature` (RS256) that the token endpoint exchanges for
/// an access token: iss = client_email, scope, aud = token_uri, iat = now, exp = now + lifetime.
/// InvalidArgument when the private key is not an RSA PEM key. The result is a secret.
Result<Redacted<>> make_jwt_assertion(const ServiceAccount& account, std::string_view scope,
                                      std::chrono::system_clock::time_point now,
                                      std::chrono::seconds lifetime = kMaxAssertionLifetime);

/// A bearer token and when it stops working.
struct AccessToken {
  Redacted<> value;
  std::chrono::system_clock::time_point expires_at{};
};

/// Hands out access tokens. Thread-safe.
class TokenSource {
 public:
  virtual ~TokenSource() = default;
  /// A token valid for a while yet; blocks while a new one is fetched.
  virtual Result<AccessToken> token() = 0;
  /// Forgets `token` (the server refused it), so that the next token() fetches a fresh one.
  virtual void invalidate(const Redacted<>& token) = 0;
};

struct TokenSourceOptions {
  std::string scope = std::string(kGcsReadWriteScope);
  /// A cached token is replaced once less than this is left (or less than half its lifetime,
  /// for short-lived tokens), so that no request leaves with a token about to expire.
  std::chrono::seconds refresh_margin{300};
  /// Tests substitute their clock.
  std::function<std::chrono::system_clock::time_point()> clock = [] {
    return std::chrono::system_clock::now();
  };
  http::RetryPolicy retry;
};

/// Exchanges a signed assertion at the account's token_uri, caches the token, and exchanges again
/// only when it nears its expiry: one exchange serves every request meanwhile. Concurrent callers
/// wait for one exchange rather than racing. Errors: Unauthenticated for `invalid_grant` and
/// other refusals (message has Google's error code and description, never the assertion),
/// Unavailable (retryable, already retried) for 5xx and transport failures.
class ServiceAccountTokenSource final : public TokenSource {
 public:
  /// `transport` must outlive the source.
  ServiceAccountTokenSource(ServiceAccount account, http::Transport& transport,
                            TokenSourceOptions options = {});

  Result<AccessToken> token() override;
  void invalidate(const Redacted<>& token) override;

  /// How many exchanges succeeded so far (for tests and metrics).
  std::uint64_t exchanges() const;
  const ServiceAccount& account() const { return account_; }

 private:
  Result<AccessToken> exchange(std::chrono::system_clock::time_point now);

  ServiceAccount account_;
  http::Transport& transport_;
  TokenSourceOptions options_;
  mutable std::mutex mutex_;
  std::optional<AccessToken> cached_;
  std::chrono::system_clock::time_point refresh_at_{};
  std::uint64_t exchanges_ = 0;
};

}  // namespace stowage::auth
