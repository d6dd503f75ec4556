// SPDX-License-Identifier: Apache-2.0
#include "stowage/service/fsck.hpp"

#include <unordered_map>

#include "stowage/io/checksum.hpp"
#include "stowage/service/service.hpp"
#include "stowage/service/team_files.hpp"

namespace stowage::service {
namespace {

constexpr std::size_t kPage = 1000;

/// The outcome of checking one blob's object, kept so that items sharing it are checked once.
struct BlobCheck {
  std::optional<FsckFinding::Kind> problem;
  std::string detail;
};

BlobCheck check_blob_object(store::ObjectStore& store, const catalog::Blob& blob, bool deep) {
  auto info = store.stat({blob.bucket, blob.key});
  if (!info) {
    if (info.error().code == ErrorCode::NotFound) {
      return {FsckFinding::Kind::BlobMissing, "no object at " + blob.bucket + "/" + blob.key};
    }
    return {FsckFinding::Kind::BlobMissing, info.error().message};
  }
  if (info->size != blob.size) {
    return {FsckFinding::Kind::BlobSizeWrong, "the object has " + std::to_string(info->size) +
                                                  " bytes, the blob " + std::to_string(blob.size)};
  }
  if (deep) {
    auto reader = store.open_read({blob.bucket, blob.key}, {});
    if (!reader) return {FsckFinding::Kind::BlobMissing, reader.error().message};
    io::Sha256 hash;
    std::vector<std::byte> chunk(io::kDefaultChunkBytes);
    auto read = io::drain(
        **reader,
        [&](std::span<const std::byte> bytes) -> Status {
          hash.update(bytes);
          return {};
        },
        chunk);
    if (!read) return {FsckFinding::Kind::BlobMissing, read.error().message};
    const std::string got = io::to_hex(hash.finish());
    if (got != blob.sha256_hex) {
      return {FsckFinding::Kind::BlobCorrupt, "the bytes hash to " + got};
    }
  }
  return {};
}

/// The SHA-256 an object of the blob layout names: images|videos/original/xx/yy/<hex>.<ext>.
std::optional<std::string> blob_hash_of_key(std::string_view key) {
  if (!key.starts_with("images/original/") && !key.starts_with("videos/original/")) {
    return std::nullopt;
  }
  const std::size_t slash = key.rfind('/');
  std::string_view file = key.substr(slash + 1);
  file = file.substr(0, file.find('.'));
  if (file.size() != 64) return std::nullopt;
  return std::string(file);
}

}  // namespace

std::string_view to_string(FsckFinding::Kind kind) noexcept {
  switch (kind) {
    case FsckFinding::Kind::BlobMissing:
      return "blob-missing";
    case FsckFinding::Kind::BlobSizeWrong:
      return "blob-size-wrong";
    case FsckFinding::Kind::BlobCorrupt:
      return "blob-corrupt";
    case FsckFinding::Kind::BlobRowMissing:
      return "blob-row-missing";
    case FsckFinding::Kind::LinkGone:
      return "link-gone";
    case FsckFinding::Kind::LinkSizeChanged:
      return "link-size-changed";
    case FsckFinding::Kind::LinkUnreachable:
      return "link-unreachable";
    case FsckFinding::Kind::OrphanObject:
      return "orphan-object";
  }
  return "?";
}

bool is_problem(FsckFinding::Kind kind) noexcept { return kind != FsckFinding::Kind::OrphanObject; }

Result<FsckReport> check_storage(Service& service, const FsckOptions& options) {
  catalog::Catalog& catalog = service.catalog();
  store::ObjectStore& store = service.store();
  FsckReport report;
  std::unordered_map<std::string, BlobCheck> checked;  // by hash
  auto add = [&](FsckFinding f) {
    if (is_problem(f.kind)) ++report.problems;
    if (f.repaired) ++report.repaired;
    report.findings.push_back(std::move(f));
  };
  auto progress = [&] {
    if (options.on_progress) options.on_progress(report.items, report.blobs);
  };
  auto blob_check = [&](const catalog::Blob& blob) -> const BlobCheck& {
    auto it = checked.find(blob.sha256_hex);
    if (it == checked.end()) {
      ++report.blobs;
      it = checked.emplace(blob.sha256_hex, check_blob_object(store, blob, options.deep)).first;
    }
    return it->second;
  };
  if (options.project_id) STOWAGE_TRY(catalog.get_project(*options.project_id));

  // 1. Items.
  catalog::Id after = 0;
  for (;;) {
    std::vector<catalog::Item> items;
    if (options.project_id) {
      catalog::ListQuery q;
      q.after = after;
      q.per_page = kPage;
      STOWAGE_ASSIGN_OR_RETURN(auto page, catalog.list_items(std::nullopt, options.project_id, q));
      items = std::move(page.entities);
    } else {
      STOWAGE_ASSIGN_OR_RETURN(items, catalog.scan_items(after, kPage));
    }
    if (items.empty()) break;
    after = items.back().id;
    for (const auto& item : items) {
      ++report.items;
      if (item.blob_sha256_hex) {
        auto blob = catalog.get_blob(*item.blob_sha256_hex);
        if (!blob) {
          add({FsckFinding::Kind::BlobRowMissing, item.id, *item.blob_sha256_hex, "",
               blob.error().message});
          continue;
        }
        const BlobCheck& c = blob_check(*blob);
        if (c.problem) {
          add({*c.problem, item.id, blob->sha256_hex, blob->bucket + "/" + blob->key, c.detail});
        }
        continue;
      }
      if (!item.link) continue;
      ++report.links;
      auto target = service.resolve_link(*item.link);
      if (!target) {
        add({FsckFinding::Kind::LinkUnreachable, item.id, "", *item.link,
             target.error().message});
        continue;
      }
      const std::string where = target->locator.to_display();
      auto info = target->store->stat(target->path);
      if (!info) {
        const bool gone = info.error().code == ErrorCode::NotFound;
        add({gone ? FsckFinding::Kind::LinkGone : FsckFinding::Kind::LinkUnreachable, item.id, "",
             where, gone ? "the linked object is not there" : info.error().message});
        continue;
      }
      if (info->size != item.size) {
        FsckFinding f{FsckFinding::Kind::LinkSizeChanged, item.id, "", where,
                      "recorded " + std::to_string(item.size) + " bytes, the object has " +
                          std::to_string(info->size)};
        if (options.repair && item.mime.starts_with("image/")) {
          // Safe: the item's metadata follows its bytes; nothing is written to the storage.
          auto probed = service.link_metadata(*target);
          if (probed) {
            auto set = catalog.set_item_probe(item.id, probed->mime, probed->size, probed->width,
                                              probed->height);
            if (set) {
              f.repaired = true;
              f.detail += "; probed again and recorded";
            } else {
              f.detail += "; repair failed: " + set.error().message;
            }
          } else {
            f.detail += "; probing again failed: " + probed.error().message;
          }
        }
        add(std::move(f));
      }
    }
    progress();
  }
  if (options.project_id) return report;

  // 2. Blob rows that no item uses: their objects still count.
  std::string after_hash;
  for (;;) {
    STOWAGE_ASSIGN_OR_RETURN(auto blobs, catalog.list_blobs(after_hash, kPage));
    if (blobs.empty()) break;
    after_hash = blobs.back().sha256_hex;
    for (const auto& blob : blobs) {
      if (checked.contains(blob.sha256_hex)) continue;
      const BlobCheck& c = blob_check(blob);
      if (c.problem) {
        add({*c.problem, std::nullopt, blob.sha256_hex, blob.bucket + "/" + blob.key, c.detail});
      }
    }
    progress();
  }

  // 3. Objects of the instance's buckets that no row knows. Team files are not orphans.
  for (const std::string& bucket :
       {service.options().public_bucket, service.options().private_bucket}) {
    if (bucket.empty()) continue;
    store::ListOptions list;
    list.max_keys = kPage;
    for (;;) {
      auto page = store.list({bucket, ""}, list);
      if (!page) {
        if (page.error().code == ErrorCode::NotFound) break;
        return page.error();
      }
      for (const auto& o : page->objects) {
        ++report.objects;
        const std::string& key = o.path.key;
        if (bucket == service.options().private_bucket && key.starts_with("teams/")) continue;
        bool known = false;
        if (auto hash = blob_hash_of_key(key)) {
          auto blob = catalog.get_blob(*hash);
          known = blob && blob->bucket == bucket && blob->key == key;
        }
        if (!known) {
          FsckFinding f{FsckFinding::Kind::OrphanObject, std::nullopt, "", bucket + "/" + key,
                        "no blob row names this object"};
          f.size = o.size;
          add(std::move(f));
        }
      }
      if (page->next_page_token.empty()) break;
      list.page_token = page->next_page_token;
    }
  }
  return report;
}

}  // namespace stowage::service
