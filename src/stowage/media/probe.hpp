// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "stowage/base/error.hpp"

namespace stowage::media {

/// What an image's own bytes say it is: never derived from its name.
struct ImageHeader {
  std::string mime;  ///< e.g. "image/jpeg"
  std::int64_t width = 0;
  std::int64_t height = 0;
};

/// Reads only the header of an image file with libvips (no pixel is decoded) and returns its type
/// and dimensions. InvalidArgument when libvips recognises no image format in the bytes, or the
/// format is not one Stowage serves (JPEG, PNG, WebP, TIFF, GIF, HEIF/AVIF, ...).
/// Thread-safe; initialises libvips on first use.
Result<ImageHeader> probe_image(const std::filesystem::path& file);

/// The usual file extension for a mime type ("image/jpeg" -> "jpeg"), as the Supervisely SDK
/// derives `ext` from the mime subtype.
std::string extension_for_mime(std::string_view mime);

}  // namespace stowage::media
