// SPDX-License-Identifier: Apache-2.0
#pragma once

// Private to src/stowage/catalog: the one Catalog implementation, over any engine of
// sql_internal.hpp (SQLite or PostgreSQL).

#include <filesystem>
#include <memory>
#include <string>

#include "stowage/base/error.hpp"

#include "stowage/catalog/catalog.hpp"

namespace stowage::catalog {

namespace sql {
class Pool;
}

/// The catalog over connections of `pool`, whose schema is already migrated.
std::unique_ptr<Catalog> make_sql_catalog(std::unique_ptr<sql::Pool> pool);

/// Connections to a migrated catalog, without the Catalog over them (catalog_copy).
Result<std::unique_ptr<sql::Pool>> open_sqlite_pool(const std::filesystem::path& file);
Result<std::unique_ptr<sql::Pool>> open_postgres_pool(const std::string& conninfo);
/// By DATABASE_URL: `sqlite:PATH` or a PostgreSQL URL/keyword string.
Result<std::unique_ptr<sql::Pool>> open_pool(const std::string& url);

}  // namespace stowage::catalog
