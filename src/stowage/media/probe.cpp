// SPDX-License-Identifier: Apache-2.0
#include "stowage/media/probe.hpp"

#include <vips/vips.h>

#include <algorithm>
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

namespace {

/// The mime type of a loader, or empty when Stowage does not serve that format.
std::string mime_of_loader(const char* loader) {
  const std::string_view nick = loader_nickname(loader);
  for (const auto& [prefix, type] : kLoaderMime) {
    if (nick.starts_with(prefix)) return std::string(type);
  }
  return {};
}

/// Reads the header of an opened (lazy) image; consumes the reference.
Result<ImageHeader> header_of(VipsImage* image, std::string mime) {
  if (image == nullptr) {
    std::string why = vips_error_buffer();
    vips_error_clear();
    while (!why.empty() && why.back() == '\n') why.pop_back();
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

Error not_an_image(const char* loader) {
  if (loader == nullptr) {
    vips_error_clear();
    return make_error(ErrorCode::InvalidArgument, "not an image in a format Stowage can read");
  }
  return make_error(ErrorCode::InvalidArgument,
                    "unsupported image format (" + std::string(loader_nickname(loader)) + ")");
}

}  // namespace

Result<ImageHeader> probe_image(const std::filesystem::path& file) {
  ensure_vips();
  const char* loader = vips_foreign_find_load(file.c_str());
  std::string mime = loader ? mime_of_loader(loader) : std::string();
  if (mime.empty()) return not_an_image(loader);
  // Opening is lazy: only the header is read until pixels are asked for.
  return header_of(
      vips_image_new_from_file(file.c_str(), "access", VIPS_ACCESS_SEQUENTIAL, nullptr),
      std::move(mime));
}

Result<ImageHeader> probe_image_buffer(std::span<const std::byte> bytes) {
  ensure_vips();
  const char* loader = vips_foreign_find_load_buffer(bytes.data(), bytes.size());
  std::string mime = loader ? mime_of_loader(loader) : std::string();
  if (mime.empty()) return not_an_image(loader);
  return header_of(vips_image_new_from_buffer(bytes.data(), bytes.size(), "", "access",
                                              VIPS_ACCESS_SEQUENTIAL, nullptr),
                   std::move(mime));
}

std::string mime_from_name(std::string_view name) {
  static constexpr std::pair<std::string_view, std::string_view> kByExtension[] = {
      {"jpg", "image/jpeg"},      {"jpeg", "image/jpeg"},    {"jpe", "image/jpeg"},
      {"png", "image/png"},       {"webp", "image/webp"},    {"tif", "image/tiff"},
      {"tiff", "image/tiff"},     {"gif", "image/gif"},      {"bmp", "image/bmp"},
      {"heic", "image/heif"},     {"heif", "image/heif"},    {"avif", "image/avif"},
      {"mp4", "video/mp4"},       {"webm", "video/webm"},    {"mkv", "video/x-matroska"},
      {"mov", "video/quicktime"}, {"avi", "video/x-msvideo"}, {"3gp", "video/3gpp"},
      {"flv", "video/x-flv"},     {"wmv", "video/x-ms-asf"}};
  const std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  std::string ext(name.substr(dot + 1));
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const auto& [e, mime] : kByExtension) {
    if (e == ext) return std::string(mime);
  }
  return "application/octet-stream";
}

std::string extension_for_mime(std::string_view mime) {
  const std::size_t slash = mime.find('/');
  std::string_view sub = slash == std::string_view::npos ? mime : mime.substr(slash + 1);
  if (const std::size_t plus = sub.find('+'); plus != std::string_view::npos)
    sub = sub.substr(0, plus);
  return std::string(sub);
}

}  // namespace stowage::media
