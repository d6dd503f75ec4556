// SPDX-License-Identifier: Apache-2.0
// The conformance suite over AzureStore against Azurite (scripts/test-servers/azurite.sh, whose
// .env STOWAGE_TEST_AZURITE_ENV names), plus what only Azure has: Shared Key on path-style and
// production-style URLs, SAS tokens (and wrong, tampered and expired ones), blocks with bounded
// memory, a killed upload resumed from Get Block List, retries of ServerBusy.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "conformance/store_conformance.hpp"
#include "stowage/auth/azure_shared_key.hpp"
#include "stowage/config/config.hpp"
#include "stowage/io/checksum.hpp"
#include "stowage/store/azure/azure_internal.hpp"
#include "stowage/store/azure/azure_store.hpp"

namespace stowage::testing {
namespace {

using store::ObjectPath;
using store::azure::AzureOptions;
using store::azure::AzureStore;

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

/// The Azurite .env written by scripts/test-servers/azurite.sh, or Unavailable.
Result<config::Config> azurite_config() {
  const char* env = std::getenv("STOWAGE_TEST_AZURITE_ENV");
  if (env == nullptr || *env == '\0') {
    return make_error(ErrorCode::Unavailable, "STOWAGE_TEST_AZURITE_ENV is not set");
  }
  if (!std::filesystem::exists(env)) {
    return make_error(ErrorCode::Unavailable, std::string(env) + " does not exist");
  }
  config::LoadOptions load;
  load.env_file = env;
  load.cwd = std::filesystem::temp_directory_path();
  STOWAGE_ASSIGN_OR_RETURN(auto config, config::load(load));
  return config;
}

/// A .env variable that config::load does not keep (AZURITE_PORT).
std::string env_value(const std::string& name) {
  const char* env = std::getenv("STOWAGE_TEST_AZURITE_ENV");
  std::ifstream in(env ? env : "");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(name + "=")) return line.substr(name.size() + 1);
  }
  return {};
}

/// Probes the public container; Unavailable when Azurite does not answer.
Status probe(AzureStore& store, const std::string& bucket) {
  store::ListOptions one;
  one.max_keys = 1;
  auto listed = store.list(ObjectPath{bucket, ""}, one);
  if (!listed && listed.error().retryable) {
    Error e = listed.error();
    e.code = ErrorCode::Unavailable;
    return e;
  }
  if (!listed) return listed.error();
  return {};
}

AzureOptions quick_retries(AzureOptions options) {
  options.retry.max_attempts = 3;
  options.retry.base_delay = std::chrono::milliseconds(20);
  return options;
}

Result<StoreUnderTest> make_azure_store() {
  STOWAGE_ASSIGN_OR_RETURN(auto config, azurite_config());
  STOWAGE_ASSIGN_OR_RETURN(auto options, AzureOptions::from_config(config));
  STOWAGE_ASSIGN_OR_RETURN(auto store, AzureStore::open(quick_retries(std::move(options))));
  STOWAGE_TRY(probe(*store, config.public_bucket()));
  StoreUnderTest out;
  out.store = std::move(store);
  out.bucket = config.public_bucket();
  out.other_bucket = config.private_bucket();
  return out;
}

INSTANTIATE_TEST_SUITE_P(Azurite, StoreConformance,
                         ::testing::Values(StoreFactory{"azurite", &make_azure_store, 2100}),
                         store_factory_name);

// ---- helpers for the Azure-only tests ----------------------------------------------------------

/// A transport that counts requests by kind and can fail chosen ones with 503 ServerBusy.
class CountingTransport final : public http::Transport {
 public:
  explicit CountingTransport(std::unique_ptr<http::Transport> inner) : inner_(std::move(inner)) {}

  Result<http::Response> send(const http::Request& request, std::uint64_t max) override {
    const bool put_block = request.url.find("comp=block&") != std::string::npos;
    if (put_block) {
      const int n = put_blocks_.fetch_add(1) + 1;
      if (n <= busy_first_put_blocks_) {
        http::Response busy;
        busy.status = 503;
        busy.headers = {{"x-ms-error-code", "ServerBusy"}, {"x-ms-request-id", "fake-503"}};
        return busy;
      }
    }
    return inner_->send(request, max);
  }
  Result<std::unique_ptr<http::ResponseStream>> open(const http::Request& request) override {
    return inner_->open(request);
  }

