// SPDX-License-Identifier: Apache-2.0
// The secrets sentinel scan (issue 18, part 6). The test servers' secrets are known: radosgw's
// secret key, Azurite's account key, the GCS service account's private key (and the bearer
// tokens the GCS fake hands out, which start "ya29."), the PostgreSQL password in DATABASE_URL,
// and the API tokens Stowage issues (admin, created, revoked). The built `stowage` binary runs
// with SPDLOG_LEVEL=debug over a .env for each cloud provider, DATABASE_URL on the test
// PostgreSQL and a remote_links.yml whose connections carry the same secrets:
//   - `stowage where` and `stowage config check` (also with a wrong secret, itself a sentinel),
//     `stowage token create|list|revoke`;
//   - `stowage serve` (its log: stdout and stderr), and an API session against it: uploads,
//   downloads, lists, previews,
//     remote-storage.* through every connection (objects that exist and that do not), links
//     that no connection allows, calls with a wrong and a revoked token, console.storage,
//     console.tokens.*, /metrics.
// Everything captured (each command's stdout and stderr, the server's log, every API answer's
// status line, headers and body) is scanned for every secret raw, base64- and URL-encoded, and
// for what signed requests carry (X-Amz-Signature, X-Amz-Credential, SigV4 and Shared Key
// Authorization values, SAS `sig=`, bearer tokens, PEM private keys). The one expected
// appearances, the secret printed by `token create` and the admin's token printed once by the
// first `serve`, are left out of those outputs only.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "stowage/io/checksum.hpp"
#include "support/cloud_server.hpp"
#include "support/http_client.hpp"
#include "support/postgres.hpp"
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
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// KEY=VALUE lines of a test server's .env.
std::map<std::string, std::string> env_vars(const std::string& file) {
  std::map<std::string, std::string> out;
  std::istringstream in(read_file(file));
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string base64(std::string_view text) {
  return io::to_base64(std::span(reinterpret_cast<const unsigned char*>(text.data()), text.size()));
}

/// One piece of captured text and where it came from.
struct Capture {
  std::string source;
  std::string text;
};

class SecretsScan : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* var :
         {"STOWAGE_TEST_RADOSGW_ENV", "STOWAGE_TEST_AZURITE_ENV", "STOWAGE_TEST_GCS_ENV"}) {
      const std::string file = test_server_env_file(var);
      if (file.empty()) {
        if (running_in_ci()) FAIL() << var << " is not set: the test server did not start";
        GTEST_SKIP() << var << " not set";
      }
      env_files_[var] = file;
    }
    const std::string pg = postgres_server_url();
    if (pg.empty()) {
      if (running_in_ci()) FAIL() << "no test PostgreSQL";
      GTEST_SKIP() << "no test PostgreSQL";
    }
    database_.emplace(ScratchDatabase::create(pg).value());
    std::string pattern = (fs::temp_directory_path() / "stowage-secrets-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;

    rgw_ = env_vars(env_files_["STOWAGE_TEST_RADOSGW_ENV"]);
    azure_ = env_vars(env_files_["STOWAGE_TEST_AZURITE_ENV"]);
    gcs_ = env_vars(env_files_["STOWAGE_TEST_GCS_ENV"]);
    add_secret("radosgw secret key", rgw_.at("STORAGE_SECRET_KEY"));
    add_secret("Azurite account key", azure_.at("STORAGE_SECRET_KEY"));
    const auto account = json::parse(read_file(gcs_.at("STORAGE_CREDENTIALS_PATH")));
    const std::string pem(account.at("private_key").as_string());
    // The key's body, line by line (a PEM is printed with or without its newlines).
    std::istringstream lines(pem);
    for (std::string line; std::getline(lines, line);) {
      if (line.size() >= 40 && !line.starts_with("-----")) add_secret("GCS private key", line);
    }
    const std::string url = database_->url();
    const auto colon = url.find(':', url.find("://") + 3);
    const auto at = url.find('@');
    add_secret("PostgreSQL password", url.substr(colon + 1, at - colon - 1));
    add_secret("a wrong radosgw secret", kWrongSecret);
  }

  void TearDown() override {
    if (server_pid_ > 0) {
      ::kill(server_pid_, SIGKILL);
      ::waitpid(server_pid_, nullptr, 0);
    }
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  void add_secret(const std::string& what, const std::string& secret) {
    ASSERT_GE(secret.size(), 8u) << what << " is too short to scan for";
    secrets_.push_back({what, secret});
    secrets_.push_back({what + " (base64)", base64(secret)});
    if (url_encode(secret) != secret)
      secrets_.push_back({what + " (URL-encoded)", url_encode(secret)});
  }

  /// A .env for `provider` (its test server's file with the PostgreSQL catalog, a data folder
  /// of this test and the links file).
  fs::path write_env(const std::string& name, const std::map<std::string, std::string>& vars,
                     const std::map<std::string, std::string>& overrides = {}) {
    std::map<std::string, std::string> all;
    for (const auto& [k, v] : vars) {
      if (k.starts_with("STORAGE_")) all[k] = v;
    }
    all["DATA_PATH"] = (dir_ / ("data-" + name)).string();
    all["DATABASE_URL"] = database_->url();
    all["REMOTE_LINKS_PATH"] = (dir_ / "remote_links.yml").string();
    for (const auto& [k, v] : overrides) all[k] = v;
    const fs::path file = dir_ / (name + ".env");
    std::ofstream out(file);
    for (const auto& [k, v] : all) out << k << "=" << v << "\n";
    return file;
  }

  /// Connections to the three test servers, with their secrets written in the file.
  void write_links() {
    auto endpoint = [](const std::map<std::string, std::string>& v) {
      std::string e = v.at("STORAGE_ENDPOINT");
      if (v.contains("STORAGE_PORT")) e += ":" + v.at("STORAGE_PORT");
      return e;
    };
    std::ofstream out(dir_ / "remote_links.yml");
    out << "rgw:\n  provider: minio\n  endpoint: " << endpoint(rgw_)
        << "\n  force_path_style: true\n  access_key: " << rgw_.at("STORAGE_ACCESS_KEY")
        << "\n  secret_key: " << rgw_.at("STORAGE_SECRET_KEY") << "\n  buckets: ["
        << rgw_.at("STORAGE_BUCKET_PREFIX") << "-public, missing-bucket-x]\n";
    out << "az:\n  provider: azure\n  endpoint: " << endpoint(azure_)
        << "\n  access_key: " << azure_.at("STORAGE_ACCESS_KEY")
        << "\n  secret_key: " << azure_.at("STORAGE_SECRET_KEY") << "\n  buckets: ["
        << azure_.at("STORAGE_BUCKET_PREFIX") << "-public]\n";
    out << "gc:\n  provider: google\n  endpoint: " << endpoint(gcs_)
        << "\n  credentials_path: " << gcs_.at("STORAGE_CREDENTIALS_PATH") << "\n  buckets: ["
        << gcs_.at("STORAGE_BUCKET_PREFIX") << "-public]\n";
    out << "bad-rgw:\n  provider: minio\n  endpoint: " << endpoint(rgw_)
        << "\n  force_path_style: true\n  access_key: " << rgw_.at("STORAGE_ACCESS_KEY")
        << "\n  secret_key: " << kWrongSecret << "\n  buckets: [wrong-secret-bucket]\n";
  }

  /// Runs `stowage ARGS` with `env_file`; captures its stdout and stderr.
  int run(const std::vector<std::string>& args, const fs::path& env_file,
          bool stdout_holds_a_token = false) {
    const fs::path out_file = dir_ / ".out", err_file = dir_ / ".err";
    const pid_t pid = spawn(args, env_file, out_file, err_file);
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::string joined;
    for (const auto& a : args) joined += " " + a;
    const std::string out = read_file(out_file);
    if (stdout_holds_a_token) {
      issued_.push_back(out.substr(0, out.find('\n')));
    } else {
      captures_.push_back({"stdout of stowage" + joined, out});
    }
    captures_.push_back({"stderr of stowage" + joined, read_file(err_file)});
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  pid_t spawn(const std::vector<std::string>& args, const fs::path& env_file,
              const fs::path& out_file, const fs::path& err_file) {
    std::vector<std::string> env_strings = {"PATH=/usr/bin:/bin", "HOME=" + dir_.string(),
                                            "SPDLOG_LEVEL=debug"};
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_strings = {STOWAGE_BINARY, "--env", env_file.string()};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_strings) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (out < 0 || err < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0 ||
          ::chdir(dir_.c_str()) != 0) {
        ::_exit(127);
      }
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    return pid;
  }

  void capture(const std::string& what, const HttpResponse& r) {
    std::string text = "HTTP " + std::to_string(r.status) + "\n";
    for (const auto& [k, v] : r.headers) text += k + ": " + v + "\n";
    captures_.push_back({what, text + "\n" + r.body + r.error});
  }

  /// Every secret and signed-request marker in everything captured.
  void scan() {
    // What signed requests and credentials look like, whoever's they are.
    const std::vector<std::string> markers = {"X-Amz-Signature",
                                              "X-Amz-Credential",
                                              "AWS4-HMAC-SHA256 Credential",
                                              "Signature=",
                                              "SharedKey ",
                                              "sig=",
                                              "Bearer ",
                                              "ya29.",
                                              "PRIVATE KEY",
                                              "access_token"};
    for (const std::string& token : issued_) {
      ASSERT_GE(token.size(), 16u);
      secrets_.push_back({"an API token Stowage issued", token});
      secrets_.push_back({"an API token Stowage issued (URL-encoded)", url_encode(token)});
    }
    std::size_t bytes = 0;
    for (const Capture& c : captures_) {
      bytes += c.text.size();
      for (const auto& [what, secret] : secrets_) {
        const auto at = c.text.find(secret);
        EXPECT_EQ(at, std::string::npos)
            << what << " appears in " << c.source << ":\n"
            << c.text.substr(at == std::string::npos ? 0 : (at > 200 ? at - 200 : 0), 400);
      }
      for (const std::string& m : markers) {
        const auto at = c.text.find(m);
        EXPECT_EQ(at, std::string::npos)
            << "'" << m << "' appears in " << c.source << ":\n"
            << c.text.substr(at == std::string::npos ? 0 : (at > 200 ? at - 200 : 0), 400);
      }
    }
    // STOWAGE_SECRETS_SCAN_DUMP=FILE keeps what was scanned, to read it.
    if (const char* dump = std::getenv("STOWAGE_SECRETS_SCAN_DUMP"); dump != nullptr) {
      std::ofstream out(dump);
      for (const Capture& c : captures_) out << "===== " << c.source << "\n" << c.text << "\n";
    }
    std::printf(
        "secrets scan: %zu secrets and encodings + %zu markers over %zu captures "
        "(%zu bytes)\n",
        secrets_.size(), markers.size(), captures_.size(), bytes);
  }

  static constexpr const char* kWrongSecret = "NotTheRealSecretKey0123456789abcdefWRONG";

  std::map<std::string, std::string> env_files_;
  std::map<std::string, std::string> rgw_, azure_, gcs_;
  std::optional<ScratchDatabase> database_;
  fs::path dir_;
  pid_t server_pid_ = 0;
  std::vector<std::pair<std::string, std::string>> secrets_;
  std::vector<std::string> issued_;
  std::vector<Capture> captures_;
};

