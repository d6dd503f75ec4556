// SPDX-License-Identifier: Apache-2.0
// Links over the API: items added by fs:// and cloud links, the remote-storage.* methods, and a
// corpus of hostile links and paths that must all be refused with a 4xx, creating nothing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "stowage/config/config.hpp"
#include "support/cloud_server.hpp"
#include "support/http_client.hpp"
#include "support/test_server.hpp"

namespace stowage::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::int64_t id_of(const json::value& v) { return v.at("id").to_number<std::int64_t>(); }

void write_file(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

class LinksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "stowage-links-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    folder_ = root_ / "datasets";
    jpeg_ = make_image(64, 40, "jpeg", 1);
    png_ = make_image(20, 30, "png", 2);
    write_file(folder_ / "persons" / "a.jpg", jpeg_);
    write_file(folder_ / "persons" / "b.png", png_);
    write_file(folder_ / "persons" / "b.png.bak", "backup");
    write_file(folder_ / "cars" / "deep" / "c.png", png_);
    write_file(root_ / "outside" / "secret.png", make_image(5, 5, "png", 3));
    fs::create_symlink(root_ / "outside", folder_ / "escape");
    fs::create_symlink(root_ / "outside" / "secret.png", folder_ / "evil.png");
    const std::string yaml =
        "local-datasets-conn:\n"
        "  provider: fs\n"
        "  path: " +
        folder_.string() +
        "\n"
        "  storage_id: local-datasets\n"
        "my-car-datasets:\n"
        "  provider: minio\n"
        "  endpoint: http://127.0.0.1:9\n"
        "  access_key: AKIDEXAMPLE\n"
        "  secret_key: wJalrXUtnFEMI\n"
        "  buckets:\n"
        "  - cars-2020\n";
    auto config = links::RemoteLinks::parse(yaml, root_ / "remote_links.yml", {});
    ASSERT_TRUE(config) << config.error().to_string();
    server_.enable_links(std::move(*config));
    auto ws = api_.call("workspaces.list", {{"teamId", 1}}).json().at("entities").at(0).at("id");
    auto p = api_.call("projects.add", {{"workspaceId", ws}, {"name", "links"}}).json();
    dataset_ = id_of(api_.call("datasets.add", {{"projectId", p.at("id")}, {"name", "d"}}).json());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  HttpResponse add_links(const std::vector<std::pair<std::string, std::string>>& items,
                         bool force = true) {
    json::array images;
    for (const auto& [name, link] : items) images.push_back({{"title", name}, {"link", link}});
    return api_.call(
        "images.bulk.add",
        {{"datasetId", dataset_}, {"images", images}, {"forceMetadataForLinks", force}});
  }
  std::int64_t items_in_dataset() {
    return api_.call("images.list", {{"datasetId", dataset_}})
        .json()
        .at("total")
        .to_number<std::int64_t>();
  }
  HttpResponse remote_get(const std::string& method, const std::string& query) {
    return api_.get("/public/api/v3/remote-storage." + method + "?" + query);
  }

  TestServer server_;
  HttpClient api_ = server_.client();
  fs::path root_, folder_;
  std::string jpeg_, png_;
  std::int64_t dataset_ = 0;
};

