// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "stowage/base/error.hpp"
#include "stowage/http/retry.hpp"
#include "stowage/io/stream.hpp"
#include "stowage/migration/journal.hpp"
#include "stowage/store/object_store.hpp"

/// Copying objects between stores with verification: the engine under `stowage migrate storage`
/// and the project migration. Nothing here deletes or changes anything at a source.
namespace stowage::migration {

/// How one object is copied.
struct CopyOptions {
  /// Bytes read from the source and handed to the target's Writer per call; with the providers'
  /// own bounded parts in flight this bounds a copy's memory.
  std::size_t chunk_bytes = io::kDefaultChunkBytes;
  /// Whole-object retries on retryable errors (503, 429, resets, timeouts, a failed
  /// verification). Each attempt starts over with a fresh Writer; the failed one is aborted.
  http::RetryPolicy retry{6, std::chrono::milliseconds(200), std::chrono::milliseconds(10'000)};
  /// Compare only: never open a Writer (the outcome is WouldCopy or Skipped).
  bool dry_run = false;
  /// Verified copies are recorded here and trusted on later runs; null: compare by hashing.
  Journal* journal = nullptr;
  /// The journal scope naming the target (see Journal).
  std::string journal_scope;
  /// Called (from the copying thread) with each chunk's size as it is handed to the target,
  /// for progress. May be empty.
  std::function<void(std::uint64_t bytes)> on_bytes;
  /// When not empty, the SHA-256 (lower-case hex) the source's bytes must have, e.g. the name of
  /// a content-addressed blob: a source that hashes otherwise fails Corrupt, is not retried and
  /// is never committed at the target (nor counted as already there).
  std::string expected_sha256_hex;
};

enum class CopyOutcome {
  Copied,     ///< written, committed and verified
  Skipped,    ///< the target already held the same bytes (journal, or equal SHA-256)
  WouldCopy,  ///< dry run: the target is missing or differs
};

/// What copy_object() did.
struct CopyResult {
  CopyOutcome outcome = CopyOutcome::Copied;
  std::uint64_t size_bytes = 0;
  /// SHA-256 (lower-case hex) of the object's bytes; from the journal when skipped by it,
  /// empty for WouldCopy of a missing target.
  std::string sha256_hex;
  /// Bytes handed to target Writers, all attempts included (0 unless Copied).
  std::uint64_t bytes_written = 0;
  /// Copy attempts made (0 when nothing was written).
  int attempts = 0;
};

/// Copies the object `source_info` describes from `source` to `target_path` in `target`, unless
/// the target already holds the same bytes.
///
/// - **Skip.** When the target has an object of the same size: with a journal entry whose source
///   etag, target etag and size still match, it is skipped without reading; otherwise both sides
///   are read and hashed and it is skipped when the SHA-256s are equal (then journaled).
/// - **Copy.** The source is streamed (pinned to its etag with If-Match) in `chunk_bytes` chunks
///   into `target.open_write()` with the size as hint, hashing as it goes; fewer or more bytes
///   than the size is Corrupt. Only a complete object is committed; any failure aborts the
///   Writer, so a partial object never becomes visible.
/// - **Verify.** After commit the target is stat'ed and read back in full (If-Match the stat's
///   etag) and its SHA-256 must equal the source stream's: a wrong byte anywhere is detected
///   (Corrupt, retried; the bad copy is removed from the target). Re-reading costs a download, but it is the one check every provider
///   supports for every object (S3 multipart ETags, Azure block blobs and GCS composite objects
///   carry no whole-object digest), and the provider's own digest would only prove what it
///   received, not what it serves.
///
/// Errors: NotFound when the source vanished; PreconditionFailed when it changed while being
/// read; the target's errors after retries. Blocking; safe to call from several threads at once
/// (the stores and the journal are).
Result<CopyResult> copy_object(store::ObjectStore& source, const store::ObjectInfo& source_info,
                               store::ObjectStore& target, const store::ObjectPath& target_path,
                               const CopyOptions& options);

/// SHA-256 (lower-case hex) and size of an object, read in `chunk_bytes` chunks, pinned to `etag`
/// when it is not empty (PreconditionFailed if it changed).
Result<std::pair<std::string, std::uint64_t>> hash_object(store::ObjectStore& store,
                                                          const store::ObjectPath& path,
                                                          const std::string& etag,
                                                          std::size_t chunk_bytes);

}  // namespace stowage::migration
