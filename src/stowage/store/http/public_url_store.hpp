// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/http/transport.hpp"
#include "stowage/store/object_store.hpp"

struct sockaddr;

/// Public http(s) URLs as a read-only store, for items added by link. Every request is checked
/// against server-side request forgery: the host is resolved once, every address it resolves to
/// must be public (not loopback, link-local, private, shared, multicast, reserved or
/// unspecified, in IPv4, IPv6 or IPv4-mapped/embedded form) unless the operator allows private
/// networks, and the connection is pinned to the checked address so that DNS cannot change it
/// afterwards. Redirects are followed by hand, each hop checked the same way, up to a limit.
namespace stowage::store::http_links {

struct PublicUrlOptions {
  /// Let links reach loopback and private addresses (STOWAGE_LINKS_ALLOW_PRIVATE_NETWORKS).
  bool allow_private_networks = false;
  int max_redirects = 5;
  /// Objects larger than this are refused (TooLarge) before any byte is read.
  std::uint64_t max_object_bytes = 50ull << 30;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds stall_timeout{30000};
  /// Numeric addresses (as inet_ntop prints them, e.g. "10.0.0.7", "fd00::7") that links may
  /// reach even when private networks are not allowed: a mirror the operator trusts. They are
  /// still refused when unspecified, multicast or broadcast. Tests use it to make one loopback
  /// server stand for a public host.
  std::vector<std::string> allowed_addresses;
  /// Resolves a host name to numeric addresses; getaddrinfo(3) when unset. A seam for tests
  /// (DNS rebinding); whatever it returns is checked like getaddrinfo's answer.
  std::function<Result<std::vector<std::string>>(const std::string& host)> resolver;
};

/// The path of a URL in this store: bucket "http" or "https", key "<host[:port]>/<path>[?query]"
/// (everything after "://", verbatim).
ObjectPath path_of_url(std::string_view url);
/// The URL of such a path.
std::string url_of_path(const ObjectPath& path);

/// PermissionDenied (saying which range) when `address` may not be reached under the policy.
Status check_address(const sockaddr* address, bool allow_private_networks);

/// Read-only: stat (HEAD, or a one-byte ranged GET where HEAD is refused), open_read with
/// ranges, open_random. open_write, list and remove are Unsupported. Thread-safe.
class PublicUrlStore final : public ObjectStore {
 public:
  static std::unique_ptr<PublicUrlStore> make(PublicUrlOptions options,
                                              std::shared_ptr<http::Transport> transport);
  ~PublicUrlStore() override;

  std::string_view name() const override { return "http"; }
  const Capabilities& capabilities() const override;
  Result<ObjectInfo> stat(const ObjectPath& path) override;
  Result<std::unique_ptr<io::Reader>> open_read(const ObjectPath& path,
                                                const ReadOptions& options) override;
  Result<std::unique_ptr<io::RandomAccessReader>> open_random(const ObjectInfo& info) override;
  Result<std::unique_ptr<Writer>> open_write(const ObjectPath& path,
                                             const WriteOptions& options) override;
  Result<ListPage> list(const ObjectPath& prefix, const ListOptions& options) override;
  Status remove(const ObjectPath& path) override;

 private:
  struct Impl;
  explicit PublicUrlStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace stowage::store::http_links
