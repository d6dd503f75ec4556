// SPDX-License-Identifier: Apache-2.0
// fsck and gc of the storage (issue 17) on a real server: items uploaded through the API as the
// SDK uploads them, then the storage damaged by hand (an object deleted, a byte changed, a linked
// file removed or grown) and checked with service::check_storage; removed items' blobs collected
// with service::collect_garbage, beside a shared blob, team files and links; and uploads of the
// same bytes racing gc. The store is local disk, or the provider STOWAGE_TEST_STORE_ENV names.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "stowage/service/fsck.hpp"
#include "stowage/service/gc.hpp"
#include "support/http_client.hpp"
#include "support/test_server.hpp"

namespace stowage::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using service::FsckFinding;

void write_file(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

class StorageCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "stowage-fsck-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    const std::string yaml = "local:\n  provider: fs\n  path: " + (root_ / "links").string() +
                             "\n  storage_id: local\n";
    fs::create_directories(root_ / "links");
    server_.enable_links(links::RemoteLinks::parse(yaml, root_ / "remote_links.yml", {}).value());
    resolver_ = std::make_unique<links::LinkResolver>(
        links::RemoteLinks::parse(yaml, root_ / "remote_links.yml", {}).value(),
        store::http_links::PublicUrlOptions{});
    service::ServiceOptions options;
    options.public_bucket = server_.public_bucket();
    options.private_bucket = private_bucket();
    options.staging_dir = server_.data_path() / "data" / "storage" / ".staging";
    service_ = std::make_unique<service::Service>(server_.catalog(), server_.store(), options);
    service_->set_link_resolver(resolver_.get());
    auto ws = api_.call("workspaces.list", {{"teamId", 1}}).json().at("entities").at(0).at("id");
    auto p = api_.call("projects.add", {{"workspaceId", ws}, {"name", "checked"}}).json();
    project_ = p.at("id").to_number<std::int64_t>();
    dataset_ = new_dataset("d1");
  }
  void TearDown() override {
    // Blobs of this test in a shared remote bucket: remove what the catalog knows.
    std::string after;
    for (;;) {
      auto blobs = server_.catalog().list_blobs(after, 500).value();
      if (blobs.empty()) break;
      for (const auto& b : blobs) (void)server_.store().remove({b.bucket, b.key});
      after = blobs.back().sha256_hex;
    }
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::string private_bucket() {
    std::string b = server_.public_bucket();
    return b.substr(0, b.size() - 7) + "-private";
  }
  std::int64_t new_dataset(const std::string& name) {
    return api_.call("datasets.add", {{"projectId", project_}, {"name", name}})
        .json()
        .at("id")
        .to_number<std::int64_t>();
  }
  /// images.bulk.upload then images.bulk.add: the item's id.
  std::int64_t upload(std::int64_t dataset, const std::string& name, const std::string& bytes) {
    auto up = api_.upload({{"0-file", "0", "image/*", bytes}});
    EXPECT_EQ(up.status, 200) << up.body;
    auto added = api_.call("images.bulk.add",
                           {{"datasetId", dataset},
                            {"images", json::array{{{"title", name}, {"hash", sdk_hash(bytes)}}}}});
    EXPECT_EQ(added.status, 200) << added.body;
    return added.status == 200 ? added.json().at(0).at("id").to_number<std::int64_t>() : 0;
  }
  std::int64_t link(const std::string& name, const std::string& bytes) {
    write_file(root_ / "links" / name, bytes);
    auto added = api_.call(
        "images.bulk.add",
        {{"datasetId", dataset_},
         {"images", json::array{{{"title", name}, {"link", "fs://local/" + name}}}},
         {"forceMetadataForLinks", true}});
    EXPECT_EQ(added.status, 200) << added.body;
    return added.json().at(0).at("id").to_number<std::int64_t>();
  }
  catalog::Blob blob_of(std::int64_t item) {
    const auto i = server_.catalog().get_item(item).value();
    return server_.catalog().get_blob(*i.blob_sha256_hex).value();
  }
  void overwrite(const catalog::Blob& blob, const std::string& bytes) {
    auto w = server_.store().open_write({blob.bucket, blob.key}, {}).value();
    w->write(std::as_bytes(std::span(bytes))).value();
    w->commit().value();
  }
  service::FsckReport fsck(bool deep = false, bool repair = false) {
    service::FsckOptions o;
    o.deep = deep;
    o.repair = repair;
    return service::check_storage(*service_, o).value();
  }
  static std::set<std::pair<std::string, std::int64_t>> problems(const service::FsckReport& r) {
    std::set<std::pair<std::string, std::int64_t>> out;
    for (const auto& f : r.findings) {
      if (service::is_problem(f.kind)) {
        out.insert({std::string(service::to_string(f.kind)), f.item_id.value_or(0)});
      }
    }
    return out;
  }
  service::GcReport gc(std::chrono::seconds grace, bool dry_run = false) {
    service::GcOptions o;
    o.grace = grace;
    o.dry_run = dry_run;
    return service::collect_garbage(*service_, o).value();
  }
  bool object_exists(const catalog::Blob& b) {
    return static_cast<bool>(server_.store().stat({b.bucket, b.key}));
  }

  TestServer server_;
  HttpClient api_ = server_.client();
  fs::path root_;
  std::unique_ptr<links::LinkResolver> resolver_;
  std::unique_ptr<service::Service> service_;
  std::int64_t project_ = 0;
  std::int64_t dataset_ = 0;
};

