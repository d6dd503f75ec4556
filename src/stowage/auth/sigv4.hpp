// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stowage/auth/credentials.hpp"
#include "stowage/http/transport.hpp"

/// AWS Signature Version 4: pure functions of (request, credentials, time), one per stage, so
/// that each stage can be checked against the AWS test vectors.
namespace stowage::auth::sigv4 {

/// The payload hash S3 accepts when the body is not hashed (presigned URLs, streamed bodies).
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
/// SHA-256 of the empty string, the payload hash of a request without a body.
inline constexpr std::string_view kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What the signer sees of a request. The path and the query are DECODED (as a user reads
/// them): the signer encodes them exactly once, as S3 and the wire do.
struct SignableRequest {
  std::string method = "GET";
  std::string path = "/";
  /// Decoded name/value pairs, in any order; a valueless parameter has an empty value.
  std::vector<std::pair<std::string, std::string>> query;
  /// Every header that is signed (Host included), as sent.
  std::vector<http::Header> headers;
  /// Hex SHA-256 of the body, kUnsignedPayload, or a streaming marker.
  std::string payload_hash = std::string(kEmptyPayloadHash);
};

struct SigningParams {
  std::string region = "us-east-1";
  std::string service = "s3";
  std::chrono::system_clock::time_point time;
  /// Generic AWS services normalize the path (`/a/../b` -> `/b`, `//` -> `/`); S3 never does:
  /// `my-object//example//photo.user` is a different key from `my-object/example/photo.user`.
  bool normalize_path = false;
};

/// "20150830T123600Z" and "20150830" of a time.
std::string amz_date(std::chrono::system_clock::time_point time);
std::string short_date(std::chrono::system_clock::time_point time);
/// "20150830/us-east-1/service/aws4_request".
std::string credential_scope(std::chrono::system_clock::time_point time, std::string_view region,
                             std::string_view service);

/// Stage 1a: the canonical URI of a decoded path (normalized first when asked).
std::string canonical_uri(std::string_view path, bool normalize);
/// Stage 1b: the canonical query string: each name and value encoded, sorted by name then value.
std::string canonical_query(const std::vector<std::pair<std::string, std::string>>& query);
/// Stage 1c: "name:value\n" lines (names lower-cased, sorted; values trimmed, inner runs of
/// spaces collapsed; repeated names joined by ',') and the signed header list "a;b;c".
std::pair<std::string, std::string> canonical_headers(const std::vector<http::Header>& headers);
/// Stage 1: the canonical request.
std::string canonical_request(const SignableRequest& request, bool normalize_path);
/// Stage 2: the string to sign.
std::string string_to_sign(std::string_view canonical_request,
                           std::chrono::system_clock::time_point time, std::string_view region,
                           std::string_view service);
/// Stage 3a: the derived signing key, HMAC chain of date, region, service and "aws4_request".
std::array<unsigned char, 32> signing_key(std::string_view secret_key,
                                          std::chrono::system_clock::time_point time,
                                          std::string_view region, std::string_view service);
/// Stage 3b: hex HMAC-SHA256 of the string to sign under the signing key.
std::string signature(const std::array<unsigned char, 32>& key, std::string_view string_to_sign);
/// Stage 4: the Authorization header's value.
std::string authorization(std::string_view access_key_id, std::string_view scope,
                          std::string_view signed_headers, std::string_view signature);

/// Signs a request for header authentication: adds X-Amz-Date, X-Amz-Security-Token (when the
/// credentials carry one) and X-Amz-Content-Sha256 (for S3) to `request.headers`, signs them all,
/// and returns the Authorization value. Pure; never fails.
std::string sign(SignableRequest& request, const Credentials& credentials,
                 const SigningParams& params);

/// A presigned URL (query authentication, UNSIGNED-PAYLOAD) valid for `expires`:
/// `<scheme_host><encoded path>?<query>&X-Amz-Signature=…`. `request.headers` must hold Host.
/// The result is a secret: never log it (http::redact_url() strips the query).
std::string presign(const SignableRequest& request, std::string_view scheme_host,
                    const Credentials& credentials, const SigningParams& params,
                    std::chrono::seconds expires);

}  // namespace stowage::auth::sigv4