TEST_F(LinksTest, FsLinksAreAddedWithMetadataAndDownloadByteIdentical) {
  auto r = add_links({{"a.jpg", "fs://local-datasets/persons/a.jpg"},
                      {"b.png", "fs://local-datasets/persons/b.png"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto items = r.json().as_array();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].at("link").as_string(), "fs://local-datasets/persons/a.jpg");
  EXPECT_TRUE(items[0].at("hash").is_null());
  EXPECT_EQ(items[0].at("mime").as_string(), "image/jpeg");
  EXPECT_EQ(items[0].at("size").to_number<std::size_t>(), jpeg_.size());
  EXPECT_EQ(items[0].at("width").to_number<int>(), 64);
  EXPECT_EQ(items[0].at("height").to_number<int>(), 40);
  EXPECT_EQ(items[1].at("mime").as_string(), "image/png");
  auto info = api_.call("images.info", {{"id", id_of(items[1])}}).json();
  EXPECT_EQ(info.at("link").as_string(), "fs://local-datasets/persons/b.png");
  auto dl = api_.call("images.download", {{"id", id_of(items[0])}});
  ASSERT_EQ(dl.status, 200);
  EXPECT_EQ(dl.body, jpeg_);
  auto ranged = api_.post("/public/api/v3/images.download",
                          json::serialize(json::object{{"id", id_of(items[1])}}),
                          "application/json", {{"Range", "bytes=-5"}});
  EXPECT_EQ(ranged.status, 206);
  EXPECT_EQ(ranged.body, png_.substr(png_.size() - 5));
  // Nothing was copied into the instance's buckets.
  EXPECT_EQ(server_.objects_with_hash(sdk_hash(jpeg_)), 0u);
}

TEST_F(LinksTest, WithoutForcedMetadataNothingIsFetched) {
  auto r = add_links({{"later.png", "fs://local-datasets/not/there/yet.png"}}, false);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().at(0).at("mime").as_string(), "image/png");
  EXPECT_EQ(r.json().at(0).at("size").to_number<int>(), 0);
}

TEST_F(LinksTest, RemoteStorageListExistsStatDownload) {
  auto list = remote_get("list",
                         "path=fs://local-datasets/persons/"
                         "&recursive=True&files=True&folders=True&limit=10000&startAfter=");
  ASSERT_EQ(list.status, 200) << list.body;
  auto entries = list.json().as_array();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].at("type").as_string(), "file");
  EXPECT_EQ(entries[0].at("name").as_string(), "a.jpg");
  EXPECT_EQ(entries[0].at("prefix").as_string(), "persons");
  EXPECT_EQ(entries[0].at("size").to_number<std::size_t>(), jpeg_.size());
  EXPECT_EQ(entries[0].at("path").as_string(), "fs://local-datasets/persons/a.jpg");

  // Top level, not recursive: folders (the symlinks are not listed).
  auto top =
      remote_get("list", "path=fs://local-datasets/&recursive=False&files=True&folders=True");
  ASSERT_EQ(top.status, 200) << top.body;
  std::vector<std::string> names;
  const auto top_entries = top.json();
  for (const auto& e : top_entries.as_array()) names.emplace_back(e.at("name").as_string());
  EXPECT_EQ(names, (std::vector<std::string>{"cars", "persons"}));

  // The SDK's get_file_info_by_path: the exact object first, not "b.png.bak".
  auto exact = remote_get("list",
                          "path=fs://local-datasets/persons/"
                          "b.png&recursive=False&files=True&folders=False&limit=1&startAfter=");
  ASSERT_EQ(exact.status, 200);
  ASSERT_EQ(exact.json().as_array().size(), 1u);
  EXPECT_EQ(exact.json().at(0).at("name").as_string(), "b.png");
  EXPECT_EQ(exact.json().at(0).at("size").to_number<std::size_t>(), png_.size());
  auto missing = remote_get(
      "list",
      "path=fs://local-datasets/persons/zzz.png&recursive=False&files=True&folders=False&limit=1");
  EXPECT_EQ(missing.json().as_array().size(), 0u);

  // Paging with startAfter, as the apps do.
  auto after = remote_get(
      "list", "path=fs://local-datasets/persons/&recursive=True&limit=10&startAfter=persons/a.jpg");
  ASSERT_EQ(after.json().as_array().size(), 2u);
  EXPECT_EQ(after.json().at(0).at("name").as_string(), "b.png");

  EXPECT_EQ(
      remote_get("exists", "path=fs://local-datasets/persons/a.jpg").json().at("exists").as_bool(),
      true);
  EXPECT_EQ(remote_get("exists", "path=fs://local-datasets/persons/nope.jpg")
                .json()
                .at("exists")
                .as_bool(),
            false);
  auto stat = remote_get("stat", "path=fs://local-datasets/cars/deep/c.png");
  ASSERT_EQ(stat.status, 200);
  EXPECT_EQ(stat.json().at("size").to_number<std::size_t>(), png_.size());
  EXPECT_TRUE(stat.json().at("lastModified").as_string().ends_with("Z"));
  auto dl = api_.call("remote-storage.download", {{"link", "fs://local-datasets/persons/a.jpg"}});
  ASSERT_EQ(dl.status, 200);
  EXPECT_EQ(dl.body, jpeg_);
}

