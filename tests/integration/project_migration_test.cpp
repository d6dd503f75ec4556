// SPDX-License-Identifier: Apache-2.0
// `stowage migrate project` (issue 8): projects moved to radosgw, Azurite and the GCS fake, back
// again, and from one cloud to another, against the real test servers. In-process tests call
// service::migrate_project beside a running TestServer (downloads go through its HTTP API); the
// CLI tests run the built binary and SIGKILL it at random points.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "stowage/config/config.hpp"
#include "stowage/io/checksum.hpp"
#include "stowage/service/project_migration.hpp"
#include "stowage/store/local/local_store.hpp"
#include "stowage/store/registry.hpp"
#include "support/cloud_server.hpp"
#include "support/fault_proxy.hpp"
#include "support/http_client.hpp"
#include "support/test_server.hpp"

namespace stowage::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using catalog::Id;

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

std::string unique_suffix() {
  static std::atomic<int> n{0};
  std::random_device rd;
  return std::to_string(::getpid()) + "-" + std::to_string(n++) + "-" + std::to_string(rd() % 100000);
}

Status put_object(store::ObjectStore& store, const store::ObjectPath& path,
                  const std::string& bytes) {
  STOWAGE_ASSIGN_OR_RETURN(auto writer, store.open_write(path, {.size_hint = bytes.size()}));
  STOWAGE_TRY(writer->write(std::as_bytes(std::span(bytes))));
  STOWAGE_TRY(writer->commit());
  return {};
}

Result<std::string> read_object(store::ObjectStore& store, const store::ObjectPath& path) {
  STOWAGE_ASSIGN_OR_RETURN(auto reader, store.open_read(path, {}));
  std::string out;
  std::vector<std::byte> buffer(1 << 20);
  STOWAGE_TRY(io::drain(
      *reader,
      [&](std::span<const std::byte> chunk) -> Status {
        out.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
        return {};
      },
      std::span(buffer)));
  return out;
}

/// A bucket on one of the test servers, reachable by links through a connection.
struct Cloud {
  std::string scheme;  ///< as links spell it: "s3", "azure", "google"
  std::string bucket;
  links::Connection connection;
  std::unique_ptr<store::ObjectStore> direct;  ///< the bucket's store, for checks
  unsigned short port = 0;
};

/// The test server `env_var` names, or why not (Unavailable: skip unless CI=true).
Result<Cloud> cloud(const char* env_var, const std::string& provider, const std::string& scheme) {
  auto server = cloud_server(env_var, provider);
  if (!server) {
    return make_error(ErrorCode::Unavailable,
                      std::string(env_var) + " is not set and STOWAGE_TEST_SERVERS_DIR has no "
                                             "file for it");
  }
  Cloud c;
  c.scheme = scheme;
  c.bucket = server->config.public_bucket();
  c.direct = std::move(server->store);
  c.connection = std::move(server->connection);
  c.connection.name = provider + "-conn";
  // "http://127.0.0.1:PORT[/...]"
  const std::string& e = c.connection.endpoint;
  const auto colon = e.find(':', e.find("://") + 3);
  const auto slash = e.find('/', colon);
  c.port = static_cast<unsigned short>(std::stoi(e.substr(colon + 1, slash - colon - 1)));
  return c;
}

#define REQUIRE_CLOUD(var, env, provider, scheme)                                    \
  auto var##_made = cloud(env, provider, scheme);                                    \
  if (!var##_made) {                                                                 \
    const char* ci = std::getenv("CI");                                              \
    if (var##_made.error().code == ErrorCode::Unavailable &&                         \
        !(ci != nullptr && std::string_view(ci) == "true")) {                        \
      GTEST_SKIP() << var##_made.error().to_string();                                \
    }                                                                                \
    FAIL() << var##_made.error().to_string();                                        \
  }                                                                                  \
  Cloud& var = *var##_made

#define REQUIRE_RADOSGW(var) \
  REQUIRE_CLOUD(var, "STOWAGE_TEST_RADOSGW_ENV", "minio", "s3")
#define REQUIRE_AZURITE(var) \
  REQUIRE_CLOUD(var, "STOWAGE_TEST_AZURITE_ENV", "azure", "azure")
#define REQUIRE_GCS(var) REQUIRE_CLOUD(var, "STOWAGE_TEST_GCS_ENV", "google", "google")

/// An item of a test project and the bytes it must serve.
struct Expected {
  Id id = 0;
  Id dataset_id = 0;
  std::vector<Id> dataset_path;
  std::string name;
  std::string bytes;
  std::optional<std::string> blob;  ///< the blob it had before (stored items)
  std::optional<std::string> link;  ///< the link it had before (linked items)
};

