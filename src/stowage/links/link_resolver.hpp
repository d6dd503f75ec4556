// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/links/remote_links.hpp"
#include "stowage/store/http/public_url_store.hpp"
#include "stowage/store/object_store.hpp"
#include "stowage/uri/locator.hpp"

namespace stowage::links {

/// Where a link's bytes are: the store to ask and the object in it.
struct LinkTarget {
  std::shared_ptr<store::ObjectStore> store;  ///< kept alive across a reload
  store::ObjectPath path;
  uri::Locator locator;
  std::string connection;  ///< the connection's name; empty for public URLs
  std::vector<std::string> teams;  ///< the connection's `teams` (who may use it; Connection)
};

/// A provider as `remote-storage.available_providers` reports it.
struct ProviderSummary {
  std::string id;    ///< "minio", "azure", "google", "fs"
  std::string name;  ///< "Amazon S3", ...
  std::string default_protocol;
  std::vector<std::string> protocols;
  std::vector<std::string> buckets;
};

/// Resolves links to stores: the only way a link reaches bytes. A cloud or fs link is served
/// only through a connection of its provider that lists its bucket; anything else is
/// PermissionDenied with a message that says what to configure. Public URLs go through the
/// SSRF-checked public URL store. Thread-safe; reload() swaps the configuration atomically
/// (requests in flight keep the stores they resolved).
class LinkResolver {
 public:
  LinkResolver(RemoteLinks config, store::http_links::PublicUrlOptions url_options);

  Result<LinkTarget> resolve(std::string_view link);
  /// resolve() of a prefix to list: the key may be empty, and public URLs are refused (they
  /// cannot be listed).
  Result<LinkTarget> resolve_prefix(std::string_view link);
  /// Replaces the connections; stores of connections that did not change are kept.
  void reload(RemoteLinks config);
  /// What every link store goes through once opened (the server's storage cache): gets the
  /// provider's store and the connection's name ("" for public URLs), returns the store to use.
  /// Set before the first resolve(); public URLs go through it at once.
  using StoreWrapper = std::function<std::shared_ptr<store::ObjectStore>(
      std::shared_ptr<store::ObjectStore> store, const Connection* connection)>;
  void set_store_wrapper(StoreWrapper wrapper);
  /// The configuration in force.
  std::shared_ptr<const RemoteLinks> config() const;
  /// Providers with at least one connection, with their buckets.
  std::vector<ProviderSummary> available_providers() const;
  /// The same, over only the connections for which `usable` is true.
  std::vector<ProviderSummary> available_providers(
      const std::function<bool(const Connection&)>& usable) const;
  /// Every provider this build can reach.
  static std::vector<ProviderSummary> supported_providers();

 private:
  Result<std::shared_ptr<store::ObjectStore>> store_for(const Connection& connection);
  Result<LinkTarget> resolve_locator(uri::Locator locator);

  mutable std::mutex mutex_;
  std::shared_ptr<const RemoteLinks> config_;
  std::map<std::string, std::shared_ptr<store::ObjectStore>> stores_;  ///< by connection name
  std::shared_ptr<store::ObjectStore> public_urls_;
  StoreWrapper wrapper_;
};

}  // namespace stowage::links
