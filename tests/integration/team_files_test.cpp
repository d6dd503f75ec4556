// SPDX-License-Identifier: Apache-2.0
// Team files (the SDK's api.file, issue 17) over real HTTP: a Stowage server on an ephemeral
// port whose store is the local disk, or the provider STOWAGE_TEST_STORE_ENV names (radosgw,
// Azurite, the GCS test server). Requests are built as supervisely/api/file_api.py builds them:
// upload_bulk's multipart (name, path, file), list / exists / get_info_by_path over
// file-storage.list, download with Range, remove of a file and of a folder.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include <set>

#include <cstring>
#include <fstream>
#include <random>

#include "stowage/io/checksum.hpp"
#include "support/http_client.hpp"
#include "support/test_server.hpp"

namespace stowage::testing {
namespace {

namespace json = boost::json;

/// requests_toolbelt's MultipartEncoder body for upload_bulk: per file, the `name` and `path`
/// (the destination folder, ending in '/') fields, then the `file` part.
struct SdkFile {
  std::string dst;  ///< "/models/run1/weights.pt"
  std::string bytes;
  std::string content_type = "application/octet-stream";
};

std::string sdk_upload_body(const std::vector<SdkFile>& files, const std::string& boundary) {
  std::string body;
  for (const auto& f : files) {
    const auto slash = f.dst.rfind('/');
    const std::string name = f.dst.substr(slash + 1);
    const std::string dir = f.dst.substr(0, slash + 1);
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n" + name +
            "\r\n";
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n" + dir +
            "\r\n";
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" +
            name + "\"\r\nContent-Type: " + f.content_type + "\r\n\r\n" + f.bytes + "\r\n";
  }
  body += "--" + boundary + "--\r\n";
  return body;
}

/// Bytes that are the same for a given seed: a cheap generator, so that gigabytes can be made
/// (and checked) on the fly without holding them.
class ByteStream {
 public:
  explicit ByteStream(std::uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  void fill(char* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      if (left_ == 0) {
        state_ ^= state_ << 13;
        state_ ^= state_ >> 7;
        state_ ^= state_ << 17;
        word_ = state_;
        left_ = 8;
      }
      out[i] = static_cast<char>(word_ & 0xff);
      word_ >>= 8;
      --left_;
    }
  }

 private:
  std::uint64_t state_;
  std::uint64_t word_ = 0;
  int left_ = 0;
};

std::string hex(const io::Sha256::Digest& d) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

/// The process's peak resident memory since the last reset_peak_rss(), in bytes (VmHWM).
std::uint64_t peak_rss() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

class TeamFilesTest : public ::testing::Test {
 protected:
  TestServer server;
  HttpClient api = server.client();

  // The provider's private bucket is shared with other runs: start and end with no team files.
  void SetUp() override {
    clear_team_files();
    // Other tests leave objects in the shared private bucket: only new ones are this test's.
    const auto before = all_private_keys();
    existing_.insert(before.begin(), before.end());
  }
  std::set<std::string> existing_;
  void TearDown() override { clear_team_files(); }
  void clear_team_files() {
    for (;;) {
      auto page = server.store().list({private_bucket(), "teams/"}, {});
      if (!page || page->objects.empty()) return;
      for (const auto& o : page->objects) (void)server.store().remove(o.path);
    }
  }

  std::int64_t team_of(const HttpClient& client) {
    auto teams = client.call("teams.list", {{"filter", json::array{}}});
    EXPECT_EQ(teams.status, 200) << teams.body;
    return teams.json().at("entities").at(0).at("id").to_number<std::int64_t>();
  }

  HttpResponse upload(const HttpClient& client, std::int64_t team,
                      const std::vector<SdkFile>& files, bool bulk = true) {
    const std::string boundary = "a0b1c2d3e4f5";
    return client.post("/public/api/v3/file-storage." + std::string(bulk ? "bulk." : "") +
                           "upload?teamId=" + std::to_string(team),
                       sdk_upload_body(files, boundary),
                       "multipart/form-data; boundary=" + boundary);
  }

