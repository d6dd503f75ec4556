// SPDX-License-Identifier: Apache-2.0
#include "stowage/media/video.hpp"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avstring.h>
#include <libavutil/display.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>

namespace stowage::media {
namespace {

using Clock = std::chrono::steady_clock;

/// The demuxers of the SDK's video extensions (FFmpeg names; a demuxer whose name list holds one
/// of these matches): mov = .mp4 .mov .3gp, matroska = .mkv .webm, asf = .wmv. Nothing else is
/// opened: FFmpeg's other ~300 demuxers (image sequences, playlists, raw streams...) are attack
/// surface that a dataset's videos do not need.
constexpr const char* kDemuxers = "mov,matroska,avi,flv,asf";

/// The read-ahead window: the first read at a new place fetches kMinWindowBytes, and each read
/// that continues where the last one ended doubles the fetch, up to kMaxWindowBytes. A remote
/// reader then sees a handful of requests for a header (moov, EBML head) and megabyte requests
/// for a sequential demux, instead of FFmpeg's 32 KiB reads one by one.
constexpr std::size_t kMinWindowBytes = 64 << 10;
constexpr std::size_t kMaxWindowBytes = io::kDefaultChunkBytes;
/// The first bytes kept for our own look at the container (EBML header, RIFF size).
constexpr std::size_t kHeadBytes = 256;
/// FFmpeg's own AVIOContext buffer (its IO_BUFFER_SIZE); larger reads bypass it.
constexpr int kAvioBufferBytes = 32 << 10;
/// Frames to read past frame n before its presentation time is certain: B-frames are
/// reordered at most 16 frames deep (H.264/HEVC max_dec_frame_buffering).
constexpr std::int64_t kMaxReorderFrames = 16;

// ---- FFmpeg's logging
// ----------------------------------------------------------------------------

/// FFmpeg's last error-level message on this thread: the reason it gives ("moov atom not found")
/// goes into our Error messages. Reset at the start of each public call.
thread_local std::string t_ffmpeg_error;

void log_callback(void* /*avcl*/, int level, const char* fmt, va_list args) {
  if (level > AV_LOG_WARNING) return;
  char line[512];
  std::vsnprintf(line, sizeof line, fmt, args);
  std::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (level <= AV_LOG_ERROR) t_ffmpeg_error.assign(text);
  spdlog::debug("ffmpeg: {}", text);
}

/// FFmpeg writes to stderr by default; a server logs through spdlog, at debug: a broken upload is
/// the caller's error to report, not the server's. Once per process, thread-safe.
void ensure_ffmpeg() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_level(AV_LOG_WARNING);
    av_log_set_callback(log_callback);
  });
}

std::string ffmpeg_reason(int rc) {
  if (!t_ffmpeg_error.empty()) return t_ffmpeg_error;
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(rc, text, sizeof text);
  return text;
}

// ---- the source as an AVIOContext
// ----------------------------------------------------------------

/// A byte range [begin, end).
struct Span {
  std::uint64_t begin;
  std::uint64_t end;
};

/// The reader as FFmpeg sees it: position, read-ahead window, counters, limits. Ranges marked
/// with skip_payloads() read as zeros without touching the source (see count_video_frames()).
/// One thread at a time, like the demuxer that uses it.
class SourceIo {
 public:
  SourceIo(io::RandomAccessReader& source, const ProbeLimits& limits)
      : source_(source),
        size_(source.size()),
        limits_(limits),
        deadline_(Clock::now() + limits.time_budget) {}

  std::uint64_t size() const { return size_; }
  std::uint64_t bytes_read() const { return bytes_read_; }
  /// Why FFmpeg's last call failed when the cause was ours (a read error, a limit), if it was.
  const std::optional<Error>& failure() const { return failure_; }
  bool stopped() {
    if (!failure_ && Clock::now() > deadline_) {
      failure_ = make_error(ErrorCode::Timeout, "video: took longer than " +
                                                    std::to_string(limits_.time_budget.count()) +
                                                    " ms, the limit");
    }
    return failure_.has_value();
  }

  /// The file's first bytes (up to kHeadBytes), kept from the first read at offset 0.
  std::span<const std::byte> head() const { return head_; }

  /// Reads in `spans` (sorted, disjoint) yield zeros from now on; empty to stop.
  void skip_payloads(std::vector<Span> spans) { skip_ = std::move(spans); }

  /// A fresh AVIOContext at offset 0 over this source (owned by the caller: free_avio()).
  AVIOContext* new_avio() {
    pos_ = 0;
    skip_.clear();
    auto* buffer = static_cast<unsigned char*>(av_malloc(kAvioBufferBytes));
    if (buffer == nullptr) return nullptr;
    AVIOContext* avio = avio_alloc_context(buffer, kAvioBufferBytes, 0, this, &SourceIo::read_cb,
                                           nullptr, &SourceIo::seek_cb);
    if (avio == nullptr) av_free(buffer);
    return avio;
  }
  static void free_avio(AVIOContext* avio) {
    if (avio == nullptr) return;
    av_freep(&avio->buffer);
    avio_context_free(&avio);
  }

  static int interrupt_cb(void* self) { return static_cast<SourceIo*>(self)->stopped() ? 1 : 0; }

