// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <string>

#include "stowage/cache/disk_cache.hpp"
#include "stowage/metrics/metrics.hpp"
#include "stowage/store/object_store.hpp"

namespace stowage::cache {

/// An object's bytes as a local file: a storage-cache entry, opened.
struct CachedObject {
  store::ObjectInfo info;
  io::File file;
};

/// The storage cache: an ObjectStore that keeps the bytes a remote store returns on local disk
/// (a DiskCache), and counts every request it makes to the remote.
///
/// - **Keys.** An entry is keyed by the object: `<connection>\n<bucket>\n<key>`, and is pinned
///   to the etag (ETag or generation) it was filled with; never by a URL, signed or not.
/// - **Freshness.** A hit is served without asking the remote, until the entry expires (it is
///   not read for DiskCacheOptions::expires) or is evicted. Writes and removals through this
///   store drop the entry first. That is exact for Stowage's own buckets (uploaded blobs are
///   content-addressed and never rewritten); an object changed behind Stowage's back (a link's
///   remote object rewritten in place) is served stale until its entry goes, as by the docs'
///   caching proxy. open_random() with a different etag, or an if_match that differs from the
///   entry's etag, refills.
/// - **Misses.** One stat and one GET pinned to that etag (If-Match) fill the entry, once for
///   every concurrent reader (single flight); then the reader is served from the file. Objects
///   larger than a quarter of the cache, and ranged reads of them, go straight to the remote.
///   Memory stays flat: the fill streams in io::kDefaultChunkBytes chunks.
/// - **Off.** With a null cache every call goes straight to the remote (still counted).
class CachingStore final : public store::ObjectStore {
 public:
  /// `connection` names the remote (e.g. "gcs:default") in cache keys; `cache` may be null.
  CachingStore(store::ObjectStore& remote, DiskCache* cache, std::string connection,
               metrics::Registry* metrics = nullptr);

  std::string_view name() const override { return remote_.name(); }
  const store::Capabilities& capabilities() const override { return remote_.capabilities(); }

  /// From the entry when cached (no remote request), else the remote's.
  Result<store::ObjectInfo> stat(const store::ObjectPath& path) override;
  /// From the entry on a hit; a miss fills it first (see the class comment).
  Result<std::unique_ptr<io::Reader>> open_read(const store::ObjectPath& path,
                                                const store::ReadOptions& options) override;
  Result<std::unique_ptr<io::RandomAccessReader>> open_random(
      const store::ObjectInfo& info) override;
  /// Drops the entry, then writes to the remote (and drops it again on commit).
  Result<std::unique_ptr<store::Writer>> open_write(const store::ObjectPath& path,
                                                    const store::WriteOptions& options) override;
  Result<store::ListPage> list(const store::ObjectPath& prefix,
                               const store::ListOptions& options) override;
  Status remove(const store::ObjectPath& path) override;
  Result<store::ObjectInfo> adopt_file(const std::filesystem::path& file,
                                       const store::ObjectPath& path,
                                       const store::WriteOptions& options) override;

  /// The object as an open local file, filling the entry on a miss: what previews are made
  /// from. TooLarge when the object cannot be cached (larger than a quarter of the cache);
  /// Unsupported when the cache is off.
  Result<CachedObject> open_cached(const store::ObjectPath& path);

  /// The cache behind this store (null when off).
  DiskCache* cache() const noexcept { return cache_; }

 private:
  std::string key_of(const store::ObjectPath& path) const;
  /// The entry of `path`, filling it (with `known` as its info when given) on a miss.
  Result<CachedObject> get(const store::ObjectPath& path,
                           const std::optional<store::ObjectInfo>& known);
  void count_request(std::string_view op);

  store::ObjectStore& remote_;
  DiskCache* cache_;
  std::string connection_;
  metrics::Registry* metrics_;
  metrics::Counter* remote_bytes_ = nullptr;
};

/// The etag, size and mtime of an entry's meta text (what CachingStore stores), and back.
std::string encode_object_meta(const store::ObjectInfo& info);
Result<store::ObjectInfo> decode_object_meta(const store::ObjectPath& path, std::string_view meta);

}  // namespace stowage::cache
