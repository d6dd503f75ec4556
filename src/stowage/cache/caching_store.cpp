// SPDX-License-Identifier: Apache-2.0
#include "stowage/cache/caching_store.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace stowage::cache {
namespace {

using store::ObjectInfo;
using store::ObjectPath;

/// [offset, offset + length) of an entry file.
class FileRangeReader final : public io::Reader {
 public:
  FileRangeReader(io::File file, std::uint64_t offset, std::uint64_t length)
      : file_(std::move(file)), offset_(offset), left_(length), size_(length) {}
  Result<std::size_t> read(std::span<std::byte> out) override {
    if (left_ == 0 || out.empty()) return std::size_t{0};
    if (out.size() > left_) out = out.first(static_cast<std::size_t>(left_));
    STOWAGE_ASSIGN_OR_RETURN(std::size_t n, file_.read_at(offset_, out));
    if (n == 0) return make_error(ErrorCode::Corrupt, "cache entry ended early");
    offset_ += n;
    left_ -= n;
    return n;
  }
  std::optional<std::uint64_t> size() const override { return size_; }

 private:
  io::File file_;
  std::uint64_t offset_;
  std::uint64_t left_;
  std::uint64_t size_;
};

/// A remote reader whose bytes are counted.
class CountingReader final : public io::Reader {
 public:
  CountingReader(std::unique_ptr<io::Reader> inner, metrics::Counter* bytes)
      : inner_(std::move(inner)), bytes_(bytes) {}
  Result<std::size_t> read(std::span<std::byte> out) override {
    STOWAGE_ASSIGN_OR_RETURN(std::size_t n, inner_->read(out));
    if (bytes_) bytes_->inc(n);
    return n;
  }
  std::optional<std::uint64_t> size() const override { return inner_->size(); }

 private:
  std::unique_ptr<io::Reader> inner_;
  metrics::Counter* bytes_;
};

/// Drops the cache entry of its path again once the new bytes are committed, so that a fill
/// racing with the write cannot leave the old bytes cached.
class InvalidatingWriter final : public store::Writer {
 public:
  InvalidatingWriter(std::unique_ptr<store::Writer> inner, std::function<void()> invalidate)
      : inner_(std::move(inner)), invalidate_(std::move(invalidate)) {}
  Status write(std::span<const std::byte> bytes) override { return inner_->write(bytes); }
  Result<ObjectInfo> commit() override {
    auto info = inner_->commit();
    invalidate_();
    return info;
  }
  Status abort() override { return inner_->abort(); }

 private:
  std::unique_ptr<store::Writer> inner_;
  std::function<void()> invalidate_;
};

/// Two infos of one object name the same bytes: the same size and etag (or, for servers that
/// send no etag, the same modification time).
bool same_version(const ObjectInfo& a, const ObjectInfo& b) {
  if (a.size != b.size) return false;
  if (a.etag.empty() && b.etag.empty()) return a.last_modified == b.last_modified;
  return a.etag == b.etag;
}

/// The remote could not answer (down, unreachable, overloaded, 5xx): cached bytes are better
/// than an error. A 4xx (denied, gone) is an answer and is not papered over.
bool remote_failed(const Error& error) {
  return error.retryable || error.code == ErrorCode::Unavailable ||
         error.code == ErrorCode::Timeout || error.http_status >= 500;
}

std::int64_t to_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

/// One background fill of an entry, followed by every reader of the object meanwhile: the
/// bytes go from the remote into the entry's file, and readers read that file up to what has
/// been written.
class CachingStore::Fill {
 public:
  explicit Fill(io::File written) : written_file_(std::move(written)) {}

  /// Set (under CachingStore::fills_mutex_) when the object was written or removed while
  /// this fill ran.
  bool discarded = false;