  /// Reads `out` at `offset` through the window (for the few bytes we parse ourselves), leaving
  /// the demuxer's position where it was.
  Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) {
    const std::uint64_t saved = std::exchange(pos_, offset);
    const auto restore = [&] { pos_ = saved; };
    std::size_t done = 0;
    while (done < out.size()) {
      const int n = read(reinterpret_cast<std::uint8_t*>(out.data() + done),
                         static_cast<int>(std::min<std::size_t>(out.size() - done, 1 << 20)));
      if (n == AVERROR_EOF) break;
      if (n < 0) {
        restore();
        return *failure_;
      }
      done += static_cast<std::size_t>(n);
    }
    restore();
    return done;
  }

 private:
  static int read_cb(void* self, std::uint8_t* buf, int size) {
    return static_cast<SourceIo*>(self)->read(buf, size);
  }
  static std::int64_t seek_cb(void* self, std::int64_t offset, int whence) {
    return static_cast<SourceIo*>(self)->seek(offset, whence);
  }

  std::int64_t seek(std::int64_t offset, int whence) {
    whence &= ~AVSEEK_FORCE;
    std::int64_t base = 0;
    switch (whence) {
      case AVSEEK_SIZE:
        return static_cast<std::int64_t>(size_);
      case SEEK_SET:
        base = 0;
        break;
      case SEEK_CUR:
        base = static_cast<std::int64_t>(pos_);
        break;
      case SEEK_END:
        base = static_cast<std::int64_t>(size_);
        break;
      default:
        return AVERROR(EINVAL);
    }
    if (offset > INT64_MAX - base || base + offset < 0) return AVERROR(EINVAL);
    pos_ = static_cast<std::uint64_t>(base + offset);
    return static_cast<std::int64_t>(pos_);
  }

  int read(std::uint8_t* buf, int size) {
    if (stopped()) return AVERROR_EXIT;
    if (size <= 0) return 0;
    if (pos_ >= size_) return AVERROR_EOF;
    std::size_t want = static_cast<std::size_t>(
        std::min<std::uint64_t>(static_cast<std::uint64_t>(size), size_ - pos_));

    if (!skip_.empty()) {
      auto next = std::upper_bound(skip_.begin(), skip_.end(), pos_,
                                   [](std::uint64_t p, const Span& s) { return p < s.begin; });
      if (next != skip_.begin() && pos_ < std::prev(next)->end) {
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(want, std::prev(next)->end - pos_));
        std::memset(buf, 0, n);
        pos_ += n;
        return static_cast<int>(n);
      }
      if (next != skip_.end()) {
        want = static_cast<std::size_t>(std::min<std::uint64_t>(want, next->begin - pos_));
      }
    }

    if (pos_ >= window_offset_ && pos_ < window_offset_ + window_.size()) {
      const std::size_t at = static_cast<std::size_t>(pos_ - window_offset_);
      const std::size_t n = std::min(want, window_.size() - at);
      std::memcpy(buf, window_.data() + at, n);
      pos_ += n;
      return static_cast<int>(n);
    }

    if (want >= kMaxWindowBytes) {  // a large read goes straight to the caller's buffer
      auto got = fetch(pos_, std::span(reinterpret_cast<std::byte*>(buf), want));
      if (!got) return AVERROR(EIO);
      if (*got == 0) return AVERROR_EOF;
      pos_ += *got;
      return static_cast<int>(*got);
    }

    const bool sequential = !window_.empty() && pos_ == window_offset_ + window_.size();
    next_window_ = sequential ? std::min(next_window_ * 2, kMaxWindowBytes) : kMinWindowBytes;
    std::size_t fetch_bytes = std::max(next_window_, want);
    fetch_bytes = static_cast<std::size_t>(std::min<std::uint64_t>(fetch_bytes, size_ - pos_));
    window_.resize(fetch_bytes);
    window_offset_ = pos_;
    auto got = fetch(pos_, window_);
    if (!got) {
      window_.clear();
      return AVERROR(EIO);
    }
    window_.resize(*got);
    if (*got == 0) return AVERROR_EOF;
    const std::size_t n = std::min(want, *got);
    std::memcpy(buf, window_.data(), n);
    pos_ += n;
    return static_cast<int>(n);
  }

  /// One read from the source, counted and within the byte budget.
  Result<std::size_t> fetch(std::uint64_t offset, std::span<std::byte> out) {
    if (bytes_read_ + out.size() > limits_.max_read_bytes) {
      failure_ = make_error(ErrorCode::TooLarge, "video: reading it would take more than " +
                                                     std::to_string(limits_.max_read_bytes) +
                                                     " bytes, the limit");
      return *failure_;
    }
    auto got = source_.read_at(offset, out);
    if (!got) {
      failure_ = got.error();
      return got.error();
    }
    bytes_read_ += *got;
    if (offset == 0 && head_.empty()) {
      head_.assign(out.begin(),
                   out.begin() + static_cast<std::ptrdiff_t>(std::min(*got, kHeadBytes)));
    }
    return *got;
  }

  io::RandomAccessReader& source_;
  const std::uint64_t size_;
  const ProbeLimits& limits_;
  const Clock::time_point deadline_;
  std::optional<Error> failure_;
  std::uint64_t pos_ = 0;
  std::uint64_t bytes_read_ = 0;
  std::vector<std::byte> window_;
  std::uint64_t window_offset_ = 0;
  std::size_t next_window_ = kMinWindowBytes;
  std::vector<Span> skip_;
  std::vector<std::byte> head_;
};

// ---- a demuxer over the source ------------------------------------------------------------------

/// FFmpeg may open other files from a container (QuickTime data references, HLS, concat...);
/// a stored object may not make the server read anything else.
int refuse_io_open(AVFormatContext* /*s*/, AVIOContext** /*pb*/, const char* /*url*/, int /*flags*/,
                   AVDictionary** /*options*/) {
  return AVERROR(EPERM);
}

