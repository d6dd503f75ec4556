// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/io/stream.hpp"

/// The HTTP client seam that every cloud provider talks through. Providers build requests
/// (signed by auth/), the transport moves the bytes. Tests substitute a scripted transport to
/// inject faults (a 503 on part N, a reset mid-body) deterministically.
namespace stowage::http {

struct Header {
  std::string name;
  std::string value;
};

/// Case-insensitive lookup in a header list; nullopt when absent.
std::optional<std::string_view> find_header(const std::vector<Header>& headers,
                                            std::string_view name);

struct Request {
  std::string method = "GET";  ///< GET, HEAD, PUT, POST, DELETE
  std::string url;             ///< absolute, already percent-encoded as it goes on the wire
  std::vector<Header> headers;
  /// A body held in memory (small requests: XML, JSON, a part already buffered).
  std::span<const std::byte> body;
  /// Or a streamed body of `body_size` bytes; the transport reads it as it sends.
  io::Reader* body_reader = nullptr;
  std::optional<std::uint64_t> body_size;
  /// `host:port:address:port` entries (libcurl CONNECT_TO): send requests for a virtual host to
  /// another address, as tests do for `<bucket>.s3.localhost`.
  std::vector<std::string> connect_to;
  std::chrono::milliseconds connect_timeout{10'000};
  /// The transfer fails when fewer than 1 byte per second moves for this long.
  std::chrono::milliseconds stall_timeout{60'000};
};

/// A response read whole (small bodies: XML listings, JSON, errors).
struct Response {
  long status = 0;
  std::vector<Header> headers;
  std::vector<std::byte> body;

  std::optional<std::string_view> header(std::string_view name) const {
    return find_header(headers, name);
  }
  std::string_view body_text() const {
    return {reinterpret_cast<const char*>(body.data()), body.size()};
  }
};

/// A response whose body is read as it arrives; memory stays bounded by one buffer.
class ResponseStream : public io::Reader {
 public:
  virtual long status() const = 0;
  virtual const std::vector<Header>& headers() const = 0;
  std::optional<std::string_view> header(std::string_view name) const {
    return find_header(headers(), name);
  }
};

class Transport {
 public:
  virtual ~Transport() = default;
  /// Sends a request and reads the whole response (up to `max_body_bytes`, TooLarge beyond).
  /// A transport failure (refused, reset, timeout, TLS) is an Error with retryable = true; any
  /// HTTP status, 5xx included, is a Response for the caller to interpret.
  virtual Result<Response> send(const Request& request,
                                std::uint64_t max_body_bytes = 64 << 20) = 0;
  /// Sends a request and returns once the status and headers are in; the body streams.
  virtual Result<std::unique_ptr<ResponseStream>> open(const Request& request) = 0;
};

struct CurlOptions {
  bool verify_tls = true;
  /// Connections kept for reuse (per transport).
  std::size_t max_idle_handles = 16;
  /// Bytes buffered per streaming response before libcurl is paused.
  std::size_t stream_buffer_bytes = 1 << 20;
};

/// The libcurl transport. Thread-safe: each call takes a pooled easy handle (keeping its
/// connection alive for the next call).
std::unique_ptr<Transport> make_curl_transport(CurlOptions options = {});

/// The URL without its query string, for messages: presigned and SAS queries hold secrets.
std::string redact_url(std::string_view url);

}  // namespace stowage::http