  /// The object's info once the remote answered the GET, or the error that ended the fill.
  Result<ObjectInfo> wait_opened() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return info_.has_value() || ended_; });
    if (info_) return *info_;
    return error_.value_or(make_error(ErrorCode::Internal, "fill ended without an answer"));
  }
  void opened(const ObjectInfo& info) {
    {
      std::lock_guard lock(mutex_);
      info_ = info;
    }
    changed_.notify_all();
  }
  void grew(std::uint64_t written) {
    {
      std::lock_guard lock(mutex_);
      written_ = written;
    }
    changed_.notify_all();
  }
  void finish(Status status) {
    {
      std::lock_guard lock(mutex_);
      ended_ = true;
      if (!status) error_ = status.error();
    }
    changed_.notify_all();
  }
  bool finished() {
    std::lock_guard lock(mutex_);
    return ended_;
  }

  /// Reads bytes at `offset` once they are written; 0 at the end; the fill's error if it ended
  /// before them.
  Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) {
    std::uint64_t available = 0;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return written_ > offset || ended_; });
      if (written_ <= offset) {
        if (error_) return *error_;
        return std::size_t{0};
      }
      available = written_ - offset;
    }
    if (out.size() > available) out = out.first(static_cast<std::size_t>(available));
    return written_file_.read_at(offset, out);
  }
  std::optional<std::uint64_t> size() {
    std::lock_guard lock(mutex_);
    return info_ ? std::optional(info_->size) : std::nullopt;
  }
  /// The object's info once the remote answered the fill's GET (without waiting).
  std::optional<ObjectInfo> info() {
    std::lock_guard lock(mutex_);
    return info_;
  }

 private:
  io::File written_file_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<ObjectInfo> info_;
  std::uint64_t written_ = 0;
  bool ended_ = false;
  std::optional<Error> error_;
};

namespace {

/// A reader of an object being filled: what the fill has written, as it is written.
class FillFollower final : public io::Reader {
 public:
  explicit FillFollower(std::shared_ptr<CachingStore::Fill> fill) : fill_(std::move(fill)) {}
  Result<std::size_t> read(std::span<std::byte> out) override {
    if (out.empty()) return std::size_t{0};
    STOWAGE_ASSIGN_OR_RETURN(std::size_t n, fill_->read_at(offset_, out));
    offset_ += n;
    return n;
  }
  std::optional<std::uint64_t> size() const override { return fill_->size(); }

 private:
  std::shared_ptr<CachingStore::Fill> fill_;
  std::uint64_t offset_ = 0;
};

}  // namespace

std::string encode_object_meta(const ObjectInfo& info,
                               std::chrono::system_clock::time_point validated) {
  const auto mtime =
      std::chrono::duration_cast<std::chrono::nanoseconds>(info.last_modified.time_since_epoch())
          .count();
  return "v2\n" + info.etag + "\n" + std::to_string(info.size) + "\n" + std::to_string(mtime) +
         "\n" + std::to_string(to_ms(validated));
}

Result<EntryMeta> decode_object_meta(const ObjectPath& path, std::string_view meta) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const auto nl = meta.find('\n', start);
    parts.push_back(meta.substr(start, nl == std::string_view::npos ? nl : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  auto number = [](std::string_view text, auto& out) {
    return std::from_chars(text.begin(), text.end(), out).ec == std::errc{};
  };
  EntryMeta out;
  std::int64_t mtime = 0;
  std::int64_t validated_ms = 0;
  // v1 (before revalidation) has no validation time: such an entry is due for one at once.
  const bool v1 = parts.size() == 4 && parts[0] == "v1";
  const bool v2 = parts.size() == 5 && parts[0] == "v2" && number(parts[4], validated_ms);
  if ((!v1 && !v2) || !number(parts[2], out.info.size) || !number(parts[3], mtime)) {
    return make_error(ErrorCode::Corrupt,
                      "storage cache entry of " + path.to_string() + " has unreadable metadata");
  }
  out.info.path = path;
  out.info.etag = std::string(parts[1]);
  out.info.last_modified = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(mtime)));
  out.validated = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::milliseconds(validated_ms)));
  return out;
}

CachingStore::CachingStore(store::ObjectStore& remote, DiskCache* cache, std::string connection,
                           metrics::Registry* metrics, CachingOptions options)
    : remote_(remote),
      cache_(cache),
      connection_(std::move(connection)),
      metrics_(metrics),
      options_(std::move(options)) {
  if (metrics_) {
    remote_bytes_ =
        &metrics_->counter("stowage_remote_bytes_total", "Bytes read from a remote store.",
                           {{"provider", std::string(remote_.name())}});
    if (cache_) {
      stale_served_ = &metrics_->counter(
          "stowage_cache_stale_served_total",
          "Cached bytes served because the remote failed to revalidate them (stale-if-error).",
          {{"cache", cache_->name()}});
    }
  }
}