/// An open demuxer; closes the format context and then its AVIOContext.
class Container {
 public:
  Container() = default;
  Container(Container&& o) noexcept
      : fmt_(std::exchange(o.fmt_, nullptr)), avio_(std::exchange(o.avio_, nullptr)) {}
  Container& operator=(Container&&) = delete;
  ~Container() {
    if (fmt_ != nullptr) avformat_close_input(&fmt_);
    SourceIo::free_avio(avio_);
  }

  AVFormatContext* get() const { return fmt_; }
  AVFormatContext* operator->() const { return fmt_; }

  /// Opens the container in `io` (one of kDemuxers) and reads its stream parameters.
  static Result<Container> open(SourceIo& io, const ProbeLimits& limits);

 private:
  AVFormatContext* fmt_ = nullptr;
  AVIOContext* avio_ = nullptr;
};

bool is_mov(const AVFormatContext* fmt) {
  return std::string_view(fmt->iformat->name).starts_with("mov,");
}

/// What the first bytes of a Matroska file say: its EBML header's DocType and where its
/// Segment ends (unset for a live recording's "unknown" size).
struct MatroskaHead {
  std::string doc_type;
  std::optional<std::uint64_t> segment_end;
};

MatroskaHead read_matroska_head(std::span<const std::byte> head) {
  MatroskaHead out;
  std::size_t at = 0;
  bool unknown_size = false;
  // An EBML variable-size integer: element IDs keep their length marker, sizes do not.
  auto vint = [&](bool keep_marker) -> std::optional<std::uint64_t> {
    if (at >= head.size()) return std::nullopt;
    const auto first = static_cast<std::uint8_t>(head[at]);
    const int length = std::countl_zero(first) + 1;
    if (length > 8 || at + static_cast<std::size_t>(length) > head.size()) return std::nullopt;
    std::uint64_t value = keep_marker ? first : (first & (0xFFu >> length));
    for (int i = 1; i < length; ++i) value = (value << 8) | static_cast<std::uint8_t>(head[at + i]);
    at += static_cast<std::size_t>(length);
    unknown_size = !keep_marker && value == (std::uint64_t{1} << (7 * length)) - 1;
    return value;
  };
  constexpr std::uint64_t kEbmlHeader = 0x1A45DFA3;
  constexpr std::uint64_t kDocType = 0x4282;
  constexpr std::uint64_t kSegment = 0x18538067;
  if (vint(true) != kEbmlHeader) return out;
  const auto header_size = vint(false);
  if (!header_size || *header_size > head.size() - at) return out;
  const std::size_t header_end = at + static_cast<std::size_t>(*header_size);
  while (at < header_end) {
    const auto id = vint(true);
    const auto size = vint(false);
    // The element's own id and size may already run past the header (fuzzing found it).
    if (!id || !size || at > header_end || *size > header_end - at) return out;
    if (*id == kDocType) {
      out.doc_type.assign(reinterpret_cast<const char*>(head.data() + at),
                          static_cast<std::size_t>(*size));
    }
    at += static_cast<std::size_t>(*size);
  }
  if (vint(true) != kSegment) return out;
  const auto segment_size = vint(false);
  if (segment_size && !unknown_size) out.segment_end = at + *segment_size;
  return out;
}

std::uint32_t be32(const std::byte* p) {
  return (std::uint32_t{static_cast<std::uint8_t>(p[0])} << 24) |
         (std::uint32_t{static_cast<std::uint8_t>(p[1])} << 16) |
         (std::uint32_t{static_cast<std::uint8_t>(p[2])} << 8) | static_cast<std::uint8_t>(p[3]);
}
std::uint32_t le32(const std::byte* p) {
  return (std::uint32_t{static_cast<std::uint8_t>(p[3])} << 24) |
         (std::uint32_t{static_cast<std::uint8_t>(p[2])} << 16) |
         (std::uint32_t{static_cast<std::uint8_t>(p[1])} << 8) | static_cast<std::uint8_t>(p[0]);
}

/// Fails when a Matroska segment or an AVI's first RIFF chunk declares more bytes than the file
/// has: the file was cut (an upload that stopped half way), and the frames that are there would
/// not cover the duration the header declares. (FFmpeg itself reads what is there and logs
/// "File ended prematurely"; ffprobe then counts the frames before the cut.)
Status check_declared_length(std::string_view name, std::span<const std::byte> head,
                             std::uint64_t file_size) {
  std::optional<std::uint64_t> end;
  std::string_view what;
  if (name.starts_with("matroska")) {
    end = read_matroska_head(head).segment_end;
    what = "the Matroska segment";
  } else if (name == "avi" && head.size() >= 8 && std::memcmp(head.data(), "RIFF", 4) == 0) {
    end = std::uint64_t{8} + le32(head.data() + 4);
    what = "the AVI's RIFF chunk";
  }
  if (end && *end > file_size) {
    return make_error(ErrorCode::InvalidArgument,
                      "truncated: " + std::string(what) + " ends at byte " + std::to_string(*end) +
                          ", past the end of the " + std::to_string(file_size) + "-byte file");
  }
  return {};
}

