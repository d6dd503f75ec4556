// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace stowage::testing {

/// A TCP proxy on 127.0.0.1 (ephemeral port) in front of an HTTP server, for tests that count
/// what a client sends and inject faults a real network has: it forwards bytes both ways,
/// counts them, and on chosen connections answers the first request with a 503 or resets the
/// connection part way through the upload. Faults are deterministic (by connection number).
class FaultProxy {
 public:
  struct Faults {
    /// Every `fail_every`-th connection (0: none) gets `503 Slow Down` to its first request and is
    /// closed, without the request reaching the server.
    unsigned fail_every = 0;
    /// Each time the bytes sent upstream (over all connections) pass another multiple of
    /// `reset_every_bytes` (0: never), the connection sending them is reset (RST) mid-request.
    std::uint64_t reset_every_bytes = 0;
    /// At most this many resets in all, so that a large upload can get through in the end.
    unsigned max_resets = 8;
  };

  FaultProxy(std::string upstream_host, unsigned short upstream_port, Faults faults);
  /// A proxy that only counts.
  FaultProxy(std::string upstream_host, unsigned short upstream_port)
      : FaultProxy(std::move(upstream_host), upstream_port, Faults{0, 0, 0}) {}
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  unsigned short port() const { return port_; }
  /// Bytes from clients to the server (requests: headers and bodies).
  std::uint64_t bytes_up() const { return up_.load(); }
  std::uint64_t bytes_down() const { return down_.load(); }
  unsigned faults_injected() const { return errors_.load() + resets_.load(); }
  unsigned errors_injected() const { return errors_.load(); }  ///< 503s answered
  unsigned resets_injected() const { return resets_.load(); }  ///< connections reset mid-upload
  void set_faults(Faults faults);

 private:
  void accept_loop();
  void serve(int client, unsigned number);
  /// Counts `n` bytes going upstream; true when they cross a reset point.
  bool count_up(std::uint64_t n);

  std::string host_;
  unsigned short upstream_port_;
  std::atomic<unsigned> fail_every_{0};
  std::atomic<std::uint64_t> reset_every_bytes_{0};
  std::atomic<unsigned> max_resets_{0};
  int listener_ = -1;
  unsigned short port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> up_{0}, down_{0};
  std::atomic<unsigned> errors_{0}, resets_{0}, connections_{0};
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

}  // namespace stowage::testing
