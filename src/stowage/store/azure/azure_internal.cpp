// SPDX-License-Identifier: Apache-2.0
#include "stowage/store/azure/azure_internal.hpp"
#include "stowage/base/time.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <pugixml.hpp>

#include "stowage/io/checksum.hpp"
#include "stowage/uri/percent.hpp"

namespace stowage::store::azure::internal {
namespace {

std::string first_line(std::string_view text) {
  const auto nl = text.find('\n');
  std::string out(text.substr(0, nl));
  while (!out.empty() && (out.back() == '\r' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

std::string encode_path(std::string_view key) { return uri::percent_encode(key, true); }
std::string encode_query(std::string_view value) { return uri::percent_encode(value); }

std::string describe(const ObjectPath& path) {
  return "azure://" + path.bucket + (path.key.empty() ? "" : "/" + path.key);
}

Error azure_error(std::string_view op, const ObjectPath& path, long status,
                  const std::vector<http::Header>& headers, std::string_view body) {
  std::string code;
  if (const auto h = http::find_header(headers, "x-ms-error-code")) code = std::string(*h);
  std::string message;
  if (!body.empty()) {
    pugi::xml_document doc;
    if (doc.load_buffer(body.data(), body.size())) {
      const auto error = doc.child("Error");
      if (code.empty()) code = error.child_value("Code");
      // Only <Message>: <AuthenticationErrorDetail> quotes the request's signature.
      message = first_line(error.child_value("Message"));
    }
  }
  Error e;
  e.http_status = static_cast<int>(status);
  e.provider_code = code;
  if (const auto id = http::find_header(headers, "x-ms-request-id"))
    e.request_id = std::string(*id);

  std::string hint;
  switch (status) {
    case 404:
      e.code = ErrorCode::NotFound;
      break;
    case 401:
      e.code = ErrorCode::Unauthenticated;
      break;
    case 403:
      // Azure says AuthenticationFailed for a bad signature or an expired SAS; Azurite says
      // AuthorizationFailure for both. The Authorization*Mismatch codes are permissions.
      if (code == "AuthenticationFailed" || code == "AuthorizationFailure" || code.empty()) {
        e.code = ErrorCode::Unauthenticated;
        hint =
            " (check STORAGE_ACCESS_KEY and STORAGE_SECRET_KEY: the account key is wrong, or the "
            "SAS token is tampered with, expired or not yet valid)";
      } else {
        e.code = ErrorCode::PermissionDenied;
        hint = " (the SAS token or key does not allow this operation)";
      }
      break;
    case 409:
      e.code = code == "BlobAlreadyExists" || code == "ContainerAlreadyExists" || code.empty()
                   ? ErrorCode::AlreadyExists
                   : ErrorCode::PreconditionFailed;
      break;
    case 304:
    case 412:
      e.code = ErrorCode::PreconditionFailed;
      break;
    case 413:
      e.code = ErrorCode::TooLarge;
      break;
    case 416:
      e.code = ErrorCode::RangeNotSatisfiable;
      break;
    case 408:
      e.code = ErrorCode::Timeout;
      e.retryable = true;
      break;
    case 429:
      e.code = ErrorCode::Unavailable;
      e.retryable = true;
      break;
    default:
      if (status >= 500) {
        e.code = code == "OperationTimedOut" ? ErrorCode::Timeout : ErrorCode::Unavailable;
        e.retryable = true;
      } else if (status >= 400) {
        e.code =
            code == "InvalidBlockList" ? ErrorCode::PreconditionFailed : ErrorCode::InvalidArgument;
      } else {
        e.code = ErrorCode::Internal;
      }
      break;
  }
  if (code == "ServerBusy") e.retryable = true;
  if (code == "InvalidBlockList") {
    hint = " (its staged blocks are gone: another writer committed this blob meanwhile)";
  }
  e.message = std::string(op) + " " + describe(path) + ": " +
              (code.empty() ? "HTTP " + std::to_string(status) : code) +
              (message.empty() ? std::string() : ": " + message) + hint;
  if (!e.request_id.empty()) e.message += " (request " + e.request_id + ")";
  return e;
}

Error transport_error(std::string_view op, const ObjectPath& path, Error error) {
  error.message = std::string(op) + " " + describe(path) + ": " + error.message;
  return error;
}

std::chrono::system_clock::time_point parse_http_date(std::string_view text) {
  std::tm tm{};
  const std::string s(text);
  if (strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S", &tm) == nullptr) return {};
  return utc_time_point(tm).value_or(std::chrono::system_clock::time_point{});
}

Result<ListResult> parse_list_blobs(std::string_view xml) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) {
    return make_error(ErrorCode::Corrupt, "List Blobs: the answer is not XML");
  }
  const auto root = doc.child("EnumerationResults");
  if (!root) return make_error(ErrorCode::Corrupt, "List Blobs: no <EnumerationResults>");
  ListResult out;
  out.next_marker = root.child_value("NextMarker");
  for (const auto node : root.child("Blobs").children()) {
    ListEntry entry;
    entry.name = node.child_value("Name");
    if (std::strcmp(node.name(), "BlobPrefix") == 0) {
      entry.is_prefix = true;
    } else if (std::strcmp(node.name(), "Blob") == 0) {
      const auto props = node.child("Properties");
      entry.size = std::strtoull(props.child_value("Content-Length"), nullptr, 10);
      entry.etag = props.child_value("Etag");
      entry.last_modified = parse_http_date(props.child_value("Last-Modified"));
    } else {
      continue;
    }
    out.entries.push_back(std::move(entry));
  }
  std::stable_sort(out.entries.begin(), out.entries.end(),
                   [](const ListEntry& a, const ListEntry& b) { return a.name < b.name; });
  return out;
}

Result<std::vector<BlockInfo>> parse_uncommitted_blocks(std::string_view xml) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size()) || !doc.child("BlockList")) {
    return make_error(ErrorCode::Corrupt, "Get Block List: the answer is not a <BlockList>");
  }
  std::vector<BlockInfo> out;
  for (const auto block : doc.child("BlockList").child("UncommittedBlocks").children("Block")) {
    out.push_back(
        {block.child_value("Name"), std::strtoull(block.child_value("Size"), nullptr, 10)});
  }
  return out;
}

std::string block_list_xml(const std::vector<std::string>& ids) {
  std::string out = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
  for (const auto& id : ids) out += "<Latest>" + id + "</Latest>";  // base64: nothing to escape
  out += "</BlockList>";
  return out;
}

std::string block_id(std::string_view tag, std::uint64_t index, std::string_view sha256_hex) {
  char digits[16];
  std::snprintf(digits, sizeof digits, "%06llu", static_cast<unsigned long long>(index % 1000000));
  const std::string raw = "stw1-" + std::string(tag.substr(0, 16)) + "-" + digits + "-" +
                          std::string(sha256_hex.substr(0, 16));
  return io::to_base64(std::span(reinterpret_cast<const unsigned char*>(raw.data()), raw.size()));
}

std::uint64_t block_size_for(std::uint64_t min_bytes, std::optional<std::uint64_t> size_hint,
                             std::uint64_t index) {
  std::uint64_t size = std::max<std::uint64_t>(min_bytes, 1);
  if (size_hint) {
    size = std::max(size, (*size_hint + 9'999) / 10'000);
  } else {
    size <<= std::min<std::uint64_t>(index / 500, 20);
  }
  return std::min(size, kMaxBlockBytes);
}

}  // namespace stowage::store::azure::internal
