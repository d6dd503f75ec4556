// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>

#include "stowage/base/error.hpp"
#include "stowage/config/config.hpp"
#include "stowage/links/remote_links.hpp"
#include "stowage/store/object_store.hpp"

namespace stowage::store {

/// Opens the store that STORAGE_PROVIDER names, holding the instance's two buckets
/// (`<prefix>-public`, `<prefix>-private`). The only place that knows every provider.
/// Remote buckets must already exist; they are not created.
Result<std::unique_ptr<ObjectStore>> open_configured_store(const config::Config& config);

/// Opens the store behind one connection of remote_links.yml (its provider, endpoint and
/// credentials; an `fs` connection is its folder as a bucket named by its storage id). Nothing
/// is written or swept in buckets that only links reach.
Result<std::unique_ptr<ObjectStore>> open_link_store(const links::Connection& connection);

}  // namespace stowage::store
