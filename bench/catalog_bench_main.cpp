// SPDX-License-Identifier: Apache-2.0
// bench/catalog.sh's driver: fills one dataset of a catalog with N items by one SQL bulk insert
// (what the API does per item is beside the point here), then times the catalog calls behind
// images.list (page 1; a deep page reached as the SDK reaches it, right after the page before
// it; the same depth asked cold, by number), images.info and images.bulk.add (50 items), and
// prints one line per call: `<engine> <items> <call> p50_ms p99_ms`.
#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "stowage/catalog/catalog.hpp"

namespace {

using namespace stowage;
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& message) {
  std::cerr << "catalog_bench: " << message << '\n';
  std::exit(1);
}

template <class T>
T must(Result<T> r, const char* what) {
  if (!r) die(std::string(what) + ": " + r.error().to_string());
  return std::move(*r);
}

/// The bulk insert, as SQL with D P W T N substituted; `series` is the engine's row source.
std::string fill_sql(const catalog::Dataset& d, const catalog::Project& p, std::int64_t n,
                     const std::string& hash, bool postgres) {
  const std::string rows =
      postgres ? "generate_series(1, " + std::to_string(n) + ") AS s(i)" : "s";
  std::string sql;
  if (!postgres) {
    sql = "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < " +
          std::to_string(n) + ") ";
  }
  sql += "INSERT INTO items (dataset_id, project_id, workspace_id, team_id, name, blob_sha256, "
         "content_sha256, mime, size, width, height, meta, created_at, updated_at, file_meta) "
         "SELECT " +
         std::to_string(d.id) + ", " + std::to_string(p.id) + ", " +
         std::to_string(p.workspace_id) + ", " + std::to_string(p.team_id) +
         ", 'gen-' || i || '.png', '" + hash + "', '" + hash +
         "', 'image/png', 100, 64, 48, '{}', '2026-12-04T00:00:00.000Z', "
         "'2026-12-04T00:00:00.000Z', '{}' FROM " +
         rows;
  return sql;
}

