// SPDX-License-Identifier: Apache-2.0
#include "stowage/service/gc.hpp"

#include <cstdio>
#include <ctime>

#include "stowage/service/service.hpp"

namespace stowage::service {
namespace {

/// Candidates read per catalog page.
constexpr std::size_t kPage = 500;

/// The catalog's timestamp format ("2026-11-25T22:36:16.123Z"), which sorts as text.
std::string catalog_time(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms.count() % 1000));
  return buf;
}

}  // namespace

Result<GcReport> collect_garbage(Service& service, const GcOptions& options) {
  catalog::Catalog& catalog = service.catalog();
  store::ObjectStore& store = service.store();
  GcReport report;
  std::uint64_t done = 0;
  auto progress = [&] {
    ++done;
    if (options.on_progress) options.on_progress(done, report.bytes_reclaimed);
  };

  // Collections a killed gc left: their rows are gone already; delete the objects and forget.
  STOWAGE_ASSIGN_OR_RETURN(auto pending, catalog.pending_blob_collections());
  for (const auto& blob : pending) {
    if (options.dry_run) continue;
    if (auto removed = store.remove({blob.bucket, blob.key}); !removed) {
      report.failed.push_back({blob.sha256_hex, removed.error().message});
      continue;
    }
    STOWAGE_TRY(catalog.end_blob_collection(blob.sha256_hex));
    ++report.resumed;
    report.bytes_reclaimed += blob.size;
  }

  const std::string cutoff = catalog_time(std::chrono::system_clock::now() - options.grace);
  std::string after;
  for (;;) {
    STOWAGE_ASSIGN_OR_RETURN(auto page, catalog.unreferenced_blobs(cutoff, after, kPage));
    if (page.empty()) break;
    after = page.back().sha256_hex;
    for (const auto& blob : page) {
      ++report.candidates;
      if (options.dry_run) {
        report.bytes_reclaimed += blob.size;
        progress();
        continue;
      }
      STOWAGE_ASSIGN_OR_RETURN(const bool begun,
                               catalog.begin_blob_collection(blob.sha256_hex, cutoff));
      if (!begun) {  // an item took it since it was listed
        ++report.kept;
        progress();
        continue;
      }
      if (auto removed = store.remove({blob.bucket, blob.key}); !removed) {
        // The collection stays recorded (uploads of these bytes wait); a rerun finishes it.
        report.failed.push_back({blob.sha256_hex, removed.error().message});
        progress();
        continue;
      }
      STOWAGE_TRY(catalog.end_blob_collection(blob.sha256_hex));
      ++report.removed;
      report.bytes_reclaimed += blob.size;
      progress();
    }
  }
  return report;
}

}  // namespace stowage::service
