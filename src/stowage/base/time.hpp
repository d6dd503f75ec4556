// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <ctime>
#include <optional>

namespace stowage {

/// The UTC calendar time `tm` (as strptime or sscanf filled it from a remote's answer) as a
/// time point; nullopt when it is invalid or outside what a system_clock time point holds
/// (nanoseconds: about the years 1678 to 2262). Remotes answer dates such as year 1 or 9999,
/// and converting those with from_time_t overflows (undefined behaviour).
inline std::optional<std::chrono::system_clock::time_point> utc_time_point(std::tm tm) {
  const std::time_t seconds = timegm(&tm);
  if (seconds == static_cast<std::time_t>(-1) && tm.tm_year != 69) return std::nullopt;
  using Clock = std::chrono::system_clock;
  constexpr auto kMax = std::chrono::duration_cast<std::chrono::seconds>(Clock::duration::max());
  if (seconds > kMax.count() - 1 || seconds < -(kMax.count() - 1)) return std::nullopt;
  return Clock::time_point(std::chrono::seconds(seconds));
}

}  // namespace stowage
