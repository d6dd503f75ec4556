// SPDX-License-Identifier: Apache-2.0
#include "server/range.hpp"

#include <charconv>
#include <optional>

namespace stowage::server {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::uint64_t> parse_number(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return value;
}

}  // namespace

RangeRequest parse_range(std::string_view header, std::uint64_t size) {
  RangeRequest full;
  header = trim(header);
  constexpr std::string_view kUnit = "bytes=";
  if (header.size() < kUnit.size()) return full;
  for (std::size_t i = 0; i < kUnit.size(); ++i) {
    const char c = header[i];
    if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != kUnit[i]) return full;
  }
  const std::string_view spec = trim(header.substr(kUnit.size()));
  if (spec.find(',') != std::string_view::npos) return full;
  const std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return full;
  const std::string_view first = trim(spec.substr(0, dash));
  const std::string_view last = trim(spec.substr(dash + 1));

  RangeRequest out;
  out.kind = RangeRequest::Kind::Partial;
  if (first.empty()) {  // suffix: the last N bytes
    const auto n = parse_number(last);
    if (!n) return full;
    if (*n == 0 || size == 0) return {RangeRequest::Kind::Unsatisfiable, 0, 0};
    out.length = std::min(*n, size);
    out.offset = size - out.length;
    return out;
  }
  const auto start = parse_number(first);
  if (!start) return full;
  std::optional<std::uint64_t> end;
  if (!last.empty()) {
    end = parse_number(last);
    if (!end || *end < *start) return full;
  }
  if (*start >= size) return {RangeRequest::Kind::Unsatisfiable, 0, 0};
  const std::uint64_t stop = end ? std::min(*end, size - 1) : size - 1;
  out.offset = *start;
  out.length = stop - *start + 1;
  return out;
}

}  // namespace stowage::server
