// SPDX-License-Identifier: Apache-2.0
#include "stowage/auth/gcp_token.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/json.hpp>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "stowage/io/checksum.hpp"
#include "stowage/uri/percent.hpp"

namespace stowage::auth {
namespace {

namespace json = boost::json;
using Clock = std::chrono::system_clock;

std::string json_string(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

/// RS256: RSASSA-PKCS1-v1_5 with SHA-256, through OpenSSL's EVP interface.
Result<std::string> sign_rs256(const Redacted<>& pem, std::string_view data) {
  auto fail = [](std::string why) -> Error {
    ERR_clear_error();  // OpenSSL's queue may quote the key; drop it
    return make_error(ErrorCode::InvalidArgument, "service account private_key: " + why);
  };
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.reveal().data(), static_cast<int>(pem.reveal().size())), &BIO_free);
  if (!bio) return fail("cannot read");
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (!key) return fail("not a PEM private key");
  if (EVP_PKEY_is_a(key.get(), "RSA") != 1) return fail("not an RSA key (RS256 needs one)");
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::size_t length = 0;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &length, bytes, data.size()) != 1) {
    return fail("cannot sign with it");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, bytes,
                     data.size()) != 1) {
    return fail("cannot sign with it");
  }
  signature.resize(length);
  return signature;
}

}  // namespace

Result<ServiceAccount> ServiceAccount::from_json(std::string_view text) {
  boost::system::error_code ec;
  const json::value parsed = json::parse(text, ec);
  if (ec || !parsed.is_object()) {
    return make_error(ErrorCode::InvalidArgument, "service account key: not a JSON object");
  }
  const json::object& o = parsed.as_object();
  const std::string type = json_string(o, "type");
  if (!type.empty() && type != "service_account") {
    return make_error(ErrorCode::Unsupported, "service account key: credentials of type '" + type +
                                                  "' are not supported; use a service account "
                                                  "key (type service_account)");
  }
  ServiceAccount out;
  out.client_email = json_string(o, "client_email");
  out.private_key_id = json_string(o, "private_key_id");
  out.private_key_pem = Redacted(json_string(o, "private_key"));
  out.token_uri = json_string(o, "token_uri");
  out.project_id = json_string(o, "project_id");
  if (out.client_email.empty()) {
    return make_error(ErrorCode::InvalidArgument, "service account key: no client_email");
  }
  if (out.private_key_pem.empty()) {
    return make_error(ErrorCode::InvalidArgument, "service account key: no private_key");
  }
  if (out.token_uri.empty()) out.token_uri = std::string(kGoogleTokenUri);
  return out;
}

Result<ServiceAccount> ServiceAccount::from_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(ErrorCode::IoError,
                      "service account key " + path.string() + ": cannot open the file");
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto parsed = from_json(text.str());
  if (!parsed) {
    Error e = std::move(parsed).error();
    e.message = path.string() + ": " + e.message;
    return e;
  }
  return parsed;
}

