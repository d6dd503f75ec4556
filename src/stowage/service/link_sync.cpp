// SPDX-License-Identifier: Apache-2.0
#include "stowage/service/link_sync.hpp"

#include <fnmatch.h>

#include <atomic>
#include <regex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "stowage/service/service.hpp"

namespace stowage::service {
namespace {

/// Items read per catalog page when collecting what the dataset already has.
constexpr std::int64_t kItemPage = 5000;
/// Objects asked for per listing page.
constexpr std::size_t kListPage = 1000;

/// The item name of an object: its key below the prefix, with '/' written "__" so that objects
/// of sub-folders get names of one segment that cannot clash with each other.
std::string item_name(std::string_view relative) {
  std::string out;
  for (char c : relative) {
    if (c == '/') {
      out += "__";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

struct Candidate {
  std::size_t entry = 0;  ///< index in the report's entries
  std::string link;
  std::string name;
};

}  // namespace

std::string_view to_string(LinkSyncEntry::Status status) noexcept {
  switch (status) {
    case LinkSyncEntry::Status::Added:
      return "added";
    case LinkSyncEntry::Status::WouldAdd:
      return "would add";
    case LinkSyncEntry::Status::Exists:
      return "exists";
    case LinkSyncEntry::Status::Skipped:
      return "skipped";
    case LinkSyncEntry::Status::Failed:
      return "failed";
    case LinkSyncEntry::Status::Removed:
      return "removed";
  }
  return "?";
}

Result<LinkSyncReport> sync_links(Service& service, const catalog::Principal& who,
                                  const LinkSyncOptions& options) {
  STOWAGE_ASSIGN_OR_RETURN(const MediaKind kind, service.dataset_kind(who, options.dataset_id));
  if (service.link_resolver() == nullptr) {
    return make_error(ErrorCode::PermissionDenied,
                      "links are not configured: add the bucket's connection to remote_links.yml");
  }
  std::optional<std::regex> pattern;
  if (!options.regex.empty()) {
    try {
      pattern.emplace(options.regex, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return make_error(ErrorCode::InvalidArgument,
                        "--regex '" + options.regex + "' is not a valid regular expression: " +
                            e.what());
    }
  }
  STOWAGE_ASSIGN_OR_RETURN(auto target, service.link_resolver()->resolve_prefix(options.prefix));
  STOWAGE_TRY(service.check_connection(who, target));
  const std::string base_key = target.path.key;
  const std::string link_base =
      target.locator.scheme_text + "://" + target.locator.authority + "/" + target.locator.key;

  // What the dataset has: its links (to tell new objects from known ones) and its names.
  std::unordered_map<std::string, catalog::Id> by_link;
  std::unordered_set<std::string> names;
  {
    catalog::ListQuery q;
    q.per_page = kItemPage;
    q.after = 0;
    for (;;) {
      STOWAGE_ASSIGN_OR_RETURN(auto page,
                               service.catalog().list_items(options.dataset_id, std::nullopt, q));
      for (const auto& item : page.entities) {
        names.insert(item.name);
        if (item.link) by_link.emplace(*item.link, item.id);
      }
      if (page.entities.size() < static_cast<std::size_t>(kItemPage)) break;
      q.after = page.entities.back().id;
    }
  }

  LinkSyncReport report;
  auto& counts = report.counts;
  std::unordered_set<std::string> seen;
  std::vector<Candidate> batch;
  auto progress = [&] {
    if (options.on_progress) options.on_progress(counts);
  };

  // Probes a batch (in parallel), then adds what probed as media in one transaction.
  auto flush = [&]() -> Status {
    if (batch.empty()) return {};
    std::vector<Result<catalog::NewItem>> probed(batch.size(),
                                                 make_error(ErrorCode::Internal, "not probed"));
    std::atomic<std::size_t> next{0};
    auto work = [&] {
      for (std::size_t i = next++; i < batch.size(); i = next++) {
        auto resolved = service.resolve_link(batch[i].link);
        if (!resolved) {
          probed[i] = resolved.error();
          continue;
        }
        probed[i] = kind == MediaKind::Video ? service.link_video_metadata(*resolved, std::nullopt)
                                             : service.link_metadata(*resolved);
      }
    };
    const std::size_t threads = std::clamp<std::size_t>(options.concurrency, 1, batch.size());
    std::vector<std::thread> pool;
    for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();

    std::vector<catalog::NewItem> rows;
    std::vector<std::size_t> row_entries;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      LinkSyncEntry& entry = report.entries[batch[i].entry];
      if (!probed[i]) {
        // Bytes that are not an image (video) are skipped; anything else is a failure.
        const bool not_media = probed[i].error().code == ErrorCode::InvalidArgument;
        entry.status = not_media ? LinkSyncEntry::Status::Skipped : LinkSyncEntry::Status::Failed;
        entry.reason = probed[i].error().message;
        ++(not_media ? counts.skipped : counts.failed);
        continue;
      }
      catalog::NewItem row = std::move(*probed[i]);
      row.name = batch[i].name;
      row.link = batch[i].link;
      rows.push_back(std::move(row));
      row_entries.push_back(batch[i].entry);
    }
    if (!rows.empty()) {
      auto added = service.catalog().add_items(options.dataset_id, rows, who.user.id);
      if (!added) {
        for (std::size_t e : row_entries) {
          report.entries[e].status = LinkSyncEntry::Status::Failed;
          report.entries[e].reason = added.error().message;
        }
        counts.failed += row_entries.size();
      } else {
        for (std::size_t k = 0; k < added->size(); ++k) {
          report.entries[row_entries[k]].status = LinkSyncEntry::Status::Added;
          report.entries[row_entries[k]].item_id = (*added)[k].id;
        }
        counts.added += added->size();
      }
    }
    batch.clear();
    progress();
    return {};
  };

  store::ListOptions list_options;
  list_options.max_keys = kListPage;
  if (!options.recursive) list_options.delimiter = "/";
  for (;;) {
    STOWAGE_ASSIGN_OR_RETURN(auto page, target.store->list({target.path.bucket, base_key},
                                                           list_options));
    for (const auto& object : page.objects) {
      ++counts.listed;
      std::string_view relative = std::string_view(object.path.key).substr(base_key.size());
      while (relative.starts_with('/')) relative.remove_prefix(1);
      if (relative.empty() || relative.ends_with('/')) continue;  // folder markers
      const std::string rel(relative);
      const std::string link = link_base + std::string(object.path.key).substr(base_key.size());
      seen.insert(link);  // listed, so not removed, whether or not the filters take it
      bool match = options.include.empty();
      for (const auto& glob : options.include) {
        if (::fnmatch(glob.c_str(), rel.c_str(), 0) == 0) match = true;
      }
      if (match && pattern) match = std::regex_search(rel, *pattern);
      if (!match) continue;
      ++counts.matched;
      LinkSyncEntry entry;
      entry.link = link;
      entry.name = item_name(rel);
      if (const auto it = by_link.find(link); it != by_link.end()) {
        entry.status = LinkSyncEntry::Status::Exists;
        entry.item_id = it->second;
        ++counts.existing;
        report.entries.push_back(std::move(entry));
        continue;
      }
      if (!names.insert(entry.name).second) {
        entry.status = LinkSyncEntry::Status::Failed;
        entry.reason = "the name '" + entry.name + "' is taken by another item of the dataset";
        ++counts.failed;
        report.entries.push_back(std::move(entry));
        continue;
      }
      if (options.dry_run) {
        entry.status = LinkSyncEntry::Status::WouldAdd;
        ++counts.added;
        report.entries.push_back(std::move(entry));
        continue;
      }
      batch.push_back({report.entries.size(), link, entry.name});
      report.entries.push_back(std::move(entry));
      if (batch.size() >= std::max<std::size_t>(1, options.batch)) STOWAGE_TRY(flush());
    }
    progress();
    if (page.next_page_token.empty()) break;
    list_options.page_token = page.next_page_token;
  }
  STOWAGE_TRY(flush());

  // Items linked under the prefix (directly, unless recursive) whose object was not listed.
  for (const auto& [link, id] : by_link) {
    if (!link.starts_with(link_base) || seen.contains(link)) continue;
    const std::string_view rest = std::string_view(link).substr(link_base.size());
    if (!options.recursive && rest.find('/') != std::string_view::npos) continue;
    LinkSyncEntry entry;
    entry.status = LinkSyncEntry::Status::Removed;
    entry.link = link;
    entry.item_id = id;
    entry.reason = "the object is no longer under the prefix (the item is kept)";
    report.entries.push_back(std::move(entry));
    ++report.removed;
  }
  progress();
  return report;
}

}  // namespace stowage::service