CachingStore::CachingStore(std::shared_ptr<store::ObjectStore> remote, DiskCache* cache,
                           std::string connection, metrics::Registry* metrics,
                           CachingOptions options)
    : CachingStore(*remote, cache, std::move(connection), metrics, std::move(options)) {
  owned_ = std::move(remote);
}

void CachingStore::count_request(std::string_view op) {
  if (!metrics_) return;
  metrics_
      ->counter("stowage_remote_requests_total", "Requests made to a remote store.",
                {{"provider", std::string(remote_.name())}, {"op", std::string(op)}})
      .inc();
}

void CachingStore::count_revalidation(std::string_view result) {
  if (!metrics_ || !cache_) return;
  metrics_
      ->counter("stowage_cache_revalidations_total",
                "Stale entries checked with the remote, by outcome: unchanged, changed, gone, "
                "failed (then served stale).",
                {{"cache", cache_->name()}, {"result", std::string(result)}})
      .inc();
}

std::string CachingStore::key_of(const ObjectPath& path) const {
  return connection_ + "\n" + path.bucket + "\n" + path.key;
}

Result<std::optional<ObjectInfo>> CachingStore::fresh_entry(const ObjectPath& path,
                                                            const std::string& key) {
  const auto text = cache_->peek_meta(key);
  if (!text) return std::optional<ObjectInfo>();
  auto entry = decode_object_meta(path, *text);
  if (!entry) {
    STOWAGE_TRY(cache_->erase(key));
    return std::optional<ObjectInfo>();
  }
  if (!options_.revalidate_after || path.bucket == options_.immutable_bucket) {
    return std::optional(std::move(entry->info));
  }
  const auto now = options_.now();
  if (now - entry->validated < *options_.revalidate_after) {
    return std::optional(std::move(entry->info));
  }
  count_request("stat");
  auto current = remote_.stat(path);
  if (current) {
    if (same_version(*current, entry->info)) {
      count_revalidation("unchanged");
      (void)cache_->set_meta(key, encode_object_meta(entry->info, now));
      return std::optional(std::move(entry->info));
    }
    count_revalidation("changed");
    STOWAGE_TRY(cache_->erase(key));
    return std::optional<ObjectInfo>();
  }
  if (current.error().code == ErrorCode::NotFound) {
    count_revalidation("gone");
    STOWAGE_TRY(cache_->erase(key));
    return current.error();
  }
  if (!remote_failed(current.error())) return current.error();
  count_revalidation("failed");
  if (stale_served_) stale_served_->inc();
  // Trusted again for kStaleRetry (or the interval, if shorter), so that a remote that is down
  // is not asked on every read.
  const auto trust = std::min<std::chrono::system_clock::duration>(kStaleRetry,
                                                                   *options_.revalidate_after);
  (void)cache_->set_meta(
      key, encode_object_meta(entry->info, now - *options_.revalidate_after + trust));
  return std::optional(std::move(entry->info));
}

Result<CachedObject> CachingStore::get(const ObjectPath& path,
                                       const std::optional<ObjectInfo>& known) {
  if (!cache_) return make_error(ErrorCode::Unsupported, "the storage cache is off");
  const std::string key = key_of(path);
  STOWAGE_ASSIGN_OR_RETURN(auto fresh, fresh_entry(path, key));
  if (fresh && (!known || same_version(*known, *fresh))) {
    STOWAGE_ASSIGN_OR_RETURN(auto hit, cache_->find(key));
    if (hit) return CachedObject{std::move(*fresh), std::move(hit->file)};
  } else if (fresh) {
    STOWAGE_TRY(cache_->erase(key));  // the caller knows of another version
  }
  auto fill = [&](EntryWriter& writer) -> Result<std::string> {
    ObjectInfo info;
    if (known) {
      info = *known;
    } else {
      count_request("stat");
      STOWAGE_ASSIGN_OR_RETURN(info, remote_.stat(path));
    }
    STOWAGE_TRY(writer.reserve(info.size));  // TooLarge before any byte is fetched
    count_request("get");
    store::ReadOptions pinned;
    if (!info.etag.empty()) pinned.if_match = info.etag;
    STOWAGE_ASSIGN_OR_RETURN(auto reader, remote_.open_read(path, pinned));
    std::vector<std::byte> chunk(io::kDefaultChunkBytes);
    STOWAGE_ASSIGN_OR_RETURN(std::uint64_t copied,
                             io::drain(
                                 *reader,
                                 [&](std::span<const std::byte> bytes) -> Status {
                                   if (remote_bytes_) remote_bytes_->inc(bytes.size());
                                   return writer.write(bytes);
                                 },
                                 chunk));
    if (copied != info.size) {
      return make_error(ErrorCode::Corrupt, "fill " + path.to_string() + ": expected " +
                                                std::to_string(info.size) + " bytes, got " +
                                                std::to_string(copied));
    }
    return encode_object_meta(info, options_.now());
  };
  // Twice at most: a cached entry of another version than `known` is replaced once.
  for (int attempt = 0;; ++attempt) {
    STOWAGE_ASSIGN_OR_RETURN(auto hit, cache_->get_or_fill(key, fill));
    STOWAGE_ASSIGN_OR_RETURN(auto entry, decode_object_meta(path, hit.meta));
    if (!known || same_version(*known, entry.info) || attempt == 1) {
      return CachedObject{std::move(entry.info), std::move(hit.file)};
    }
    STOWAGE_TRY(cache_->erase(key));
  }
}