/// A project built for a migration: datasets A, B, A/C, A/C/D; two items with the same bytes
/// (one blob); names that need escaping; a large item over the multipart threshold; one item
/// already linked, which the docs' migration leaves alone.
struct Scenario {
  Id project_id = 0;
  std::string type;
  std::vector<Expected> items;
  std::uint64_t stored_bytes = 0;
};

class ProjectMigrationTest : public ::testing::Test {
 protected:
  void connect(const std::vector<links::Connection>& connections) {
    links::RemoteLinks remote;
    remote.file = "remote_links.yml";
    remote.connections = connections;
    server_.enable_links(remote);
    resolver_ = std::make_unique<links::LinkResolver>(remote,
                                                       store::http_links::PublicUrlOptions{});
    service::ServiceOptions options;
    options.public_bucket = server_.public_bucket();
    options.private_bucket = "test-private";
    options.staging_dir = server_.data_path() / "staging";
    service_ = std::make_unique<service::Service>(server_.catalog(), server_.store(), options);
    service_->set_link_resolver(resolver_.get());
    journal_ = migration::Journal::open(server_.data_path() / "journal.db").value();
  }

  catalog::Catalog& cat() { return server_.catalog(); }

  catalog::Blob store_blob(const std::string& bytes, const std::string& mime) {
    catalog::Blob blob;
    blob.sha256_hex = io::to_hex(io::Sha256::of(std::as_bytes(std::span(bytes))));
    blob.size = bytes.size();
    blob.mime = mime;
    blob.bucket = server_.public_bucket();
    blob.key = service::Service::blob_key(blob.sha256_hex, mime);
    put_object(server_.store(), {blob.bucket, blob.key}, bytes).value();
    return cat().put_blob(blob).value();
  }

  Expected add_stored(Id dataset, std::vector<Id> path, const std::string& name,
                      const std::string& bytes, const std::string& mime) {
    const auto blob = store_blob(bytes, mime);
    catalog::NewItem in;
    in.name = name;
    in.blob_sha256_hex = blob.sha256_hex;
    in.mime = mime;
    in.size = bytes.size();
    const auto item = cat().add_items(dataset, {in}, 1).value().at(0);
    return Expected{item.id, dataset, std::move(path), name, bytes, blob.sha256_hex, {}};
  }

  Expected add_linked(Id dataset, std::vector<Id> path, const std::string& name,
                      const std::string& link, const std::string& bytes, const std::string& mime) {
    catalog::NewItem in;
    in.name = name;
    in.link = link;
    in.mime = mime;
    in.size = bytes.size();
    const auto item = cat().add_items(dataset, {in}, 1).value().at(0);
    return Expected{item.id, dataset, std::move(path), name, bytes, {}, link};
  }

  Id make_project(const std::string& type) {
    catalog::Project p;
    p.workspace_id = cat().list_workspaces(1, {}).value().entities.at(0).id;
    p.team_id = 1;
    p.name = "migrate-" + unique_suffix();
    p.type = type;
    p.created_by = 1;
    return cat().create_project(p).value().id;
  }
  Id make_dataset(Id project, const std::string& name, std::optional<Id> parent) {
    catalog::Dataset d;
    d.project_id = project;
    d.parent_id = parent;
    d.name = name;
    d.created_by = 1;
    return cat().create_dataset(d).value().id;
  }

  Scenario build(const std::string& type, Cloud& linked_home) {
    Scenario s;
    s.type = type;
    s.project_id = make_project(type);
    const std::string img = type == "images" ? "image/png" : "video/mp4";
    const Id a = make_dataset(s.project_id, "A", std::nullopt);
    const Id b = make_dataset(s.project_id, "B", std::nullopt);
    const Id c = make_dataset(s.project_id, "C", a);
    const Id d = make_dataset(s.project_id, "D", c);
    const std::string shared = make_image(40, 30, "png", 7);
    s.items.push_back(add_stored(a, {a}, "a.png", make_image(20, 10, "png", 1), img));
    s.items.push_back(add_stored(a, {a}, "dup-1.png", shared, img));
    s.items.push_back(add_stored(a, {a}, "100% sure #1?.png", make_image(9, 9, "png", 2), img));
    s.items.push_back(add_stored(a, {a}, "..", make_image(8, 8, "png", 3), img));
    s.items.push_back(add_stored(b, {b}, "dup-2.png", shared, img));
    s.items.push_back(add_stored(b, {b}, "big.png", random_bytes((9 << 20) + 12345, 5), img));
    s.items.push_back(add_stored(c, {a, c}, "c.png", make_image(12, 12, "png", 4), img));
    s.items.push_back(add_stored(d, {a, c, d}, "d.png", make_image(13, 12, "png", 5), img));
    const std::string outside = make_image(14, 12, "png", 6);
    const std::string key = "outside/" + unique_suffix() + "/linked.png";
    put_object(*linked_home.direct, {linked_home.bucket, key}, outside).value();
    s.items.push_back(add_linked(d, {a, c, d}, "linked.png",
                                 linked_home.scheme + "://" + linked_home.bucket + "/" + key,
                                 outside, img));
    for (const auto& e : s.items) {
      if (e.blob) s.stored_bytes += e.bytes.size();
    }
    return s;
  }