/// Why an MP4 that FFmpeg cannot open is broken, when a top-level box runs past the end of the
/// file (typically an mdat cut before the moov that follows it); empty otherwise.
std::string mov_truncation(SourceIo& io) {
  std::uint64_t pos = 0;
  for (int box = 0; box < 64 && pos + 8 <= io.size(); ++box) {
    std::array<std::byte, 16> header{};
    auto got = io.read_at(pos, header);
    if (!got || *got < 8) return {};
    std::uint64_t size = be32(header.data());
    if (size == 1) {
      if (*got < 16) return {};
      size = (std::uint64_t{be32(header.data() + 8)} << 32) | be32(header.data() + 12);
    }
    if (size == 0) return {};  // "to the end of the file"
    if (size < 8) return {};
    const std::string type(reinterpret_cast<const char*>(header.data() + 4), 4);
    if (pos + size > io.size()) {
      return "truncated: the '" + type + "' box at byte " + std::to_string(pos) + " declares " +
             std::to_string(size) + " bytes, past the end of the " + std::to_string(io.size()) +
             "-byte file";
    }
    pos += size;
  }
  return {};
}

/// The mime type of the container found: the demuxer, refined by the MP4 brand and the Matroska
/// doc type, which FFmpeg's one demuxer for each family does not tell apart.
std::string container_mime(const AVFormatContext* fmt, std::span<const std::byte> head) {
  const std::string_view name = fmt->iformat->name;
  if (is_mov(fmt)) {
    const AVDictionaryEntry* brand = av_dict_get(fmt->metadata, "major_brand", nullptr, 0);
    const std::string_view b = brand != nullptr ? brand->value : "";
    if (b.empty() || b.starts_with("qt")) return "video/quicktime";
    if (b.starts_with("3gp") || b.starts_with("3ge") || b.starts_with("3gs")) return "video/3gpp";
    if (b.starts_with("3g2")) return "video/3gpp2";
    return "video/mp4";
  }
  if (name.starts_with("matroska")) {
    return read_matroska_head(head).doc_type == "webm" ? "video/webm" : "video/x-matroska";
  }
  if (name == "avi") return "video/x-msvideo";
  if (name == "flv") return "video/x-flv";
  if (name == "asf") return "video/x-ms-asf";
  return "application/octet-stream";
}

/// Our failure when FFmpeg's came from the source or a limit, else InvalidArgument.
Error ffmpeg_failure(const SourceIo& io, int rc, std::string_view what) {
  if (io.failure()) return *io.failure();
  return make_error(ErrorCode::InvalidArgument, std::string(what) + ": " + ffmpeg_reason(rc));
}

Result<Container> Container::open(SourceIo& io, const ProbeLimits& limits) {
  if (io.size() == 0) {
    return make_error(ErrorCode::InvalidArgument, "not a video: the file is empty");
  }
  Container c;
  c.avio_ = io.new_avio();
  if (c.avio_ == nullptr) return make_error(ErrorCode::Internal, "video: out of memory");

  // Which format the bytes are, first, so that a PNG or a PDF is named as what it is.
  const AVInputFormat* format = nullptr;
  int rc = av_probe_input_buffer2(c.avio_, &format, "", nullptr, 0, 0);
  if (rc < 0 || format == nullptr) {
    return ffmpeg_failure(io, rc, "not a video container FFmpeg can read");
  }
  if (av_match_list(format->name, kDemuxers, ',') <= 0) {
    return make_error(ErrorCode::InvalidArgument,
                      std::string("not a video container: the bytes are ") +
                          (format->long_name ? format->long_name : format->name));
  }

  c.fmt_ = avformat_alloc_context();
  if (c.fmt_ == nullptr) return make_error(ErrorCode::Internal, "video: out of memory");
  c.fmt_->pb = c.avio_;
  c.fmt_->flags |= AVFMT_FLAG_CUSTOM_IO;
  c.fmt_->interrupt_callback = {&SourceIo::interrupt_cb, &io};
  c.fmt_->io_open = refuse_io_open;
  c.fmt_->format_whitelist = av_strdup(kDemuxers);
  // One past the limit: FFmpeg fails at its max_streams, and we want to say why ourselves.
  c.fmt_->max_streams = limits.max_streams + 1;
  rc = avformat_open_input(&c.fmt_, nullptr, format, nullptr);  // frees fmt_ on failure
  if (rc < 0) {
    if (io.failure()) return *io.failure();
    // Say "truncated" when the file says so, rather than FFmpeg's view of the symptom.
    const std::string why = ffmpeg_reason(rc);
    std::string cut;
    if (std::string_view(format->name).starts_with("mov,")) {
      cut = mov_truncation(io);
    } else if (auto declared = check_declared_length(format->name, io.head(), io.size());
               !declared) {
      cut = declared.error().message;
    }
    if (!cut.empty()) {
      return make_error(ErrorCode::InvalidArgument, cut + " (FFmpeg: " + why + ")");
    }
    return make_error(ErrorCode::InvalidArgument, "not a video container FFmpeg can read: " + why);
  }
  STOWAGE_TRY(check_declared_length(format->name, io.head(), io.size()));
  if (c.fmt_->nb_streams > static_cast<unsigned>(limits.max_streams)) {
    return make_error(ErrorCode::TooLarge, "video: " + std::to_string(c.fmt_->nb_streams) +
                                               " streams, more than the " +
                                               std::to_string(limits.max_streams) + " allowed");
  }

  // Codec parameters the container does not hold (FLV's, pixel formats) come from the first
  // packets, as ffprobe does it; one decoder thread each, as the server runs many probes.
  std::vector<AVDictionary*> options(c.fmt_->nb_streams, nullptr);
  for (auto& o : options) av_dict_set(&o, "threads", "1", 0);
  rc = avformat_find_stream_info(c.fmt_, options.empty() ? nullptr : options.data());
  for (auto& o : options) av_dict_free(&o);
  if (io.failure()) return *io.failure();
  if (rc < 0) {
    // ffprobe carries on with what the header said; so do we.
    spdlog::debug("video: stream parameters incomplete: {}", ffmpeg_reason(rc));
  }
  if (c.fmt_->nb_streams == 0) {
    return make_error(ErrorCode::InvalidArgument, "not a video: the container holds no stream");
  }
  return c;
}

