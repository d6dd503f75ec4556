// SPDX-License-Identifier: Apache-2.0
// The authorization sweep (issue 18, part 4): every API method the server dispatches
// (server::Api::methods() and server::ConsoleApi::methods(), the tables its dispatcher answers
// from, so a new method cannot be missed) and every GET route, called by four callers that must
// not see team A's data:
//   - no token, a wrong token and a revoked token of team A's own user: 401;
//   - a valid token of another team (B): 403 for another team's entity, 404 for a hash or a path
//     that is not theirs (as for one that does not exist), or 200 for the few methods that answer
//     about the caller only (their teams, their tokens, their uploads), never with A's data.
// Every kind of id a method takes is filled with a real object of team A (team, workspace,
// project, dataset, image, linked image, video, hash, link, team-file path, token), also mixed
// with B's own objects (B's dataset with A's hash, A's image ids, A's parent dataset...). Every
// answer (status, headers, body) is scanned for team A's sentinels: names, hashes (base64 and
// hex), blob keys, link paths, team-file paths and bytes, token secrets.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "server/api.hpp"
#include "server/console_api.hpp"
#include "server/previews.hpp"
#include "stowage/links/remote_links.hpp"
#include "stowage/service/service.hpp"
#include "support/test_server.hpp"

namespace stowage::testing {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

constexpr std::string_view kBoundary = "authzsweep0123456789";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

std::int64_t id_of(const HttpResponse& r) {
  if (r.status != 200) throw std::runtime_error("setup call failed: " + r.body);
  return r.json().at("id").to_number<std::int64_t>();
}

/// A multipart body of text fields and files, in order: {name, filename or "", bytes}.
struct Part {
  std::string name;
  std::string filename;
  std::string bytes;
};
std::string form(const std::vector<Part>& parts) {
  std::string body;
  for (const auto& p : parts) {
    body += "--" + std::string(kBoundary) + "\r\nContent-Disposition: form-data; name=\"" + p.name +
            "\"";
    if (!p.filename.empty()) body += "; filename=\"" + p.filename + "\"";
    body += "\r\n\r\n" + p.bytes + "\r\n";
  }
  return body + "--" + std::string(kBoundary) + "--\r\n";
}
std::string form_type() { return "multipart/form-data; boundary=" + std::string(kBoundary); }

/// One request of the sweep: a method (or GET route) with its ids filled in.
struct Call {
  std::string label;  ///< for messages
  std::string path;   ///< "/public/api/v3/<method>[?query]" or a GET route
  bool get = false;
  std::string body;  ///< JSON, or a multipart body
  std::string content_type = "application/json";
  /// Team B may get a 200 here: the method answers about the caller only (their teams, tokens,
  /// uploads), or reports per entry (links.import). A's data must still be absent.
  bool other_team_may_succeed = false;
  /// What every caller gets, whatever the token, for routes that do not take one: 200 for the
  /// public ones (the console's static pages, /healthz), 404 for paths the server does not
  /// serve, 403 for a preview URL whose signature is not the server's. 0: the usual rule.
  int every_caller = 0;
};

class AuthzSweep : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern = (fs::temp_directory_path() / "stowage-authz-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    TestServerSetup setup;
    setup.console = true;
    // Nothing about the machine a test runs on: a valid token is what counts.
    setup.environment["STOWAGE_METRICS_ACCESS"] = "token";
    server_ = new TestServer({}, std::chrono::milliseconds(0), std::move(setup));
    auto& catalog = server_->catalog();

    // Team A: a user who is not an administrator, in a team of their own.
    const auto alice = catalog.create_user("alice", false).value();
    team_a_ = catalog.create_team("SENTINEL-A-team-c41f", "").value().id;
    catalog.add_member(team_a_, alice.id, catalog::Role::Admin).value();
    auto token_a = catalog.create_token(alice.id, "SENTINEL-A-tokenname-0d2e").value();
    token_a_ = token_a.secret;
    token_a_id_ = token_a.info.id;
    auto revoked = catalog.create_token(alice.id, "SENTINEL-A-revoked-77aa").value();
    revoked_ = revoked.secret;
    catalog.revoke_token(revoked.info.id).value();
    // Team B: another user, another team.
    const auto bob = catalog.create_user("bob", false).value();
    team_b_ = catalog.create_team("bobs-team", "").value().id;
    catalog.add_member(team_b_, bob.id, catalog::Role::Admin).value();
    token_b_ = catalog.create_token(bob.id, "bob").value().secret;

    // Links: team A's folder behind a connection open to team A; team B's behind one open to
    // team B; and one with no `teams`, which only administrators may use.
    write_file(root_ / "a" / "SENTINEL-A-linked-5e1b.png", make_image(24, 16, "png", 91));
    write_file(root_ / "b" / "b.png", make_image(12, 12, "png", 92));
    write_file(root_ / "admin" / "x.png", make_image(10, 10, "png", 93));
    const std::string yaml = "a-conn:\n  provider: fs\n  path: " + (root_ / "a").string() +
                             "\n  storage_id: a-datasets\n  teams: [SENTINEL-A-team-c41f]\n"
                             "b-conn:\n  provider: fs\n  path: " +
                             (root_ / "b").string() + "\n  storage_id: b-datasets\n  teams: [" +
                             std::to_string(team_b_) + "]\nadmin-conn:\n  provider: fs\n  path: " +
                             (root_ / "admin").string() + "\n  storage_id: admin-datasets\n";
    server_->enable_links(links::RemoteLinks::parse(yaml, root_ / "remote_links.yml", {}).value());

    const HttpClient a = client(token_a_);
    const HttpClient b = client(token_b_);
    ws_a_ = id_of(a.call("workspaces.add", {{"teamId", team_a_}, {"name", "SENTINEL-A-ws-1b9d"}}));
    project_a_ = id_of(
        a.call("projects.add", {{"workspaceId", ws_a_}, {"name", "SENTINEL-A-project-88c2"}}));
    dataset_a_ = id_of(
        a.call("datasets.add", {{"projectId", project_a_}, {"name", "SENTINEL-A-dataset-4a07"}}));
    image_bytes_a_ = make_image(40, 30, "png", 90);
    hash_a_ = sdk_hash(image_bytes_a_);
    auto up = a.upload({{"0-file", "0", "image/png", image_bytes_a_}});
    ASSERT_EQ(up.status, 200) << up.body;
    auto added = a.call(
        "images.bulk.add",
        {{"datasetId", dataset_a_},
         {"images", json::array{{{"title", "SENTINEL-A-image-93e0.png"}, {"hash", hash_a_}},
                                {{"title", "SENTINEL-A-link-6d1c.png"}, {"link", kLinkA}}}}});
    ASSERT_EQ(added.status, 200) << added.body;
    const json::value answer = added.json();
    const auto& images = answer.as_array();
    image_a_ = images.at(0).at("id").to_number<std::int64_t>();
    linked_a_ = images.at(1).at("id").to_number<std::int64_t>();
    path_original_a_ = std::string(images.at(0).at("pathOriginal").as_string());

    // A video of team A.
    const fs::path clip = root_ / "clip.mkv";
    ASSERT_EQ(std::system(("ffmpeg -y -v error -f lavfi -i testsrc=size=64x48:rate=10 -t 1 "
                           "-c:v mpeg4 '" +
                           clip.string() + "'")
                              .c_str()),
              0);
    video_bytes_a_ = read_file(clip);
    video_hash_a_ = sdk_hash(video_bytes_a_);
    video_project_a_ = id_of(
        a.call("projects.add",
               {{"workspaceId", ws_a_}, {"name", "SENTINEL-A-videos-2c5f"}, {"type", "videos"}}));
    video_dataset_a_ = id_of(
        a.call("datasets.add", {{"projectId", video_project_a_}, {"name", "SENTINEL-A-vds-0b3a"}}));
    auto vup = a.post("/public/api/v3/videos.bulk.upload", form({{"0-file", "0", video_bytes_a_}}),
                      form_type());
    ASSERT_EQ(vup.status, 200) << vup.body;
    auto vadded =
        a.call("videos.bulk.add", {{"datasetId", video_dataset_a_},
                                   {"videos", json::array{{{"title", "SENTINEL-A-video-e7d1.mkv"},
                                                           {"hash", video_hash_a_}}}}});
    ASSERT_EQ(vadded.status, 200) << vadded.body;
    video_a_ = vadded.json().at(0).at("id").to_number<std::int64_t>();

    // A team file of team A.
    auto tf = a.post("/public/api/v3/file-storage.bulk.upload?teamId=" + std::to_string(team_a_),
                     form({{"name", "", "notes.txt"},
                           {"path", "", "/SENTINEL-A-dir-9f0e/"},
                           {"file", "notes.txt", std::string(kTeamFileBytes)}}),
                     form_type());
    ASSERT_EQ(tf.status, 200) << tf.body;

    // Team B's own objects, to mix with A's ids.
    const auto ws_b = id_of(b.call("workspaces.add", {{"teamId", team_b_}, {"name", "wb"}}));
    project_b_ = id_of(b.call("projects.add", {{"workspaceId", ws_b}, {"name", "pb"}}));
    dataset_b_ = id_of(b.call("datasets.add", {{"projectId", project_b_}, {"name", "db"}}));
    const auto vproject_b =
        id_of(b.call("projects.add", {{"workspaceId", ws_b}, {"name", "vb"}, {"type", "videos"}}));
    video_dataset_b_ = id_of(b.call("datasets.add", {{"projectId", vproject_b}, {"name", "vdb"}}));
    image_bytes_b_ = make_image(8, 8, "png", 94);
    ASSERT_EQ(b.upload({{"0-file", "0", "image/png", image_bytes_b_}}).status, 200);

    const std::string hex = service::Service::hash_base64_to_hex(hash_a_).value();
    sentinels_ = {"SENTINEL-A", hash_a_, hex, video_hash_a_,
                  service::Service::hash_base64_to_hex(video_hash_a_).value(), path_original_a_,
                  "a-datasets", std::string(kTeamFileBytes), token_a_, revoked_,
                  // 32 bytes from the middle of each of A's files: their content in any answer.
                  image_bytes_a_.substr(image_bytes_a_.size() / 2, 32),
                  video_bytes_a_.substr(video_bytes_a_.size() / 2, 32)};
  }

  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  static HttpClient client(const std::string& token) {
    return HttpClient(server_->base_url(), token);
  }