  /// The SDK's list(team, path, recursive): file-storage.list, the answer an array.
  json::array list(std::int64_t team, std::string path, bool recursive = true) {
    if (!path.ends_with('/') && !recursive) path += "/";  // as the SDK does
    auto r = api.call("file-storage.list",
                      {{"teamId", team}, {"path", path}, {"recursive", recursive}});
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? r.json().as_array() : json::array{};
  }
  /// The SDK's exists(): list(path) and look for an entry with that very path.
  bool exists(std::int64_t team, const std::string& path) {
    for (const auto& e : list(team, path)) {
      if (e.at("path").as_string() == path) return true;
    }
    return false;
  }
  /// The SDK's get_info_by_path(): the same, returning the entry.
  std::optional<json::object> info_by_path(std::int64_t team, const std::string& path) {
    for (const auto& e : list(team, path)) {
      if (e.at("path").as_string() == path) return e.as_object();
    }
    return std::nullopt;
  }
  HttpResponse download(const HttpClient& client, std::int64_t team, const std::string& path,
                        std::vector<std::pair<std::string, std::string>> headers = {}) {
    return client.post("/public/api/v3/file-storage.download",
                       json::serialize(json::object{{"teamId", team}, {"path", path}}),
                       "application/json", std::move(headers));
  }

  std::string private_bucket() {
    std::string b = server.public_bucket();
    return b.substr(0, b.size() - std::string("-public").size()) + "-private";
  }
  /// Every key in the private bucket.
  /// The private bucket's keys that this test made (none outside the team's root, we hope).
  std::vector<std::string> private_keys() {
    std::vector<std::string> keys;
    for (auto& key : all_private_keys()) {
      if (!existing_.contains(key)) keys.push_back(std::move(key));
    }
    return keys;
  }
  std::vector<std::string> all_private_keys() {
    std::vector<std::string> keys;
    store::ListOptions o;
    for (;;) {
      auto page = server.store().list({private_bucket(), ""}, o);
      if (!page) break;
      for (const auto& obj : page->objects) keys.push_back(obj.path.key);
      if (page->next_page_token.empty()) break;
      o.page_token = page->next_page_token;
    }
    return keys;
  }
};

TEST_F(TeamFilesTest, SmallFilesGoUpAndDownAsTheSdkSendsThem) {
  const auto team = team_of(api);
  const std::string config = R"({"lr": 0.001, "epochs": 30})";
  std::string weights(300 * 1024 + 7, '\0');
  ByteStream(1).fill(weights.data(), weights.size());
  auto up = upload(api, team,
                   {{"/models/run1/config.json", config, "application/json"},
                    {"/models/run1/weights.pt", weights},
                    {"/notes.txt", "hello", "text/plain"}});
  ASSERT_EQ(up.status, 200) << up.body;
  auto answered = up.json().as_array();
  ASSERT_EQ(answered.size(), 3u);
  EXPECT_EQ(answered[0].at("path").as_string(), "/models/run1/config.json");
  EXPECT_EQ(answered[1].at("meta").at("size").to_number<std::uint64_t>(), weights.size());

  // list(recursive=True) of a folder: every file beneath it.
  std::set<std::string> paths;
  for (const auto& e : list(team, "/models/")) paths.insert(std::string(e.at("path").as_string()));
  EXPECT_EQ(paths, (std::set<std::string>{"/models/run1/config.json", "/models/run1/weights.pt"}));
  // Not recursive: the root's own file and its folder.
  std::map<std::string, std::string> top;
  for (const auto& e : list(team, "/", false)) {
    top[std::string(e.at("path").as_string())] = std::string(e.at("type").as_string());
  }
  EXPECT_EQ(top, (std::map<std::string, std::string>{{"/models/", "folder"},
                                                     {"/notes.txt", "file"}}));

  // exists / get_info_by_path as the SDK answers them.
  EXPECT_TRUE(exists(team, "/models/run1/weights.pt"));
  EXPECT_FALSE(exists(team, "/models/run1/weights"));
  EXPECT_FALSE(exists(team, "/models/run2/weights.pt"));
  auto info = info_by_path(team, "/models/run1/config.json");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->at("meta").at("mime").as_string(), "application/json");
  EXPECT_EQ(info->at("meta").at("ext").as_string(), "json");
  EXPECT_EQ(info->at("meta").at("size").to_number<std::uint64_t>(), config.size());
  EXPECT_EQ(info->at("name").as_string(), "config.json");
  EXPECT_EQ(info->at("teamId").to_number<std::int64_t>(), team);
  auto by_path = api.call("file-storage.info", {{"teamId", team}, {"path", "/notes.txt"}});
  ASSERT_EQ(by_path.status, 200) << by_path.body;
  EXPECT_EQ(by_path.json().at("size").to_number<std::uint64_t>(), 5u);