Result<std::optional<CachedObject>> CachingStore::cached_file(const ObjectPath& path) {
  if (!cache_) return std::optional<CachedObject>();
  const std::string key = key_of(path);
  STOWAGE_ASSIGN_OR_RETURN(auto fresh, fresh_entry(path, key));
  if (!fresh) return std::optional<CachedObject>();
  STOWAGE_ASSIGN_OR_RETURN(auto hit, cache_->find(key));
  if (!hit) return std::optional<CachedObject>();
  return std::optional(CachedObject{std::move(*fresh), std::move(hit->file)});
}

Result<CachedObject> CachingStore::open_cached(const ObjectPath& path) {
  return get(path, std::nullopt);
}

Result<ObjectInfo> CachingStore::stat(const ObjectPath& path) {
  if (!cache_) {
    count_request("stat");
    return remote_.stat(path);
  }
  const std::string key = key_of(path);
  STOWAGE_ASSIGN_OR_RETURN(auto fresh, fresh_entry(path, key));
  if (fresh) return std::move(*fresh);
  // An object being filled is known already: its fill's GET has been answered.
  if (auto filling = filling_info(key)) return std::move(*filling);
  count_request("stat");
  STOWAGE_ASSIGN_OR_RETURN(auto info, remote_.stat(path));
  std::lock_guard lock(recent_mutex_);
  if (recent_stats_.size() >= kRecentStats) recent_stats_.clear();
  recent_stats_[key] = {info, std::chrono::steady_clock::now()};
  return info;
}

std::optional<ObjectInfo> CachingStore::filling_info(const std::string& key) {
  std::shared_ptr<Fill> fill;
  {
    std::lock_guard lock(fills_mutex_);
    const auto it = fills_.find(key);
    // A fill invalidated by a write or a removal describes what is no longer there.
    if (it == fills_.end() || it->second->discarded) return std::nullopt;
    fill = it->second;
  }
  return fill->info();
}

std::optional<ObjectInfo> CachingStore::recent_stat(const std::string& key) {
  std::lock_guard lock(recent_mutex_);
  const auto it = recent_stats_.find(key);
  if (it == recent_stats_.end()) return std::nullopt;
  auto [info, when] = std::move(it->second);
  recent_stats_.erase(it);
  if (std::chrono::steady_clock::now() - when > kRecentStatAge) return std::nullopt;
  return info;
}

Result<std::unique_ptr<io::Reader>> CachingStore::direct_read(const ObjectPath& path,
                                                              const store::ReadOptions& options) {
  count_request("get");
  STOWAGE_ASSIGN_OR_RETURN(auto reader, remote_.open_read(path, options));
  return std::unique_ptr<io::Reader>(
      std::make_unique<CountingReader>(std::move(reader), remote_bytes_));
}

