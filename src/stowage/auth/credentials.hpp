// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "stowage/base/error.hpp"
#include "stowage/base/redacted.hpp"
#include "stowage/http/retry.hpp"
#include "stowage/http/transport.hpp"

/// AWS credentials and where they come from: static keys, or an EC2 instance role through the
/// instance-metadata service (IMDSv2).
namespace stowage::auth {

using Clock = std::function<std::chrono::system_clock::time_point()>;

/// The system clock, as a Clock.
Clock system_clock();

/// A key pair, with the session token and expiry of temporary credentials.
struct Credentials {
  std::string access_key_id;
  Redacted<> secret_access_key;
  Redacted<> session_token;  ///< empty for long-term keys
  std::optional<std::chrono::system_clock::time_point> expiration;
};

/// Hands out valid credentials. Thread-safe; may block on the network when it refreshes.
class CredentialsProvider {
 public:
  virtual ~CredentialsProvider() = default;
  /// Credentials valid for at least a few minutes. Unauthenticated when none can be had.
  virtual Result<Credentials> get() = 0;
  /// Credentials the server refused (expired early, rotated): the next get() fetches anew.
  virtual void invalidate() {}
};

/// The same keys every time.
std::shared_ptr<CredentialsProvider> make_static_credentials(Credentials credentials);

struct ImdsOptions {
  /// Base URL of the metadata service. Default: $AWS_EC2_METADATA_SERVICE_ENDPOINT, else
  /// http://169.254.169.254 (as the AWS SDKs do).
  std::string endpoint;
  /// The role's name (STORAGE_IAM_ROLE); empty: the one role the instance profile lists.
  std::string role;
  /// Credentials are refreshed this long before they expire.
  std::chrono::seconds refresh_margin{300};
  /// Lifetime asked for the IMDSv2 session token.
  std::chrono::seconds token_ttl{21600};
  Clock clock = system_clock();
  http::RetryPolicy retry;
};

/// The base URL from `environment` (AWS_EC2_METADATA_SERVICE_ENDPOINT) or the default.
std::string default_imds_endpoint(const std::map<std::string, std::string>& environment);

/// The role's temporary credentials from the instance-metadata service: an IMDSv2 session token
/// (PUT /latest/api/token), then GET /latest/meta-data/iam/security-credentials/<role>. Cached
/// until `refresh_margin` before they expire; not fetched again while valid.
std::shared_ptr<CredentialsProvider> make_imds_credentials(
    std::shared_ptr<http::Transport> transport, ImdsOptions options);

}  // namespace stowage::auth