  service::ProjectMigrationReport migrate(service::ProjectMigrationOptions options) {
    options.journal = journal_.get();
    options.retry.base_delay = std::chrono::milliseconds(10);
    auto report = service::migrate_project(*service_, options);
    EXPECT_TRUE(report) << report.error().to_string();
    return report ? std::move(*report) : service::ProjectMigrationReport{};
  }

  std::string expected_link(const std::string& prefix, const Scenario& s, const Expected& e,
                            bool nested) {
    const auto loc = uri::Locator::parse_prefix(prefix).value();
    const std::string key =
        service::project_target_key(loc.key, s.type, s.project_id,
                                    nested ? e.dataset_path : std::vector<Id>{e.dataset_id},
                                    e.name);
    return loc.scheme_text + "://" + loc.authority + "/" + key;
  }

  std::string download(const Scenario& s, Id id) {
    auto r = api_.call(s.type + ".download", {{"id", id}});
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body;
  }

  /// After a migration to `prefix`: every stored item is linked where expected and downloads
  /// byte-identical through the server; the linked item is untouched; every source blob's
  /// bytes are still there.
  void expect_migrated(const Scenario& s, const std::string& prefix, bool nested) {
    for (const auto& e : s.items) {
      SCOPED_TRACE(e.name);
      const auto item = cat().get_item(e.id).value();
      if (e.blob) {
        EXPECT_EQ(item.link, expected_link(prefix, s, e, nested));
        EXPECT_FALSE(item.blob_sha256_hex.has_value());
        EXPECT_EQ(item.content_sha256_hex, *e.blob);  // the same image, moved (issue 13)
        const auto blob = cat().get_blob(*e.blob).value();
        EXPECT_TRUE(server_.store().stat({blob.bucket, blob.key})) << "source bytes removed";
        auto target = resolver_->resolve(*item.link).value();
        EXPECT_EQ(read_object(*target.store, target.path).value(), e.bytes);
      } else {
        EXPECT_EQ(item.link, e.link);
      }
      EXPECT_EQ(download(s, e.id), e.bytes);
    }
  }

  std::size_t stored_count(const Scenario& s) {
    std::size_t n = 0;
    for (const auto& e : s.items) n += e.blob ? 1 : 0;
    return n;
  }

  void to_cloud_round(Cloud& cloud, bool nested, const std::string& type) {
    connect({cloud.connection});
    const Scenario s = build(type, cloud);
    const std::string prefix =
        cloud.scheme + "://" + cloud.bucket + "/projects-migration-" + unique_suffix();
    service::ProjectMigrationOptions options;
    options.project_id = s.project_id;
    options.to = prefix;
    options.nested = nested;
    options.concurrency = 4;
    const auto first = migrate(options);
    EXPECT_TRUE(first.complete());
    EXPECT_EQ(first.selected, stored_count(s));
    EXPECT_EQ(first.copies.copied, stored_count(s));
    EXPECT_EQ(first.switched, stored_count(s));
    EXPECT_EQ(first.copies.bytes_written, s.stored_bytes);  // no retries: each byte once
    expect_migrated(s, prefix, nested);

    // A rerun has nothing left to do.
    const auto again = migrate(options);
    EXPECT_TRUE(again.complete());
    EXPECT_EQ(again.selected, 0u);
    EXPECT_EQ(again.copies.copied, 0u);
    EXPECT_EQ(again.switched, 0u);
    expect_migrated(s, prefix, nested);
  }

  TestServer server_;
  HttpClient api_ = server_.client();
  std::unique_ptr<links::LinkResolver> resolver_;
  std::unique_ptr<service::Service> service_;
  std::unique_ptr<migration::Journal> journal_;
};

TEST(ProjectTargetKey, DocsLayoutNestingAndEscaping) {
  EXPECT_EQ(service::project_target_key("projects-migration-storage", "images", 7, {12}, "a.jpg"),
            "projects-migration-storage/images/7/12/a.jpg");
  EXPECT_EQ(service::project_target_key("", "videos", 7, {1, 2, 3}, "v.mp4"), "videos/7/1/2/3/v.mp4");
  EXPECT_EQ(service::project_target_key("dir//", "images", 1, {2}, "x"), "dir/images/1/2/x");
  // Injective and safe as one segment.
  EXPECT_EQ(service::escape_key_segment("a/b"), "a%2Fb");
  EXPECT_EQ(service::escape_key_segment("a%2Fb"), "a%252Fb");
  EXPECT_EQ(service::escape_key_segment(".."), "%2E%2E");
  EXPECT_EQ(service::escape_key_segment("."), "%2E");
  EXPECT_EQ(service::escape_key_segment("x.jpg."), "x.jpg%2E");
  EXPECT_EQ(service::escape_key_segment("tab\there\\"), "tab%09here%5C");
  EXPECT_EQ(service::escape_key_segment("ünï cödé #?.jpg"), "ünï cödé #?.jpg");
  for (const char* name : {"a/b", "..", ".", "x\n", "100%", "a.b.c"}) {
    EXPECT_TRUE(store::validate_key("p/" + service::escape_key_segment(name))) << name;
  }
}

