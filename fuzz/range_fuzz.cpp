// SPDX-License-Identifier: Apache-2.0
// Range headers against objects of any size: a partial answer always lies inside the object.
#include <cstring>

#include "fuzz.hpp"
#include "server/range.hpp"

STOWAGE_FUZZ_TARGET(range) {
  using stowage::server::RangeRequest;
  if (size < 8) return 0;
  std::uint64_t object_size = 0;
  std::memcpy(&object_size, data, 8);
  if (data[0] & 1) object_size %= 1 << 20;  // small objects too, where edges are met
  const auto range = stowage::server::parse_range(stowage::fuzz::text(data + 8, size - 8), object_size);
  if (range.kind == RangeRequest::Kind::Partial) {
    STOWAGE_FUZZ_CHECK(range.length > 0);
    STOWAGE_FUZZ_CHECK(range.offset < object_size);
    STOWAGE_FUZZ_CHECK(range.length <= object_size - range.offset);
  }
  return 0;
}
