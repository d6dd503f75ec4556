// SPDX-License-Identifier: Apache-2.0
#include "stowage/preview/render.hpp"

#include <unistd.h>
#include <vips/vips.h>

#include <algorithm>
#include <memory>
#include <mutex>

namespace stowage::preview {
namespace {

void ensure_vips() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (VIPS_INIT("stowage") != 0) vips_error_exit("cannot initialise libvips");
    // Every preview is made once and then cached on disk; libvips' operation cache would only
    // hold memory in a long-lived server.
    vips_cache_set_max(0);
  });
}

/// libvips' last error as an Error, the buffer cleared.
Error vips_failure(ErrorCode code, std::string_view what) {
  std::string why = vips_error_buffer();
  vips_error_clear();
  while (!why.empty() && why.back() == '\n') why.pop_back();
  return make_error(code, std::string(what) + ": " + why);
}

struct Unref {
  void operator()(gpointer p) const {
    if (p) g_object_unref(p);
  }
};
using SourcePtr = std::unique_ptr<VipsSource, Unref>;
using ImagePtr = std::unique_ptr<VipsImage, Unref>;

/// A fresh libvips source over the file. libvips dups the descriptor, which shares the file
/// offset: it is rewound first so that each source starts at the beginning.
Result<SourcePtr> open_source(const io::File& file) {
  if (::lseek(file.fd(), 0, SEEK_SET) != 0) {
    return make_error(ErrorCode::IoError, "preview: cannot rewind the source");
  }
  SourcePtr source(vips_source_new_from_descriptor(file.fd()));
  if (!source) return vips_failure(ErrorCode::IoError, "preview: cannot read the source");
  return source;
}

/// TooLarge past the limit, before any pixel is decoded or allocated.
Status check_pixels(int width, int height, const RenderLimits& limits) {
  const std::uint64_t pixels = static_cast<std::uint64_t>(std::max(width, 0)) *
                               static_cast<std::uint64_t>(std::max(height, 0));
  if (pixels > limits.max_pixels) {
    return make_error(ErrorCode::TooLarge, "preview: the image has " + std::to_string(width) + "x" +
                                               std::to_string(height) + " pixels, more than the " +
                                               std::to_string(limits.max_pixels) +
                                               " previews are made of");
  }
  return {};
}

/// The box and mode of vips_thumbnail for a source of src_width x src_height.
struct Box {
  int width;
  int height;
  VipsSize size;
  VipsInteresting crop;
};

Box plan_box(int src_width, int src_height, const PreviewOptions& options) {
  ResizeType type = options.resize;
  const bool both = options.width > 0 && options.height > 0;
  if (type == ResizeType::Auto) {
    // Same orientation (both landscape or both portrait): fill, else fit.
    const bool src_landscape = src_width >= src_height;
    const bool box_landscape = options.width >= options.height;
    type = both && src_landscape == box_landscape ? ResizeType::Fill : ResizeType::Fit;
  }
  if (type == ResizeType::Fill && !both) type = ResizeType::Fit;
  if (type == ResizeType::Force && !both) type = ResizeType::Fit;

  // VIPS_MAX_COORD for an unset side makes the other side the only constraint; with both
  // unset and no enlargement the picture keeps its size.
  Box box;
  box.width = options.width > 0 ? options.width : VIPS_MAX_COORD;
  box.height = options.height > 0 ? options.height : VIPS_MAX_COORD;
  box.size = options.enlarge ? VIPS_SIZE_BOTH : VIPS_SIZE_DOWN;
  if (type == ResizeType::Force) box.size = VIPS_SIZE_FORCE;
  box.crop = type == ResizeType::Fill ? VIPS_INTERESTING_CENTRE : VIPS_INTERESTING_NONE;
  return box;
}