std::string base64url(std::string_view bytes) {
  std::string out =
      io::to_base64(std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

Result<Redacted<>> make_jwt_assertion(const ServiceAccount& account, std::string_view scope,
                                      Clock::time_point now, std::chrono::seconds lifetime) {
  json::object header{{"alg", "RS256"}, {"typ", "JWT"}};
  if (!account.private_key_id.empty()) header["kid"] = account.private_key_id;
  const auto iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const json::object claims{{"iss", account.client_email},
                            {"scope", scope},
                            {"aud", account.token_uri},
                            {"iat", iat},
                            {"exp", iat + std::min(lifetime, kMaxAssertionLifetime).count()}};
  const std::string signing_input =
      base64url(json::serialize(header)) + "." + base64url(json::serialize(claims));
  STOWAGE_ASSIGN_OR_RETURN(std::string signature,
                           sign_rs256(account.private_key_pem, signing_input));
  return Redacted(signing_input + "." + base64url(signature));
}

ServiceAccountTokenSource::ServiceAccountTokenSource(ServiceAccount account,
                                                     http::Transport& transport,
                                                     TokenSourceOptions options)
    : account_(std::move(account)), transport_(transport), options_(std::move(options)) {}

Result<AccessToken> ServiceAccountTokenSource::token() {
  const std::lock_guard lock(mutex_);
  const auto now = options_.clock();
  if (cached_ && now < refresh_at_) return *cached_;
  STOWAGE_ASSIGN_OR_RETURN(AccessToken fresh, exchange(now));
  const auto lifetime = fresh.expires_at - now;
  const auto margin = std::min<Clock::duration>(
      std::chrono::duration_cast<Clock::duration>(options_.refresh_margin), lifetime / 2);
  refresh_at_ = fresh.expires_at - margin;
  cached_ = fresh;
  ++exchanges_;
  return fresh;
}

void ServiceAccountTokenSource::invalidate(const Redacted<>& token) {
  const std::lock_guard lock(mutex_);
  if (cached_ && cached_->value == token) cached_.reset();
}

std::uint64_t ServiceAccountTokenSource::exchanges() const {
  const std::lock_guard lock(mutex_);
  return exchanges_;
}

Result<AccessToken> ServiceAccountTokenSource::exchange(Clock::time_point now) {
  const std::string where =
      "token exchange for " + account_.client_email + " at " + http::redact_url(account_.token_uri);
  STOWAGE_ASSIGN_OR_RETURN(Redacted<> assertion, make_jwt_assertion(account_, options_.scope, now));
  const std::string form =
      "grant_type=" + uri::percent_encode("urn:ietf:params:oauth:grant-type:jwt-bearer") +
      "&assertion=" + uri::percent_encode(assertion.reveal());
  http::Request request;
  request.method = "POST";
  request.url = account_.token_uri;
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  request.body = std::as_bytes(std::span(form.data(), form.size()));

  auto answer = http::with_retries(options_.retry, [&]() -> Result<http::Response> {
    auto sent = transport_.send(request, 1 << 20);
    if (!sent) {
      Error e = std::move(sent).error();
      e.message = where + ": " + e.message;
      return e;
    }
    if (sent->status >= 500 || sent->status == 429 || sent->status == 408) {
      Error e = make_error(ErrorCode::Unavailable, where + ": " + std::to_string(sent->status) +
                                                       " from the token endpoint");
      e.http_status = static_cast<int>(sent->status);
      e.retryable = true;
      return e;
    }
    return sent;
  });
  if (!answer) return std::move(answer).error();

  boost::system::error_code ec;
  const json::value body = json::parse(answer->body_text(), ec);
  const json::object* o = !ec && body.is_object() ? &body.as_object() : nullptr;
  if (answer->status != 200) {
    std::string code = o != nullptr ? json_string(*o, "error") : "";
    std::string description = o != nullptr ? json_string(*o, "error_description") : "";
    Error e = make_error(answer->status == 401 || answer->status == 400 || answer->status == 403
                             ? ErrorCode::Unauthenticated
                             : ErrorCode::Internal,
                         where + ": " + std::to_string(answer->status) + " " +
                             (code.empty() ? "error" : code) +
                             (description.empty() ? "" : ": " + description));
    e.http_status = static_cast<int>(answer->status);
    e.provider_code = code;
    return e;
  }
  const std::string token = o != nullptr ? json_string(*o, "access_token") : "";
  const json::value* expires = o != nullptr ? o->if_contains("expires_in") : nullptr;
  if (token.empty() || expires == nullptr || !expires->is_number()) {
    return make_error(ErrorCode::Corrupt, where + ": the answer has no access_token or expires_in");
  }
  const auto seconds = expires->is_int64()    ? expires->as_int64()
                       : expires->is_uint64() ? static_cast<std::int64_t>(expires->as_uint64())
                                              : static_cast<std::int64_t>(expires->as_double());
  return AccessToken{Redacted(token), now + std::chrono::seconds(seconds)};
}

}  // namespace stowage::auth
