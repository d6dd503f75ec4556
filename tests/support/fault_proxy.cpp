// SPDX-License-Identifier: Apache-2.0
#include "support/fault_proxy.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace stowage::testing {
namespace {

int connect_to(const std::string& host, unsigned short port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(found);
  return fd;
}

void reset(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

}  // namespace

FaultProxy::FaultProxy(std::string upstream_host, unsigned short upstream_port, Faults faults)
    : host_(std::move(upstream_host)), upstream_port_(upstream_port) {
  set_faults(faults);
  listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener_, 64) != 0) {
    throw std::runtime_error("fault proxy: cannot listen");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

FaultProxy::~FaultProxy() {
  stopping_ = true;
  ::shutdown(listener_, SHUT_RDWR);
  ::close(listener_);
  acceptor_.join();
  for (auto& t : workers_) t.join();
}

void FaultProxy::set_faults(Faults faults) {
  fail_every_ = faults.fail_every;
  reset_every_bytes_ = faults.reset_every_bytes;
  max_resets_ = faults.max_resets;
}

bool FaultProxy::count_up(std::uint64_t n) {
  const std::uint64_t before = up_.fetch_add(n);
  const std::uint64_t every = reset_every_bytes_.load();
  return every != 0 && before / every != (before + n) / every && resets_.load() < max_resets_;
}

void FaultProxy::accept_loop() {
  for (;;) {
    pollfd p{listener_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) {
      if (stopping_) return;
      continue;
    }
    const int client = ::accept(listener_, nullptr, nullptr);
    if (client < 0) {
      if (stopping_) return;
      continue;
    }
    const unsigned number = ++connections_;
    workers_.emplace_back([this, client, number] { serve(client, number); });
  }
}

void FaultProxy::serve(int client, unsigned number) {
  const unsigned fail_every = fail_every_.load();
  if (fail_every != 0 && number % fail_every == 0) {
    // Read the request's head, answer 503 and close: the request never reaches the server.
    std::string head;
    char buf[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(client, buf, sizeof buf, 0);
      if (n <= 0) break;
      head.append(buf, static_cast<std::size_t>(n));
    }
    const std::string body =
        "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>";
    const std::string reply =
        "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    ::send(client, reply.data(), reply.size(), MSG_NOSIGNAL);
    ++errors_;
    ::shutdown(client, SHUT_RDWR);
    ::close(client);
    return;
  }
  const int server = connect_to(host_, upstream_port_);
  if (server < 0) {
    ::close(client);
    return;
  }
  char buf[64 * 1024];
  pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
  while (!stopping_) {
    if (::poll(fds, 2, 200) < 0) break;
    bool done = false;
    for (int i = 0; i < 2 && !done; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, 0);
      if (n <= 0) {
        done = true;
        break;
      }
      const int to = i == 0 ? server : client;
      if (i == 0) {
        if (count_up(static_cast<std::uint64_t>(n))) {
          ++resets_;
          reset(client);
          reset(server);
          return;
        }
      } else {
        down_ += static_cast<std::uint64_t>(n);
      }
      for (ssize_t off = 0; off < n;) {
        const ssize_t w = ::send(to, buf + off, static_cast<std::size_t>(n - off), MSG_NOSIGNAL);
        if (w <= 0) {
          done = true;
          break;
        }
        off += w;
      }
    }
    if (done) break;
  }
  ::close(client);
  ::close(server);
}

}  // namespace stowage::testing
