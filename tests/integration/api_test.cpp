// SPDX-License-Identifier: Apache-2.0
// The Supervisely-compatible API over real HTTP: a Stowage server on an ephemeral loopback port,
// a real SQLite catalog and real files, driven the way the Python SDK drives it.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "support/http_client.hpp"
#include "support/test_server.hpp"

namespace stowage::testing {
namespace {

namespace json = boost::json;

std::int64_t id_of(const json::value& v) { return v.at("id").to_number<std::int64_t>(); }

class ApiTest : public ::testing::Test {
 protected:
  TestServer server;
  HttpClient api = server.client();

  json::value ok(const std::string& method, const json::value& body) {
    auto r = api.call(method, body);
    EXPECT_EQ(r.status, 200) << method << ": " << r.body;
    return r.status == 200 ? r.json() : json::value{};
  }

  std::int64_t team_id() {
    auto teams = ok("teams.list", {{"filter", json::array{}}});
    return id_of(teams.at("entities").at(0));
  }
  std::int64_t workspace_id() {
    auto ws = ok("workspaces.list", {{"teamId", team_id()}, {"filter", json::array{}}});
    return id_of(ws.at("entities").at(0));
  }
  std::int64_t new_project(const std::string& name, const std::string& type = "images") {
    return id_of(
        ok("projects.add",
           {{"workspaceId", workspace_id()}, {"name", name}, {"description", ""}, {"type", type}}));
  }
  std::int64_t new_dataset(std::int64_t project, const std::string& name,
                           std::optional<std::int64_t> parent = std::nullopt) {
    json::object body{{"projectId", project}, {"name", name}, {"description", ""}};
    body["parentId"] = parent ? json::value(*parent) : json::value(nullptr);
    return id_of(ok("datasets.add", body));
  }
  /// The SDK's upload_paths: hashes.list, bulk.upload of the missing ones, bulk.add.
  json::array upload_images(std::int64_t dataset,
                            const std::vector<std::pair<std::string, std::string>>& files) {
    json::array hashes;
    for (const auto& f : files) hashes.emplace_back(sdk_hash(f.second));
    auto existing = api.post("/public/api/v3/images.internal.hashes.list", json::serialize(hashes),
                             "application/json");
    EXPECT_EQ(existing.status, 200) << existing.body;
    std::set<std::string> have;
    const auto existing_json = existing.json();
    for (const auto& h : existing_json.as_array()) have.insert(std::string(h.as_string()));
    std::vector<FormFile> parts;
    for (const auto& f : files) {
      if (have.count(sdk_hash(f.second))) continue;
      parts.push_back({std::to_string(parts.size()) + "-file", std::to_string(parts.size()),
                       "image/*", f.second});
    }
    if (!parts.empty()) {
      auto up = api.upload(parts);
      EXPECT_EQ(up.status, 200) << up.body;
    }
    json::array images;
    for (const auto& f : files)
      images.push_back({{"title", f.first}, {"hash", sdk_hash(f.second)}});
    auto added = api.call("images.bulk.add", {{"datasetId", dataset},
                                              {"images", images},
                                              {"forceMetadataForLinks", true},
                                              {"skipValidation", false}});
    EXPECT_EQ(added.status, 200) << added.body;
    return added.status == 200 ? added.json().as_array() : json::array{};
  }
};

TEST_F(ApiTest, InstanceVersionIsAtLeastTheSdkMinimum) {
  auto v = ok("instance.version", json::object{});
  EXPECT_EQ(v.at("version").as_string(), "6.17.8");
}

TEST_F(ApiTest, HealthzAnswersWithoutToken) {
  auto r = api.with_token("").get("/healthz");
  EXPECT_EQ(r.status, 200);
}

TEST_F(ApiTest, RequestsWithoutValidTokenAreRefused) {
  for (const std::string token : {"", "not-a-token", "x"}) {
    auto r = api.with_token(token).call("projects.list", {{"workspaceId", 1}});
    EXPECT_EQ(r.status, 401) << token;
    auto body = r.json();
    EXPECT_TRUE(body.at("error").is_string());
    EXPECT_TRUE(body.at("details").at("message").is_string());
  }
}

TEST_F(ApiTest, RevokedTokenStopsWorking) {
  auto user = server.catalog().find_user("admin").value();
  auto issued = server.catalog().create_token(user.id, "short-lived").value();
  auto client = api.with_token(issued.secret);
  EXPECT_EQ(client.call("teams.list", json::object{}).status, 200);
  server.catalog().revoke_token(issued.info.id).value();
  EXPECT_EQ(client.call("teams.list", json::object{}).status, 401);
}

TEST_F(ApiTest, TeamsAndWorkspaces) {
  auto teams = ok("teams.list", {{"filter", json::array{}}});
  ASSERT_EQ(teams.at("total").to_number<int>(), 1);
  const auto team = id_of(teams.at("entities").at(0));
  auto info = ok("teams.info", {{"id", team}});
  EXPECT_EQ(id_of(info), team);
  EXPECT_TRUE(info.at("name").is_string());

  auto ws = ok("workspaces.add", {{"teamId", team}, {"name", "second"}, {"description", "d"}});
  EXPECT_EQ(ws.at("name").as_string(), "second");
  EXPECT_EQ(ws.at("teamId").to_number<std::int64_t>(), team);
  auto listed = ok("workspaces.list", {{"teamId", team}, {"filter", json::array{}}});
  EXPECT_EQ(listed.at("total").to_number<int>(), 2);
  EXPECT_EQ(id_of(ok("workspaces.info", {{"id", id_of(ws)}})), id_of(ws));
  EXPECT_EQ(api.call("workspaces.info", {{"id", 999999}}).status, 404);
}

TEST_F(ApiTest, ProjectsAddInfoList) {
  const auto ws = workspace_id();
  auto p = ok("projects.add",
              {{"workspaceId", ws}, {"name", "cars"}, {"description", "d"}, {"type", "images"}});
  EXPECT_EQ(p.at("name").as_string(), "cars");
  EXPECT_EQ(p.at("title").as_string(), "cars");
  EXPECT_EQ(p.at("type").as_string(), "images");
  EXPECT_EQ(p.at("workspaceId").to_number<std::int64_t>(), ws);
  EXPECT_TRUE(p.at("createdBy").is_int64());
  auto info = ok("projects.info", {{"id", id_of(p)}});
  EXPECT_EQ(info.at("name").as_string(), "cars");
  EXPECT_EQ(api.call("projects.info", {{"id", 424242}}).status, 404);

  // Same name in the same workspace: refused.
  EXPECT_EQ(
      api.call("projects.add", {{"workspaceId", ws}, {"name", "cars"}, {"type", "images"}}).status /
          100,
      4);
  ok("projects.add", {{"workspaceId", ws}, {"name", "boats"}, {"type", "videos"}});
  auto list =
      ok("projects.list",
         {{"workspaceId", ws}, {"filter", json::array{}}, {"sort", "id"}, {"sort_order", "asc"}});
  EXPECT_EQ(list.at("total").to_number<int>(), 2);
  EXPECT_EQ(list.at("entities").at(0).at("name").as_string(), "cars");
  auto by_name =
      ok("projects.list",
         {{"workspaceId", ws},
          {"filter", json::array{{{"field", "name"}, {"operator", "="}, {"value", "boats"}}}}});
  ASSERT_EQ(by_name.at("total").to_number<int>(), 1);
  EXPECT_EQ(by_name.at("entities").at(0).at("type").as_string(), "videos");
  auto by_team = ok("projects.list", {{"groupId", team_id()}, {"filter", json::array{}}});
  EXPECT_EQ(by_team.at("total").to_number<int>(), 2);
}

TEST_F(ApiTest, UnknownProjectTypeIsRefused) {
  auto r = api.call("projects.add",
                    {{"workspaceId", workspace_id()}, {"name", "x"}, {"type", "spreadsheets"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("spreadsheets"), std::string::npos);
}

TEST_F(ApiTest, DatasetsNestedAndRecursive) {
  const auto project = new_project("nested");
  const auto a = new_dataset(project, "a");
  const auto b = new_dataset(project, "b");
  const auto a1 = new_dataset(project, "a1", a);
  new_dataset(project, "a1x", a1);
  auto top = ok("datasets.list",
                {{"projectId", project}, {"filter", json::array{}}, {"recursive", false}});
  EXPECT_EQ(top.at("total").to_number<int>(), 2);
  auto all =
      ok("datasets.list", {{"projectId", project}, {"filter", json::array{}}, {"recursive", true}});
  EXPECT_EQ(all.at("total").to_number<int>(), 4);
  for (const auto& d : all.at("entities").as_array()) {
    EXPECT_FALSE(d.as_object().contains("customData")) << "customData only on request";
  }
  auto children =
      ok("datasets.list",
         {{"projectId", project},
          {"filter", json::array{{{"field", "parentId"}, {"operator", "="}, {"value", a}}}},
          {"recursive", true}});
  ASSERT_EQ(children.at("total").to_number<int>(), 1);
  EXPECT_EQ(id_of(children.at("entities").at(0)), a1);
  EXPECT_EQ(children.at("entities").at(0).at("parentId").to_number<std::int64_t>(), a);
  auto info = ok("datasets.info", {{"id", b}});
  EXPECT_EQ(info.at("name").as_string(), "b");
  EXPECT_TRUE(info.at("parentId").is_null());
  auto with_custom =
      ok("datasets.list",
         {{"projectId", project}, {"recursive", true}, {"extraFields", json::array{"customData"}}});
  EXPECT_TRUE(with_custom.at("entities").at(0).as_object().contains("customData"));
  // A sibling with the same name is refused; the same name under another parent is fine.
  EXPECT_EQ(api.call("datasets.add", {{"projectId", project}, {"name", "a"}}).status / 100, 4);
  new_dataset(project, "a", b);
  auto project_info = ok("projects.info", {{"id", project}});
  EXPECT_EQ(project_info.at("datasetsCount").to_number<int>(), 5);
}

TEST_F(ApiTest, WrongJsonTypesGiveClearErrors) {
  auto r = api.call("projects.info", {{"id", "abc"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.json().at("details").at("message").as_string().find("'id'"), std::string::npos);
  r = api.call("datasets.add", {{"projectId", json::array{}}, {"name", "x"}});
  EXPECT_EQ(r.status, 400);
  r = api.call("images.list", {{"datasetId", 1}, {"filter", "nope"}});
  EXPECT_EQ(r.status / 100, 4);
  r = api.post("/public/api/v3/projects.info", "{not json", "application/json");
  EXPECT_EQ(r.status, 400);
  EXPECT_NO_THROW(r.json());
  r = api.call("no.such.method", json::object{});
  EXPECT_EQ(r.status, 404);
  EXPECT_NO_THROW(r.json());
}

TEST_F(ApiTest, AnotherTeamsProjectIsRefused) {
  const auto project = new_project("private");
  const auto dataset = new_dataset(project, "ds");
  auto img = upload_images(dataset, {{"a.png", make_image(8, 8, "png")}});
  ASSERT_EQ(img.size(), 1u);
  auto outsider = api.with_token(server.make_outsider_token());
  EXPECT_EQ(outsider.call("projects.info", {{"id", project}}).status, 403);
  EXPECT_EQ(outsider.call("datasets.list", {{"projectId", project}}).status, 403);
  EXPECT_EQ(outsider.call("datasets.add", {{"projectId", project}, {"name", "x"}}).status, 403);
  EXPECT_EQ(outsider.call("images.list", {{"datasetId", dataset}}).status, 403);
  EXPECT_EQ(outsider.call("images.download", {{"id", id_of(img[0])}}).status, 403);
  EXPECT_EQ(outsider.call("images.bulk.remove", {{"imageIds", json::array{id_of(img[0])}}}).status,
            403);
  EXPECT_EQ(outsider.call("workspaces.list", {{"teamId", team_id()}}).status, 403);
  // And nothing was removed.
  EXPECT_EQ(api.call("images.info", {{"id", id_of(img[0])}}).status, 200);
}

TEST_F(ApiTest, UploadAddInfoDownloadRoundTrip) {
  const auto dataset = new_dataset(new_project("p"), "ds");
  const std::string jpeg = make_image(64, 48, "jpeg", 1);
  const std::string png = make_image(30, 20, "png", 2);
  auto images = upload_images(dataset, {{"one.jpg", jpeg}, {"two", png}});
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0].at("name").as_string(), "one.jpg");
  EXPECT_EQ(images[0].at("mime").as_string(), "image/jpeg");
  EXPECT_EQ(images[0].at("width").to_number<int>(), 64);
  EXPECT_EQ(images[0].at("height").to_number<int>(), 48);
  EXPECT_EQ(images[0].at("size").to_number<std::size_t>(), jpeg.size());
  EXPECT_TRUE(images[0].at("size").is_number());
  EXPECT_EQ(images[0].at("hash").as_string(), sdk_hash(jpeg));
  EXPECT_TRUE(images[0].at("link").is_null());
  EXPECT_EQ(images[0].at("datasetId").to_number<std::int64_t>(), dataset);
  // The mime comes from the bytes, not the name.
  EXPECT_EQ(images[1].at("mime").as_string(), "image/png");
  const std::string path = std::string(images[1].at("pathOriginal").as_string());
  EXPECT_TRUE(path.starts_with("/" + server.public_bucket() + "/")) << path;
  EXPECT_NE(std::string(images[1].at("fullStorageUrl").as_string()).find(path), std::string::npos);
  // The bytes sit in the public bucket under that path.
  const std::string key = path.substr(server.public_bucket().size() + 2);
  auto stat = server.store().stat({server.public_bucket(), key});
  ASSERT_TRUE(stat) << stat.error().to_string();
  EXPECT_EQ(stat->size, png.size());

  auto info = ok("images.info", {{"id", id_of(images[1])}, {"forceMetadataForLinks", true}});
  EXPECT_EQ(info.at("width").to_number<int>(), 30);
  auto dl = api.call("images.download", {{"id", id_of(images[0])}});
  ASSERT_EQ(dl.status, 200);
  EXPECT_EQ(dl.body, jpeg);
  EXPECT_EQ(dl.header("content-length"), std::to_string(jpeg.size()));
  EXPECT_EQ(dl.header("x-content-checksum-sha256"), sdk_hash(jpeg));
  EXPECT_EQ(dl.header("content-encoding"), "");
  // The docs' migration script posts a form, not JSON.
  auto form = api.post("/public/api/v3/images.download", "id=" + std::to_string(id_of(images[1])),
                       "application/x-www-form-urlencoded");
  ASSERT_EQ(form.status, 200);
  EXPECT_EQ(form.body, png);
  EXPECT_EQ(api.call("images.download", {{"id", 987654}}).status, 404);
}

TEST_F(ApiTest, DownloadsHonourRanges) {
  const auto dataset = new_dataset(new_project("p"), "ds");
  const std::string bytes = make_image(200, 100, "png", 3);
  auto images = upload_images(dataset, {{"r.png", bytes}});
  ASSERT_EQ(images.size(), 1u);
  const std::string body = json::serialize(json::object{{"id", id_of(images[0])}});
  const auto size = bytes.size();
  auto range = [&](const std::string& spec) {
    return api.post("/public/api/v3/images.download", body, "application/json", {{"Range", spec}});
  };
  auto r = range("bytes=10-19");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, bytes.substr(10, 10));
  EXPECT_EQ(r.header("content-range"), "bytes 10-19/" + std::to_string(size));
  r = range("bytes=-16");  // the SDK's suffix range
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, bytes.substr(size - 16));
  r = range("bytes=100-");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, bytes.substr(100));
  r = range("bytes=0-999999999");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, bytes);
  r = range("bytes=" + std::to_string(size) + "-");
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(r.header("content-range"), "bytes */" + std::to_string(size));
  r = range("furlongs=1-2");  // not a byte range: the whole object
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, bytes);
}

