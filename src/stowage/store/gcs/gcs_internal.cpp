// SPDX-License-Identifier: Apache-2.0
#include "stowage/store/gcs/gcs_internal.hpp"
#include "stowage/base/time.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <ctime>

namespace stowage::store::gcs::internal {

namespace json = boost::json;

std::string describe(std::string_view op, const ObjectPath& path) {
  return std::string(op) + " gcs://" + path.bucket + "/" + path.key;
}

Error gcs_error(long status, std::string_view body, std::string_view op, const ObjectPath& path) {
  // GCS errors: {"error": {"code": 404, "message": "...", "errors": [{"reason": "notFound"}]}}.
  std::string reason;
  std::string message;
  boost::system::error_code ec;
  const json::value parsed = json::parse(body, ec);
  if (!ec && parsed.is_object()) {
    if (const auto* err = parsed.as_object().if_contains("error"); err && err->is_object()) {
      const auto& e = err->as_object();
      if (const auto* m = e.if_contains("message"); m && m->is_string()) message = m->as_string();
      if (const auto* list = e.if_contains("errors"); list && list->is_array()) {
        const auto& arr = list->as_array();
        if (!arr.empty() && arr[0].is_object()) {
          if (const auto* r = arr[0].as_object().if_contains("reason"); r && r->is_string()) {
            reason = r->as_string();
          }
        }
      }
    } else if (err && err->is_string()) {
      reason = err->as_string();  // OAuth-style {"error": "invalid_grant"}
    }
  }
  ErrorCode code = ErrorCode::Internal;
  bool retryable = false;
  switch (status) {
    case 400:
      code = ErrorCode::InvalidArgument;
      break;
    case 401:
      code = ErrorCode::Unauthenticated;
      break;
    case 403:
      code = ErrorCode::PermissionDenied;
      break;
    case 404:
    case 410:
      code = ErrorCode::NotFound;
      break;
    case 408:
      code = ErrorCode::Timeout;
      retryable = true;
      break;
    case 409:
      code = ErrorCode::AlreadyExists;
      break;
    case 412:
      code = ErrorCode::PreconditionFailed;
      break;
    case 413:
      code = ErrorCode::TooLarge;
      break;
    case 416:
      code = ErrorCode::RangeNotSatisfiable;
      break;
    case 429:
      code = ErrorCode::Unavailable;
      retryable = true;
      break;
    default:
      if (status >= 500) {
        code = ErrorCode::Unavailable;
        retryable = true;
      }
      break;
  }
  std::string text = describe(op, path) + ": " + std::to_string(status);
  if (!reason.empty()) text += " " + reason;
  if (!message.empty()) text += ": " + message;
  Error e = make_error(code, std::move(text));
  e.http_status = static_cast<int>(status);
  e.provider_code = reason;
  e.retryable = retryable;
  return e;
}

Error transport_error(Error error, std::string_view op, const ObjectPath& path) {
  error.message = describe(op, path) + ": " + error.message;
  return error;
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text) {
  std::tm tm{};
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (std::sscanf(std::string(text).c_str(), "%d-%d-%dT%d:%d:%d", &year, &month, &day, &hour,
                  &minute, &second) != 6) {
    return std::nullopt;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  auto whole = utc_time_point(tm);
  if (!whole) return std::nullopt;
  auto tp = *whole;
  if (const auto dot = text.find('.'); dot != std::string_view::npos) {
    std::size_t end = dot + 1;
    std::int64_t frac = 0;
    int digits = 0;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end])) && digits < 6) {
      frac = frac * 10 + (text[end] - '0');
      ++end;
      ++digits;
    }
    while (digits++ < 6) frac *= 10;
    tp += std::chrono::microseconds(frac);
  }
  return tp;
}

Result<ObjectInfo> parse_object(const json::value& resource, std::string_view bucket) {
  auto bad = [](std::string_view what) {
    return make_error(ErrorCode::Corrupt, "gcs object resource without " + std::string(what));
  };
  if (!resource.is_object()) return bad("an object");
  const auto& o = resource.as_object();
  auto text = [&](std::string_view key) -> std::optional<std::string_view> {
    const auto* v = o.if_contains(key);
    if (v == nullptr || !v->is_string()) return std::nullopt;
    return std::string_view(v->as_string());
  };
  const auto name = text("name");
  const auto size = text("size");
  const auto generation = text("generation");
  if (!name) return bad("name");
  if (!generation) return bad("generation");
  ObjectInfo info;
  info.path = ObjectPath{std::string(bucket), std::string(*name)};
  if (size) {
    const auto [p, ec] = std::from_chars(size->data(), size->data() + size->size(), info.size);
    if (ec != std::errc() || p != size->data() + size->size()) return bad("a numeric size");
  } else {
    return bad("size");
  }
  info.etag = std::string(*generation);
  if (const auto updated = text("updated")) {
    if (auto tp = parse_rfc3339(*updated)) info.last_modified = *tp;
  }
  return info;
}

Result<ObjectInfo> parse_object_text(std::string_view body, std::string_view bucket,
                                     std::string_view op, const ObjectPath& path) {
  boost::system::error_code ec;
  const json::value parsed = json::parse(body, ec);
  if (ec) return make_error(ErrorCode::Corrupt, describe(op, path) + ": the answer is not JSON");
  auto info = parse_object(parsed, bucket);
  if (!info) {
    Error e = std::move(info).error();
    e.message = describe(op, path) + ": " + e.message;
    return e;
  }
  return info;
}

std::optional<std::string> generation_of(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  if (etag.empty() || etag.size() > 20) return std::nullopt;
  for (const char c : etag) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return std::string(etag);
}

std::optional<std::uint64_t> persisted_from_range(std::optional<std::string_view> range) {
  if (!range) return 0;
  std::string_view r = *range;
  if (!r.starts_with("bytes=0-")) return std::nullopt;
  r.remove_prefix(8);
  std::uint64_t last = 0;
  const auto [p, ec] = std::from_chars(r.data(), r.data() + r.size(), last);
  if (ec != std::errc() || p != r.data() + r.size()) return std::nullopt;
  return last + 1;
}

}  // namespace stowage::store::gcs::internal
