// SPDX-License-Identifier: Apache-2.0
// `stowage migrate storage` as a user runs it: the built binary, a local DATA_PATH with a tree of
// objects, and a real target (radosgw, Azurite, the GCS fake) from the test-server fixtures;
// with a fault-injecting, byte-counting proxy (tests/fakes/fault_proxy.mjs) in front where the
// test needs one. Every check reads both sides back and compares SHA-256s.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "stowage/config/config.hpp"
#include "stowage/migration/copy.hpp"
#include "stowage/store/registry.hpp"
#include "support/cloud_server.hpp"
#include "support/fault_proxy.hpp"
#include "support/test_server.hpp"

namespace stowage {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using testing::FaultProxy;
using testing::test_server_env_file;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
  json::value summary() const {
    std::error_code ec;
    auto v = json::parse(out, ec);
    return ec ? json::value() : v;
  }
};

/// A target test server: its .env and config, and a store opened on it (for hashing).
struct Target {
  fs::path env_file;
  config::Config config;
  std::unique_ptr<store::ObjectStore> store;
};

std::optional<Target> target_from_file(const fs::path& env_path, std::string* why);

/// The target the fixture named by `var` started, or nullopt (skip; a failure when CI=true).
std::optional<Target> target_from(const char* var, std::string* why) {
  const std::string env_path = test_server_env_file(var);
  if (env_path.empty() || !fs::exists(env_path)) {
    *why = std::string(var) + " unset or missing (ctest starts the server)";
    return std::nullopt;
  }
  return target_from_file(env_path, why);
}

/// The target an .env file describes.
std::optional<Target> target_from_file(const fs::path& env_path, std::string* why) {
  const std::string env = env_path.string();
  config::LoadOptions load;
  load.env_file = env;
  auto c = config::load(load);
  if (!c) {
    *why = c.error().to_string();
    return std::nullopt;
  }
  auto s = store::open_configured_store(*c);
  if (!s) {
    *why = s.error().to_string();
    return std::nullopt;
  }
  return Target{env, *c, std::move(*s)};
}

#define REQUIRE_TARGET(var, name)                                              \
  std::string var##_why;                                                       \
  auto var##_opt = target_from(name, &var##_why);                              \
  if (!var##_opt) {                                                            \
    const char* ci = std::getenv("CI");                                        \
    if (ci != nullptr && std::string_view(ci) == "true") FAIL() << var##_why; \
    GTEST_SKIP() << var##_why;                                                 \
  }                                                                            \
  Target& var = *var##_opt

std::vector<std::byte> random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

class MigrateStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "stowage-migrate-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    run_ = dir_.filename().string().substr(16);  // unique per test: keys never collide
    for (auto& c : run_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  /// The same server with the bucket pair its script made for tests that need buckets to
  /// themselves (TEST_ISOLATED_BUCKET_PREFIX in its .env).
  Target isolated(const Target& shared, const std::string& name) {
    std::ifstream in(shared.env_file);
    std::string line, text, prefix;
    while (std::getline(in, line)) {
      if (line.starts_with("TEST_ISOLATED_BUCKET_PREFIX=")) prefix = line.substr(line.find('=') + 1);
      if (!line.starts_with("STORAGE_BUCKET_PREFIX=")) text += line + "\n";
    }
    EXPECT_FALSE(prefix.empty()) << shared.env_file << " names no isolated bucket pair";
    const fs::path env = dir_ / (name + "-isolated.env");
    std::ofstream(env) << text << "STORAGE_BUCKET_PREFIX=" << prefix << "\n";
    std::string why;
    auto target = target_from_file(env, &why);
    EXPECT_TRUE(target) << why;
    return std::move(*target);
  }

  /// A local source (.env with DATA_PATH under the test's folder) with `prefix`.
  fs::path local_source(const std::string& prefix) {
    const fs::path env = dir_ / "source.env";
    std::ofstream(env) << "DATA_PATH=" << (dir_ / "data").string()
                       << "\nSTORAGE_PROVIDER=http\nSTORAGE_BUCKET_PREFIX=" << prefix << "\n";
    return env;
  }
  /// Writes the tree into the local buckets: nested keys, an empty object, small objects and
  /// objects above every provider's multipart/block/resumable threshold.
  void make_tree(const std::string& prefix, std::size_t smalls, std::size_t small_bytes) {
    const fs::path storage = dir_ / "data" / "storage";
    auto put = [&](const std::string& bucket, const std::string& key, std::size_t n) {
      const fs::path file = storage / (prefix + "-" + bucket) / key;
      fs::create_directories(file.parent_path());
      const auto bytes = random_bytes(n, static_cast<unsigned>(tree_.size() + 1));
      std::ofstream(file, std::ios::binary)
          .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(n));
      tree_.push_back({prefix + "-" + bucket, key});
      tree_bytes_ += n;
      sizes_[key] = n;
    };
    put("public", run_ + "/empty", 0);
    put("public", run_ + "/big/a.bin", (17u << 20) + 3);
    put("private", run_ + "/big/b.bin", (9u << 20) + 11);
    for (std::size_t i = 0; i < smalls; ++i) {
      put(i % 3 == 0 ? "private" : "public",
          run_ + "/d" + std::to_string(i % 4) + "/e" + std::to_string(i % 7) + "/" +
              std::to_string(i) + ".jpg",
          small_bytes / 2 + (i * 7919) % small_bytes);
    }
  }

  Outcome run_cli(const std::vector<std::string>& args, const fs::path& env) {
    const pid_t pid = spawn(args, env);
    int status = 0;
    Outcome o;
    if (::waitpid(pid, &status, 0) == pid && WIFEXITED(status)) o.exit_code = WEXITSTATUS(status);
    o.out = slurp(dir_ / "out.txt");
    o.err = slurp(dir_ / "err.txt");
    return o;
  }
  pid_t spawn(const std::vector<std::string>& args, const fs::path& env) {
    std::vector<std::string> full{STOWAGE_BINARY, "--env", env.string()};
    full.insert(full.end(), args.begin(), args.end());
    const std::string out = (dir_ / "out.txt").string(), err = (dir_ / "err.txt").string();
    const pid_t pid = ::fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (auto& a : full) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::dup2(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600), 1);
      ::dup2(::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600), 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    return pid;
  }

  /// Every object of the tree is at `target` with the source's bytes.
  void expect_identical(store::ObjectStore& target) {
    auto local = store::open_configured_store(source_config()).value();
    for (const auto& p : tree_) {
      auto here = migration::hash_object(*local, p, "", 1 << 20);
      auto there = migration::hash_object(target, p, "", 1 << 20);
      ASSERT_TRUE(here) << here.error().to_string();
      ASSERT_TRUE(there) << p.to_string() << ": " << there.error().to_string();
      EXPECT_EQ(there->first, here->first) << p.to_string();
      EXPECT_EQ(there->second, here->second) << p.to_string();
    }
  }
  config::Config source_config() {
    config::LoadOptions load;
    load.env_file = dir_ / "source.env";
    return config::load(load).value();
  }

  /// A copy of the target's .env that goes through the proxy.
  fs::path proxied_env(const Target& t, unsigned short port) {
    std::string text = slurp(t.env_file);
    std::string out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("STORAGE_PORT=")) line = "STORAGE_PORT=" + std::to_string(port);
      if (line.starts_with("STORAGE_ENDPOINT=http://127.0.0.1:")) {
        // Azurite / the GCS fake carry the port in the endpoint.
        const auto rest = line.substr(std::string("STORAGE_ENDPOINT=http://127.0.0.1:").size());
        const auto slash = rest.find('/');
        line = "STORAGE_ENDPOINT=http://127.0.0.1:" + std::to_string(port) +
               (slash == std::string::npos ? "" : rest.substr(slash));
      }
      out += line + "\n";
    }
    const fs::path env = dir_ / "target-proxied.env";
    std::ofstream(env) << out;
    return env;
  }
  /// SIGKILLed at 4 points while copying to `t` through a counting proxy, then rerun: complete,
  /// identical, and no more uploaded than the tree plus one request per object in flight.
  void killed_then_rerun(Target& t);

  static unsigned short port_of(const Target& t) {
    if (t.config.storage_port) return *t.config.storage_port;
    const std::string& e = t.config.storage_endpoint;  // http://127.0.0.1:PORT[/...]
    return static_cast<unsigned short>(std::stoi(e.substr(e.rfind(':') + 1)));
  }

  /// The full migration story against one target.
  void migrate_to(Target& target) {
    local_source(target.config.bucket_prefix);
    make_tree(target.config.bucket_prefix, 40, 64 << 10);
    const fs::path source_env = dir_ / "source.env";

    // A dry run lists and compares, and writes nothing.
    Outcome dry = run_cli({"migrate", "storage", "--to", target.env_file.string(), "--dry-run",
                           "--json"},
                          source_env);
    ASSERT_EQ(dry.exit_code, 0) << dry.out << dry.err;
    EXPECT_EQ(dry.summary().at("would_copy").to_number<std::uint64_t>(), tree_.size()) << dry.out;
    EXPECT_EQ(dry.summary().at("bytes_written").to_number<std::uint64_t>(), 0u);
    for (const auto& p : tree_) EXPECT_FALSE(target.store->stat(p)) << p.to_string();
    // The plan names each object it would copy, with its size.
    std::set<std::string> planned;
    const json::value plan = dry.summary();
    for (const auto& o : plan.at("would_copy_objects").as_array()) {
      const std::string path(o.at("path").as_string());
      planned.insert(path);
      const std::string key = path.substr(path.find('/') + 1);
      EXPECT_EQ(o.at("size").to_number<std::uint64_t>(), sizes_[key]) << path;
    }
    std::set<std::string> tree;
    for (const auto& p : tree_) tree.insert(p.to_string());
    EXPECT_EQ(planned, tree);

    Outcome first = run_cli({"migrate", "storage", "--to", target.env_file.string()}, source_env);
    ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
    EXPECT_NE(first.out.find("copied:"), std::string::npos) << first.out;
    if (const std::string& secret = target.config.storage_secret_key.reveal(); !secret.empty()) {
      EXPECT_EQ(first.out.find(secret), std::string::npos);  // the GCS fake has no secret key
      EXPECT_EQ(first.err.find(secret), std::string::npos);
    }
    expect_identical(*target.store);

    // A rerun copies nothing.
    Outcome again = run_cli({"migrate", "storage", "--to", target.env_file.string(), "--json"},
                            source_env);
    ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
    EXPECT_EQ(again.summary().at("copied").to_number<std::uint64_t>(), 0u);
    EXPECT_EQ(again.summary().at("skipped").to_number<std::uint64_t>(), tree_.size());
    EXPECT_EQ(again.summary().at("bytes_written").to_number<std::uint64_t>(), 0u);

    // Wrong bytes of the same size at the target are found and replaced.
    const store::ObjectPath victim = tree_[1];
    auto bytes = random_bytes(sizes_[victim.key], 999);
    auto w = target.store->open_write(victim, {}).value();
    ASSERT_TRUE(w->write(bytes));
    ASSERT_TRUE(w->commit());
    Outcome fixed = run_cli({"migrate", "storage", "--to", target.env_file.string(), "--json"},
                            source_env);
    ASSERT_EQ(fixed.exit_code, 0) << fixed.out << fixed.err;
    EXPECT_EQ(fixed.summary().at("copied").to_number<std::uint64_t>(), 1u) << fixed.out;
    EXPECT_EQ(fixed.summary().at("skipped").to_number<std::uint64_t>(), tree_.size() - 1);
    expect_identical(*target.store);
  }

  fs::path dir_;
  std::string run_;
  std::vector<store::ObjectPath> tree_;
  std::map<std::string, std::uint64_t> sizes_;
  std::uint64_t tree_bytes_ = 0;
};

