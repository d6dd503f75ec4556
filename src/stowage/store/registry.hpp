// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "stowage/base/error.hpp"
#include "stowage/config/config.hpp"
#include "stowage/store/object_store.hpp"

#include <memory>

namespace stowage::store {

/// Opens the store that STORAGE_PROVIDER names, holding the instance's two buckets
/// (`<prefix>-public`, `<prefix>-private`). The only place that knows every provider.
/// Remote buckets must already exist; they are not created.
Result<std::unique_ptr<ObjectStore>> open_configured_store(const config::Config& config);

}  // namespace stowage::store
