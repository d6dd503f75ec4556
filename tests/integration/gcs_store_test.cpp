// SPDX-License-Identifier: Apache-2.0
// The GCS store against the fake GCS server (tests/fakes/gcs/server.mjs), started by the ctest
// fixture `gcs` (scripts/test-servers/gcs.sh), which names its .env in STOWAGE_TEST_GCS_ENV:
// the conformance suite, token reuse, a resumable upload killed and resumed, secrets kept out of
// messages, and a cross-check of the fake with the real gcloud CLI. Without the server (or
// gcloud) the tests are skipped, unless CI=true.
#include "stowage/store/gcs/gcs_store.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "conformance/store_conformance.hpp"
#include "stowage/config/config.hpp"

namespace stowage::testing {
namespace {

namespace fs = std::filesystem;
using store::ObjectPath;
using store::gcs::GcsOptions;
using store::gcs::GcsStore;

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

/// What gcs.sh wrote: the Stowage configuration plus the fake's own variables.
struct GcsEnv {
  config::Config config;
  std::map<std::string, std::string> vars;
};

Result<GcsEnv> gcs_env() {
  const char* path = std::getenv("STOWAGE_TEST_GCS_ENV");
  if (path == nullptr || *path == '\0') {
    return make_error(ErrorCode::Unavailable,
                      "STOWAGE_TEST_GCS_ENV is not set (run through ctest, or "
                      "scripts/test-servers/gcs.sh start DIR)");
  }
  if (!fs::exists(path)) {
    return make_error(ErrorCode::Unavailable, std::string(path) + " does not exist");
  }
  GcsEnv env;
  config::LoadOptions load;
  load.env_file = path;
  STOWAGE_ASSIGN_OR_RETURN(env.config, config::load(load));
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  STOWAGE_ASSIGN_OR_RETURN(env.vars, config::parse_env_text(text.str()));
  return env;
}

Result<std::unique_ptr<GcsStore>> open_store(const GcsEnv& env, std::uint64_t chunk_bytes) {
  STOWAGE_ASSIGN_OR_RETURN(auto options, GcsOptions::from_config(env.config));
  options.chunk_bytes = chunk_bytes;
  options.retry.max_attempts = 3;
  STOWAGE_ASSIGN_OR_RETURN(auto store, GcsStore::open(std::move(options)));
  // Reachable? One cheap listing; a refused connection is "not running", not a failure.
  auto probe = store->list(ObjectPath{env.config.public_bucket(), ""}, {"", std::nullopt, 1, ""});
  if (!probe) {
    Error e = std::move(probe).error();
    if (e.code == ErrorCode::Timeout) e.code = ErrorCode::Unavailable;
    return e;
  }
  return store;
}

/// The conformance store uses 1 MiB chunks, so that the suite's multi-MiB objects go through
/// resumable sessions and the small ones through single requests.
Result<StoreUnderTest> make_gcs_store() {
  STOWAGE_ASSIGN_OR_RETURN(auto env, gcs_env());
  STOWAGE_ASSIGN_OR_RETURN(auto store, open_store(env, 1 << 20));
  StoreUnderTest out;
  out.store = std::move(store);
  out.bucket = env.config.public_bucket();
  out.other_bucket = env.config.private_bucket();
  return out;
}

INSTANTIATE_TEST_SUITE_P(Gcs, StoreConformance,
                         ::testing::Values(StoreFactory{"gcs", &make_gcs_store}),
                         store_factory_name);

std::string random_prefix(std::string_view name) {
  std::random_device rd;
  return std::string(name) + "-" + std::to_string(rd()) + std::to_string(rd()) + "/";
}

std::vector<std::byte> read_all(store::ObjectStore& s, const ObjectPath& p) {
  auto reader = s.open_read(p, {}).value();
  std::vector<std::byte> out;
  std::vector<std::byte> buffer(1 << 16);
  while (const std::size_t n = reader->read(buffer).value()) {
    out.insert(out.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
  }
  return out;
}

class GcsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = gcs_env();
    if (!env) {
      if (!in_ci()) GTEST_SKIP() << env.error().to_string();
      FAIL() << env.error().to_string();
    }
    env_ = std::move(*env);
    auto store = open_store(env_, 256 * 1024);
    if (!store) {
      if (store.error().code == ErrorCode::Unavailable && !in_ci()) {
        GTEST_SKIP() << store.error().to_string();
      }
      FAIL() << store.error().to_string();
    }
    store_ = std::move(*store);
    prefix_ = random_prefix("gcs");
  }
  ObjectPath at(std::string_view name) const {
    return ObjectPath{env_.config.public_bucket(), prefix_ + std::string(name)};
  }
  std::string endpoint() const { return env_.config.storage_endpoint; }

