// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "stowage/base/error.hpp"
#include "stowage/store/object_store.hpp"

namespace stowage::migration {

/// A durable record of copies that were verified by content checksum, so that a rerun (after a
/// kill, a failure or a finished run) skips an object after one stat of each side instead of
/// reading both. A SQLite file (WAL): a row is written once its copy is verified and survives a
/// killed process. Rows are keyed by a `scope` (which target, e.g. "storage minio
/// http://host:9000") and the target path; a row is trusted only while the source's etag and the
/// target's etag and size are still the ones it holds. Safe from several threads at once.
class Journal {
 public:
  /// What was verified: the source's size and etag at the time, the target's etag after commit,
  /// and the SHA-256 (lower-case hex) of the bytes on both sides.
  struct Entry {
    std::uint64_t size_bytes = 0;
    std::string source_etag;
    std::string target_etag;
    std::string sha256_hex;
  };

  /// Opens (creating it and its folder as needed) the journal at `file`. IoError when it cannot
  /// be opened or created, Corrupt when it is not a journal.
  static Result<std::unique_ptr<Journal>> open(const std::filesystem::path& file);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  /// The entry for `target` in `scope`, or std::nullopt. IoError on a database error.
  Result<std::optional<Entry>> find(std::string_view scope, const store::ObjectPath& target);
  /// Records (or replaces) the entry for `target` in `scope`, durably (one transaction).
  Status record(std::string_view scope, const store::ObjectPath& target, const Entry& entry);
  /// How many entries `scope` holds.
  Result<std::uint64_t> count(std::string_view scope);

 private:
  struct Db;
  explicit Journal(std::unique_ptr<Db> db);
  std::unique_ptr<Db> db_;
};

}  // namespace stowage::migration