TEST_F(MigrateStorageTest, LocalToRadosgw) {
  REQUIRE_TARGET(t, "STOWAGE_TEST_RADOSGW_ENV");
  migrate_to(t);
}

TEST_F(MigrateStorageTest, LocalToAzurite) {
  REQUIRE_TARGET(t, "STOWAGE_TEST_AZURITE_ENV");
  migrate_to(t);
}

TEST_F(MigrateStorageTest, LocalToGcsFake) {
  REQUIRE_TARGET(t, "STOWAGE_TEST_GCS_ENV");
  migrate_to(t);
}

/// `--to s3://`: the target is the remote_links.yml connection that allows both buckets, as a
/// link to them would resolve; a link to another bucket is refused, naming the two.
TEST_F(MigrateStorageTest, ALinkSchemeNamesTheConnectionThatHoldsTheBuckets) {
  REQUIRE_TARGET(t, "STOWAGE_TEST_RADOSGW_ENV");
  local_source(t.config.bucket_prefix);
  make_tree(t.config.bucket_prefix, 5, 4 << 10);
  auto server = testing::cloud_server("STOWAGE_TEST_RADOSGW_ENV", "minio");
  ASSERT_TRUE(server.has_value());
  const links::Connection& c = server->connection;
  std::ofstream(dir_ / "remote_links.yml")
      << "rgw:\n  provider: minio\n  endpoint: " << c.endpoint << "\n  access_key: "
      << c.access_key << "\n  secret_key: " << c.secret_key.reveal()
      << "\n  region: us-east-1\n  buckets:\n  - " << t.config.public_bucket() << "\n  - "
      << t.config.private_bucket() << "\n";
  Outcome o = run_cli({"migrate", "storage", "--to", "s3://", "--dry-run", "--json"},
                      dir_ / "source.env");
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  EXPECT_GE(o.summary().at("would_copy").to_number<std::uint64_t>(), tree_.size()) << o.out;
  EXPECT_NE(o.summary().at("target").as_string().find("connection rgw"), std::string::npos)
      << o.out;
  o = run_cli({"migrate", "storage", "--to", "s3://some-other-bucket"}, dir_ / "source.env");
  EXPECT_EQ(o.exit_code, 2) << o.out << o.err;
  EXPECT_NE(o.err.find(t.config.public_bucket()), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find(c.secret_key.reveal()), std::string::npos) << o.err;
}

