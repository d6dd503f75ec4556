// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "stowage/base/error.hpp"
#include "stowage/media/video.hpp"

/// The JSON forms of a probed video (shared/spec/api.md 1.4): the container's metadata, kept per
/// blob and answered by import-storage.internal.meta.list, and an item's `fileMeta`, which is
/// one video stream of it.
namespace stowage::service {

/// `{"mime","formatName","duration","size","streams":[{"index","codecType","codecName",
/// "width","height","rotation","startTime","duration","framesCount","frameRate",
/// "framesToTimecodes"}, ...]}`; times in seconds as numbers, size as a decimal string (as
/// Supervisely writes it; the SDK reads it with int()).
std::string container_meta_json(const media::VideoMeta& meta);

/// What an item showing one video stream of a container is.
struct VideoItemMeta {
  std::string file_meta;  ///< the item's fileMeta JSON object text
  std::string mime;
  int stream_index = 0;
  std::optional<std::int64_t> width;
  std::optional<std::int64_t> height;
};

/// The item's view of a container (container_meta_json() text): the chosen video stream's
/// fields at the top level (what VideoInfo reads: framesCount, framesToTimecodes, width,
/// height, duration) beside mime, size, formatName and every stream without its timecodes.
/// `stream_index` unset: the first video stream. InvalidArgument when the container has no
/// video stream or `stream_index` is not one.
Result<VideoItemMeta> video_item_meta(std::string_view container_json,
                                      std::optional<int> stream_index);

/// True when a blob's or item's file_meta text holds a probed container (it has streams).
bool has_streams(std::string_view file_meta);

}  // namespace stowage::service
