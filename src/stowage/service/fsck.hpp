// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/catalog/catalog.hpp"

/// Checking that what the catalog says is really in the storage (`stowage fsck`): every item's
/// bytes exist (a stored item's blob object with the blob's size, and with `deep` its SHA-256;
/// a linked item's object with the recorded size), every blob row has its object, and the
/// objects of the instance's buckets that no row knows are listed. Reads only, except
/// `repair`, which does only what is safe: a linked item whose object changed size is probed
/// again and its mime, size and dimensions recorded. Bytes are never deleted or rewritten.
namespace stowage::service {

class Service;

struct FsckOptions {
  std::optional<catalog::Id> project_id;  ///< only this project's items (no blob or orphan scan)
  bool deep = false;                      ///< hash every stored blob's bytes
  bool repair = false;
  /// Called now and then from the calling thread: (items checked, blobs checked).
  std::function<void(std::uint64_t, std::uint64_t)> on_progress;
};

struct FsckFinding {
  enum class Kind {
    BlobMissing,      ///< a blob row (and its items) without its object
    BlobSizeWrong,    ///< the object's size is not the blob's
    BlobCorrupt,      ///< --deep: the bytes do not hash to the blob's SHA-256
    BlobRowMissing,   ///< an item names a blob the catalog does not have
    LinkGone,         ///< a linked item's object is not there
    LinkSizeChanged,  ///< a linked item's object has another size than recorded
    LinkUnreachable,  ///< the link does not resolve (remote_links.yml) or the store failed
    OrphanObject,     ///< an object in the instance's buckets that no row knows (a notice)
  };
  Kind kind;
  std::optional<catalog::Id> item_id;
  std::string sha256_hex;
  std::string where;   ///< bucket/key or the link
  std::string detail;
  bool repaired = false;
  std::uint64_t size = 0;  ///< orphans: the object's size
};
std::string_view to_string(FsckFinding::Kind kind) noexcept;
/// Orphans are notices (wasted bytes, e.g. left by a crash between bytes and row); everything
/// else is a problem.
bool is_problem(FsckFinding::Kind kind) noexcept;

struct FsckReport {
  std::uint64_t items = 0;
  std::uint64_t links = 0;
  std::uint64_t blobs = 0;
  std::uint64_t objects = 0;  ///< objects scanned in the instance's buckets
  std::uint64_t problems = 0;
  std::uint64_t repaired = 0;
  std::vector<FsckFinding> findings;
};

/// Runs the checks. Fails as a whole only when the catalog cannot be read or the project is
/// unknown; anything wrong with an item or object is a finding.
Result<FsckReport> check_storage(Service& service, const FsckOptions& options);

}  // namespace stowage::service