  std::atomic<int> put_blocks_{0};
  int busy_first_put_blocks_ = 0;

 private:
  std::unique_ptr<http::Transport> inner_;
};

/// Tests that need Azurite, its config, and the account key.
class AzuriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = azurite_config();
    if (config) {
      auto options = AzureOptions::from_config(*config);
      if (options) {
        auto store = AzureStore::open(quick_retries(*options));
        if (store && probe(**store, config->public_bucket())) {
          config_ = std::move(*config);
          options_ = quick_retries(std::move(*options));
          store_ = std::move(*store);
          prefix_ = "azure-" + std::to_string(std::random_device{}()) + "/";
          return;
        }
      }
    }
    if (in_ci()) FAIL() << "Azurite is not available but CI=true";
    GTEST_SKIP() << "Azurite unavailable (run scripts/test-servers/azurite.sh start)";
  }
  void TearDown() override {
    if (!store_) return;
    for (const std::string& b : {bucket(), config_.private_bucket()}) {
      auto page = store_->list(ObjectPath{b, prefix_}, {});
      if (!page) continue;
      for (const auto& o : page->objects) (void)store_->remove(o.path);
    }
  }

  std::string bucket() const { return config_.public_bucket(); }
  ObjectPath at(const std::string& name) const { return ObjectPath{bucket(), prefix_ + name}; }
  std::string port() const { return env_value("AZURITE_PORT"); }

  /// A service SAS for one container (sr=c), signed with the account key.
  std::string container_sas(const std::string& container, const std::string& permissions,
                            std::chrono::system_clock::time_point expiry) const {
    const std::time_t t = std::chrono::system_clock::to_time_t(expiry);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char se[32];
    std::strftime(se, sizeof se, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const std::string version = "2020-12-06";
    // sp, st, se, resource, si, sip, spr, sv, sr, snapshot, ses, rscc, rscd, rsce, rscl, rsct
    const std::string sts = permissions + "\n\n" + se + "\n/blob/" + options_.account + "/" +
                            container + "\n\n\n\n" + version + "\nc\n\n\n\n\n\n\n";
    const std::string sig = auth::azure::signature(sts, options_.shared_key->key);
    return "sv=" + version + "&sr=c&sp=" + permissions +
           "&se=" + store::azure::internal::encode_query(se) +
           "&sig=" + store::azure::internal::encode_query(sig);
  }

  std::unique_ptr<AzureStore> sas_store(const std::string& sas) const {
    auto options =
        AzureOptions::from_settings(options_.endpoint, std::nullopt, options_.account, sas).value();
    return AzureStore::open(quick_retries(std::move(options))).value();
  }

  static void put_text(store::ObjectStore& s, const ObjectPath& p, std::string_view text) {
    auto writer = s.open_write(p, {}).value();
    writer->write(std::as_bytes(std::span(text.data(), text.size()))).value();
    writer->commit().value();
  }
  static std::string read_text(store::ObjectStore& s, const ObjectPath& p) {
    auto reader = s.open_read(p, {}).value();
    std::string out;
    std::vector<std::byte> buffer(1 << 16);
    while (const std::size_t n = reader->read(buffer).value()) {
      out.append(reinterpret_cast<const char*>(buffer.data()), n);
    }
    return out;
  }

  config::Config config_;
  AzureOptions options_;
  std::unique_ptr<AzureStore> store_;
  std::string prefix_;
};

/// Resident memory of this process, in bytes.
std::uint64_t rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

/// Pattern bytes for any offset, without holding the whole object.
void fill(std::uint64_t offset, std::span<std::byte> out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::uint64_t x = (offset + i) * 0x9e3779b97f4a7c15ULL;
    out[i] = static_cast<std::byte>((x >> 29) ^ ((offset + i) >> 12));
  }
}

// ---- Shared Key on both URL styles ------------------------------------------------------------

