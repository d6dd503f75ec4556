// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/catalog/catalog.hpp"

/// Importing a bucket prefix as linked items (what Label Studio calls sync and CVAT attaches):
/// every object under `<provider>://<bucket>/<prefix>` that matches the filters and is an image
/// (a video, for a video project) becomes one linked item of the dataset, header-probed like any
/// link. A rerun adds only the objects that are new and reports the items whose objects are
/// gone (it never removes them).
namespace stowage::service {

class Service;

struct LinkSyncProgress {
  std::uint64_t listed = 0;    ///< objects seen under the prefix
  std::uint64_t matched = 0;   ///< of those, passing --include / --regex
  std::uint64_t added = 0;     ///< items added (or, in a dry run, that would be)
  std::uint64_t existing = 0;  ///< already items of the dataset
  std::uint64_t skipped = 0;   ///< not an image (video)
  std::uint64_t failed = 0;
};

struct LinkSyncOptions {
  std::string prefix;  ///< "s3://bucket/photos/", resolved through remote_links.yml
  catalog::Id dataset_id = 0;
  /// Globs (fnmatch(3), '*' also crosses '/') on the key below the prefix; any may match.
  std::vector<std::string> include;
  /// An ECMAScript regular expression searched in the key below the prefix.
  std::string regex;
  /// Objects in sub-folders too; otherwise only those directly under the prefix.
  bool recursive = false;
  /// List and compare only: no probe, nothing added.
  bool dry_run = false;
  std::size_t batch = 200;       ///< items added per catalog transaction
  std::size_t concurrency = 8;   ///< objects probed at once
  /// Called after each listing page and each batch, from the calling thread.
  std::function<void(const LinkSyncProgress&)> on_progress;
};

struct LinkSyncEntry {
  enum class Status { Added, WouldAdd, Exists, Skipped, Failed, Removed };
  Status status = Status::Failed;
  std::string link;
  std::string name;
  catalog::Id item_id = 0;  ///< the item added, already there, or whose object is gone
  std::string reason;       ///< why skipped or failed
};
std::string_view to_string(LinkSyncEntry::Status status) noexcept;

struct LinkSyncReport {
  LinkSyncProgress counts;
  std::uint64_t removed = 0;  ///< items whose object is no longer under the prefix
  /// Every object that matched, and every removed item, in listing order (removed last).
  std::vector<LinkSyncEntry> entries;
};

/// Runs a sync as `who`. Fails as a whole (and adds nothing) only when the dataset is not the
/// caller's, the prefix does not resolve, the regex is invalid or the listing fails; a bad
/// object is reported and the others go on. Each batch is added in one transaction, so a kill
/// leaves whole batches, and a rerun adds the rest.
Result<LinkSyncReport> sync_links(Service& service, const catalog::Principal& who,
                                  const LinkSyncOptions& options);

}  // namespace stowage::service
