// SPDX-License-Identifier: Apache-2.0
#include "stowage/metrics/metrics.hpp"

#include <cstdio>
#include <mutex>

namespace stowage::metrics {

void Histogram::observe(std::chrono::nanoseconds elapsed) noexcept {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  std::size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, elapsed.count())),
                    std::memory_order_relaxed);
}

std::uint64_t Histogram::cumulative(std::size_t i) const noexcept {
  std::uint64_t total = 0;
  for (std::size_t b = 0; b <= i && b < buckets_.size(); ++b)
    total += buckets_[b].load(std::memory_order_relaxed);
  return total;
}

double Histogram::sum_seconds() const noexcept {
  return static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
}

std::string render_labels(const Labels& labels) {
  if (labels.empty()) return {};
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first;
    out += "=\"";
    for (char c : labels[i].second) {
      if (c == '\\' || c == '"') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  out += '}';
  return out;
}

Registry::Family& Registry::family(std::string_view name, std::string_view help, Kind kind) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{}).first;
    it->second.kind = kind;
    it->second.help = std::string(help);
  }
  return it->second;
}

namespace {

/// Finds the series under a shared lock, or creates it under an exclusive one.
template <class T, class Map, class Make>
T& find_or_create(std::shared_mutex& mutex, const std::string& labels, Map map_of, Make make) {
  {
    std::shared_lock lock(mutex);
    if (auto* map = map_of(false)) {
      if (auto it = map->find(labels); it != map->end()) return *it->second;
    }
  }
  std::unique_lock lock(mutex);
  auto& map = *map_of(true);
  auto& slot = map[labels];
  if (!slot) slot = make();
  return *slot;
}

}  // namespace

Counter& Registry::counter(std::string_view name, std::string_view help, const Labels& labels) {
  return find_or_create<Counter>(
      mutex_, render_labels(labels),
      [&](bool create) -> std::map<std::string, std::unique_ptr<Counter>>* {
        if (!create) {
          auto it = families_.find(name);
          return it == families_.end() ? nullptr : &it->second.counters;
        }
        return &family(name, help, Kind::Counter).counters;
      },
      [] { return std::make_unique<Counter>(); });
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  return find_or_create<Gauge>(
      mutex_, render_labels(labels),
      [&](bool create) -> std::map<std::string, std::unique_ptr<Gauge>>* {
        if (!create) {
          auto it = families_.find(name);
          return it == families_.end() ? nullptr : &it->second.gauges;
        }
        return &family(name, help, Kind::Gauge).gauges;
      },
      [] { return std::make_unique<Gauge>(); });
}

Histogram& Registry::histogram(std::string_view name, std::string_view help, const Labels& labels) {
  return find_or_create<Histogram>(
      mutex_, render_labels(labels),
      [&](bool create) -> std::map<std::string, std::unique_ptr<Histogram>>* {
        if (!create) {
          auto it = families_.find(name);
          return it == families_.end() ? nullptr : &it->second.histograms;
        }
        return &family(name, help, Kind::Histogram).histograms;
      },
      [] { return std::make_unique<Histogram>(); });
}

namespace {

/// Adds `le="..."` to rendered labels ("{a=\"x\"}" or "").
std::string with_le(const std::string& labels, const std::string& le) {
  const std::string pair = "le=\"" + le + "\"";
  if (labels.empty()) return "{" + pair + "}";
  return labels.substr(0, labels.size() - 1) + "," + pair + "}";
}

std::string format_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

std::string Registry::render() const {
  std::shared_lock lock(mutex_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n";
    switch (f.kind) {
      case Kind::Counter:
        out += "# TYPE " + name + " counter\n";
        for (const auto& [labels, c] : f.counters)
          out += name + labels + " " + std::to_string(c->value()) + "\n";
        break;
      case Kind::Gauge:
        out += "# TYPE " + name + " gauge\n";
        for (const auto& [labels, g] : f.gauges)
          out += name + labels + " " + std::to_string(g->value()) + "\n";
        break;
      case Kind::Histogram:
        out += "# TYPE " + name + " histogram\n";
        for (const auto& [labels, h] : f.histograms) {
          for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i) {
            out += name + "_bucket" + with_le(labels, format_double(Histogram::kBounds[i])) + " " +
                   std::to_string(h->cumulative(i)) + "\n";
          }
          out += name + "_bucket" + with_le(labels, "+Inf") + " " +
                 std::to_string(h->cumulative(Histogram::kBounds.size())) + "\n";
          out += name + "_sum" + labels + " " + format_double(h->sum_seconds()) + "\n";
          out += name + "_count" + labels + " " + std::to_string(h->count()) + "\n";
        }
        break;
    }
  }
  return out;
}

}  // namespace stowage::metrics