  /// The requests of one API method, with A's ids (and B's mixed in); empty for a method the
  /// sweep does not know, which fails the sweep: a new method needs its requests here.
  static std::vector<Call> calls_of(std::string_view method) {
    const std::string m(method);
    const std::string api = "/public/api/v3/" + m;
    auto post = [&](json::value body, bool may = false) {
      Call c;
      c.label = m + " " + json::serialize(body);
      c.path = api;
      c.body = json::serialize(body);
      c.other_team_may_succeed = may;
      return c;
    };
    auto upload = [&](std::string query, std::vector<Part> parts, bool may = false) {
      Call c;
      c.label = m + query;
      c.path = api + query;
      c.body = form(parts);
      c.content_type = form_type();
      c.other_team_may_succeed = may;
      return c;
    };
    const json::value image_b = {{"title", "x.png"}, {"hash", sdk_hash(image_bytes_b_)}};
    const std::string team = std::to_string(team_a_);
    std::map<std::string, std::vector<Call>, std::less<>> table{
        {"instance.version", {post(json::object{}, true)}},
        {"teams.list", {post(json::object{}, true)}},
        {"teams.info", {post({{"id", team_a_}})}},
        {"workspaces.list", {post({{"teamId", team_a_}})}},
        {"workspaces.info", {post({{"id", ws_a_}})}},
        {"workspaces.add", {post({{"teamId", team_a_}, {"name", "x"}})}},
        {"projects.add", {post({{"workspaceId", ws_a_}, {"name", "x"}})}},
        {"projects.info", {post({{"id", project_a_}}), post({{"id", video_project_a_}})}},
        {"projects.list",
         {post({{"workspaceId", ws_a_}}), post({{"groupId", team_a_}}),
          post({{"teamId", team_a_}})}},
        {"datasets.add",
         {post({{"projectId", project_a_}, {"name", "x"}}),
          post({{"projectId", project_b_}, {"name", "x"}, {"parentId", dataset_a_}})}},
        {"datasets.info", {post({{"id", dataset_a_}})}},
        {"datasets.list",
         {post({{"projectId", project_a_}}),
          post({{"projectId", project_a_}, {"recursive", true}})}},
        {"images.internal.hashes.list", {post(json::array{hash_a_, video_hash_a_}, true)}},
        {"images.bulk.add",
         {post({{"datasetId", dataset_a_}, {"images", json::array{image_b}}}),
          post({{"datasetId", dataset_b_},
                {"images", json::array{{{"title", "x.png"}, {"hash", hash_a_}}}}}),
          post({{"datasetId", dataset_b_},
                {"images", json::array{{{"title", "x.png"}, {"link", kLinkA}}}}})}},
        {"images.list", {post({{"datasetId", dataset_a_}}), post({{"projectId", project_a_}})}},
        {"images.info", {post({{"id", image_a_}}), post({{"id", linked_a_}})}},
        {"images.download", {post({{"id", image_a_}}), post({{"id", linked_a_}})}},
        {"images.bulk.download",
         {post({{"datasetId", dataset_a_}, {"imageIds", json::array{image_a_, linked_a_}}}),
          post({{"datasetId", dataset_b_}, {"imageIds", json::array{image_a_}}})}},
        {"images.bulk.remove", {post({{"imageIds", json::array{image_a_, linked_a_}}})}},
        {"images.update.links",
         {post({{"images", json::array{{{"id", image_a_}, {"link", kLinkB}}}},
                {"checkExists", false}})}},
        {"videos.bulk.add",
         {post({{"datasetId", video_dataset_a_},
                {"videos", json::array{{{"title", "x.mkv"}, {"link", kLinkB}}}}}),
          post({{"datasetId", video_dataset_b_},
                {"videos", json::array{{{"title", "x.mkv"}, {"hash", video_hash_a_}}}}})}},
        {"videos.list",
         {post({{"datasetId", video_dataset_a_}}), post({{"projectId", video_project_a_}})}},
        {"videos.info", {post({{"id", video_a_}})}},
        {"videos.download", {post({{"id", video_a_}})}},
        {"videos.bulk.remove",
         {post({{"videoIds", json::array{video_a_}}}), post({{"ids", json::array{video_a_}}})}},
        {"videos.update.links",
         {post({{"videos", json::array{{{"id", video_a_}, {"link", kLinkB}}}},
                {"checkExists", false}})}},
        {"import-storage.internal.meta.list", {post({{"hashes", json::array{video_hash_a_}}})}},
        {"remote-storage.list",
         {post({{"path", "fs://a-datasets/"}}), post({{"path", "fs://admin-datasets/"}})}},
        {"remote-storage.exists",
         {post({{"path", kLinkA}}), post({{"path", "fs://admin-datasets/x.png"}})}},
        {"remote-storage.stat", {post({{"path", kLinkA}})}},
        {"remote-storage.download", {post({{"link", kLinkA}})}},
        {"remote-storage.available_providers", {post(json::object{}, true)}},
        {"remote-storage.supported_providers", {post(json::object{}, true)}},
        {"remote-storage.upload",
         {upload("", {{"path", "", "fs://a-datasets/new.png"}, {"file", "new.png", "xx"}}),
          upload("", {{"path", "", "fs://admin-datasets/new.png"}, {"file", "new.png", "xx"}})}},
        {"images.bulk.upload", {upload("", {{"0-file", "0", image_bytes_b_}}, true)}},
        {"videos.bulk.upload", {upload("", {{"0-file", "0", image_bytes_b_}}, true)}},
        // Into B's own dataset, each line reports its failure (200).
        {"links.import",
         {post({{"datasetId", dataset_a_}, {"links", kLinkB}}),
          post({{"datasetId", dataset_b_}, {"links", kLinkA}}, true)}},
        {"links.sync",
         {post({{"datasetId", dataset_a_}, {"prefix", "fs://b-datasets/"}}),
          post({{"datasetId", dataset_b_}, {"prefix", "fs://a-datasets/"}})}},
        {"file-storage.list", {post({{"teamId", team_a_}, {"path", "/"}})}},
        {"file-storage.info", {post({{"teamId", team_a_}, {"path", kTeamFile}})}},
        {"file-storage.exists", {post({{"teamId", team_a_}, {"path", kTeamFile}})}},
        {"file-storage.download", {post({{"teamId", team_a_}, {"path", kTeamFile}})}},
        {"file-storage.remove", {post({{"teamId", team_a_}, {"path", kTeamFile}})}},
        {"file-storage.bulk.remove",
         {post({{"teamId", team_a_}, {"paths", json::array{kTeamFile}}})}},
        {"file-storage.upload",
         {upload("?teamId=" + team, {{"name", "", "notes.txt"},
                                     {"path", "", "/SENTINEL-A-dir-9f0e/"},
                                     {"file", "notes.txt", "overwritten"}})}},
        {"file-storage.bulk.upload",
         {upload("?teamId=" + team, {{"name", "", "new.txt"},
                                     {"path", "", "/SENTINEL-A-dir-9f0e/"},
                                     {"file", "new.txt", "new"}})}},
        {"console.session", {post(json::object{}, true)}},
        {"console.storage", {post(json::object{})}},
        {"console.caches", {post(json::object{}, true)}},
        {"console.tokens.list", {post(json::object{}, true)}},
        {"console.tokens.create", {post({{"name", "b2"}}, true)}},
        {"console.tokens.revoke", {post({{"id", token_a_id_}})}},
        {"console.migrations.start",
         {post({{"projectId", project_a_}, {"to", "fs://a-datasets/m/"}, {"dryRun", true}})}},
        {"console.migrations.status", {post({{"id", "1"}})}},
        {"console.migrations.list", {post(json::object{})}},
    };
    const auto it = table.find(method);
    if (it == table.end()) return {};
    std::vector<Call> out = it->second;
    // The same requests as GET with a query string, where the body is flat (the API takes both;
    // console.* and links.sync read JSON bodies only).
    const bool json_only = m.starts_with("console.") || m == "links.sync";
    for (const Call& c : it->second) {
      if (json_only) break;
      if (c.content_type != "application/json") continue;
      const auto body = json::parse(c.body);
      if (!body.is_object()) continue;
      std::string query;
      bool flat = true;
      for (const auto& [k, v] : body.as_object()) {
        std::string text;
        if (v.is_string()) {
          text = std::string(v.as_string());
        } else if (v.is_int64() || v.is_bool()) {
          text = json::serialize(v);
        } else {
          flat = false;
          break;
        }
        query += (query.empty() ? "?" : "&") + std::string(k) + "=" + text;
      }
      if (!flat) continue;
      Call g = c;
      g.get = true;
      g.path = api + query;
      g.body.clear();
      g.label = "GET " + m + query;
      out.push_back(std::move(g));
    }
    return out;
  }

