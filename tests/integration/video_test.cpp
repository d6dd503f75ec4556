// SPDX-License-Identifier: Apache-2.0
// Issue 9: media::probe_video() and decode_video_frame() against ffprobe and ffmpeg. The clips
// are made at run time with the ffmpeg command, and every expected value (codecs, sizes,
// durations, frame counts, frame times, pixels) is what ffprobe/ffmpeg say about the same file.
// Without ffmpeg the tests skip, and fail when CI=true.
#include "stowage/media/video.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "stowage/media/probe.hpp"
#include "stowage/preview/options.hpp"
#include "stowage/preview/render.hpp"

namespace stowage::media {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// ---- helpers
// -------------------------------------------------------------------------------------

std::string quote(const std::string& s) { return "'" + s + "'"; }

/// Runs a shell command; its stdout, or nullopt when it fails.
std::optional<std::string> run(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string out;
  char buffer[65536];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  if (::pclose(pipe) != 0) return std::nullopt;
  return out;
}

bool have_ffmpeg() {
  static const bool have =
      run("ffmpeg -version >/dev/null 2>&1 && ffprobe -version >/dev/null 2>&1").has_value();
  return have;
}

#define REQUIRE_FFMPEG()                                                         \
  do {                                                                           \
    if (!have_ffmpeg()) {                                                        \
      if (const char* ci = std::getenv("CI"); ci && std::string(ci) == "true") { \
        FAIL() << "ffmpeg/ffprobe are missing (scripts/install-deps.sh)";        \
      }                                                                          \
      GTEST_SKIP() << "ffmpeg/ffprobe are missing (scripts/install-deps.sh)";    \
    }                                                                            \
  } while (false)

/// pread(2) over a file; counts the bytes it hands out, to check probe_video's bytes_read.
class FileReader final : public io::RandomAccessReader {
 public:
  explicit FileReader(const fs::path& path) : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error("open " + path.string());
    struct stat st {};
    ::fstat(fd_, &st);
    size_ = static_cast<std::uint64_t>(st.st_size);
  }
  ~FileReader() override { ::close(fd_); }
  Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    std::size_t done = 0;
    while (done < out.size()) {
      const ssize_t n =
          ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) return make_error(ErrorCode::IoError, "pread");
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    bytes_ += done;
    return done;
  }
  std::uint64_t size() const override { return size_; }
  std::uint64_t bytes() const { return bytes_; }

 private:
  int fd_;
  std::uint64_t size_ = 0;
  std::atomic<std::uint64_t> bytes_{0};
};

/// A reader whose reads fail from the n-th on, as a remote store's would.
class FailingReader final : public io::RandomAccessReader {
 public:
  FailingReader(io::RandomAccessReader& inner, int ok_reads) : inner_(inner), left_(ok_reads) {}
  Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (left_-- <= 0) return make_error(ErrorCode::Unavailable, "GET: connection reset");
    return inner_.read_at(offset, out);
  }
  std::uint64_t size() const override { return inner_.size(); }

 private:
  io::RandomAccessReader& inner_;
  std::atomic<int> left_;
};

/// The clips, made once per test program in a temp dir.
class Clips {
 public:
  static Clips& get() {
    static Clips clips;
    return clips;
  }
  const fs::path& dir() const { return dir_; }

  /// The path of clip `name`, made with `ffmpeg -nostdin -v error -y <args> <path>` on first use.
  fs::path make(const std::string& name, const std::string& args) {
    std::lock_guard lock(mutex_);
    const fs::path path = dir_ / name;
    if (!fs::exists(path)) {
      const std::string cmd =
          "ffmpeg -nostdin -v error -y " + args + " " + quote(path.string()) + " 2>&1";
      if (!run(cmd)) throw std::runtime_error("ffmpeg failed: " + cmd);
    }
    return path;
  }

