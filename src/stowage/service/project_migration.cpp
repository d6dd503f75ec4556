// SPDX-License-Identifier: Apache-2.0
#include "stowage/service/project_migration.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

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

/// Who runs this migration: alone, as the starter of a shared run, or as a helper of one.
enum class Role { Solo, Leader, Helper };

namespace json = boost::json;

json::value optional_json(const std::optional<std::string>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}
std::optional<std::string> optional_text(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string(v->as_string());
}

/// Where every item's outcome goes: the run's own lists, and with shared work the catalog too,
/// as the item's result (JSON), from which the starting run collects every worker's.
class Sink {
 public:
  Collected collected;
  /// Shared work: records an item's outcome in the catalog. Empty otherwise.
  std::function<void(Id item_id, bool failed, const json::object& result)> finish;

  void failed(ItemJob& job, Error error) {
    {
      std::lock_guard lock(collected.mutex);
      job.about.error = std::move(error);
      collected.failed.push_back(job.about);
    }
    if (finish) {
      json::object r = about_json(job.about);
      r["error"] = job.about.error.message;
      r["code"] = static_cast<int>(job.about.error.code);
      finish(job.about.item_id, true, r);
    }
  }
  void link(const ItemJob& job, catalog::LinkChange change) {
    if (finish) {
      json::object r = about_json(job.about);
      r["link"] = change.link;
      r["expect_blob"] = optional_json(change.expect_blob_sha256_hex);
      r["expect_link"] = optional_json(change.expect_link);
      finish(job.about.item_id, false, r);
    }
    std::lock_guard lock(collected.mutex);
    collected.links.push_back({std::move(change), job.about});
  }
  void blob(const ItemJob& job, catalog::BlobChange change) {
    if (finish) {
      json::object r = about_json(job.about);
      r["blob"] = change.blob_sha256_hex;
      r["expect_link"] = optional_json(change.expect_link);
      finish(job.about.item_id, false, r);
    }
    std::lock_guard lock(collected.mutex);
    collected.blobs.push_back({std::move(change), job.about});
  }
  void plan(PlannedItem planned) {
    std::lock_guard lock(collected.mutex);
    collected.plan.push_back(std::move(planned));
  }

  /// The starting run of shared work: one item's outcome as a worker recorded it. Returns the
  /// worker that copied it (nothing for a failure or an item that needed nothing).
  std::optional<std::string> collect(const catalog::WorkResult& work) {
    json::error_code ec;
    const json::value parsed = json::parse(work.result, ec);
    if (ec || !parsed.is_object()) return std::nullopt;
    const json::object& r = parsed.as_object();
    if (r.contains("skipped")) return std::nullopt;
    ItemProblem about;
    about.item_id = work.item_id;
    if (const auto* d = r.if_contains("dataset"); d != nullptr && d->is_int64()) {
      about.dataset_id = d->as_int64();
    }
    about.name = optional_text(r, "name").value_or("");
    about.source = optional_text(r, "source").value_or("");
    about.target = optional_text(r, "target").value_or("");
    std::lock_guard lock(collected.mutex);
    if (work.failed) {
      const auto* code = r.if_contains("code");
      about.error = make_error(code != nullptr && code->is_int64()
                                   ? static_cast<ErrorCode>(code->as_int64())
                                   : ErrorCode::Internal,
                               optional_text(r, "error").value_or("failed"));
      collected.failed.push_back(std::move(about));
      return std::nullopt;
    }
    if (auto link = optional_text(r, "link")) {
      collected.links.push_back(
          {catalog::LinkChange{work.item_id, *link, optional_text(r, "expect_blob"),
                               optional_text(r, "expect_link")},
           std::move(about)});
    } else if (auto blob = optional_text(r, "blob")) {
      collected.blobs.push_back(
          {catalog::BlobChange{work.item_id, *blob, optional_text(r, "expect_link")},
           std::move(about)});
    }
    return optional_text(r, "by");
  }

 private:
  static json::object about_json(const ItemProblem& about) {
    return {{"dataset", about.dataset_id},
            {"name", about.name},
            {"source", about.source},
            {"target", about.target}};
  }
};

/// Adds a later round of copies (shared work: items that came back from a dead worker).
void add_summary(migration::Summary& into, migration::Summary more) {
  into.copied += more.copied;
  into.skipped += more.skipped;
  into.would_copy += more.would_copy;
  into.failed += more.failed;
  into.bytes_copied += more.bytes_copied;
  into.bytes_skipped += more.bytes_skipped;
  into.bytes_would_copy += more.bytes_would_copy;
  into.bytes_written += more.bytes_written;
  for (auto& f : more.failures) into.failures.push_back(std::move(f));
  if (!into.aborted) into.aborted = std::move(more.aborted);
  into.elapsed += more.elapsed;
}

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

std::string project_migration_run(catalog::Id project_id) {
  return "migrate project " + std::to_string(project_id);
}

