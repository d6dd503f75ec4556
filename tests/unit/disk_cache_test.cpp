// SPDX-License-Identifier: Apache-2.0
// The disk cache behind the storage and preview caches: publication, the byte bound under
// concurrent fills, single flight, persistence across a restart and across a SIGKILL mid-fill.
#include "stowage/cache/disk_cache.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

namespace stowage::cache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// The bytes of a text, for Writer::write.
std::span<const std::byte> view(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

fs::path temp_dir() {
  static std::atomic<int> n{0};
  auto dir = fs::temp_directory_path() /
             ("stowage-cache-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
  fs::remove_all(dir);
  return dir;
}

std::string bytes_of(std::size_t size, char seed) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>(seed + i * 31);
  return s;
}

std::string read_all(const Hit& hit) {
  std::string out(hit.size, '\0');
  auto n = hit.file.read_at(0, std::as_writable_bytes(std::span(out))).value();
  out.resize(n);
  return out;
}

DiskCache::Fill fill_with(std::string bytes, std::string meta = "m",
                          std::atomic<int>* calls = nullptr) {
  return [bytes = std::move(bytes), meta = std::move(meta),
          calls](EntryWriter& w) -> Result<std::string> {
    if (calls) ++*calls;
    STOWAGE_TRY(w.write(std::as_bytes(std::span(bytes))));
    return meta;
  };
}

/// Sum of the sizes of every file the cache keeps on disk, entries and temp files alike (the
/// index excluded).
std::uint64_t bytes_on_disk(const fs::path& dir) {
  std::uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const auto name = it->path().filename().string();
    if (name.starts_with("index.db")) continue;
    std::error_code sec;
    if (it->is_regular_file(sec)) total += it->file_size(sec);
  }
  return total;
}

class DiskCacheTest : public ::testing::Test {
 protected:
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<DiskCache> open(std::uint64_t max_bytes = 1 << 20,
                                  std::chrono::seconds expires = 3600s) {
    DiskCacheOptions o;
    o.dir = dir_;
    o.max_bytes = max_bytes;
    o.expires = expires;
    o.name = "test";
    o.now = [this] { return std::chrono::system_clock::now() + skew_; };
    return DiskCache::open(o).value();
  }
  fs::path dir_ = temp_dir();
  std::chrono::seconds skew_{0};
};

TEST_F(DiskCacheTest, FillsOnceThenHits) {
  auto cache = open();
  std::atomic<int> calls{0};
  auto first = cache->get_or_fill("k", fill_with("hello", "meta", &calls)).value();
  EXPECT_EQ(read_all(first), "hello");
  EXPECT_EQ(first.meta, "meta");
  auto second = cache->get_or_fill("k", fill_with("other", "x", &calls)).value();
  EXPECT_EQ(read_all(second), "hello");
  EXPECT_EQ(calls.load(), 1);
  auto found = cache->find("k").value();
  ASSERT_TRUE(found);
  EXPECT_EQ(read_all(*found), "hello");
  EXPECT_FALSE(cache->find("absent").value());
  EXPECT_EQ(cache->used_bytes(), 5u);
}

TEST_F(DiskCacheTest, AFailedFillPublishesNothing) {
  auto cache = open();
  auto r = cache->get_or_fill("k", [](EntryWriter& w) -> Result<std::string> {
    STOWAGE_TRY(w.write(view("partial")));
    return make_error(ErrorCode::Unavailable, "remote went away");
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::Unavailable);
  EXPECT_FALSE(cache->find("k").value());
  EXPECT_EQ(cache->charged_bytes(), 0u);
  EXPECT_EQ(bytes_on_disk(dir_), 0u);
}

TEST_F(DiskCacheTest, EntriesLargerThanAQuarterAreRefused) {
  auto cache = open(1000);
  auto r = cache->get_or_fill("big", fill_with(bytes_of(251, 'a')));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::TooLarge);
  EXPECT_EQ(cache->charged_bytes(), 0u);
  EXPECT_TRUE(cache->get_or_fill("fits", fill_with(bytes_of(250, 'a'))));
}

TEST_F(DiskCacheTest, EvictsLeastRecentlyUsed) {
  auto cache = open(1000);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(cache->get_or_fill("k" + std::to_string(i), fill_with(bytes_of(250, 'a' + i))));
  }
  ASSERT_TRUE(cache->find("k0").value());  // k0 is now the most recent; k1 the least
  ASSERT_TRUE(cache->get_or_fill("k4", fill_with(bytes_of(250, 'e'))));
  EXPECT_TRUE(cache->find("k0").value());
  EXPECT_FALSE(cache->find("k1").value());
  EXPECT_TRUE(cache->find("k4").value());
  EXPECT_LE(cache->used_bytes(), 1000u);
  EXPECT_LE(bytes_on_disk(dir_), 1000u);
}

TEST_F(DiskCacheTest, UnreadEntriesExpire) {
  auto cache = open(1 << 20, 60s);
  ASSERT_TRUE(cache->get_or_fill("k", fill_with("x")));
  skew_ = 30s;
  EXPECT_TRUE(cache->find("k").value());  // read: fresh for another 60 s
  skew_ = 80s;
  EXPECT_TRUE(cache->find("k").value());
  skew_ = 200s;
  EXPECT_FALSE(cache->find("k").value());
  EXPECT_EQ(cache->used_bytes(), 0u);
}

