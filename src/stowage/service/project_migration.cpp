// SPDX-License-Identifier: Apache-2.0
#include "stowage/service/project_migration.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>

#include "stowage/migration/copy.hpp"
#include "stowage/uri/locator.hpp"

namespace stowage::service {
namespace {

using catalog::Id;
using catalog::Item;
using Clock = std::chrono::steady_clock;

/// The docs' set_remote: "up to 4 tries" per batch before giving up.
constexpr int kSwitchAttempts = 4;

/// Which way the bytes move.
enum class Direction {
  StoredToLink,  ///< the docs: stored items to a link prefix
  LinkToLink,    ///< cloud to cloud: linked items to another link prefix
  LinkToStored,  ///< the reverse: linked items back into the instance's store, content-addressed
};

std::string hex_byte(unsigned char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  return {'%', kHex[c >> 4], kHex[c & 0xF]};
}

/// The project's datasets by id, and each one's chain of ids from the top.
struct DatasetTree {
  std::vector<catalog::Dataset> datasets;  ///< in id order
  std::map<Id, std::optional<Id>> parents;

  std::vector<Id> path_of(Id id) const {
    std::vector<Id> path;
    std::optional<Id> at = id;
    while (at && path.size() <= parents.size()) {  // bounded even on a (corrupt) cycle
      path.push_back(*at);
      auto it = parents.find(*at);
      at = it == parents.end() ? std::nullopt : it->second;
    }
    std::reverse(path.begin(), path.end());
    return path;
  }
};

Result<DatasetTree> load_datasets(catalog::Catalog& catalog, Id project_id, std::int64_t page_size) {
  DatasetTree tree;
  catalog::ListQuery query;
  query.per_page = page_size;
  for (;;) {
    STOWAGE_ASSIGN_OR_RETURN(auto page, catalog.list_datasets(project_id, true, query));
    for (auto& d : page.entities) {
      tree.parents[d.id] = d.parent_id;
      query.after = d.id;
      tree.datasets.push_back(std::move(d));
    }
    if (page.entities.size() < static_cast<std::size_t>(page_size)) break;
  }
  std::sort(tree.datasets.begin(), tree.datasets.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  return tree;
}

/// A switch waiting for the end of the copy phase, with what to say if it cannot be made.
template <class Change>
struct Pending {
  Change change;
  ItemProblem about;
};

/// Everything the copy phase hands to the switch phase, filled from the worker threads.
struct Collected {
  std::mutex mutex;
  std::vector<Pending<catalog::LinkChange>> links;
  std::vector<Pending<catalog::BlobChange>> blobs;
  std::vector<ItemProblem> failed;
  std::vector<PlannedItem> plan;
};

/// An item's move: what it is, where its bytes are and where they go. Shared by the task's
/// prepare and on_done, which run on a worker thread.
struct ItemJob {
  Item item;
  ItemProblem about;
  std::shared_ptr<store::ObjectStore> source_store;  ///< keeps a link's store alive
  std::shared_ptr<store::ObjectStore> target_store;
  std::string target_link;  ///< link targets
  std::optional<catalog::Blob> new_blob;  ///< reverse: the row to record after the bytes
};

/// True when `link` points under the prefix `target` (same provider, bucket and key prefix).
bool is_under(std::string_view link, const uri::Locator& target, std::string_view prefix_key) {
  auto parsed = uri::Locator::parse(link);
  if (!parsed) return false;
  if (uri::provider_of(parsed->scheme) != uri::provider_of(target.scheme) ||
      parsed->scheme == uri::Scheme::Http || parsed->scheme == uri::Scheme::Https ||
      parsed->authority != target.authority) {
    return false;
  }
  return prefix_key.empty() || parsed->key.starts_with(std::string(prefix_key) + "/");
}

/// Runs one switch phase: `changes` in batches, each all or none. A batch refused because an
/// item changed meanwhile (PreconditionFailed, NotFound) is checked item by item; the items that
/// changed are reported and the rest is tried again. Other errors are retried, then stop the
/// phase (the report is marked aborted; a rerun finishes the job).
template <class Change, class Apply, class StillSame>
void switch_in_batches(catalog::Catalog& catalog, std::vector<Pending<Change>>& changes,
                       const ProjectMigrationOptions& options, ProjectMigrationReport& report,
                       Apply apply, StillSame still_same) {
  for (std::size_t start = 0; start < changes.size() && !report.aborted;
       start += options.switch_batch) {
    if (options.on_phase) options.on_phase("switch");
    const std::size_t end = std::min(changes.size(), start + options.switch_batch);
    std::vector<Pending<Change>*> batch;
    for (std::size_t i = start; i < end; ++i) batch.push_back(&changes[i]);
    int failures = 0;
    while (!batch.empty()) {
      std::vector<Change> list;
      list.reserve(batch.size());
      for (auto* p : batch) list.push_back(p->change);
      Status done = apply(list);
      if (done) {
        report.switched += batch.size();
        break;
      }
      const Error error = done.error();
      if (error.code == ErrorCode::PreconditionFailed || error.code == ErrorCode::NotFound) {
        std::vector<Pending<Change>*> keep;
        for (auto* p : batch) {
          auto item = catalog.get_item(p->change.item_id);
          std::optional<Error> why;
          if (!item && item.error().code == ErrorCode::NotFound) {
            why = make_error(ErrorCode::PreconditionFailed,
                             "the item was removed while it was being migrated; not switched");
          } else if (item && !still_same(*item, p->change)) {
            why = make_error(ErrorCode::PreconditionFailed,
                             "the item changed while it was being migrated (new bytes or a new "
                             "link); not switched, its copy is left unused");
          }
          if (why) {
            p->about.error = *why;
            report.changed.push_back(p->about);
          } else {
            keep.push_back(p);
          }
        }
        if (keep.size() < batch.size()) {
          batch = std::move(keep);
          continue;
        }
      }
      if (++failures >= kSwitchAttempts) {
        Error e = error;
        e.message = "switching items in the catalog: " + e.message;
        report.aborted = e;
        break;
      }
      options.retry.sleep(options.retry.delay(failures));
    }
  }
}

std::string describe_blob(const Item& item) {
  return "stored " + item.blob_bucket + "/" + item.blob_key;
}

}  // namespace

std::string escape_key_segment(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    const bool edge_dot = c == '.' && (i == 0 || i + 1 == name.size());
    if (c == '%' || c == '/' || c == '\\' || c < 0x20 || c == 0x7F || edge_dot) {
      out += hex_byte(c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string project_target_key(std::string_view prefix_key, std::string_view project_type,
                               Id project_id, const std::vector<Id>& dataset_path,
                               std::string_view item_name) {
  std::string key(prefix_key);
  while (!key.empty() && key.back() == '/') key.pop_back();
  if (!key.empty()) key += '/';
  key.append(project_type).append("/").append(std::to_string(project_id));
  for (Id id : dataset_path) key.append("/").append(std::to_string(id));
  key.append("/").append(escape_key_segment(item_name));
  return key;
}

Result<ProjectMigrationReport> migrate_project(Service& service,
                                               const ProjectMigrationOptions& options) {
  const auto start = Clock::now();
  catalog::Catalog& catalog = service.catalog();
  if (options.concurrency == 0 || options.switch_batch == 0 || options.page_size <= 0) {
    return make_error(ErrorCode::InvalidArgument,
                      "concurrency, the switch batch and the page size must be at least 1");
  }
  // Where the bytes go (checked first: a configuration mistake is reported before anything
  // else).
  Direction direction = Direction::LinkToStored;
  uri::Locator target_locator;
  std::string prefix_key;
  std::string journal_scope;
  if (options.to) {
    direction = options.from_links ? Direction::LinkToLink : Direction::StoredToLink;
    links::LinkResolver* resolver = service.link_resolver();
    if (resolver == nullptr) {
      return make_error(ErrorCode::InvalidArgument,
                        "target " + *options.to +
                            ": links are not configured (no remote_links.yml connections)");
    }
    auto target = resolver->resolve_prefix(*options.to);
    if (!target) {
      Error e = target.error();
      e.message = "target " + *options.to + ": " + e.message;
      return e;
    }
    if (!target->locator.is_cloud() && target->locator.scheme != uri::Scheme::Fs) {
      return make_error(ErrorCode::InvalidArgument,
                        "target " + *options.to +
                            ": give a prefix as s3://bucket/dir, azure://container/dir, "
                            "google://bucket/dir or fs://storage-id/dir");
    }
    target_locator = target->locator;
    prefix_key = target->path.key;
    while (!prefix_key.empty() && prefix_key.back() == '/') prefix_key.pop_back();
    journal_scope = "project-migration link " + target->connection;
  } else {
    journal_scope = "project-migration local " + std::string(service.store().name());
  }
  const std::string from = options.from_links.value_or("");

  STOWAGE_ASSIGN_OR_RETURN(const catalog::Project project, catalog.get_project(options.project_id));
  if (project.type != "images" && project.type != "videos") {
    return make_error(ErrorCode::Unsupported, "project " + std::to_string(project.id) +
                                                  " is of type '" + project.type +
                                                  "'; only images and videos projects migrate");
  }

  STOWAGE_ASSIGN_OR_RETURN(const DatasetTree tree,
                           load_datasets(catalog, project.id, options.page_size));

  ProjectMigrationReport report;
  report.project_id = project.id;
  report.project_type = project.type;
  report.target = options.to.value_or("local");

  /// Whether an item is one this migration moves.
  const auto selected = [&](const Item& item) {
    switch (direction) {
      case Direction::StoredToLink:
        return !item.link && item.blob_sha256_hex.has_value();
      case Direction::LinkToLink:
        return item.link && item.link->starts_with(from) &&
               !is_under(*item.link, target_locator, prefix_key);
      case Direction::LinkToStored:
        return item.link && item.link->starts_with(from);
    }
    return false;
  };

  /// Walks the selected items of the project a catalog page at a time.
  struct Walk {
    std::size_t dataset = 0;
    std::optional<Id> after;
  };
  const auto next_page = [&](Walk& walk) -> Result<std::vector<Item>> {
    std::vector<Item> out;
    while (out.empty() && walk.dataset < tree.datasets.size()) {
      catalog::ListQuery query;
      query.per_page = options.page_size;
      query.after = walk.after;
      auto page = catalog.list_items(tree.datasets[walk.dataset].id, std::nullopt, query);
      if (!page) return page.error();
      for (auto& item : page->entities) {
        walk.after = item.id;
        if (selected(item)) out.push_back(std::move(item));
      }
      if (page->entities.size() < static_cast<std::size_t>(options.page_size)) {
        ++walk.dataset;
        walk.after.reset();
      }
    }
    return out;
  };

  Collected collected;
  const auto fail_item = [&](const std::shared_ptr<ItemJob>& job, Error error) {
    std::lock_guard lock(collected.mutex);
    job->about.error = std::move(error);
    collected.failed.push_back(job->about);
  };

  /// The copy task of one item; a problem found here (a name no store can take, a link that
  /// no longer resolves) fails the item, not the run.
  const auto make_task = [&](Item item) -> std::optional<migration::CopyTask> {
    auto job = std::make_shared<ItemJob>();
    job->about.item_id = item.id;
    job->about.dataset_id = item.dataset_id;
    job->about.name = item.name;
    job->about.source = item.link ? *item.link : describe_blob(item);
    job->item = std::move(item);
    migration::CopyTask task;

    if (direction == Direction::LinkToStored) {
      job->about.target = "stored " + service.options().public_bucket + "/<sha256 of the bytes>";
      job->target_store = nullptr;
      task.target = &service.store();
    } else {
      const std::string key =
          project_target_key(prefix_key, project.type, project.id,
                             options.nested ? tree.path_of(job->item.dataset_id)
                                            : std::vector<Id>{job->item.dataset_id},
                             job->item.name);
      job->target_link = target_locator.scheme_text + "://" + target_locator.authority + "/" + key;
      job->about.target = job->target_link;
      if (auto ok = store::validate_key(key); !ok) {
        fail_item(job, ok.error());
        return std::nullopt;
      }
      // Resolved as the server will resolve the link once it is switched: the copy goes exactly
      // where downloads will read.
      auto resolved = service.resolve_link(job->target_link);
      if (!resolved) {
        fail_item(job, resolved.error());
        return std::nullopt;
      }
      job->target_store = resolved->store;
      task.target = job->target_store.get();
      task.target_path = resolved->path;
    }

    task.prepare = [&service, &options, job, direction](migration::CopyTask& t) -> Status {
      const Item& item = job->item;
      if (direction == Direction::StoredToLink) {
        job->source_store = nullptr;
        t.source = &service.store();
        const store::ObjectPath path{item.blob_bucket, item.blob_key};
        STOWAGE_ASSIGN_OR_RETURN(t.source_info, http::with_retries(options.retry, [&] {
                                   return service.store().stat(path);
                                 }));
        // The bytes must be what the catalog says they are: a stored blob whose bytes do not
        // hash to its name is corrupt, and is reported rather than linked.
        t.expected_sha256_hex = item.blob_sha256_hex.value_or("");
        return {};
      }
      STOWAGE_ASSIGN_OR_RETURN(auto source, service.resolve_link(*item.link));
      job->source_store = source.store;
      t.source = job->source_store.get();
      STOWAGE_ASSIGN_OR_RETURN(t.source_info, http::with_retries(options.retry, [&] {
                                 return job->source_store->stat(source.path);
                               }));
      if (direction == Direction::LinkToLink) return {};

      // The reverse: stored bytes are content-addressed, so the key needs the SHA-256 before
      // the copy. Hash the source (pinned to the stat's etag), then copy to the blob's key; the
      // copy is checked against this hash, so a source that changed in between fails the item.
      STOWAGE_ASSIGN_OR_RETURN(auto hashed, http::with_retries(options.retry, [&] {
                                 return migration::hash_object(*job->source_store, source.path,
                                                               t.source_info.etag,
                                                               io::kDefaultChunkBytes);
                               }));
      const auto& [sha256_hex, size] = hashed;
      t.expected_sha256_hex = sha256_hex;
      auto existing = service.catalog().get_blob(sha256_hex);
      if (existing) {
        // Identical bytes are stored once: the copy compares with the existing blob (and so
        // checks that its bytes are intact) instead of writing them again.
        t.target_path = {existing->bucket, existing->key};
        job->about.target = "stored " + existing->bucket + "/" + existing->key;
        return {};
      }
      if (existing.error().code != ErrorCode::NotFound) return existing.error();
      catalog::Blob blob;
      blob.sha256_hex = sha256_hex;
      blob.size = size;
      blob.mime = item.mime;
      blob.width = item.width;
      blob.height = item.height;
      blob.bucket = service.options().public_bucket;
      blob.key = Service::blob_key(sha256_hex, item.mime);
      blob.file_meta = item.file_meta;
      t.target_path = {blob.bucket, blob.key};
      job->about.target = "stored " + blob.bucket + "/" + blob.key;
      job->new_blob = std::move(blob);
      return {};
    };

    task.on_done = [&service, &options, &collected, job,
                    direction](const Result<migration::CopyResult>& done) {
      std::lock_guard lock(collected.mutex);
      if (!done) {
        job->about.error = done.error();
        collected.failed.push_back(job->about);
        return;
      }
      const Item& item = job->item;
      if (options.dry_run) {
        collected.plan.push_back(PlannedItem{item.id, job->about.source, job->about.target,
                                             done->size_bytes,
                                             done->outcome == migration::CopyOutcome::Skipped});
        return;
      }
      switch (direction) {
        case Direction::StoredToLink:
          if (done->sha256_hex != item.blob_sha256_hex) {
            job->about.error = make_error(
                ErrorCode::Corrupt, "the stored bytes hash to " + done->sha256_hex +
                                        ", not to the blob's name " +
                                        item.blob_sha256_hex.value_or("") + "; not linked");
            collected.failed.push_back(job->about);
            return;
          }
          collected.links.push_back(
              {catalog::LinkChange{item.id, job->target_link, item.blob_sha256_hex, std::nullopt},
               job->about});
          return;
        case Direction::LinkToLink:
          collected.links.push_back(
              {catalog::LinkChange{item.id, job->target_link, std::nullopt, item.link},
               job->about});
          return;
        case Direction::LinkToStored: {
          const std::string sha256_hex = done->sha256_hex;
          if (job->new_blob) {
            // Bytes first, row second (as uploads publish): the row is written only now that
            // the bytes are verified at the blob's key. put_blob is idempotent.
            auto put = service.catalog().put_blob(*job->new_blob);
            if (!put) {
              job->about.error = put.error();
              collected.failed.push_back(job->about);
              return;
            }
          }
          collected.blobs.push_back(
              {catalog::BlobChange{item.id, sha256_hex, item.link}, job->about});
          return;
        }
      }
    };
    return task;
  };

  // ---- Copy phase ----------------------------------------------------------------------------
  Walk walk;
  const migration::TaskPager pager = [&]() -> Result<std::vector<migration::CopyTask>> {
    std::vector<migration::CopyTask> tasks;
    while (tasks.empty()) {
      STOWAGE_ASSIGN_OR_RETURN(auto items, next_page(walk));
      if (items.empty()) break;
      if (options.on_phase) options.on_phase("copy");
      for (auto& item : items) {
        ++report.selected;
        report.selected_bytes += item.size;
        if (auto task = make_task(std::move(item))) tasks.push_back(std::move(*task));
      }
    }
    return tasks;
  };
  migration::RunOptions run;
  run.concurrency = options.concurrency;
  run.copy.retry = options.retry;
  run.copy.dry_run = options.dry_run;
  run.copy.journal = options.journal;
  run.copy.journal_scope = journal_scope;
  run.on_progress = options.on_progress;
  run.count = [&]() -> Result<migration::Totals> {
    migration::Totals totals;
    Walk counting;
    for (;;) {
      STOWAGE_ASSIGN_OR_RETURN(auto items, next_page(counting));
      if (items.empty()) return totals;
      for (const auto& item : items) {
        ++totals.objects;
        totals.bytes += item.size;
      }
    }
  };
  report.copies = migration::run_copies(pager, run);
  report.aborted = report.copies.aborted;
  report.failed = std::move(collected.failed);
  report.plan = std::move(collected.plan);

  // ---- Switch phase: only after every copy (the docs' order) ----------------------------------
  if (!options.dry_run && !report.aborted) {
    if (!report.failed.empty() && !options.switch_partial) {
      report.switch_withheld = true;
    } else {
      switch_in_batches(
          catalog, collected.links, options, report,
          [&](const std::vector<catalog::LinkChange>& list) { return catalog.set_item_links(list); },
          [](const Item& now, const catalog::LinkChange& c) {
            return (!c.expect_blob_sha256_hex || now.blob_sha256_hex == c.expect_blob_sha256_hex) &&
                   (!c.expect_link || now.link == c.expect_link);
          });
      switch_in_batches(
          catalog, collected.blobs, options, report,
          [&](const std::vector<catalog::BlobChange>& list) { return catalog.set_item_blobs(list); },
          [](const Item& now, const catalog::BlobChange& c) {
            return !c.expect_link || now.link == c.expect_link;
          });
    }
  }
  report.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return report;
}

}  // namespace stowage::service
