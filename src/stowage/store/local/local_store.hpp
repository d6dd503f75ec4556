// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "stowage/io/file.hpp"
#include "stowage/store/object_store.hpp"

namespace stowage::store::local {

/// Objects as files on local disk: each bucket is a folder under `root` and a key is a path
/// relative to it ("a/b.jpg" is `root/<bucket>/a/b.jpg`), so a bucket folder copied to a cloud
/// bucket is a valid migration.
///
/// Writes stream into a temp file in `root/.staging` (same file system as the buckets), which
/// commit() fsyncs and renames into place, then fsyncs the folder: an object is visible only
/// complete, and survives a crash once commit() returns. Every path is resolved beneath its bucket
/// folder (openat2 RESOLVE_BENEATH, or an O_NOFOLLOW walk on kernels without it): a key never
/// reaches outside its bucket, symlinks included (PermissionDenied).
///
/// All methods block on disk I/O and are safe from several threads at once. The store must
/// outlive the readers and writers it hands out. No global state.
class LocalStore final : public ObjectStore {
 public:
  /// Opens (creating as needed) `root`, one folder per bucket and `root/.staging`, and deletes
  /// temp files that no live writer holds (left by a crash). InvalidArgument for a bad bucket
  /// name or a bucket folder on another file system than `root/.staging`; IoError and friends
  /// when a folder cannot be created or opened.
  static Result<std::unique_ptr<LocalStore>> open(const std::filesystem::path& root,
                                                  const std::vector<std::string>& buckets);

  /// An existing folder of this server as one bucket named `bucket` (an `fs` connection of
  /// remote_links.yml: `fs://<storage id>/<path>`). The folder is not created; its writes stage
  /// in `folder/.stowage-staging`, a name that listings skip and keys may not use. Bucket names
  /// here are storage ids, free-form but without '/'.
  static Result<std::unique_ptr<LocalStore>> open_folder(const std::string& bucket,
                                                         const std::filesystem::path& folder);

  ~LocalStore() override = default;
  LocalStore(const LocalStore&) = delete;
  LocalStore& operator=(const LocalStore&) = delete;

  /// "local".
  std::string_view name() const override { return "local"; }
  /// atomic_publish, conditional_put and native_files are all true.
  const Capabilities& capabilities() const override { return capabilities_; }

  /// Size, etag (from size, mtime in ns and inode) and mtime. NotFound when absent or when the
  /// key names a folder; PermissionDenied when the path leaves the bucket.
  Result<ObjectInfo> stat(const ObjectPath& path) override;
  /// Reads the object or a range of it; a range past the end is clamped. PreconditionFailed when
  /// `if_match` differs from the etag; RangeNotSatisfiable when the range starts at or past the
  /// end of a non-empty object.
  Result<std::unique_ptr<io::Reader>> open_read(const ObjectPath& path,
                                                const ReadOptions& options) override;
  /// pread(2)-based random access, safe from several threads. PreconditionFailed when the object
  /// changed since `info` was taken (its etag differs).
  Result<std::unique_ptr<io::RandomAccessReader>> open_random(const ObjectInfo& info) override;
  /// A Writer streaming into a temp file in `.staging`. commit() fsyncs and renames it into
  /// place; with `if_none_match` the rename is renameat2(RENAME_NOREPLACE) (or link(2)), so two
  /// racing writers cannot both win and commit() fails with AlreadyExists.
  Result<std::unique_ptr<Writer>> open_write(const ObjectPath& path,
                                             const WriteOptions& options) override;
  /// One page of objects under `prefix.key` (which may end mid-segment), in byte order of keys.
  /// The page token is the last key or common prefix returned. Symlinks and non-regular files
  /// are not listed.
  Result<ListPage> list(const ObjectPath& prefix, const ListOptions& options) override;
  /// Unlinks the object (absent is fine), then removes its now empty parent folders up to the
  /// bucket folder.
  Status remove(const ObjectPath& path) override;
  /// Renames `file` into place when it is on the same file system (after fsyncing it);
  /// otherwise streams it through open_write(). The file is consumed either way.
  Result<ObjectInfo> adopt_file(const std::filesystem::path& file, const ObjectPath& path,
                                const WriteOptions& options) override;
  /// The object's file and size, e.g. for sendfile(2).
  Result<NativeFile> native_file(const ObjectPath& path) override;

  /// The folder given to open().
  const std::filesystem::path& root() const noexcept { return root_; }
  /// `root/.staging`, where uncommitted writes live.
  const std::filesystem::path& staging_dir() const noexcept { return staging_; }

 private:
  struct Bucket {
    std::string name;
    io::File dir;  ///< O_RDONLY | O_DIRECTORY, open for the store's lifetime
  };
  class FileWriter;

  LocalStore(std::filesystem::path root, std::filesystem::path staging_path,
             std::vector<Bucket> buckets, io::File staging, std::uint64_t staging_dev,
             bool folder_mode);

  /// Validates the path and finds its bucket; `allow_empty_key` for list prefixes.
  Result<const Bucket*> check(std::string_view op, const ObjectPath& path,
                              bool allow_empty_key) const;
  /// Opens `rel` beneath the bucket folder: a file descriptor or -errno (-EXDEV: escape).
  int open_in(const Bucket& bucket, std::string_view rel, int flags) const;
  /// Opens the folder `rel` of the bucket, creating missing folders: a file descriptor or
  /// -errno. Each parent that gained a folder is added to `grown`, for the caller to fsync.
  int make_folders(const Bucket& bucket, std::string_view rel, std::vector<io::File>& grown) const;
  /// Renames `from` (relative to `from_dir_fd`) to the object's place, creating its folders and
  /// retrying when a concurrent remove() prunes them, then fsyncs the folder.
  Status publish(std::string_view op, const Bucket& bucket, const ObjectPath& path, int from_dir_fd,
                 const char* from, bool no_replace) const;
  /// Removes the empty folders of `rel`, deepest first, up to the bucket folder.
  void prune(const Bucket& bucket, std::string_view rel) const;

  std::filesystem::path root_;
  std::filesystem::path staging_;
  std::vector<Bucket> buckets_;
  io::File staging_fd_;
  std::uint64_t staging_dev_ = 0;
  /// open_folder(): the bucket is a storage id (not a bucket name) and the staging folder sits
  /// inside it.
  bool folder_mode_ = false;
  Capabilities capabilities_{.atomic_publish = true, .conditional_put = true, .native_files = true};
  /// Cleared the first time openat2(2) turns out to be unavailable (ENOSYS, or EPERM under a
  /// seccomp filter); the O_NOFOLLOW walk is used from then on.
  mutable std::atomic<bool> use_openat2_{true};
};

}  // namespace stowage::store::local
