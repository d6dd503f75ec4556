// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string_view>

namespace stowage::server {

/// The outcome of a Range header against an object of known size (RFC 9110 section 14).
struct RangeRequest {
  enum class Kind {
    Full,           ///< no Range, an unparsable one, or several ranges: send 200 with everything
    Partial,        ///< send 206 with [offset, offset + length)
    Unsatisfiable,  ///< send 416 with `Content-Range: bytes */size`
  };
  Kind kind = Kind::Full;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

/// Interprets `Range: bytes=A-B | A- | -N` for an object of `size` bytes. A syntactically invalid
/// header is ignored (the whole object is sent), as RFC 9110 allows; so is a list of several
/// ranges, which no client of this API sends. A suffix range longer than the object means the
/// whole object; a start at or past the end is unsatisfiable.
RangeRequest parse_range(std::string_view header, std::uint64_t size);

}  // namespace stowage::server
