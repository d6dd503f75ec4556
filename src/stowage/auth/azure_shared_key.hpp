// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/base/redacted.hpp"
#include "stowage/http/transport.hpp"

/// Azure Storage "Shared Key" authorization (Blob service): the string to sign, its parts, and
/// the HMAC-SHA256 signature. Pure functions of (request, credentials, time); no I/O.
/// https://learn.microsoft.com/en-us/rest/api/storageservices/authorize-with-shared-key
namespace stowage::auth::azure {

/// An account name and its key, already base64-decoded. The key never prints (Redacted).
struct SharedKeyCredentials {
  std::string account;
  Redacted<> key;  ///< raw key bytes, the HMAC key

  /// From the account name and the key as Azure shows it (base64, ~88 characters).
  /// InvalidArgument when the key is not base64; the message never contains the key.
  static Result<SharedKeyCredentials> from_base64(std::string account, std::string_view key);
};

/// The x-ms-version every request carries: string-to-sign rules of 2015-02-21 and later apply
/// (a zero Content-Length is signed as an empty line).
inline constexpr std::string_view kApiVersion = "2021-12-02";

/// "Sun, 11 Oct 2009 21:49:13 GMT": RFC 1123 in GMT, as x-ms-date wants it.
std::string rfc1123_date(std::chrono::system_clock::time_point time);

/// The CanonicalizedHeaders part: every `x-ms-*` header, name lower-cased, sorted by name, value
/// trimmed with inner runs of whitespace folded to one space, each line ending in '\n'.
std::string canonicalized_headers(const std::vector<http::Header>& headers);

/// The CanonicalizedResource part for `url` (absolute, percent-encoded as sent): "/" + account +
/// the URL's encoded path ("/" when empty), then one "\nname:value1,value2" line per query
/// parameter, names lower-cased and sorted, values URL-decoded and sorted. On a path-style
/// emulator URL (http://127.0.0.1:10000/devstoreaccount1/c/b) the account thus appears twice.
std::string canonicalized_resource(std::string_view account, std::string_view url);

/// The whole string to sign for `request`: VERB, the eleven standard headers (Content-Length
/// empty when zero), canonicalized headers and resource. Content-Length is taken from the
/// request's header when it has one, else from its body.
std::string string_to_sign(const http::Request& request, std::string_view account);

/// Base64(HMAC-SHA256(key, string_to_sign)).
std::string signature(std::string_view string_to_sign, const Redacted<>& key);

/// Signs `request` in place: sets x-ms-date (from `now`) and x-ms-version when absent, then the
/// Authorization header "SharedKey account:signature". Call it last, after every header is set.
void sign(http::Request& request, const SharedKeyCredentials& credentials,
          std::chrono::system_clock::time_point now);

}  // namespace stowage::auth::azure
