// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "stowage/base/error.hpp"
#include "stowage/config/config.hpp"
#include "stowage/service/service.hpp"

namespace stowage::metrics {
class Registry;
}

namespace stowage::server {

class Previews;
class ConsoleApi;

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;    ///< 0 picks a free port (tests)
  unsigned io_threads = 0;      ///< 0 = one per core
  unsigned worker_threads = 0;  ///< blocking work (catalog, disk); 0 = four per core
  std::uint64_t max_upload_bytes = 50ull << 30;
  std::uint64_t max_json_bytes = 16ull << 20;
  /// Longest wait for the peer on one read or write; an idle keep-alive connection is closed
  /// after it too.
  std::chrono::seconds io_timeout{300};
  /// Memory for the bytes of small, hot stored objects (content-addressed, so never stale);
  /// downloads found there are answered without leaving the event loop. 0 turns it off.
  std::uint64_t hot_cache_bytes = 64ull << 20;
  /// How long stop() lets requests in flight finish.
  std::chrono::seconds drain_timeout{10};
  /// Answers `/previews/...` when set (server/previews.hpp); not owned.
  Previews* previews = nullptr;
  /// Serves `/metrics` and records per-method request latency when set; not owned.
  metrics::Registry* metrics = nullptr;
  /// Who may read `/metrics` (config::MetricsAccess); others get 401.
  config::MetricsAccess metrics_access = config::MetricsAccess::Loopback;
  /// The web console when set (server/console.hpp, server/console_api.hpp): its static files at
  /// `/` and `/console/...`, and its `console.*` API methods; not owned.
  ConsoleApi* console = nullptr;
};

/// The HTTP server: `/public/api/v3/<method>` (the Supervisely-compatible API) and `/healthz`.
/// Beast coroutines on `io_threads` threads; anything that blocks (catalog, disk) runs on a
/// separate worker pool, so the event loop never waits on it.
/// Whether a `/metrics` request may be answered: `loopback` is whether the client's address is a
/// loopback one, `valid_token` whether its x-api-key authenticated.
bool metrics_allowed(config::MetricsAccess access, bool loopback, bool valid_token);

class Server {
 public:
  Server(service::Service& service, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds and starts serving on background threads; returns the bound port.
  Result<std::uint16_t> start();
  /// Stops accepting, lets requests in flight finish (up to drain_timeout), and joins the
  /// threads. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stowage::server
