// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/migration/copy.hpp"
#include "stowage/store/object_store.hpp"

namespace stowage::migration {

/// One object to copy. The stores must outlive the run.
struct CopyTask {
  store::ObjectStore* source = nullptr;
  store::ObjectInfo source_info;  ///< as listed (path, size, etag)
  store::ObjectStore* target = nullptr;
  store::ObjectPath target_path;
  /// The SHA-256 the source must have (CopyOptions::expected_sha256_hex); empty: any.
  std::string expected_sha256_hex;
  /// Called on the worker thread before the copy; may fill in or change the task (stat the
  /// source, choose the target from the content) so that such per-object work runs with the
  /// run's concurrency rather than in the pager. An error fails the task, nothing is copied.
  std::function<Status(CopyTask&)> prepare;
  /// Called on the worker thread with the task's outcome (also a failed prepare), e.g. to act
  /// on each verified copy. Runs before the copy is counted in the progress.
  std::function<void(const Result<CopyResult>&)> on_done;
};

/// Hands out the tasks a page at a time; an empty page means there are no more. Called from
/// the thread that called run_copies(), never concurrently. An error stops the run (after the
/// objects in flight).
using TaskPager = std::function<Result<std::vector<CopyTask>>()>;

/// How much work there is, when a listing pass has counted it.
struct Totals {
  std::uint64_t objects = 0;
  std::uint64_t bytes = 0;
};

/// A snapshot for progress bars.
struct Progress {
  std::uint64_t objects_done = 0;  ///< copied + skipped + would copy + failed
  std::uint64_t bytes_done = 0;    ///< object bytes finished, plus bytes streamed of those in flight
  std::optional<Totals> totals;    ///< unknown until the counting pass ends
  std::uint64_t copied = 0;
  std::uint64_t skipped = 0;
  std::uint64_t failed = 0;
  std::chrono::milliseconds elapsed{0};
  std::uint64_t bytes_per_second = 0;        ///< average since the start
  std::optional<std::chrono::seconds> eta;  ///< when totals are known and the rate is not 0
};

struct RunOptions {
  /// Objects copied at once (worker threads). At least 1.
  std::size_t concurrency = 8;
  CopyOptions copy;
  /// Counts the work, run on its own thread beside the copying (e.g. a listing pass); empty:
  /// totals stay unknown.
  std::function<Result<Totals>()> count;
  /// Called every `progress_interval` and once at the end, always from one thread.
  std::function<void(const Progress&)> on_progress;
  std::chrono::milliseconds progress_interval{200};
};

/// An object that could not be copied, and why.
struct Failure {
  store::ObjectPath source;
  store::ObjectPath target;
  Error error;
};

/// What a run did.
struct Summary {
  std::uint64_t copied = 0;
  std::uint64_t skipped = 0;
  std::uint64_t would_copy = 0;  ///< dry run
  std::uint64_t failed = 0;
  std::uint64_t bytes_copied = 0;       ///< sizes of the objects copied
  std::uint64_t bytes_skipped = 0;      ///< sizes of the objects skipped
  std::uint64_t bytes_would_copy = 0;   ///< dry run
  std::uint64_t bytes_written = 0;      ///< handed to target Writers, retries included
  std::vector<Failure> failures;        ///< one per failed object, in completion order
  /// Set when the task pager failed: the run stopped early and is incomplete.
  std::optional<Error> aborted;
  std::chrono::milliseconds elapsed{0};

  /// True when every object was copied or already there and the listing completed.
  bool complete() const { return failed == 0 && !aborted; }
};

/// Runs copy_object() over every task from `pager` with `concurrency` workers fed through a
/// bounded queue: memory holds one page of tasks, a queue of about 2 x concurrency tasks and,
/// per worker, one chunk plus what the target's Writer keeps in flight, whatever the number or
/// size of the objects. A failed object (after its retries) is recorded and the run goes on.
/// Blocking; returns when every task is done.
Summary run_copies(const TaskPager& pager, const RunOptions& options);

/// A pager over every object of `buckets` in `source` (listed in pages of `page_size`), each to
/// the same bucket and key in `target`. Listing errors are retried with `retry`.
TaskPager bucket_pager(store::ObjectStore& source, store::ObjectStore& target,
                       std::vector<std::string> buckets, const http::RetryPolicy& retry,
                       std::size_t page_size = 1000);

/// Counts the objects and bytes of `buckets` in `store` with one listing pass (for
/// RunOptions::count).
Result<Totals> count_objects(store::ObjectStore& store, const std::vector<std::string>& buckets,
                             const http::RetryPolicy& retry);

}  // namespace stowage::migration