TEST_F(SecretsScan, NoSecretInAnyLogErrorCliOutputOrApiAnswer) {
  write_links();
  const fs::path rgw_env = write_env("radosgw", rgw_);
  const fs::path azure_env = write_env("azurite", azure_);
  const fs::path gcs_env = write_env("gcs", gcs_);
  const fs::path wrong_env = write_env("wrong", rgw_, {{"STORAGE_SECRET_KEY", kWrongSecret}});

  // The CLI over each provider: where, config check (also with a wrong key), tokens.
  for (const auto& env : {rgw_env, azure_env, gcs_env}) {
    EXPECT_EQ(run({"where"}, env), 0);
    run({"config", "check"}, env);
  }
  EXPECT_NE(run({"config", "check"}, wrong_env), 0);
  // A database that refuses the connection: its password must not be in the error.
  const fs::path bad_db = write_env(
      "bad-db", rgw_,
      {{"DATABASE_URL", "postgresql://u:" + std::string(kWrongSecret) + "@127.0.0.1:1/x"}});
  run({"where"}, bad_db);
  EXPECT_NE(run({"config", "check"}, bad_db), 0);

  // A server with the radosgw storage and all three connections, and an API session.
  const unsigned short port = free_port();
  const fs::path serve_env =
      write_env("serve", rgw_, {{"STOWAGE_LISTEN", "127.0.0.1:" + std::to_string(port)}});
  const fs::path log = dir_ / "serve.log";
  server_pid_ = spawn({"serve"}, serve_env, dir_ / "serve.out", log);
  const fs::path admin_token_file = dir_ / "data-serve" / "admin-token";
  const HttpClient probe("http://127.0.0.1:" + std::to_string(port), "");
  for (int i = 0; i < 300 && probe.get("/healthz").status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(probe.get("/healthz").status, 200) << read_file(log);
  std::string admin = read_file(admin_token_file);
  while (!admin.empty() && std::isspace(static_cast<unsigned char>(admin.back()))) admin.pop_back();
  ASSERT_FALSE(admin.empty());
  issued_.push_back(admin);
  EXPECT_EQ(run({"token", "create", "--name", "scan"}, serve_env, true), 0);
  run({"token", "list"}, serve_env);
  EXPECT_EQ(run({"token", "create", "--name", "to-revoke"}, serve_env, true), 0);
  const std::string revoked = issued_.back();

  const HttpClient api("http://127.0.0.1:" + std::to_string(port), admin);
  auto call = [&](const std::string& method, const json::value& body) {
    capture(method + " " + json::serialize(body), api.call(method, body));
  };
  // Revoke through the console, then use the revoked token.
  auto tokens = api.call("console.tokens.list", json::object{});
  capture("console.tokens.list", tokens);
  ASSERT_EQ(tokens.status, 200) << tokens.body;
  const json::value token_list = tokens.json();
  for (const auto& t : token_list.as_array()) {
    if (t.at("name").as_string() == "to-revoke")
      call("console.tokens.revoke", {{"id", t.at("id")}});
  }
  capture("a revoked token", api.with_token(revoked).call("teams.list", json::object{}));
  capture("a wrong token",
          api.with_token("wrong-" + std::string(kWrongSecret)).call("teams.list", json::object{}));
  call("console.session", json::object{});
  call("console.storage", json::object{});
  call("console.caches", json::object{});
  call("console.tokens.create", {{"name", "from-console"}});
  {
    auto created = api.call("console.tokens.create", {{"name", "from-console-2"}});
    ASSERT_EQ(created.status, 200) << created.body;
    issued_.push_back(std::string(created.json().at("token").as_string()));  // shown once, there
  }
  const auto ws = api.call("workspaces.list", {{"teamId", 1}}).json().at("entities").at(0).at("id");
  const auto project = api.call("projects.add", {{"workspaceId", ws}, {"name", "p"}}).json();
  const auto dataset =
      api.call("datasets.add", {{"projectId", project.at("id")}, {"name", "d"}}).json().at("id");
  const std::string image = make_image(32, 24, "png", 5);
  auto up = api.upload({{"0-file", "0", "image/png", image}});
  capture("images.bulk.upload", up);
  auto added = api.call("images.bulk.add",
                        {{"datasetId", dataset},
                         {"images", json::array{{{"title", "a.png"}, {"hash", sdk_hash(image)}}}}});
  capture("images.bulk.add", added);
  ASSERT_EQ(added.status, 200) << added.body;
  const auto item = added.json().at(0);
  call("images.info", {{"id", item.at("id")}});
  call("images.download", {{"id", item.at("id")}});
  capture("preview", api.get(path_of(std::string(item.at("previewUrl").as_string()))));
  call("images.list", {{"datasetId", dataset}});
  capture("/metrics", api.get("/metrics"));
  // Every connection: list, an object that exists (uploaded first), one that does not, a bucket
  // no connection allows, and the connection with the wrong key.
  const std::vector<std::string> prefixes = {
      "s3://" + rgw_.at("STORAGE_BUCKET_PREFIX") + "-public/scan/",
      "azure://" + azure_.at("STORAGE_BUCKET_PREFIX") + "-public/scan/",
      "google://" + gcs_.at("STORAGE_BUCKET_PREFIX") + "-public/scan/",
      "s3://wrong-secret-bucket/scan/",
      "s3://missing-bucket-x/scan/",
      "s3://nobody-allows/x/"};
  int n = 0;
  for (const std::string& prefix : prefixes) {
    ++n;
    const std::string boundary = "scanboundary42";
    const std::string body = "--" + boundary +
                             "\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\n" + prefix +
                             "a.png\r\n--" + boundary +
                             "\r\nContent-Disposition: form-data; name=\"file\"; "
                             "filename=\"a.png\"\r\n\r\n" +
                             image + "\r\n--" + boundary + "--\r\n";
    capture("remote-storage.upload " + prefix,
            api.post("/public/api/v3/remote-storage.upload", body,
                     "multipart/form-data; boundary=" + boundary));
    call("remote-storage.list", {{"path", prefix}});
    call("remote-storage.exists", {{"path", prefix + "a.png"}});
    call("remote-storage.stat", {{"path", prefix + "missing.png"}});
    call("remote-storage.download", {{"link", prefix + "a.png"}});
    call("remote-storage.download", {{"link", prefix + "missing.png"}});
    call("images.bulk.add", {{"datasetId", dataset},
                             {"images", json::array{{{"title", "l" + std::to_string(n) + ".png"},
                                                     {"link", prefix + "a.png"}}}}});
  }
  call("remote-storage.available_providers", json::object{});
  call("images.list", {{"datasetId", dataset}});
  ::kill(server_pid_, SIGTERM);
  ::waitpid(server_pid_, nullptr, 0);
  server_pid_ = 0;
  // The first start prints the admin's token once, by design (README): that line is left out.
  std::string out = read_file(dir_ / "serve.out");
  const auto shown = out.find("API token (shown once");
  ASSERT_NE(shown, std::string::npos) << out;
  const auto line = out.find('\n', shown) + 1;
  ASSERT_EQ(out.substr(line, admin.size()), admin);
  out.erase(line, admin.size());
  EXPECT_NE(out.find("stowage serving"), std::string::npos) << out;
  captures_.push_back({"the server's log (stdout)", out});
  captures_.push_back({"the server's stderr", read_file(log)});
  scan();
}

}  // namespace
}  // namespace stowage::testing