/// Encodes a resized image per the options (JPEG flattened on white).
Result<Rendered> encode(ImagePtr image, const PreviewOptions& options) {
  if (options.format == Format::Jpeg && vips_image_hasalpha(image.get())) {
    VipsArrayDouble* white = vips_array_double_newv(1, 255.0);
    VipsImage* flat = nullptr;
    const int rc = vips_flatten(image.get(), &flat, "background", white, nullptr);
    vips_area_unref(VIPS_AREA(white));
    if (rc != 0) return vips_failure(ErrorCode::Internal, "preview: flatten");
    image.reset(flat);
  }

  void* buffer = nullptr;
  std::size_t length = 0;
  int rc = -1;
  switch (options.format) {
    case Format::Jpeg:
      rc = vips_jpegsave_buffer(image.get(), &buffer, &length, "Q", options.quality, "strip", TRUE,
                                "optimize_coding", TRUE, nullptr);
      break;
    case Format::Png:
      rc = vips_pngsave_buffer(image.get(), &buffer, &length, "compression", 6, "strip", TRUE,
                               nullptr);
      break;
    case Format::Webp:
      rc = vips_webpsave_buffer(image.get(), &buffer, &length, "Q", options.quality, "strip", TRUE,
                                nullptr);
      break;
  }
  if (rc != 0) return vips_failure(ErrorCode::InvalidArgument, "preview: cannot encode");
  Rendered out;
  out.bytes.assign(static_cast<const char*>(buffer), length);
  g_free(buffer);
  out.mime = std::string(options.mime());
  out.width = vips_image_get_width(image.get());
  out.height = vips_image_get_height(image.get());
  return out;
}

}  // namespace

Result<Rendered> render_preview(const io::File& file, const PreviewOptions& options,
                                const RenderLimits& limits) {
  ensure_vips();
  // The header first: dimensions are known before any pixel is decoded.
  int src_width = 0;
  int src_height = 0;
  {
    STOWAGE_ASSIGN_OR_RETURN(auto source, open_source(file));
    ImagePtr header(
        vips_image_new_from_source(source.get(), "", "access", VIPS_ACCESS_SEQUENTIAL, nullptr));
    if (!header) return vips_failure(ErrorCode::InvalidArgument, "preview: not a readable image");
    src_width = vips_image_get_width(header.get());
    src_height = vips_image_get_height(header.get());
    STOWAGE_TRY(check_pixels(src_width, src_height, limits));
  }

  const Box box = plan_box(src_width, src_height, options);
  STOWAGE_ASSIGN_OR_RETURN(auto source, open_source(file));
  VipsImage* raw = nullptr;
  if (vips_thumbnail_source(source.get(), &raw, box.width, "height", box.height, "size", box.size,
                            "crop", box.crop, nullptr) != 0) {
    return vips_failure(ErrorCode::InvalidArgument, "preview: cannot decode the image");
  }
  return encode(ImagePtr(raw), options);
}

Result<Rendered> render_frame_preview(const media::VideoFrame& frame, const PreviewOptions& options,
                                      const RenderLimits& limits) {
  ensure_vips();
  STOWAGE_TRY(check_pixels(frame.width, frame.height, limits));
  const std::size_t bytes = static_cast<std::size_t>(frame.width) * frame.height * 3;
  if (frame.width <= 0 || frame.height <= 0 || frame.rgb.size() != bytes) {
    return make_error(ErrorCode::InvalidArgument,
                      "preview: the frame's pixels do not match its size");
  }
  // libvips reads the frame's memory in place; `frame` outlives every image made from it here.
  ImagePtr image(vips_image_new_from_memory(frame.rgb.data(), bytes, frame.width, frame.height, 3,
                                            VIPS_FORMAT_UCHAR));
  if (!image) return vips_failure(ErrorCode::Internal, "preview: cannot wrap the frame");
  if (frame.rotation_degrees == 90 || frame.rotation_degrees == 180 ||
      frame.rotation_degrees == 270) {
    // Phone videos store their pictures sideways with a display rotation; show them upright.
    const VipsAngle angle = frame.rotation_degrees == 90    ? VIPS_ANGLE_D90
                            : frame.rotation_degrees == 180 ? VIPS_ANGLE_D180
                                                            : VIPS_ANGLE_D270;
    VipsImage* turned = nullptr;
    if (vips_rot(image.get(), &turned, angle, nullptr) != 0) {
      return vips_failure(ErrorCode::Internal, "preview: rotate the frame");
    }
    image.reset(turned);
  }
  const Box box =
      plan_box(vips_image_get_width(image.get()), vips_image_get_height(image.get()), options);
  VipsImage* raw = nullptr;
  if (vips_thumbnail_image(image.get(), &raw, box.width, "height", box.height, "size", box.size,
                           "crop", box.crop, nullptr) != 0) {
    return vips_failure(ErrorCode::Internal, "preview: cannot resize the frame");
  }
  return encode(ImagePtr(raw), options);
}

}  // namespace stowage::preview
