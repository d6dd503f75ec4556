// SPDX-License-Identifier: Apache-2.0
#pragma once

// Private to src/stowage/catalog: the one Catalog implementation, over any engine of
// sql_internal.hpp (SQLite or PostgreSQL).

#include <memory>

#include "stowage/catalog/catalog.hpp"

namespace stowage::catalog {

namespace sql {
class Pool;
}

/// The catalog over connections of `pool`, whose schema is already migrated.
std::unique_ptr<Catalog> make_sql_catalog(std::unique_ptr<sql::Pool> pool);

}  // namespace stowage::catalog
