// SPDX-License-Identifier: Apache-2.0
#include "support/link_http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <stdexcept>

namespace stowage::testing {

namespace {

/// Requests larger than this are dropped; the tests send small ones.
constexpr std::size_t kMaxRequestBytes = 64 * 1024;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::optional<RawRequest> read_request(int fd) {
  std::string data;
  char buffer[4096];
  while (data.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return std::nullopt;
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0 || data.size() > kMaxRequestBytes) return std::nullopt;
    data.append(buffer, static_cast<std::size_t>(n));
  }
  RawRequest r;
  std::size_t pos = data.find("\r\n");
  const std::string line = data.substr(0, pos);
  const auto sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) return std::nullopt;
  r.method = line.substr(0, sp1);
  r.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  r.path = r.target.substr(0, r.target.find('?'));
  for (pos += 2;;) {
    const auto end = data.find("\r\n", pos);
    if (end == pos || end == std::string::npos) break;
    const std::string h = data.substr(pos, end - pos);
    if (const auto colon = h.find(':'); colon != std::string::npos) {
      std::string value = h.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      r.headers.emplace_back(h.substr(0, colon), value);
    }
    pos = end + 2;
  }
  return r;
}

std::string reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 412:
      return "Precondition Failed";
    case 416:
      return "Range Not Satisfiable";
    default:
      return "Status";
  }
}

}  // namespace

std::optional<std::string> RawRequest::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) return v;
  }
  return std::nullopt;
}

std::string test_bytes(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i % 251);
  return s;
}

LinkHttpServer::LinkHttpServer(std::string address) : address_(std::move(address)) {
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener_ < 0) throw std::runtime_error("socket failed");
  const int one = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  if (::inet_pton(AF_INET, address_.c_str(), &sa.sin_addr) != 1 ||
      ::bind(listener_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
      ::listen(listener_, 64) != 0) {
    ::close(listener_);
    throw std::runtime_error("cannot listen on " + address_ + ": " + std::strerror(errno));
  }
  socklen_t len = sizeof sa;
  ::getsockname(listener_, reinterpret_cast<sockaddr*>(&sa), &len);
  port_ = ntohs(sa.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

LinkHttpServer::~LinkHttpServer() {
  stopping_ = true;
  acceptor_.join();
  ::close(listener_);
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mutex_);
    workers.swap(workers_);
  }
  for (auto& w : workers) w.join();
}

std::string LinkHttpServer::base_url() const {
  return "http://" + address_ + ":" + std::to_string(port_);
}

void LinkHttpServer::route(const std::string& path, Handler handler) {
  std::lock_guard lock(mutex_);
  routes_[path] = std::move(handler);
}

void LinkHttpServer::serve_bytes(const std::string& path, std::string bytes, BytesRoute options) {
  route(path, [bytes = std::move(bytes), options](const RawRequest& r) {
    RawResponse out;
    if (r.method == "HEAD" && !options.head) return RawResponse{.status = 405};
    out.headers = {{"ETag", options.etag},
                   {"Last-Modified", options.last_modified},
                   {"Accept-Ranges", options.ranges ? "bytes" : "none"}};
    if (const auto im = r.header("If-Match"); im && *im != "*" && *im != options.etag) {
      return RawResponse{.status = 412};
    }
    const auto range = r.header("Range");
    if (!range || !options.ranges || !range->starts_with("bytes=")) {
      out.body = bytes;
      return out;
    }
    const std::string spec = range->substr(6);
    const auto dash = spec.find('-');
    const std::uint64_t size = bytes.size();
    std::uint64_t first = 0, last = size == 0 ? 0 : size - 1;
    if (dash == 0) {  // suffix: the last n bytes
      const std::uint64_t n = std::stoull(spec.substr(1));
      first = size - std::min(n, size);
    } else {
      first = std::stoull(spec.substr(0, dash));
      if (dash + 1 < spec.size())
        last = std::min<std::uint64_t>(last, std::stoull(spec.substr(dash + 1)));
    }
    if (first >= size) {
      out.status = 416;
      out.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
      return out;
    }
    out.status = 206;
    out.headers.emplace_back(
        "Content-Range",
        "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" + std::to_string(size));
    out.body = bytes.substr(first, last - first + 1);
    return out;
  });
}

void LinkHttpServer::redirect(const std::string& path, std::string location, int status) {
  route(path, [location = std::move(location), status](const RawRequest&) {
    return RawResponse{.status = status, .headers = {{"Location", location}}};
  });
}

std::size_t LinkHttpServer::hits(const std::string& path) const {
  std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(std::count_if(
      requests_.begin(), requests_.end(), [&](const RawRequest& r) { return r.path == path; }));
}

std::size_t LinkHttpServer::total_hits() const {
  std::lock_guard lock(mutex_);
  return requests_.size();
}

std::vector<RawRequest> LinkHttpServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

void LinkHttpServer::accept_loop() {
  while (!stopping_) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mutex_);
    workers_.emplace_back([this, fd] {
      serve(fd);
      ::close(fd);
    });
  }
}

void LinkHttpServer::serve(int fd) {
  const auto request = read_request(fd);
  if (!request) return;
  Handler handler;
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(*request);
    if (const auto it = routes_.find(request->path); it != routes_.end()) handler = it->second;
  }
  const RawResponse response = handler ? handler(*request) : RawResponse{.status = 404};
  std::string head = "HTTP/1.1 " + std::to_string(response.status) + " " + reason(response.status) +
                     "\r\nConnection: close\r\n";
  for (const auto& [name, value] : response.headers) head += name + ": " + value + "\r\n";
  if (!response.until_close) {
    head += "Content-Length: " +
            std::to_string(response.content_length.value_or(response.body.size())) + "\r\n";
  }
  head += "\r\n";
  if (!send_all(fd, head) || request->method == "HEAD") return;
  std::string_view body = response.body;
  if (response.stall.count() > 0) {
    const std::size_t first = std::min(response.stall_after, body.size());
    if (!send_all(fd, body.substr(0, first))) return;
    body.remove_prefix(first);
    const auto until = std::chrono::steady_clock::now() + response.stall;
    while (!stopping_ && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  send_all(fd, body);
}

}  // namespace stowage::testing
