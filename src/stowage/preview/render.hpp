// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>

#include "stowage/base/error.hpp"
#include "stowage/io/file.hpp"
#include "stowage/media/video.hpp"
#include "stowage/preview/options.hpp"

namespace stowage::preview {

struct RenderLimits {
  /// Sources with more pixels (width x height, per page) are refused before any pixel is
  /// decoded: a few KB of PNG can declare gigapixels (a decompression bomb). 100 MP covers the
  /// largest camera and most aerial frames a CV dataset holds; imgproxy's default is 50 MP.
  std::uint64_t max_pixels = 100'000'000;
};

/// An encoded preview.
struct Rendered {
  std::string bytes;
  std::string mime;
  int width = 0;
  int height = 0;
};

/// Makes the preview of the image in `source` (any format libvips reads: JPEG, PNG, WebP, TIFF,
/// GIF, HEIF...) with shrink-on-load (vips_thumbnail_source): JPEG and WebP are decoded at a
/// reduced scale, so memory follows the preview's size rather than the original's. EXIF
/// orientation is applied; alpha is flattened on white for JPEG. Blocking (CPU); thread-safe.
/// TooLarge past `limits.max_pixels`; InvalidArgument for bytes that are not a readable image.
Result<Rendered> render_preview(const io::File& source, const PreviewOptions& options,
                                const RenderLimits& limits = {});

/// Makes the preview of a decoded video frame (media::decode_video_frame()): turned upright per
/// its display rotation, then resized and encoded exactly as render_preview() does an image.
/// TooLarge past `limits.max_pixels`, checked before libvips allocates anything;
/// InvalidArgument when the pixels do not match the frame's size. Blocking (CPU); thread-safe.
Result<Rendered> render_frame_preview(const media::VideoFrame& frame, const PreviewOptions& options,
                                      const RenderLimits& limits = {});

}  // namespace stowage::preview
