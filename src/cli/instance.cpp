// SPDX-License-Identifier: Apache-2.0
#include "cli/instance.hpp"

#include "stowage/service/shared_settings.hpp"
#include "stowage/store/registry.hpp"

namespace stowage::cli {

Status resolve_instance_bucket_prefix(config::Config& config) {
  if (!service::catalog_is_shared(config) || !config.bucket_prefix.empty()) {
    return config::resolve_bucket_prefix(config);
  }
  STOWAGE_ASSIGN_OR_RETURN(auto catalog,
                           catalog::Catalog::open_postgres(config.database_url.reveal()));
  return service::resolve_shared_bucket_prefix(config, *catalog);
}

Result<Instance> open_instance(const config::Config& config) {
  Instance instance;
  STOWAGE_ASSIGN_OR_RETURN(instance.catalog,
                           catalog::Catalog::open(config.database_url.reveal(),
                                                  config.data_path / "stowage.db"));
  STOWAGE_ASSIGN_OR_RETURN(instance.store, store::open_configured_store(config));
  auto remote_links =
      links::RemoteLinks::load(config.remote_links_path, config::process_environment());
  if (!remote_links) {
    Error e = std::move(remote_links).error();
    e.code = ErrorCode::InvalidArgument;
    return e;
  }
  store::http_links::PublicUrlOptions url_options;
  url_options.allow_private_networks = config.links_allow_private_networks;
  instance.links = std::make_unique<links::LinkResolver>(std::move(*remote_links), url_options);
  service::ServiceOptions options;
  options.public_bucket = config.public_bucket();
  options.private_bucket = config.private_bucket();
  options.staging_dir = config.storage_root() / ".staging";
  instance.service =
      std::make_unique<service::Service>(*instance.catalog, *instance.store, std::move(options));
  instance.service->set_link_resolver(instance.links.get());
  return instance;
}

}  // namespace stowage::cli
