// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "stowage/base/error.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace stowage::io {

/// The default chunk that streaming code reads and writes at a time; one chunk per call bounds
/// memory, and not asking for the next chunk is the backpressure.
inline constexpr std::size_t kDefaultChunkBytes = 1 << 20;

/// A forward-only byte stream. Blocking; one thread at a time.
class Reader {
 public:
  virtual ~Reader() = default;
  /// Reads up to out.size() bytes. Returns 0 only at end of stream.
  virtual Result<std::size_t> read(std::span<std::byte> out) = 0;
  /// Total bytes this reader will yield, when known in advance.
  virtual std::optional<std::uint64_t> size() const = 0;
};

/// Reads at any offset. Blocking; safe from several threads at once.
class RandomAccessReader {
 public:
  virtual ~RandomAccessReader() = default;
  /// Reads up to out.size() bytes at `offset`; fewer only at the end of the object.
  virtual Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) = 0;
  virtual std::uint64_t size() const = 0;
};

/// Reads `reader` to the end into `sink(std::span<const std::byte>) -> Status`, one chunk at a
/// time. Returns the number of bytes copied.
template <class Sink>
Result<std::uint64_t> drain(Reader& reader, Sink&& sink, std::span<std::byte> buffer) {
  std::uint64_t total = 0;
  for (;;) {
    STOWAGE_ASSIGN_OR_RETURN(std::size_t n, reader.read(buffer));
    if (n == 0) return total;
    STOWAGE_TRY(sink(std::span<const std::byte>(buffer.data(), n)));
    total += n;
  }
}

}  // namespace stowage::io
