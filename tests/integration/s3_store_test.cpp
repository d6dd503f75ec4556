// SPDX-License-Identifier: Apache-2.0
// What only a real S3 server shows (Ceph's radosgw, started by the ctest fixture): a wrong key's
// error, multipart uploads with bounded memory, resume after a crash, injected faults, stale
// uploads, presigned URLs.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <random>
#include <thread>

#include "conformance/store_conformance.hpp"
#include "stowage/io/checksum.hpp"
#include "support/radosgw_env.hpp"

namespace stowage::testing {
namespace {

using store::ObjectPath;
using store::s3::S3Store;
using namespace std::chrono_literals;

constexpr std::uint64_t kMiB = 1 << 20;

std::string unique_key(std::string_view name) {
  std::random_device rd;
  return "s3test-" + std::to_string(rd()) + "/" + std::string(name);
}

/// Resident set size of this process, from /proc/self/statm.
std::uint64_t rss_bytes() {
  std::ifstream in("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

/// Writes `size` pattern bytes in 1 MiB writes; returns their SHA-256.
std::string write_pattern(store::Writer& w, std::uint64_t size, std::uint64_t seed = 1) {
  io::Sha256 sha;
  const auto chunk = pattern_bytes(seed, kMiB);
  for (std::uint64_t off = 0; off < size; off += kMiB) {
    const auto n = std::min<std::uint64_t>(kMiB, size - off);
    auto part = std::span(chunk).first(n);
    sha.update(part);
    EXPECT_TRUE(w.write(part)) << off;
  }
  return io::to_hex(sha.finish());
}

std::string read_sha(store::ObjectStore& s, const ObjectPath& p, std::uint64_t* size = nullptr) {
  auto reader = s.open_read(p, {}).value();
  io::Sha256 sha;
  std::vector<std::byte> buffer(256 << 10);
  std::uint64_t total = 0;
  while (const std::size_t n = reader->read(buffer).value()) {
    sha.update(std::span(buffer).first(n));
    total += n;
  }
  if (size != nullptr) *size = total;
  return io::to_hex(sha.finish());
}

/// Wraps a transport and injects faults into chosen requests; counts what passes.
class FaultyTransport final : public http::Transport {
 public:
  explicit FaultyTransport(std::shared_ptr<http::Transport> inner) : inner_(std::move(inner)) {}

  /// Answers 503 SlowDown to UploadPart number `part`, `times` times.
  void fail_part(int part, int times) {
    fail_part_ = part;
    fail_times_ = times;
  }
  /// Breaks the next GET's body after `bytes` bytes, `times` times.
  void reset_get_after(std::uint64_t bytes, int times) {
    reset_after_ = bytes;
    reset_times_ = times;
  }
  int parts_sent() const { return parts_sent_; }
  int aborts_sent() const { return aborts_sent_; }

  Result<http::Response> send(const http::Request& request, std::uint64_t max) override {
    count(request);
    const std::string marker = "partNumber=" + std::to_string(fail_part_) + "&";
    if (fail_part_ > 0 && request.url.find(marker) != std::string::npos && fail_times_ > 0) {
      --fail_times_;
      http::Response r;
      r.status = 503;
      const std::string xml =
          "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Reduce your request "
          "rate.</Message><RequestId>FAULT-1</RequestId></Error>";
      r.body.assign(reinterpret_cast<const std::byte*>(xml.data()),
                    reinterpret_cast<const std::byte*>(xml.data()) + xml.size());
      return r;
    }
    return inner_->send(request, max);
  }

  Result<std::unique_ptr<http::ResponseStream>> open(const http::Request& request) override {
    count(request);
    STOWAGE_ASSIGN_OR_RETURN(auto stream, inner_->open(request));
    if (reset_times_ > 0 && request.method == "GET") {
      --reset_times_;
      return std::unique_ptr<http::ResponseStream>(
          std::make_unique<BreakingStream>(std::move(stream), reset_after_));
    }
    return stream;
  }

 private:
  class BreakingStream final : public http::ResponseStream {
   public:
    BreakingStream(std::unique_ptr<http::ResponseStream> inner, std::uint64_t after)
        : inner_(std::move(inner)), left_(after) {}
    long status() const override { return inner_->status(); }
    const std::vector<http::Header>& headers() const override { return inner_->headers(); }
    std::optional<std::uint64_t> size() const override { return inner_->size(); }
    Result<std::size_t> read(std::span<std::byte> out) override {
      if (left_ == 0) {
        Error e = make_error(ErrorCode::Unavailable, "GET: Connection reset by peer (injected)");
        e.retryable = true;
        return e;
      }
      out = out.first(static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), left_)));
      STOWAGE_ASSIGN_OR_RETURN(std::size_t n, inner_->read(out));
      left_ -= n;
      return n;
    }

   private:
    std::unique_ptr<http::ResponseStream> inner_;
    std::uint64_t left_;
  };

