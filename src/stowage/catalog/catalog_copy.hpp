// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "stowage/base/error.hpp"

/// Copying a whole catalog from one engine to another (`stowage catalog migrate`): a
/// one-machine SQLite catalog onto PostgreSQL, ids and all, so that every item is served the
/// same afterwards.
namespace stowage::catalog {

/// One table's outcome.
struct TableCopy {
  std::string table;
  std::int64_t source_rows = 0;
  std::int64_t target_rows = 0;
  std::int64_t copied = 0;     ///< rows inserted by this run (a rerun skips what is there)
  std::string source_sha256;   ///< over every row in key order, every column as text
  std::string target_sha256;
  bool verified() const { return source_rows == target_rows && source_sha256 == target_sha256; }
};

struct CopyReport {
  std::vector<TableCopy> tables;
  bool verified() const {
    for (const TableCopy& t : tables) {
      if (!t.verified()) return false;
    }
    return true;
  }
};

struct CopyOptions {
  /// Rows read and inserted per transaction.
  std::size_t batch_rows = 500;
  /// Called after each batch with the table, the rows there so far and the source's count.
  std::function<void(const std::string& table, std::int64_t done, std::int64_t total)> on_progress;
};

/// Copies every row of the catalog at `from_url` to the one at `to_url` (DATABASE_URL forms;
/// both are migrated to this build's schema first), table by table in foreign-key order, in
/// batches of one transaction each, keeping ids; then sets the target's id sequences past the
/// copied ids and verifies each table by its row count and a SHA-256 over its rows. Resumable:
/// a run that was stopped (killed, a lost connection) is rerun and goes on after the rows
/// already there; rows already in the target are never changed. The source is only read.
/// Rows that are in the target but not in the source make that table fail verification.
Result<CopyReport> copy_catalog(const std::string& from_url, const std::string& to_url,
                                const CopyOptions& options = {});

}  // namespace stowage::catalog
