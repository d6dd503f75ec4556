// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// A small metrics registry rendered in the Prometheus text exposition format (version 0.0.4),
/// for `/metrics`. Series are created once and then updated with relaxed atomics: no lock on the
/// hot path once the caller keeps the reference it got.
namespace stowage::metrics {

/// Label pairs of one series, e.g. {{"cache", "storage"}}. Rendered in the order given.
using Labels = std::vector<std::pair<std::string, std::string>>;

/// A monotonically increasing count. Thread-safe, lock-free.
class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down (bytes in a cache). Thread-safe, lock-free.
class Gauge {
 public:
  void set(std::int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

/// A latency histogram with fixed bucket bounds (seconds). Thread-safe, lock-free.
class Histogram {
 public:
  /// Upper bounds of the buckets in seconds, ascending: 1 ms to 60 s covers a cached preview as
  /// well as a large upload; the +Inf bucket is implicit.
  static constexpr std::array<double, 14> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                     0.25,  0.5,    1,     2.5,  5,     10,   60};

  void observe(std::chrono::nanoseconds elapsed) noexcept;
  /// Cumulative count of observations <= kBounds[i] (i == kBounds.size() is +Inf).
  std::uint64_t cumulative(std::size_t i) const noexcept;
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  double sum_seconds() const noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
};

/// Owns every series. Lookups take a shared lock (an exclusive one only to create a series);
/// the references returned stay valid for the registry's lifetime, so hot paths look up once.
class Registry {
 public:
  /// The counter `name{labels}`, created at 0 the first time. `help` is kept from the first call.
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, const Labels& labels = {});

  /// Every series in the Prometheus text format, families sorted by name.
  std::string render() const;

 private:
  enum class Kind { Counter, Gauge, Histogram };
  struct Family {
    Kind kind = Kind::Counter;
    std::string help;
    std::map<std::string, std::unique_ptr<Counter>> counters;  // by rendered labels
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  Family& family(std::string_view name, std::string_view help, Kind kind);

  mutable std::shared_mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;
};

/// `{a="x",b="y"}` with Prometheus escaping (\\, \", \n); empty for no labels.
std::string render_labels(const Labels& labels);

}  // namespace stowage::metrics
