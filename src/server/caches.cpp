// SPDX-License-Identifier: Apache-2.0
#include "server/caches.hpp"

namespace stowage::server {

Result<std::unique_ptr<Caches>> Caches::open(const config::Config& config,
                                             store::ObjectStore& store, bool remote,
                                             std::optional<std::string> signing_secret) {
  std::unique_ptr<Caches> c(new Caches(store));
  const auto root = config.data_path / "cache";
  // Open on every provider: linked objects are remote even when the instance's buckets are not.
  if (config.cache_storage_bytes > 0) {
    STOWAGE_ASSIGN_OR_RETURN(c->storage_cache_,
                             cache::DiskCache::open({.dir = root / "storage",
                                                     .max_bytes = config.cache_storage_bytes,
                                                     .expires = config.cache_storage_expires,
                                                     .name = "storage",
                                                     .metrics = &c->metrics_}));
  }
  c->revalidate_links_ = config.cache_storage_revalidate;
  if (remote) {
    c->caching_ = std::make_unique<cache::CachingStore>(
        store, c->storage_cache_.get(), std::string(config::to_string(config.provider)),
        &c->metrics_,
        cache::CachingOptions{.revalidate_after = config.cache_storage_revalidate,
                              .immutable_bucket = config.public_bucket()});
  }
  if (config.cache_previews_bytes > 0) {
    STOWAGE_ASSIGN_OR_RETURN(c->preview_cache_,
                             cache::DiskCache::open({.dir = root / "previews",
                                                     .max_bytes = config.cache_previews_bytes,
                                                     .expires = config.cache_previews_expires,
                                                     .name = "previews",
                                                     .metrics = &c->metrics_}));
  }
  if (signing_secret) {
    c->signer_.emplace(std::move(*signing_secret));
  } else {
    STOWAGE_ASSIGN_OR_RETURN(
        auto signer, preview::UrlSigner::load_or_create(config.data_path / "preview-secret"));
    c->signer_.emplace(std::move(signer));
  }
  c->spool_dir_ = root / "spool";
  return c;
}

void Caches::configure(service::ServiceOptions& options) const {
  const preview::UrlSigner* signer = this->signer();
  if (signer == nullptr) return;
  options.sign_preview = [signer](std::string_view path) {
    return signer->query(path, std::chrono::system_clock::now());
  };
}

void Caches::cache_links(links::LinkResolver& resolver) {
  resolver.set_store_wrapper([this](std::shared_ptr<store::ObjectStore> store,
                                    const links::Connection* connection)
                                 -> std::shared_ptr<store::ObjectStore> {
    if (connection != nullptr && connection->provider == "fs") return store;  // local bytes
    // Counted as the remote they are even with the cache off.
    return std::make_shared<cache::CachingStore>(
        std::move(store), storage_cache_.get(),
        "link:" + (connection ? connection->name : std::string("public-url")), &metrics_,
        cache::CachingOptions{.revalidate_after = revalidate_links_});
  });
}

void Caches::attach(service::Service& service, ServerOptions& options) {
  PreviewsOptions previews_options;
  previews_options.spool_dir = spool_dir_;
  previews_ = std::make_unique<Previews>(service, signer(), preview_cache_.get(), caching_.get(),
                                         &metrics_, std::move(previews_options));
  options.previews = previews_.get();
  options.metrics = &metrics_;
}

}  // namespace stowage::server