TEST_F(AzuriteTest, SharedKeyOnProductionStyleUrl) {
  // https://<account>.blob.core.windows.net has the account in the host, not the path: the
  // canonicalized resource names it once. Azurite takes the account from such a host too.
  AzureOptions options = options_;
  const std::string host = options_.account + ".blob.core.windows.net";
  options.endpoint = "http://" + host + ":" + port();
  options.connect_to = {host + ":" + port() + ":127.0.0.1:" + port()};
  auto store = AzureStore::open(std::move(options)).value();
  put_text(*store, at("host-style/a b.txt"), "via the account's host name");
  EXPECT_EQ(read_text(*store_, at("host-style/a b.txt")), "via the account's host name");
  const auto page = store->list(ObjectPath{bucket(), prefix_ + "host-style/"}, {}).value();
  ASSERT_EQ(page.objects.size(), 1u);
  EXPECT_EQ(page.objects[0].path.key, prefix_ + "host-style/a b.txt");
  store->remove(at("host-style/a b.txt")).value();
  EXPECT_EQ(store_->stat(at("host-style/a b.txt")).error().code, ErrorCode::NotFound);
}

TEST_F(AzuriteTest, WrongKeyIsAClearUnauthenticatedErrorWithoutTheKey) {
  // A valid base64 key that is not the account's; the sentinel must never show.
  const std::string wrong = io::to_base64(std::span(
      reinterpret_cast<const unsigned char*>("SENTINEL-WRONG-KEY-0123456789abcdefghij"), 39));
  auto options =
      AzureOptions::from_settings(options_.endpoint, std::nullopt, options_.account, wrong).value();
  auto store = AzureStore::open(quick_retries(std::move(options))).value();
  auto st = store->stat(at("anything"));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::Unauthenticated) << st.error().to_string();
  auto writer = store->open_write(at("never"), {}).value();
  writer->write(std::as_bytes(std::span("x", 1))).value();
  auto committed = writer->commit();
  ASSERT_FALSE(committed);
  const std::string text = committed.error().to_string();
  EXPECT_EQ(committed.error().code, ErrorCode::Unauthenticated) << text;
  EXPECT_NE(text.find("PutBlob azure://"), std::string::npos) << text;
  EXPECT_NE(text.find("STORAGE_SECRET_KEY"), std::string::npos) << "tells what to fix: " << text;
  EXPECT_EQ(text.find(wrong), std::string::npos);
  EXPECT_EQ(text.find(options_.shared_key->key.reveal()), std::string::npos);
  EXPECT_EQ(text.find("SENTINEL"), std::string::npos);
}

// ---- SAS ----------------------------------------------------------------------------------------

TEST_F(AzuriteTest, ContainerSasWithAndWithoutQuestionMarkDoesEverything) {
  const std::string sas =
      container_sas(bucket(), "racwdl", std::chrono::system_clock::now() + std::chrono::hours(1));
  for (const std::string& form : {sas, "?" + sas}) {
    auto store = sas_store(form);
    // Small and block uploads, stat, ranges, listing, delete: no call a container SAS forbids.
    put_text(*store, at("sas/small"), "small via SAS");
    auto writer = store->open_write(at("sas/blocks"), {}).value();
    std::vector<std::byte> chunk(1 << 20);
    for (int i = 0; i < 6; ++i) {
      fill(static_cast<std::uint64_t>(i) << 20, chunk);
      writer->write(chunk).value();
    }
    const auto info = writer->commit().value();
    EXPECT_EQ(info.size, 6u << 20);
    EXPECT_EQ(store->stat(at("sas/blocks")).value().etag, info.etag);
    EXPECT_EQ(read_text(*store, at("sas/small")), "small via SAS");
    auto random = store->open_random(info).value();
    std::vector<std::byte> got(1000), want(1000);
    ASSERT_EQ(random->read_at(5'000'000, got).value(), 1000u);
    fill(5'000'000, want);
    EXPECT_EQ(got, want);
    store::ListOptions delimited;
    delimited.delimiter = "/";
    const auto page = store->list(ObjectPath{bucket(), prefix_}, delimited).value();
    EXPECT_EQ(page.prefixes, std::vector<std::string>{prefix_ + "sas/"});
    store->remove(at("sas/small")).value();
    store->remove(at("sas/blocks")).value();
    EXPECT_EQ(store->stat(at("sas/small")).error().code, ErrorCode::NotFound);
  }
  // The same SAS does not open the other container.
  auto other = sas_store(sas)->stat(ObjectPath{config_.private_bucket(), "k"});
  ASSERT_FALSE(other);
  EXPECT_TRUE(other.error().code == ErrorCode::Unauthenticated ||
              other.error().code == ErrorCode::PermissionDenied)
      << other.error().to_string();
}