namespace {

Result<ProjectMigrationReport> run_migration(Service& service,
                                             const ProjectMigrationOptions& options, Role role) {
  const auto start = Clock::now();
  catalog::Catalog& catalog = service.catalog();
  if (options.concurrency == 0 || options.switch_batch == 0 || options.page_size <= 0) {
    return make_error(ErrorCode::InvalidArgument,
                      "concurrency, the switch batch and the page size must be at least 1");
  }
  if (role != Role::Solo && (!options.share || options.share->holder.empty() ||
                             options.share->claim_batch == 0)) {
    return make_error(ErrorCode::InvalidArgument, "shared work needs a holder and a claim batch");
  }
  if (role != Role::Solo && options.dry_run) {
    return make_error(ErrorCode::InvalidArgument, "a dry run changes nothing: it shares no work");
  }
  const std::string run_name = project_migration_run(options.project_id);
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

  Sink sink;
  if (role != Role::Solo) {
    const SharedWork& share = *options.share;
    sink.finish = [&catalog, &run_name, &share](Id item_id, bool failed, json::object result) {
      result["by"] = share.holder;
      // Not recorded (the catalog is unreachable, or the hold ran out and another worker has
      // the item now): the item is copied again by whoever holds it next. Nothing is lost.
      (void)catalog.finish_work(run_name, item_id, share.holder, failed, json::serialize(result));
    };
  }

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
        sink.failed(*job, ok.error());
        return std::nullopt;
      }
      // Resolved as the server will resolve the link once it is switched: the copy goes exactly
      // where downloads will read.
      auto resolved = service.resolve_link(job->target_link);
      if (!resolved) {
        sink.failed(*job, resolved.error());
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

    task.on_done = [&service, &options, &sink, job,
                    direction](const Result<migration::CopyResult>& done) {
      if (!done) {
        sink.failed(*job, done.error());
        return;
      }
      const Item& item = job->item;
      if (options.dry_run) {
        sink.plan(PlannedItem{item.id, job->about.source, job->about.target, done->size_bytes,
                              done->outcome == migration::CopyOutcome::Skipped});
        return;
      }
      switch (direction) {
        case Direction::StoredToLink:
          if (done->sha256_hex != item.blob_sha256_hex) {
            sink.failed(*job, make_error(ErrorCode::Corrupt,
                                         "the stored bytes hash to " + done->sha256_hex +
                                             ", not to the blob's name " +
                                             item.blob_sha256_hex.value_or("") + "; not linked"));
            return;
          }
          sink.link(*job, catalog::LinkChange{item.id, job->target_link, item.blob_sha256_hex,
                                              std::nullopt});
          return;
        case Direction::LinkToLink:
          sink.link(*job, catalog::LinkChange{item.id, job->target_link, std::nullopt, item.link});
          return;
        case Direction::LinkToStored: {
          const std::string sha256_hex = done->sha256_hex;
          if (job->new_blob) {
            // Bytes first, row second (as uploads publish): the row is written only now that
            // the bytes are verified at the blob's key. put_blob is idempotent.
            auto put = service.catalog().put_blob(*job->new_blob);
            if (!put) {
              sink.failed(*job, put.error());
              return;
            }
          }
          sink.blob(*job, catalog::BlobChange{item.id, sha256_hex, item.link});
          return;
        }
      }
    };
    return task;
  };