TEST_F(ApiTest, IdenticalBytesAreStoredOnce) {
  const auto project = new_project("dedup");
  const auto d1 = new_dataset(project, "d1");
  const auto d2 = new_dataset(project, "d2");
  const std::string bytes = make_image(16, 16, "png", 9);
  auto a = upload_images(d1, {{"a.png", bytes}});
  auto b = upload_images(d2, {{"b.png", bytes}, {"c.png", bytes}});
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(a[0].at("pathOriginal"), b[0].at("pathOriginal"));
  EXPECT_EQ(b[0].at("pathOriginal"), b[1].at("pathOriginal"));
  // One object in the bucket for three items.
  EXPECT_EQ(server.objects_with_hash(sdk_hash(bytes)), 1u);
  // The hash list now reports the bytes as present, so the SDK skips the upload.
  auto existing = api.post("/public/api/v3/images.internal.hashes.list",
                           json::serialize(json::array{sdk_hash(bytes), sdk_hash("other")}),
                           "application/json");
  ASSERT_EQ(existing.status, 200);
  EXPECT_EQ(existing.json(), (json::array{sdk_hash(bytes)}));
  // Uploading the same bytes again answers the same hash and stores nothing new.
  auto again = api.upload({{"0-file", "0", "image/*", bytes}});
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(again.json().at(0).at("hash").as_string(), sdk_hash(bytes));
}