TEST_F(MigrateStorageTest, AMissingTargetBucketIsABadConfigurationNamed) {
  REQUIRE_TARGET(t, "STOWAGE_TEST_RADOSGW_ENV");
  std::string text = slurp(t.env_file);
  const fs::path env = local_source("no-such-prefix");
  (void)env;
  Outcome o = run_cli({"migrate", "storage", "--to", t.env_file.string()}, dir_ / "source.env");
  EXPECT_EQ(o.exit_code, 2) << o.out << o.err;
  EXPECT_NE(o.err.find("STORAGE_BUCKET_PREFIX"), std::string::npos) << o.err;
  // Without a prefix in the target .env, the source's buckets are looked for, and are missing.
  std::string without;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("STORAGE_BUCKET_PREFIX=")) without += line + "\n";
  }
  std::ofstream(dir_ / "target.env") << without;
  o = run_cli({"migrate", "storage", "--to", (dir_ / "target.env").string()}, dir_ / "source.env");
  EXPECT_EQ(o.exit_code, 2) << o.out << o.err;
  EXPECT_NE(o.err.find("no-such-prefix-public does not exist"), std::string::npos) << o.err;
}

/// Killed with SIGKILL at random points, then rerun: complete and correct, and no object was
/// uploaded twice except those in flight at a kill (counted by the proxy, per key).
TEST_F(MigrateStorageTest, KilledAtRandomPointsThenRerunEndsCompleteWithoutRedoingWork) {
  REQUIRE_TARGET(t, "STOWAGE_TEST_RADOSGW_ENV");
  killed_then_rerun(t);
}

/// The same on the GCS test server, whose large objects continue their resumable sessions
/// (recorded under DATA_PATH/state/gcs-sessions).
TEST_F(MigrateStorageTest, KilledOnTheWayToGcsThenRerunEndsCompleteWithoutRedoingWork) {
  REQUIRE_TARGET(t, "STOWAGE_TEST_GCS_ENV");
  killed_then_rerun(t);
}

