// SPDX-License-Identifier: Apache-2.0
#include "stowage/io/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <vector>

namespace stowage::io {

Error errno_error(int err, std::string_view op, const std::filesystem::path& path) {
  ErrorCode code = ErrorCode::IoError;
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      code = ErrorCode::NotFound;
      break;
    case EEXIST:
      code = ErrorCode::AlreadyExists;
      break;
    case EACCES:
    case EPERM:
      code = ErrorCode::PermissionDenied;
      break;
    case ENOSPC:
    case EDQUOT:
      code = ErrorCode::TooLarge;
      break;
    case ELOOP:
    case ENAMETOOLONG:
    case EISDIR:
      code = ErrorCode::InvalidArgument;
      break;
    default:
      break;
  }
  return make_error(code, std::string(op) + " " + path.string() + ": " + std::strerror(err));
}

File::~File() {
  if (fd_ >= 0) ::close(fd_);
}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Result<File> File::open_read(const std::filesystem::path& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno_error(errno, "open", path);
  return File(fd);
}

Result<File> File::create_exclusive(const std::filesystem::path& path, int mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno_error(errno, "create", path);
  return File(fd);
}

Result<std::size_t> File::read(std::span<std::byte> out) {
  for (;;) {
    const ssize_t n = ::read(fd_, out.data(), out.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return errno_error(errno, "read", "fd " + std::to_string(fd_));
  }
}

Result<std::size_t> File::read_at(std::uint64_t offset, std::span<std::byte> out) const {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n =
        ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, "pread", "fd " + std::to_string(fd_));
    }
    done += static_cast<std::size_t>(n);
  }
  return done;
}

Result<std::size_t> FileRandomReader::read_at(std::uint64_t offset, std::span<std::byte> out) {
  if (offset >= size_) return std::size_t{0};
  if (out.size() > size_ - offset) out = out.first(static_cast<std::size_t>(size_ - offset));
  return file_.read_at(offset, out);
}

Status File::write_all(std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, "write", "fd " + std::to_string(fd_));
    }
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
  return {};
}

Status File::sync() {
  if (::fsync(fd_) != 0) return errno_error(errno, "fsync", "fd " + std::to_string(fd_));
  return {};
}

void File::start_writeback(std::uint64_t offset, std::uint64_t length) noexcept {
  (void)::sync_file_range(fd_, static_cast<off64_t>(offset), static_cast<off64_t>(length),
                          SYNC_FILE_RANGE_WRITE);
}

Result<std::uint64_t> File::size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return errno_error(errno, "fstat", "fd " + std::to_string(fd_));
  return static_cast<std::uint64_t>(st.st_size);
}

Status File::close() {
  if (fd_ < 0) return {};
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0 && errno != EINTR)
    return errno_error(errno, "close", "fd " + std::to_string(fd));
  return {};
}

Status sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error(errno, "open directory", dir);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return errno_error(err, "fsync directory", dir);
  return {};
}

std::filesystem::path unique_temp_path(const std::filesystem::path& dir, std::string_view stem) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string suffix(16, '0');
  std::uint64_t r = rng();
  for (char& c : suffix) {
    c = kHex[r & 0xf];
    r >>= 4;
  }
  return dir / (std::string(stem) + "." + suffix + ".tmp");
}

Status create_directories_durable(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return {};
  const auto parent = dir.parent_path();
  if (!parent.empty() && parent != dir) STOWAGE_TRY(create_directories_durable(parent));
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return errno_error(errno, "mkdir", dir);
  if (!parent.empty()) STOWAGE_TRY(sync_directory(parent));
  return {};
}

Status publish(const std::filesystem::path& temp_path, const std::filesystem::path& final_path) {
  const auto dir = final_path.parent_path();
  STOWAGE_TRY(create_directories_durable(dir));
  if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    return errno_error(errno, "rename", final_path);
  }
  STOWAGE_TRY(sync_directory(dir));
  const auto temp_dir = temp_path.parent_path();
  if (temp_dir != dir) STOWAGE_TRY(sync_directory(temp_dir));
  return {};
}

}  // namespace stowage::io
