// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>

#include "stowage/base/error.hpp"
#include "stowage/catalog/catalog.hpp"
#include "stowage/config/config.hpp"
#include "stowage/links/link_resolver.hpp"
#include "stowage/service/service.hpp"
#include "stowage/store/object_store.hpp"

namespace stowage::cli {

/// The instance that `stowage serve` runs, opened by a command that acts on it directly (links
/// import, migrate project): its catalog, its configured store, the links of remote_links.yml,
/// and the service over them, wired as the server wires them. Members are declared in the order
/// they depend on each other, so they are destroyed service first.
struct Instance {
  std::unique_ptr<catalog::Catalog> catalog;
  std::unique_ptr<store::ObjectStore> store;
  std::unique_ptr<links::LinkResolver> links;
  std::unique_ptr<service::Service> service;
};

/// Sets the instance's bucket prefix: STORAGE_BUCKET_PREFIX, else the one saved in DATA_PATH
/// (one machine, SQLite: config::resolve_bucket_prefix), or, when several servers share the
/// catalog (PostgreSQL), the one stored in it (service::resolve_shared_bucket_prefix).
Status resolve_instance_bucket_prefix(config::Config& config);

/// Opens the instance `config` describes. Errors keep their codes (exit_code_for maps them); a
/// remote_links.yml that does not parse is InvalidArgument.
Result<Instance> open_instance(const config::Config& config);

}  // namespace stowage::cli