/// A remote-storage.upload body as the SDK and the docs' migration script build it: for each
/// file, a `path` field, then the `file`.
std::string upload_body(const std::vector<std::pair<std::string, std::string>>& files,
                        const std::string& boundary) {
  std::string body;
  for (const auto& [path, bytes] : files) {
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n" + path +
            "\r\n";
    const std::string name = path.substr(path.rfind('/') + 1);
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" +
            name + "\"\r\nContent-Type: image/png\r\n\r\n" + bytes + "\r\n";
  }
  return body + "--" + boundary + "--\r\n";
}

TEST_F(LinksTest, RemoteStorageUploadStreamsIntoTheLinkedFolder) {
  const std::string big = make_image(700, 500, "tiff", 4);  // ~1 MB: several chunks
  const std::string body = upload_body({{"fs://local-datasets/uploads/big.tif", big},
                                        {"fs://local-datasets/uploads/small.png", png_}},
                                       "upB");
  auto r = api_.post("/public/api/v3/remote-storage.upload", body,
                     "multipart/form-data; boundary=upB", {}, /*chunked=*/true);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json().as_array().size(), 2u);
  std::ifstream in(folder_ / "uploads" / "big.tif", std::ios::binary);
  const std::string stored((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(stored, big);
  EXPECT_TRUE(fs::exists(folder_ / "uploads" / "small.png"));
  // Nothing half-written is left in the staging folder.
  std::size_t staged = 0;
  for (const auto& e : fs::directory_iterator(folder_ / ".stowage-staging"))
    staged += e.is_regular_file();
  EXPECT_EQ(staged, 0u);
  // Then it can be added by link and listed.
  EXPECT_EQ(add_links({{"big.tif", "fs://local-datasets/uploads/big.tif"}}).status, 200);

  // Refused destinations write nothing.
  for (const std::string bad : {"s3://cars-2021/x.png", "fs://local-datasets/../escape.png",
                                "fs://local-datasets/escape/planted.png"}) {
    auto refused =
        api_.post("/public/api/v3/remote-storage.upload", upload_body({{bad, png_}}, "upB"),
                  "multipart/form-data; boundary=upB");
    EXPECT_GE(refused.status, 400) << bad;
    EXPECT_LT(refused.status, 500) << bad << refused.body;
  }
  EXPECT_FALSE(fs::exists(root_ / "escape.png"));
  EXPECT_FALSE(fs::exists(root_ / "outside" / "planted.png"));
  // A file part without its path first is malformed.
  auto orphan = api_.post("/public/api/v3/remote-storage.upload",
                          "--upB\r\nContent-Disposition: form-data; name=\"file\"; "
                          "filename=\"x\"\r\n\r\nabc\r\n--upB--\r\n",
                          "multipart/form-data; boundary=upB");
  EXPECT_EQ(orphan.status, 400);
}

/// The docs' "Migrating existing projects to Cloud Storage" script, step by step as it talks to
/// the API: for each stored image, get_file_info_by_path (remote-storage.list, limit 1), the
/// bytes streamed from images.download (a form body) into remote-storage.upload (chunked), the
/// size checked again, then set_remote for all of them at once. Run twice: the second run finds
/// every object there and every item linked, and changes nothing.
TEST_F(LinksTest, TheDocsMigrationScriptRunsUnchangedOverTheApi) {
  std::vector<std::pair<std::string, std::string>> images = {
      {"a.jpg", make_image(64, 48, "jpeg", 11)}, {"b.png", make_image(30, 20, "png", 12)}};
  std::vector<FormFile> files;
  for (std::size_t i = 0; i < images.size(); ++i) {
    files.push_back({std::to_string(i) + "-file", std::to_string(i), "image/*", images[i].second});
  }
  ASSERT_EQ(api_.upload(files).status, 200);
  json::array entries;
  for (const auto& [name, bytes] : images) entries.push_back({{"title", name}, {"hash", sdk_hash(bytes)}});
  auto added = api_.call("images.bulk.add", {{"datasetId", dataset_}, {"images", entries}});
  ASSERT_EQ(added.status, 200) << added.body;

  auto run_script = [&]() {
    json::array changes;
    const auto list = api_.call("images.list", {{"datasetId", dataset_}}).json();
    for (const auto& info : list.at("entities").as_array()) {
      if (!info.at("link").is_null()) continue;  // the script skips linked entities
      const std::string remote = "fs://local-datasets/projects-migration-storage/images/" +
                                 std::to_string(dataset_) + "/" +
                                 std::string(info.at("name").as_string());
      auto stat = [&] {
        return remote_get("list", "path=" + remote +
                                      "&recursive=False&files=True&folders=False&limit=1&"
                                      "startAfter=")
            .json();
      };
      const auto size = info.at("size").to_number<std::uint64_t>();
      auto before = stat();
      if (before.as_array().empty() || before.at(0).at("size").to_number<std::uint64_t>() != size) {
        auto bytes = api_.post("/public/api/v3/images.download",
                               "id=" + std::to_string(id_of(info)),
                               "application/x-www-form-urlencoded");
        EXPECT_EQ(bytes.status, 200);
        auto up = api_.post("/public/api/v3/remote-storage.upload",
                            upload_body({{remote, bytes.body}}, "docs"),
                            "multipart/form-data; boundary=docs", {}, /*chunked=*/true);
        EXPECT_EQ(up.status, 200) << up.body;
        EXPECT_EQ(stat().at(0).at("size").to_number<std::uint64_t>(), size);
      }
      changes.push_back({{"id", info.at("id")}, {"link", remote}});
    }
    if (changes.empty()) return std::size_t{0};
    auto r = api_.call("images.update.links",
                       {{"images", changes}, {"clearLocalDataSource", true}});
    EXPECT_TRUE(r.json().at("success").as_bool()) << r.body;
    return changes.size();
  };
  EXPECT_EQ(run_script(), images.size());
  EXPECT_EQ(run_script(), 0u);  // everything is linked now: nothing to do
  const auto list = api_.call("images.list", {{"datasetId", dataset_}}).json();
  for (const auto& info : list.at("entities").as_array()) {
    ASSERT_FALSE(info.at("link").is_null());
    const auto dl = api_.call("images.download", {{"id", info.at("id")}});
    const auto name = std::string(info.at("name").as_string());
    const auto it = std::find_if(images.begin(), images.end(),
                                 [&](const auto& p) { return p.first == name; });
    ASSERT_NE(it, images.end());
    EXPECT_EQ(dl.body, it->second) << name;
  }
}

TEST_F(LinksTest, LinksFileImportReportsEachLineAndRerunsAddNothing) {
  const std::string text =
      "# persons, then a car\n"
      "fs://local-datasets/persons/a.jpg\n"
      "\n"
      "   fs://local-datasets/cars/deep/c.png   \n"
      "fs://local-datasets/persons/missing.png\n"
      "s3://cars-2021/x.jpg\n"
      "fs://local-datasets/persons/b.png\n";
  auto first = api_.call("links.import", {{"datasetId", dataset_}, {"links", text}});
  ASSERT_EQ(first.status, 200) << first.body;
  auto report = first.json();
  EXPECT_EQ(report.at("added").to_number<int>(), 3);
  EXPECT_EQ(report.at("failed").to_number<int>(), 2);
  auto lines = report.at("lines").as_array();
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0].at("line").to_number<int>(), 2);
  EXPECT_EQ(lines[1].at("link").as_string(), "fs://local-datasets/cars/deep/c.png");
  EXPECT_EQ(lines[2].at("status").as_string(), "failed");
  EXPECT_EQ(lines[3].at("status").as_string(), "failed");
  EXPECT_NE(lines[3].at("error").as_string().find("cars-2021"), std::string::npos);
  EXPECT_EQ(items_in_dataset(), 3);

  // The same file again, this time as a browser form upload: nothing is added twice.
  const std::string body =
      "--lf\r\nContent-Disposition: form-data; name=\"datasetId\"\r\n\r\n" +
      std::to_string(dataset_) +
      "\r\n--lf\r\nContent-Disposition: form-data; name=\"file\"; filename=\"links.txt\"\r\n"
      "Content-Type: text/plain\r\n\r\n" +
      text + "\r\n--lf--\r\n";
  auto again = api_.post("/public/api/v3/links.import", body, "multipart/form-data; boundary=lf");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json().at("added").to_number<int>(), 0);
  EXPECT_EQ(again.json().at("existing").to_number<int>(), 3);
  EXPECT_EQ(items_in_dataset(), 3);
}

