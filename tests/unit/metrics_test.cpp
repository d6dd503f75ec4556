// SPDX-License-Identifier: Apache-2.0
#include "stowage/metrics/metrics.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace stowage::metrics {
namespace {

using namespace std::chrono_literals;

TEST(Metrics, CountersAndGaugesInPrometheusText) {
  Registry r;
  r.counter("x_total", "Things.", {{"cache", "storage"}}).inc(3);
  r.counter("x_total", "ignored", {{"cache", "previews"}}).inc();
  r.gauge("y_bytes", "Bytes.").set(42);
  const std::string text = r.render();
  EXPECT_NE(text.find("# HELP x_total Things.\n# TYPE x_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("x_total{cache=\"storage\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("x_total{cache=\"previews\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE y_bytes gauge\ny_bytes 42\n"), std::string::npos);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Registry r;
  auto& h = r.histogram("lat_seconds", "Latency.", {{"method", "images.list"}});
  h.observe(500us);
  h.observe(20ms);
  h.observe(2min);
  const std::string text = r.render();
  EXPECT_NE(text.find("lat_seconds_bucket{method=\"images.list\",le=\"0.001\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("lat_seconds_bucket{method=\"images.list\",le=\"0.025\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{method=\"images.list\",le=\"60\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{method=\"images.list\",le=\"+Inf\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count{method=\"images.list\"} 3\n"), std::string::npos);
}

TEST(Metrics, LabelValuesAreEscaped) {
  EXPECT_EQ(render_labels({{"a", "x\"y\\z\nw"}}), "{a=\"x\\\"y\\\\z\\nw\"}");
}

TEST(Metrics, ConcurrentIncrementsAreNotLost) {
  Registry r;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) r.counter("n_total", "N.").inc();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.counter("n_total", "N.").value(), 80000u);
}

}  // namespace
}  // namespace stowage::metrics
