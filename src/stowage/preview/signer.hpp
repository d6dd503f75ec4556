// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include "stowage/base/error.hpp"

namespace stowage::preview {

/// Signs preview sources so that a browser `<img>` can show a preview without an API token:
/// `?expires=<unix seconds>&signature=<hex HMAC-SHA256(secret, source "\n" expires)>`. The
/// signature covers the source path only, not the processing options, so one signed URL serves
/// every size of that picture. The secret (32 random bytes) is per instance, kept in a file
/// readable by its owner only, and never printed.
class UrlSigner {
 public:
  /// Reads the secret from `file`, creating it (mode 0600, published atomically) the first time.
  /// Corrupt when the file holds no secret.
  static Result<UrlSigner> load_or_create(const std::filesystem::path& file);
  /// A new random secret (32 bytes as hex), as load_or_create() makes.
  static Result<std::string> make_secret();
  /// A signer with a given secret (a shared one from the catalog, tests).
  explicit UrlSigner(std::string secret) : secret_(std::move(secret)) {}

  /// Signed URLs are handed out valid for at least this long...
  static constexpr std::chrono::seconds kLifetime{24 * 3600};
  /// ...with the expiry rounded up to this step, so that the same picture listed twice within a
  /// step gets the same URL and the browser's cache works.
  static constexpr std::chrono::seconds kStep{3600};

  /// "expires=...&signature=..." for `source` (a "/bucket/key" path), valid from `now` for
  /// kLifetime to kLifetime + kStep.
  std::string query(std::string_view source, std::chrono::system_clock::time_point now) const;
  /// Hex HMAC-SHA256 of source "\n" expires.
  std::string signature(std::string_view source, std::int64_t expires) const;
  /// PermissionDenied when the signature is wrong (compared in constant time) or has expired at
  /// `now`.
  Status verify(std::string_view source, std::string_view expires, std::string_view signature,
                std::chrono::system_clock::time_point now) const;

 private:
  std::string secret_;
};

}  // namespace stowage::preview
