// SPDX-License-Identifier: Apache-2.0
#pragma once

// What every server over one shared catalog (PostgreSQL) must agree on, kept in the catalog's
// settings table instead of one node's DATA_PATH: the bucket prefix and the preview-URL signing
// secret. Per-node state (caches, staging files) stays on local disk.

#include <string>

#include "stowage/base/error.hpp"
#include "stowage/catalog/catalog.hpp"
#include "stowage/config/config.hpp"

namespace stowage::service {

/// True when the configuration's catalog may be shared by several servers (PostgreSQL).
bool catalog_is_shared(const config::Config& config);

/// Sets `config.bucket_prefix` for a shared catalog: STORAGE_BUCKET_PREFIX when configured,
/// else the prefix stored in the catalog; the first server to ask stores one — the prefix this
/// node saved in DATA_PATH/bucket-prefix when it has one (a one-machine instance moved onto
/// PostgreSQL keeps its buckets), or a new random one — and every other server gets that one.
Status resolve_shared_bucket_prefix(config::Config& config, catalog::Catalog& catalog);

/// The preview-URL signing secret shared by every server of the catalog (created by the first
/// that asks), so that a previewUrl signed by one server verifies on the others.
Result<std::string> shared_preview_secret(catalog::Catalog& catalog);

}  // namespace stowage::service