/// The engine's per-task hooks that the project migration relies on: prepare() runs on the
/// worker and may choose the target, on_done() sees every outcome, and an expected SHA-256 that
/// the source does not have fails the copy before anything is committed (and is not retried).
TEST(CopyTaskHooks, PrepareOnDoneAndExpectedSha256) {
  std::string pattern = (fs::temp_directory_path() / "stowage-hooks-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const fs::path root = pattern;
  auto a = store::local::LocalStore::open(root / "a", {"bkt"}).value();
  auto b = store::local::LocalStore::open(root / "b", {"bkt"}).value();
  const std::string good = random_bytes(300000, 1), bad = random_bytes(1000, 2);
  put_object(*a, {"bkt", "good"}, good).value();
  put_object(*a, {"bkt", "bad"}, bad).value();
  const std::string good_sha = io::to_hex(io::Sha256::of(std::as_bytes(std::span(good))));

  std::mutex mutex;
  std::map<std::string, Result<migration::CopyResult>> outcomes;
  std::vector<migration::CopyTask> tasks;
  for (const std::string key : {"good", "bad"}) {
    migration::CopyTask t;
    t.prepare = [&, key](migration::CopyTask& task) -> Status {
      task.source = a.get();
      task.target = b.get();
      STOWAGE_ASSIGN_OR_RETURN(task.source_info, a->stat({"bkt", key}));
      task.target_path = {"bkt", "copied/" + key};
      task.expected_sha256_hex = good_sha;  // right for "good" only
      return {};
    };
    t.on_done = [&, key](const Result<migration::CopyResult>& r) {
      std::lock_guard lock(mutex);
      outcomes.emplace(key, r);
    };
    tasks.push_back(std::move(t));
  }
  bool handed = false;
  migration::RunOptions run;
  run.concurrency = 2;
  run.copy.retry.sleep = [](std::chrono::milliseconds) {};
  const auto summary = migration::run_copies(
      [&]() -> Result<std::vector<migration::CopyTask>> {
        if (handed) return std::vector<migration::CopyTask>{};
        handed = true;
        return std::move(tasks);
      },
      run);
  EXPECT_EQ(summary.copied, 1u);
  EXPECT_EQ(summary.failed, 1u);
  ASSERT_EQ(outcomes.size(), 2u);
  ASSERT_TRUE(outcomes.at("good"));
  EXPECT_EQ(outcomes.at("good")->sha256_hex, good_sha);
  ASSERT_FALSE(outcomes.at("bad"));
  EXPECT_EQ(outcomes.at("bad").error().code, ErrorCode::Corrupt);
  EXPECT_EQ(read_object(*b, {"bkt", "copied/good"}).value(), good);
  EXPECT_EQ(b->stat({"bkt", "copied/bad"}).error().code, ErrorCode::NotFound);
  std::error_code ec;
  fs::remove_all(root, ec);
}

TEST_F(ProjectMigrationTest, ImagesToRadosgwThenRerunDoesNothing) {
  REQUIRE_RADOSGW(rgw);
  to_cloud_round(rgw, false, "images");
}

TEST_F(ProjectMigrationTest, VideosToAzuriteNested) {
  REQUIRE_AZURITE(az);
  to_cloud_round(az, true, "videos");
}

TEST_F(ProjectMigrationTest, ImagesToGcsFake) {
  REQUIRE_GCS(gcs);
  to_cloud_round(gcs, false, "images");
}

TEST_F(ProjectMigrationTest, DryRunPlansAndChangesNothing) {
  REQUIRE_RADOSGW(rgw);
  connect({rgw.connection});
  const Scenario s = build("images", rgw);
  service::ProjectMigrationOptions options;
  options.project_id = s.project_id;
  options.to = "s3://" + rgw.bucket + "/dry-" + unique_suffix();
  options.dry_run = true;
  const auto plan = migrate(options);
  EXPECT_EQ(plan.copies.would_copy, stored_count(s));
  EXPECT_EQ(plan.plan.size(), stored_count(s));
  EXPECT_EQ(plan.switched, 0u);
  for (const auto& e : s.items) EXPECT_EQ(cat().get_item(e.id).value().link, e.link);
  EXPECT_EQ(rgw.direct->list({rgw.bucket, options.to->substr(5 + rgw.bucket.size() + 1)}, {})
                .value()
                .objects.size(),
            0u);
}

TEST_F(ProjectMigrationTest, TargetMustResolveThroughRemoteLinks) {
  REQUIRE_RADOSGW(rgw);
  connect({rgw.connection});
  const Scenario s = build("images", rgw);
  service::ProjectMigrationOptions options;
  options.project_id = s.project_id;
  options.to = "s3://not-a-configured-bucket/x";
  auto r = service::migrate_project(*service_, options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::PermissionDenied);
  EXPECT_NE(r.error().message.find("remote_links.yml"), std::string::npos) << r.error().message;
  options.to = "https://example.com/x";
  EXPECT_FALSE(service::migrate_project(*service_, options));
  options.to = "s3://" + rgw.bucket + "/x";
  options.project_id = 987654;
  EXPECT_EQ(service::migrate_project(*service_, options).error().code, ErrorCode::NotFound);
}

TEST_F(ProjectMigrationTest, ItemsChangedBetweenCopyAndSwitchAreNotSwitched) {
  REQUIRE_RADOSGW(rgw);
  connect({rgw.connection});
  Scenario s = build("images", rgw);
  const Expected removed = s.items[0];
  const Expected replaced = s.items[2];
  const Expected relinked = s.items[6];
  service::ProjectMigrationOptions options;
  options.project_id = s.project_id;
  options.to = "s3://" + rgw.bucket + "/changed-" + unique_suffix();
  options.switch_batch = 3;
  bool done = false;
  options.on_phase = [&](std::string_view phase) {
    if (phase != "switch" || done) return;
    done = true;
    // Between copy and switch: one item removed, one given new bytes, one linked elsewhere.
    cat().remove_items({removed.id}).value();
    const auto other = store_blob(make_image(5, 5, "png", 77), "image/png");
    cat().set_item_links({{replaced.id, "s3://" + rgw.bucket + "/tmp"}}).value();
    cat().set_item_blobs({{replaced.id, other.sha256_hex}}).value();
    cat().set_item_links({{relinked.id, "s3://" + rgw.bucket + "/else"}}).value();
  };
  const auto report = migrate(options);
  EXPECT_FALSE(report.complete());
  EXPECT_TRUE(report.failed.empty());
  ASSERT_EQ(report.changed.size(), 3u);
  EXPECT_EQ(report.switched, stored_count(s) - 3);
  std::set<Id> changed;
  for (const auto& p : report.changed) changed.insert(p.item_id);
  EXPECT_EQ(changed, (std::set<Id>{removed.id, replaced.id, relinked.id}));
  EXPECT_FALSE(cat().get_item(replaced.id).value().link.has_value());  // its new bytes stay
  EXPECT_EQ(cat().get_item(relinked.id).value().link, "s3://" + rgw.bucket + "/else");
  for (const auto& e : s.items) {
    if (!e.blob || changed.count(e.id)) continue;
    EXPECT_EQ(cat().get_item(e.id).value().link, expected_link(*options.to, s, e, false));
    EXPECT_EQ(download(s, e.id), e.bytes);
  }
}

TEST_F(ProjectMigrationTest, CorruptStoredBytesAreReportedNeverLinked) {
  REQUIRE_RADOSGW(rgw);
  connect({rgw.connection});
  const Scenario s = build("images", rgw);
  const Expected& bad = s.items[6];
  const auto blob = cat().get_blob(*bad.blob).value();
  std::string flipped = bad.bytes;
  flipped[flipped.size() / 2] ^= 0x5A;
  put_object(server_.store(), {blob.bucket, blob.key}, flipped).value();

  service::ProjectMigrationOptions options;
  options.project_id = s.project_id;
  options.to = "s3://" + rgw.bucket + "/corrupt-" + unique_suffix();
  const auto withheld = migrate(options);
  ASSERT_EQ(withheld.failed.size(), 1u);
  EXPECT_EQ(withheld.failed[0].item_id, bad.id);
  EXPECT_EQ(withheld.failed[0].error.code, ErrorCode::Corrupt);
  EXPECT_TRUE(withheld.switch_withheld);
  EXPECT_EQ(withheld.switched, 0u);  // the docs: switch only after *every* upload
  for (const auto& e : s.items) EXPECT_EQ(cat().get_item(e.id).value().link, e.link);
  // Nothing was committed at the bad item's target.
  EXPECT_EQ(rgw.direct->stat({rgw.bucket, expected_link(*options.to, s, bad, false).substr(
                                             5 + rgw.bucket.size() + 1)})
                .error()
                .code,
            ErrorCode::NotFound);

  options.switch_partial = true;
  const auto partial = migrate(options);
  EXPECT_EQ(partial.failed.size(), 1u);
  EXPECT_EQ(partial.switched, stored_count(s) - 1);
  EXPECT_EQ(partial.copies.copied, 0u);  // the others were copied by the first run
  EXPECT_FALSE(cat().get_item(bad.id).value().link.has_value());
}

TEST_F(ProjectMigrationTest, FaultsOnTheWireStillEndCompleteAndCorrect) {
  REQUIRE_RADOSGW(rgw);
  FaultProxy proxy(rgw.port, {.fail_every = 5, .reset_every = 7});
  links::Connection via = rgw.connection;
  via.endpoint = "http://127.0.0.1:" + std::to_string(proxy.port());
  connect({via});
  const Scenario s = build("images", rgw);
  const std::string prefix = "s3://" + rgw.bucket + "/faults-" + unique_suffix();
  service::ProjectMigrationOptions options;
  options.project_id = s.project_id;
  options.to = prefix;
  options.concurrency = 3;
  options.retry.max_attempts = 12;
  const auto report = migrate(options);
  EXPECT_TRUE(report.complete()) << (report.failed.empty() ? "" : report.failed[0].error.message);
  EXPECT_GE(proxy.errors_injected(), 1u);
  EXPECT_GE(proxy.resets_injected(), 1u);
  std::cerr << "injected " << proxy.errors_injected() << " 503s and " << proxy.resets_injected()
            << " resets; " << report.copies.bytes_written << " bytes written for "
            << s.stored_bytes << "\n";
  expect_migrated(s, prefix, false);
}

TEST_F(ProjectMigrationTest, ReverseBringsLinkedItemsBackAsBlobs) {
  REQUIRE_RADOSGW(rgw);
  connect({rgw.connection});
  const Scenario s = build("images", rgw);
  const std::string prefix = "s3://" + rgw.bucket + "/reverse-" + unique_suffix();
  service::ProjectMigrationOptions to_cloud;
  to_cloud.project_id = s.project_id;
  to_cloud.to = prefix;
  ASSERT_TRUE(migrate(to_cloud).complete());
  // Remove one source blob's bytes and row usage is impossible (rows stay), so make the reverse
  // publish fresh bytes: a linked item whose bytes were never stored here.
  const std::size_t linked_items = s.items.size();

  service::ProjectMigrationOptions back;
  back.project_id = s.project_id;  // to = nullopt: local
  const auto report = migrate(back);
  EXPECT_TRUE(report.complete());
  EXPECT_EQ(report.selected, linked_items);
  EXPECT_EQ(report.switched, linked_items);
  for (const auto& e : s.items) {
    SCOPED_TRACE(e.name);
    const auto item = cat().get_item(e.id).value();
    EXPECT_FALSE(item.link.has_value());
    const std::string sha = io::to_hex(io::Sha256::of(std::as_bytes(std::span(e.bytes))));
    EXPECT_EQ(item.blob_sha256_hex, sha);
    EXPECT_EQ(item.blob_key, service::Service::blob_key(sha, item.mime));
    EXPECT_EQ(download(s, e.id), e.bytes);
    // The remote bytes are kept.
    if (e.link) {
      auto t = resolver_->resolve(*e.link).value();
      EXPECT_TRUE(t.store->stat(t.path));
    }
  }
  // The item that was linked from the start now has a blob of its own: bytes first, row second.
  const auto& outside = s.items.back();
  ASSERT_TRUE(outside.link.has_value());
  const auto blob = cat().get_blob(cat().get_item(outside.id).value().blob_sha256_hex.value());
  ASSERT_TRUE(blob);
  EXPECT_EQ(read_object(server_.store(), {blob->bucket, blob->key}).value(), outside.bytes);

  const auto again = migrate(back);
  EXPECT_EQ(again.selected, 0u);
  EXPECT_EQ(again.switched, 0u);
}

TEST_F(ProjectMigrationTest, CloudToCloudRadosgwToAzurite) {
  REQUIRE_RADOSGW(rgw);
  REQUIRE_AZURITE(az);
  connect({rgw.connection, az.connection});
  const Scenario s = build("images", rgw);
  const std::string on_rgw = "s3://" + rgw.bucket + "/c2c-" + unique_suffix();
  service::ProjectMigrationOptions first;
  first.project_id = s.project_id;
  first.to = on_rgw;
  ASSERT_TRUE(migrate(first).complete());

  const std::string on_azure = "azure://" + az.bucket + "/c2c-" + unique_suffix();
  service::ProjectMigrationOptions move;
  move.project_id = s.project_id;
  move.to = on_azure;
  move.from_links = "s3://" + rgw.bucket + "/";
  move.nested = true;
  const auto report = migrate(move);
  EXPECT_TRUE(report.complete());
  EXPECT_EQ(report.selected, s.items.size());  // the migrated items and the one linked before
  EXPECT_EQ(report.switched, s.items.size());
  for (const auto& e : s.items) {
    SCOPED_TRACE(e.name);
    const auto item = cat().get_item(e.id).value();
    EXPECT_EQ(item.link, expected_link(on_azure, s, e, true));
    EXPECT_EQ(download(s, e.id), e.bytes);
  }
  const auto again = migrate(move);
  EXPECT_EQ(again.selected, 0u);
}

// ---- The CLI, killed at random points ------------------------------------------------------

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class ProjectMigrationCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "stowage-pm-cli-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  pid_t spawn(const std::vector<std::string>& args) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const std::string out = (dir_ / ".out").string(), err = (dir_ / ".err").string();
      (void)!::freopen(out.c_str(), "w", stdout);
      (void)!::freopen(err.c_str(), "w", stderr);
      std::vector<char*> argv;
      std::string bin = STOWAGE_BINARY;
      argv.push_back(bin.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      std::string env_path = "PATH=/usr/bin:/bin";
      std::string env_file = "STOWAGE_ENV_FILE=" + (dir_ / ".env").string();
      char* envp[] = {env_path.data(), env_file.data(), nullptr};
      ::execve(argv[0], argv.data(), envp);
      ::_exit(127);
    }
    return pid;
  }
  CliRun wait_for(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CliRun r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    std::ifstream o(dir_ / ".out"), e(dir_ / ".err");
    std::stringstream so, se;
    so << o.rdbuf();
    se << e.rdbuf();
    r.out = so.str();
    r.err = se.str();
    return r;
  }
  CliRun run(const std::vector<std::string>& args) { return wait_for(spawn(args)); }

  fs::path dir_;
};

