// SPDX-License-Identifier: Apache-2.0
#include "stowage/cache/caching_store.hpp"

#include <charconv>
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
  InvalidatingWriter(std::unique_ptr<store::Writer> inner, DiskCache* cache, std::string key)
      : inner_(std::move(inner)), cache_(cache), key_(std::move(key)) {}
  Status write(std::span<const std::byte> bytes) override { return inner_->write(bytes); }
  Result<ObjectInfo> commit() override {
    auto info = inner_->commit();
    if (cache_) (void)cache_->erase(key_);
    return info;
  }
  Status abort() override { return inner_->abort(); }

 private:
  std::unique_ptr<store::Writer> inner_;
  DiskCache* cache_;
  std::string key_;
};

}  // namespace

std::string encode_object_meta(const ObjectInfo& info) {
  const auto mtime =
      std::chrono::duration_cast<std::chrono::nanoseconds>(info.last_modified.time_since_epoch())
          .count();
  return "v1\n" + info.etag + "\n" + std::to_string(info.size) + "\n" + std::to_string(mtime);
}

Result<ObjectInfo> decode_object_meta(const ObjectPath& path, std::string_view meta) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const auto nl = meta.find('\n', start);
    parts.push_back(meta.substr(start, nl == std::string_view::npos ? nl : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  ObjectInfo info;
  std::int64_t mtime = 0;
  if (parts.size() != 4 || parts[0] != "v1" ||
      std::from_chars(parts[2].begin(), parts[2].end(), info.size).ec != std::errc{} ||
      std::from_chars(parts[3].begin(), parts[3].end(), mtime).ec != std::errc{}) {
    return make_error(ErrorCode::Corrupt,
                      "storage cache entry of " + path.to_string() + " has unreadable metadata");
  }
  info.path = path;
  info.etag = std::string(parts[1]);
  info.last_modified = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(mtime)));
  return info;
}

CachingStore::CachingStore(store::ObjectStore& remote, DiskCache* cache, std::string connection,
                           metrics::Registry* metrics)
    : remote_(remote), cache_(cache), connection_(std::move(connection)), metrics_(metrics) {
  if (metrics_) {
    remote_bytes_ =
        &metrics_->counter("stowage_remote_bytes_total", "Bytes read from a remote store.",
                           {{"provider", std::string(remote_.name())}});
  }
}

void CachingStore::count_request(std::string_view op) {
  if (!metrics_) return;
  metrics_
      ->counter("stowage_remote_requests_total", "Requests made to a remote store.",
                {{"provider", std::string(remote_.name())}, {"op", std::string(op)}})
      .inc();
}

std::string CachingStore::key_of(const ObjectPath& path) const {
  return connection_ + "\n" + path.bucket + "\n" + path.key;
}

Result<CachedObject> CachingStore::get(const ObjectPath& path,
                                       const std::optional<ObjectInfo>& known) {
  if (!cache_) return make_error(ErrorCode::Unsupported, "the storage cache is off");
  const std::string key = key_of(path);
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
    return encode_object_meta(info);
  };
  // Twice at most: a cached entry of another version than `known` is replaced once.
  for (int attempt = 0;; ++attempt) {
    STOWAGE_ASSIGN_OR_RETURN(auto hit, cache_->get_or_fill(key, fill));
    STOWAGE_ASSIGN_OR_RETURN(auto info, decode_object_meta(path, hit.meta));
    if (!known || known->etag == info.etag || attempt == 1) {
      return CachedObject{std::move(info), std::move(hit.file)};
    }
    STOWAGE_TRY(cache_->erase(key));
  }
}

Result<CachedObject> CachingStore::open_cached(const ObjectPath& path) {
  return get(path, std::nullopt);
}

Result<ObjectInfo> CachingStore::stat(const ObjectPath& path) {
  if (cache_) {
    if (auto meta = cache_->peek_meta(key_of(path))) return decode_object_meta(path, *meta);
  }
  count_request("stat");
  return remote_.stat(path);
}

Result<std::unique_ptr<io::Reader>> CachingStore::open_read(const ObjectPath& path,
                                                            const store::ReadOptions& options) {
  auto direct = [&]() -> Result<std::unique_ptr<io::Reader>> {
    count_request("get");
    STOWAGE_ASSIGN_OR_RETURN(auto reader, remote_.open_read(path, options));
    return std::unique_ptr<io::Reader>(
        std::make_unique<CountingReader>(std::move(reader), remote_bytes_));
  };
  if (!cache_) return direct();
  auto cached = get(path, std::nullopt);
  if (!cached) {
    if (cached.error().code == ErrorCode::TooLarge) return direct();
    return cached.error();
  }
  // The caller pinned another version than the one cached: the remote decides.
  if (options.if_match && *options.if_match != cached->info.etag) return direct();
  const std::uint64_t size = cached->info.size;
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
      std::make_unique<FileRangeReader>(std::move(cached->file), offset, length));
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

Result<std::unique_ptr<store::Writer>> CachingStore::open_write(
    const ObjectPath& path, const store::WriteOptions& options) {
  if (cache_) {
    STOWAGE_TRY(cache_->erase(key_of(path)));
  }
  count_request("put");
  STOWAGE_ASSIGN_OR_RETURN(auto writer, remote_.open_write(path, options));
  return std::unique_ptr<store::Writer>(
      std::make_unique<InvalidatingWriter>(std::move(writer), cache_, key_of(path)));
}

Result<store::ListPage> CachingStore::list(const ObjectPath& prefix,
                                           const store::ListOptions& options) {
  count_request("list");
  return remote_.list(prefix, options);
}

Status CachingStore::remove(const ObjectPath& path) {
  if (cache_) {
    STOWAGE_TRY(cache_->erase(key_of(path)));
  }
  count_request("delete");
  return remote_.remove(path);
}

Result<ObjectInfo> CachingStore::adopt_file(const std::filesystem::path& file,
                                            const ObjectPath& path,
                                            const store::WriteOptions& options) {
  if (cache_) {
    STOWAGE_TRY(cache_->erase(key_of(path)));
  }
  count_request("put");
  auto info = remote_.adopt_file(file, path, options);
  if (cache_) (void)cache_->erase(key_of(path));
  return info;
}

}  // namespace stowage::cache
