// SPDX-License-Identifier: Apache-2.0
// Kills a real `stowage serve` process with SIGKILL while uploads are in flight, then checks
// what a user would: no partial object visible in the bucket, no catalog row without its
// bytes, and a clean restart that serves everything it had confirmed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "stowage/catalog/catalog.hpp"
#include "stowage/io/checksum.hpp"
#include "support/http_client.hpp"
#include "support/test_server.hpp"

#ifndef STOWAGE_BINARY
#error "STOWAGE_BINARY must name the stowage executable"
#endif

namespace stowage::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// One `stowage serve` child process in a folder of its own.
class ServerProcess {
 public:
  explicit ServerProcess(fs::path dir) : dir_(std::move(dir)), port_(free_port()) {
    std::ofstream(dir_ / ".env") << "DATA_PATH=" << (dir_ / "data").string() << "\n"
                                 << "STOWAGE_LISTEN=127.0.0.1:" << port_ << "\n"
                                 << "STORAGE_BUCKET_PREFIX=crash\n";
  }
  ~ServerProcess() { kill(SIGKILL); }

  /// Starts the server and waits until /healthz answers.
  bool start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      if (::chdir(dir_.c_str()) != 0) ::_exit(127);
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execl(STOWAGE_BINARY, STOWAGE_BINARY, "serve", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    HttpClient probe(base_url(), "");
    for (int i = 0; i < 200; ++i) {
      if (probe.get("/healthz").status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return false;
  }
  /// Sends `signal` without waiting (SIGHUP: the server goes on).
  void signal(int signal) const {
    if (pid_ > 0) ::kill(pid_, signal);
  }

  /// Sends `signal` and waits for the process; returns its wait status.
  int kill(int signal) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  unsigned short port() const { return port_; }
  fs::path data() const { return dir_ / "data"; }
  std::string token() const {
    std::string t = read_file(data() / "admin-token");
    while (!t.empty() && t.back() == '\n') t.pop_back();
    return t;
  }

 private:
  fs::path dir_;
  unsigned short port_;
  pid_t pid_ = -1;
};

/// Sends the start of an upload and leaves it hanging, so the server has a spool file open.
int start_partial_upload(unsigned short port, const std::string& token, const std::string& bytes) {
  const std::string boundary = "partialXYZ";
  const std::string head = "--" + boundary +
                           "\r\nContent-Disposition: form-data; name=\"0-file\"; filename=\"0\"\r\n"
                           "Content-Type: image/*\r\n\r\n";
  const std::string tail = "\r\n--" + boundary + "--\r\n";
  const std::string request =
      "POST /public/api/v3/images.bulk.upload HTTP/1.1\r\nHost: x\r\nx-api-key: " + token +
      "\r\nContent-Type: multipart/form-data; boundary=" + boundary +
      "\r\nContent-Length: " + std::to_string(head.size() + bytes.size() + tail.size()) +
      "\r\n\r\n" + head + bytes.substr(0, bytes.size() / 2);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  return fd;
}

TEST(CrashTest, SigkillDuringUploadsLosesNothingConfirmedAndShowsNothingPartial) {
  std::string pattern = (fs::temp_directory_path() / "stowage-crash-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const fs::path dir = pattern;
  std::mt19937 rng(12345);

  std::map<std::int64_t, std::string> confirmed;  // item id -> bytes the server confirmed
  for (int round = 0; round < 3; ++round) {
    ServerProcess server(dir);
    ASSERT_TRUE(server.start()) << "round " << round;
    HttpClient api(server.base_url(), server.token());

    // Everything confirmed in earlier rounds is still there, byte for byte.
    for (const auto& [id, bytes] : confirmed) {
      auto r = api.call("images.download", {{"id", id}});
      ASSERT_EQ(r.status, 200) << "item " << id << " after restart " << round;
      EXPECT_EQ(r.body, bytes);
    }

    auto ws = api.call("workspaces.list", {{"teamId", 1}}).json();
    const auto workspace = ws.at("entities").at(0).at("id").to_number<std::int64_t>();
    auto project = api.call("projects.add",
                            {{"workspaceId", workspace}, {"name", "p" + std::to_string(round)}})
                       .json();
    auto dataset =
        api.call("datasets.add", {{"projectId", project.at("id")}, {"name", "d"}}).json();
    const auto dataset_id = dataset.at("id").to_number<std::int64_t>();

    // Hanging uploads (spool files open) and a stream of complete ones, then SIGKILL.
    std::vector<int> hanging;
    for (int i = 0; i < 4; ++i) {
      hanging.push_back(start_partial_upload(server.port(), server.token(),
                                             make_image(300, 200, "tiff", 1000 * round + i)));
    }
    std::atomic<bool> stop{false};
    std::mutex mutex;
    std::vector<std::thread> writers;
    for (int w = 0; w < 3; ++w) {
      writers.emplace_back([&, w] {
        for (int n = 0; !stop; ++n) {
          const std::string bytes =
              make_image(120 + n % 50, 90, n % 2 ? "png" : "tiff", round * 100000 + w * 1000 + n);
          auto up = api.upload({{"0-file", "0", "image/*", bytes}});
          if (up.status != 200) return;  // the server died under us
          auto added = api.call(
              "images.bulk.add",
              {{"datasetId", dataset_id},
               {"images", json::array{{{"title", "w" + std::to_string(w) + "-" + std::to_string(n)},
                                       {"hash", sdk_hash(bytes)}}}}});
          if (added.status != 200) return;
          std::lock_guard lock(mutex);
          confirmed[added.json().at(0).at("id").to_number<std::int64_t>()] = bytes;
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 700));
    server.kill(SIGKILL);
    stop = true;
    for (auto& t : writers) t.join();
    for (int fd : hanging) ::close(fd);

    // No partial object: every object's bytes hash to the name it is stored under.
    std::size_t objects = 0;
    for (const auto& entry :
         fs::recursive_directory_iterator(server.data() / "storage" / "crash-public")) {
      if (!entry.is_regular_file()) continue;
      ++objects;
      const std::string bytes = read_file(entry.path());
      const std::string hex = io::to_hex(io::Sha256::of(std::as_bytes(std::span(bytes))));
      EXPECT_EQ(entry.path().stem().string(), hex) << entry.path();
    }
    EXPECT_GT(objects, 0u) << "round " << round << " uploaded nothing before the kill";

    // No catalog row without its bytes.
    {
      auto catalog = catalog::Catalog::open_sqlite(server.data() / "stowage.db").value();
      catalog::ListQuery all;
      auto items =
          catalog->list_items(std::nullopt, project.at("id").to_number<std::int64_t>(), all)
              .value();
      for (const auto& item : items.entities) {
        const fs::path file = server.data() / "storage" / item.blob_bucket / item.blob_key;
        ASSERT_TRUE(fs::exists(file)) << item.name;
        EXPECT_EQ(fs::file_size(file), item.size) << item.name;
      }
    }
  }
  // Restart once more: staging leftovers from the last kill are gone, everything is served.
  ServerProcess server(dir);
  ASSERT_TRUE(server.start());
  std::size_t leftovers = 0;
  for (const auto& entry : fs::directory_iterator(server.data() / "storage" / ".staging")) {
    leftovers += entry.is_regular_file();
  }
  EXPECT_EQ(leftovers, 0u);
  HttpClient api(server.base_url(), server.token());
  EXPECT_FALSE(confirmed.empty());
  for (const auto& [id, bytes] : confirmed) {
    auto r = api.call("images.download", {{"id", id}});
    ASSERT_EQ(r.status, 200) << id;
    EXPECT_EQ(r.body, bytes);
  }
  server.kill(SIGTERM);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

/// Sends images.download for `id` on a raw connection and reads the first 100 KB of the answer
/// into `received`; returns the socket, or -1.
int start_download(const ServerProcess& server, std::int64_t id, std::string* received) {
  const std::string body = "{\"id\":" + std::to_string(id) + "}";
  const std::string request =
      "POST /public/api/v3/images.download HTTP/1.1\r\nHost: x\r\nx-api-key: " + server.token() +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(server.port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return -1;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return -1;
  }
  char buf[65536];
  while (received->size() < 100000) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return -1;
    received->append(buf, static_cast<std::size_t>(n));
  }
  return fd;
}

/// Makes a project, a dataset and one image of `bytes` in it; returns the image id.
std::int64_t stored_image(const ServerProcess& server, const std::string& bytes) {
  HttpClient api(server.base_url(), server.token());
  auto ws = api.call("workspaces.list", {{"teamId", 1}}).json();
  auto project =
      api.call("projects.add", {{"workspaceId", ws.at("entities").at(0).at("id")}, {"name", "p"}})
          .json();
  auto dataset = api.call("datasets.add", {{"projectId", project.at("id")}, {"name", "d"}}).json();
  EXPECT_EQ(api.upload({{"0-file", "0", "image/*", bytes}}).status, 200);
  auto added =
      api.call("images.bulk.add",
               {{"datasetId", dataset.at("id")},
                {"images", json::array{{{"title", "big.tif"}, {"hash", sdk_hash(bytes)}}}}});
  return added.json().at(0).at("id").to_number<std::int64_t>();
}

TEST(DrainTest, SigtermLetsADownloadInFlightFinishThenExitsZero) {
  std::string pattern = (fs::temp_directory_path() / "stowage-drain-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const fs::path dir = pattern;
  ServerProcess server(dir);
  ASSERT_TRUE(server.start());
  const std::string bytes = make_image(3000, 2000, "tiff", 5);  // ~18 MB: more than socket buffers
  const auto id = stored_image(server, bytes);

  // Start the download, read a little, then ask the server to stop.
  std::string received;
  const int fd = start_download(server, id, &received);
  ASSERT_GE(fd, 0);
  std::thread stopper([&] { EXPECT_EQ(server.kill(SIGTERM), 0) << "exit status"; });
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    received.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  stopper.join();
  const auto head_end = received.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  EXPECT_EQ(received.substr(head_end + 4), bytes) << "the download in flight was cut short";
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(DrainTest, AClientHangingUpMidDownloadDoesNotHurtTheServer) {
  std::string pattern = (fs::temp_directory_path() / "stowage-hangup-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const fs::path dir = pattern;
  ServerProcess server(dir);
  ASSERT_TRUE(server.start());
  const auto id = stored_image(server, make_image(3000, 2000, "tiff", 6));
  // Hang up mid-body in two ways: with unread bytes (the kernel answers RST at once) and after
  // draining what has arrived (a FIN; the RST comes only when more bytes land), so that the
  // server's next sendfile() meets a socket the peer has left.
  for (int i = 0; i < 20; ++i) {
    std::string received;
    const int fd = start_download(server, id, &received);
    ASSERT_GE(fd, 0);
    if (i % 2 == 1) {
      char buf[65536];
      while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
      }
    }
    ::close(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  HttpClient probe(server.base_url(), "");
  EXPECT_EQ(probe.get("/healthz").status, 200) << "the server died when a client hung up";
  EXPECT_EQ(server.kill(SIGTERM), 0);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(LinksReload, SighupReloadsRemoteLinksAndKeepsTheOldOnAMistake) {
  std::string pattern = (fs::temp_directory_path() / "stowage-hup-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  const fs::path dir = pattern;
  const std::string bytes = make_image(12, 9, "png", 4);
  for (const char* folder : {"first", "second"}) {
    fs::create_directories(dir / folder);
    std::ofstream(dir / folder / "x.png", std::ios::binary) << bytes;
  }
  auto connections = [&](bool both) {
    std::string yaml =
        "first:\n  provider: fs\n  path: " + (dir / "first").string() + "\n  storage_id: first\n";
    if (both) {
      yaml += "second:\n  provider: fs\n  path: " + (dir / "second").string() +
              "\n  storage_id: second\n";
    }
    std::ofstream(dir / "remote_links.yml") << yaml;
  };
  connections(false);
  ServerProcess server(dir);
  ASSERT_TRUE(server.start());
  HttpClient api(server.base_url(), server.token());
  auto exists = [&](const std::string& link) {
    return api.get("/public/api/v3/remote-storage.exists?path=" + link);
  };
  EXPECT_EQ(exists("fs://first/x.png").status, 200);
  EXPECT_EQ(exists("fs://second/x.png").status, 403);

  connections(true);
  server.signal(SIGHUP);
  bool reloaded = false;
  for (int i = 0; i < 100 && !reloaded; ++i) {
    reloaded = exists("fs://second/x.png").status == 200;
    if (!reloaded) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(reloaded) << "SIGHUP did not add the second connection";
  EXPECT_EQ(exists("fs://first/x.png").status, 200);

  // A broken file is refused and the configuration in force stays.
  std::ofstream(dir / "remote_links.yml") << "first: [not, a, map\n";
  server.signal(SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(exists("fs://second/x.png").status, 200);
  EXPECT_EQ(server.kill(SIGTERM), 0);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace stowage::testing
