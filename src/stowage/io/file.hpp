// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <utility>

#include "stowage/base/error.hpp"
#include "stowage/io/stream.hpp"

namespace stowage::io {

/// An open POSIX file descriptor, closed on destruction. Blocking I/O; EINTR is retried.
class File {
 public:
  File() = default;
  explicit File(int fd) noexcept : fd_(fd) {}
  ~File();
  File(File&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  /// Opens for reading. NotFound when absent.
  static Result<File> open_read(const std::filesystem::path& path);
  /// Creates a new file for writing; AlreadyExists when the path exists.
  static Result<File> create_exclusive(const std::filesystem::path& path, int mode = 0644);

  /// Reads up to out.size() bytes at the current offset; 0 at EOF.
  Result<std::size_t> read(std::span<std::byte> out);
  /// Reads up to out.size() bytes at `offset`, without moving the file offset; fewer only at EOF.
  Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) const;
  /// Writes every byte (loops over short writes).
  Status write_all(std::span<const std::byte> bytes);
  /// fsync(2).
  Status sync();
  /// Asks the kernel to start writing [offset, offset + length) to disk now, without waiting
  /// (sync_file_range SYNC_FILE_RANGE_WRITE): a large file written this way as it streams
  /// leaves little for the final sync(). Best effort; never fails the caller.
  void start_writeback(std::uint64_t offset, std::uint64_t length) noexcept;
  Result<std::uint64_t> size() const;
  Status close();

  int fd() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

/// Random access over an open file of known size; pread(2) on one descriptor is thread-safe.
class FileRandomReader final : public RandomAccessReader {
 public:
  FileRandomReader(File file, std::uint64_t size) : file_(std::move(file)), size_(size) {}
  Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override;
  std::uint64_t size() const override { return size_; }

 private:
  File file_;
  std::uint64_t size_;
};

/// fsync(2) on a directory, so that a rename or unlink in it survives a crash.
Status sync_directory(const std::filesystem::path& dir);

/// A fresh path in `dir` that no other caller will get: `<dir>/<stem>.<random hex>.tmp`.
std::filesystem::path unique_temp_path(const std::filesystem::path& dir, std::string_view stem);

/// Makes a finished temp file visible at `final_path` atomically: fsync(file) must already be
/// done; this renames it and fsyncs the directory. The parent directories are created (and
/// fsynced) as needed.
Status publish(const std::filesystem::path& temp_path, const std::filesystem::path& final_path);

/// Creates the directory and its missing parents, fsyncing each parent that gained an entry.
Status create_directories_durable(const std::filesystem::path& dir);

/// An IoError for the failed syscall, with the operation and the path: "open /x: No such file".
Error errno_error(int err, std::string_view op, const std::filesystem::path& path);

}  // namespace stowage::io