Result<std::unique_ptr<io::Reader>> CachingStore::open_read(const ObjectPath& path,
                                                            const store::ReadOptions& options) {
  if (!cache_) return direct_read(path, options);
  const std::string key = key_of(path);
  STOWAGE_ASSIGN_OR_RETURN(auto fresh, fresh_entry(path, key));
  if (fresh) {
    // The caller pinned another version than the one cached: the remote decides.
    if (options.if_match && *options.if_match != fresh->etag) return direct_read(path, options);
    STOWAGE_ASSIGN_OR_RETURN(auto hit, cache_->find(key));
    if (hit) {
      const std::uint64_t size = fresh->size;
      std::uint64_t offset = 0;
      std::uint64_t length = size;
      if (options.range) {
        offset = options.range->offset;
        if (offset >= size && size > 0) {
          return make_error(ErrorCode::RangeNotSatisfiable,
                            "read " + path.to_string() + ": range starts past the end");
        }
        offset = std::min(offset, size);
        length = std::min(options.range->length.value_or(size - offset), size - offset);
      }
      return std::unique_ptr<io::Reader>(
          std::make_unique<FileRangeReader>(std::move(hit->file), offset, length));
    }
  }
  // A miss. A read from the start follows the object's fill (starting one); others go around.
  // The stat a caller made just before (a download sizes its answer first) need not be made
  // again.
  std::optional<ObjectInfo> known = recent_stat(key);
  if (options.range && !known) {
    if (options.range->offset != 0) return direct_read(path, options);
    if (options.range->length) {
      // A header read (link metadata) must not fetch the whole object: only a read of all of it
      // fills.
      count_request("stat");
      STOWAGE_ASSIGN_OR_RETURN(known, remote_.stat(path));
    }
  }
  if (known && options.range) {
    if (options.range->offset != 0) return direct_read(path, options);
    if (options.range->length.value_or(known->size) < known->size) {
      return direct_read(path, options);
    }
  }
  if (known && known->size > cache_->max_entry_bytes()) return direct_read(path, options);
  if (options.if_match && (!known || *options.if_match != known->etag)) {
    return direct_read(path, options);
  }
  STOWAGE_ASSIGN_OR_RETURN(auto fill, follow_or_start(path, key, known));
  if (!fill) return direct_read(path, options);
  // Errors opening the object (not found, denied) are the open's, as for a direct read; an
  // object too large to cache is read around it.
  if (auto opened = fill->wait_opened(); !opened) {
    if (opened.error().code == ErrorCode::TooLarge) return direct_read(path, options);
    // The fill's GET is pinned to the version a stat just saw; another writer (another server
    // over the same bucket, the same bytes uploaded again) replaced it since. The caller pinned
    // nothing: it gets what is there now.
    if (opened.error().code == ErrorCode::PreconditionFailed && !options.if_match) {
      return direct_read(path, options);
    }
    return opened.error();
  }
  return std::unique_ptr<io::Reader>(std::make_unique<FillFollower>(std::move(fill)));
}

Result<std::shared_ptr<CachingStore::Fill>> CachingStore::follow_or_start(
    const ObjectPath& path, const std::string& key, const std::optional<ObjectInfo>& known) {
  std::lock_guard lock(fills_mutex_);
  if (auto it = fills_.find(key); it != fills_.end()) {
    // Following a fill of bytes since overwritten or removed would serve them: read around it.
    if (it->second->discarded) return std::shared_ptr<Fill>();
    return it->second;
  }
  // Threads that ended are joined here, so that they never pile up.
  std::erase_if(threads_, [](Worker& w) {
    if (!w.fill->finished()) return false;
    w.thread.join();
    return true;
  });
  if (threads_.size() >= kMaxFills || stopping_) return std::shared_ptr<Fill>();
  STOWAGE_ASSIGN_OR_RETURN(auto pending, cache_->begin_fill(key));
  if (!pending) return std::shared_ptr<Fill>();  // another kind of fill (a preview's) runs
  STOWAGE_ASSIGN_OR_RETURN(io::File written, pending->open_written());
  auto fill = std::make_shared<Fill>(std::move(written));
  fills_[key] = fill;
  threads_.push_back(Worker{
      std::thread([this, fill, path, key, known, entry = std::move(*pending)]() mutable {
        run_fill(*fill, path, key, known, std::move(entry));
      }),
      fill});
  return fill;
}

