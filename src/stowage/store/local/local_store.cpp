// SPDX-License-Identifier: Apache-2.0
#include "stowage/store/local/local_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "stowage/store/local/local_store_internal.hpp"

namespace stowage::store::local {

namespace internal {

namespace {

/// openat2(2) fails with EAGAIN when a rename elsewhere on the file system races with the
/// resolution (RESOLVE_BENEATH must then re-check ".."); a few retries always settle it.
constexpr int kOpenat2Retries = 16;

int openat_retry(int dir_fd, const char* name, int flags) {
  int fd;
  do {
    fd = ::openat(dir_fd, name, flags | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  return fd < 0 ? -errno : fd;
}

bool is_symlink_at(int dir_fd, const char* name) {
  struct stat st {};
  return ::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

int walk_beneath(int dir_fd, std::string_view rel, int flags) {
  if (rel.empty()) return openat_retry(dir_fd, ".", flags);
  io::File current;  // the folder being walked; dir_fd itself is not ours to close
  int current_fd = dir_fd;
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = rel.find('/', start);
    const bool last = slash == std::string_view::npos;
    const std::string segment(rel.substr(start, last ? std::string_view::npos : slash - start));
    if (segment.empty() || segment == "." || segment == "..") return -EXDEV;
    const int segment_flags = last ? flags | O_NOFOLLOW : O_PATH | O_DIRECTORY | O_NOFOLLOW;
    const int fd = openat_retry(current_fd, segment.c_str(), segment_flags);
    if (fd < 0) {
      // O_NOFOLLOW reports a symlink as ELOOP (or ENOTDIR with O_DIRECTORY): name it an escape.
      if ((fd == -ELOOP || fd == -ENOTDIR) && is_symlink_at(current_fd, segment.c_str())) {
        return -EXDEV;
      }
      return fd;
    }
    if (last) {
      // O_PATH | O_NOFOLLOW opens a symlink itself rather than failing: refuse it here.
      struct stat st {};
      if ((flags & O_PATH) != 0 && ::fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
        ::close(fd);
        return -EXDEV;
      }
      return fd;
    }
    current = io::File(fd);
    current_fd = fd;
    start = slash + 1;
  }
}

}  // namespace

int open_beneath(int dir_fd, std::string_view rel, int flags, Beneath how) {
  if (how == Beneath::kWalk) return walk_beneath(dir_fd, rel, flags);
  const std::string path = rel.empty() ? std::string(".") : std::string(rel);
  struct open_how request {};
  request.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  request.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    const long fd = ::syscall(SYS_openat2, dir_fd, path.c_str(), &request, sizeof(request));
    if (fd >= 0) return static_cast<int>(fd);
    const int err = errno;
    if (err == EINTR || (err == EAGAIN && attempt < kOpenat2Retries)) continue;
    return -err;
  }
}

}  // namespace internal

namespace {

using internal::Beneath;

/// A publish that finds its folder gone (a concurrent remove() pruned it between our mkdir and
/// our rename, a window of a few syscalls) recreates the folder and tries again. Each loss takes
/// a whole remove() of the folder's last object in that window, so a handful of attempts is
/// plenty; the bound only stops a pathological livelock.
constexpr int kPublishAttempts = 8;
/// Names of temp files in `.staging`: "w.<16 hex>.tmp" (io::unique_temp_path).
constexpr std::string_view kTempStem = "w";
constexpr std::string_view kStagingFolder = ".staging";
/// The staging folder of a folder store (open_folder), inside the user's folder: a name unlikely
/// to clash with their files, skipped by listings and refused as a key.
constexpr std::string_view kFolderStaging = ".stowage-staging";
/// Attempts at a fresh temp name before giving up (a collision of 64 random bits is a bug).
constexpr int kTempNameAttempts = 4;

std::string describe(std::string_view op, const ObjectPath& path) {
  return std::string(op) + " " + path.to_string();
}

/// The one errno translator of this provider: the operation and bucket/key in the message.
Error path_error(int err, std::string_view op, const ObjectPath& path) {
  if (err == EXDEV) {
    return make_error(ErrorCode::PermissionDenied,
                      describe(op, path) + ": the path leaves the bucket folder (symlink)");
  }
  return io::errno_error(err, op, path.to_string());
}

/// Prefixes an error from io::File (which names only a descriptor) with the operation and object.
Error rewrap(Error error, std::string_view op, const ObjectPath& path) {
  error.message = describe(op, path) + ": " + error.message;
  return error;
}

std::string hex(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char buffer[16];
  std::size_t at = sizeof(buffer);
  do {
    buffer[--at] = kDigits[value & 0xf];
    value >>= 4;
  } while (value != 0);
  return std::string(buffer + at, sizeof(buffer) - at);
}

ObjectInfo make_info(const ObjectPath& path, const struct stat& st) {
  ObjectInfo info;
  info.path = path;
  info.size = static_cast<std::uint64_t>(st.st_size);
  const auto mtime =
      std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec);
  const auto mtime_ns = static_cast<std::uint64_t>(mtime.count());
  // Built by append: GCC 12 misreports `"literal" + std::string&&` under -Wrestrict.
  info.etag.reserve(52);
  info.etag.append("\"")
      .append(hex(info.size))
      .append("-")
      .append(hex(mtime_ns))
      .append("-")
      .append(hex(static_cast<std::uint64_t>(st.st_ino)))
      .append("\"");
  info.last_modified = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(mtime));
  return info;
}

/// fstat(2) of an opened object; NotFound unless it is a regular file.
Result<ObjectInfo> info_of(int fd, std::string_view op, const ObjectPath& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return path_error(errno, op, path);
  if (!S_ISREG(st.st_mode)) {
    return make_error(ErrorCode::NotFound,
                      describe(op, path) + ": not an object (a folder or a special file)");
  }
  return make_info(path, st);
}

/// "*", the etag itself, or the etag without its quotes.
bool etag_matches(std::string_view wanted, std::string_view etag) {
  if (wanted == "*" || wanted == etag) return true;
  return etag.size() == wanted.size() + 2 && etag.substr(1, wanted.size()) == wanted;
}

/// Splits "a/b/c" into {"a/b", "c"} and "c" into {"", "c"}.
std::pair<std::string_view, std::string_view> split_parent(std::string_view key) {
  const std::size_t slash = key.rfind('/');
  if (slash == std::string_view::npos) return {std::string_view(), key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

int rename_no_replace(int from_dir, const char* from, int to_dir, const char* to) {
  if (::renameat2(from_dir, from, to_dir, to, RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
  // File systems without RENAME_NOREPLACE: link(2) fails with EEXIST just as atomically.
  if (::linkat(from_dir, from, to_dir, to, 0) != 0) return -1;
  (void)::unlinkat(from_dir, from, 0);  // a leftover is unlocked, so the next open() deletes it
  return 0;
}

/// Deletes the temp files in `.staging` that no live writer holds (each writer keeps an flock(2)
/// on its temp file, released by the kernel when its process dies).
Status clean_staging(int staging_fd, const std::filesystem::path& staging) {
  const int fd = ::openat(staging_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io::errno_error(errno, "open", staging);
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    const int err = errno;
    ::close(fd);
    return io::errno_error(err, "opendir", staging);
  }
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(dir);
  bool removed = false;
  for (const std::string& name : names) {
    const int file =
        ::openat(staging_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (file < 0) {
      if (errno == ELOOP && ::unlinkat(staging_fd, name.c_str(), 0) == 0) removed = true;
      continue;
    }
    io::File held(file);
    struct stat st {};
    if (::fstat(file, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::flock(file, LOCK_EX | LOCK_NB) != 0) continue;  // a live writer's
    if (::unlinkat(staging_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return io::errno_error(errno, "unlink", staging / name);
    }
    removed = true;
  }
  if (removed && ::fsync(staging_fd) != 0) return io::errno_error(errno, "fsync", staging);
  return {};
}

/// A forward reader over [pos, end) of an opened object, by pread(2).
class FileReader final : public io::Reader {
 public:
  FileReader(io::File file, ObjectPath path, std::uint64_t begin, std::uint64_t end)
      : file_(std::move(file)), path_(std::move(path)), pos_(begin), end_(end), begin_(begin) {}

  Result<std::size_t> read(std::span<std::byte> out) override {
    if (pos_ >= end_ || out.empty()) return std::size_t{0};
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), end_ - pos_));
    auto n = file_.read_at(pos_, out.first(want));
    if (!n) return rewrap(std::move(n).error(), "read", path_);
    if (*n == 0) {
      return make_error(ErrorCode::Corrupt, describe("read", path_) + ": the file shrank");
    }
    pos_ += *n;
    return *n;
  }

  std::optional<std::uint64_t> size() const override { return end_ - begin_; }

 private:
  io::File file_;
  ObjectPath path_;
  std::uint64_t pos_;
  std::uint64_t end_;
  std::uint64_t begin_;
};

/// Random access over an opened object; pread(2) on a shared descriptor is thread-safe.
class RandomFileReader final : public io::RandomAccessReader {
 public:
  RandomFileReader(io::File file, ObjectPath path, std::uint64_t size)
      : file_(std::move(file)), path_(std::move(path)), size_(size) {}

  Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset >= size_ || out.empty()) return std::size_t{0};
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), size_ - offset));
    auto n = file_.read_at(offset, out.first(want));
    if (!n) return rewrap(std::move(n).error(), "read_at", path_);
    return *n;
  }

