// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <optional>

#include "server/previews.hpp"
#include "server/server.hpp"
#include "stowage/config/config.hpp"
#include "stowage/links/link_resolver.hpp"

namespace stowage::server {

/// What `stowage serve` adds around the store and the service for issue 7: the metrics
/// registry, the storage cache (DATA_PATH/cache/storage: the bytes of a remote provider's
/// buckets, and of linked objects on every provider but `fs`, whose bytes are local already),
/// the preview cache (DATA_PATH/cache/previews), the preview URL signer (secret in
/// DATA_PATH/preview-secret, mode 0600) and the previews handler. CACHE_STORAGE_SIZE=0 or
/// CACHE_PREVIEWS_SIZE=0 turns that cache off. Built in steps because the service sits in the
/// middle:
/// ```
///   auto caches = Caches::open(config, *store, config.provider != config::Provider::Http);
///   caches->configure(service_options);
///   service::Service service(catalog, caches->store(), service_options);
///   caches->cache_links(resolver);
///   caches->attach(service, server_options);
/// ```
/// Must outlive the service and the server.
class Caches {
 public:
  /// Opens the caches (loading their indexes) and the signer. With `remote`, wraps `store` in a
  /// CachingStore (counting remote requests even when the storage cache is off).
  /// `signing_secret`: the preview-URL secret shared by the servers of a shared catalog;
  /// unset: the one in DATA_PATH/preview-secret.
  static Result<std::unique_ptr<Caches>> open(
      const config::Config& config, store::ObjectStore& store, bool remote,
      std::optional<std::string> signing_secret = std::nullopt);

  /// The store the service should use: the CachingStore, or the store given.
  store::ObjectStore& store() noexcept { return caching_ ? *caching_ : store_; }
  /// Lets the API sign previewUrl.
  void configure(service::ServiceOptions& options) const;
  /// Puts the storage cache in front of every link store the resolver opens (but `fs`), keyed
  /// by connection, bucket and key, revalidated after CACHE_STORAGE_REVALIDATE. Links are the
  /// main source of remote reads: the docs' caching promise is about them most of all.
  void cache_links(links::LinkResolver& resolver);
  /// Creates the previews handler and points the server options at it and at the metrics.
  void attach(service::Service& service, ServerOptions& options);

  metrics::Registry& metrics() noexcept { return metrics_; }
  cache::DiskCache* storage_cache() noexcept { return storage_cache_.get(); }
  cache::DiskCache* preview_cache() noexcept { return preview_cache_.get(); }
  const preview::UrlSigner* signer() const noexcept { return signer_ ? &*signer_ : nullptr; }

 private:
  explicit Caches(store::ObjectStore& store) : store_(store) {}

  store::ObjectStore& store_;
  std::chrono::seconds revalidate_links_{3600};
  metrics::Registry metrics_;
  std::unique_ptr<cache::DiskCache> storage_cache_;
  std::unique_ptr<cache::DiskCache> preview_cache_;
  std::unique_ptr<cache::CachingStore> caching_;
  std::optional<preview::UrlSigner> signer_;
  std::unique_ptr<Previews> previews_;
  std::filesystem::path spool_dir_;
};

}  // namespace stowage::server
