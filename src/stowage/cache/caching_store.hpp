// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "stowage/cache/disk_cache.hpp"
#include "stowage/metrics/metrics.hpp"
#include "stowage/store/object_store.hpp"

namespace stowage::cache {

/// An object's bytes as a local file: a storage-cache entry, opened.
struct CachedObject {
  store::ObjectInfo info;
  io::File file;
};

/// How a CachingStore decides that an entry may be served without asking the remote.
struct CachingOptions {
  /// How long an entry is served with no remote request after it was filled or last
  /// revalidated. Unset: as long as it is cached, for stores whose objects never change under a
  /// key (the instance's buckets: blobs are content-addressed). Links point at objects their
  /// owners may rewrite in place, so their stores set it (CACHE_STORAGE_REVALIDATE).
  std::optional<std::chrono::seconds> revalidate_after;
  /// A bucket whose objects never change under a key (the instance's public bucket: blobs are
  /// content-addressed): its entries are never revalidated. Team files in the private bucket
  /// can be rewritten, by another server too, so they are.
  std::string immutable_bucket;
  /// The clock of validation times; tests move it.
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
};

/// The storage cache: an ObjectStore that keeps the bytes a remote store returns on local disk
/// (a DiskCache), and counts every request it makes to the remote.
///
/// - **Keys.** An entry is keyed by the object: `<connection>\n<bucket>\n<key>`, and is pinned
///   to the etag (ETag or generation) it was filled with; never by a URL, signed or not.
/// - **Freshness.** A hit is served without asking the remote while it is fresh: always, or
///   for CachingOptions::revalidate_after since it was filled or revalidated. A stale entry
///   costs one stat: the same version (etag, size) makes it fresh again; another version drops
///   it and the read fills anew; a remote that is unreachable or answers 5xx gets the cached
///   bytes served anyway (stale-if-error, counted) and is asked again kStaleRetry later; an
///   object that is gone is NotFound. Writes and removals through this store drop the entry.
///   An entry also goes when it is not read for DiskCacheOptions::expires or is evicted.
/// - **Misses.** A whole read streams the remote object to its reader while writing it into
///   the entry, published once the last byte went through (an etag-pinned GET after one stat):
///   the first bytes never wait for the last, and a reader that stops early leaves nothing
///   cached. A concurrent reader of the same object reads around the cache meanwhile. Ranged
///   reads that start past 0 go straight to the remote, as does everything about objects larger
///   than a quarter of the cache. open_cached() and open_random() fill the whole entry first
///   (single flight). Memory stays flat: fills stream in io::kDefaultChunkBytes chunks.
/// - **Off.** With a null cache every call goes straight to the remote (still counted).
class CachingStore final : public store::ObjectStore {
 public:
  /// `connection` names the remote (e.g. "gcs:default") in cache keys; `cache` may be null.
  CachingStore(store::ObjectStore& remote, DiskCache* cache, std::string connection,
               metrics::Registry* metrics = nullptr, CachingOptions options = {});
  /// The same, owning the remote (a link connection's store).
  CachingStore(std::shared_ptr<store::ObjectStore> remote, DiskCache* cache,
               std::string connection, metrics::Registry* metrics, CachingOptions options);
  /// Waits for the fills in progress (which stop at their next chunk).
  ~CachingStore() override;
  CachingStore(const CachingStore&) = delete;
  CachingStore& operator=(const CachingStore&) = delete;

  std::string_view name() const override { return remote_.name(); }
  const store::Capabilities& capabilities() const override { return remote_.capabilities(); }

  /// From the entry when cached and fresh (no remote request), else the remote's.
  Result<store::ObjectInfo> stat(const store::ObjectPath& path) override;
  /// From the entry on a fresh hit; a whole read on a miss fills it as it streams (see the class
  /// comment).
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

  /// The object's entry as an open local file when it is cached and fresh (revalidating a stale
  /// one as reads do), nullopt otherwise; never fetches the object. For servers that send hits
  /// with sendfile(2).
  Result<std::optional<CachedObject>> cached_file(const store::ObjectPath& path);