  // ---- Copy phase ----------------------------------------------------------------------------
  Walk walk;
  const auto add_selected = [&](const Item& item) {
    ++report.selected;
    report.selected_bytes += item.size;
  };
  const migration::TaskPager walk_pager = [&]() -> Result<std::vector<migration::CopyTask>> {
    std::vector<migration::CopyTask> tasks;
    while (tasks.empty()) {
      STOWAGE_ASSIGN_OR_RETURN(auto items, next_page(walk));
      if (items.empty()) break;
      if (options.on_phase) options.on_phase("copy");
      for (auto& item : items) {
        add_selected(item);
        if (auto task = make_task(std::move(item))) tasks.push_back(std::move(*task));
      }
    }
    return tasks;
  };
  /// Shared work: the next items claimed from the catalog. An item that changed since it was
  /// published (removed, switched by someone else) is finished with nothing to do.
  const migration::TaskPager claim_pager = [&]() -> Result<std::vector<migration::CopyTask>> {
    const SharedWork& share = *options.share;
    std::vector<migration::CopyTask> tasks;
    while (tasks.empty()) {
      STOWAGE_ASSIGN_OR_RETURN(auto ids, catalog.claim_work(run_name, share.holder,
                                                            share.claim_batch, share.hold));
      if (ids.empty()) break;
      if (options.on_phase) options.on_phase("copy");
      for (const Id id : ids) {
        auto item = catalog.get_item(id);
        if (!item && item.error().code != ErrorCode::NotFound) return item.error();
        if (!item || item->project_id != project.id || !selected(*item)) {
          STOWAGE_TRY(catalog.finish_work(run_name, id, share.holder, false, R"({"skipped":true})"));
          continue;
        }
        if (role == Role::Helper) add_selected(*item);
        if (auto task = make_task(std::move(*item))) tasks.push_back(std::move(*task));
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
  if (role == Role::Solo) {
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
    report.copies = migration::run_copies(walk_pager, run);
  } else {
    if (role == Role::Leader) {
      // Publish every selected item, then copy alongside the helpers.
      STOWAGE_TRY(catalog.open_work_run(
          run_name, json::serialize(json::object{{"to", optional_json(options.to)},
                                                 {"from_links", optional_json(options.from_links)},
                                                 {"nested", options.nested}})));
      migration::Totals totals;
      Walk publishing;
      for (;;) {
        STOWAGE_ASSIGN_OR_RETURN(auto items, next_page(publishing));
        if (items.empty()) break;
        std::vector<Id> ids;
        for (const auto& item : items) {
          ids.push_back(item.id);
          add_selected(item);
          ++totals.objects;
          totals.bytes += item.size;
        }
        STOWAGE_TRY(catalog.add_work(run_name, ids));
      }
      run.count = [totals]() -> Result<migration::Totals> { return totals; };
    }
    report.copies = migration::run_copies(claim_pager, run);
    run.count = nullptr;
    // A helper may find the run open before its items are published: it waits for them (or
    // for the run to close), and leaves once nothing is left to claim.
    while (role == Role::Helper && !report.copies.aborted) {
      auto counts = catalog.count_work(run_name);
      if (!counts) {
        report.copies.aborted = counts.error();
        break;
      }
      const bool published = counts->pending + counts->taken + counts->done + counts->failed > 0;
      if (published && counts->pending == 0) break;
      auto open = catalog.work_run_spec(run_name);
      if (!open || !*open) break;
      std::this_thread::sleep_for(options.share->poll);
      add_summary(report.copies, migration::run_copies(claim_pager, run));
    }
    // The last items are with other workers: wait for them, taking back those whose worker's
    // hold ran out (it died).
    while (role == Role::Leader && !report.copies.aborted) {
      auto counts = catalog.count_work(run_name);
      if (!counts) {
        report.copies.aborted = counts.error();
        break;
      }
      if (counts->pending == 0 && counts->taken == 0) break;
      std::this_thread::sleep_for(options.share->poll);
      add_summary(report.copies, migration::run_copies(claim_pager, run));
    }
    if (role == Role::Leader && !report.copies.aborted) {
      // Every worker's outcomes, this run's included, as recorded in the catalog.
      Collected& c = sink.collected;
      c.links.clear();
      c.blobs.clear();
      c.failed.clear();
      Id after = 0;
      for (;;) {
        auto page = catalog.finished_work(run_name, after, 1000);
        if (!page) {
          report.copies.aborted = page.error();
          break;
        }
        if (page->empty()) break;
        for (const auto& work : *page) {
          const auto by = sink.collect(work);
          if (by && *by != options.share->holder) ++report.copied_by_helpers;
          after = work.item_id;
        }
      }
    }
  }
  Collected& collected = sink.collected;
  report.aborted = report.copies.aborted;
  report.failed = std::move(collected.failed);
  report.plan = std::move(collected.plan);

  // ---- Switch phase: only after every copy (the docs' order) ----------------------------------
  if (!options.dry_run && !report.aborted && role != Role::Helper) {
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
  if (role == Role::Leader) (void)catalog.close_work_run(run_name);
  report.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return report;
}

}  // namespace

Result<ProjectMigrationReport> migrate_project(Service& service,
                                               const ProjectMigrationOptions& options) {
  return run_migration(service, options, options.share ? Role::Leader : Role::Solo);
}

Result<ProjectMigrationReport> join_project_migration(Service& service, catalog::Id project_id,
                                                      const ProjectMigrationOptions& local,
                                                      const SharedWork& share,
                                                      std::chrono::milliseconds wait) {
  const std::string run_name = project_migration_run(project_id);
  const auto deadline = Clock::now() + wait;
  std::optional<std::string> spec;
  for (;;) {
    STOWAGE_ASSIGN_OR_RETURN(spec, service.catalog().work_run_spec(run_name));
    if (spec || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(share.poll);
  }
  if (!spec) {
    return make_error(ErrorCode::NotFound,
                      "no shared migration of project " + std::to_string(project_id) +
                          " is running (start one with --share)");
  }
  json::error_code ec;
  const json::value parsed = json::parse(*spec, ec);
  if (ec || !parsed.is_object()) {
    return make_error(ErrorCode::Corrupt, run_name + ": the run's spec is not a JSON object");
  }
  const json::object& o = parsed.as_object();
  ProjectMigrationOptions options = local;
  options.project_id = project_id;
  options.to = optional_text(o, "to");
  options.from_links = optional_text(o, "from_links");
  const auto* nested = o.if_contains("nested");
  options.nested = nested != nullptr && nested->is_bool() && nested->as_bool();
  options.dry_run = false;
  options.share = share;
  return run_migration(service, options, Role::Helper);
}

}  // namespace stowage::service
