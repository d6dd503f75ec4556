// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/io/stream.hpp"

/// Videos: what a container holds (streams, frames and their times) and single frames for
/// previews, read with FFmpeg (libavformat, libavcodec, libswscale) through io::RandomAccessReader,
/// so the same code serves local files and remote objects. No FFmpeg header leaks from here.
namespace stowage::media {

/// Times in float seconds. The house style keeps units in the type, and a chrono duration does;
/// it is a double rather than integer milliseconds because a frame time such as 1001/30000 s
/// (NTSC) is not a whole number of any tick, and Supervisely's wire format (`duration`,
/// `framesToTimecodes`) is float seconds: `.count()` is exactly what goes on the wire.
using Seconds = std::chrono::duration<double>;

/// The file extensions the Supervisely SDK accepts for videos (video_api.upload_paths), dot
/// included, lower case.
inline constexpr std::string_view kVideoExtensions[] = {".avi",  ".mp4", ".3gp", ".flv",
                                                        ".webm", ".wmv", ".mov", ".mkv"};

/// True when `name`'s extension (case-insensitive) is one of kVideoExtensions.
bool has_video_extension(std::string_view name);

/// True for a "video/..." mime type, or a name with a video extension: a cheap guess from what a
/// client says, used to choose between the image and the video paths. The bytes decide in the
/// end (probe_video()).
bool looks_like_video(std::string_view mime_or_name);

/// One stream of a container, as ffprobe would describe it.
struct VideoStream {
  int index = 0;              ///< the stream's index in the container (videoStreamIndex)
  std::string codec_type;     ///< "video", "audio", "subtitle", "data" or "attachment"
  std::string codec_name;     ///< FFmpeg's short name: "h264", "vp9", "aac", ...
  std::optional<int> width;   ///< video only
  std::optional<int> height;  ///< video only
  /// Degrees (0, 90, 180, 270) the picture must be turned clockwise to be shown upright, from
  /// the display matrix of phone videos (the old `rotate` tag; ffprobe's `rotation` side data is
  /// its negative), 0 when none.
  int rotation_degrees = 0;
  std::optional<int> sample_rate;  ///< audio only
  std::optional<int> channels;     ///< audio only
  Seconds start_time{0};           ///< first timestamp of the stream
  Seconds duration{0};             ///< the stream's, else the container's
  /// Average frames per second (ffprobe's avg_frame_rate); 0 when the container does not say.
  double frame_rate = 0;
  /// Video: frames in the stream, counted from the packets (ffprobe -count_frames). Other
  /// streams: what the container declares, 0 when it does not.
  std::int64_t frames_count = 0;
  /// Video only: each frame's presentation time from the stream's start, ascending, one per
  /// frame (frames_count entries). Frame n of the Supervisely API is frames_to_timecodes[n].
  std::vector<Seconds> frames_to_timecodes;
};

/// What a video file holds; the `fileMeta` of the videos API.
struct VideoMeta {
  /// From the container actually found, never from the name: video/mp4, video/quicktime,
  /// video/3gpp, video/3gpp2, video/webm, video/x-matroska, video/x-msvideo, video/x-flv,
  /// video/x-ms-asf.
  std::string mime;
  std::string format_name;  ///< FFmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  Seconds duration{0};      ///< the container's duration, else the longest stream's
  std::vector<VideoStream> streams;
  std::uint64_t size_bytes = 0;  ///< the file's size
  /// Bytes fetched from the source (read-ahead included): what a remote store transferred.
  std::uint64_t bytes_read = 0;
};

/// Bounds that keep a hostile file from making a probe or a decode run away.
struct ProbeLimits {
  /// More streams than this is refused (TooLarge); FFmpeg allows 1000 by default.
  int max_streams = 64;
  /// Video frames listed per file (TooLarge past it): 10 million frames is 46 hours at 60 fps,
  /// and 80 MB of timecodes.
  std::int64_t max_frames = 10'000'000;
  /// Bytes fetched from the source (TooLarge past it). A file without an index (Matroska, WebM,
  /// AVI) is read to its end to count its frames, so this is the largest such file probed.
  std::uint64_t max_read_bytes = std::uint64_t{64} << 30;
  /// Wall time of one call (Timeout past it).
  std::chrono::milliseconds time_budget{std::chrono::minutes(5)};
  /// decode_video_frame(): frames larger than this (width x height) are refused before any is
  /// decoded (TooLarge); the same 100 MP as preview::RenderLimits.
  std::uint64_t max_frame_pixels = 100'000'000;
  /// decode_video_frame(): frames decoded from the keyframe before the target, at most
  /// (Corrupt past it): a GOP is rarely longer than a few hundred frames.
  int max_decoded_frames = 2'000;
};

/// Reads what the container says about its streams and lists every video frame's time, as
/// `ffprobe -count_frames -show_streams -show_format` does, reading only what is needed:
///  - MP4/MOV/3GP: the index (moov) gives every sample's place and size; the packets are then
///    walked without fetching their payload, so a file with its moov at the front is probed in a
///    few requests whatever its size.
///  - Matroska/WebM, AVI, FLV, ASF: packets are demuxed (never decoded) to the end of the file.
/// Reads through a read-ahead window (64 KiB growing to 1 MiB while reading forward), so a
/// remote reader is asked for few, large ranges. Only the containers of kVideoExtensions are
/// opened (FFmpeg's other demuxers are never tried), and they may not open other files.
///
/// Errors: InvalidArgument for an empty file, bytes that are not a video container FFmpeg reads
/// ("not a video container ..."), or a truncated one ("truncated: ..."), with FFmpeg's reason;
/// TooLarge or Timeout past `limits`; the reader's own error when a read fails. Never throws.
/// Blocking (I/O and CPU); thread-safe: any number of probes may run at once.
Result<VideoMeta> probe_video(io::RandomAccessReader& source, const ProbeLimits& limits = {});

/// Which frame of a stream to decode: a frame number (frames_to_timecodes' index) or a
/// fraction of the stream's duration.
class FramePosition {
 public:
  /// The n-th frame in presentation order, from 0.
  static FramePosition frame(std::int64_t n) { return FramePosition(n, -1); }
  /// The frame shown at `f` x duration, f in [0, 1].
  static FramePosition fraction(double f) { return FramePosition(-1, f); }
  /// Parses the preview URL's form: "33p" is 33 percent of the duration, "120" frame 120.
  /// InvalidArgument for anything else (negative, over 100p, not a number).
  static Result<FramePosition> parse(std::string_view text);