  void count(const http::Request& r) {
    if (r.method == "PUT" && r.url.find("partNumber=") != std::string::npos) ++parts_sent_;
    if (r.method == "DELETE" && r.url.find("uploadId=") != std::string::npos) ++aborts_sent_;
  }

  std::shared_ptr<http::Transport> inner_;
  std::atomic<int> fail_part_{0};
  std::atomic<int> fail_times_{0};
  std::atomic<std::uint64_t> reset_after_{0};
  std::atomic<int> reset_times_{0};
  std::atomic<int> parts_sent_{0};
  std::atomic<int> aborts_sent_{0};
};

/// Small parts, so that multipart paths run on a few MiB.
store::s3::S3Options small_parts(store::s3::S3Options o) {
  o.parts.min_part_bytes = 5 * kMiB;  // S3's smallest part
  o.max_parts_in_flight = 2;
  return o;
}

TEST(S3Store, WrongSecretKeyIsAClearErrorWithoutTheSecret) {
  STOWAGE_REQUIRE_RADOSGW(gw);
  auto options = gw.options;
  const std::string sentinel = "WRONG-SECRET-SENTINEL-4242";
  auth::Credentials c;
  c.access_key_id = gw.config.storage_access_key;
  c.secret_access_key = Redacted<>(sentinel);
  options.credentials = auth::make_static_credentials(c);
  auto s3 = S3Store::open(options, gw.transport).value();
  auto st = s3->stat(ObjectPath{gw.public_bucket(), "any"});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::Unauthenticated) << st.error().to_string();
  EXPECT_EQ(st.error().provider_code, "SignatureDoesNotMatch") << "asked again with a GET";
  EXPECT_EQ(st.error().message.find("HeadObject s3://"), 0u) << st.error().message;
  auto probe = s3->probe_bucket(gw.public_bucket());
  ASSERT_FALSE(probe);
  EXPECT_EQ(probe.error().code, ErrorCode::Unauthenticated);
  EXPECT_EQ(probe.error().provider_code, "SignatureDoesNotMatch");
  EXPECT_NE(probe.error().message.find("STORAGE_SECRET_KEY"), std::string::npos)
      << probe.error().message;
  EXPECT_FALSE(probe.error().request_id.empty());
  EXPECT_FALSE(probe.error().retryable);
  EXPECT_EQ(probe.error().to_string().find(sentinel), std::string::npos);
}

TEST(S3Store, MissingBucketAndUnreachableEndpointAreNamed) {
  STOWAGE_REQUIRE_RADOSGW(gw);
  auto s3 = S3Store::open(gw.options, gw.transport).value();
  auto missing = s3->probe_bucket("stowage-no-such-bucket-x");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
  EXPECT_NE(missing.error().message.find("does not exist"), std::string::npos);

  auto options = gw.options;
  options.endpoint.port = 1;  // nothing listens there
  options.retry.max_attempts = 1;
  auto dead = S3Store::open(options, gw.transport).value()->probe_bucket(gw.public_bucket());
  ASSERT_FALSE(dead);
  EXPECT_NE(dead.error().message.find("cannot reach"), std::string::npos) << dead.error().message;
}

TEST(S3Store, MultipartAboveThresholdKeepsMemoryFlat) {
  STOWAGE_REQUIRE_RADOSGW(gw);
  auto options = small_parts(gw.options);
  auto budget = std::make_shared<store::s3::ByteBudget>(64 * kMiB);
  options.budget = budget;
  auto s3 = S3Store::open(options, gw.transport).value();
  const ObjectPath p{gw.private_bucket(), unique_key("big.bin")};
  constexpr std::uint64_t kSize = 48 * kMiB + 12345;  // 10 parts of 5 MiB (the last smaller)

  const std::uint64_t before = rss_bytes();
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> peak{before};
  std::atomic<std::uint64_t> budget_peak{0};
  std::thread sampler([&] {
    while (!done) {
      peak = std::max<std::uint64_t>(peak, rss_bytes());
      budget_peak = std::max<std::uint64_t>(budget_peak, budget->in_use());
      std::this_thread::sleep_for(2ms);
    }
  });
  auto writer = s3->open_write(p, {}).value();
  const std::string sha = write_pattern(*writer, kSize);
  const auto info = writer->commit().value();
  done = true;
  sampler.join();

  EXPECT_EQ(info.size, kSize);
  EXPECT_TRUE(info.etag.ends_with("-10\"")) << "a multipart ETag names its parts: " << info.etag;
  EXPECT_LE(budget_peak.load(), 2 * 5 * kMiB) << "at most 2 parts in flight";
  // 2 parts in flight + 1 filling + the test's 1 MiB chunk; generous slack for allocator noise.
  EXPECT_LT(peak.load() - before, 40 * kMiB) << "RSS grew with the object";
  std::uint64_t size = 0;
  EXPECT_EQ(read_sha(*s3, p, &size), sha);
  EXPECT_EQ(size, kSize);
  EXPECT_EQ(s3->stat(p).value().etag, info.etag);
  (void)s3->remove(p);
}

