// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

#include "stowage/base/error.hpp"

/// Image previews: the imgproxy-style URLs the Supervisely SDK builds, made with libvips.
namespace stowage::preview {

/// How the picture is fitted to width x height (imgproxy's resizing types).
enum class ResizeType {
  Fit,   ///< inside the box, keeping the aspect ratio
  Fill,  ///< covers the box, keeping the aspect ratio, the overflow cropped around the centre
  Auto,  ///< Fill when the picture and the box have the same orientation, else Fit
  Force  ///< exactly the box, the aspect ratio ignored
};

enum class Format { Jpeg, Png, Webp };

/// The processing options of one preview URL, normalized: two URLs that mean the same picture
/// have the same canonical() text (the preview cache key).
struct PreviewOptions {
  ResizeType resize = ResizeType::Fit;
  int width = 0;   ///< 0: from the height and the aspect ratio (both 0: the original size)
  int height = 0;  ///< 0: from the width
  bool enlarge = false;
  int quality = kDefaultQuality;
  Format format = Format::Jpeg;

  /// imgproxy's default quality, used when the URL sets none (or q:0).
  static constexpr int kDefaultQuality = 80;
  /// Largest width or height a URL may ask for: larger boxes are a way to make the server
  /// allocate huge images for nothing (imgproxy caps at its max resolution as well).
  static constexpr int kMaxDimension = 8192;

  /// e.g. "rs:fit:300:0:0/q:70/f:jpeg".
  std::string canonical() const;
  /// "image/jpeg", "image/png" or "image/webp".
  std::string_view mime() const;
};

/// A parsed `/previews/...` path.
struct PreviewPath {
  PreviewOptions options;
  /// The source: an item's pathOriginal, "/<bucket>/<key>" (percent-decoded).
  std::string source;
};

/// Parses what follows "/previews/" in a request path (no query string):
/// `<signature>/<option>/<option>.../plain/<source>[@<ext>]`, as imgproxy and the SDK's
/// resize_image_url() write it, e.g. `q/ext:jpeg/resize:auto:0:0:0/q:70/plain/b/images/x.png`.
/// The signature segment is ignored (Stowage signs with a query string instead).
/// Options: resize|rs:TYPE:W:H:ENLARGE[:EXTEND], size|s:W:H[:ENLARGE], resizing_type|rt:TYPE,
/// width|w:W, height|h:H, enlarge|el:B, quality|q:Q, format|f|ext:jpeg|jpg|png|webp.
/// InvalidArgument names the option that is wrong; unknown options are refused rather than
/// silently ignored.
Result<PreviewPath> parse_preview_path(std::string_view path);

}  // namespace stowage::preview
