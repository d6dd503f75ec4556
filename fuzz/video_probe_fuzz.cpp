// SPDX-License-Identifier: Apache-2.0
// The video probe (FFmpeg's demuxers behind Stowage's AVIO reader) over truncated and garbled
// containers, read through a RandomAccessReader as uploads and links are.
#include <algorithm>
#include <cstring>

#include "fuzz.hpp"
#include "stowage/io/stream.hpp"
#include "stowage/media/video.hpp"

namespace {

class MemoryReader final : public stowage::io::RandomAccessReader {
 public:
  MemoryReader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  stowage::Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset >= size_) return std::size_t{0};
    const std::size_t n = std::min<std::uint64_t>(out.size(), size_ - offset);
    std::memcpy(out.data(), data_ + offset, n);
    return n;
  }
  std::uint64_t size() const override { return size_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
};

}  // namespace

STOWAGE_FUZZ_TARGET(video_probe) {
  MemoryReader reader(data, size);
  auto meta = stowage::media::probe_video(reader);
  if (meta) {
    for (const auto& s : meta->streams) STOWAGE_FUZZ_CHECK(s.index >= 0);
  }
  return 0;
}
