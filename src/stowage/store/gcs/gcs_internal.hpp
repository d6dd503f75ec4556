// SPDX-License-Identifier: Apache-2.0
// Private to store/gcs: the JSON API's encodings and the one error-translation point.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/http/transport.hpp"
#include "stowage/store/object_store.hpp"

namespace stowage::store::gcs::internal {

/// "gcs://bucket/key", for messages.
std::string describe(std::string_view op, const ObjectPath& path);

/// THE translation of a JSON API answer that is not a success into an Error: the code from the
/// status (404 NotFound, 412 PreconditionFailed, 416 RangeNotSatisfiable, 401 Unauthenticated,
/// 403 PermissionDenied, 409 AlreadyExists, 400 InvalidArgument, 413 TooLarge, 408 Timeout, 429
/// and 5xx Unavailable), `retryable` for 408, 429 and 5xx, and a message such as
/// `upload gcs://b/k: 503 backendError: Backend Error`. `body` is GCS's JSON error (or anything).
Error gcs_error(long status, std::string_view body, std::string_view op, const ObjectPath& path);
/// The same for a transport failure: keeps code and retryable, prefixes the operation.
Error transport_error(Error error, std::string_view op, const ObjectPath& path);

/// An object resource (`storage#object`) as ObjectInfo; the generation is the etag, so that
/// If-Match maps onto ifGenerationMatch. Corrupt when a field is missing.
Result<ObjectInfo> parse_object(const boost::json::value& resource, std::string_view bucket);
/// The same from a response body.
Result<ObjectInfo> parse_object_text(std::string_view body, std::string_view bucket,
                                     std::string_view op, const ObjectPath& path);

/// A generation given as an etag (bare digits, optionally quoted); nullopt when `etag` cannot be
/// one, so that it can never match.
std::optional<std::string> generation_of(std::string_view etag);

/// The bytes a resumable session holds, from a 308's `Range: bytes=0-N` (N + 1), or 0 when the
/// header is absent. nullopt when malformed.
std::optional<std::uint64_t> persisted_from_range(std::optional<std::string_view> range);

/// RFC 3339 ("2024-05-01T12:00:00.123Z") to a time point; nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

}  // namespace stowage::store::gcs::internal