  bool is_frame() const { return frame_ >= 0; }
  std::int64_t frame_number() const { return frame_; }  ///< when is_frame()
  double fraction_value() const { return fraction_; }   ///< when !is_frame()

 private:
  FramePosition(std::int64_t frame, double fraction) : frame_(frame), fraction_(fraction) {}
  std::int64_t frame_;
  double fraction_;
};

/// A decoded picture: packed 8-bit RGB, rows of width * 3 bytes, top row first.
struct VideoFrame {
  int width = 0;
  int height = 0;
  std::vector<std::byte> rgb;
  Seconds time{0};           ///< its presentation time from the stream's start
  int rotation_degrees = 0;  ///< the stream's display rotation, not applied to `rgb`
};

/// Decodes one frame of video stream `stream_index`: seeks to the keyframe at or before the
/// target and decodes forward to it, then converts it to RGB (swscale). For a fraction, the
/// frame shown at that time (the last one starting at or before it); for a frame number, that
/// frame, found by walking the packets' times from the start (cheap for MP4, where payloads are
/// skipped; a read of the file up to that frame otherwise).
///
/// Errors: NotFound when the stream does not exist or is not a video stream (or past the last
/// frame); InvalidArgument as probe_video() for unreadable files, and for a fraction outside
/// [0, 1]; TooLarge past `limits.max_frame_pixels`; Unsupported when FFmpeg has no decoder for
/// the codec; Corrupt when the frame cannot be decoded. Blocking (I/O and CPU, one decoder
/// thread); thread-safe.
Result<VideoFrame> decode_video_frame(io::RandomAccessReader& source, int stream_index,
                                      FramePosition where, const ProbeLimits& limits = {});

}  // namespace stowage::media