  std::uint64_t size() const override { return size_; }

 private:
  const io::File file_;
  const ObjectPath path_;
  const std::uint64_t size_;
};

}  // namespace

/// Streams into `.staging/<temp>`; commit() fsyncs and publishes it, abort() unlinks it.
class LocalStore::FileWriter final : public Writer {
 public:
  FileWriter(const LocalStore& store, const Bucket& bucket, ObjectPath path, io::File file,
             std::string temp_name, bool no_replace)
      : store_(store),
        bucket_(bucket),
        path_(std::move(path)),
        file_(std::move(file)),
        temp_name_(std::move(temp_name)),
        no_replace_(no_replace) {}

  ~FileWriter() override { (void)abort(); }

  Status write(std::span<const std::byte> bytes) override {
    if (temp_name_.empty()) return finished("write");
    if (auto written = file_.write_all(bytes); !written) {
      (void)abort();
      return rewrap(std::move(written).error(), "write", path_);
    }
    return {};
  }

  Result<ObjectInfo> commit() override {
    if (temp_name_.empty()) return finished("commit");
    if (auto synced = file_.sync(); !synced) {
      (void)abort();
      return rewrap(std::move(synced).error(), "commit", path_);
    }
    auto info = info_of(file_.fd(), "commit", path_);  // rename keeps the inode and mtime
    if (!info) {
      (void)abort();
      return std::move(info).error();
    }
    if (auto published = store_.publish("commit", bucket_, path_, store_.staging_fd_.fd(),
                                        temp_name_.c_str(), no_replace_);
        !published) {
      (void)abort();
      return std::move(published).error();
    }
    temp_name_.clear();
    (void)file_.close();
    return info;
  }

