// SPDX-License-Identifier: Apache-2.0
// The copy engine (src/stowage/migration) between two local stores, one of them wrapped in a
// store that counts reads and writes and can fail or corrupt them on purpose. No network.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>

#include "stowage/io/checksum.hpp"
#include "stowage/migration/copy.hpp"
#include "stowage/migration/journal.hpp"
#include "stowage/migration/runner.hpp"
#include "stowage/store/local/local_store.hpp"

namespace stowage::migration {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using store::ObjectPath;

/// A Writer that flips one byte of what it forwards while `corrupt` is set.
class CorruptingWriter final : public store::Writer {
 public:
  CorruptingWriter(std::unique_ptr<store::Writer> inner, bool corrupt)
      : inner_(std::move(inner)), corrupt_(corrupt) {}
  Status write(std::span<const std::byte> bytes) override {
    if (!corrupt_ || bytes.empty()) return inner_->write(bytes);
    std::vector<std::byte> copy(bytes.begin(), bytes.end());
    copy[copy.size() / 2] ^= std::byte{0x20};
    corrupt_ = false;
    return inner_->write(copy);
  }
  Result<store::ObjectInfo> commit() override { return inner_->commit(); }
  Status abort() override { return inner_->abort(); }

 private:
  std::unique_ptr<store::Writer> inner_;
  bool corrupt_;
};

/// Forwards to a store; counts reads and writes; fails the first `fail_reads` open_read calls
/// and the first `fail_writes` open_write calls with a retryable Unavailable (like a 503), and
/// corrupts the next `corrupt_writes` writes.
class FaultyStore final : public store::ObjectStore {
 public:
  explicit FaultyStore(store::ObjectStore& inner) : inner_(inner) {}
  std::string_view name() const override { return "faulty"; }
  const store::Capabilities& capabilities() const override { return inner_.capabilities(); }
  Result<store::ObjectInfo> stat(const ObjectPath& p) override { return inner_.stat(p); }
  Result<std::unique_ptr<io::Reader>> open_read(const ObjectPath& p,
                                                const store::ReadOptions& o) override {
    ++reads;
    if (fail_reads.fetch_sub(1) > 0) return unavailable("read");
    return inner_.open_read(p, o);
  }
  Result<std::unique_ptr<io::RandomAccessReader>> open_random(
      const store::ObjectInfo& info) override {
    return inner_.open_random(info);
  }
  Result<std::unique_ptr<store::Writer>> open_write(const ObjectPath& p,
                                                    const store::WriteOptions& o) override {
    ++writes;
    if (fail_writes.fetch_sub(1) > 0) return unavailable("write");
    auto w = inner_.open_write(p, o);
    if (!w) return w.error();
    return std::unique_ptr<store::Writer>(
        new CorruptingWriter(std::move(*w), corrupt_writes.fetch_sub(1) > 0));
  }
  Result<store::ListPage> list(const ObjectPath& p, const store::ListOptions& o) override {
    return inner_.list(p, o);
  }
  Status remove(const ObjectPath& p) override { return inner_.remove(p); }

  std::atomic<int> reads{0};
  std::atomic<int> writes{0};
  std::atomic<int> fail_reads{0};
  std::atomic<int> fail_writes{0};
  std::atomic<int> corrupt_writes{0};

 private:
  static Error unavailable(std::string_view op) {
    Error e = make_error(ErrorCode::Unavailable, std::string(op) + ": injected 503");
    e.http_status = 503;
    e.retryable = true;
    return e;
  }
  store::ObjectStore& inner_;
};

std::vector<std::byte> random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

class MigrationCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("stowage-migration-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    source_local_ = store::local::LocalStore::open(root_ / "a", {"b-public", "b-private"}).value();
    target_local_ = store::local::LocalStore::open(root_ / "b", {"b-public", "b-private"}).value();
    source_ = std::make_unique<FaultyStore>(*source_local_);
    target_ = std::make_unique<FaultyStore>(*target_local_);
    journal_ = Journal::open(root_ / "journal" / "storage.db").value();
  }
  void TearDown() override {
    journal_.reset();
    fs::remove_all(root_);
  }

  void put(store::ObjectStore& s, const ObjectPath& p, std::span<const std::byte> bytes) {
    auto w = s.open_write(p, {}).value();
    ASSERT_TRUE(w->write(bytes));
    ASSERT_TRUE(w->commit());
  }
  std::string sha_of(store::ObjectStore& s, const ObjectPath& p) {
    auto h = hash_object(s, p, "", 4096);
    return h ? h->first : "missing: " + h.error().to_string();
  }

