// SPDX-License-Identifier: Apache-2.0
#include "stowage/media/probe.hpp"

#include <vips/vips.h>

#include <array>
#include <mutex>
#include <string_view>
#include <utility>

namespace stowage::media {
namespace {

/// libvips loader nickname -> mime type. Loaders absent from this table (pdf, svg, matrix, raw
/// formats...) are not served as images.
constexpr std::array<std::pair<std::string_view, std::string_view>, 10> kLoaderMime{{
    {"jpegload", "image/jpeg"},
    {"pngload", "image/png"},
    {"webpload", "image/webp"},
    {"tiffload", "image/tiff"},
    {"gifload", "image/gif"},
    {"heifload", "image/heif"},
    {"jp2kload", "image/jp2"},
    {"jxlload", "image/jxl"},
    {"ppmload", "image/x-portable-anymap"},
    {"radload", "image/vnd.radiance"},
}};

void ensure_vips() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (VIPS_INIT("stowage") != 0) vips_error_exit("cannot initialise libvips");
    // Header reads need no operation cache, and a long-lived server must not grow one.
    vips_cache_set_max(0);
  });
}

/// The loader nickname without the "_source"/"_buffer" suffixes, from a class name such as
/// "VipsForeignLoadJpegFile".
std::string_view loader_nickname(const char* operation_name) {
  const VipsObjectClass* klass =
      VIPS_OBJECT_CLASS(g_type_class_ref(g_type_from_name(operation_name)));
  if (klass == nullptr) return {};
  std::string_view nick = klass->nickname;
  return nick;
}

}  // namespace

Result<ImageHeader> probe_image(const std::filesystem::path& file) {
  ensure_vips();
  const char* loader = vips_foreign_find_load(file.c_str());
  if (loader == nullptr) {
    vips_error_clear();
    return make_error(ErrorCode::InvalidArgument, "not an image in a format Stowage can read");
  }
  std::string_view nick = loader_nickname(loader);
  std::string mime;
  for (const auto& [prefix, type] : kLoaderMime) {
    if (nick.starts_with(prefix)) {
      mime = type;
      break;
    }
  }
  if (mime.empty()) {
    return make_error(ErrorCode::InvalidArgument,
                      "unsupported image format (" + std::string(nick) + ")");
  }
  // Opening is lazy: only the header is read until pixels are asked for.
  VipsImage* image =
      vips_image_new_from_file(file.c_str(), "access", VIPS_ACCESS_SEQUENTIAL, nullptr);
  if (image == nullptr) {
    std::string why = vips_error_buffer();
    vips_error_clear();
    while (!why.empty() && (why.back() == '\n')) why.pop_back();
    return make_error(ErrorCode::InvalidArgument, "unreadable image header: " + why);
  }
  ImageHeader header;
  header.mime = std::move(mime);
  header.width = vips_image_get_width(image);
  header.height = vips_image_get_height(image);
  if (header.mime == "image/heif") {
    const char* compression = nullptr;
    if (vips_image_get_string(image, "heif-compression", &compression) == 0 && compression &&
        std::string_view(compression) == "av1") {
      header.mime = "image/avif";
    }
  }
  g_object_unref(image);
  return header;
}

std::string extension_for_mime(std::string_view mime) {
  const std::size_t slash = mime.find('/');
  std::string_view sub = slash == std::string_view::npos ? mime : mime.substr(slash + 1);
  if (const std::size_t plus = sub.find('+'); plus != std::string_view::npos)
    sub = sub.substr(0, plus);
  return std::string(sub);
}

}  // namespace stowage::media