  Status abort() override {
    if (temp_name_.empty()) return {};
    const std::string name = std::exchange(temp_name_, std::string());
    const int rc = ::unlinkat(store_.staging_fd_.fd(), name.c_str(), 0);
    const int err = errno;
    (void)file_.close();
    if (rc != 0 && err != ENOENT) return path_error(err, "abort", path_);
    return {};
  }

 private:
  Error finished(std::string_view op) const {
    return make_error(ErrorCode::InvalidArgument,
                      describe(op, path_) + ": the writer was already committed or aborted");
  }

  const LocalStore& store_;
  const Bucket& bucket_;
  const ObjectPath path_;
  io::File file_;
  std::string temp_name_;  ///< empty once committed or aborted
  const bool no_replace_;
};

LocalStore::LocalStore(std::filesystem::path root, std::filesystem::path staging_path,
                       std::vector<Bucket> buckets, io::File staging, std::uint64_t staging_dev,
                       bool folder_mode)
    : root_(std::move(root)),
      staging_(std::move(staging_path)),
      buckets_(std::move(buckets)),
      staging_fd_(std::move(staging)),
      staging_dev_(staging_dev),
      folder_mode_(folder_mode) {}

Result<std::unique_ptr<LocalStore>> LocalStore::open_folder(const std::string& bucket,
                                                            const std::filesystem::path& folder) {
  if (bucket.empty() || bucket.find('/') != std::string::npos) {
    return make_error(ErrorCode::InvalidArgument,
                      "open folder store: storage id '" + bucket + "' must be non-empty, no '/'");
  }
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io::errno_error(errno, "open folder", folder);
  io::File dir(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return io::errno_error(errno, "fstat", folder);
  const std::filesystem::path staging = folder / kFolderStaging;
  STOWAGE_TRY(io::create_directories_durable(staging));
  const int sfd = ::open(staging.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sfd < 0) return io::errno_error(errno, "open staging folder", staging);
  io::File staging_fd(sfd);
  STOWAGE_TRY(clean_staging(staging_fd.fd(), staging));
  std::vector<Bucket> buckets;
  buckets.push_back(Bucket{bucket, std::move(dir)});
  return std::unique_ptr<LocalStore>(new LocalStore(folder, staging, std::move(buckets),
                                                    std::move(staging_fd),
                                                    static_cast<std::uint64_t>(st.st_dev), true));
}

Result<std::unique_ptr<LocalStore>> LocalStore::open(const std::filesystem::path& root,
                                                     const std::vector<std::string>& buckets) {
  const auto open_dir = [](const std::filesystem::path& dir, struct stat& st) -> Result<io::File> {
    STOWAGE_TRY(io::create_directories_durable(dir));
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return io::errno_error(errno, "open local store folder", dir);
    io::File file(fd);
    if (::fstat(fd, &st) != 0) return io::errno_error(errno, "fstat", dir);
    return file;
  };

  const std::filesystem::path staging = root / kStagingFolder;
  struct stat staging_st {};
  STOWAGE_ASSIGN_OR_RETURN(io::File staging_fd, open_dir(staging, staging_st));
  std::vector<Bucket> opened;
  for (const std::string& name : buckets) {
    if (auto valid = validate_bucket(name); !valid) return std::move(valid).error();
    if (std::any_of(opened.begin(), opened.end(),
                    [&](const Bucket& b) { return b.name == name; })) {
      continue;
    }
    struct stat st {};
    STOWAGE_ASSIGN_OR_RETURN(io::File dir, open_dir(root / name, st));
    if (st.st_dev != staging_st.st_dev) {
      return make_error(ErrorCode::InvalidArgument,
                        "open local store: bucket folder " + (root / name).string() +
                            " is on another file system than " + staging.string() +
                            ", so commits could not be atomic renames");
    }
    opened.push_back(Bucket{name, std::move(dir)});
  }
  STOWAGE_TRY(clean_staging(staging_fd.fd(), staging));
  return std::unique_ptr<LocalStore>(
      new LocalStore(root, staging, std::move(opened), std::move(staging_fd),
                     static_cast<std::uint64_t>(staging_st.st_dev), false));
}

Result<const LocalStore::Bucket*> LocalStore::check(std::string_view op, const ObjectPath& path,
                                                    bool allow_empty_key) const {
  if (auto valid = validate_bucket(path.bucket); !valid && !folder_mode_) {
    return rewrap(std::move(valid).error(), op, path);
  }
  if (folder_mode_ &&
      (path.key == kFolderStaging || path.key.starts_with(std::string(kFolderStaging) + "/"))) {
    return make_error(ErrorCode::PermissionDenied,
                      describe(op, path) + ": this name is reserved for Stowage's staging");
  }
  const auto it = std::find_if(buckets_.begin(), buckets_.end(),
                               [&](const Bucket& b) { return b.name == path.bucket; });
  if (it == buckets_.end()) {
    return make_error(ErrorCode::NotFound, describe(op, path) + ": no such bucket");
  }
  if (!(allow_empty_key && path.key.empty())) {
    if (auto valid = validate_key(path.key); !valid) {
      return rewrap(std::move(valid).error(), op, path);
    }
    if (!allow_empty_key && path.key.back() == '/') {
      return make_error(ErrorCode::InvalidArgument,
                        describe(op, path) + ": invalid object key: ends with '/'");
    }
  }
  return &*it;
}

int LocalStore::open_in(const Bucket& bucket, std::string_view rel, int flags) const {
  if (use_openat2_.load(std::memory_order_relaxed)) {
    const int fd = internal::open_beneath(bucket.dir.fd(), rel, flags, Beneath::kOpenat2);
    if (fd != -ENOSYS) return fd;
    use_openat2_.store(false, std::memory_order_relaxed);
  }
  return internal::open_beneath(bucket.dir.fd(), rel, flags, Beneath::kWalk);
}

Result<ObjectInfo> LocalStore::stat(const ObjectPath& path) {
  STOWAGE_ASSIGN_OR_RETURN(const Bucket* bucket, check("stat", path, false));
  const int fd = open_in(*bucket, path.key, O_PATH);
  if (fd < 0) return path_error(-fd, "stat", path);
  const io::File file(fd);
  return info_of(fd, "stat", path);
}

Result<std::unique_ptr<io::Reader>> LocalStore::open_read(const ObjectPath& path,
                                                          const ReadOptions& options) {
  STOWAGE_ASSIGN_OR_RETURN(const Bucket* bucket, check("open_read", path, false));
  // O_NONBLOCK: a FIFO planted in the bucket must not hang the caller; no effect on files.
  const int fd = open_in(*bucket, path.key, O_RDONLY | O_NONBLOCK);
  if (fd < 0) return path_error(-fd, "open_read", path);
  io::File file(fd);
  STOWAGE_ASSIGN_OR_RETURN(ObjectInfo info, info_of(fd, "open_read", path));
  if (options.if_match && !etag_matches(*options.if_match, info.etag)) {
    return make_error(ErrorCode::PreconditionFailed, describe("open_read", path) +
                                                         ": the object changed (etag " + info.etag +
                                                         ", expected " + *options.if_match + ")");
  }
  std::uint64_t begin = 0;
  std::uint64_t end = info.size;
  if (options.range) {
    const ByteRange& range = *options.range;
    if (info.size > 0 && range.offset >= info.size) {
      return make_error(ErrorCode::RangeNotSatisfiable,
                        describe("open_read", path) + ": range starts at " +
                            std::to_string(range.offset) + ", the object has " +
                            std::to_string(info.size) + " bytes");
    }
    begin = std::min(range.offset, info.size);
    if (range.length && *range.length < info.size - begin) end = begin + *range.length;
  }
  return std::unique_ptr<io::Reader>(
      std::make_unique<FileReader>(std::move(file), path, begin, end));
}

Result<std::unique_ptr<io::RandomAccessReader>> LocalStore::open_random(const ObjectInfo& info) {
  STOWAGE_ASSIGN_OR_RETURN(const Bucket* bucket, check("open_random", info.path, false));
  const int fd = open_in(*bucket, info.path.key, O_RDONLY | O_NONBLOCK);
  if (fd < 0) return path_error(-fd, "open_random", info.path);
  io::File file(fd);
  STOWAGE_ASSIGN_OR_RETURN(ObjectInfo now, info_of(fd, "open_random", info.path));
  if (!info.etag.empty() && now.etag != info.etag) {
    return make_error(
        ErrorCode::PreconditionFailed,
        describe("open_random", info.path) + ": the object changed since it was stat'ed");
  }
  return std::unique_ptr<io::RandomAccessReader>(
      std::make_unique<RandomFileReader>(std::move(file), info.path, now.size));
}

Result<std::unique_ptr<Writer>> LocalStore::open_write(const ObjectPath& path,
                                                       const WriteOptions& options) {
  STOWAGE_ASSIGN_OR_RETURN(const Bucket* bucket, check("open_write", path, false));
  // Refuse an escaping folder now rather than after the bytes were streamed; commit() checks
  // again, race-free, when it creates the folders.
  const auto [parent, leaf] = split_parent(path.key);
  if (const int fd = open_in(*bucket, parent, O_PATH | O_DIRECTORY); fd >= 0) {
    ::close(fd);
  } else if (fd == -EXDEV) {
    return path_error(EXDEV, "open_write", path);
  }
  for (int attempt = 1;; ++attempt) {
    std::string name = io::unique_temp_path({}, kTempStem).filename().string();
    const int fd =
        ::openat(staging_fd_.fd(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      if ((errno == EEXIST || errno == EINTR) && attempt < kTempNameAttempts) continue;
      return rewrap(io::errno_error(errno, "create", staging_ / name), "open_write", path);
    }
    io::File file(fd);
    // Marks the temp file live for clean_staging() in other processes opening this root.
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      (void)::unlinkat(staging_fd_.fd(), name.c_str(), 0);
      return rewrap(io::errno_error(err, "flock", staging_ / name), "open_write", path);
    }
    return std::unique_ptr<Writer>(std::make_unique<FileWriter>(
        *this, *bucket, path, std::move(file), std::move(name), options.if_none_match));
  }
}

int LocalStore::make_folders(const Bucket& bucket, std::string_view rel,
                             std::vector<io::File>& grown) const {
  const int direct = open_in(bucket, rel, O_RDONLY | O_DIRECTORY);
  if (direct != -ENOENT) return direct;
  io::File current(::dup(bucket.dir.fd()));
  if (!current.is_open()) return -errno;
  std::size_t start = 0;
  for (;;) {
    const std::size_t slash = std::min(rel.find('/', start), rel.size());
    const std::string segment(rel.substr(start, slash - start));
    const bool made = ::mkdirat(current.fd(), segment.c_str(), 0755) == 0;
    if (!made && errno != EEXIST) return -errno;  // ENOENT: pruned meanwhile; publish() retries
    // Re-resolve from the bucket: the segment may be a symlink planted meanwhile.
    const int next = open_in(bucket, rel.substr(0, slash), O_RDONLY | O_DIRECTORY);
    if (made) grown.push_back(std::move(current));
    if (next < 0 || slash == rel.size()) return next;
    current = io::File(next);
    start = slash + 1;
  }
}

Status LocalStore::publish(std::string_view op, const Bucket& bucket, const ObjectPath& path,
                           int from_dir_fd, const char* from, bool no_replace) const {
  const auto [parent, leaf_view] = split_parent(path.key);
  const std::string leaf(leaf_view);
  int err = 0;
  for (int attempt = 1; attempt <= kPublishAttempts; ++attempt) {
    // Folders that gained an entry are fsynced only after the rename: an fsync inside the
    // mkdir-to-rename window would widen the race with a concurrent prune by milliseconds. The
    // object is durable either way once every fsync below returned.
    std::vector<io::File> grown;
    const int dir_fd = make_folders(bucket, parent, grown);
    if (dir_fd < 0) {
      err = -dir_fd;
      if (err == ENOENT) continue;
      break;
    }
    const io::File dir(dir_fd);
    const int rc = no_replace ? rename_no_replace(from_dir_fd, from, dir_fd, leaf.c_str())
                              : ::renameat(from_dir_fd, from, dir_fd, leaf.c_str());
    if (rc == 0) {
      // The temp folder also lost an entry; not synced: a crash brings back at most a temp file
      // that the next open() deletes.
      if (::fsync(dir_fd) != 0) return path_error(errno, op, path);
      for (const io::File& folder : grown) {
        if (::fsync(folder.fd()) != 0) return path_error(errno, op, path);
      }
      return {};
    }
    err = errno;
    if (err == EXDEV) {
      // Here EXDEV is rename(2)'s: another mount of the file system, not an escape.
      return make_error(ErrorCode::Unsupported,
                        describe(op, path) + ": the source is on another mount");
    }
    if (err != ENOENT) break;
  }
  switch (err) {
    case EEXIST:
      if (no_replace) {
        return make_error(ErrorCode::AlreadyExists,
                          describe(op, path) + ": an object already exists (if_none_match)");
      }
      [[fallthrough]];
    case EISDIR:
    case ENOTEMPTY:
    case ENOTDIR:
      return make_error(ErrorCode::InvalidArgument,
                        describe(op, path) +
                            ": a folder of other keys is at this path, or an object at one of its "
                            "folders; the local store cannot keep both");
    case ENOENT:
      return make_error(ErrorCode::IoError,
                        describe(op, path) + ": the temp file or the folder kept vanishing");
    default:
      return path_error(err, op, path);
  }
}

Result<ListPage> LocalStore::list(const ObjectPath& prefix, const ListOptions& options) {
  STOWAGE_ASSIGN_OR_RETURN(const Bucket* bucket, check("list", prefix, true));
  ListPage page;
  if (options.max_keys == 0) return page;
  if (options.delimiter && options.delimiter->empty()) {
    return make_error(ErrorCode::InvalidArgument, describe("list", prefix) + ": empty delimiter");
  }

  // Start at the deepest folder the prefix names; the rest of it filters that folder's names.
  const std::string& key_prefix = prefix.key;
  const std::size_t slash = key_prefix.rfind('/');
  const std::string_view folder = slash == std::string::npos
                                      ? std::string_view()
                                      : std::string_view(key_prefix).substr(0, slash);
  const std::string_view name_filter = slash == std::string::npos
                                           ? std::string_view(key_prefix)
                                           : std::string_view(key_prefix).substr(slash + 1);
  const int fd = open_in(*bucket, folder, O_RDONLY | O_DIRECTORY);
  if (fd == -ENOENT || fd == -ENOTDIR) return page;
  if (fd < 0) return path_error(-fd, "list", prefix);
  const io::File start(fd);

  struct Walk {
    const ObjectPath& where;
    const std::string& prefix;
    const ListOptions& options;
    std::string_view token;
    bool token_is_prefix = false;
    ListPage& page;
    std::string last;   // last key or prefix returned: the page token
    bool full = false;  // one more item was found after max_keys: there is a next page

    bool passes(const std::string& key) const {
      if (key <= options.start_after) return false;
      if (token.empty()) return true;
      if (token_is_prefix && key.starts_with(token)) return false;
      return key > token;
    }
    /// True when no key under the folder `dir_key` ("a/b/") can pass.
    bool skip_folder(const std::string& dir_key) const {
      if (token_is_prefix && dir_key.starts_with(token)) return true;
      for (std::string_view bound : {std::string_view(options.start_after), token}) {
        if (!bound.empty() && dir_key < bound && !bound.starts_with(dir_key)) return true;
      }
      return false;
    }
    /// Makes room for one more item; false (and `full`) when the page is complete.
    bool room() {
      if (page.objects.size() + page.prefixes.size() < options.max_keys) return true;
      full = true;
      return false;
    }
    bool add_prefix(std::string common) {
      if (!page.prefixes.empty() && page.prefixes.back() == common) return true;
      if (common == last) return true;
      if (!room()) return false;
      last = common;
      page.prefixes.push_back(std::move(common));
      return true;
    }

    struct Entry {
      std::string sort_name;  // folders sort as "name/": the byte order of the keys beneath
      bool folder;
    };

    Result<std::vector<Entry>> entries(int dir_fd, std::string_view filter) const {
      const int fd = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) return path_error(errno, "list", where);
      DIR* dir = ::fdopendir(fd);
      if (dir == nullptr) {
        const int err = errno;
        ::close(fd);
        return path_error(err, "list", where);
      }
      std::vector<Entry> out;
      errno = 0;
      while (const dirent* entry = ::readdir(dir)) {
        const std::string_view name = entry->d_name;
        if (name == "." || name == ".." || !name.starts_with(filter)) continue;
        if (name == kFolderStaging) continue;  // a folder store's staging: not objects
        unsigned char type = entry->d_type;
        if (type == DT_UNKNOWN) {
          struct stat st {};
          if (::fstatat(dir_fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
          type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
        }
        // Symlinks and special files are not objects.
        if (type == DT_DIR) out.push_back({std::string(name) + "/", true});
        if (type == DT_REG) out.push_back({std::string(name), false});
      }
      const int err = errno;
      ::closedir(dir);
      if (err != 0) return path_error(err, "list", where);
      std::sort(out.begin(), out.end(),
                [](const Entry& a, const Entry& b) { return a.sort_name < b.sort_name; });
      return out;
    }

    /// Visits the objects beneath `dir_fd` (whose keys start with `base`) in key order. With
    /// `group_folders` (delimiter "/", top level), each non-empty folder is a common prefix.
    /// `probe` only looks for one passing key. Returns false to stop.
    Result<bool> visit(int dir_fd, const std::string& base, std::string_view filter,
                       bool group_folders, bool probe, bool& found) {
      STOWAGE_ASSIGN_OR_RETURN(std::vector<Entry> listing, entries(dir_fd, filter));
      for (const Entry& entry : listing) {
        std::string key = base + entry.sort_name;
        if (entry.folder) {
          if (skip_folder(key)) continue;
          const std::string name = entry.sort_name.substr(0, entry.sort_name.size() - 1);
          const int sub =
              ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub < 0) {
            if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) continue;  // raced
            return path_error(errno, "list", where);
          }
          const io::File sub_file(sub);
          if (group_folders) {
            bool any = false;
            STOWAGE_TRY(visit(sub, key, {}, false, true, any));
            if (any && !add_prefix(std::move(key))) return false;
            continue;
          }
          STOWAGE_ASSIGN_OR_RETURN(bool go_on, visit(sub, key, {}, false, probe, found));
          if (!go_on) return false;
          continue;
        }
        if (!passes(key) || !validate_key(key)) continue;
        if (probe) {
          found = true;
          return false;
        }
        if (options.delimiter && !group_folders) {
          const std::string_view rest = std::string_view(key).substr(prefix.size());
          const std::size_t at = rest.find(*options.delimiter);
          if (at != std::string_view::npos) {
            if (!add_prefix(key.substr(0, prefix.size() + at + options.delimiter->size()))) {
              return false;
            }
            continue;
          }
        }
        struct stat st {};
        if (::fstatat(dir_fd, entry.sort_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode)) {
          continue;  // removed meanwhile
        }
        if (!room()) return false;
        last = key;
        page.objects.push_back(make_info(ObjectPath{where.bucket, std::move(key)}, st));
      }
      return true;
    }
  };

  Walk walk{prefix, key_prefix, options, options.page_token, false, page};
  if (options.delimiter && walk.token.starts_with(key_prefix) &&
      walk.token.substr(key_prefix.size()).find(*options.delimiter) != std::string_view::npos) {
    walk.token_is_prefix = true;  // the previous page ended on a common prefix: skip beneath it
  }
  const std::string base = folder.empty() ? std::string() : std::string(folder) + "/";
  const bool group_folders = options.delimiter && *options.delimiter == "/";
  bool unused = false;
  STOWAGE_TRY(walk.visit(start.fd(), base, name_filter, group_folders, false, unused));
  if (walk.full) page.next_page_token = walk.last;
  return page;
}