void CachingStore::run_fill(Fill& fill, const ObjectPath& path, const std::string& key,
                            std::optional<ObjectInfo> known, PendingEntry entry) {
  auto copy = [&]() -> Result<ObjectInfo> {
    ObjectInfo info;
    if (known) {
      info = std::move(*known);
    } else {
      count_request("stat");
      STOWAGE_ASSIGN_OR_RETURN(info, remote_.stat(path));
    }
    STOWAGE_TRY(entry.writer().reserve(info.size));  // TooLarge before any byte is fetched
    count_request("get");
    store::ReadOptions pinned;
    if (!info.etag.empty()) pinned.if_match = info.etag;
    STOWAGE_ASSIGN_OR_RETURN(auto reader, remote_.open_read(path, pinned));
    fill.opened(info);
    std::vector<std::byte> chunk(io::kDefaultChunkBytes);
    std::uint64_t copied = 0;
    for (;;) {
      if (stopping_) return make_error(ErrorCode::Cancelled, "the server is stopping");
      STOWAGE_ASSIGN_OR_RETURN(std::size_t n, reader->read(chunk));
      if (n == 0) break;
      if (remote_bytes_) remote_bytes_->inc(n);
      copied += n;
      if (copied > info.size) break;
      STOWAGE_TRY(entry.writer().write(std::span(chunk).first(n)));
      fill.grew(copied);
    }
    if (copied != info.size) {
      return make_error(ErrorCode::Corrupt, "fill " + path.to_string() + ": expected " +
                                                std::to_string(info.size) + " bytes, got " +
                                                std::to_string(copied));
    }
    return info;
  };
  auto info = copy();
  if (info) {
    // Readers have every byte already; a failure to publish only means it is not cached.
    if (auto hit = entry.publish(encode_object_meta(*info, options_.now())); !hit) {
      spdlog::warn("storage cache: keeping {} failed: {}", path.to_string(),
                   hit.error().to_string());
    }
  } else {
    entry.abandon();
  }
  {
    std::lock_guard lock(fills_mutex_);
    if (auto it = fills_.find(key); it != fills_.end() && it->second.get() == &fill) {
      fills_.erase(it);
    }
    // Written or removed while the fill ran: what it published is the old object.
    if (fill.discarded) (void)cache_->erase(key);
  }
  fill.finish(info ? Status{} : Status(info.error()));
}

CachingStore::~CachingStore() {
  std::vector<Worker> threads;
  {
    std::lock_guard lock(fills_mutex_);
    stopping_ = true;
    threads = std::move(threads_);
  }
  for (auto& w : threads) w.thread.join();
}

Result<std::unique_ptr<io::RandomAccessReader>> CachingStore::open_random(const ObjectInfo& info) {
  auto direct = [&]() {
    count_request("get");
    return remote_.open_random(info);
  };
  if (!cache_) return direct();
  auto cached = get(info.path, info);
  if (!cached) {
    if (cached.error().code == ErrorCode::TooLarge) return direct();
    return cached.error();
  }
  const auto size = cached->info.size;
  return std::unique_ptr<io::RandomAccessReader>(
      std::make_unique<io::FileRandomReader>(std::move(cached->file), size));
}

void CachingStore::invalidate(const ObjectPath& path) {
  if (!cache_) return;
  const std::string key = key_of(path);
  {
    // A fill in flight read the old bytes: it must not publish them (run_fill checks this
    // under the same lock once it has published, and drops what it published).
    std::lock_guard lock(fills_mutex_);
    if (auto it = fills_.find(key); it != fills_.end()) it->second->discarded = true;
  }
  (void)cache_->erase(key);
}

Result<std::unique_ptr<store::Writer>> CachingStore::open_write(
    const ObjectPath& path, const store::WriteOptions& options) {
  invalidate(path);
  count_request("put");
  STOWAGE_ASSIGN_OR_RETURN(auto writer, remote_.open_write(path, options));
  return std::unique_ptr<store::Writer>(
      std::make_unique<InvalidatingWriter>(std::move(writer), [this, path] { invalidate(path); }));
}

Result<store::ListPage> CachingStore::list(const ObjectPath& prefix,
                                           const store::ListOptions& options) {
  count_request("list");
  return remote_.list(prefix, options);
}

Status CachingStore::remove(const ObjectPath& path) {
  invalidate(path);
  count_request("delete");
  auto removed = remote_.remove(path);
  invalidate(path);  // a read that raced the removal may have filled the entry meanwhile
  return removed;
}

Result<ObjectInfo> CachingStore::adopt_file(const std::filesystem::path& file,
                                            const ObjectPath& path,
                                            const store::WriteOptions& options) {
  invalidate(path);
  count_request("put");
  auto info = remote_.adopt_file(file, path, options);
  invalidate(path);
  return info;
}

}  // namespace stowage::cache
