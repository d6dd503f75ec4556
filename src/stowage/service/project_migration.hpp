// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/catalog/catalog.hpp"
#include "stowage/http/retry.hpp"
#include "stowage/migration/journal.hpp"
#include "stowage/migration/runner.hpp"
#include "stowage/service/service.hpp"

/// `stowage migrate project`: the docs' "Migrating existing projects to Cloud Storage", natively,
/// plus its reverse and cloud to cloud. The bytes move with the migration engine
/// (stowage/migration: streamed, verified by SHA-256, journaled, retried); this layer chooses
/// the items, names the targets, and switches the catalog.
///
/// The guarantees, in every direction:
/// - **Only what is not there yet.** Stored items (no link) go to links; linked items go back to
///   stored blobs or to another link. An item already switched is not selected again, so a rerun
///   after a finished run copies and switches nothing.
/// - **Bytes first, switch last.** An item's catalog row is switched only after its bytes were
///   copied and read back with the expected SHA-256, and only once *every* selected item was
///   copied (the docs' order): with failures nothing is switched unless `switch_partial`.
///   Switches go in transactions of `switch_batch` items with preconditions (the blob or link the
///   item had when it was copied), so an item removed, re-uploaded or relinked meanwhile is left
///   alone and reported. Nothing is ever deleted: source bytes, blobs and old links' objects stay.
/// - **Safe to kill at any moment.** Targets are written as whole objects only (Writers commit
///   complete objects), switches are atomic per batch, and the journal lets a rerun skip each
///   copy already verified after one stat of each side: only the objects in flight at the kill
///   are written again.
namespace stowage::service {

/// How a process takes part in a project migration whose copy work is shared through the
/// catalog (issue 14): the run that starts it (ProjectMigrationOptions::share) publishes every
/// selected item as work; it and its helpers (join_project_migration, in other processes or on
/// other machines over the same catalog) claim items a few at a time and copy them, each
/// recording its outcome in the catalog; the starting run switches the links, as a run of its
/// own would, once no item is left pending or claimed.
struct SharedWork {
  std::string holder;  ///< this worker, unique among them ("host pid 123")
  /// How long claimed items stay this worker's: the items of a worker that died go back to the
  /// others after it, and are copied again (safe: copies are verified whole objects).
  std::chrono::milliseconds hold{std::chrono::minutes(5)};
  std::size_t claim_batch = 8;  ///< items per claim
  /// How often the starting run looks again while the last items are with other workers.
  std::chrono::milliseconds poll{std::chrono::milliseconds(250)};
};

/// The name of a project's migration run: its lease and its shared work.
std::string project_migration_run(catalog::Id project_id);

/// Which items a project migration moves, and where.
struct ProjectMigrationOptions {
  catalog::Id project_id = 0;
  /// Where the bytes go: a link prefix (`s3://bucket/dir`, `azure://container/dir`,
  /// `google://bucket/dir`, `fs://storage-id/dir`) that must resolve through remote_links.yml
  /// like any link, or std::nullopt for the instance's own store (the reverse).
  std::optional<std::string> to;
  /// Which items move. Unset with a link target: the stored items (the docs). Set: the linked
  /// items whose link starts with this text (cloud to cloud, or the reverse of part of a project);
  /// "" selects every linked item. Items whose link is already under `to` are never selected.
  std::optional<std::string> from_links;
  /// Target keys `<prefix>/<type>/<project>/<dataset ids from the top>/<name>` instead of the
  /// docs' flat `<prefix>/<type>/<project>/<dataset>/<name>`.
  bool nested = false;
  /// Objects copied at once.
  std::size_t concurrency = 10;
  /// Plan only: compare with the targets, copy and switch nothing.
  bool dry_run = false;
  /// With failed items, still switch those that were copied (default: switch nothing).
  bool switch_partial = false;
  /// Items per catalog transaction of the switch phase (the docs' set_remote batches).
  std::size_t switch_batch = 1000;
  /// Items per catalog page while walking the project.
  std::int64_t page_size = 1000;
  /// Verified copies, trusted by reruns; null: a rerun compares by reading both sides.
  migration::Journal* journal = nullptr;
  /// Whole-object and listing retries.
  http::RetryPolicy retry{6, std::chrono::milliseconds(200), std::chrono::milliseconds(10'000)};
  /// Progress of the copy phase (items, bytes, rate, ETA), from one thread.
  std::function<void(const migration::Progress&)> on_progress;
  /// Called before each switch batch and each copy is handed out; tests use it to change items
  /// while a migration runs. May be empty.
  std::function<void(std::string_view phase)> on_phase;
  /// Share the copy work with helpers (see SharedWork). Not with dry_run.
  std::optional<SharedWork> share;
};

/// One item a migration could not move (or chose not to switch), and why.
struct ItemProblem {
  catalog::Id item_id = 0;
  catalog::Id dataset_id = 0;
  std::string name;
  std::string source;  ///< the stored blob's key or the old link
  std::string target;  ///< the link or blob key it was going to
  Error error;
};

/// One planned move (dry run).
struct PlannedItem {
  catalog::Id item_id = 0;
  std::string source;
  std::string target;
  std::uint64_t size_bytes = 0;
  bool already_there = false;  ///< the target holds the same bytes: only the switch is left
};

/// What a project migration did.
struct ProjectMigrationReport {
  catalog::Id project_id = 0;
  std::string project_type;  ///< "images" or "videos"
  std::string target;        ///< the link prefix, or "local"
  std::uint64_t selected = 0;  ///< items that needed moving
  std::uint64_t selected_bytes = 0;
  migration::Summary copies;    ///< the copy phase, as the engine counted it
  std::uint64_t switched = 0;   ///< items whose catalog row now points at the new bytes
  std::vector<ItemProblem> failed;   ///< not copied or not verified: never switched
  std::vector<ItemProblem> changed;  ///< changed while migrating: copied, left unswitched
  /// Set when failures kept the switch phase from running (no switch_partial).
  bool switch_withheld = false;
  /// Set when the run stopped early (the project's listing failed, the catalog refused a
  /// switch after retries): the run is incomplete and may be rerun.
  std::optional<Error> aborted;
  std::vector<PlannedItem> plan;  ///< dry run only
  /// Shared work: the items other workers copied or found at the target already (this run's
  /// own are in `copies`).
  std::uint64_t copied_by_helpers = 0;
  std::chrono::milliseconds elapsed{0};

  /// Every selected item was moved and switched (or, dry run, planned).
  bool complete() const { return failed.empty() && changed.empty() && !aborted; }
};

/// The key of an item's copy under a link prefix's key: `<type>/<project>/<dataset path>/<name>`
/// with the name escaped by escape_key_segment(); `prefix_key` may be empty.
std::string project_target_key(std::string_view prefix_key, std::string_view project_type,
                               catalog::Id project_id, const std::vector<catalog::Id>& dataset_path,
                               std::string_view item_name);

/// An item name as one key segment, injectively: '%' , '/', '\\' and control characters become
/// %XX, and so do a leading or trailing '.' (so "." and ".." are never segments, and Azure,
/// which drops trailing dots, keeps the name). Other bytes (UTF-8) stay.
std::string escape_key_segment(std::string_view name);

/// Runs a project migration (see the namespace comment). Errors are for the run as a whole and
/// are reported before anything is copied: NotFound for an unknown project, InvalidArgument for
/// a bad target or selection, PermissionDenied for a target no connection of remote_links.yml
/// allows (the message names the file). Failures of single items are in the report. Blocking.
Result<ProjectMigrationReport> migrate_project(Service& service,
                                               const ProjectMigrationOptions& options);

/// Helps the shared migration of `project_id` started elsewhere (options.share there): waits up
/// to `wait` for it to open, then claims and copies items until none is left pending, and
/// returns what this worker did (`copies`, `failed`; it switches nothing). The run's target and
/// selection come from the catalog; `local` gives this worker's concurrency, retries, journal
/// and progress. NotFound when no such run opened in time.
Result<ProjectMigrationReport> join_project_migration(Service& service, catalog::Id project_id,
                                                      const ProjectMigrationOptions& local,
                                                      const SharedWork& share,
                                                      std::chrono::milliseconds wait);

}  // namespace stowage::service