Status LocalStore::remove(const ObjectPath& path) {
  STOWAGE_ASSIGN_OR_RETURN(const Bucket* bucket, check("remove", path, false));
  const auto [parent, leaf_view] = split_parent(path.key);
  const std::string leaf(leaf_view);
  const int fd = open_in(*bucket, parent, O_RDONLY | O_DIRECTORY);
  if (fd == -ENOENT || fd == -ENOTDIR) return {};
  if (fd < 0) return path_error(-fd, "remove", path);
  const io::File dir(fd);
  if (::unlinkat(fd, leaf.c_str(), 0) != 0) {
    // Absent, or a folder of other keys rather than an object: nothing to remove.
    if (errno == ENOENT || errno == EISDIR || errno == ENOTDIR) return {};
    return path_error(errno, "remove", path);
  }
  if (::fsync(fd) != 0) return path_error(errno, "remove", path);
  prune(*bucket, parent);
  return {};
}

void LocalStore::prune(const Bucket& bucket, std::string_view rel) const {
  // Best effort: a folder left behind is invisible (empty folders are never listed). A publish
  // racing with this recreates the folder (see kPublishAttempts).
  while (!rel.empty()) {
    const auto [up, name_view] = split_parent(rel);
    const std::string name(name_view);
    const int fd = open_in(bucket, up, O_PATH | O_DIRECTORY);
    if (fd < 0) return;
    const io::File dir(fd);
    if (::unlinkat(fd, name.c_str(), AT_REMOVEDIR) != 0) return;  // ENOTEMPTY: done
    rel = up;
  }
}