double seconds_of(std::int64_t ts, AVRational time_base) {
  return static_cast<double>(ts) * av_q2d(time_base);
}

/// Clockwise degrees (0, 90, 180, 270) from the stream's display matrix.
int rotation_of(const AVStream* st) {
  const std::uint8_t* matrix = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, nullptr);
  if (matrix == nullptr) return 0;
  const double ccw = av_display_rotation_get(reinterpret_cast<const std::int32_t*>(matrix));
  if (std::isnan(ccw)) return 0;
  int cw = static_cast<int>(std::lround(-ccw)) % 360;
  if (cw < 0) cw += 360;
  return cw;
}

/// Fails when an MP4's index places a sample past the end of the file: the file was cut.
Status check_index_within_file(const AVFormatContext* fmt, std::uint64_t file_size) {
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    AVStream* st = fmt->streams[i];
    const int count = avformat_index_get_entries_count(st);
    for (int e = 0; e < count; ++e) {
      const AVIndexEntry* entry = avformat_index_get_entry(st, e);
      if (entry->pos < 0 || static_cast<std::uint64_t>(entry->pos) + entry->size > file_size) {
        return make_error(ErrorCode::InvalidArgument,
                          "truncated: the index points past the end of the file (stream " +
                              std::to_string(i) + " has a sample at byte " +
                              std::to_string(entry->pos) + " of a " + std::to_string(file_size) +
                              "-byte file)");
      }
    }
  }
  return {};
}

/// Every sample's bytes in an MP4's index, merged: what skip_payloads() may zero.
std::vector<Span> payload_spans(const AVFormatContext* fmt) {
  std::vector<Span> spans;
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    AVStream* st = fmt->streams[i];
    const int count = avformat_index_get_entries_count(st);
    for (int e = 0; e < count; ++e) {
      const AVIndexEntry* entry = avformat_index_get_entry(st, e);
      if (entry->size > 0 && entry->pos >= 0) {
        spans.push_back({static_cast<std::uint64_t>(entry->pos),
                         static_cast<std::uint64_t>(entry->pos) + entry->size});
      }
    }
  }
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });
  std::vector<Span> merged;
  for (const Span& s : spans) {
    if (!merged.empty() && s.begin <= merged.back().end) {
      merged.back().end = std::max(merged.back().end, s.end);
    } else {
      merged.push_back(s);
    }
  }
  return merged;
}

struct PacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
using PacketPtr = std::unique_ptr<AVPacket, PacketFree>;

/// Demuxes the packets of the streams marked in `wanted` (others are discarded) and calls
/// `on_packet(stream_index, timestamp, packet)` for each one that is shown (not an edit list's
/// pre-roll), until it returns false or the file ends. For an MP4, payloads are not fetched:
/// the demuxer only needs each sample's place, size and times, which the index already holds,
/// and FFmpeg's own packet logic (edit lists, composition offsets) then gives the exact
/// presentation times that ffprobe shows, while a faststart file is read for its moov alone.
template <class OnPacket>
Status walk_packets(SourceIo& io, Container& c, const std::vector<bool>& wanted,
                    OnPacket&& on_packet) {
  AVFormatContext* fmt = c.get();
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    fmt->streams[i]->discard = wanted[i] ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
  }
  if (is_mov(fmt)) {
    STOWAGE_TRY(check_index_within_file(fmt, io.size()));
    io.skip_payloads(payload_spans(fmt));
  }
  PacketPtr pkt(av_packet_alloc());
  if (!pkt) return make_error(ErrorCode::Internal, "video: out of memory");
  std::vector<std::int64_t> last(fmt->nb_streams, 0);
  for (;;) {
    const int rc = av_read_frame(fmt, pkt.get());
    if (rc == AVERROR_EOF) break;
    if (rc < 0) {
      if (io.failure()) return *io.failure();
      return make_error(ErrorCode::InvalidArgument,
                        "truncated or corrupt: cannot read the packets: " + ffmpeg_reason(rc));
    }
    const int index = pkt->stream_index;
    const bool shown = (pkt->flags & AV_PKT_FLAG_DISCARD) == 0;
    if (index >= 0 && static_cast<std::size_t>(index) < wanted.size() && wanted[index] && shown) {
      std::int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
      if (ts == AV_NOPTS_VALUE) ts = last[index];
      last[index] = ts;
      const bool more = on_packet(index, ts);
      av_packet_unref(pkt.get());
      if (!more) break;
    } else {
      av_packet_unref(pkt.get());
    }
  }
  io.skip_payloads({});
  if (io.failure()) return *io.failure();
  return {};
}

std::int64_t stream_start(const AVStream* st) {
  return st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
}

}  // namespace

// ---- names
// ---------------------------------------------------------------------------------------

bool has_video_extension(std::string_view name) {
  const std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return false;
  const std::string_view ext = name.substr(dot);
  return std::any_of(std::begin(kVideoExtensions), std::end(kVideoExtensions),
                     [&](std::string_view known) {
                       return ext.size() == known.size() &&
                              std::equal(ext.begin(), ext.end(), known.begin(), [](char a, char b) {
                                return std::tolower(static_cast<unsigned char>(a)) == b;
                              });
                     });
}

bool looks_like_video(std::string_view mime_or_name) {
  constexpr std::string_view kVideo = "video/";
  if (mime_or_name.size() > kVideo.size() &&
      std::equal(kVideo.begin(), kVideo.end(), mime_or_name.begin(),
                 [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); })) {
    return true;
  }
  return has_video_extension(mime_or_name);
}