/// The same on Azure, whose large objects continue from their staged blocks.
TEST_F(MigrateStorageTest, KilledOnTheWayToAzuriteThenRerunEndsCompleteWithoutRedoingWork) {
  REQUIRE_TARGET(t, "STOWAGE_TEST_AZURITE_ENV");
  killed_then_rerun(t);
}

void MigrateStorageTest::killed_then_rerun(Target& t) {
  local_source(t.config.bucket_prefix);
  make_tree(t.config.bucket_prefix, 160, 192 << 10);
  FaultProxy proxy(port_of(t));  // counts what is uploaded, per key
  const fs::path env = proxied_env(t, proxy.port());
  constexpr int kConcurrency = 3;
  const std::vector<std::string> args{"migrate", "storage", "--to", env.string(),
                                      "--concurrency", std::to_string(kConcurrency), "--json"};
  std::mt19937 rng(std::random_device{}());
  int kills = 0;
  for (int i = 0; i < 4; ++i) {
    // Killed while it copies: once a random share (about i+1 fifths) of the tree has gone
    // through the proxy in all, so that uploads are in flight.
    const std::uint64_t at = tree_bytes_ * (i + 1) / 5 + rng() % (tree_bytes_ / 10);
    const pid_t pid = spawn(args, dir_ / "source.env");
    for (int polls = 0; polls < 15000 && proxy.bytes_up() < at; ++polls) {
      if (::waitpid(pid, nullptr, WNOHANG) == pid) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ++kills;
    }
  }
  Outcome last = run_cli(args, dir_ / "source.env");
  ASSERT_EQ(last.exit_code, 0) << last.out << last.err;
  const json::value s = last.summary();
  EXPECT_EQ(s.at("copied").to_number<std::uint64_t>() + s.at("skipped").to_number<std::uint64_t>(),
            tree_.size());
  expect_identical(*t.store);

  // Bytes uploaded, from the proxy's log: request bodies of PUTs and POSTs (objects, parts,
  // blocks, GCS media uploads and session chunks; the rest is a few small XML or JSON bodies).
  // Per key where the path names the object (S3, Azure); GCS sessions' chunks do not.
  const bool per_key = t.config.provider != config::Provider::Google;
  std::map<std::string, std::uint64_t> uploaded;
  std::uint64_t total = 0;
  for (const auto& r : proxy.requests()) {
    if (r.method != "PUT" && r.method != "POST") continue;
    // "/<bucket>/<key>", after the account that Azure's path-style URLs put first.
    const auto bucket_at = r.path.find("/" + t.config.bucket_prefix + "-");
    uploaded[bucket_at == std::string::npos ? r.path : r.path.substr(bucket_at)] += r.body_bytes;
    total += r.body_bytes;
  }
  std::size_t twice = 0;
  std::uint64_t largest = 0;
  for (const auto& [key, size] : sizes_) largest = std::max(largest, size);
  for (const auto& p : tree_) {
    if (!per_key) break;
    const std::uint64_t size = sizes_[p.key];
    const std::uint64_t up = uploaded["/" + p.bucket + "/" + p.key];
    EXPECT_GE(up, size) << p.to_string();
    if (up > size) ++twice;
  }
  EXPECT_GE(total, tree_bytes_);
  std::cout << "kills: " << kills << ", objects uploaded more than once: " << twice
            << ", bytes uploaded: " << total << " for a tree of " << tree_bytes_ << "\n";
  EXPECT_LE(twice, static_cast<std::size_t>(kills * kConcurrency));
  // What a kill can cost: the requests in flight, one per object being copied. A large object
  // is continued where the killed run left it (its finished parts are not sent again), so a
  // request is at most one part (8 MiB, the S3 provider's first part size and GCS's chunk;
  // Azure's blocks are 4 MiB); small bodies (completions, session starts) get 64 KiB a run.
  constexpr std::uint64_t kPartBytes = 8ull << 20;
  EXPECT_LE(total, tree_bytes_ +
                       static_cast<std::uint64_t>(kills * kConcurrency) *
                           std::min(largest, kPartBytes) +
                       static_cast<std::uint64_t>(kills + 1) * (64 << 10));
}

