// SPDX-License-Identifier: Apache-2.0
#include "stowage/store/s3/s3_internal.hpp"
#include "stowage/base/time.hpp"

#include <openssl/evp.h>

#include <ctime>
#include <pugixml.hpp>

#include "stowage/io/checksum.hpp"

namespace stowage::store::s3::internal {
namespace {

std::string plain_words(std::string_view code, long status) {
  if (code == "SignatureDoesNotMatch") {
    return "the secret key is wrong (check STORAGE_SECRET_KEY)";
  }
  if (code == "InvalidAccessKeyId") return "the access key is unknown (check STORAGE_ACCESS_KEY)";
  if (code == "RequestTimeTooSkewed") {
    return "this machine's clock differs too much from the server's (sync it with NTP)";
  }
  if (code == "NoSuchBucket") return "the bucket does not exist";
  if (code == "NoSuchKey") return "no such object";
  if (code == "AccessDenied") return "access denied (check the key's permissions)";
  if (code.empty() && status == 404) return "not found";
  if (code.empty() && status == 403) return "access denied";
  return {};
}

}  // namespace

std::string locator(std::string_view bucket, std::string_view key) {
  std::string out = "s3://" + std::string(bucket);
  if (!key.empty()) out += "/" + std::string(key);
  return out;
}

Error s3_error(const http::Response& response, std::string_view op, std::string_view bucket,
               std::string_view key) {
  std::string code;
  std::string message;
  std::string request_id;
  if (!response.body.empty()) {
    pugi::xml_document doc;
    if (doc.load_buffer(response.body.data(), response.body.size())) {
      const auto error = doc.child("Error");
      code = error.child_value("Code");
      message = error.child_value("Message");
      request_id = error.child_value("RequestId");
    }
  }
  if (request_id.empty()) {
    if (auto id = response.header("x-amz-request-id")) request_id = std::string(*id);
  }
  const long status = response.status;
  ErrorCode ec = ErrorCode::Internal;
  bool retryable = false;
  if (status >= 500 || status == 429 || code == "SlowDown" || code == "ServiceUnavailable") {
    ec = ErrorCode::Unavailable;
    retryable = true;
  } else if (code == "RequestTimeout") {
    ec = ErrorCode::Timeout;
    retryable = true;
  } else if (status == 404) {
    ec = ErrorCode::NotFound;
  } else if (status == 412) {
    ec = ErrorCode::PreconditionFailed;
  } else if (status == 416) {
    ec = ErrorCode::RangeNotSatisfiable;
  } else if (code == "SignatureDoesNotMatch" || code == "InvalidAccessKeyId" ||
             code == "RequestTimeTooSkewed" || code == "ExpiredToken" || code == "InvalidToken" ||
             status == 401) {
    ec = ErrorCode::Unauthenticated;
  } else if (status == 403) {
    ec = ErrorCode::PermissionDenied;
  } else if (code == "EntityTooLarge") {
    ec = ErrorCode::TooLarge;
  } else if (status == 409) {
    ec = code == "BucketAlreadyExists" || code == "BucketAlreadyOwnedByYou"
             ? ErrorCode::AlreadyExists
             : ErrorCode::PreconditionFailed;
  } else if (status == 400) {
    ec = ErrorCode::InvalidArgument;
  }
  std::string text = std::string(op) + " " + locator(bucket, key) + ": ";
  if (!code.empty()) {
    text += code + ": ";
  } else {
    text += "HTTP " + std::to_string(status) + ": ";
  }
  const std::string words = plain_words(code, status);
  text += !words.empty() ? words : (message.empty() ? std::string("no details") : message);
  Error e = make_error(ec, std::move(text));
  e.http_status = static_cast<int>(status);
  e.provider_code = code;
  e.request_id = request_id;
  e.retryable = retryable;
  return e;
}

Error transport_error(Error error, std::string_view op, std::string_view bucket,
                      std::string_view key) {
  // The transport's message names the method and URL without its query; say what we did.
  error.message = std::string(op) + " " + locator(bucket, key) + ": " + error.message;
  return error;
}

std::optional<std::string> region_hint(const http::Response& response) {
  if (auto r = response.header("x-amz-bucket-region"); r && !r->empty()) return std::string(*r);
  if (response.body.empty()) return std::nullopt;
  pugi::xml_document doc;
  if (!doc.load_buffer(response.body.data(), response.body.size())) return std::nullopt;
  const std::string region = doc.child("Error").child_value("Region");
  if (region.empty()) return std::nullopt;
  return region;
}

std::chrono::system_clock::time_point parse_time(std::string_view text) {
  std::tm tm{};
  const std::string s(text);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (end == nullptr) {
    tm = {};
    end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  }
  if (end == nullptr) return {};
  return utc_time_point(tm).value_or(std::chrono::system_clock::time_point{});
}

std::string md5_hex(std::span<const std::byte> bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_md5(), nullptr);
  return io::to_hex(std::span<const unsigned char>(digest, len));
}

std::string sha256_hex(std::span<const std::byte> bytes) {
  return io::to_hex(io::Sha256::of(bytes));
}

}  // namespace stowage::store::s3::internal