  GcsEnv env_;
  std::unique_ptr<GcsStore> store_;
  std::string prefix_;
};

TEST_F(GcsStoreTest, OneTokenExchangeServesEveryRequest) {
  auto& tokens = dynamic_cast<auth::ServiceAccountTokenSource&>(store_->tokens());
  const auto before = tokens.exchanges();
  for (int i = 0; i < 10; ++i) {
    auto writer = store_->open_write(at("t" + std::to_string(i)), {}).value();
    writer->write(pattern_bytes(i, 1000)).value();
    writer->commit().value();
    store_->stat(at("t" + std::to_string(i))).value();
    store_->remove(at("t" + std::to_string(i))).value();
  }
  EXPECT_EQ(tokens.exchanges(), before) << "the probe's token is still good";
  EXPECT_EQ(before, 1u);
}

TEST_F(GcsStoreTest, TheFakeRefusesMissingAndUnknownTokens) {
  auto transport = http::make_curl_transport();
  http::Request request;
  request.url = endpoint() + "/storage/v1/b/" + env_.config.public_bucket() + "/o";
  EXPECT_EQ(transport->send(request).value().status, 401);
  request.headers = {{"Authorization", "Bearer ya29.made-up"}};
  EXPECT_EQ(transport->send(request).value().status, 401);
}

TEST_F(GcsStoreTest, LargeWritesGoThroughResumableChunksOfBoundedSize) {
  const auto bytes = pattern_bytes(9, (1 << 20) + 77);  // 4 chunks of 256 KiB and a tail
  auto writer = store_->open_gcs_write(at("chunked.bin"), {}).value();
  for (std::size_t off = 0; off < bytes.size(); off += 100000) {
    writer->write(std::span(bytes).subspan(off, std::min<std::size_t>(100000, bytes.size() - off)))
        .value();
    EXPECT_LT(writer->persisted_bytes() + 256 * 1024, off + 100000 + 256 * 1024 + 1);
  }
  ASSERT_TRUE(writer->session_uri().has_value()) << "beyond one chunk: a resumable session";
  EXPECT_EQ(writer->persisted_bytes(), 1u << 20);
  EXPECT_EQ(store_->stat(at("chunked.bin")).error().code, ErrorCode::NotFound)
      << "nothing visible before commit";
  const auto info = writer->commit().value();
  EXPECT_EQ(info.size, bytes.size());
  EXPECT_EQ(read_all(*store_, at("chunked.bin")), bytes);
  store_->remove(at("chunked.bin")).value();
}

TEST_F(GcsStoreTest, ResumableUploadKilledMidwayResumesFromTheServersOffset) {
  const auto bytes = pattern_bytes(33, (3 << 20) + 1234);
  const auto path = at("resumed.bin");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The uploader: sends 1 MiB in chunks, hands over its session, and dies mid-upload with
    // 100 more bytes in its buffer.
    ::close(fds[0]);
    auto store = open_store(env_, 256 * 1024);
    if (!store) ::_exit(2);
    auto writer = (*store)->open_gcs_write(path, {});
    if (!writer) ::_exit(3);
    if (!(*writer)->write(std::span(bytes).first((1 << 20) + 100))) ::_exit(4);
    const std::string uri = (*writer)->session_uri()->reveal() + "\n";
    if (::write(fds[1], uri.data(), uri.size()) != static_cast<ssize_t>(uri.size())) ::_exit(5);
    ::pause();
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string uri;
  char c = 0;
  while (::read(fds[0], &c, 1) == 1 && c != '\n') uri += c;
  ::close(fds[0]);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  ASSERT_FALSE(uri.empty());

  EXPECT_EQ(store_->stat(path).error().code, ErrorCode::NotFound) << "a dead upload shows nothing";
  auto writer = store_->resume_write(path, Redacted(uri)).value();
  EXPECT_EQ(writer->persisted_bytes(), 1u << 20) << "the server kept every confirmed chunk";
  const auto rest = std::span(bytes).subspan(writer->persisted_bytes());
  for (std::size_t off = 0; off < rest.size(); off += 300000) {
    writer->write(rest.subspan(off, std::min<std::size_t>(300000, rest.size() - off))).value();
  }
  const auto info = writer->commit().value();
  EXPECT_EQ(info.size, bytes.size());
  EXPECT_EQ(read_all(*store_, path), bytes);

  // A session that was cancelled cannot be resumed.
  auto aborted = store_->open_gcs_write(at("cancelled.bin"), {}).value();
  aborted->write(pattern_bytes(1, 600000)).value();
  const auto cancelled_uri = *aborted->session_uri();
  aborted->abort().value();
  auto gone = store_->resume_write(at("cancelled.bin"), cancelled_uri);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ErrorCode::NotFound);
  const std::string id = cancelled_uri.reveal().substr(cancelled_uri.reveal().find("upload_id"));
  EXPECT_EQ(gone.error().to_string().find(id), std::string::npos) << "session ids are secrets";
  store_->remove(path).value();
}