TEST_F(DiskCacheTest, EntriesSurviveARestart) {
  {
    auto cache = open();
    ASSERT_TRUE(cache->get_or_fill("a", fill_with("alpha", "etag-a")));
    ASSERT_TRUE(cache->get_or_fill("b", fill_with("beta", "etag-b")));
  }
  auto cache = open();
  EXPECT_EQ(cache->entry_count(), 2u);
  std::atomic<int> calls{0};
  auto a = cache->get_or_fill("a", fill_with("changed", "x", &calls)).value();
  EXPECT_EQ(read_all(a), "alpha");
  EXPECT_EQ(a.meta, "etag-a");
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(cache->used_bytes(), 9u);
}

TEST_F(DiskCacheTest, ARestartDropsEntriesWhoseFileIsGoneAndOrphans) {
  {
    auto cache = open();
    ASSERT_TRUE(cache->get_or_fill("a", fill_with("alpha")));
    ASSERT_TRUE(cache->get_or_fill("b", fill_with("beta")));
  }
  // Damage: one entry file removed, one stray file that no row names.
  int removed = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_)) {
    if (e.is_regular_file() && e.path().parent_path().filename() != "tmp" &&
        !e.path().filename().string().starts_with("index.db") && removed == 0) {
      fs::remove(e.path());
      ++removed;
      break;
    }
  }
  fs::create_directories(dir_ / "zz");
  std::ofstream(dir_ / "zz" / "stray") << "junk";
  auto cache = open();
  EXPECT_EQ(cache->entry_count(), 1u);
  EXPECT_FALSE(fs::exists(dir_ / "zz" / "stray"));
  EXPECT_EQ(bytes_on_disk(dir_), cache->used_bytes());
}

TEST_F(DiskCacheTest, ConcurrentMissesOfOneKeyFillOnce) {
  auto cache = open();
  std::atomic<int> calls{0};
  auto slow = [&](EntryWriter& w) -> Result<std::string> {
    ++calls;
    std::this_thread::sleep_for(100ms);
    STOWAGE_TRY(w.write(view("shared")));
    return std::string("m");
  };
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      auto hit = cache->get_or_fill("one", slow);
      if (hit && read_all(*hit) == "shared") ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(ok.load(), 16);
}

TEST_F(DiskCacheTest, TheBoundHoldsAtEveryMomentUnderConcurrentFills) {
  constexpr std::uint64_t kMax = 256 * 1024;
  auto cache = open(kMax);
  // The accounting is sampled at every moment: a fill reserves before it writes and an evicted
  // file is deleted before its bytes are released, so the files on disk never exceed it. (A
  // directory walk is no snapshot, so the disk itself is checked once the fills are done.)
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> worst_charged{0};
  std::thread monitor([&] {
    while (!done) {
      worst_charged = std::max(worst_charged.load(), cache->charged_bytes());
    }
  });
  std::vector<std::thread> workers;
  std::atomic<int> filled{0};
  for (int t = 0; t < 8; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 150; ++i) {
        const std::string key = "k" + std::to_string(rng() % 64);
        const std::size_t size = 1 + rng() % (kMax / 4);
        // Written in pieces, as a remote stream arrives.
        auto r = cache->get_or_fill(key, [&](EntryWriter& w) -> Result<std::string> {
          const std::string bytes = bytes_of(size, 'a');
          for (std::size_t off = 0; off < size; off += 4096) {
            STOWAGE_TRY(w.write(std::as_bytes(
                std::span(bytes.data() + off, std::min<std::size_t>(4096, size - off)))));
          }
          return std::string("m");
        });
        if (r) {
          ++filled;
        } else {
          EXPECT_EQ(r.error().code, ErrorCode::TooLarge);  // crowded out by other fills
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  done = true;
  monitor.join();
  EXPECT_GT(filled.load(), 200);  // the rest were crowded out, never over the bound
  EXPECT_LE(worst_charged.load(), kMax);
  EXPECT_LE(bytes_on_disk(dir_), kMax);
  EXPECT_EQ(cache->charged_bytes(), cache->used_bytes());
}

TEST_F(DiskCacheTest, AKillInTheMiddleOfAFillLeavesNoEntry) {
  // The child fills "done" completely, then starts "torn" and is killed half-way.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto cache = open();
    if (!cache->get_or_fill("done", fill_with("complete"))) ::_exit(1);
    (void)cache->get_or_fill("torn", [&](EntryWriter& w) -> Result<std::string> {
      STOWAGE_TRY(w.write(view(bytes_of(100000, 'x'))));
      (void)!::write(ready[1], "x", 1);
      for (;;) ::pause();
    });
    ::_exit(2);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  ASSERT_TRUE(WIFSIGNALED(status));

  auto cache = open();
  auto done = cache->find("done").value();
  ASSERT_TRUE(done);
  EXPECT_EQ(read_all(*done), "complete");
  EXPECT_FALSE(cache->find("torn").value());
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
  EXPECT_EQ(bytes_on_disk(dir_), 8u);
  auto refilled = cache->get_or_fill("torn", fill_with("whole")).value();
  EXPECT_EQ(read_all(refilled), "whole");
}

TEST_F(DiskCacheTest, AShrunkBoundEvictsOnOpen) {
  {
    auto cache = open(4000);
    for (int i = 0; i < 4; ++i) {
      ASSERT_TRUE(cache->get_or_fill("k" + std::to_string(i), fill_with(bytes_of(900, 'a'))));
    }
  }
  auto cache = open(2000);
  EXPECT_LE(cache->used_bytes(), 2000u);
  EXPECT_EQ(bytes_on_disk(dir_), cache->used_bytes());
}

}  // namespace
}  // namespace stowage::cache