  /// Every GET route outside the API methods, with A's objects.
  static std::vector<Call> routes() {
    const std::string preview(server::kSdkPreviewPrefix);
    auto route = [](std::string path, bool may = false, int every_caller = 0) {
      Call c;
      c.label = "GET " + path;
      c.path = std::move(path);
      c.get = true;
      c.other_team_may_succeed = may;
      c.every_caller = every_caller;
      return c;
    };
    const std::string linked = std::string(server::kLinkedImageSource) + std::to_string(linked_a_);
    const std::string frame = std::string(server::kVideoFrameSource) + "5/" +
                              std::string(server::kVideoProcessingPrefix) +
                              std::to_string(video_a_);
    return {
        route(preview + path_original_a_),
        route(preview + linked),
        route(preview + frame),
        // A signature that is not the server's: refused whatever the token (a signed URL is
        // its own credential).
        route(preview + path_original_a_ + "?expires=9999999999&signature=00ff", false, 403),
        route(preview + linked + "?expires=9999999999&signature=00ff", false, 403),
        // The image's fullStorageUrl and the linked image's pathOriginal, asked directly: not
        // served (they are preview sources), for anyone.
        route(path_original_a_, false, 404),
        route(linked, false, 404),
        route("/metrics", true),
        route("/healthz", true, 200),
        route("/", true, 200),
        route("/console/app.js", true, 200),
    };
  }