TEST_F(LinksTest, ProvidersAreReported) {
  auto available = remote_get("available_providers", "groupId=1");
  ASSERT_EQ(available.status, 200);
  bool fs_seen = false;
  const auto providers = available.json();
  for (const auto& p : providers.as_array()) {
    if (p.at("id").as_string() == "fs") {
      fs_seen = true;
      EXPECT_EQ(p.at("buckets"), (json::array{"local-datasets"}));
    }
  }
  EXPECT_TRUE(fs_seen);
  auto supported = remote_get("supported_providers", "");
  ASSERT_EQ(supported.status, 200);
  EXPECT_EQ(supported.json().as_array().size(), 4u);
}

TEST_F(LinksTest, HostileLinksAndPathsAreRefusedAndCreateNothing) {
  const std::vector<std::string> hostile = {
      // Traversal out of the fs folder, in its spellings.
      "fs://local-datasets/../outside/secret.png",
      "fs://local-datasets/persons/../../outside/secret.png",
      "fs://local-datasets/./persons/a.jpg",
      "fs://local-datasets//etc/passwd",
      "fs://local-datasets/%2e%2e/outside/secret.png",
      "fs://local-datasets/%2E%2E%2Foutside%2Fsecret.png",
      "fs://local-datasets/..%2foutside/secret.png",
      "fs://local-datasets/persons/..\\..\\outside\\secret.png",
      "fs://local-datasets/escape/secret.png",  // a symlink to a folder outside
      "fs://local-datasets/evil.png",           // a symlink to a file outside
      "fs://local-datasets/.stowage-staging/x.png",
      std::string("fs://local-datasets/persons/a.jpg\0.png", 38),
      "fs://local-datasets/persons/a.jpg\n",
      "fs://local-datasets",
      "fs://local-datasets/",
      "fs:///etc/passwd",
      "fs://other-storage/persons/a.jpg",  // a storage id no connection has
      "fs://LOCAL-DATASETS/persons/a.jpg",
      // Buckets that no connection lists, for every provider and alias.
      "s3://cars-2021/x.jpg",
      "minio://not-listed/x.jpg",
      "azure://cars-2020/x.jpg",  // listed, but for minio, not azure
      "google://cars-2020/x.jpg",
      "gcs://anything/x.jpg",
      // Not links at all.
      "file:///etc/passwd",
      "ftp://example.com/x.jpg",
      "gopher://127.0.0.1:70/x",
      "/etc/passwd",
      "persons/a.jpg",
      "",
  };
  std::size_t refused = 0;
  for (const auto& link : hostile) {
    auto r = add_links({{"x.png", link}});
    EXPECT_GE(r.status, 400) << link;
    EXPECT_LT(r.status, 500) << link << " " << r.body;
    EXPECT_NO_THROW(r.json()) << link;
    refused += r.status >= 400 && r.status < 500;
    EXPECT_EQ(r.body.find("wJalrXUtnFEMI"), std::string::npos) << "a secret leaked for " << link;
  }
  EXPECT_EQ(refused, hostile.size());
  EXPECT_EQ(items_in_dataset(), 0);
  // The same refusals through remote-storage.*.
  for (const std::string q : {"path=fs://local-datasets/../outside/secret.png",
                              "path=fs://local-datasets/evil.png", "path=s3://cars-2021/x.jpg"}) {
    auto r = remote_get("stat", q);
    EXPECT_GE(r.status, 400) << q;
    EXPECT_LT(r.status, 500) << q;
  }
  auto dl =
      api_.call("remote-storage.download", {{"link", "fs://local-datasets/escape/secret.png"}});
  EXPECT_GE(dl.status, 400);
  EXPECT_LT(dl.status, 500);
}

