// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace stowage::io {

/// An incremental SHA-256 (OpenSSL EVP). Feed it as bytes stream past; not thread-safe.
class Sha256 {
 public:
  using Digest = std::array<unsigned char, 32>;

  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(std::span<const std::byte> bytes);
  void update(std::string_view text);
  /// Finishes the hash; the object must not be updated afterwards.
  Digest finish();

  /// One-shot helpers.
  static Digest of(std::span<const std::byte> bytes);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Lower-case hex of the bytes.
std::string to_hex(std::span<const unsigned char> bytes);
/// Standard base64 with padding (RFC 4648 section 4), as the Supervisely SDK hashes files.
std::string to_base64(std::span<const unsigned char> bytes);
/// Decodes standard base64; returns an empty string for malformed input.
std::string from_base64(std::string_view text);

}  // namespace stowage::io