TEST_F(ApiTest, BulkAddNameConflictIsNonunique) {
  const auto dataset = new_dataset(new_project("p"), "ds");
  const std::string bytes = make_image(10, 10, "png", 4);
  auto first = upload_images(dataset, {{"x.png", bytes}});
  ASSERT_EQ(first.size(), 1u);
  auto r = api.call("images.bulk.add",
                    {{"datasetId", dataset},
                     {"images", json::array{{{"title", "x.png"}, {"hash", sdk_hash(bytes)}},
                                            {{"title", "y.png"}, {"hash", sdk_hash(bytes)}}}}});
  ASSERT_EQ(r.status, 400) << r.body;
  auto details = r.json().at("details");
  EXPECT_EQ(details.at("type").as_string(), "NONUNIQUE");
  EXPECT_EQ(details.at("errors").at(0).at("name").as_string(), "x.png");
  EXPECT_EQ(details.at("errors").at(0).at("id").to_number<std::int64_t>(), id_of(first[0]));
  // All or nothing: y.png was not added.
  auto list = ok("images.list", {{"datasetId", dataset}});
  EXPECT_EQ(list.at("total").to_number<int>(), 1);
  // Unknown hash: refused, nothing added.
  r = api.call(
      "images.bulk.add",
      {{"datasetId", dataset},
       {"images", json::array{{{"title", "z.png"}, {"hash", sdk_hash("never uploaded")}}}}});
  EXPECT_EQ(r.status, 404);
}

