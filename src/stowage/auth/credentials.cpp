// SPDX-License-Identifier: Apache-2.0
#include "stowage/auth/credentials.hpp"
#include "stowage/base/time.hpp"

#include <boost/json.hpp>
#include <ctime>

namespace stowage::auth {
namespace {

/// The IMDSv2 session-token header pair (AWS EC2 User Guide, "Use IMDSv2").
constexpr std::string_view kTokenTtlHeader = "X-aws-ec2-metadata-token-ttl-seconds";
constexpr std::string_view kTokenHeader = "X-aws-ec2-metadata-token";
constexpr std::string_view kDefaultImdsEndpoint = "http://169.254.169.254";
constexpr std::string_view kCredentialsPath = "/latest/meta-data/iam/security-credentials/";

class StaticProvider final : public CredentialsProvider {
 public:
  explicit StaticProvider(Credentials c) : credentials_(std::move(c)) {}
  Result<Credentials> get() override { return credentials_; }

 private:
  Credentials credentials_;
};

/// "2024-05-01T12:00:00Z" -> time point; nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
  std::tm tm{};
  const std::string s(text);
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  return utc_time_point(tm);
}

class ImdsProvider final : public CredentialsProvider {
 public:
  ImdsProvider(std::shared_ptr<http::Transport> transport, ImdsOptions options)
      : transport_(std::move(transport)), options_(std::move(options)) {
    while (!options_.endpoint.empty() && options_.endpoint.back() == '/')
      options_.endpoint.pop_back();
  }

  Result<Credentials> get() override {
    std::lock_guard lock(mutex_);
    const auto now = options_.clock();
    if (cached_ && (!cached_->expiration || now + options_.refresh_margin < *cached_->expiration)) {
      return *cached_;
    }
    auto fresh = http::with_retries(options_.retry, [&] { return fetch(); });
    if (!fresh) {
      // An old token still valid for a while beats no token: keep using it until it expires.
      if (cached_ && cached_->expiration && now < *cached_->expiration) return *cached_;
      return fresh.error();
    }
    cached_ = *fresh;
    ++fetches_;
    return *cached_;
  }

  void invalidate() override {
    std::lock_guard lock(mutex_);
    cached_.reset();
  }

 private:
  Error imds_error(std::string_view what, const http::Response& r) const {
    Error e = make_error(ErrorCode::Unauthenticated, "instance metadata " + std::string(what) +
                                                         " at " + options_.endpoint + ": HTTP " +
                                                         std::to_string(r.status));
    e.http_status = static_cast<int>(r.status);
    e.retryable = r.status >= 500 || r.status == 429;
    return e;
  }

  Result<Credentials> fetch() {
    http::Request token_req;
    token_req.method = "PUT";
    token_req.url = options_.endpoint + "/latest/api/token";
    token_req.headers.push_back(
        {std::string(kTokenTtlHeader), std::to_string(options_.token_ttl.count())});
    token_req.connect_timeout = std::chrono::milliseconds(2000);
    STOWAGE_ASSIGN_OR_RETURN(auto token_resp, transport_->send(token_req, 64 << 10));
    if (token_resp.status != 200) return imds_error("session token", token_resp);
    const std::string token(token_resp.body_text());

    std::string role = options_.role;
    if (role.empty()) {
      http::Request list;
      list.url = options_.endpoint + std::string(kCredentialsPath);
      list.headers.push_back({std::string(kTokenHeader), token});
      STOWAGE_ASSIGN_OR_RETURN(auto listed, transport_->send(list, 64 << 10));
      if (listed.status != 200) return imds_error("role list", listed);
      role = std::string(listed.body_text().substr(0, listed.body_text().find('\n')));
    }
    http::Request creds;
    creds.url = options_.endpoint + std::string(kCredentialsPath) + role;
    creds.headers.push_back({std::string(kTokenHeader), token});
    STOWAGE_ASSIGN_OR_RETURN(auto resp, transport_->send(creds, 64 << 10));
    if (resp.status == 404) {
      return make_error(ErrorCode::Unauthenticated, "instance metadata: no role '" + role +
                                                        "' on this instance (STORAGE_IAM_ROLE)");
    }
    if (resp.status != 200) return imds_error("credentials of role " + role, resp);
    boost::system::error_code ec;
    const auto json = boost::json::parse(resp.body_text(), ec);
    if (ec || !json.is_object()) {
      return make_error(ErrorCode::Unauthenticated,
                        "instance metadata: credentials of role " + role + " are not JSON");
    }
    const auto& o = json.as_object();
    auto str = [&](std::string_view k) -> std::string {
      const auto* v = o.if_contains(k);
      return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
    };
    Credentials c;
    c.access_key_id = str("AccessKeyId");
    c.secret_access_key = Redacted<>(str("SecretAccessKey"));
    c.session_token = Redacted<>(str("Token"));
    c.expiration = parse_iso8601(str("Expiration"));
    if (c.access_key_id.empty() || c.secret_access_key.empty()) {
      return make_error(ErrorCode::Unauthenticated,
                        "instance metadata: credentials of role " + role + " are incomplete");
    }
    return c;
  }

  std::shared_ptr<http::Transport> transport_;
  ImdsOptions options_;
  std::mutex mutex_;
  std::optional<Credentials> cached_;
  int fetches_ = 0;
};

}  // namespace

Clock system_clock() {
  return [] { return std::chrono::system_clock::now(); };
}

std::shared_ptr<CredentialsProvider> make_static_credentials(Credentials credentials) {
  return std::make_shared<StaticProvider>(std::move(credentials));
}

std::string default_imds_endpoint(const std::map<std::string, std::string>& environment) {
  if (auto it = environment.find("AWS_EC2_METADATA_SERVICE_ENDPOINT");
      it != environment.end() && !it->second.empty()) {
    return it->second;
  }
  return std::string(kDefaultImdsEndpoint);
}

std::shared_ptr<CredentialsProvider> make_imds_credentials(
    std::shared_ptr<http::Transport> transport, ImdsOptions options) {
  if (options.endpoint.empty()) options.endpoint = std::string(kDefaultImdsEndpoint);
  return std::make_shared<ImdsProvider>(std::move(transport), std::move(options));
}

}  // namespace stowage::auth