// ---- probe
// ---------------------------------------------------------------------------------------

Result<VideoMeta> probe_video(io::RandomAccessReader& source, const ProbeLimits& limits) {
  ensure_ffmpeg();
  t_ffmpeg_error.clear();
  SourceIo io(source, limits);
  STOWAGE_ASSIGN_OR_RETURN(Container c, Container::open(io, limits));
  AVFormatContext* fmt = c.get();

  VideoMeta meta;
  meta.format_name = fmt->iformat->name;
  meta.size_bytes = io.size();
  meta.mime = container_mime(fmt, io.head());
  const double container_duration =
      fmt->duration != AV_NOPTS_VALUE ? static_cast<double>(fmt->duration) / AV_TIME_BASE : 0.0;

  std::vector<bool> is_video(fmt->nb_streams, false);
  double longest = 0;
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    const AVStream* st = fmt->streams[i];
    const AVCodecParameters* par = st->codecpar;
    VideoStream s;
    s.index = st->index;
    const char* type = av_get_media_type_string(par->codec_type);
    s.codec_type = type != nullptr ? type : "unknown";
    s.codec_name = avcodec_get_name(par->codec_id);
    if (par->codec_type == AVMEDIA_TYPE_VIDEO) {
      is_video[i] = (st->disposition & AV_DISPOSITION_ATTACHED_PIC) == 0;  // not cover art
      if (par->width > 0) s.width = par->width;
      if (par->height > 0) s.height = par->height;
      s.rotation_degrees = rotation_of(st);
    } else if (par->codec_type == AVMEDIA_TYPE_AUDIO) {
      if (par->sample_rate > 0) s.sample_rate = par->sample_rate;
      if (par->ch_layout.nb_channels > 0) s.channels = par->ch_layout.nb_channels;
    }
    s.start_time = Seconds(seconds_of(stream_start(st), st->time_base));
    s.duration = Seconds(st->duration != AV_NOPTS_VALUE && st->duration > 0
                             ? seconds_of(st->duration, st->time_base)
                             : container_duration);
    longest = std::max(longest, s.duration.count());
    if (st->avg_frame_rate.den > 0 && st->avg_frame_rate.num > 0) {
      s.frame_rate = av_q2d(st->avg_frame_rate);
    }
    s.frames_count = is_video[i] ? 0 : st->nb_frames;
    meta.streams.push_back(std::move(s));
  }
  meta.duration = Seconds(container_duration > 0 ? container_duration : longest);

  if (std::find(is_video.begin(), is_video.end(), true) != is_video.end()) {
    std::vector<std::vector<std::int64_t>> times(fmt->nb_streams);
    std::int64_t frames = 0;
    bool too_many = false;
    STOWAGE_TRY(walk_packets(io, c, is_video, [&](int index, std::int64_t ts) {
      if (++frames > limits.max_frames) {
        too_many = true;
        return false;
      }
      times[index].push_back(ts);
      return true;
    }));
    if (too_many) {
      return make_error(
          ErrorCode::TooLarge,
          "video: more than " + std::to_string(limits.max_frames) + " frames, the limit");
    }
    for (unsigned i = 0; i < fmt->nb_streams; ++i) {
      if (!is_video[i]) continue;
      auto& ts = times[i];
      std::sort(ts.begin(), ts.end());
      const AVStream* st = fmt->streams[i];
      const std::int64_t start = st->start_time != AV_NOPTS_VALUE ? st->start_time
                                 : ts.empty()                     ? 0
                                                                  : ts.front();
      VideoStream& s = meta.streams[i];
      s.frames_count = static_cast<std::int64_t>(ts.size());
      s.frames_to_timecodes.reserve(ts.size());
      for (const std::int64_t t : ts) {
        s.frames_to_timecodes.emplace_back(seconds_of(t - start, st->time_base));
      }
    }
  }
  meta.bytes_read = io.bytes_read();
  return meta;
}

// ---- frames
// --------------------------------------------------------------------------------------

Result<FramePosition> FramePosition::parse(std::string_view text) {
  const auto bad = [&] {
    return make_error(ErrorCode::InvalidArgument,
                      "video frame position '" + std::string(text) +
                          "': want a frame number (120) or a percentage of the duration (33p)");
  };
  if (text.empty()) return bad();
  if (text.back() == 'p') {
    double percent = -1;
    const char* end = text.data() + text.size() - 1;
    auto [ptr, ec] = std::from_chars(text.data(), end, percent);
    if (ec != std::errc() || ptr != end || !(percent >= 0 && percent <= 100)) return bad();
    return fraction(percent / 100.0);
  }
  std::int64_t n = -1;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || ptr != text.data() + text.size() || n < 0) return bad();
  return frame(n);
}