TEST_F(ApiTest, ImagesListPaginatesAndFilters) {
  const auto project = new_project("many");
  const auto dataset = new_dataset(project, "ds");
  std::vector<std::pair<std::string, std::string>> files;
  for (int i = 0; i < 23; ++i) {
    files.push_back({"img" + std::to_string(100 + i) + ".png", make_image(4, 4, "png", i)});
  }
  auto added = upload_images(dataset, files);
  ASSERT_EQ(added.size(), 23u);
  // The SDK's get_list_all_pages: first call without page, then page=2.. with perPage.
  std::vector<std::int64_t> seen;
  auto first =
      ok("images.list",
         {{"datasetId", dataset}, {"sort", "id"}, {"sort_order", "asc"}, {"per_page", 10}});
  EXPECT_EQ(first.at("total").to_number<int>(), 23);
  EXPECT_EQ(first.at("perPage").to_number<int>(), 10);
  EXPECT_EQ(first.at("pagesCount").to_number<int>(), 3);
  for (const auto& e : first.at("entities").as_array()) seen.push_back(id_of(e));
  for (int page = 2; page <= 3; ++page) {
    auto next = ok("images.list", {{"datasetId", dataset},
                                   {"sort", "id"},
                                   {"sort_order", "asc"},
                                   {"page", page},
                                   {"per_page", 10}});
    for (const auto& e : next.at("entities").as_array()) seen.push_back(id_of(e));
  }
  ASSERT_EQ(seen.size(), 23u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<std::int64_t>(seen.begin(), seen.end()).size(), 23u);

  // Descending by name.
  auto desc =
      ok("images.list",
         {{"datasetId", dataset}, {"sort", "name"}, {"sort_order", "desc"}, {"per_page", 3}});
  EXPECT_EQ(desc.at("entities").at(0).at("name").as_string(), "img122.png");

  // get_info_by_id_batch: an "in" filter on ids.
  auto batch = ok("images.list",
                  {{"datasetId", dataset},
                   {"filter", json::array{{{"field", "id"},
                                           {"operator", "in"},
                                           {"value", json::array{seen[3], seen[7], seen[20]}}}}}});
  EXPECT_EQ(batch.at("total").to_number<int>(), 3);
  // By name.
  auto named = ok(
      "images.list",
      {{"datasetId", dataset},
       {"filter", json::array{{{"field", "name"}, {"operator", "="}, {"value", "img105.png"}}}}});
  ASSERT_EQ(named.at("total").to_number<int>(), 1);
  EXPECT_EQ(named.at("entities").at(0).at("name").as_string(), "img105.png");

  // Token mode.
  std::vector<std::int64_t> tokened;
  json::object body{{"datasetId", dataset}, {"pagination_mode", "token"}, {"per_page", 10}};
  for (int guard = 0; guard < 10; ++guard) {
    auto page = ok("images.list", body);
    for (const auto& e : page.at("entities").as_array()) tokened.push_back(id_of(e));
    if (page.at("after").is_null()) break;
    body["after"] = page.at("after");
  }
  EXPECT_EQ(tokened, seen);

  // By project (exactly one of datasetId / projectId).
  auto by_project = ok("images.list", {{"projectId", project}, {"per_page", 5}});
  EXPECT_EQ(by_project.at("total").to_number<int>(), 23);
  EXPECT_EQ(api.call("images.list", {{"projectId", project}, {"datasetId", dataset}}).status, 400);
  EXPECT_EQ(api.call("images.list", {{"datasetId", dataset}, {"per_page", 0}}).status, 400);
  EXPECT_EQ(api.call("images.list",
                     {{"datasetId", dataset},
                      {"filter",
                       json::array{{{"field", "nosuchfield"}, {"operator", "="}, {"value", 1}}}}})
                .status,
            400);
}

