// SPDX-License-Identifier: Apache-2.0
#include "stowage/service/shared_settings.hpp"

#include "stowage/preview/signer.hpp"

namespace stowage::service {

namespace {

/// Keys of the catalog's settings table.
constexpr const char* kBucketPrefixKey = "bucket_prefix";
constexpr const char* kPreviewSecretKey = "preview_secret";

}  // namespace

bool catalog_is_shared(const config::Config& config) {
  return catalog::is_postgres_url(config.database_url.reveal());
}

Status resolve_shared_bucket_prefix(config::Config& config, catalog::Catalog& catalog) {
  if (!config.bucket_prefix.empty()) return {};
  STOWAGE_ASSIGN_OR_RETURN(auto saved, config::read_saved_bucket_prefix(config));
  const std::string proposed = saved ? *saved : config::generate_bucket_prefix();
  auto stored = catalog.shared_setting(kBucketPrefixKey, proposed);
  if (!stored) {
    Error error = std::move(stored).error();
    error.message = "bucket prefix from the catalog: " + error.message;
    return error;
  }
  if (!config::bucket_prefix_is_valid(*stored)) {
    return make_error(ErrorCode::Corrupt, "the catalog's bucket prefix '" + *stored +
                                              "' is not a valid prefix; set "
                                              "STORAGE_BUCKET_PREFIX to the prefix of your "
                                              "buckets");
  }
  config.bucket_prefix = std::move(*stored);
  return {};
}

Result<std::string> shared_preview_secret(catalog::Catalog& catalog) {
  STOWAGE_ASSIGN_OR_RETURN(std::string proposed, preview::UrlSigner::make_secret());
  auto stored = catalog.shared_setting(kPreviewSecretKey, proposed);
  if (!stored) {
    Error error = std::move(stored).error();
    error.message = "preview signing secret from the catalog: " + error.message;
    return error;
  }
  if (stored->size() < 32) {
    return make_error(ErrorCode::Corrupt, "the catalog holds no usable preview signing secret");
  }
  return std::move(*stored);
}

}  // namespace stowage::service