  // download: whole, and with Range (the SDK's _download_async sends bytes=a-b).
  auto whole = download(api, team, "/models/run1/weights.pt");
  ASSERT_EQ(whole.status, 200);
  EXPECT_TRUE(whole.body == weights);
  auto part = download(api, team, "/models/run1/weights.pt", {{"Range", "bytes=1000-1999"}});
  ASSERT_EQ(part.status, 206);
  EXPECT_EQ(part.body, weights.substr(1000, 1000));
  EXPECT_EQ(part.header("content-range"),
            "bytes 1000-1999/" + std::to_string(weights.size()));
  auto tail = download(api, team, "/notes.txt", {{"Range", "bytes=3-"}});
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(tail.body, "lo");
  EXPECT_EQ(download(api, team, "/nothing.bin").status, 404);

  // file-storage.upload (the single-file form) replaces a file whole.
  auto again = upload(api, team, {{"/notes.txt", "bye", "text/plain"}}, false);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json().at("path").as_string(), "/notes.txt");
  EXPECT_EQ(download(api, team, "/notes.txt").body, "bye");

  // remove: a file, then a folder with everything in it.
  ASSERT_EQ(api.call("file-storage.remove", {{"teamId", team}, {"path", "/notes.txt"}}).status,
            200);
  EXPECT_FALSE(exists(team, "/notes.txt"));
  EXPECT_EQ(api.call("file-storage.remove", {{"teamId", team}, {"path", "/notes.txt"}}).status,
            404);
  ASSERT_EQ(api.call("file-storage.remove", {{"teamId", team}, {"path", "/models/"}}).status,
            200);
  EXPECT_TRUE(list(team, "/", true).empty());
  EXPECT_TRUE(private_keys().empty());
}

TEST_F(TeamFilesTest, AFileAndAFolderNeverShareAName) {
  const auto team = team_of(api);
  ASSERT_EQ(upload(api, team, {{"/a/b.bin", "x"}}).status, 200);
  // A file where a folder is, or beneath a file: 409, and nothing changed.
  EXPECT_EQ(upload(api, team, {{"/a", "y"}}).status, 409);
  EXPECT_EQ(upload(api, team, {{"/a/b.bin/c", "z"}}).status, 409);
  EXPECT_EQ(download(api, team, "/a/b.bin").body, "x");
  EXPECT_EQ(private_keys().size(), 1u);
}

TEST_F(TeamFilesTest, AnotherTeamsTokenIsRefused) {
  const auto team = team_of(api);
  ASSERT_EQ(upload(api, team, {{"/secret/model.onnx", "weights of team one"}}).status, 200);
  const HttpClient outsider = api.with_token(server.make_outsider_token());
  const auto other = team_of(outsider);
  ASSERT_NE(other, team);

  // Every method, named with the first team's id: 403, and nothing is read or changed.
  EXPECT_EQ(outsider.call("file-storage.list", {{"teamId", team}, {"path", "/"}}).status, 403);
  EXPECT_EQ(outsider.call("file-storage.info", {{"teamId", team}, {"path", "/secret/model.onnx"}})
                .status,
            403);
  auto stolen = download(outsider, team, "/secret/model.onnx");
  EXPECT_EQ(stolen.status, 403);
  EXPECT_EQ(stolen.body.find("weights of team one"), std::string::npos);
  EXPECT_EQ(upload(outsider, team, {{"/secret/model.onnx", "overwritten"}}).status, 403);
  EXPECT_EQ(outsider.call("file-storage.remove", {{"teamId", team}, {"path", "/secret/"}}).status,
            403);
  EXPECT_EQ(download(api, team, "/secret/model.onnx").body, "weights of team one");

  // The same path in the other team is another file; neither team sees the other's.
  ASSERT_EQ(upload(outsider, other, {{"/secret/model.onnx", "team two"}}).status, 200);
  EXPECT_EQ(download(outsider, other, "/secret/model.onnx").body, "team two");
  EXPECT_EQ(download(api, team, "/secret/model.onnx").body, "weights of team one");
  EXPECT_EQ(download(api, other, "/secret/model.onnx").status, 403);
  // No token at all: 401.
  EXPECT_EQ(api.with_token("").call("file-storage.list", {{"teamId", team}, {"path", "/"}}).status,
            401);
}

