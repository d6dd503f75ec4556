// SPDX-License-Identifier: Apache-2.0
// Private to store/s3: the error translator, XML and date helpers.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "stowage/base/error.hpp"
#include "stowage/http/transport.hpp"

namespace stowage::store::s3::internal {

/// "s3://bucket/key" (or "s3://bucket") for messages.
std::string locator(std::string_view bucket, std::string_view key);

/// The one translation of an S3 answer into an Error: code from the HTTP status and S3's error
/// code, message `<op> s3://b/k: <Code>: <Message>` in plain words, provider code and request
/// id set, retryable on 5xx, 429/SlowDown/RequestTimeout. Never includes a secret.
Error s3_error(const http::Response& response, std::string_view op, std::string_view bucket,
               std::string_view key);

/// A transport failure (refused, reset, timeout), with the operation and object named.
Error transport_error(Error error, std::string_view op, std::string_view bucket,
                      std::string_view key);

/// The region an S3 answer names: x-amz-bucket-region (301, HeadBucket) or <Region> in an
/// AuthorizationHeaderMalformed / PermanentRedirect body.
std::optional<std::string> region_hint(const http::Response& response);

/// "Wed, 25 Nov 2026 23:03:41 GMT" (HTTP) or "2026-11-25T23:03:41.123Z" (XML listings).
std::chrono::system_clock::time_point parse_time(std::string_view text);

/// Hex MD5, the ETag S3 gives a part (quoted in answers).
std::string md5_hex(std::span<const std::byte> bytes);
/// Hex SHA-256.
std::string sha256_hex(std::span<const std::byte> bytes);

}  // namespace stowage::store::s3::internal