TEST_F(AzuriteTest, TamperedExpiredAndReadOnlySasGiveClearErrorsWithoutTheSignature) {
  const auto hour = std::chrono::hours(1);
  const std::string good =
      container_sas(bucket(), "racwdl", std::chrono::system_clock::now() + hour);
  put_text(*store_, at("sas/existing"), "x");

  std::string tampered = good;
  const auto sig_at = tampered.find("sig=") + 4;
  tampered[sig_at] = tampered[sig_at] == 'A' ? 'B' : 'A';
  const std::string expired =
      container_sas(bucket(), "racwdl", std::chrono::system_clock::now() - hour);
  const std::string read_only =
      container_sas(bucket(), "rl", std::chrono::system_clock::now() + hour);

  struct Case {
    std::string name, sas;
    ErrorCode read_code;
  };
  for (const Case& c : {Case{"tampered", tampered, ErrorCode::Unauthenticated},
                        Case{"expired", expired, ErrorCode::Unauthenticated}}) {
    SCOPED_TRACE(c.name);
    auto store = sas_store(c.sas);
    auto st = store->stat(at("sas/existing"));
    ASSERT_FALSE(st);
    const std::string text = st.error().to_string();
    EXPECT_EQ(st.error().code, c.read_code) << text;
    EXPECT_NE(text.find("SAS"), std::string::npos) << "names what to check: " << text;
    const std::string sig = c.sas.substr(c.sas.find("sig=") + 4);
    EXPECT_EQ(text.find(sig), std::string::npos) << text;
    EXPECT_EQ(text.find("sig="), std::string::npos) << text;
  }
  // Read-only: reads work, writes are refused as PermissionDenied.
  auto reader = sas_store(read_only);
  EXPECT_EQ(read_text(*reader, at("sas/existing")), "x");
  auto writer = reader->open_write(at("sas/refused"), {}).value();
  writer->write(std::as_bytes(std::span("y", 1))).value();
  auto refused = writer->commit();
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().code == ErrorCode::PermissionDenied ||
              refused.error().code == ErrorCode::Unauthenticated)
      << refused.error().to_string();
  EXPECT_EQ(refused.error().to_string().find("sig="), std::string::npos);
}

// ---- blocks -------------------------------------------------------------------------------------