TEST_F(TeamFilesTest, HostilePathsAreRefusedWith4xx) {
  const auto team = team_of(api);
  ASSERT_EQ(upload(api, team, {{"/ok.txt", "fine"}}).status, 200);
  const std::vector<std::string> hostile = {
      "/../escape.txt",      "/a/../../escape.txt", "..",
      "/a/./b.txt",          "/a//b.txt",           std::string("/a\0b.txt", 8),
      "/a\\..\\..\\b.txt",   "/a/\x01.txt",         "/\xc0\xae\xc0\xae/x.txt",
      "/" + std::string(1000, 'a'), "",
  };
  for (const auto& path : hostile) {
    SCOPED_TRACE(json::serialize(json::value(path)));
    for (const std::string method : {"file-storage.list", "file-storage.info",
                                     "file-storage.download", "file-storage.remove"}) {
      auto r = api.call(method, {{"teamId", team}, {"path", path}});
      EXPECT_GE(r.status, 400) << method << ": " << r.body;
      EXPECT_LT(r.status, 500) << method << ": " << r.body;
    }
    // An upload whose destination folder or name is hostile (an empty folder is the root).
    if (path.empty()) continue;
    const std::string boundary = "zz9";
    for (const auto& [dir, name] : std::vector<std::pair<std::string, std::string>>{
             {path, "x.bin"}, {"/", path}, {"/sub/", "../../../x.bin"}}) {
      std::string body = "--" + boundary +
                         "\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n" + name +
                         "\r\n--" + boundary +
                         "\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n" + dir +
                         "\r\n--" + boundary +
                         "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n"
                         "\r\nbytes\r\n--" +
                         boundary + "--\r\n";
      auto r = api.post("/public/api/v3/file-storage.bulk.upload?teamId=" + std::to_string(team),
                        body, "multipart/form-data; boundary=" + boundary);
      EXPECT_GE(r.status, 400) << r.body;
      EXPECT_LT(r.status, 500) << r.body;
    }
  }
  // Nothing was written anywhere but the one good file, inside the team's root.
  const auto keys = private_keys();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0], "teams/" + std::to_string(team) + "/files/ok.txt");
  EXPECT_EQ(download(api, team, "/ok.txt").body, "fine");
}

// ---- A multi-GiB file, streamed both ways with the server's memory flat --------------------

struct StreamUpload {
  std::string head, tail;
  std::uint64_t size = 0;
  std::uint64_t offset = 0;  // across head + data + tail
  ByteStream bytes{7};
  io::Sha256 hash;
};

size_t read_stream(char* out, size_t size, size_t n, void* user) {
  auto* up = static_cast<StreamUpload*>(user);
  const std::uint64_t total = up->head.size() + up->size + up->tail.size();
  std::size_t room = size * n, done = 0;
  while (room > 0 && up->offset < total) {
    if (up->offset < up->head.size()) {
      const std::size_t k = std::min<std::uint64_t>(room, up->head.size() - up->offset);
      std::memcpy(out + done, up->head.data() + up->offset, k);
      done += k, room -= k, up->offset += k;
    } else if (up->offset < up->head.size() + up->size) {
      const std::size_t k =
          std::min<std::uint64_t>(room, up->head.size() + up->size - up->offset);
      up->bytes.fill(out + done, k);
      up->hash.update(std::string_view(out + done, k));
      done += k, room -= k, up->offset += k;
    } else {
      const std::uint64_t at = up->offset - up->head.size() - up->size;
      const std::size_t k = std::min<std::uint64_t>(room, up->tail.size() - at);
      std::memcpy(out + done, up->tail.data() + at, k);
      done += k, room -= k, up->offset += k;
    }
  }
  return done;
}

struct StreamDownload {
  std::uint64_t size = 0;
  io::Sha256 hash;
};
size_t write_stream(char* data, size_t size, size_t n, void* user) {
  auto* down = static_cast<StreamDownload*>(user);
  down->hash.update(std::string_view(data, size * n));
  down->size += size * n;
  return size * n;
}