TEST_F(StorageCheck, FsckFindsADeletedObjectACorruptByteAndLinksGoneOrChanged) {
  const std::string a = make_image(30, 20, "png", 11);
  const std::string b = make_image(31, 21, "png", 12);
  const auto item_a = upload(dataset_, "a.png", a);
  const auto item_b = upload(dataset_, "b.png", b);
  const auto gone = link("gone.png", make_image(9, 9, "png", 13));
  const auto grown = link("grown.png", make_image(10, 10, "png", 14));
  auto clean = fsck(true);
  EXPECT_EQ(clean.problems, 0u);
  EXPECT_EQ(clean.items, 4u);
  EXPECT_EQ(clean.links, 2u);

  // a's object deleted; one byte of b changed (same size); a link's file removed, another grown.
  ASSERT_TRUE(server_.store().remove({blob_of(item_a).bucket, blob_of(item_a).key}));
  std::string damaged = b;
  damaged[damaged.size() / 2] ^= 0x5a;
  overwrite(blob_of(item_b), damaged);
  fs::remove(root_ / "links" / "gone.png");
  const std::string bigger = make_image(40, 30, "png", 15);
  write_file(root_ / "links" / "grown.png", bigger);

  auto shallow = fsck(false);
  EXPECT_EQ(problems(shallow), (std::set<std::pair<std::string, std::int64_t>>{
                                   {"blob-missing", item_a},
                                   {"link-gone", gone},
                                   {"link-size-changed", grown}}));
  auto deep = fsck(true);
  EXPECT_EQ(problems(deep), (std::set<std::pair<std::string, std::int64_t>>{
                                {"blob-missing", item_a},
                                {"blob-corrupt", item_b},
                                {"link-gone", gone},
                                {"link-size-changed", grown}}));

  // --repair re-probes the grown link (and only that); no byte is written or deleted.
  auto repaired = fsck(false, true);
  EXPECT_EQ(repaired.repaired, 1u);
  const auto item = server_.catalog().get_item(grown).value();
  EXPECT_EQ(item.size, bigger.size());
  EXPECT_EQ(item.width, 40);
  EXPECT_FALSE(object_exists(blob_of(item_a)));
  auto after = fsck(false);
  EXPECT_EQ(problems(after), (std::set<std::pair<std::string, std::int64_t>>{
                                 {"blob-missing", item_a}, {"link-gone", gone}}));
}

TEST_F(StorageCheck, FsckListsOrphanObjectsWithoutFailing) {
  upload(dataset_, "a.png", make_image(12, 12, "png", 21));
  const std::string hex(64, 'e');
  const store::ObjectPath orphan{server_.public_bucket(), "images/original/ee/ee/" + hex + ".png"};
  auto w = server_.store().open_write(orphan, {}).value();
  const std::string text = "left by a crash";
  w->write(std::as_bytes(std::span(text))).value();
  w->commit().value();
  auto report = fsck();
  (void)server_.store().remove(orphan);
  EXPECT_EQ(report.problems, 0u);
  bool listed = false;
  for (const auto& f : report.findings) {
    if (f.kind == FsckFinding::Kind::OrphanObject && f.where == orphan.to_string()) listed = true;
  }
  EXPECT_TRUE(listed);
}