TEST_F(AzuriteTest, LargeBlobKeepsMemoryFlat) {
  // 64 MiB through 4 MiB blocks, 2 in flight: the writer holds about 3 blocks, never the blob.
  constexpr std::uint64_t kSize = 64ull << 20;
  AzureOptions options = options_;
  options.block_bytes = 4 << 20;
  options.max_blocks_in_flight = 2;
  auto store = AzureStore::open(options).value();

  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> peak{0};
  const std::uint64_t base = rss_bytes();
  std::thread sampler([&] {
    while (!done) {
      peak = std::max<std::uint64_t>(peak, rss_bytes());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::vector<std::byte> chunk(1 << 20);
  io::Sha256 written;
  auto writer = store->open_write(at("large.bin"), {}).value();
  for (std::uint64_t off = 0; off < kSize; off += chunk.size()) {
    fill(off, chunk);
    written.update(chunk);
    writer->write(chunk).value();
  }
  const auto info = writer->commit().value();
  EXPECT_EQ(info.size, kSize);
  // Read it back as a stream: memory stays flat too.
  io::Sha256 read;
  auto reader = store->open_read(at("large.bin"), {}).value();
  std::uint64_t total = 0;
  while (const std::size_t n = reader->read(chunk).value()) {
    read.update(std::span<const std::byte>(chunk.data(), n));
    total += n;
  }
  done = true;
  sampler.join();
  EXPECT_EQ(total, kSize);
  EXPECT_EQ(read.finish(), written.finish());
  const std::uint64_t growth = peak > base ? peak - base : 0;
  std::printf("[ azure ] 64 MiB blob: RSS growth %.1f MiB (base %.1f MiB)\n",
              static_cast<double>(growth) / (1 << 20), static_cast<double>(base) / (1 << 20));
  EXPECT_LT(growth, 40ull << 20) << "memory must not grow with the blob";
}

TEST_F(AzuriteTest, ServerBusyOnPutBlockIsRetried) {
  auto counting = std::make_unique<CountingTransport>(http::make_curl_transport());
  counting->busy_first_put_blocks_ = 2;
  CountingTransport* seen = counting.get();
  AzureOptions options = options_;
  options.retry.sleep = [](std::chrono::milliseconds) {};
  AzureStore store(options, std::move(counting));
  std::vector<std::byte> bytes((5 << 20) + 7);
  fill(0, bytes);
  auto writer = store.open_write(at("busy.bin"), {}).value();
  writer->write(bytes).value();
  EXPECT_EQ(writer->commit().value().size, bytes.size());
  EXPECT_EQ(seen->put_blocks_.load(), 2 + 2) << "two blocks, two 503s retried";

  counting = std::make_unique<CountingTransport>(http::make_curl_transport());
  counting->busy_first_put_blocks_ = 100;
  options.retry.max_attempts = 3;
  AzureStore failing(options, std::move(counting));
  auto doomed = failing.open_write(at("doomed.bin"), {}).value();
  auto status = doomed->write(bytes);
  auto committed = status ? doomed->commit() : Result<store::ObjectInfo>(status.error());
  ASSERT_FALSE(committed);
  EXPECT_EQ(committed.error().code, ErrorCode::Unavailable);
  EXPECT_TRUE(committed.error().retryable);
  EXPECT_NE(committed.error().message.find("PutBlock azure://"), std::string::npos)
      << committed.error().message;
  EXPECT_NE(committed.error().message.find("ServerBusy"), std::string::npos);
  EXPECT_EQ(store_->stat(at("doomed.bin")).error().code, ErrorCode::NotFound);
}

TEST_F(AzuriteTest, KilledUploadResumesWithoutResendingStagedBlocks) {
  constexpr std::uint64_t kBlock = 1 << 20;
  constexpr std::uint64_t kBlocks = 8;
  const std::string upload_id = "resume-" + prefix_;
  AzureOptions options = options_;
  options.block_bytes = kBlock;
  options.max_blocks_in_flight = 1;

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The crashing process: stage 5 blocks' worth, then die without committing or aborting.
    auto store = AzureStore::open(options);
    if (!store) _exit(3);
    auto writer = (*store)->open_resumable_write(at("resumed.bin"), upload_id, {});
    if (!writer) _exit(4);
    std::vector<std::byte> chunk(kBlock);
    for (std::uint64_t i = 0; i < 5; ++i) {
      fill(i * kBlock, chunk);
      if (!(*writer)->write(chunk)) _exit(5);
    }
    ::kill(::getpid(), SIGKILL);
    _exit(6);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
  EXPECT_EQ(store_->stat(at("resumed.bin")).error().code, ErrorCode::NotFound)
      << "nothing visible after the crash";

  auto counting = std::make_unique<CountingTransport>(http::make_curl_transport());
  CountingTransport* seen = counting.get();
  AzureStore store(options, std::move(counting));
  auto writer = store.open_resumable_write(at("resumed.bin"), upload_id, {}).value();
  std::vector<std::byte> chunk(kBlock);
  io::Sha256 written;
  for (std::uint64_t i = 0; i < kBlocks; ++i) {
    fill(i * kBlock, chunk);
    written.update(chunk);
    writer->write(chunk).value();
  }
  const auto info = writer->commit().value();
  EXPECT_EQ(info.size, kBlocks * kBlock);
  // The child staged at least 4 blocks (the 5th may have been in flight when it died).
  EXPECT_LE(seen->put_blocks_.load(), static_cast<int>(kBlocks - 4)) << "staged blocks re-sent";
  EXPECT_GE(seen->put_blocks_.load(), static_cast<int>(kBlocks - 5));
  io::Sha256 read;
  auto reader = store_->open_read(at("resumed.bin"), {}).value();
  while (const std::size_t n = reader->read(chunk).value()) {
    read.update(std::span<const std::byte>(chunk.data(), n));
  }
  EXPECT_EQ(read.finish(), written.finish());
}

TEST_F(AzuriteTest, ResumeWithDifferentBytesSendsThemAgain) {
  // Block ids carry a digest of their bytes: a resumed upload never reuses a block of other data.
  AzureOptions options = options_;
  options.block_bytes = 1 << 20;
  const std::string upload_id = "changed-" + prefix_;
  std::vector<std::byte> chunk(1 << 20);
  {
    auto store = AzureStore::open(options).value();
    auto writer = store->open_resumable_write(at("changed.bin"), upload_id, {}).value();
    fill(0, chunk);
    writer->write(chunk).value();
    writer->write(chunk).value();
    // Destroyed without commit: the staged block stays, like after a crash.
  }
  auto counting = std::make_unique<CountingTransport>(http::make_curl_transport());
  CountingTransport* seen = counting.get();
  AzureStore store(options, std::move(counting));
  auto writer = store.open_resumable_write(at("changed.bin"), upload_id, {}).value();
  fill(12345, chunk);  // other bytes
  writer->write(chunk).value();
  writer->commit().value();
  EXPECT_EQ(seen->put_blocks_.load(), 1);
  auto reader = store_->open_read(at("changed.bin"), {}).value();
  std::vector<std::byte> got(chunk.size());
  std::size_t total = 0;
  while (const std::size_t n = reader->read(std::span(got).subspan(total)).value()) total += n;
  EXPECT_EQ(total, chunk.size());
  EXPECT_EQ(got, chunk);
}

TEST_F(AzuriteTest, StatThenReadPinsTheEtagAcrossRanges) {
  put_text(*store_, at("pin"), "first version");
  const auto first = store_->stat(at("pin")).value();
  store::ReadOptions pinned;
  pinned.range = store::ByteRange{6, 7};
  pinned.if_match = first.etag;
  auto reader = store_->open_read(at("pin"), pinned).value();
  std::vector<std::byte> buffer(64);
  const std::size_t n = reader->read(buffer).value();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(buffer.data()), n), "version");
  put_text(*store_, at("pin"), "second version");
  auto stale = store_->open_read(at("pin"), pinned);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::PreconditionFailed);
}

