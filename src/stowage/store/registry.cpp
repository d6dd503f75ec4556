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
      STOWAGE_ASSIGN_OR_RETURN(
          auto local, local::LocalStore::open(config.storage_root(),
                                              {config.public_bucket(), config.private_bucket()}));
      return std::unique_ptr<ObjectStore>(std::move(local));
    }
    case config::Provider::Minio: {
      std::shared_ptr<http::Transport> transport = http::make_curl_transport();
      STOWAGE_ASSIGN_OR_RETURN(auto options, s3::S3Options::from_config(
                                                 config, transport, config::process_environment()));
      STOWAGE_ASSIGN_OR_RETURN(auto s3, s3::S3Store::open(std::move(options), transport));
      return std::unique_ptr<ObjectStore>(std::move(s3));
    }
    case config::Provider::Azure:
      return azure::open_azure_store(config);
    case config::Provider::Google: {
      STOWAGE_ASSIGN_OR_RETURN(auto options, gcs::GcsOptions::from_config(config));
      options.sessions_dir = config.data_path / "state" / "gcs-sessions";
      STOWAGE_ASSIGN_OR_RETURN(auto gcs, gcs::GcsStore::open(std::move(options)));
      return std::unique_ptr<ObjectStore>(std::move(gcs));
    }
  }
  return make_error(ErrorCode::Unsupported,
                    "STORAGE_PROVIDER=" + std::string(config::to_string(config.provider)) +
                        " is not supported by this build yet; use http (local disk)");
}

Result<std::unique_ptr<ObjectStore>> open_link_store(const links::Connection& connection) {
  if (connection.provider == "fs") {
    STOWAGE_ASSIGN_OR_RETURN(
        auto folder, local::LocalStore::open_folder(connection.buckets.front(), connection.path));
    return std::unique_ptr<ObjectStore>(std::move(folder));
  }
  // The provider modules read a configuration's STORAGE_* settings: give them the connection's.
  config::Config config;
  config.storage_endpoint = connection.endpoint;
  config.storage_access_key = connection.access_key;
  config.storage_secret_key = connection.secret_key;
  config.storage_iam_role = connection.iam_role;
  config.storage_credentials_path = connection.credentials_path;
  if (!connection.region.empty()) config.storage_region = connection.region;
  config.storage_force_path_style = connection.force_path_style;
  if (connection.provider == "minio") {
    config.provider = config::Provider::Minio;
    std::shared_ptr<http::Transport> transport = http::make_curl_transport();
    STOWAGE_ASSIGN_OR_RETURN(
        auto options, s3::S3Options::from_config(config, transport, config::process_environment()));
    options.housekeeping_buckets.clear();  // never abort uploads in buckets we only read
    STOWAGE_ASSIGN_OR_RETURN(auto s3, s3::S3Store::open(std::move(options), transport));
    return std::unique_ptr<ObjectStore>(std::move(s3));
  }
  if (connection.provider == "azure") {
    config.provider = config::Provider::Azure;
    return azure::open_azure_store(config);
  }
  if (connection.provider == "google") {
    config.provider = config::Provider::Google;
    STOWAGE_ASSIGN_OR_RETURN(auto options, gcs::GcsOptions::from_config(config));
    STOWAGE_ASSIGN_OR_RETURN(auto gcs, gcs::GcsStore::open(std::move(options)));
    return std::unique_ptr<ObjectStore>(std::move(gcs));
  }
  return make_error(ErrorCode::InvalidArgument, "connection '" + connection.name +
                                                    "': unknown provider " + connection.provider);
}

}  // namespace stowage::store