namespace {

struct CodecFree {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFree {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct SwsFree {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using CodecPtr = std::unique_ptr<AVCodecContext, CodecFree>;
using FramePtr = std::unique_ptr<AVFrame, FrameFree>;

/// The presentation timestamp of frame `n` of stream `index`: the n-th smallest packet time,
/// certain once kMaxReorderFrames more packets have been read. NotFound past the last frame.
Result<std::int64_t> nth_frame_time(SourceIo& io, Container& c, int index, std::int64_t n,
                                    const ProbeLimits& limits) {
  std::vector<bool> wanted(c->nb_streams, false);
  wanted[index] = true;
  std::vector<std::int64_t> times;
  STOWAGE_TRY(walk_packets(io, c, wanted, [&](int, std::int64_t ts) {
    times.push_back(ts);
    return static_cast<std::int64_t>(times.size()) <= n + kMaxReorderFrames &&
           static_cast<std::int64_t>(times.size()) < limits.max_frames;
  }));
  if (n >= static_cast<std::int64_t>(times.size())) {
    return make_error(ErrorCode::NotFound, "video: stream " + std::to_string(index) + " has " +
                                               std::to_string(times.size()) + " frames, no frame " +
                                               std::to_string(n));
  }
  std::nth_element(times.begin(), times.begin() + n, times.end());
  return times[static_cast<std::size_t>(n)];
}

/// The frame as packed RGB24, in the frame's own colour matrix and range (as ffmpeg's scale
/// filter converts it).
Result<VideoFrame> to_rgb(const AVFrame* frame) {
  std::unique_ptr<SwsContext, SwsFree> sws(sws_getContext(
      frame->width, frame->height, static_cast<AVPixelFormat>(frame->format), frame->width,
      frame->height, AV_PIX_FMT_RGB24, SWS_BICUBIC, nullptr, nullptr, nullptr));
  if (!sws) {
    const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format));
    return make_error(ErrorCode::Unsupported, std::string("video: cannot convert pixel format ") +
                                                  (name != nullptr ? name : "?") + " to RGB");
  }
  const int colorspace =
      frame->colorspace == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : frame->colorspace;
  int* inv_table = nullptr;
  int* table = nullptr;
  int src_range = 0;
  int dst_range = 0;
  int brightness = 0;
  int contrast = 0;
  int saturation = 0;
  if (sws_getColorspaceDetails(sws.get(), &inv_table, &src_range, &table, &dst_range, &brightness,
                               &contrast, &saturation) >= 0) {
    if (frame->color_range == AVCOL_RANGE_JPEG) src_range = 1;
    sws_setColorspaceDetails(sws.get(), sws_getCoefficients(colorspace), src_range, table,
                             dst_range, brightness, contrast, saturation);
  }
  VideoFrame out;
  out.width = frame->width;
  out.height = frame->height;
  // swscale's SIMD stores whole vectors: into packed rows whose length is not a multiple of the
  // vector (200 px = 600 bytes) it writes past the end of the last row, corrupting the heap.
  // Convert into rows aligned and padded to kRowAlign, then pack them.
  constexpr int kRowAlign = 64;
  const int row_bytes = frame->width * 3;
  const int stride = (row_bytes + kRowAlign - 1) / kRowAlign * kRowAlign;
  std::vector<std::uint8_t> padded(static_cast<std::size_t>(stride) * frame->height + kRowAlign);
  std::uint8_t* dst[4] = {padded.data(), nullptr, nullptr, nullptr};
  int dst_stride[4] = {stride, 0, 0, 0};
  if (sws_scale(sws.get(), frame->data, frame->linesize, 0, frame->height, dst, dst_stride) !=
      frame->height) {
    return make_error(ErrorCode::Internal, "video: pixel conversion failed");
  }
  out.rgb.resize(static_cast<std::size_t>(row_bytes) * frame->height);
  for (int y = 0; y < frame->height; ++y) {
    std::memcpy(out.rgb.data() + static_cast<std::size_t>(y) * row_bytes,
                padded.data() + static_cast<std::size_t>(y) * stride, row_bytes);
  }
  return out;
}

}  // namespace

Result<VideoFrame> decode_video_frame(io::RandomAccessReader& source, int stream_index,
                                      FramePosition where, const ProbeLimits& limits) {
  ensure_ffmpeg();
  t_ffmpeg_error.clear();
  if (!where.is_frame() && !(where.fraction_value() >= 0 && where.fraction_value() <= 1)) {
    return make_error(ErrorCode::InvalidArgument, "video: a frame position past the duration");
  }
  SourceIo io(source, limits);
  std::int64_t target = 0;
  if (where.is_frame()) {
    // A walk of the packets, then a fresh demuxer for the decode: the walk leaves zeros where
    // it skipped payloads in FFmpeg's buffer, which a seek could land on.
    STOWAGE_ASSIGN_OR_RETURN(Container walk, Container::open(io, limits));
    if (stream_index < 0 || static_cast<unsigned>(stream_index) >= walk->nb_streams ||
        walk->streams[stream_index]->codecpar->codec_type != AVMEDIA_TYPE_VIDEO) {
      return make_error(ErrorCode::NotFound,
                        "video: no video stream " + std::to_string(stream_index));
    }
    STOWAGE_ASSIGN_OR_RETURN(target,
                             nth_frame_time(io, walk, stream_index, where.frame_number(), limits));
  }
  STOWAGE_ASSIGN_OR_RETURN(Container c, Container::open(io, limits));
  if (stream_index < 0 || static_cast<unsigned>(stream_index) >= c->nb_streams ||
      c->streams[stream_index]->codecpar->codec_type != AVMEDIA_TYPE_VIDEO) {
    return make_error(ErrorCode::NotFound,
                      "video: no video stream " + std::to_string(stream_index));
  }
  AVStream* st = c->streams[stream_index];
  const AVCodecParameters* par = st->codecpar;
  const std::uint64_t pixels =
      static_cast<std::uint64_t>(std::max(par->width, 0)) * std::max(par->height, 0);
  if (pixels > limits.max_frame_pixels) {
    return make_error(ErrorCode::TooLarge,
                      "video: frames of " + std::to_string(par->width) + "x" +
                          std::to_string(par->height) + " pixels, more than the " +
                          std::to_string(limits.max_frame_pixels) + " allowed");
  }
  if (!where.is_frame()) {
    std::int64_t duration = st->duration;
    if (duration == AV_NOPTS_VALUE || duration <= 0) {
      duration = c->duration != AV_NOPTS_VALUE
                     ? av_rescale_q(c->duration, AV_TIME_BASE_Q, st->time_base)
                     : 0;
    }
    target = stream_start(st) + static_cast<std::int64_t>(std::floor(
                                    where.fraction_value() * static_cast<double>(duration)));
  }

  const AVCodec* codec = avcodec_find_decoder(par->codec_id);
  if (codec == nullptr) {
    return make_error(ErrorCode::Unsupported,
                      std::string("video: no decoder for ") + avcodec_get_name(par->codec_id));
  }
  CodecPtr dec(avcodec_alloc_context3(codec));
  if (!dec || avcodec_parameters_to_context(dec.get(), par) < 0) {
    return make_error(ErrorCode::Internal, "video: cannot set up the decoder");
  }
  dec->thread_count = 1;
  dec->pkt_timebase = st->time_base;
  dec->max_pixels =
      static_cast<std::int64_t>(std::min<std::uint64_t>(limits.max_frame_pixels, INT64_MAX));
  if (int rc = avcodec_open2(dec.get(), codec, nullptr); rc < 0) {
    return make_error(ErrorCode::Unsupported, std::string("video: cannot open the ") + codec->name +
                                                  " decoder: " + ffmpeg_reason(rc));
  }

  for (unsigned i = 0; i < c->nb_streams; ++i) {
    c->streams[i]->discard =
        static_cast<int>(i) == stream_index ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
  }
  if (av_seek_frame(c.get(), stream_index, target, AVSEEK_FLAG_BACKWARD) < 0) {
    // No index to seek with: decode from the start.
    if (io.failure()) return *io.failure();
    if (av_seek_frame(c.get(), stream_index, INT64_MIN, AVSEEK_FLAG_BACKWARD | AVSEEK_FLAG_ANY) <
            0 &&
        avformat_seek_file(c.get(), -1, INT64_MIN, 0, INT64_MAX, AVSEEK_FLAG_BYTE) < 0) {
      if (io.failure()) return *io.failure();
    }
  }

  PacketPtr pkt(av_packet_alloc());
  FramePtr frame(av_frame_alloc());
  FramePtr best(av_frame_alloc());
  if (!pkt || !frame || !best) return make_error(ErrorCode::Internal, "video: out of memory");
  bool have_best = false;
  int decoded = 0;
  // Takes the frames the decoder has ready; true once the target is in `best`.
  auto drain = [&]() -> Result<bool> {
    for (;;) {
      const int rc = avcodec_receive_frame(dec.get(), frame.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return false;
      if (rc < 0) {
        return make_error(ErrorCode::Corrupt, "video: cannot decode a frame: " + ffmpeg_reason(rc));
      }
      if (++decoded > limits.max_decoded_frames) {
        return make_error(ErrorCode::Corrupt, "video: no frame at the target after " +
                                                  std::to_string(limits.max_decoded_frames) +
                                                  " decoded frames");
      }
      std::int64_t ts = frame->best_effort_timestamp;
      if (ts == AV_NOPTS_VALUE) ts = frame->pts;
      if (ts != AV_NOPTS_VALUE && ts > target) {
        if (!have_best) {
          av_frame_move_ref(best.get(), frame.get());
          have_best = true;
        }
        return true;
      }
      av_frame_unref(best.get());
      av_frame_move_ref(best.get(), frame.get());
      have_best = true;
      if (ts == target) return true;
    }
  };

  bool done = false;
  while (!done) {
    const int rc = av_read_frame(c.get(), pkt.get());
    if (rc == AVERROR_EOF) break;
    if (rc < 0) {
      if (io.failure()) return *io.failure();
      break;  // a cut file: the frames read so far are all there is
    }
    if (pkt->stream_index == stream_index) {
      const int sent = avcodec_send_packet(dec.get(), pkt.get());
      av_packet_unref(pkt.get());
      if (sent < 0 && sent != AVERROR(EAGAIN) && sent != AVERROR_INVALIDDATA) {
        return make_error(ErrorCode::Corrupt, "video: cannot decode: " + ffmpeg_reason(sent));
      }
      STOWAGE_ASSIGN_OR_RETURN(done, drain());
    } else {
      av_packet_unref(pkt.get());
    }
  }
  if (!done) {
    avcodec_send_packet(dec.get(), nullptr);  // the frames still held for reordering
    STOWAGE_ASSIGN_OR_RETURN(done, drain());
  }
  if (io.failure()) return *io.failure();
  if (!have_best) {
    return make_error(ErrorCode::Corrupt, "video: no frame of stream " +
                                              std::to_string(stream_index) + " could be decoded");
  }
  const std::uint64_t frame_pixels = static_cast<std::uint64_t>(best->width) * best->height;
  if (frame_pixels > limits.max_frame_pixels || best->width <= 0 || best->height <= 0) {
    return make_error(ErrorCode::TooLarge, "video: a frame of " + std::to_string(best->width) +
                                               "x" + std::to_string(best->height) + " pixels");
  }
  STOWAGE_ASSIGN_OR_RETURN(VideoFrame out, to_rgb(best.get()));
  std::int64_t ts = best->best_effort_timestamp;
  if (ts == AV_NOPTS_VALUE) ts = best->pts;
  out.time = Seconds(ts == AV_NOPTS_VALUE ? 0.0 : seconds_of(ts - stream_start(st), st->time_base));
  out.rotation_degrees = rotation_of(st);
  return out;
}

}  // namespace stowage::media