  /// A tree: nested keys, an empty object, a 3 MiB object (48 chunks of 64 KiB), small ones.
  void make_tree() {
    tree_ = {{"b-public", "empty"},       {"b-public", "a/b/c/deep.jpg"},
             {"b-public", "big.bin"},     {"b-private", "x.txt"},
             {"b-private", "dir/y.png"}};
    for (std::size_t i = 0; i < tree_.size(); ++i) {
      const std::size_t n = i == 0 ? 0 : tree_[i].key == "big.bin" ? (3u << 20) + 7 : 1000 * i;
      put(*source_local_, tree_[i], random_bytes(n, static_cast<unsigned>(i)));
    }
  }
  RunOptions options(bool journal = true) {
    RunOptions o;
    o.concurrency = 3;
    o.copy.chunk_bytes = 64 << 10;
    o.copy.retry.base_delay = 1ms;
    o.copy.journal = journal ? journal_.get() : nullptr;
    o.copy.journal_scope = "test";
    o.count = [this] { return count_objects(*source_, {"b-public", "b-private"}, {}); };
    return o;
  }
  Summary run(const RunOptions& o) {
    return run_copies(bucket_pager(*source_, *target_, {"b-public", "b-private"}, {}, 2), o);
  }
  void expect_identical() {
    for (const auto& p : tree_) EXPECT_EQ(sha_of(*target_local_, p), sha_of(*source_local_, p));
  }

  fs::path root_;
  std::unique_ptr<store::local::LocalStore> source_local_, target_local_;
  std::unique_ptr<FaultyStore> source_, target_;
  std::unique_ptr<Journal> journal_;
  std::vector<ObjectPath> tree_;
};

std::string failures_of(const Summary& s) {
  std::string out;
  for (const auto& f : s.failures) out += f.source.to_string() + ": " + f.error.to_string() + "\n";
  return out;
}

TEST_F(MigrationCopyTest, CopiesATreeThenARerunSkipsEverythingWithoutReading) {
  make_tree();
  std::vector<Progress> seen;
  RunOptions o = options();
  o.on_progress = [&](const Progress& p) { seen.push_back(p); };
  const Summary first = run(o);
  EXPECT_TRUE(first.complete()) << failures_of(first);
  EXPECT_EQ(first.copied, tree_.size());
  EXPECT_EQ(first.skipped, 0u);
  EXPECT_EQ(first.bytes_written, first.bytes_copied);
  expect_identical();
  ASSERT_FALSE(seen.empty());
  ASSERT_TRUE(seen.back().totals.has_value());
  EXPECT_EQ(seen.back().totals->objects, tree_.size());
  EXPECT_EQ(seen.back().objects_done, tree_.size());
  EXPECT_EQ(seen.back().bytes_done, seen.back().totals->bytes);
  EXPECT_EQ(journal_->count("test").value(), tree_.size());

  source_->reads = 0;
  target_->reads = 0;
  target_->writes = 0;
  const Summary second = run(options());
  EXPECT_TRUE(second.complete()) << failures_of(second);
  EXPECT_EQ(second.copied, 0u);
  EXPECT_EQ(second.skipped, tree_.size());
  EXPECT_EQ(second.bytes_written, 0u);
  EXPECT_EQ(source_->reads, 0) << "a journaled, unchanged object is not read again";
  EXPECT_EQ(target_->reads, 0);
  EXPECT_EQ(target_->writes, 0);
}

TEST_F(MigrationCopyTest, WithoutAJournalEntryEqualObjectsAreComparedByHashing) {
  make_tree();
  ASSERT_TRUE(run(options(false)).complete());
  target_->writes = 0;
  const Summary again = run(options());
  EXPECT_EQ(again.skipped, tree_.size());
  EXPECT_EQ(target_->writes, 0);
  EXPECT_GE(source_->reads.load(), static_cast<int>(tree_.size()));
  EXPECT_EQ(journal_->count("test").value(), tree_.size()) << "the comparison is journaled";
}