TEST_F(StorageCheck, GcReclaimsRemovedImagesButNotASharedBlobLinksOrTeamFiles) {
  const std::string shared = make_image(25, 25, "png", 31);
  const std::string alone = make_image(26, 26, "png", 32);
  const auto d2 = new_dataset("d2");
  const auto first = upload(dataset_, "shared.png", shared);
  const auto second = upload(d2, "shared-too.png", shared);  // the same bytes: one blob
  const auto lone = upload(dataset_, "alone.png", alone);
  const auto linked = link("linked.png", make_image(7, 7, "png", 33));
  const catalog::Blob shared_blob = blob_of(first);
  const catalog::Blob alone_blob = blob_of(lone);
  ASSERT_EQ(shared_blob.sha256_hex, blob_of(second).sha256_hex);
  // A team file beside them, in the private bucket.
  const store::ObjectPath team_file{private_bucket(), "teams/1/files/model.bin"};
  {
    auto w = server_.store().open_write(team_file, {}).value();
    const std::string text = "weights";
    w->write(std::as_bytes(std::span(text))).value();
    w->commit().value();
  }

  // Nothing is unused yet.
  EXPECT_EQ(gc(std::chrono::seconds(0)).removed, 0u);
  ASSERT_EQ(api_.call("images.bulk.remove", {{"imageIds", json::array{first, lone, linked}}}).status,
            200);
  // Within the grace period nothing goes; a dry run reports and keeps.
  EXPECT_EQ(gc(std::chrono::hours(24)).candidates, 0u);
  auto dry = gc(std::chrono::seconds(0), true);
  EXPECT_EQ(dry.candidates, 1u);
  EXPECT_EQ(dry.bytes_reclaimed, alone.size());
  EXPECT_TRUE(object_exists(alone_blob));

  auto done = gc(std::chrono::seconds(0));
  EXPECT_EQ(done.removed, 1u);
  EXPECT_EQ(done.bytes_reclaimed, alone.size());
  EXPECT_FALSE(object_exists(alone_blob));
  EXPECT_EQ(server_.catalog().get_blob(alone_blob.sha256_hex).error().code, ErrorCode::NotFound);
  // The blob another item still uses, the linked file and the team file stay.
  EXPECT_TRUE(object_exists(shared_blob));
  EXPECT_EQ(api_.call("images.download", {{"id", second}}).body, shared);
  EXPECT_TRUE(fs::exists(root_ / "links" / "linked.png"));
  EXPECT_TRUE(server_.store().stat(team_file));
  (void)server_.store().remove(team_file);
  EXPECT_EQ(fsck().problems, 0u);
  // The same bytes uploaded again are stored again.
  const auto back = upload(dataset_, "alone-again.png", alone);
  EXPECT_EQ(api_.call("images.download", {{"id", back}}).body, alone);
}

TEST_F(StorageCheck, AnUploadWaitsForACollectionOfTheSameBytesAndRepublishesThem) {
  const std::string bytes = make_image(20, 20, "png", 41);
  const auto item = upload(dataset_, "z.png", bytes);
  const catalog::Blob blob = blob_of(item);
  ASSERT_EQ(api_.call("images.bulk.remove", {{"imageIds", json::array{item}}}).status, 200);
  // gc's step 1 by hand: the row is gone, the collection recorded, the object still there.
  ASSERT_TRUE(server_.catalog().begin_blob_collection(blob.sha256_hex, "9999").value());
  std::atomic<bool> answered{false};
  HttpResponse up;
  std::thread uploader([&] {
    up = api_.upload({{"0-file", "0", "image/*", bytes}});
    answered = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(answered) << "the upload did not wait for the collection";
  // gc's steps 2 and 3: the object deleted, the collection forgotten.
  ASSERT_TRUE(server_.store().remove({blob.bucket, blob.key}));
  ASSERT_TRUE(server_.catalog().end_blob_collection(blob.sha256_hex));
  uploader.join();
  ASSERT_EQ(up.status, 200) << up.body;
  EXPECT_TRUE(object_exists(blob)) << "the row is back but not its bytes";
  EXPECT_TRUE(server_.catalog().get_blob(blob.sha256_hex));
  auto added = api_.call("images.bulk.add",
                         {{"datasetId", dataset_},
                          {"images", json::array{{{"title", "z2.png"}, {"hash", sdk_hash(bytes)}}}}});
  ASSERT_EQ(added.status, 200) << added.body;
  EXPECT_EQ(api_.call("images.download", {{"id", added.json().at(0).at("id")}}).body, bytes);
}

TEST_F(StorageCheck, UploadsRacingGcNeverLeaveARowWithoutBytes) {
  const std::string bytes = make_image(18, 18, "png", 51);
  std::atomic<bool> stop{false};
  std::atomic<int> collected{0};
  std::thread collector([&] {
    while (!stop) collected += static_cast<int>(gc(std::chrono::seconds(0)).removed);
  });
  int added = 0, refused = 0;
  for (int i = 0; i < 40; ++i) {
    // The SDK's flow: upload, add by hash, and here remove again so gc has work.
    auto up = api_.upload({{"0-file", "0", "image/*", bytes}});
    ASSERT_EQ(up.status, 200) << up.body;
    auto r = api_.call("images.bulk.add",
                       {{"datasetId", dataset_},
                        {"images", json::array{{{"title", "r" + std::to_string(i) + ".png"},
                                                {"hash", sdk_hash(bytes)}}}}});
    if (r.status != 200) {
      // gc took the unused blob between the upload and the add: refused, nothing recorded.
      EXPECT_EQ(r.status, 404) << r.body;
      ++refused;
      continue;
    }
    ++added;
    const auto id = r.json().at(0).at("id").to_number<std::int64_t>();
    EXPECT_EQ(api_.call("images.download", {{"id", id}}).body, bytes);
    if (i % 2 == 0) api_.call("images.bulk.remove", {{"imageIds", json::array{id}}});
  }
  stop = true;
  collector.join();
  std::printf("race: %d added, %d refused, %d blobs collected\n", added, refused, collected.load());
  EXPECT_GT(collected.load(), 0);
  // Every row has its bytes; every item can be read.
  EXPECT_EQ(problems(fsck(true)), (std::set<std::pair<std::string, std::int64_t>>{}));
  EXPECT_TRUE(server_.catalog().pending_blob_collections().value().empty());
}

}  // namespace
}  // namespace stowage::testing