/// 503s and connection resets mid-upload and mid-download still end complete and correct.
TEST_F(MigrateStorageTest, FaultsOnTheWayToRadosgwStillEndCompleteAndCorrect) {
  REQUIRE_TARGET(t, "STOWAGE_TEST_RADOSGW_ENV");
  local_source(t.config.bucket_prefix);
  make_tree(t.config.bucket_prefix, 60, 64 << 10);
  FaultProxy proxy(port_of(t), {.fail_every = 7, .reset_every = 11});
  const fs::path env = proxied_env(t, proxy.port());
  Outcome o = run_cli({"migrate", "storage", "--to", env.string(), "--json"}, dir_ / "source.env");
  EXPECT_EQ(o.exit_code, 0) << o.out << o.err;
  EXPECT_EQ(o.summary().at("copied").to_number<std::uint64_t>(), tree_.size()) << o.out;
  EXPECT_GE(proxy.errors_injected(), 1u) << "no fault was injected";
  EXPECT_GE(proxy.resets_injected(), 1u) << "no reset was injected";
  expect_identical(*t.store);
}

TEST_F(MigrateStorageTest, FaultsOnTheWayToAzuriteStillEndCompleteAndCorrect) {
  REQUIRE_TARGET(t, "STOWAGE_TEST_AZURITE_ENV");
  local_source(t.config.bucket_prefix);
  make_tree(t.config.bucket_prefix, 60, 64 << 10);
  FaultProxy proxy(port_of(t), {.fail_every = 7, .reset_every = 11});
  const fs::path env = proxied_env(t, proxy.port());
  Outcome o = run_cli({"migrate", "storage", "--to", env.string(), "--json"}, dir_ / "source.env");
  EXPECT_EQ(o.exit_code, 0) << o.out << o.err;
  EXPECT_EQ(o.summary().at("copied").to_number<std::uint64_t>(), tree_.size()) << o.out;
  expect_identical(*t.store);
}

/// Cloud to cloud: the configured store is radosgw, the target Azurite.
TEST_F(MigrateStorageTest, RadosgwToAzurite) {
  REQUIRE_TARGET(shared_s3, "STOWAGE_TEST_RADOSGW_ENV");
  REQUIRE_TARGET(shared_azure, "STOWAGE_TEST_AZURITE_ENV");
  // The whole buckets move, so they must be this test's alone: other tests write into the
  // servers' usual buckets while it runs (a rerun would rightly copy their new objects).
  Target s3 = isolated(shared_s3, "radosgw");
  Target azure = isolated(shared_azure, "azurite");
  ASSERT_EQ(s3.config.bucket_prefix, azure.config.bucket_prefix);
  // The tree on radosgw: uploaded there by a first migration from a local folder.
  local_source(s3.config.bucket_prefix);
  make_tree(s3.config.bucket_prefix, 20, 64 << 10);
  Outcome up = run_cli({"migrate", "storage", "--to", s3.env_file.string()}, dir_ / "source.env");
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;

  Outcome o = run_cli({"migrate", "storage", "--to", azure.env_file.string(), "--json"},
                      s3.env_file);
  ASSERT_EQ(o.exit_code, 0) << o.out << o.err;
  expect_identical(*azure.store);
  Outcome again = run_cli({"migrate", "storage", "--to", azure.env_file.string(), "--json"},
                          s3.env_file);
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(again.summary().at("copied").to_number<std::uint64_t>(), 0u) << again.out;
}

