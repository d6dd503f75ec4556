// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "stowage/base/error.hpp"

/// Garbage collection of stored bytes (`stowage gc`): the objects of blobs that no item uses any
/// more (after items were removed) and that were recorded longer ago than the grace period.
/// Only blob objects: linked objects, team files and the caches are never touched.
///
/// Safe against uploads of the same bytes at the same moment, in any process sharing the
/// catalog. For each blob: (1) one catalog transaction deletes the row only if no item uses it
/// and records the collection (catalog::begin_blob_collection); an item added in the same instant
/// either committed first (the row is kept) or finds no blob (NotFound, nothing recorded);
/// (2) the object is deleted; (3) the collection is forgotten. While (1)-(3) run, an upload of
/// those bytes cannot record its row (put_blob is Unavailable): it waits, publishes its bytes
/// again and records the row after; and an upload that recorded its row after (3) stats its
/// object and publishes again if (2) removed it. So no row ever points at missing bytes.
/// A gc killed between (1) and (3) leaves its collection recorded; the next gc finishes it first.
namespace stowage::service {

class Service;

struct GcOptions {
  /// Blobs recorded more recently than this are kept even when unused (an upload whose items
  /// are not added yet: the SDK uploads, then adds).
  std::chrono::seconds grace{24 * 3600};
  bool dry_run = false;
  /// Called after each blob, from the calling thread: (blobs done, bytes reclaimed).
  std::function<void(std::uint64_t, std::uint64_t)> on_progress;
};

struct GcReport {
  std::uint64_t candidates = 0;      ///< unused blobs older than the grace period
  std::uint64_t removed = 0;         ///< blobs whose rows and objects were removed
  std::uint64_t bytes_reclaimed = 0; ///< their sizes (in a dry run: what would be reclaimed)
  std::uint64_t kept = 0;            ///< candidates an item took meanwhile (left alone)
  std::uint64_t resumed = 0;         ///< collections a killed gc left, finished now
  struct Failure {
    std::string sha256_hex;
    std::string reason;
  };
  std::vector<Failure> failed;       ///< objects that could not be deleted (rerun gc)
};

/// Runs one collection over the whole instance. Fails as a whole only when the catalog cannot
/// be read; an object that cannot be deleted is reported and its collection left for a rerun.
Result<GcReport> collect_garbage(Service& service, const GcOptions& options);

}  // namespace stowage::service