TEST(S3Store, OnePutBelowThreshold) {
  STOWAGE_REQUIRE_RADOSGW(gw);
  auto faulty = std::make_shared<FaultyTransport>(gw.transport);
  auto s3 = S3Store::open(small_parts(gw.options), faulty).value();
  const ObjectPath p{gw.private_bucket(), unique_key("small.bin")};
  auto writer = s3->open_write(p, {}).value();
  write_pattern(*writer, 5 * kMiB);  // exactly one part: still one PUT
  const auto info = writer->commit().value();
  EXPECT_EQ(faulty->parts_sent(), 0);
  EXPECT_FALSE(info.etag.ends_with("-1\"")) << info.etag;
  (void)s3->remove(p);
}

TEST(S3Store, SlowDownOnOnePartIsRetried) {
  STOWAGE_REQUIRE_RADOSGW(gw);
  auto faulty = std::make_shared<FaultyTransport>(gw.transport);
  faulty->fail_part(2, 2);
  auto s3 = S3Store::open(small_parts(gw.options), faulty).value();
  const ObjectPath p{gw.private_bucket(), unique_key("retried.bin")};
  auto writer = s3->open_write(p, {}).value();
  const std::string sha = write_pattern(*writer, 12 * kMiB);
  ASSERT_TRUE(writer->commit());
  EXPECT_EQ(read_sha(*s3, p), sha);
  EXPECT_EQ(faulty->parts_sent(), 3 + 2) << "3 parts, part 2 sent three times";
  (void)s3->remove(p);
}

TEST(S3Store, PersistentFailureAbortsAndLeavesNothing) {
  STOWAGE_REQUIRE_RADOSGW(gw);
  auto faulty = std::make_shared<FaultyTransport>(gw.transport);
  faulty->fail_part(2, 1000);
  auto options = small_parts(gw.options);
  options.retry.max_attempts = 3;
  auto s3 = S3Store::open(options, faulty).value();
  const ObjectPath p{gw.private_bucket(), unique_key("doomed.bin")};
  auto writer = s3->open_write(p, {}).value();
  write_pattern(*writer, 12 * kMiB);
  auto committed = writer->commit();
  ASSERT_FALSE(committed);
  EXPECT_EQ(committed.error().code, ErrorCode::Unavailable);
  EXPECT_EQ(committed.error().provider_code, "SlowDown");
  EXPECT_NE(committed.error().message.find("UploadPart s3://"), std::string::npos)
      << committed.error().message;
  EXPECT_EQ(faulty->aborts_sent(), 1);
  EXPECT_EQ(s3->stat(p).error().code, ErrorCode::NotFound);
  EXPECT_TRUE(s3->list_uploads(p.bucket, p.key).value().empty()) << "the upload was aborted";
}

TEST(S3Store, ResetMidBodyResumesAndPinsTheVersion) {
  STOWAGE_REQUIRE_RADOSGW(gw);
  auto faulty = std::make_shared<FaultyTransport>(gw.transport);
  auto s3 = S3Store::open(gw.options, faulty).value();
  const ObjectPath p{gw.private_bucket(), unique_key("reset.bin")};
  const auto bytes = pattern_bytes(9, 3 * kMiB + 7);
  {
    auto w = s3->open_write(p, {}).value();
    ASSERT_TRUE(w->write(bytes));
    ASSERT_TRUE(w->commit());
  }
  faulty->reset_get_after(kMiB + 3, 2);
  auto reader = s3->open_read(p, {}).value();
  std::vector<std::byte> got(bytes.size() + 10);
  std::size_t total = 0;
  while (const std::size_t n = reader->read(std::span(got).subspan(total)).value()) total += n;
  ASSERT_EQ(total, bytes.size());
  got.resize(total);
  EXPECT_TRUE(got == bytes) << "resumed reads give the same bytes";

  // The object changes between two reads of one stream: the second part is refused.
  faulty->reset_get_after(kMiB, 1);
  auto pinned = s3->open_read(p, {}).value();
  std::vector<std::byte> buffer(kMiB);
  for (std::size_t got_now = 0; got_now < kMiB;) {
    got_now += pinned->read(std::span(buffer).subspan(got_now)).value();
  }
  {
    auto w = s3->open_write(p, {}).value();
    ASSERT_TRUE(w->write(pattern_bytes(10, 3 * kMiB + 7)));
    ASSERT_TRUE(w->commit());
  }
  auto after = pinned->read(buffer);
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error().code, ErrorCode::PreconditionFailed) << after.error().to_string();
  (void)s3->remove(p);
}