TEST_F(MigrationCopyTest, AWrongByteAtTheTargetIsDetectedAndRecopied) {
  make_tree();
  ASSERT_TRUE(run(options()).complete());
  // Same size, one byte different, written behind the journal's back.
  const ObjectPath big{"b-public", "big.bin"};
  auto bytes = random_bytes((3u << 20) + 7, 2);
  bytes[12345] ^= std::byte{1};
  put(*target_local_, big, bytes);
  ASSERT_NE(sha_of(*target_local_, big), sha_of(*source_local_, big));
  const Summary s = run(options());
  EXPECT_TRUE(s.complete()) << failures_of(s);
  EXPECT_EQ(s.copied, 1u);
  EXPECT_EQ(s.skipped, tree_.size() - 1);
  expect_identical();
}

TEST_F(MigrationCopyTest, ADryRunWritesNothing) {
  make_tree();
  RunOptions o = options();
  o.copy.dry_run = true;
  const Summary s = run(o);
  EXPECT_TRUE(s.complete());
  EXPECT_EQ(s.would_copy, tree_.size());
  EXPECT_EQ(s.copied, 0u);
  EXPECT_EQ(target_->writes, 0);
  for (const auto& p : tree_) EXPECT_FALSE(target_local_->stat(p)) << p.to_string();
  EXPECT_EQ(journal_->count("test").value(), 0u);
}

TEST_F(MigrationCopyTest, RetryableFaultsAreRetriedPerObject) {
  make_tree();
  source_->fail_reads = 3;
  target_->fail_writes = 3;
  const Summary s = run(options());
  EXPECT_TRUE(s.complete()) << failures_of(s);
  EXPECT_EQ(s.copied, tree_.size());
  expect_identical();
}

TEST_F(MigrationCopyTest, ACorruptedCopyFailsVerificationAndIsWrittenAgain) {
  make_tree();
  target_->corrupt_writes = 2;
  const Summary s = run(options());
  EXPECT_TRUE(s.complete()) << failures_of(s);
  EXPECT_GT(s.bytes_written, s.bytes_copied) << "the corrupted copies were written again";
  expect_identical();
}

TEST_F(MigrationCopyTest, PersistentFailuresAreListedPerObjectAndNoWrongCopyIsLeft) {
  make_tree();
  target_->corrupt_writes = 1000;
  RunOptions o = options();
  o.copy.retry.max_attempts = 2;
  const Summary s = run(o);
  EXPECT_FALSE(s.complete());
  // The empty object cannot be corrupted; every other one fails verification twice.
  EXPECT_EQ(s.copied, 1u);
  ASSERT_EQ(s.failed, tree_.size() - 1);
  for (const auto& f : s.failures) {
    EXPECT_EQ(f.error.code, ErrorCode::Corrupt) << f.error.to_string();
    EXPECT_NE(f.error.message.find(f.target.key), std::string::npos) << f.error.message;
    EXPECT_FALSE(target_local_->stat(f.target)) << "a copy that failed verification stays";
  }
  EXPECT_EQ(journal_->count("test").value(), 1u) << "only verified copies are journaled";
}

TEST_F(MigrationCopyTest, ListingErrorsAbortTheRunAfterTheObjectsInFlight) {
  make_tree();
  int pages = 0;
  TaskPager inner = bucket_pager(*source_, *target_, {"b-public", "b-private"}, {}, 2);
  TaskPager pager = [&]() -> Result<std::vector<CopyTask>> {
    if (++pages == 2) return make_error(ErrorCode::PermissionDenied, "list: denied");
    return inner();
  };
  const Summary s = run_copies(pager, options());
  EXPECT_FALSE(s.complete());
  ASSERT_TRUE(s.aborted.has_value());
  EXPECT_EQ(s.copied, 2u);
}

TEST(MigrationJournal, SurvivesReopening) {
  const fs::path file = fs::temp_directory_path() /
                        ("stowage-journal-" + std::to_string(::getpid())) / "j.db";
  {
    auto j = Journal::open(file).value();
    ASSERT_TRUE(j->record("s", {"b", "k"}, {3, "\"e1\"", "\"e2\"", "abc"}));
    ASSERT_TRUE(j->record("s", {"b", "k"}, {4, "\"e1\"", "\"e3\"", "def"}));
  }
  auto j = Journal::open(file).value();
  auto e = j->find("s", {"b", "k"}).value();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->size_bytes, 4u);
  EXPECT_EQ(e->target_etag, "\"e3\"");
  EXPECT_EQ(e->sha256_hex, "def");
  EXPECT_FALSE(j->find("other", {"b", "k"}).value().has_value());
  EXPECT_EQ(j->count("s").value(), 1u);
  fs::remove_all(file.parent_path());
}

}  // namespace
}  // namespace stowage::migration
