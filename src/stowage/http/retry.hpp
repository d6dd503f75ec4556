// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <functional>
#include <random>
#include <thread>

#include "stowage/base/error.hpp"

namespace stowage::http {

/// Exponential backoff with full jitter (each wait is uniform in [0, min(max, base * 2^n))), the
/// scheme that spreads retries of many clients best.
struct RetryPolicy {
  int max_attempts = 5;
  std::chrono::milliseconds base_delay{100};
  std::chrono::milliseconds max_delay{5000};
  /// Tests replace the sleep to run instantly and count the waits.
  std::function<void(std::chrono::milliseconds)> sleep = [](std::chrono::milliseconds d) {
    std::this_thread::sleep_for(d);
  };

  /// The wait before attempt `attempt` (1 = the first retry).
  std::chrono::milliseconds delay(int attempt) const {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    const auto cap =
        std::min<std::int64_t>(max_delay.count(), base_delay.count() << std::min(attempt - 1, 20));
    return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(0, cap)(rng));
  }
};

/// Calls `attempt()` until it succeeds, fails with an error that is not retryable, or runs out
/// of attempts; returns the last result.
template <class F>
auto with_retries(const RetryPolicy& policy, F&& attempt) -> decltype(attempt()) {
  for (int n = 1;; ++n) {
    auto result = attempt();
    if (result || !result.error().retryable || n >= policy.max_attempts) return result;
    policy.sleep(policy.delay(n));
  }
}

}  // namespace stowage::http