TEST(S3Store, KilledDuringMultipartThenResumedWithoutResendingParts) {
  STOWAGE_REQUIRE_RADOSGW(gw);
  auto options = small_parts(gw.options);
  options.max_parts_in_flight = 1;  // part k starts only once part k-1 is done
  const ObjectPath p{gw.private_bucket(), unique_key("resumed.bin")};
  constexpr std::uint64_t kSize = 22 * kMiB;  // parts of 5 MiB: 5
  const store::WriteOptions hint{kSize, false};

  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child uploads three full parts and a byte, then dies without aborting anything.
    auto s3 = S3Store::open(options, http::make_curl_transport()).value();
    auto writer = s3->open_write(p, hint).value();
    const auto chunk = pattern_bytes(1, kMiB);
    for (std::uint64_t off = 0; off < 15 * kMiB + 1; off += kMiB) {
      const auto n = std::min<std::uint64_t>(kMiB, 15 * kMiB + 1 - off);
      if (!writer->write(std::span(chunk).first(n))) ::_exit(3);
    }
    ::kill(::getpid(), SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);

  auto faulty = std::make_shared<FaultyTransport>(gw.transport);
  auto store = S3Store::open(options, faulty).value();
  ASSERT_EQ(store->list_uploads(p.bucket, p.key).value().size(), 1u) << "the crash left an upload";
  auto writer = store->open_write_resuming(p, hint).value();
  const std::string sha = write_pattern(*writer, kSize);
  auto committed = writer->commit();
  ASSERT_TRUE(committed) << committed.error().to_string();
  EXPECT_LE(faulty->parts_sent(), 5 - 2) << "parts 1 and 2 (at least) were not sent again";
  EXPECT_EQ(read_sha(*store, p), sha);
  EXPECT_TRUE(store->list_uploads(p.bucket, p.key).value().empty());
  (void)store->remove(p);
}

TEST(S3Store, HousekeepingAbortsStaleUploadsOnly) {
  STOWAGE_REQUIRE_RADOSGW(gw);
  auto s3 = S3Store::open(gw.options, gw.transport).value();
  const std::string key = unique_key("stale.bin");
  S3Store::Call create;
  create.op = "CreateMultipartUpload";
  create.method = "POST";
  create.bucket = gw.private_bucket();
  create.key = key;
  create.query = {{"uploads", ""}};
  ASSERT_TRUE(s3->send(create));
  // Young: kept.
  auto options = gw.options;
  options.stale_upload_age = std::chrono::hours(1);
  auto keeper = S3Store::open(options, gw.transport).value();
  (void)keeper->abort_stale_uploads(gw.private_bucket(), key).value();
  EXPECT_EQ(s3->list_uploads(gw.private_bucket(), key).value().size(), 1u);
  // Old enough: aborted. (The signer shares the clock, so the cutoff moves rather than time.)
  options.stale_upload_age = std::chrono::seconds(-60);
  auto sweeper = S3Store::open(options, gw.transport).value();
  // Scoped to this test's key: other tests run their own uploads in the bucket meanwhile.
  EXPECT_EQ(sweeper->abort_stale_uploads(gw.private_bucket(), key).value(), 1u);
  EXPECT_TRUE(s3->list_uploads(gw.private_bucket(), key).value().empty());
}

TEST(S3Store, PresignedGetWorksAndTamperingIsRefused) {
  STOWAGE_REQUIRE_RADOSGW(gw);
  auto s3 = S3Store::open(gw.options, gw.transport).value();
  const ObjectPath p{gw.private_bucket(), unique_key("shared file.txt")};
  auto w = s3->open_write(p, {}).value();
  ASSERT_TRUE(w->write(as_bytes("presigned bytes")));
  ASSERT_TRUE(w->commit());
  const std::string url = s3->presign_get(p, std::chrono::seconds(300)).value();
  http::Request get;
  get.url = url;
  auto ok = gw.transport->send(get).value();
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body_text(), "presigned bytes");
  http::Request tampered;
  tampered.url = url.substr(0, url.size() - 1) + (url.back() == '0' ? "1" : "0");
  EXPECT_EQ(gw.transport->send(tampered).value().status, 403);
  http::Request anonymous;
  anonymous.url = http::redact_url(url);
  EXPECT_EQ(gw.transport->send(anonymous).value().status, 403) << "private buckets stay private";
  (void)s3->remove(p);
}

}  // namespace
}  // namespace stowage::testing