  static void check(const Call& call, const std::string& caller, const std::string& token,
                    bool other_team, std::size_t& cells) {
    ++cells;
    const HttpClient c = client(token);
    HttpResponse r =
        call.get ? c.get(call.path, {}) : c.post(call.path, call.body, call.content_type);
    ASSERT_FALSE(r.transport_error) << call.label << " as " << caller << ": " << r.error;
    const std::string where = call.label + " as " + caller + " -> " + std::to_string(r.status) +
                              " " + r.body.substr(0, 300);
    if (call.every_caller != 0) {
      EXPECT_EQ(r.status, call.every_caller) << where;
    } else if (!other_team) {
      EXPECT_EQ(r.status, 401) << where;
    } else if (call.other_team_may_succeed) {
      EXPECT_TRUE(r.status == 200 || r.status == 403 || r.status == 404) << where;
    } else {
      EXPECT_TRUE(r.status == 403 || r.status == 404) << where;
    }
    std::string everything = r.body;
    for (const auto& [name, value] : r.headers) everything += "\n" + name + ": " + value;
    for (const std::string& s : sentinels_) {
      // What the caller sent may come back (an error naming the hash or link asked for): that
      // tells them nothing they did not know.
      if (call.path.find(s) != std::string::npos || call.body.find(s) != std::string::npos) {
        continue;
      }
      EXPECT_EQ(everything.find(s), std::string::npos)
          << where << "\n  holds team A's data: " << s.substr(0, 60);
    }
  }

