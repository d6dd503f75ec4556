// SPDX-License-Identifier: Apache-2.0
#include "stowage/preview/options.hpp"

#include <charconv>
#include <vector>

#include "stowage/uri/percent.hpp"

namespace stowage::preview {
namespace {

Error invalid(std::string message) {
  return make_error(ErrorCode::InvalidArgument, "preview URL: " + std::move(message));
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  for (std::size_t start = 0;;) {
    const auto at = text.find(sep, start);
    out.push_back(text.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

Result<int> parse_int(std::string_view option, std::string_view text, int max) {
  int v = 0;
  if (text.empty()) return 0;  // imgproxy: an empty argument keeps the default
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || v < 0 || v > max) {
    return invalid("'" + std::string(option) + "' needs a number from 0 to " + std::to_string(max) +
                   ", not '" + std::string(text) + "'");
  }
  return v;
}

Result<bool> parse_bool(std::string_view option, std::string_view text) {
  if (text.empty() || text == "0" || text == "f" || text == "false") return false;
  if (text == "1" || text == "t" || text == "true") return true;
  return invalid("'" + std::string(option) + "' needs 1 or 0, not '" + std::string(text) + "'");
}

Result<ResizeType> parse_type(std::string_view text) {
  if (text == "fit") return ResizeType::Fit;
  if (text == "fill" || text == "fill-down") return ResizeType::Fill;
  if (text == "auto") return ResizeType::Auto;
  if (text == "force") return ResizeType::Force;
  return invalid("unknown resizing type '" + std::string(text) + "' (fit, fill, auto, force)");
}

Result<Format> parse_format(std::string_view text) {
  if (text == "jpeg" || text == "jpg") return Format::Jpeg;
  if (text == "png") return Format::Png;
  if (text == "webp") return Format::Webp;
  return invalid("unsupported output format '" + std::string(text) + "' (jpeg, png, webp)");
}

Status apply(PreviewOptions& o, std::string_view segment) {
  const auto args = split(segment, ':');
  const std::string_view name = args[0];
  const std::size_t n = args.size() - 1;
  auto arg = [&](std::size_t i) { return i <= n ? args[i] : std::string_view{}; };
  constexpr int kMax = PreviewOptions::kMaxDimension;
  if (name == "resize" || name == "rs") {
    if (n < 1 || n > 5) return invalid("'" + std::string(segment) + "': resize:TYPE:W:H:ENLARGE");
    STOWAGE_ASSIGN_OR_RETURN(o.resize, parse_type(arg(1)));
    STOWAGE_ASSIGN_OR_RETURN(o.width, parse_int(name, arg(2), kMax));
    STOWAGE_ASSIGN_OR_RETURN(o.height, parse_int(name, arg(3), kMax));
    STOWAGE_ASSIGN_OR_RETURN(o.enlarge, parse_bool(name, arg(4)));
    return {};  // extend (arg 5) pads to the box; previews never need it
  }
  if (name == "size" || name == "s") {
    if (n < 1 || n > 4) return invalid("'" + std::string(segment) + "': size:W:H:ENLARGE");
    STOWAGE_ASSIGN_OR_RETURN(o.width, parse_int(name, arg(1), kMax));
    STOWAGE_ASSIGN_OR_RETURN(o.height, parse_int(name, arg(2), kMax));
    STOWAGE_ASSIGN_OR_RETURN(o.enlarge, parse_bool(name, arg(3)));
    return {};
  }
  if (n != 1) return invalid("'" + std::string(segment) + "': one argument expected");
  if (name == "resizing_type" || name == "rt") {
    STOWAGE_ASSIGN_OR_RETURN(o.resize, parse_type(arg(1)));
  } else if (name == "width" || name == "w") {
    STOWAGE_ASSIGN_OR_RETURN(o.width, parse_int(name, arg(1), kMax));
  } else if (name == "height" || name == "h") {
    STOWAGE_ASSIGN_OR_RETURN(o.height, parse_int(name, arg(1), kMax));
  } else if (name == "enlarge" || name == "el") {
    STOWAGE_ASSIGN_OR_RETURN(o.enlarge, parse_bool(name, arg(1)));
  } else if (name == "quality" || name == "q") {
    STOWAGE_ASSIGN_OR_RETURN(o.quality, parse_int(name, arg(1), 100));
    if (o.quality == 0) o.quality = PreviewOptions::kDefaultQuality;
  } else if (name == "format" || name == "f" || name == "ext") {
    STOWAGE_ASSIGN_OR_RETURN(o.format, parse_format(arg(1)));
  } else {
    return invalid("unsupported processing option '" + std::string(name) + "'");
  }
  return {};
}

}  // namespace

std::string PreviewOptions::canonical() const {
  static constexpr std::string_view kTypes[] = {"fit", "fill", "auto", "force"};
  static constexpr std::string_view kFormats[] = {"jpeg", "png", "webp"};
  // Auto with one side 0 is Fit; Fill with one side 0 is Fit too: same picture, same key.
  ResizeType type = resize;
  if ((type == ResizeType::Auto || type == ResizeType::Fill) && (width == 0 || height == 0))
    type = ResizeType::Fit;
  std::string out = "rs:";
  out += kTypes[static_cast<int>(type)];
  out += ":" + std::to_string(width) + ":" + std::to_string(height) + ":" + (enlarge ? "1" : "0");
  // PNG ignores the quality.
  if (format != Format::Png) out += "/q:" + std::to_string(quality);
  out += "/f:";
  out += kFormats[static_cast<int>(format)];
  return out;
}

std::string_view PreviewOptions::mime() const {
  switch (format) {
    case Format::Png:
      return "image/png";
    case Format::Webp:
      return "image/webp";
    case Format::Jpeg:
      break;
  }
  return "image/jpeg";
}

Result<PreviewPath> parse_preview_path(std::string_view path) {
  const auto plain = path.find("/plain/");
  if (plain == std::string_view::npos) {
    return invalid("expected <signature>/<options>/plain/<source>");
  }
  const auto head = split(path.substr(0, plain), '/');
  PreviewPath out;
  // head[0] is imgproxy's signature segment ("q", "_", "insecure"...): not used.
  for (std::size_t i = 1; i < head.size(); ++i) {
    if (head[i].empty()) continue;
    STOWAGE_TRY(apply(out.options, head[i]));
  }
  std::string_view source = path.substr(plain + 6);  // keeps the leading '/'
  // imgproxy's "@ext" suffix, when what follows the last '@' is a format (else it is a name).
  if (const auto at = source.rfind('@'); at != std::string_view::npos) {
    if (auto format = parse_format(source.substr(at + 1))) {
      out.options.format = *format;
      source = source.substr(0, at);
    }
  }
  out.source = uri::percent_decode(source);
  if (out.source.size() < 2 || out.source[0] != '/') return invalid("no source path");
  return out;
}

}  // namespace stowage::preview