TEST_F(ProjectMigrationCliTest, KilledAtRandomPointsThenRerunEndsComplete) {
  REQUIRE_RADOSGW(rgw);
  FaultProxy proxy(rgw.port);  // counts what is sent; no faults
  std::ofstream(dir_ / ".env") << "DATA_PATH=" << (dir_ / "data").string()
                               << "\nSTORAGE_BUCKET_PREFIX=test\n";
  std::ofstream(dir_ / "remote_links.yml")
      << "rgw:\n  provider: minio\n  endpoint: http://127.0.0.1:" << proxy.port()
      << "\n  access_key: " << rgw.connection.access_key
      << "\n  secret_key: " << rgw.connection.secret_key.reveal()
      << "\n  region: us-east-1\n  buckets:\n  - " << rgw.bucket << "\n";

  // The instance: a catalog and a local store where `stowage` will find them.
  config::LoadOptions load;
  load.env_file = dir_ / ".env";
  load.cwd = dir_;
  auto config = config::load(load).value();
  config::resolve_bucket_prefix(config).value();
  auto store = store::open_configured_store(config).value();
  std::vector<std::pair<Id, std::string>> items;  // id, bytes
  Id project = 0;
  std::uint64_t total_bytes = 0;
  constexpr std::size_t kBig = 20, kSmall = 150, kBigBytes = 1024 * 1024, kConcurrency = 4;
  {
    auto cat = catalog::Catalog::open_sqlite(config.sqlite_path()).value();
    cat->bootstrap().value();
    catalog::Project p;
    p.workspace_id = cat->list_workspaces(1, {}).value().entities.at(0).id;
    p.team_id = 1;
    p.name = "kill";
    p.type = "images";
    p.created_by = 1;
    project = cat->create_project(p).value().id;
    catalog::Dataset d;
    d.project_id = project;
    d.name = "d";
    d.created_by = 1;
    const Id ds = cat->create_dataset(d).value().id;
    for (std::size_t i = 0; i < kBig + kSmall; ++i) {
      const std::string bytes = random_bytes(i < kBig ? kBigBytes : 1024, 1000 + i);
      catalog::Blob blob;
      blob.sha256_hex = io::to_hex(io::Sha256::of(std::as_bytes(std::span(bytes))));
      blob.size = bytes.size();
      blob.mime = "image/png";
      blob.bucket = config.public_bucket();
      blob.key = service::Service::blob_key(blob.sha256_hex, blob.mime);
      put_object(*store, {blob.bucket, blob.key}, bytes).value();
      cat->put_blob(blob).value();
      catalog::NewItem in{"i" + std::to_string(i) + ".png", blob.sha256_hex, {}, "image/png",
                          bytes.size()};
      items.emplace_back(cat->add_items(ds, {in}, 1).value().at(0).id, bytes);
      total_bytes += bytes.size();
    }
  }
  const std::string prefix = "s3://" + rgw.bucket + "/kill-" + unique_suffix();
  const std::vector<std::string> args = {"migrate", "project", std::to_string(project), "--to",
                                         prefix,    "--concurrency", std::to_string(kConcurrency),
                                         "--batch", "1", "--json"};
  auto linked_now = [&] {
    auto cat = catalog::Catalog::open_sqlite(config.sqlite_path()).value();
    catalog::ListQuery q;
    std::size_t n = 0;
    for (const auto& it : cat->list_items(std::nullopt, project, q).value().entities) {
      n += it.link ? 1 : 0;
    }
    return n;
  };

  std::mt19937 rng(std::random_device{}());
  int kills = 0;
  // Two kills during the copy (before anything is switched), once a random share of the set
  // (about a third, then two thirds) has gone through the proxy, so that uploads are in flight.
  for (int k = 0; k < 2; ++k) {
    const std::uint64_t at = total_bytes * (k + 1) / 3 + rng() % (total_bytes / 10);
    const pid_t pid = spawn(args);
    for (int polls = 0; polls < 15000 && proxy.bytes_up() < at; ++polls) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::kill(pid, SIGKILL);
    const CliRun r = wait_for(pid);
    if (r.exit_code == -SIGKILL) ++kills;
  }
  // Two kills during the switch: as soon as some (not all) items are linked.
  for (int k = 0; k < 2; ++k) {
    const std::size_t before = linked_now();
    if (before == items.size()) break;
    const pid_t pid = spawn(args);
    for (int polls = 0; polls < 20000; ++polls) {
      if (linked_now() > before + rng() % 20) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ::kill(pid, SIGKILL);
    const CliRun r = wait_for(pid);
    if (r.exit_code == -SIGKILL) ++kills;
    const std::size_t after = linked_now();
    // Every item linked so far serves its exact bytes.
    links::RemoteLinks remote;
    remote.connections.push_back(rgw.connection);
    links::LinkResolver resolver(remote, {});
    auto cat = catalog::Catalog::open_sqlite(config.sqlite_path()).value();
    for (const auto& [id, bytes] : items) {
      const auto item = cat->get_item(id).value();
      if (!item.link) continue;
      auto t = resolver.resolve(*item.link).value();
      EXPECT_EQ(read_object(*t.store, t.path).value(), bytes) << "linked to missing bytes";
    }
    std::cerr << "kill during switch: linked " << before << " -> " << after << "\n";
  }
  const CliRun last = run(args);
  ASSERT_EQ(last.exit_code, 0) << last.out << last.err;
  const auto report = json::parse(last.out);
  EXPECT_TRUE(report.at("complete").as_bool());
  EXPECT_EQ(linked_now(), items.size());
  auto cat = catalog::Catalog::open_sqlite(config.sqlite_path()).value();
  for (const auto& [id, bytes] : items) {
    const auto item = cat->get_item(id).value();
    ASSERT_TRUE(item.link.has_value());
    auto t = links::LinkResolver(links::RemoteLinks{{}, {rgw.connection}}, {}).resolve(*item.link);
    EXPECT_EQ(read_object(*t->store, t->path).value(), bytes);
  }
  // Bytes sent over all runs: the set once, plus at most the objects in flight at each kill,
  // plus small bodies (multipart completions: at most a few KiB per object and run).
  const std::uint64_t in_flight = static_cast<std::uint64_t>(kills) * kConcurrency * kBigBytes;
  const std::uint64_t heads = static_cast<std::uint64_t>(kills + 1) * (kBig + kSmall) * 4096;
  std::cerr << "kills " << kills << ", sent " << proxy.bytes_up() << " bytes for a set of "
            << total_bytes << "\n";
  EXPECT_LE(proxy.bytes_up(), total_bytes + in_flight + heads);
  EXPECT_GE(proxy.bytes_up(), total_bytes);

  // And a rerun after completion: nothing copied, nothing switched.
  const CliRun idle = run(args);
  ASSERT_EQ(idle.exit_code, 0) << idle.err;
  const auto idle_report = json::parse(idle.out);
  EXPECT_EQ(idle_report.at("selected").to_number<int>(), 0);
  EXPECT_EQ(idle_report.at("switched").to_number<int>(), 0);
}

TEST_F(ProjectMigrationCliTest, UsageErrorsExitTwoAndNameTheLinksFile) {
  std::ofstream(dir_ / ".env") << "DATA_PATH=" << (dir_ / "data").string()
                               << "\nSTORAGE_BUCKET_PREFIX=test\n";
  {
    config::LoadOptions load;
    load.env_file = dir_ / ".env";
    load.cwd = dir_;
    auto config = config::load(load).value();
    auto cat = catalog::Catalog::open_sqlite(config.sqlite_path()).value();
    cat->bootstrap().value();
  }
  const CliRun bad_target = run({"migrate", "project", "1", "--to", "s3://nowhere/x"});
  EXPECT_EQ(bad_target.exit_code, 2);
  EXPECT_NE(bad_target.err.find("remote_links.yml"), std::string::npos) << bad_target.err;
  const CliRun no_to = run({"migrate", "project", "1"});
  EXPECT_EQ(no_to.exit_code, 2);
  const CliRun help = run({"migrate", "project", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--switch-partial"), std::string::npos);
}

}  // namespace
}  // namespace stowage::testing