  static constexpr const char* kLinkA = "fs://a-datasets/SENTINEL-A-linked-5e1b.png";
  static constexpr const char* kLinkB = "fs://b-datasets/b.png";
  static constexpr const char* kTeamFile = "/SENTINEL-A-dir-9f0e/notes.txt";
  static constexpr std::string_view kTeamFileBytes = "SENTINEL-A-file-bytes-3c8a";

  static inline fs::path root_;
  static inline TestServer* server_ = nullptr;
  static inline std::int64_t team_a_ = 0, team_b_ = 0, ws_a_ = 0, project_a_ = 0, dataset_a_ = 0,
                             image_a_ = 0, linked_a_ = 0, video_project_a_ = 0,
                             video_dataset_a_ = 0, video_a_ = 0, token_a_id_ = 0, project_b_ = 0,
                             dataset_b_ = 0, video_dataset_b_ = 0;
  static inline std::string token_a_, revoked_, token_b_, hash_a_, video_hash_a_, image_bytes_a_,
      image_bytes_b_, video_bytes_a_, path_original_a_;
  static inline std::vector<std::string> sentinels_;
};

/// Reads that change nothing, for the owner's control run: their method names end so.
bool is_read(std::string_view label) {
  const std::string_view method = label.substr(0, label.find_first_of(" ?"));
  for (std::string_view end : {".info", ".list", ".download", ".exists", ".stat", "hashes.list",
                               "meta.list", "available_providers"}) {
    if (method.ends_with(end) && !method.starts_with("console.")) return true;
  }
  return false;
}

