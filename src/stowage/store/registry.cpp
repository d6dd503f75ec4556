// SPDX-License-Identifier: Apache-2.0
#include "stowage/store/registry.hpp"

#include "stowage/store/azure/azure_store.hpp"
#include "stowage/store/gcs/gcs_store.hpp"
#include "stowage/store/local/local_store.hpp"
#include "stowage/store/s3/s3_store.hpp"

namespace stowage::store {

Result<std::unique_ptr<ObjectStore>> open_configured_store(const config::Config& config) {
  switch (config.provider) {
    case config::Provider::Http: {
      STOWAGE_ASSIGN_OR_RETURN(auto local,
                               local::LocalStore::open(config.storage_root(),
                                                       {config.public_bucket(), config.private_bucket()}));
      return std::unique_ptr<ObjectStore>(std::move(local));
    }
    case config::Provider::Minio: {
      std::shared_ptr<http::Transport> transport = http::make_curl_transport();
      STOWAGE_ASSIGN_OR_RETURN(
          auto options,
          s3::S3Options::from_config(config, transport, config::process_environment()));
      STOWAGE_ASSIGN_OR_RETURN(auto s3, s3::S3Store::open(std::move(options), transport));
      return std::unique_ptr<ObjectStore>(std::move(s3));
    }
    case config::Provider::Azure:
      return azure::open_azure_store(config);
    case config::Provider::Google: {
      STOWAGE_ASSIGN_OR_RETURN(auto options, gcs::GcsOptions::from_config(config));
      STOWAGE_ASSIGN_OR_RETURN(auto gcs, gcs::GcsStore::open(std::move(options)));
      return std::unique_ptr<ObjectStore>(std::move(gcs));
    }
  }
  return make_error(ErrorCode::Unsupported,
                    "STORAGE_PROVIDER=" + std::string(config::to_string(config.provider)) +
                        " is not supported by this build yet; use http (local disk)");
}

}  // namespace stowage::store