  /// The cache behind this store (null when off).
  DiskCache* cache() const noexcept { return cache_; }

  /// How long a stale entry served because the remote failed is trusted before the remote is
  /// asked again: a remote that is down costs one failed request per object this often, not one
  /// per read.
  static constexpr std::chrono::seconds kStaleRetry{30};
  /// Background fills at once; past that, misses read around the cache.
  static constexpr std::size_t kMaxFills = 32;

  class Fill;  ///< a background fill and its followers (caching_store.cpp)
  /// A stat of a missing entry is reused by a read of the object that follows it this soon.
  static constexpr std::chrono::seconds kRecentStatAge{2};
  static constexpr std::size_t kRecentStats = 1024;

 private:
  struct Worker {
    std::thread thread;
    std::shared_ptr<Fill> fill;
  };
  /// The fill of `key` in progress, or a new one (nullptr: read around the cache).
  Result<std::shared_ptr<Fill>> follow_or_start(const store::ObjectPath& path,
                                                const std::string& key,
                                                const std::optional<store::ObjectInfo>& known);
  /// The body of a fill's thread: stat (unless known), GET pinned to the etag, write, publish.
  void run_fill(Fill& fill, const store::ObjectPath& path, const std::string& key,
                std::optional<store::ObjectInfo> known, PendingEntry entry);
  std::string key_of(const store::ObjectPath& path) const;
  /// Drops the entry of `path` and keeps a fill in flight from publishing the old bytes.
  void invalidate(const store::ObjectPath& path);
  /// The info of the fresh entry of `path`, revalidating a stale one (see the class comment);
  /// nullopt when there is none (any more).
  Result<std::optional<store::ObjectInfo>> fresh_entry(const store::ObjectPath& path,
                                                       const std::string& key);
  /// The entry of `path`, filling it (with `known` as its info when given) on a miss.
  Result<CachedObject> get(const store::ObjectPath& path,
                           const std::optional<store::ObjectInfo>& known);
  Result<std::unique_ptr<io::Reader>> direct_read(const store::ObjectPath& path,
                                                  const store::ReadOptions& options);
  void count_request(std::string_view op);
  void count_revalidation(std::string_view result);
  /// The info of the fill of `key` in progress, once its GET was answered.
  std::optional<store::ObjectInfo> filling_info(const std::string& key);
  /// Takes the remote stat() of `key` made within kRecentStatAge, if any.
  std::optional<store::ObjectInfo> recent_stat(const std::string& key);

  std::shared_ptr<store::ObjectStore> owned_;  ///< the remote when this store owns it
  store::ObjectStore& remote_;
  DiskCache* cache_;
  std::string connection_;
  metrics::Registry* metrics_;
  CachingOptions options_;
  metrics::Counter* remote_bytes_ = nullptr;
  metrics::Counter* stale_served_ = nullptr;

  std::mutex fills_mutex_;
  std::unordered_map<std::string, std::shared_ptr<Fill>> fills_;  ///< by cache key
  std::vector<Worker> threads_;
  std::atomic<bool> stopping_{false};

  std::mutex recent_mutex_;
  std::unordered_map<std::string,
                     std::pair<store::ObjectInfo, std::chrono::steady_clock::time_point>>
      recent_stats_;
};

/// What CachingStore keeps as an entry's meta text: the object's version and when the remote
/// last confirmed it.
struct EntryMeta {
  store::ObjectInfo info;  ///< etag, size, last_modified (and the path it was decoded for)
  std::chrono::system_clock::time_point validated;
};
std::string encode_object_meta(const store::ObjectInfo& info,
                               std::chrono::system_clock::time_point validated);
/// Reads both the current text and the one of builds before revalidation (validated: never).
Result<EntryMeta> decode_object_meta(const store::ObjectPath& path, std::string_view meta);

}  // namespace stowage::cache