TEST_F(TeamFilesTest, AMultiGibFileStreamsBothWaysWithFlatMemory) {
  // 2 GiB and a bit on local disk. A remote test server shares its room with every other test
  // (radosgw keeps objects in a 3 GiB memstore and frees deleted parts late): 1.25 GiB there,
  // still hundreds of parts.
  const bool remote = std::getenv("STOWAGE_TEST_STORE_ENV") != nullptr;
  std::uint64_t size = (remote ? (5ull << 28) : (2ull << 30)) + 12345;
  if (const char* env = std::getenv("STOWAGE_TEST_TEAM_FILE_BYTES")) size = std::stoull(env);
  const auto team = team_of(api);
  const std::string boundary = "big-boundary-0123456789";
  StreamUpload up;
  up.size = size;
  up.head = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n" +
            "checkpoint.bin\r\n--" + boundary +
            "\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n/big/\r\n--" + boundary +
            "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"checkpoint.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n";
  up.tail = "\r\n--" + boundary + "--\r\n";
  // Pages already touched stay counted: start from the peak of an idle server.
  reset_peak_rss();
  const std::uint64_t before = peak_rss();

  CURL* curl = curl_easy_init();
  ASSERT_NE(curl, nullptr);
  const std::string url = server.base_url() +
                          "/public/api/v3/file-storage.bulk.upload?teamId=" + std::to_string(team);
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, ("x-api-key: " + api.token()).c_str());
  headers = curl_slist_append(headers,
                              ("Content-Type: multipart/form-data; boundary=" + boundary).c_str());
  headers = curl_slist_append(headers, "Expect:");
  std::string answer;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(up.head.size() + up.size + up.tail.size()));
  curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_stream);
  curl_easy_setopt(curl, CURLOPT_READDATA, &up);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION,
                   +[](char* d, size_t s, size_t n, void* u) -> size_t {
                     static_cast<std::string*>(u)->append(d, s * n);
                     return s * n;
                   });
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(curl_easy_perform(curl), CURLE_OK);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  ASSERT_EQ(status, 200) << answer;
  const auto t1 = std::chrono::steady_clock::now();
  const std::uint64_t after_upload = peak_rss();
  const std::string sent = hex(up.hash.finish());

  // Download, hashed as it streams.
  StreamDownload down;
  const std::string body =
      json::serialize(json::object{{"teamId", team}, {"path", "/big/checkpoint.bin"}});
  curl_easy_reset(curl);
  curl_slist* jh = nullptr;
  jh = curl_slist_append(jh, ("x-api-key: " + api.token()).c_str());
  jh = curl_slist_append(jh, "Content-Type: application/json");
  const std::string durl = server.base_url() + "/public/api/v3/file-storage.download";
  curl_easy_setopt(curl, CURLOPT_URL, durl.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, jh);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_stream);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &down);
  ASSERT_EQ(curl_easy_perform(curl), CURLE_OK);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  EXPECT_EQ(status, 200);
  const auto t2 = std::chrono::steady_clock::now();
  const std::uint64_t after_download = peak_rss();
  curl_slist_free_all(headers);
  curl_slist_free_all(jh);
  curl_easy_cleanup(curl);

  EXPECT_EQ(down.size, size);
  EXPECT_EQ(hex(down.hash.finish()), sent);
  auto info = api.call("file-storage.info", {{"teamId", team}, {"path", "/big/checkpoint.bin"}});
  EXPECT_EQ(info.json().at("size").to_number<std::uint64_t>(), size);
  // Server and client share this process: its peak grew by the buffers and parts in flight
  // (a few 1 MiB chunks, a bounded number of parts), never by the file.
  const std::uint64_t kBound = 300ull << 20;
  EXPECT_LT(after_upload - before, kBound) << "upload raised the peak RSS by "
                                           << ((after_upload - before) >> 20) << " MiB";
  EXPECT_LT(after_download - before, kBound) << "download raised the peak RSS by "
                                             << ((after_download - before) >> 20) << " MiB";
  const auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
  std::printf("team file of %llu bytes: upload %.1f s, download %.1f s, peak RSS +%llu MiB "
              "(upload) +%llu MiB (download)\n",
              static_cast<unsigned long long>(size), secs(t1 - t0), secs(t2 - t1),
              static_cast<unsigned long long>((after_upload - before) >> 20),
              static_cast<unsigned long long>((after_download - before) >> 20));
}

}  // namespace
}  // namespace stowage::testing
