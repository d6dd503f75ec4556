// SPDX-License-Identifier: Apache-2.0
#include "stowage/preview/render.hpp"

#include <unistd.h>
#include <vips/vips.h>

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
    const std::uint64_t pixels =
        static_cast<std::uint64_t>(src_width) * static_cast<std::uint64_t>(src_height);
    if (pixels > limits.max_pixels) {
      return make_error(ErrorCode::TooLarge,
                        "preview: the image has " + std::to_string(src_width) + "x" +
                            std::to_string(src_height) + " pixels, more than the " +
                            std::to_string(limits.max_pixels) + " previews are made of");
    }
  }

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
  const int width = options.width > 0 ? options.width : VIPS_MAX_COORD;
  const int height = options.height > 0 ? options.height : VIPS_MAX_COORD;
  VipsSize size = options.enlarge ? VIPS_SIZE_BOTH : VIPS_SIZE_DOWN;
  if (type == ResizeType::Force) size = VIPS_SIZE_FORCE;
  const VipsInteresting crop =
      type == ResizeType::Fill ? VIPS_INTERESTING_CENTRE : VIPS_INTERESTING_NONE;

  STOWAGE_ASSIGN_OR_RETURN(auto source, open_source(file));
  VipsImage* raw = nullptr;
  if (vips_thumbnail_source(source.get(), &raw, width, "height", height, "size", size, "crop", crop,
                            nullptr) != 0) {
    return vips_failure(ErrorCode::InvalidArgument, "preview: cannot decode the image");
  }
  ImagePtr image(raw);

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

}  // namespace stowage::preview