Result<ObjectInfo> LocalStore::adopt_file(const std::filesystem::path& file, const ObjectPath& path,
                                          const WriteOptions& options) {
  STOWAGE_ASSIGN_OR_RETURN(const Bucket* bucket, check("adopt", path, false));
  const int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return rewrap(io::errno_error(errno, "open spool file", file), "adopt", path);
  io::File spool(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return path_error(errno, "adopt", path);
  if (!S_ISREG(st.st_mode)) {
    return make_error(ErrorCode::InvalidArgument,
                      describe("adopt", path) + ": the spool file is not a regular file");
  }
  if (static_cast<std::uint64_t>(st.st_dev) == staging_dev_) {
    if (auto synced = spool.sync(); !synced)
      return rewrap(std::move(synced).error(), "adopt", path);
    const ObjectInfo info = make_info(path, st);
    auto published = publish("adopt", *bucket, path, AT_FDCWD, file.c_str(), options.if_none_match);
    if (published) {
      // Best effort: a crash before this sync may bring the spool entry back; it names the same
      // inode, so nothing is lost.
      (void)io::sync_directory(file.has_parent_path() ? file.parent_path() : ".");
      return info;
    }
    // Another mount of the same file system (bind mounts share st_dev): copy instead.
    if (published.error().code != ErrorCode::Unsupported) return std::move(published).error();
  }
  (void)spool.close();
  return ObjectStore::adopt_file(file, path, options);
}

Result<NativeFile> LocalStore::native_file(const ObjectPath& path) {
  STOWAGE_ASSIGN_OR_RETURN(const Bucket* bucket, check("native_file", path, false));
  const int fd = open_in(*bucket, path.key, O_RDONLY | O_NONBLOCK);
  if (fd < 0) return path_error(-fd, "native_file", path);
  io::File file(fd);
  STOWAGE_ASSIGN_OR_RETURN(ObjectInfo info, info_of(fd, "native_file", path));
  // A folder store's bucket is the folder itself.
  const std::filesystem::path dir = folder_mode_ ? root_ : root_ / path.bucket;
  return NativeFile{dir / path.key, info.size, std::move(file)};
}

}  // namespace stowage::store::local
