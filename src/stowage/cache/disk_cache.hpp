// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "stowage/base/error.hpp"
#include "stowage/io/file.hpp"
#include "stowage/metrics/metrics.hpp"

/// Disk caches under DATA_PATH/cache: the storage cache (remote bytes kept locally) and the
/// preview cache (encoded thumbnails).
namespace stowage::cache {

struct DiskCacheOptions {
  /// The cache's folder: entry files in `<2 hex>/` sub-folders, temp files in `tmp/`, and the
  /// index `index.db`. Created when missing.
  std::filesystem::path dir;
  /// Bound on the bytes of all entries plus the bytes reserved by fills in progress. Held at
  /// every moment: a fill reserves its bytes (evicting least recently used entries) before it
  /// writes them. Measured in file bytes (not blocks); the index itself is not counted.
  std::uint64_t max_bytes = 0;
  /// An entry that has not been read for this long is dropped (as nginx's proxy_cache
  /// `inactive=`): a hot object stays as long as it is used, a cold one goes.
  std::chrono::seconds expires{7 * 24 * 3600};
  /// "storage" or "previews": the `cache` label of the metrics.
  std::string name = "cache";
  /// Where hits, misses, evictions and bytes are counted; none when null.
  metrics::Registry* metrics = nullptr;
  /// The clock for expiry; tests move it.
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
};

/// An entry opened for reading. The descriptor stays valid after the entry is evicted (the
/// bytes are freed when it is closed).
struct Hit {
  io::File file;
  std::uint64_t size = 0;
  std::string meta;  ///< the text the fill returned (e.g. the object's etag)
};

class DiskCache;
class PendingEntry;

/// Where a fill writes an entry's bytes. Every write first reserves its bytes in the cache
/// (evicting if needed); TooLarge when the entry cannot fit (larger than max_entry_bytes(), or
/// the rest of the cache is held by other fills).
class EntryWriter {
 public:
  /// Reserves `total_bytes` for the whole entry up front, when its size is known; TooLarge when
  /// it cannot fit. Optional: write() reserves as it goes.
  Status reserve(std::uint64_t total_bytes);
  Status write(std::span<const std::byte> bytes);
  std::uint64_t written() const noexcept { return written_; }

 private:
  friend class DiskCache;
  friend class PendingEntry;
  EntryWriter(DiskCache& cache, io::File file) : cache_(cache), file_(std::move(file)) {}
  DiskCache& cache_;
  io::File file_;
  std::uint64_t written_ = 0;
  std::uint64_t reserved_ = 0;
};

/// A bounded, persistent, least-recently-used cache of files, keyed by text.
///
/// - **Publication.** An entry is written to `tmp/`, fsynced, renamed into place, its folder
///   fsynced, and only then recorded in the index: a reader never sees half an entry, and a
///   process killed at any point leaves at most a temp or orphan file that the next open()
///   deletes.
/// - **Index.** SQLite (`index.db`, WAL) holds key, file, size, meta and last access; it is read
///   whole into memory by open(), and rows whose file is missing or of the wrong size are
///   dropped. Last-access times are written back at most once per kAccessWriteInterval per entry,
///   so a hit costs no disk write.
/// - **Single flight.** Concurrent get_or_fill() calls for one missing key run one fill; the
///   others wait for it and then read the published entry.
///
/// Every method blocks (disk) and is safe to call from several threads at once.
class DiskCache {
 public:
  /// Opens (creating) the cache, loads the index, deletes temp and orphan files and expired
  /// entries, and evicts down to max_bytes (which may have shrunk since the last run).
  static Result<std::unique_ptr<DiskCache>> open(DiskCacheOptions options);
  ~DiskCache();
  DiskCache(const DiskCache&) = delete;
  DiskCache& operator=(const DiskCache&) = delete;

  /// The entry for `key`, opened, or nullopt (a miss; counted). Marks it most recently used.
  Result<std::optional<Hit>> find(std::string_view key);

  /// Writes an entry's bytes and returns its meta text. Runs on the calling thread.
  using Fill = std::function<Result<std::string>(EntryWriter&)>;
  /// The entry for `key`; on a miss, runs `fill` once for every concurrent caller and publishes
  /// what it wrote (replacing an older entry of the key). A fill's error (TooLarge included) is
  /// returned to every caller that waited for it, and nothing is published.
  Result<Hit> get_or_fill(std::string_view key, const Fill& fill);

  /// Starts a fill of `key` that the caller drives (PendingEntry), counted as a miss; nullopt
  /// when another fill of the key is in progress (the caller reads around the cache instead of
  /// waiting for a fill that streams at another client's pace).
  Result<std::optional<PendingEntry>> begin_fill(std::string_view key);

  /// The meta text of a fresh entry without opening it or counting a lookup (for stat()).
  std::optional<std::string> peek_meta(std::string_view key);
  /// Replaces the meta text of an entry (e.g. when it was revalidated), in memory and in the
  /// index; NotFound when the key has no entry.
  Status set_meta(std::string_view key, std::string meta);

  /// Drops the entry of `key`, if any (its file is deleted). Fills in progress are not affected.
  Status erase(std::string_view key);