/// The docs' story end to end: a server on local storage with uploaded images, the migration,
/// then `stowage serve` with STORAGE_PROVIDER=minio on the same data and catalog: every
/// images.download is byte-identical.
TEST_F(MigrateStorageTest, AfterTheMigrationAndAProviderSwitchEveryDownloadIsIdentical) {
  REQUIRE_TARGET(t, "STOWAGE_TEST_RADOSGW_ENV");
  const fs::path local_env = dir_ / "server-local.env";
  std::ofstream(local_env) << "STORAGE_PROVIDER=http\nSTORAGE_BUCKET_PREFIX="
                           << t.config.bucket_prefix << "\n";
  ::setenv("STOWAGE_TEST_STORE_ENV", local_env.c_str(), 1);
  auto server = std::make_unique<testing::TestServer>();
  ::unsetenv("STOWAGE_TEST_STORE_ENV");
  auto api = server->client();
  auto ok = [&](const std::string& method, const json::value& body) {
    auto r = api.call(method, body);
    EXPECT_EQ(r.status, 200) << method << ": " << r.body;
    return r.json();
  };
  const auto team = ok("teams.list", {{"filter", json::array{}}}).at("entities").at(0).at("id");
  const auto ws = ok("workspaces.list", {{"teamId", team}, {"filter", json::array{}}})
                      .at("entities").at(0).at("id");
  const auto project = ok("projects.add", {{"workspaceId", ws}, {"name", "p" + run_},
                                           {"description", ""}, {"type", "images"}}).at("id");
  const auto dataset = ok("datasets.add", {{"projectId", project}, {"name", "d"},
                                           {"description", ""}, {"parentId", nullptr}}).at("id");
  std::vector<std::string> images;
  std::vector<testing::FormFile> parts;
  json::array add;
  for (int i = 0; i < 6; ++i) {
    images.push_back(testing::make_image(40 + i, 30, i % 2 ? "png" : "jpeg", i + 7));
    parts.push_back({std::to_string(i) + "-file", std::to_string(i), "image/*", images.back()});
    add.push_back({{"title", "img" + std::to_string(i)}, {"hash", testing::sdk_hash(images.back())}});
  }
  ASSERT_EQ(api.upload(parts).status, 200);
  const auto added = ok("images.bulk.add", {{"datasetId", dataset}, {"images", add},
                                            {"forceMetadataForLinks", true},
                                            {"skipValidation", false}});
  const std::string token = server->admin_token();
  const fs::path data = server->data_path();
  const fs::path data_dir = data / "data";

  // Migrate: the source is the server's own DATA_PATH.
  const fs::path source_env = dir_ / "source.env";
  std::ofstream(source_env) << "DATA_PATH=" << data_dir.string()
                            << "\nSTORAGE_PROVIDER=http\nSTORAGE_BUCKET_PREFIX="
                            << t.config.bucket_prefix << "\n";
  Outcome m = run_cli({"migrate", "storage", "--to", t.env_file.string(), "--json"}, source_env);
  ASSERT_EQ(m.exit_code, 0) << m.out << m.err;
  EXPECT_GE(m.summary().at("copied").to_number<std::uint64_t>() +
                m.summary().at("skipped").to_number<std::uint64_t>(),
            images.size());

  // Switch: `stowage serve` on radosgw with the same DATA_PATH and catalog.
  int port = 0;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    ::close(fd);
  }
  std::string text = slurp(t.env_file);
  text += "\nDATA_PATH=" + data_dir.string() + "\nDATABASE_URL=sqlite:" +
          (data / "stowage.db").string() + "\nSTOWAGE_LISTEN=127.0.0.1:" + std::to_string(port) +
          "\n";
  const fs::path switched = dir_ / "switched.env";
  std::ofstream(switched) << text;
  // The local server keeps running (its destructor removes the folder) but is not asked again.
  const pid_t serve = spawn({"serve"}, switched);
  testing::HttpClient remote("http://127.0.0.1:" + std::to_string(port), token);
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    std::this_thread::sleep_for(100ms);
    up = remote.get("/healthz").status == 200;
  }
  ASSERT_TRUE(up) << slurp(dir_ / "err.txt");
  for (std::size_t i = 0; i < images.size(); ++i) {
    auto dl = remote.call("images.download", {{"id", added.as_array().at(i).at("id")}});
    EXPECT_EQ(dl.status, 200) << dl.body;
    EXPECT_TRUE(dl.body == images[i]) << "image " << i << " differs after the switch";
  }
  ::kill(serve, SIGTERM);
  ::waitpid(serve, nullptr, 0);
  server.reset();
}

}  // namespace
}  // namespace stowage
