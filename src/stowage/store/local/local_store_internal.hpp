// SPDX-License-Identifier: Apache-2.0
// Private to store/local (and its tests): path resolution that cannot leave a folder.
#pragma once

#include <string_view>

namespace stowage::store::local::internal {

/// How open_beneath() keeps a path inside its folder.
enum class Beneath {
  /// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS: symlinks are followed while they
  /// stay inside the folder. Returns -ENOSYS on kernels older than 5.6 (or under a seccomp filter
  /// that hides the syscall).
  kOpenat2,
  /// One openat(2) per segment with O_NOFOLLOW: any symlink is refused. Works everywhere.
  kWalk,
};

/// Opens `rel` (a validated '/'-separated relative path, or "" for the folder itself) beneath the
/// folder `dir_fd` with `flags` (O_CLOEXEC is added). Returns a file descriptor the caller owns,
/// or -errno; -EXDEV means the path would leave the folder (through "..", an absolute symlink or
/// a symlink pointing outside; with kWalk, through any symlink). Blocking; thread-safe.
int open_beneath(int dir_fd, std::string_view rel, int flags, Beneath how);

}  // namespace stowage::store::local::internal