TEST_F(ApiTest, BulkDownloadIsMultipartByImageId) {
  const auto dataset = new_dataset(new_project("p"), "ds");
  const std::string a = make_image(12, 12, "png", 5);
  const std::string b = make_image(9, 7, "jpeg", 6);
  auto images = upload_images(dataset, {{"a.png", a}, {"b.jpg", b}});
  ASSERT_EQ(images.size(), 2u);
  auto r = api.call(
      "images.bulk.download",
      {{"datasetId", dataset}, {"imageIds", json::array{id_of(images[1]), id_of(images[0])}}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string type = r.header("content-type");
  ASSERT_TRUE(type.starts_with("multipart/form-data; boundary=")) << type;
  const std::string boundary = type.substr(type.find('=') + 1);
  EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
  // Parse it as the SDK does: parts in order, name="<id>".
  std::vector<std::pair<std::string, std::string>> parts;
  std::size_t pos = 0;
  const std::string delim = "--" + boundary;
  while ((pos = r.body.find(delim, pos)) != std::string::npos) {
    pos += delim.size();
    if (r.body.compare(pos, 2, "--") == 0) break;
    const auto head_end = r.body.find("\r\n\r\n", pos);
    const std::string head = r.body.substr(pos, head_end - pos);
    const auto name_at = head.find("name=\"") + 6;
    const std::string name = head.substr(name_at, head.find('"', name_at) - name_at);
    const auto next = r.body.find("\r\n" + delim, head_end + 4);
    parts.push_back({name, r.body.substr(head_end + 4, next - head_end - 4)});
    pos = next;
  }
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0].first, std::to_string(id_of(images[1])));
  EXPECT_EQ(parts[0].second, b);
  EXPECT_EQ(parts[1].second, a);
  EXPECT_EQ(r.body.find("x-content-checksum-sha256"), std::string::npos);
}

