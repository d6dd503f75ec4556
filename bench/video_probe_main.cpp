// SPDX-License-Identifier: Apache-2.0
// stowage_video_probe: media::probe_video() (or decode_video_frame()) on one local file, as
// bench/video.sh measures it against ffprobe. Not installed; built only for the bench.
//
//   stowage_video_probe FILE                      probe; one JSON object on stdout
//   stowage_video_probe --timecodes FILE          ... with every video frame's time
//   stowage_video_probe --frame 33p [--stream 0] FILE   decode one frame; its size and time
#include <fcntl.h>
#include <spdlog/cfg/env.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "stowage/media/video.hpp"

namespace {

namespace json = boost::json;
using stowage::Result;

/// pread(2) over a file, counting what the probe asks for (to cross-check its bytes_read).
class FileReader final : public stowage::io::RandomAccessReader {
 public:
  explicit FileReader(int fd)
      : fd_(fd), size_(static_cast<std::uint64_t>(::lseek(fd, 0, SEEK_END))) {}
  ~FileReader() override { ::close(fd_); }
  Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    std::size_t done = 0;
    while (done < out.size()) {
      const ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) return stowage::make_error(stowage::ErrorCode::IoError, std::strerror(errno));
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    requests_ += 1;
    bytes_ += done;
    return done;
  }
  std::uint64_t size() const override { return size_; }
  std::uint64_t requests() const { return requests_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  int fd_;
  std::uint64_t size_;
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> bytes_{0};
};

int usage() {
  std::fputs("usage: stowage_video_probe [--timecodes] [--frame POS [--stream N]] FILE\n", stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::cfg::load_env_levels();  // SPDLOG_LEVEL=debug shows FFmpeg's messages
  bool timecodes = false;
  std::string frame;
  int stream = 0;
  const char* path = nullptr;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--timecodes") {
      timecodes = true;
    } else if (arg == "--frame" && i + 1 < argc) {
      frame = argv[++i];
    } else if (arg == "--stream" && i + 1 < argc) {
      stream = std::atoi(argv[++i]);
    } else if (!arg.starts_with("-") && path == nullptr) {
      path = argv[i];
    } else {
      return usage();
    }
  }
  if (path == nullptr) return usage();
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "%s: %s\n", path, std::strerror(errno));
    return 1;
  }
  FileReader reader(fd);
  json::object out;
  const auto t0 = std::chrono::steady_clock::now();
  if (!frame.empty()) {
    auto where = stowage::media::FramePosition::parse(frame);
    if (!where) {
      std::fprintf(stderr, "%s\n", where.error().to_string().c_str());
      return 2;
    }
    auto decoded = stowage::media::decode_video_frame(reader, stream, *where);
    if (!decoded) {
      std::fprintf(stderr, "%s\n", decoded.error().to_string().c_str());
      return 1;
    }
    out["width"] = decoded->width;
    out["height"] = decoded->height;
    out["time"] = decoded->time.count();
  } else {
    auto meta = stowage::media::probe_video(reader);
    if (!meta) {
      std::fprintf(stderr, "%s\n", meta.error().to_string().c_str());
      return 1;
    }
    out["mime"] = meta->mime;
    out["format_name"] = meta->format_name;
    out["duration"] = meta->duration.count();
    out["bytes_read"] = meta->bytes_read;
    json::array streams;
    for (const auto& s : meta->streams) {
      json::object o;
      o["index"] = s.index;
      o["codec_type"] = s.codec_type;
      o["codec_name"] = s.codec_name;
      if (s.width) o["width"] = *s.width;
      if (s.height) o["height"] = *s.height;
      o["duration"] = s.duration.count();
      o["frame_rate"] = s.frame_rate;
      o["frames_count"] = s.frames_count;
      if (timecodes) {
        json::array t;
        for (const auto tc : s.frames_to_timecodes) t.emplace_back(tc.count());
        o["frames_to_timecodes"] = std::move(t);
      }
      streams.push_back(std::move(o));
    }
    out["streams"] = std::move(streams);
  }
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
  out["seconds"] = took.count();
  out["size"] = reader.size();
  out["source_bytes"] = reader.bytes();
  out["source_requests"] = reader.requests();
  std::puts(json::serialize(out).c_str());
  return 0;
}