TEST_F(AuthzSweep, TeamAsOwnReadsOfTheSweepSucceed) {
  // The control: the requests the others are refused are well-formed, since team A gets its
  // data with them (so a 403 or 404 above is the refusal, not a malformed request).
  const HttpClient a = client(token_a_);
  std::size_t reads = 0;
  for (std::string_view method : server::Api::methods()) {
    for (const Call& call : calls_of(method)) {
      if (!is_read(call.label) || call.body.find("admin-datasets") != std::string::npos ||
          call.path.find("admin-datasets") != std::string::npos ||
          call.body.find("\"datasetId\":" + std::to_string(dataset_b_)) != std::string::npos) {
        continue;
      }
      ++reads;
      HttpResponse r =
          call.get ? a.get(call.path, {}) : a.post(call.path, call.body, call.content_type);
      EXPECT_EQ(r.status, 200) << call.label << " as team A -> " << r.body.substr(0, 300);
    }
  }
  EXPECT_GE(reads, 30u);  // 34 when written
}

TEST_F(AuthzSweep, EveryMethodAndRouteRefusesOtherCallersAndHoldsNoneOfTheirData) {
  std::vector<std::string_view> methods = server::Api::methods();
  const auto console = server::ConsoleApi::methods();
  methods.insert(methods.end(), console.begin(), console.end());
  ASSERT_GT(methods.size(), 50u);

  const std::vector<std::pair<std::string, std::string>> callers = {
      {"no token", ""},
      {"a wrong token", "stowage-not-a-token-0000000000000000"},
      {"a revoked token of team A", revoked_},
      {"team B's token", token_b_}};
  std::size_t requests = 0, cells = 0;
  for (std::string_view method : methods) {
    const auto calls = calls_of(method);
    EXPECT_FALSE(calls.empty()) << "the sweep has no request for API method '" << method
                                << "': add its ids to calls_of()";
    requests += calls.size();
    for (const Call& call : calls) {
      for (const auto& [caller, token] : callers) {
        check(call, caller, token, token == token_b_, cells);
      }
    }
  }
  const auto extra = routes();
  requests += extra.size();
  for (const Call& call : extra) {
    for (const auto& [caller, token] : callers)
      check(call, caller, token, token == token_b_, cells);
  }
  std::printf(
      "authorization sweep: %zu methods + %zu GET routes, %zu requests (ids filled) x "
      "%zu callers = %zu cells\n",
      methods.size(), extra.size(), requests, callers.size(), cells);

  // Team A still has everything, unchanged: no refused call changed anything.
  const HttpClient a = client(token_a_);
  auto download = a.call("images.download", {{"id", image_a_}});
  EXPECT_EQ(download.status, 200);
  EXPECT_EQ(download.body, image_bytes_a_);
  EXPECT_EQ(a.call("images.info", {{"id", linked_a_}}).status, 200);
  EXPECT_EQ(a.call("videos.info", {{"id", video_a_}}).status, 200);
  auto file = a.post("/public/api/v3/file-storage.download",
                     json::serialize(json::object{{"teamId", team_a_}, {"path", kTeamFile}}),
                     "application/json");
  EXPECT_EQ(file.body, kTeamFileBytes);
  auto listed = a.call("images.list", {{"datasetId", dataset_a_}});
  EXPECT_EQ(listed.json().at("total").to_number<int>(), 2);
  auto tokens = a.call("console.tokens.list", json::object{});
  EXPECT_NE(tokens.body.find("SENTINEL-A-tokenname"), std::string::npos) << tokens.body;
  EXPECT_EQ(a.call("file-storage.list", {{"teamId", team_a_}, {"path", "/"}}).status, 200);
}