TEST_F(ApiTest, BulkRemove) {
  const auto dataset = new_dataset(new_project("p"), "ds");
  auto images = upload_images(
      dataset, {{"a.png", make_image(5, 5, "png", 1)}, {"b.png", make_image(5, 5, "png", 2)}});
  ASSERT_EQ(images.size(), 2u);
  auto r = ok("images.bulk.remove", {{"imageIds", json::array{id_of(images[0])}}});
  EXPECT_EQ(api.call("images.info", {{"id", id_of(images[0])}}).status, 404);
  EXPECT_EQ(api.call("images.info", {{"id", id_of(images[1])}}).status, 200);
  EXPECT_EQ(ok("images.list", {{"datasetId", dataset}}).at("total").to_number<int>(), 1);
  // The name is free again.
  EXPECT_EQ(upload_images(dataset, {{"a.png", make_image(5, 5, "png", 3)}}).size(), 1u);
}

TEST_F(ApiTest, ChunkedUploadIsAccepted) {
  const std::string big = make_image(400, 300, "tiff", 7);  // ~120 KB: several chunks
  auto r = api.upload(
      {{"0-file", "0", "image/*", big}, {"1-file", "1", "image/*", make_image(3, 3, "webp", 1)}},
      true);
  ASSERT_EQ(r.status, 200) << r.body;
  auto results = r.json().as_array();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].at("hash").as_string(), sdk_hash(big));
}