TEST_F(LinksTest, UnlistedBucketMessageSaysWhatToConfigure) {
  auto r = add_links({{"x.jpg", "s3://cars-2021/x.jpg"}});
  ASSERT_EQ(r.status, 403);
  const std::string message(r.json().at("details").at("message").as_string());
  EXPECT_NE(message.find("cars-2021"), std::string::npos) << message;
  EXPECT_NE(message.find("remote_links.yml"), std::string::npos) << message;
}

TEST(LinksDisabled, LinksAreRefusedWithoutConfiguration) {
  TestServer server;
  auto api = server.client();
  auto ws = api.call("workspaces.list", {{"teamId", 1}}).json().at("entities").at(0).at("id");
  auto p = api.call("projects.add", {{"workspaceId", ws}, {"name", "x"}}).json();
  auto d = api.call("datasets.add", {{"projectId", p.at("id")}, {"name", "d"}}).json();
  auto r = api.call("images.bulk.add",
                    {{"datasetId", d.at("id")},
                     {"images", json::array{{{"title", "a"}, {"link", "fs://x/a.jpg"}}}}});
  EXPECT_EQ(r.status, 403);
}

/// A cloud bucket reached by link, on whichever test server the environment names: an object is
/// put there directly, then added by link through the API and downloaded byte-identical.
void cloud_link_round_trip(const char* env_var, const std::string& provider,
                           const std::string& scheme) {
  STOWAGE_REQUIRE_CLOUD(cloud, env_var, provider);
  const config::Config& config = cloud.config;
  store::ObjectStore* direct = cloud.store.get();
  const std::string bytes = make_image(33, 22, "png", 99);
  const std::string key = "linked/" + provider + "/photo.png";
  auto writer = direct->open_write({config.public_bucket(), key}, {}).value();
  writer->write(std::as_bytes(std::span(bytes))).value();
  writer->commit().value();

  links::RemoteLinks remote;
  remote.connections.push_back(cloud.connection);

  TestServer server;
  server.enable_links(remote);
  auto api = server.client();
  auto ws = api.call("workspaces.list", {{"teamId", 1}}).json().at("entities").at(0).at("id");
  auto p = api.call("projects.add", {{"workspaceId", ws}, {"name", "cloud"}}).json();
  auto d = api.call("datasets.add", {{"projectId", p.at("id")}, {"name", "d"}}).json();
  const std::string link = scheme + "://" + config.public_bucket() + "/" + key;
  auto added = api.call("images.bulk.add",
                        {{"datasetId", d.at("id")},
                         {"images", json::array{{{"title", "photo.png"}, {"link", link}}}},
                         {"forceMetadataForLinks", true}});
  ASSERT_EQ(added.status, 200) << added.body;
  EXPECT_EQ(added.json().at(0).at("width").to_number<int>(), 33);
  EXPECT_EQ(added.json().at(0).at("size").to_number<std::size_t>(), bytes.size());
  auto dl = api.call("images.download", {{"id", added.json().at(0).at("id")}});
  ASSERT_EQ(dl.status, 200);
  EXPECT_EQ(dl.body, bytes);
  auto exists = api.get("/public/api/v3/remote-storage.exists?path=" + link);
  EXPECT_TRUE(exists.json().at("exists").as_bool()) << exists.body;
  // Another bucket of the same server is not reachable: no connection lists it.
  auto other = api.call(
      "images.bulk.add",
      {{"datasetId", d.at("id")},
       {"images", json::array{{{"title", "p2.png"},
                               {"link", scheme + "://" + config.private_bucket() + "/" + key}}}}});
  EXPECT_EQ(other.status, 403);
  (void)direct->remove({config.public_bucket(), key});
}

TEST(CloudLinks, GoogleCloudStorage) {
  cloud_link_round_trip("STOWAGE_TEST_GCS_ENV", "google", "gcs");
}
TEST(CloudLinks, S3OnRadosgw) { cloud_link_round_trip("STOWAGE_TEST_RADOSGW_ENV", "minio", "s3"); }
TEST(CloudLinks, AzureOnAzurite) {
  cloud_link_round_trip("STOWAGE_TEST_AZURITE_ENV", "azure", "azure");
}

}  // namespace
}  // namespace stowage::testing