TEST_F(AuthzSweep, TheSameBytesUploadedByAnotherTeamBecomeItsOwnItemWithoutRevealingAs) {
  const HttpClient b = client(token_b_);
  // Knowing A's hash says nothing: not listed as existing, not addable, no video metadata.
  auto known = b.post("/public/api/v3/images.internal.hashes.list",
                      json::serialize(json::array{hash_a_}), "application/json");
  ASSERT_EQ(known.status, 200) << known.body;
  EXPECT_EQ(known.json(), json::array{});
  auto by_hash =
      b.call("images.bulk.add", {{"datasetId", dataset_b_},
                                 {"images", json::array{{{"title", "a.png"}, {"hash", hash_a_}}}}});
  EXPECT_EQ(by_hash.status, 404) << by_hash.body;
  // Uploading the same bytes works, and makes B's own item of them (one blob for both).
  auto up = b.upload({{"0-file", "0", "image/png", image_bytes_a_}});
  ASSERT_EQ(up.status, 200) << up.body;
  EXPECT_EQ(up.json().at(0).at("hash").as_string(), hash_a_);
  auto added = b.call("images.bulk.add",
                      {{"datasetId", dataset_b_},
                       {"images", json::array{{{"title", "mine.png"}, {"hash", hash_a_}}}}});
  ASSERT_EQ(added.status, 200) << added.body;
  const auto own = added.json().at(0).at("id").to_number<std::int64_t>();
  EXPECT_NE(own, image_a_);
  EXPECT_EQ(server_->objects_with_hash(hash_a_), 1u);
  auto bytes = b.call("images.download", {{"id", own}});
  EXPECT_EQ(bytes.body, image_bytes_a_);
  // B's item is B's; A's is still refused, and B's answers name none of A's.
  EXPECT_EQ(b.call("images.info", {{"id", image_a_}}).status, 403);
  auto info = b.call("images.info", {{"id", own}});
  EXPECT_EQ(info.json().at("datasetId").to_number<std::int64_t>(), dataset_b_);
  EXPECT_EQ(info.body.find("SENTINEL-A"), std::string::npos) << info.body;
  EXPECT_EQ(b.call("images.bulk.remove", {{"imageIds", json::array{own}}}).status, 200);
  EXPECT_EQ(client(token_a_).call("images.download", {{"id", image_a_}}).body, image_bytes_a_);
}