  /// Largest entry a fill may write: a quarter of max_bytes, so that one object never flushes
  /// the whole cache.
  std::uint64_t max_entry_bytes() const noexcept { return options_.max_bytes / 4; }
  std::uint64_t max_bytes() const noexcept { return options_.max_bytes; }
  /// Bytes of published entries.
  std::uint64_t used_bytes() const;
  /// Bytes of published entries plus reservations of fills in progress (always <= max_bytes).
  std::uint64_t charged_bytes() const;
  std::size_t entry_count() const;
  const std::filesystem::path& dir() const noexcept { return options_.dir; }
  /// "storage" or "previews": the cache's metrics label.
  const std::string& name() const noexcept { return options_.name; }

  /// Last accesses are written back at most this often per entry: an LRU order that is a minute
  /// stale after a crash costs nothing, a write per hit would.
  static constexpr std::chrono::seconds kAccessWriteInterval{60};

 private:
  friend class EntryWriter;
  friend class PendingEntry;
  struct Entry {
    std::string key;
    std::string file;  ///< relative to dir
    std::uint64_t size = 0;
    std::string meta;
    std::chrono::system_clock::time_point accessed;
    std::chrono::system_clock::time_point accessed_written;
  };
  using Lru = std::list<Entry>;  // front = most recently used
  struct Flight {
    bool done = false;
    /// The fill was given up for a reason of its own (its client left): waiters fill again.
    bool retry = false;
    std::optional<Error> error;
    std::condition_variable cv;
  };
  struct Index;  // the SQLite connection

  explicit DiskCache(DiskCacheOptions options);
  Status load();
  /// Reserves `bytes` (lock held), evicting least recently used entries. TooLarge if they cannot
  /// fit even with every entry gone.
  Status reserve_locked(std::uint64_t bytes);
  void release(std::uint64_t bytes);
  /// Removes an entry (lock held): index row, memory, file.
  void drop_locked(Lru::iterator it, bool eviction);
  /// The entry, if present and fresh (lock held); expired ones are dropped.
  std::optional<Lru::iterator> lookup_locked(std::string_view key);
  Result<Hit> open_locked(Lru::iterator it);
  Result<Hit> fill_and_publish(const std::string& key, const Fill& fill);
  /// A temp file for a fill, and its writer.
  Result<std::pair<std::filesystem::path, std::unique_ptr<EntryWriter>>> start_fill();
  /// Publishes a finished fill's temp file as the entry of `key`.
  Result<Hit> publish_fill(const std::string& key, const std::filesystem::path& temp,
                           EntryWriter& writer, std::string meta);
  /// Drops an unfinished fill's temp file and reservation; returns `error`.
  Error abandon_fill(const std::filesystem::path& temp, EntryWriter& writer, Error error);
  /// Marks a flight done and wakes its waiters.
  void land(const std::string& key, Flight& flight, std::optional<Error> error, bool retry);

  DiskCacheOptions options_;
  std::unique_ptr<Index> index_;
  mutable std::mutex mutex_;
  Lru lru_;
  std::unordered_map<std::string, Lru::iterator> by_key_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
  std::uint64_t used_ = 0;
  std::uint64_t reserved_ = 0;

  // Metrics (null when options_.metrics is).
  metrics::Counter* hits_ = nullptr;
  metrics::Counter* misses_ = nullptr;
  metrics::Counter* evictions_ = nullptr;
  metrics::Counter* hit_bytes_ = nullptr;
  metrics::Counter* fill_bytes_ = nullptr;
  metrics::Gauge* size_bytes_ = nullptr;
};

/// A fill driven by its caller instead of a callback: a reader that fills an entry with the
/// bytes it streams to its client, so that the first bytes need not wait for the last. Made by
/// DiskCache::begin_fill(); write through writer(), then publish(). Destroyed (or abandoned)
/// unpublished, nothing is published: the temp file goes, the reservation is released, and
/// callers that waited for this fill start their own. Used by one thread at a time.
class PendingEntry {
 public:
  PendingEntry(PendingEntry&& other) noexcept;
  PendingEntry& operator=(PendingEntry&&) = delete;
  ~PendingEntry();

  EntryWriter& writer() noexcept { return *writer_; }
  /// The bytes written so far, opened for reading on a descriptor of its own: it stays valid
  /// after the entry is published, evicted or abandoned.
  Result<io::File> open_written() const;
  /// Publishes what was written, with `meta`, as the entry of the key (as get_or_fill() does).
  /// Afterwards the entry is done either way; an error leaves nothing published.
  Result<Hit> publish(std::string meta);
  /// Drops what was written; idempotent.
  void abandon();
  bool done() const noexcept { return writer_ == nullptr; }

 private:
  friend class DiskCache;
  PendingEntry(DiskCache& cache, std::string key, std::filesystem::path temp,
               std::unique_ptr<EntryWriter> writer, std::shared_ptr<DiskCache::Flight> flight)
      : cache_(&cache),
        key_(std::move(key)),
        temp_(std::move(temp)),
        writer_(std::move(writer)),
        flight_(std::move(flight)) {}
  DiskCache* cache_;
  std::string key_;
  std::filesystem::path temp_;
  std::unique_ptr<EntryWriter> writer_;  ///< null once published or abandoned
  std::shared_ptr<DiskCache::Flight> flight_;  ///< landed when done
};

}  // namespace stowage::cache
