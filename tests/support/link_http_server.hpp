// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace stowage::testing {

/// One request as the test server read it.
struct RawRequest {
  std::string method;
  std::string target;  ///< as sent: path and query
  std::string path;    ///< the target without its query
  std::vector<std::pair<std::string, std::string>> headers;

  /// Case-insensitive header lookup.
  std::optional<std::string> header(std::string_view name) const;
};

/// What a route answers.
struct RawResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// Content-Length to announce when it is not body.size() (a lie, for the huge route).
  std::optional<std::uint64_t> content_length;
  /// Send no Content-Length: the body ends when the connection closes.
  bool until_close = false;
  /// After `stall_after` body bytes, send nothing for this long (or until the server stops).
  std::chrono::milliseconds stall{0};
  std::size_t stall_after = 0;
};

using Handler = std::function<RawResponse(const RawRequest&)>;

/// How serve_bytes() behaves.
struct BytesRoute {
  bool head = true;    ///< false: HEAD answers 405
  bool ranges = true;  ///< false: Range is ignored (200 with the whole body)
  std::string etag = "\"v1\"";
  std::string last_modified = "Tue, 02 Jan 2024 03:04:05 GMT";
};

/// A small HTTP/1.1 server for the public-URL store's tests: raw POSIX sockets, one thread per
/// connection, one request per connection (Connection: close), on `address` and an ephemeral
/// port. It counts requests per path, so that tests can prove nothing reached a forbidden place.
class LinkHttpServer {
 public:
  /// Listens at once; throws std::runtime_error when it cannot.
  explicit LinkHttpServer(std::string address = "127.0.0.1");
  /// Stops accepting, wakes stalled routes and joins every thread.
  ~LinkHttpServer();
  LinkHttpServer(const LinkHttpServer&) = delete;
  LinkHttpServer& operator=(const LinkHttpServer&) = delete;

  std::uint16_t port() const { return port_; }
  /// "http://<address>:<port>".
  std::string base_url() const;

  /// Answers requests for `path` (without query) with `handler`. Unknown paths get 404.
  void route(const std::string& path, Handler handler);
  /// Serves `bytes` at `path`: HEAD, GET, single Range, If-Match, per `options`.
  void serve_bytes(const std::string& path, std::string bytes, BytesRoute options = {});
  /// Answers with `status` and a Location.
  void redirect(const std::string& path, std::string location, int status = 302);

  /// Requests received for `path`, and in all.
  std::size_t hits(const std::string& path) const;
  std::size_t total_hits() const;
  /// Every request received so far, in order.
  std::vector<RawRequest> requests() const;

 private:
  void accept_loop();
  void serve(int fd);

  std::string address_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::thread> workers_;
  std::map<std::string, Handler> routes_;
  std::vector<RawRequest> requests_;
};

/// `n` deterministic bytes that differ at every offset mod 251 (a prime, so ranges show shifts).
std::string test_bytes(std::size_t n);

}  // namespace stowage::testing