TEST_F(ApiTest, NonImagePartGetsAnErrorEntryAndNothingIsStored) {
  auto r = api.upload({{"0-file", "0", "image/*", "this is not an image"},
                       {"1-file", "1", "image/*", make_image(6, 6, "png", 11)}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto results = r.json().as_array();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_TRUE(results[0].as_object().contains("errors"));
  EXPECT_TRUE(results[1].as_object().contains("hash"));
  auto existing =
      api.post("/public/api/v3/images.internal.hashes.list",
               json::serialize(json::array{sdk_hash("this is not an image")}), "application/json");
  EXPECT_EQ(existing.json().as_array().size(), 0u);
}

TEST_F(ApiTest, MalformedMultipartIsRefused) {
  const std::string path = "/public/api/v3/images.bulk.upload";
  // No boundary parameter.
  auto r = api.post(path, "whatever", "multipart/form-data");
  EXPECT_EQ(r.status, 400);
  // Not multipart at all.
  r = api.post(path, "{}", "application/json");
  EXPECT_EQ(r.status, 400);
  // Truncated: no closing boundary.
  const std::string image = make_image(4, 4, "png", 77);
  std::string body = HttpClient::multipart_body({{"0-file", "0", "image/*", image}}, "XyZ");
  body.resize(body.size() - 12);
  r = api.post(path, body, "multipart/form-data; boundary=XyZ");
  EXPECT_EQ(r.status, 400);
  EXPECT_NO_THROW(r.json());
  // A part without Content-Disposition.
  r = api.post(path, "--XyZ\r\nContent-Type: image/png\r\n\r\nabc\r\n--XyZ--\r\n",
               "multipart/form-data; boundary=XyZ");
  EXPECT_EQ(r.status, 400);
  // Nothing stored by any of them, and no spool file left behind.
  EXPECT_EQ(server.objects_with_hash(sdk_hash(image)), 0u);
  std::size_t spooled = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(server.data_path())) {
    spooled += e.is_regular_file() && e.path().parent_path().filename() == ".staging";
  }
  EXPECT_EQ(spooled, 0u);
}

TEST(ApiCaches, DownloadsFromMemoryStayCorrectAndSeeRemovalsAtOnce) {
  TestServer server({}, std::chrono::minutes(1));
  auto api = server.client();
  auto ws = api.call("workspaces.list", {{"teamId", 1}}).json().at("entities").at(0).at("id");
  auto p = api.call("projects.add", {{"workspaceId", ws}, {"name", "hot"}}).json().at("id");
  auto d = api.call("datasets.add", {{"projectId", p}, {"name", "d"}}).json().at("id");
  const std::string bytes = make_image(40, 30, "jpeg", 8);  // small: served from memory
  ASSERT_EQ(api.upload({{"0-file", "0", "image/*", bytes}}).status, 200);
  auto added = api.call(
      "images.bulk.add",
      {{"datasetId", d}, {"images", json::array{{{"title", "h.jpg"}, {"hash", sdk_hash(bytes)}}}}});
  const auto id = id_of(added.json().at(0));
  const std::string body = json::serialize(json::object{{"id", id}});
  for (int i = 0; i < 3; ++i) {  // the first fills the caches, the others are answered from them
    auto r = api.post("/public/api/v3/images.download", body, "application/json");
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.body, bytes);
    EXPECT_EQ(r.header("x-content-checksum-sha256"), sdk_hash(bytes));
  }
  auto ranged =
      api.post("/public/api/v3/images.download", body, "application/json", {{"Range", "bytes=-7"}});
  EXPECT_EQ(ranged.status, 206);
  EXPECT_EQ(ranged.body, bytes.substr(bytes.size() - 7));
  // Another team's token is refused even though the item is cached.
  auto outsider = api.with_token(server.make_outsider_token());
  EXPECT_EQ(outsider.post("/public/api/v3/images.download", body, "application/json").status, 403);
  // A removal is seen at once.
  ASSERT_EQ(api.call("images.bulk.remove", {{"imageIds", json::array{id}}}).status, 200);
  EXPECT_EQ(api.post("/public/api/v3/images.download", body, "application/json").status, 404);
}