/// WriteOptions::resume_id with a sessions folder: a writer that never finished (its process
/// died: here, leaked) leaves its session recorded, and a later writer with the same id and the
/// whole stream continues it, sending only what the server does not hold.
TEST_F(GcsStoreTest, AWriterWithTheSameResumeIdContinuesTheRecordedSession) {
  namespace fs = std::filesystem;
  const fs::path sessions = fs::temp_directory_path() / random_prefix("gcs-sessions");
  auto options = GcsOptions::from_config(env_.config).value();
  options.chunk_bytes = 256 * 1024;
  options.sessions_dir = sessions;
  auto store = GcsStore::open(options).value();
  const auto bytes = pattern_bytes(44, (2 << 20) + 777);
  const auto path = at("continued.bin");
  const store::WriteOptions write{.size_hint = bytes.size(), .resume_id = "source-v1"};

  auto first = store->open_write(path, write).value();
  first->write(std::span(bytes).first(1 << 20)).value();
  (void)first.release();  // dies without committing or aborting
  ASSERT_EQ(std::distance(fs::directory_iterator(sessions), fs::directory_iterator()), 1);
  for (const auto& e : fs::directory_iterator(sessions)) {
    EXPECT_EQ(fs::status(e).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  }

  auto second = store->open_gcs_write(path, write).value();
  EXPECT_GT(second->persisted_bytes(), 0u) << "the recorded session was not continued";
  for (std::size_t off = 0; off < bytes.size(); off += 300000) {
    second->write(std::span(bytes).subspan(off, std::min<std::size_t>(300000, bytes.size() - off)))
        .value();
  }
  EXPECT_EQ(second->commit().value().size, bytes.size());
  EXPECT_EQ(read_all(*store_, path), bytes);
  EXPECT_TRUE(fs::is_empty(sessions)) << "a finished upload forgets its session";
  // Another id never continues it.
  auto other = store->open_gcs_write(at("other.bin"), {.size_hint = 10, .resume_id = "source-v2"});
  EXPECT_EQ(other.value()->persisted_bytes(), 0u);
  store_->remove(path).value();
  fs::remove_all(sessions);
}

TEST_F(GcsStoreTest, CreateOnlyWritesUseIfGenerationMatchZero) {
  const store::WriteOptions once{std::nullopt, true};
  auto first = store_->open_write(at("once"), once).value();
  first->write(pattern_bytes(1, 10)).value();
  first->commit().value();
  for (const std::size_t size : {std::size_t{10}, std::size_t{700000}}) {  // single and resumable
    auto again = store_->open_write(at("once"), once).value();
    again->write(pattern_bytes(2, size)).value();
    auto refused = again->commit();
    ASSERT_FALSE(refused) << size;
    EXPECT_EQ(refused.error().code, ErrorCode::AlreadyExists) << refused.error().to_string();
  }
  EXPECT_EQ(read_all(*store_, at("once")), pattern_bytes(1, 10));
  store_->remove(at("once")).value();
}

/// Writes a service-account JSON like gcs.sh's, but with a key the fake never saw.
fs::path write_foreign_key_file(const fs::path& dir, const fs::path& real) {
  const fs::path key = dir / "other.pem";
  const std::string cmd = "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out '" +
                          key.string() + "' 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) return {};
  std::ifstream real_in(real);
  std::stringstream real_text;
  real_text << real_in.rdbuf();
  auto sa = boost::json::parse(real_text.str()).as_object();
  std::ifstream key_in(key);
  std::stringstream key_text;
  key_text << key_in.rdbuf();
  sa["private_key"] = key_text.str();
  sa["private_key_id"] = "not-registered";
  const fs::path out = dir / "other-key.json";
  std::ofstream(out) << boost::json::serialize(sa);
  fs::remove(key);
  return out;
}

TEST_F(GcsStoreTest, AnotherKeyForTheSameAccountIsInvalidGrantAndNothingLeaks) {
  const fs::path dir = fs::temp_directory_path() / random_prefix("stowage-gcs-key");
  fs::create_directories(dir);
  const fs::path other = write_foreign_key_file(dir, env_.config.storage_credentials_path);
  ASSERT_FALSE(other.empty());
  auto options = GcsOptions::from_config(env_.config).value();
  options.credentials_path = other;
  auto store = GcsStore::open(options).value();
  auto refused = store->stat(at("anything"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::Unauthenticated);
  const std::string text = refused.error().to_string();
  EXPECT_NE(text.find("invalid_grant"), std::string::npos) << text;
  EXPECT_NE(text.find("stat gcs://"), std::string::npos) << text;
  EXPECT_EQ(text.find("PRIVATE KEY"), std::string::npos) << text;
  EXPECT_EQ(text.find("eyJ"), std::string::npos) << "no JWT (base64 of '{\"') in messages";

  // Errors of a working store name the object, never the bearer token.
  for (const auto& e :
       {store_->stat(at("missing")).error(), store_->open_read(at("missing"), {}).error(),
        store_->open_read(ObjectPath{"stowage-no-such-bucket", "k"}, {}).error()}) {
    EXPECT_EQ(e.to_string().find("ya29"), std::string::npos) << e.to_string();
    EXPECT_EQ(e.to_string().find("Bearer"), std::string::npos) << e.to_string();
  }
  fs::remove_all(dir);
}

// ---- the fake against the real gcloud CLI
// --------------------------------------------------------

struct Run {
  int status = -1;
  std::string output;
};

Run run(const std::string& command) {
  Run out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> buffer{};
  while (const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) {
    out.output.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

TEST_F(GcsStoreTest, GcloudCrossCheck) {
  if (run("command -v gcloud").status != 0) {
    if (!in_ci()) GTEST_SKIP() << "gcloud is not installed";
    FAIL() << "gcloud is not installed";
  }
  const fs::path dir = fs::temp_directory_path() / random_prefix("stowage-gcloud");
  fs::create_directories(dir);
  // gcloud's own config in a temp folder; token and API endpoints on the fake; no prompts, no
  // update checks, no usage reports. 1 MiB resumable threshold: a 3 MiB file goes resumable.
  const std::string env = "env CLOUDSDK_CONFIG=" + quote((dir / "config").string()) +
                          " CLOUDSDK_AUTH_TOKEN_HOST=" + endpoint() + "/token" +
                          " CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=" + endpoint() + "/" +
                          " CLOUDSDK_CORE_DISABLE_PROMPTS=1"
                          " CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true"
                          " CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true"
                          " CLOUDSDK_STORAGE_RESUMABLE_THRESHOLD=1MiB ";
  const std::string gs = "gs://" + env_.config.public_bucket() + "/" + prefix_;
  auto transport = http::make_curl_transport();
  // Resumable sessions opened for this test's objects (other tests share the server).
  const std::string mine = env_.config.public_bucket() + "/" + prefix_;
  auto sessions = [&] {
    http::Request stats;
    stats.url = endpoint() + "/_fake/stats";
    const auto body = transport->send(stats).value();
    const boost::json::value parsed = boost::json::parse(body.body_text());
    int n = 0;
    for (const auto& object : parsed.at("resumable_session_objects").as_array()) {
      if (std::string_view(object.as_string()).starts_with(mine)) ++n;
    }
    return n;
  };

  auto activated = run(env + "gcloud auth activate-service-account --key-file=" +
                       quote(env_.config.storage_credentials_path.string()));
  ASSERT_EQ(activated.status, 0) << activated.output;

  const std::string small = "small file, via gcloud\n";
  std::ofstream(dir / "small.txt") << small;
  const auto big = pattern_bytes(77, 3 << 20);
  std::ofstream(dir / "big.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(big.data()), static_cast<std::streamsize>(big.size()));
  const int sessions_before = sessions();
  auto cp = run(env + "gcloud storage cp " + quote((dir / "small.txt").string()) + " " +
                quote((dir / "big.bin").string()) + " " + gs);
  ASSERT_EQ(cp.status, 0) << cp.output;
  EXPECT_EQ(sessions(), sessions_before + 1) << "the 3 MiB file went through a resumable session";
  EXPECT_EQ(read_all(*store_, at("small.txt")), as_bytes(small));
  EXPECT_EQ(read_all(*store_, at("big.bin")), big);

  auto writer = store_->open_write(at("from-stowage.txt"), {}).value();
  writer->write(as_bytes("written by Stowage\n")).value();
  writer->commit().value();
  auto ls = run(env + "gcloud storage ls " + gs);
  ASSERT_EQ(ls.status, 0) << ls.output;
  for (const std::string name : {"small.txt", "big.bin", "from-stowage.txt"}) {
    EXPECT_NE(ls.output.find(gs + name), std::string::npos) << ls.output;
  }
  auto cat = run(env + "gcloud storage cat " + gs + "from-stowage.txt");
  ASSERT_EQ(cat.status, 0) << cat.output;
  EXPECT_EQ(cat.output, "written by Stowage\n");

  auto rm = run(env + "gcloud storage rm " + gs + "small.txt " + gs + "big.bin " + gs +
                "from-stowage.txt");
  ASSERT_EQ(rm.status, 0) << rm.output;
  EXPECT_TRUE(store_->list(at(""), {}).value().objects.empty());

  // The same account with a key the server does not know: refused at the token exchange.
  const fs::path other = write_foreign_key_file(dir, env_.config.storage_credentials_path);
  const std::string other_env = env + "CLOUDSDK_CONFIG=" + quote((dir / "config2").string()) + " ";
  // gcloud exchanges a token when it activates an account: that is where the fake says no.
  auto refused =
      run(other_env + "gcloud auth activate-service-account --key-file=" + quote(other.string()));
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.output.find("invalid_grant"), std::string::npos) << refused.output;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace stowage::testing
