// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
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

/// probe_image() of bytes in memory: the first bytes of an object are usually enough (formats
/// keep their dimensions near the start); InvalidArgument when they are not an image header.
Result<ImageHeader> probe_image_buffer(std::span<const std::byte> bytes);

/// A mime type guessed from a file name's extension ("x.PNG" -> "image/png"), for links whose
/// bytes are not read; "application/octet-stream" when the extension says nothing.
std::string mime_from_name(std::string_view name);

/// The usual file extension for a mime type ("image/jpeg" -> "jpeg"), as the Supervisely SDK
/// derives `ext` from the mime subtype.
std::string extension_for_mime(std::string_view mime);

}  // namespace stowage::media