TEST(ApiLimits, OversizedBodiesGet413) {
  server::ServerOptions options;
  options.max_json_bytes = 1024;
  options.max_upload_bytes = 64 * 1024;
  TestServer server(options);
  auto api = server.client();
  const std::string big_json = "{\"id\": 1, \"pad\": \"" + std::string(4096, 'x') + "\"}";
  EXPECT_EQ(api.post("/public/api/v3/projects.info", big_json, "application/json").status, 413);
  // Announced by Content-Length, and discovered while streaming a chunked body.
  const std::string big_part(200 * 1024, 'z');
  auto r = api.upload({{"0-file", "0", "image/*", big_part}});
  EXPECT_EQ(r.status, 413);
  r = api.upload({{"0-file", "0", "image/*", big_part}}, true);
  EXPECT_TRUE(r.status == 413 || r.transport_error) << r.status;
  EXPECT_NO_THROW(api.call("instance.version", json::object{}).json());
}

TEST_F(ApiTest, TlsClientHelloIsClosedAtOnce) {
  // The first bytes of a TLS 1.2 ClientHello record.
  const std::string hello("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
  auto ex = raw_exchange(server.port(), hello, 5000);
  EXPECT_TRUE(ex.closed);
  EXPECT_LT(ex.elapsed_ms, 1000);
}

TEST_F(ApiTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  const std::string req =
      "POST /public/api/v3/instance.version HTTP/1.1\r\nHost: x\r\nx-api-key: " + api.token() +
      "\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
  auto ex = raw_exchange(server.port(), req + req + req, 1500);
  std::size_t answers = 0;
  for (std::size_t pos = 0; (pos = ex.received.find("HTTP/1.1 200", pos)) != std::string::npos;
       ++pos)
    ++answers;
  EXPECT_EQ(answers, 3u);
}

TEST_F(ApiTest, ConcurrentUploadsOfTheSameBytesMakeOneBlob) {
  const std::string bytes = make_image(50, 50, "jpeg", 42);
  std::vector<std::thread> threads;
  std::atomic<int> ok_count{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      auto r = api.upload({{"0-file", "0", "image/*", bytes}});
      if (r.status == 200 && r.json().at(0).at("hash").as_string() == sdk_hash(bytes)) ++ok_count;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok_count.load(), 6);
  EXPECT_EQ(server.objects_with_hash(sdk_hash(bytes)), 1u);
}

}  // namespace
}  // namespace stowage::testing