TEST_F(AuthzSweep, AConnectionServesTheTeamsItListsAndAdministrators) {
  // B's connection lists team B (by id): B may use it, A may not.
  const HttpClient a = client(token_a_);
  const HttpClient b = client(token_b_);
  EXPECT_EQ(b.call("remote-storage.exists", {{"path", kLinkB}}).status, 200);
  EXPECT_EQ(a.call("remote-storage.exists", {{"path", kLinkB}}).status, 403);
  // A's lists team A (by name).
  EXPECT_EQ(a.call("remote-storage.exists", {{"path", kLinkA}}).status, 200);
  // A connection without `teams` is the administrators'.
  const HttpClient admin = server_->client();
  EXPECT_EQ(a.call("remote-storage.exists", {{"path", "fs://admin-datasets/x.png"}}).status, 403);
  EXPECT_EQ(admin.call("remote-storage.exists", {{"path", "fs://admin-datasets/x.png"}}).status,
            200);
  // Providers list only the buckets the caller may use.
  auto providers = b.call("remote-storage.available_providers", json::object{}).body;
  EXPECT_NE(providers.find("b-datasets"), std::string::npos) << providers;
  EXPECT_EQ(providers.find("admin-datasets"), std::string::npos) << providers;
  auto all = admin.call("remote-storage.available_providers", json::object{}).body;
  EXPECT_NE(all.find("admin-datasets"), std::string::npos) << all;
}

TEST_F(AuthzSweep, MetricsNeedAValidTokenWhenConfiguredSo) {
  const HttpClient anonymous = client("");
  EXPECT_EQ(anonymous.get("/metrics").status, 401);
  EXPECT_EQ(client(revoked_).get("/metrics").status, 401);
  auto ok = client(token_b_).get("/metrics");
  EXPECT_EQ(ok.status, 200);
  EXPECT_NE(ok.body.find("stowage_request_duration_seconds"), std::string::npos);
}

TEST(MetricsAccess, DefaultIsLoopbackOrAValidToken) {
  using config::MetricsAccess;
  EXPECT_TRUE(server::metrics_allowed(MetricsAccess::Loopback, true, false));
  EXPECT_TRUE(server::metrics_allowed(MetricsAccess::Loopback, false, true));
  EXPECT_FALSE(server::metrics_allowed(MetricsAccess::Loopback, false, false));
  EXPECT_FALSE(server::metrics_allowed(MetricsAccess::Token, true, false));
  EXPECT_TRUE(server::metrics_allowed(MetricsAccess::Token, false, true));
  EXPECT_TRUE(server::metrics_allowed(MetricsAccess::Open, false, false));
  // A test server with the default configuration answers a loopback client without a token.
  TestServer server;
  EXPECT_EQ(HttpClient(server.base_url(), "").get("/metrics").status, 200);
}

}  // namespace
}  // namespace stowage::testing