 private:
  Clips() {
    char tmpl[] = "/tmp/stowage-video-test.XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~Clips() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
  std::mutex mutex_;
};

constexpr const char* kTestsrc = "-f lavfi -i testsrc=size=320x240:rate=25 ";
constexpr const char* kSine = "-f lavfi -i sine=frequency=440:sample_rate=44100 ";

/// A copy of the first `bytes` of `from`.
fs::path cut(const fs::path& from, std::uint64_t bytes, const std::string& name) {
  const fs::path to = Clips::get().dir() / name;
  std::ifstream in(from, std::ios::binary);
  std::string data(bytes, '\0');
  in.read(data.data(), static_cast<std::streamsize>(bytes));
  std::ofstream(to, std::ios::binary).write(data.data(), in.gcount());
  return to;
}

json::value ffprobe_json(const fs::path& file, const std::string& what) {
  auto out = run("ffprobe -v error " + what + " -of json " + quote(file.string()));
  if (!out) throw std::runtime_error("ffprobe failed on " + file.string());
  return json::parse(*out);
}

double number(const json::value& v) {
  if (v.is_string()) return std::stod(std::string(v.as_string()));
  return v.to_number<double>();
}

/// ffprobe's presentation times of a stream's shown packets, from the stream's start, sorted.
std::vector<double> ffprobe_timecodes(const fs::path& file, int stream, double start) {
  const auto doc = ffprobe_json(file, "-select_streams " + std::to_string(stream) +
                                          " -show_entries packet=pts_time,dts_time,flags");
  std::vector<double> times;
  for (const auto& p : doc.at("packets").as_array()) {
    const auto& o = p.as_object();
    if (o.contains("flags") &&
        std::string(o.at("flags").as_string()).find('D') != std::string::npos)
      continue;  // an edit list's pre-roll: decoded, never shown
    const json::value* t = o.if_contains("pts_time");
    if (t == nullptr) t = o.if_contains("dts_time");
    times.push_back(number(*t) - start);
  }
  std::sort(times.begin(), times.end());
  return times;
}

/// Asserts probe_video() says what `ffprobe -count_frames -show_streams -show_format` and the
/// packets' pts_time say about `file`.
void expect_matches_ffprobe(const fs::path& file, const std::string& mime) {
  SCOPED_TRACE(file.filename().string());
  FileReader reader(file);
  auto meta = probe_video(reader);
  ASSERT_TRUE(meta) << meta.error().to_string();
  EXPECT_EQ(meta->mime, mime);
  EXPECT_EQ(meta->bytes_read, reader.bytes());
  EXPECT_EQ(meta->size_bytes, fs::file_size(file));

  const auto doc = ffprobe_json(file, "-count_frames -show_streams -show_format");
  const auto& format = doc.at("format").as_object();
  EXPECT_EQ(meta->format_name, std::string(format.at("format_name").as_string()));
  EXPECT_NEAR(meta->duration.count(), number(format.at("duration")), 1e-3);

  const auto& streams = doc.at("streams").as_array();
  ASSERT_EQ(meta->streams.size(), streams.size());
  int videos = 0;
  for (std::size_t i = 0; i < streams.size(); ++i) {
    const auto& want = streams[i].as_object();
    const VideoStream& got = meta->streams[i];
    SCOPED_TRACE("stream " + std::to_string(i));
    EXPECT_EQ(got.index, want.at("index").to_number<int>());
    EXPECT_EQ(got.codec_type, std::string(want.at("codec_type").as_string()));
    EXPECT_EQ(got.codec_name, std::string(want.at("codec_name").as_string()));
    if (got.codec_type == "audio") {
      EXPECT_EQ(got.sample_rate, std::stoi(std::string(want.at("sample_rate").as_string())));
      EXPECT_EQ(got.channels, want.at("channels").to_number<int>());
    }
    if (got.codec_type != "video") continue;
    ++videos;
    EXPECT_EQ(got.width, want.at("width").to_number<int>());
    EXPECT_EQ(got.height, want.at("height").to_number<int>());
    const std::int64_t frames = std::stoll(std::string(want.at("nb_read_frames").as_string()));
    EXPECT_EQ(got.frames_count, frames);
    if (want.contains("duration")) {
      EXPECT_NEAR(got.duration.count(), number(want.at("duration")), 1e-3);
    }
    const std::string rate(want.at("avg_frame_rate").as_string());
    if (const auto slash = rate.find('/');
        slash != std::string::npos && rate.substr(slash) != "/0") {
      EXPECT_NEAR(got.frame_rate,
                  std::stod(rate.substr(0, slash)) / std::stod(rate.substr(slash + 1)), 1e-6);
    }
    const double start = want.contains("start_time") ? number(want.at("start_time")) : 0.0;
    EXPECT_NEAR(got.start_time.count(), start, 1e-6);
    const auto times = ffprobe_timecodes(file, got.index, start);
    ASSERT_EQ(got.frames_to_timecodes.size(), times.size());
    EXPECT_EQ(static_cast<std::int64_t>(times.size()), frames);
    for (std::size_t f = 0; f < times.size(); ++f) {
      // ffprobe prints microseconds
      ASSERT_NEAR(got.frames_to_timecodes[f].count(), times[f], 1e-6) << "frame " << f;
    }
  }
  EXPECT_GT(videos, 0);
}

// ---- probe_video against ffprobe
// -----------------------------------------------------------------

struct ClipCase {
  std::string name;
  std::string args;  ///< ffmpeg's arguments before the output path
  std::string mime;
};

/// The clip's name in test names and ctest's listing, rather than the struct's bytes.
void PrintTo(const ClipCase& c, std::ostream* os) { *os << c.name; }

class ProbeMatchesFfprobe : public ::testing::TestWithParam<ClipCase> {};

TEST_P(ProbeMatchesFfprobe, StreamsFramesAndTimecodes) {
  REQUIRE_FFMPEG();
  const ClipCase& c = GetParam();
  expect_matches_ffprobe(Clips::get().make(c.name, c.args), c.mime);
}

const std::string kH264 = std::string(kTestsrc) + "-t 2 -c:v libx264 -pix_fmt yuv420p ";
const std::string kH264Audio =
    std::string(kTestsrc) + kSine + "-t 2 -c:v libx264 -pix_fmt yuv420p -c:a aac ";
// Every third frame dropped, the gaps kept: a variable frame rate.
const std::string kVfr =
    std::string(kTestsrc) + "-t 3 -vf select='not(eq(mod(n\\,3)\\,1))' -vsync vfr -c:v libx264 ";
const std::string kVp8Opus =
    std::string(kTestsrc) + kSine + "-t 2 -c:v libvpx -deadline realtime -cpu-used 8 -c:a libopus ";

INSTANTIATE_TEST_SUITE_P(
    Clips, ProbeMatchesFfprobe,
    ::testing::Values(
        ClipCase{"h264.mp4", kH264, "video/mp4"},  // B-frames: pts != dts
        ClipCase{"h264_aac_faststart.mp4", (kH264Audio + "-movflags +faststart"), "video/mp4"},
        ClipCase{"mpeg4.mp4", (std::string(kTestsrc) + "-t 2 -c:v mpeg4"), "video/mp4"},
        ClipCase{"h264.mov", kH264, "video/quicktime"}, ClipCase{"h264.3gp", kH264, "video/3gpp"},
        ClipCase{"vfr.mp4", kVfr, "video/mp4"}, ClipCase{"vfr.mkv", kVfr, "video/x-matroska"},
        ClipCase{"h264_aac.mkv", kH264Audio, "video/x-matroska"},
        ClipCase{"vp8_opus.webm", kVp8Opus, "video/webm"},
        ClipCase{"mpeg4.avi", (std::string(kTestsrc) + "-t 2 -c:v mpeg4"), "video/x-msvideo"},
        ClipCase{"flv1.flv", (std::string(kTestsrc) + "-t 2 -c:v flv"), "video/x-flv"},
        ClipCase{"wmv2.wmv", (std::string(kTestsrc) + "-t 2 -c:v wmv2"), "video/x-ms-asf"}),
    [](const auto& info) {
      std::string name = info.param.name;
      std::replace(name.begin(), name.end(), '.', '_');
      return name;
    });

TEST(Probe, EditListPrerollIsNotAFrame) {
  REQUIRE_FFMPEG();
  // A copy started between keyframes: the frames before the start are decoded, never shown,
  // and ffprobe flags their packets D (discard).
  const auto src = Clips::get().make("h264.mp4", kH264);
  const auto cut_copy = Clips::get().make(
      "edit_list.mp4", "-ss 0.5 -i " + quote(src.string()) + " -c copy -avoid_negative_ts 0");
  expect_matches_ffprobe(cut_copy, "video/mp4");
}

TEST(Probe, LiveWebmWithUnknownSizesIsReadToItsEnd) {
  REQUIRE_FFMPEG();
  // Written to a pipe, as a browser's MediaRecorder does: no segment size, no cues.
  const fs::path live = Clips::get().dir() / "live.webm";
  ASSERT_TRUE(run("ffmpeg -nostdin -v error -y " + std::string(kTestsrc) +
                  "-t 2 -c:v libvpx -deadline realtime -cpu-used 8 -f webm pipe:1 > " +
                  quote(live.string())));
  expect_matches_ffprobe(live, "video/webm");
  // Cut in the middle of a cluster, it cannot be told from a complete file: what is there is
  // read, as ffprobe reads it.
  const auto cut_live = cut(live, fs::file_size(live) / 2, "live_cut.webm");
  expect_matches_ffprobe(cut_live, "video/webm");
}

// ---- what a moov at the front saves
// --------------------------------------------------------------

TEST(Probe, FaststartMp4IsProbedFromAFewPercentOfItsBytes) {
  REQUIRE_FFMPEG();
  const std::string args =
      "-f lavfi -i testsrc2=size=640x480:rate=30 -f lavfi -i sine -t 12 -c:v libx264 "
      "-preset ultrafast -c:a aac ";
  const auto front = Clips::get().make("large_faststart.mp4", args + "-movflags +faststart");
  const auto end = Clips::get().make("large_moov_at_end.mp4", args);
  for (const auto& file : {front, end}) {
    SCOPED_TRACE(file.filename().string());
    const std::uint64_t size = fs::file_size(file);
    ASSERT_GT(size, 3u << 20) << "the clip should be several MB";
    expect_matches_ffprobe(file, "video/mp4");
    FileReader reader(file);
    auto meta = probe_video(reader);
    ASSERT_TRUE(meta);
    EXPECT_LT(meta->bytes_read, size / 10) << meta->bytes_read << " of " << size;
  }
  FileReader reader(front);
  EXPECT_LE(probe_video(reader)->bytes_read, 256u << 10);  // the moov and the first window
}

// ---- broken, truncated and hostile files --------------------------------------------------------

void expect_invalid(const fs::path& file, const std::string& says) {
  SCOPED_TRACE(file.filename().string());
  FileReader reader(file);
  auto meta = probe_video(reader);
  ASSERT_FALSE(meta) << "probed as " << meta->mime;
  EXPECT_EQ(meta.error().code, ErrorCode::InvalidArgument) << meta.error().to_string();
  EXPECT_NE(meta.error().message.find(says), std::string::npos) << meta.error().message;
}

TEST(ProbeRefuses, WhatIsNotAVideo) {
  REQUIRE_FFMPEG();
  const fs::path empty = Clips::get().dir() / "empty.mp4";
  std::ofstream(empty).close();
  expect_invalid(empty, "empty");

  const fs::path noise = Clips::get().dir() / "noise.mp4";
  {
    std::mt19937 rng(42);
    std::ofstream out(noise, std::ios::binary);
    for (int i = 0; i < 100000; ++i) out.put(static_cast<char>(rng()));
  }
  expect_invalid(noise, "not a video container");

  const auto png = Clips::get().make("frame.png", std::string(kTestsrc) + "-frames:v 1");
  expect_invalid(png, "not a video container");
  // A format FFmpeg reads, but not one of the SDK's video containers: never opened.
  const auto ts = Clips::get().make("h264.ts", kH264);
  expect_invalid(ts, "not a video container");
}

TEST(ProbeRefuses, TruncatedFiles) {
  REQUIRE_FFMPEG();
  // moov at the end, the file cut in half: no index at all, and the mdat runs past the end.
  const auto at_end = Clips::get().make("h264.mp4", kH264);
  expect_invalid(cut(at_end, fs::file_size(at_end) / 2, "half_moov_at_end.mp4"), "truncated");
  // ... cut inside the moov itself.
  expect_invalid(cut(at_end, fs::file_size(at_end) - 200, "cut_moov.mp4"), "truncated");
  // moov at the front, the media cut in half: the index points past the end.
  const auto front =
      Clips::get().make("h264_aac_faststart.mp4", kH264Audio + "-movflags +faststart");
  expect_invalid(cut(front, fs::file_size(front) / 2, "half_faststart.mp4"),
                 "the index points past the end of the file");
  // A WebM cut in the middle of a cluster: its segment declares more bytes than there are.
  const auto webm = Clips::get().make("vp8_opus.webm", kVp8Opus);
  expect_invalid(cut(webm, fs::file_size(webm) / 2, "half.webm"), "truncated");
  const auto mkv = Clips::get().make("h264_aac.mkv", kH264Audio);
  expect_invalid(cut(mkv, fs::file_size(mkv) * 3 / 4, "cut.mkv"), "truncated");
  const auto avi = Clips::get().make("mpeg4.avi", std::string(kTestsrc) + "-t 2 -c:v mpeg4");
  expect_invalid(cut(avi, fs::file_size(avi) / 2, "half.avi"), "truncated");
  // Only the header survives.
  expect_invalid(cut(webm, 100, "head.webm"), "truncated");
}

TEST(ProbeRefuses, PastItsLimits) {
  REQUIRE_FFMPEG();
  const auto mkv = Clips::get().make("h264_aac.mkv", kH264Audio);
  {
    FileReader reader(mkv);
    ProbeLimits limits;
    limits.max_frames = 10;
    auto meta = probe_video(reader, limits);
    ASSERT_FALSE(meta);
    EXPECT_EQ(meta.error().code, ErrorCode::TooLarge) << meta.error().to_string();
  }
  {
    FileReader reader(mkv);
    ProbeLimits limits;
    limits.max_read_bytes = 4096;
    auto meta = probe_video(reader, limits);
    ASSERT_FALSE(meta);
    EXPECT_EQ(meta.error().code, ErrorCode::TooLarge) << meta.error().to_string();
    EXPECT_LE(reader.bytes(), 4096u);
  }
  {
    FileReader reader(mkv);
    ProbeLimits limits;
    limits.max_streams = 1;
    auto meta = probe_video(reader, limits);
    ASSERT_FALSE(meta);
    EXPECT_EQ(meta.error().code, ErrorCode::TooLarge) << meta.error().to_string();
  }
  {
    FileReader reader(mkv);
    ProbeLimits limits;
    limits.time_budget = std::chrono::milliseconds(0);
    auto meta = probe_video(reader, limits);
    ASSERT_FALSE(meta);
    EXPECT_EQ(meta.error().code, ErrorCode::Timeout) << meta.error().to_string();
  }
}

TEST(Probe, AReadErrorIsTheReadersNotTheFiles) {
  REQUIRE_FFMPEG();
  const auto mkv = Clips::get().make("h264_aac.mkv", kH264Audio);
  FileReader file(mkv);
  FailingReader reader(file, 0);
  auto meta = probe_video(reader);
  ASSERT_FALSE(meta);
  EXPECT_EQ(meta.error().code, ErrorCode::Unavailable) << meta.error().to_string();
}

TEST(Probe, ManyAtOnce) {
  REQUIRE_FFMPEG();
  const auto files = {Clips::get().make("h264.mp4", kH264),
                      Clips::get().make("vp8_opus.webm", kVp8Opus),
                      Clips::get().make("h264_aac.mkv", kH264Audio)};
  std::map<fs::path, std::int64_t> frames;
  for (const auto& f : files) {
    FileReader reader(f);
    frames[f] = probe_video(reader)->streams[0].frames_count;
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 5; ++round) {
        for (const auto& f : files) {
          FileReader reader(f);
          auto meta = probe_video(reader);
          if (!meta || meta->streams[0].frames_count != frames[f]) ++mismatches;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Names, VideoExtensionsAndMimes) {
  EXPECT_TRUE(has_video_extension("a/b/clip.MP4"));
  EXPECT_TRUE(has_video_extension("x.webm"));
  EXPECT_FALSE(has_video_extension("x.mp4.png"));
  EXPECT_FALSE(has_video_extension("mp4"));
  EXPECT_TRUE(looks_like_video("video/mp4"));
  EXPECT_TRUE(looks_like_video("Video/webm"));
  EXPECT_TRUE(looks_like_video("clip.mkv"));
  EXPECT_FALSE(looks_like_video("image/png"));
  EXPECT_FALSE(looks_like_video("video/"));
}

// ---- frames
// --------------------------------------------------------------------------------------

TEST(FramePositionParse, PercentOrFrameNumber) {
  auto p = FramePosition::parse("33p").value();
  EXPECT_FALSE(p.is_frame());
  EXPECT_DOUBLE_EQ(p.fraction_value(), 0.33);
  EXPECT_DOUBLE_EQ(FramePosition::parse("100p")->fraction_value(), 1.0);
  auto n = FramePosition::parse("120").value();
  EXPECT_TRUE(n.is_frame());
  EXPECT_EQ(n.frame_number(), 120);
  for (const char* bad : {"", "p", "-1", "101p", "12x", "1.5", "-3p", " 3"}) {
    auto r = FramePosition::parse(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument);
  }
}

/// Frame `n` as `ffmpeg -vf select=eq(n\,N) -f rawvideo -pix_fmt rgb24` gives it.
std::string ffmpeg_frame_rgb(const fs::path& file, std::int64_t n) {
  auto out =
      run("ffmpeg -nostdin -v error -i " + quote(file.string()) + " -vf 'select=eq(n\\," +
          std::to_string(n) + ")' -vsync passthrough -frames:v 1 -f rawvideo -pix_fmt rgb24 -");
  if (!out) throw std::runtime_error("ffmpeg frame failed");
  return *out;
}

double mean_abs_difference(const std::vector<std::byte>& a, const std::string& b) {
  if (a.size() != b.size() || a.empty()) return 1e9;
  double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sum += std::abs(static_cast<int>(a[i]) - static_cast<int>(static_cast<unsigned char>(b[i])));
  }
  return sum / static_cast<double>(a.size());
}

class DecodeMatchesFfmpeg : public ::testing::TestWithParam<ClipCase> {};

TEST_P(DecodeMatchesFfmpeg, FramesByNumberAndByFraction) {
  REQUIRE_FFMPEG();
  const auto file = Clips::get().make(GetParam().name, GetParam().args);
  FileReader probe_reader(file);
  auto meta = probe_video(probe_reader);
  ASSERT_TRUE(meta) << meta.error().to_string();
  const VideoStream& video = meta->streams[0];
  ASSERT_EQ(video.codec_type, "video");
  const auto& times = video.frames_to_timecodes;
  ASSERT_GT(times.size(), 20u);

  std::vector<std::int64_t> numbers = {0, 17, static_cast<std::int64_t>(times.size()) - 1};
  for (const std::int64_t n : numbers) {
    SCOPED_TRACE("frame " + std::to_string(n));
    FileReader reader(file);
    auto frame = decode_video_frame(reader, 0, FramePosition::frame(n));
    ASSERT_TRUE(frame) << frame.error().to_string();
    EXPECT_EQ(frame->width, *video.width);
    EXPECT_EQ(frame->height, *video.height);
    EXPECT_NEAR(frame->time.count(), times[static_cast<std::size_t>(n)].count(), 1e-6);
    EXPECT_LT(mean_abs_difference(frame->rgb, ffmpeg_frame_rgb(file, n)), 2.0);
  }

  // 33p: the frame on screen at a third of the duration, by the probe's frame times.
  FileReader reader(file);
  auto frame = decode_video_frame(reader, 0, FramePosition::parse("33p").value());
  ASSERT_TRUE(frame) << frame.error().to_string();
  const double at = 0.33 * video.duration.count();
  const auto shown =
      std::upper_bound(times.begin(), times.end(), Seconds(at + 1e-9)) - times.begin() - 1;
  ASSERT_GE(shown, 0);
  EXPECT_NEAR(frame->time.count(), times[static_cast<std::size_t>(shown)].count(), 1e-6);
  const auto index =
      std::lower_bound(times.begin(), times.end(), frame->time - Seconds(1e-6)) - times.begin();
  EXPECT_LT(mean_abs_difference(frame->rgb, ffmpeg_frame_rgb(file, index)), 2.0);
}

INSTANTIATE_TEST_SUITE_P(Clips, DecodeMatchesFfmpeg,
                         ::testing::Values(ClipCase{"h264.mp4", kH264, "video/mp4"},
                                           ClipCase{"vp8_opus.webm", kVp8Opus, "video/webm"},
                                           ClipCase{"h264_aac.mkv", kH264Audio, "video/x-matroska"},
                                           // Rows of 606 bytes, a multiple of no SIMD vector.
                                           ClipCase{"odd_width.mkv",
                                                    "-f lavfi -i testsrc=size=202x98:rate=25 -t 2 "
                                                    "-c:v libx264",
                                                    "video/x-matroska"},
                                           ClipCase{"mpeg4.avi",
                                                    (std::string(kTestsrc) + "-t 2 -c:v mpeg4"),
                                                    "video/x-msvideo"}),
                         [](const auto& info) {
                           std::string name = info.param.name;
                           std::replace(name.begin(), name.end(), '.', '_');
                           return name;
                         });

TEST(Decode, RefusesWhatIsNotThere) {
  REQUIRE_FFMPEG();
  const auto file = Clips::get().make("h264_aac.mkv", kH264Audio);
  FileReader reader(file);
  EXPECT_EQ(decode_video_frame(reader, 1, FramePosition::frame(0)).error().code,
            ErrorCode::NotFound);  // the audio stream
  EXPECT_EQ(decode_video_frame(reader, 7, FramePosition::fraction(0.5)).error().code,
            ErrorCode::NotFound);
  EXPECT_EQ(decode_video_frame(reader, 0, FramePosition::frame(1'000'000)).error().code,
            ErrorCode::NotFound);
  EXPECT_EQ(decode_video_frame(reader, 0, FramePosition::fraction(1.5)).error().code,
            ErrorCode::InvalidArgument);
  ProbeLimits small;
  small.max_frame_pixels = 320 * 240 - 1;
  EXPECT_EQ(decode_video_frame(reader, 0, FramePosition::fraction(0.5), small).error().code,
            ErrorCode::TooLarge);
}

TEST(FramePreview, TheSdksVideoPreviewUrl) {
  REQUIRE_FFMPEG();
  const auto file = Clips::get().make("h264.mp4", kH264);
  FileReader reader(file);
  auto frame = decode_video_frame(reader, 0, FramePosition::parse("33p").value());
  ASSERT_TRUE(frame) << frame.error().to_string();
  // video_api's image_preview_url options.
  auto path = preview::parse_preview_path(
      "q/ext:jpeg/resize:fill:300:0:0/q:70/plain/image-converter/videoframe/33p/x.mp4");
  ASSERT_TRUE(path) << path.error().to_string();
  auto jpeg = preview::render_frame_preview(*frame, path->options);
  ASSERT_TRUE(jpeg) << jpeg.error().to_string();
  EXPECT_EQ(jpeg->mime, "image/jpeg");
  auto header = probe_image_buffer(std::as_bytes(std::span(jpeg->bytes)));
  ASSERT_TRUE(header) << header.error().to_string();
  EXPECT_EQ(header->mime, "image/jpeg");
  EXPECT_EQ(header->width, 300);
  EXPECT_EQ(header->height, std::lround(300.0 * frame->height / frame->width));
  EXPECT_EQ(jpeg->width, header->width);
  EXPECT_EQ(jpeg->height, header->height);

  // Turned upright when the stream says so (a box narrower than the frame: no enlargement).
  VideoFrame sideways = *frame;
  sideways.rotation_degrees = 90;
  auto narrow = preview::parse_preview_path("q/ext:png/resize:fit:120:0:0/plain/x.mp4");
  ASSERT_TRUE(narrow);
  auto upright = preview::render_frame_preview(sideways, narrow->options);
  ASSERT_TRUE(upright) << upright.error().to_string();
  EXPECT_EQ(upright->mime, "image/png");
  EXPECT_EQ(upright->width, 120);
  EXPECT_EQ(upright->height, std::lround(120.0 * frame->width / frame->height));

  preview::RenderLimits limits;
  limits.max_pixels = static_cast<std::uint64_t>(frame->width) * frame->height - 1;
  auto refused = preview::render_frame_preview(*frame, path->options, limits);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::TooLarge);

  VideoFrame short_frame = *frame;
  short_frame.rgb.resize(short_frame.rgb.size() / 2);
  EXPECT_EQ(preview::render_frame_preview(short_frame, path->options).error().code,
            ErrorCode::InvalidArgument);
}

}  // namespace
}  // namespace stowage::media
