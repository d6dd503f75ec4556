// SPDX-License-Identifier: Apache-2.0
// Private to store/azure/: URL encoding, the one error translator, XML bodies, block ids.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/http/transport.hpp"
#include "stowage/store/object_store.hpp"

namespace stowage::store::azure::internal {

/// Percent-encodes a blob name for the URL path: everything but unreserved characters and '/'.
std::string encode_path(std::string_view key);
/// Percent-encodes a query value: everything but unreserved characters.
std::string encode_query(std::string_view value);

/// "azure://container/key", how messages name an object.
std::string describe(const ObjectPath& path);

/// THE translation point from an Azure answer to an Error: the code from the HTTP status and the
/// x-ms-error-code (or the XML <Code>), `retryable` for 5xx, 429, ServerBusy and timeouts; the
/// message is "<op> azure://c/k: <Code>: <first line of the service's message> (request <id>)".
/// Never copies AuthenticationErrorDetail (Azure echoes the request's signature there).
Error azure_error(std::string_view op, const ObjectPath& path, long status,
                  const std::vector<http::Header>& headers, std::string_view body);
/// A transport failure (reset, timeout, refused) named for the operation; keeps `retryable`.
Error transport_error(std::string_view op, const ObjectPath& path, Error error);

/// A Last-Modified value (RFC 1123) as a time point; the epoch when unparsable.
std::chrono::system_clock::time_point parse_http_date(std::string_view text);

/// One <Blob> or <BlobPrefix> of a List Blobs answer.
struct ListEntry {
  std::string name;
  bool is_prefix = false;
  std::uint64_t size = 0;
  std::string etag;
  std::chrono::system_clock::time_point last_modified{};
};

/// A List Blobs answer: entries in name order (blobs and prefixes merged), and the marker of
/// the next page (empty on the last).
struct ListResult {
  std::vector<ListEntry> entries;
  std::string next_marker;
};
/// Parses a List Blobs XML body. Corrupt when it is not one.
Result<ListResult> parse_list_blobs(std::string_view xml);

/// One block of a Get Block List answer.
struct BlockInfo {
  std::string id;  ///< base64, as given
  std::uint64_t size = 0;
};
/// Parses a Get Block List body: the uncommitted blocks (committed ones are not returned).
Result<std::vector<BlockInfo>> parse_uncommitted_blocks(std::string_view xml);
/// The Put Block List body naming `ids` (base64) in order, each as <Latest>.
std::string block_list_xml(const std::vector<std::string>& ids);

/// Quirk: Azure refuses a block list whose ids differ in length (InvalidBlockId), and ids must
/// be at most 64 bytes before base64. Ours are always kBlockIdRawBytes long:
/// "stw1-<16 hex upload tag>-<6 digit index>-<16 hex of the block's SHA-256>".
inline constexpr std::size_t kBlockIdRawBytes = 45;
/// A block id (base64) for block `index` of upload `tag` whose bytes hash to `sha256_hex`.
std::string block_id(std::string_view tag, std::uint64_t index, std::string_view sha256_hex);

/// Azure's limit on blocks per blob.
inline constexpr std::uint64_t kMaxBlocks = 50'000;
/// Azure's limit on one block (4000 MiB since 2019-12-12).
inline constexpr std::uint64_t kMaxBlockBytes = 4000ull << 20;
/// The block size for block `index`: at least `min_bytes` and size_hint / 10,000 (so a blob
/// uses at most 10,000 of the 50,000 blocks allowed); with an unknown size it doubles every 500
/// blocks (50,000 of them then hold over 170 TiB).
std::uint64_t block_size_for(std::uint64_t min_bytes, std::optional<std::uint64_t> size_hint,
                             std::uint64_t index);

}  // namespace stowage::store::azure::internal