// ---- a real client sees what Stowage wrote ------------------------------------------------------

/// Runs a command; its standard output, or nullopt when it failed.
std::optional<std::string> run(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string out;
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  return ::pclose(pipe) == 0 ? std::optional(out) : std::nullopt;
}

TEST_F(AzuriteTest, RcloneSeesTheSameKeysAndBytes) {
  if (!run("command -v rclone >/dev/null")) {
    if (in_ci()) FAIL() << "rclone is missing (scripts/install-deps.sh installs it)";
    GTEST_SKIP() << "rclone is not installed";
  }
  // The layout of the local store: <bucket>/images/original/<2 hex>/<2 hex>/<sha256>.<ext>, plus
  // names that need encoding.
  const std::vector<std::string> names = {
      "images/original/ab/cd/abcd0123456789abcdef0123456789abcdef0123456789abcdef0123456789.png",
      "odd names/a b+c%d\xC3\xA9.jpg"};
  for (const auto& n : names) put_text(*store_, at(n), "bytes of " + n);

  const auto conf = std::filesystem::temp_directory_path() /
                    ("stowage-rclone-" + std::to_string(std::random_device{}()) + ".conf");
  {
    std::ofstream out(conf);
    out << "[az]\ntype = azureblob\naccount = " << options_.account << "\nkey = "
        << io::to_base64(std::span(
               reinterpret_cast<const unsigned char*>(options_.shared_key->key.reveal().data()),
               options_.shared_key->key.reveal().size()))
        << "\nendpoint = " << options_.endpoint << "\nuse_emulator = true\n";
  }
  const std::string rclone = "env -u AWS_CA_BUNDLE rclone --config " + conf.string() + " ";
  const auto listed = run(rclone + "lsf -R --files-only az:" + bucket() + "/" + prefix_ + " 2>&1");
  ASSERT_TRUE(listed.has_value());
  std::vector<std::string> seen;
  std::istringstream lines(*listed);
  for (std::string line; std::getline(lines, line);) seen.push_back(line);
  std::sort(seen.begin(), seen.end());
  auto expected = names;
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(seen, expected) << *listed;
  const auto cat = run(rclone + "cat 'az:" + bucket() + "/" + prefix_ + names[1] + "'");
  ASSERT_TRUE(cat.has_value());
  EXPECT_EQ(*cat, "bytes of " + names[1]);
  std::filesystem::remove(conf);
}

}  // namespace
}  // namespace stowage::testing