void run_sql(const std::string& url, const std::string& sql) {
  if (url.starts_with("sqlite:")) {
    sqlite3* db = nullptr;
    if (sqlite3_open(url.substr(7).c_str(), &db) != SQLITE_OK) die("sqlite open");
    char* error = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
      die(std::string("sqlite: ") + (error ? error : "?"));
    }
    sqlite3_exec(db, "ANALYZE", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    return;
  }
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) die(std::string("postgres: ") + PQerrorMessage(conn));
  for (const std::string& s : {sql, std::string("ANALYZE")}) {
    PGresult* r = PQexec(conn, s.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK) die(std::string("postgres: ") + PQerrorMessage(conn));
    PQclear(r);
  }
  PQfinish(conn);
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) die("usage: catalog_bench ENGINE_NAME DATABASE_URL ITEMS ROUNDS");
  const std::string engine = argv[1];
  const std::string url = argv[2];
  std::int64_t n = std::stoll(argv[3]);
  const int rounds = std::stoi(argv[4]);

  auto cat = must(catalog::Catalog::open(url, {}), "open");
  (void)must(cat->bootstrap(), "bootstrap");
  const auto admin = must(cat->find_user("admin"), "admin");
  const auto team = must(cat->memberships(admin.id), "teams").at(0).team;
  const auto ws = must(cat->list_workspaces(team.id, {}), "workspaces").entities.at(0);
  // BENCH_REUSE=1: time the dataset a previous run filled (the database was kept) instead of
  // filling a new one; its size is whatever that run left.
  const bool reuse = std::getenv("BENCH_REUSE") != nullptr;
  catalog::Project project;
  catalog::Dataset dataset;
  if (reuse) {
    for (const auto& p : must(cat->list_projects(ws.id, std::nullopt, {}), "projects").entities) {
      if (p.name == "bench") project = p;
    }
    const auto datasets = must(cat->list_datasets(project.id, true, {}), "datasets").entities;
    if (project.id == 0 || datasets.empty()) die("BENCH_REUSE: no dataset of a previous run");
    dataset = datasets.front();
    n = dataset.items_count;
  } else {
    catalog::Project p;
    p.workspace_id = ws.id;
    p.name = "bench";
    project = must(cat->create_project(p), "project");
    catalog::Dataset d;
    d.project_id = project.id;
    d.name = "big";
    dataset = must(cat->create_dataset(d), "dataset");
  }
  catalog::Blob blob;
  blob.sha256_hex = std::string(64, 'b');
  blob.size = 100;
  blob.mime = "image/png";
  blob.bucket = "bench-public";
  blob.key = "images/original/bench.png";
  (void)must(cat->put_blob(blob), "blob");

  if (!reuse) {
    const auto fill_start = Clock::now();
    run_sql(url, fill_sql(dataset, project, n, blob.sha256_hex, !url.starts_with("sqlite:")));
    std::cerr << engine << ": " << n << " items generated in "
              << std::chrono::duration<double>(Clock::now() - fill_start).count() << " s\n";
  }
  const auto first_id = must(cat->list_items(dataset.id, std::nullopt, {}), "first").entities;

  constexpr std::int64_t kPerPage = 500;  // the SDK's images.list page
  std::mt19937_64 rng(42);
  const auto stamp = std::chrono::system_clock::now().time_since_epoch().count();  // run's names
  std::vector<double> page1, walked, cold, info, add;
  auto time_ms = [](auto&& f) {
    const auto t = Clock::now();
    f();
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  };
  catalog::ListQuery q;
  q.per_page = kPerPage;
  const std::int64_t last_page = (n + kPerPage - 1) / kPerPage;
  for (int r = 0; r < rounds; ++r) {
    q.page = 1;
    page1.push_back(time_ms([&] { (void)must(cat->list_items(dataset.id, std::nullopt, q), "p1"); }));
    // Page last-2 is never the page after one served here: it is read by number (OFFSET).
    q.page = last_page - 2;
    cold.push_back(time_ms([&] { (void)must(cat->list_items(dataset.id, std::nullopt, q), "cold"); }));
    q.page = last_page - 1;
    walked.push_back(
        time_ms([&] { (void)must(cat->list_items(dataset.id, std::nullopt, q), "walked"); }));
    // images.info of 100 random items per sample: one lookup (tens of microseconds) is below
    // what one timing resolves through scheduling noise.
    constexpr int kLookups = 100;
    info.push_back(time_ms([&] {
                     for (int k = 0; k < kLookups; ++k) {
                       const catalog::Id id =
                           first_id.at(0).id + static_cast<catalog::Id>(rng() % n);
                       (void)must(cat->get_item(id), "info");
                     }
                   }) /
                   kLookups);
    std::vector<catalog::NewItem> batch;
    for (int i = 0; i < 50; ++i) {
      catalog::NewItem item;
      item.name = "add-" + std::to_string(stamp) + "-" + std::to_string(r) + "-" +
                  std::to_string(i) + ".png";
      item.blob_sha256_hex = blob.sha256_hex;
      batch.push_back(std::move(item));
    }
    add.push_back(time_ms([&] { (void)must(cat->add_items(dataset.id, batch, admin.id), "add"); }));
  }
  for (auto [name, v] : {std::pair{"images.list.page1", &page1},
                         std::pair{"images.list.deep.walked", &walked},
                         std::pair{"images.list.deep.cold", &cold}, std::pair{"images.info", &info},
                         std::pair{"images.bulk.add.50", &add}}) {
    std::printf("%-8s %9lld %-23s %8.2f %8.2f\n", engine.c_str(), static_cast<long long>(n), name,
                percentile(*v, 0.5), percentile(*v, 0.99));
  }
  return 0;
}
