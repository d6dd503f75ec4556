// SPDX-License-Identifier: Apache-2.0
#include "stowage/service/video_meta.hpp"

#include <boost/json.hpp>

namespace stowage::service {
namespace json = boost::json;

namespace {

json::object stream_json(const media::VideoStream& s, bool with_timecodes) {
  json::object o;
  o["index"] = s.index;
  o["codecType"] = s.codec_type;
  o["codecName"] = s.codec_name;
  if (s.width) o["width"] = *s.width;
  if (s.height) o["height"] = *s.height;
  if (s.codec_type == "video") o["rotation"] = s.rotation_degrees;
  if (s.sample_rate) o["sampleRate"] = *s.sample_rate;
  if (s.channels) o["channels"] = *s.channels;
  o["startTime"] = s.start_time.count();
  o["duration"] = s.duration.count();
  o["framesCount"] = s.frames_count;
  if (s.frame_rate > 0) o["frameRate"] = s.frame_rate;
  if (with_timecodes && s.codec_type == "video") {
    json::array times;
    times.reserve(s.frames_to_timecodes.size());
    for (const auto t : s.frames_to_timecodes) times.emplace_back(t.count());
    o["framesToTimecodes"] = std::move(times);
  }
  return o;
}

Result<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    return make_error(ErrorCode::Corrupt, "stored video metadata is not a JSON object");
  }
  return std::move(v.get_object());
}

}  // namespace

std::string container_meta_json(const media::VideoMeta& meta) {
  json::object o;
  o["mime"] = meta.mime;
  o["formatName"] = meta.format_name;
  o["duration"] = meta.duration.count();
  o["size"] = std::to_string(meta.size_bytes);
  json::array streams;
  for (const auto& s : meta.streams) streams.push_back(stream_json(s, true));
  o["streams"] = std::move(streams);
  return json::serialize(o);
}

Result<VideoItemMeta> video_item_meta(std::string_view container_json,
                                      std::optional<int> stream_index) {
  STOWAGE_ASSIGN_OR_RETURN(json::object container, parse_object(container_json));
  const json::value* streams = container.if_contains("streams");
  if (streams == nullptr || !streams->is_array()) {
    return make_error(ErrorCode::InvalidArgument, "the file is not a probed video");
  }
  const json::object* chosen = nullptr;
  json::array summary;
  for (const json::value& v : streams->get_array()) {
    if (!v.is_object()) continue;
    const json::object& s = v.get_object();
    const json::value* type = s.if_contains("codecType");
    const json::value* index = s.if_contains("index");
    const bool video = type && type->is_string() && type->get_string() == "video";
    if (video && chosen == nullptr && index && index->is_int64() &&
        (!stream_index || index->get_int64() == *stream_index)) {
      chosen = &s;
    }
    json::object copy = s;
    copy.erase("framesToTimecodes");  // the chosen stream's are at the top level
    summary.push_back(std::move(copy));
  }
  if (chosen == nullptr) {
    return make_error(ErrorCode::InvalidArgument,
                      stream_index ? "stream " + std::to_string(*stream_index) +
                                         " of the file is not a video stream"
                                   : std::string("the file has no video stream"));
  }
  json::object item = *chosen;
  for (const char* key : {"mime", "formatName", "size"}) {
    if (const json::value* v = container.if_contains(key)) item[key] = *v;
  }
  if (!item.contains("framesToTimecodes")) item["framesToTimecodes"] = json::array{};
  item["streams"] = std::move(summary);

  VideoItemMeta out;
  if (const auto* mime = item.if_contains("mime"); mime && mime->is_string()) {
    out.mime = std::string(mime->get_string());
  }
  out.stream_index = static_cast<int>(item.at("index").get_int64());
  if (const auto* w = item.if_contains("width"); w && w->is_int64()) out.width = w->get_int64();
  if (const auto* h = item.if_contains("height"); h && h->is_int64()) out.height = h->get_int64();
  out.file_meta = json::serialize(item);
  return out;
}

bool has_streams(std::string_view file_meta) {
  auto parsed = parse_object(file_meta);
  return parsed && parsed->contains("streams");
}

}  // namespace stowage::service
