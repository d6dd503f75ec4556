// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace stowage::testing {

/// An HTTP proxy in front of a test server on 127.0.0.1, for tests that count what a client
/// sends and inject the faults of a real network: tests/fakes/fault_proxy.mjs (Node built-ins
/// only), run as a child process for the object's lifetime. Requests are forwarded unchanged
/// (Host included, so signatures still match); each is logged with its body's size and what
/// happened to it.
class FaultProxy {
 public:
  struct Faults {
    /// Every `fail_every`-th request (0: none) is answered `503 SlowDown` without reaching the
    /// server.
    unsigned fail_every = 0;
    /// Every `reset_every`-th other request (0: none) has its connection reset mid-body:
    /// mid-upload when it has a body, else mid-download.
    unsigned reset_every = 0;
  };
  /// One request as the proxy saw it.
  struct Request {
    std::string method;
    std::string path;  ///< without the query
    std::uint64_t body_bytes = 0;
    std::string outcome;  ///< ok, 503, reset-upload, reset-download, closed
  };

  /// Starts the proxy in front of 127.0.0.1:`upstream_port`; throws std::runtime_error when it
  /// does not listen within 5 s.
  FaultProxy(unsigned short upstream_port, Faults faults);
  /// A proxy that only counts.
  explicit FaultProxy(unsigned short upstream_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  unsigned short port() const { return port_; }
  /// Every request logged so far, in order.
  std::vector<Request> requests() const;
  /// Request-body bytes that reached the proxy, over every request.
  std::uint64_t bytes_up() const;
  unsigned errors_injected() const;  ///< 503s answered
  unsigned resets_injected() const;  ///< connections reset mid-body

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  unsigned short port_ = 0;
};

}  // namespace stowage::testing
