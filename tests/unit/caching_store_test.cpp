// SPDX-License-Identifier: Apache-2.0
// The storage cache as an ObjectStore decorator, over a local store that counts the requests
// made to it (standing in for a remote provider).
#include "stowage/cache/caching_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "stowage/store/local/local_store.hpp"

namespace stowage::cache {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

/// The bytes of a text, for Writer::write.
std::span<const std::byte> view(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

using store::ObjectPath;

/// A "remote": forwards to a store and counts stat and read requests; reads can be slowed down
/// so that concurrent misses overlap.
class CountingStore final : public store::ObjectStore {
 public:
  explicit CountingStore(store::ObjectStore& inner) : inner_(inner) {}
  std::string_view name() const override { return "counting"; }
  const store::Capabilities& capabilities() const override { return caps_; }
  Result<store::ObjectInfo> stat(const ObjectPath& p) override {
    ++stats;
    if (down) {
      Error e = make_error(ErrorCode::Unavailable, "HeadObject: connection refused");
      e.retryable = true;
      return e;
    }
    return inner_.stat(p);
  }
  Result<std::unique_ptr<io::Reader>> open_read(const ObjectPath& p,
                                                const store::ReadOptions& o) override {
    ++reads;
    std::this_thread::sleep_for(read_delay);
    STOWAGE_ASSIGN_OR_RETURN(auto inner, inner_.open_read(p, o));
    if (!gate) return inner;
    return std::unique_ptr<io::Reader>(std::make_unique<GatedReader>(std::move(inner), *gate));
  }

  /// Holds a reader after its first `open_bytes` bytes until the gate opens: a slow remote.
  struct Gate {
    std::size_t open_bytes = 0;
    std::mutex mutex;
    std::condition_variable cv;
    bool open = false;
    void release() {
      {
        std::lock_guard lock(mutex);
        open = true;
      }
      cv.notify_all();
    }
  };
  class GatedReader final : public io::Reader {
   public:
    GatedReader(std::unique_ptr<io::Reader> inner, Gate& gate) : inner_(std::move(inner)), gate_(gate) {}
    Result<std::size_t> read(std::span<std::byte> out) override {
      if (sent_ >= gate_.open_bytes) {
        std::unique_lock lock(gate_.mutex);
        gate_.cv.wait(lock, [&] { return gate_.open; });
      } else if (out.size() > gate_.open_bytes - sent_) {
        out = out.first(gate_.open_bytes - sent_);
      }
      STOWAGE_ASSIGN_OR_RETURN(std::size_t n, inner_->read(out));
      sent_ += n;
      return n;
    }
    std::optional<std::uint64_t> size() const override { return inner_->size(); }

   private:
    std::unique_ptr<io::Reader> inner_;
    Gate& gate_;
    std::size_t sent_ = 0;
  };
  Result<std::unique_ptr<io::RandomAccessReader>> open_random(
      const store::ObjectInfo& info) override {
    ++reads;
    return inner_.open_random(info);
  }
  Result<std::unique_ptr<store::Writer>> open_write(const ObjectPath& p,
                                                    const store::WriteOptions& o) override {
    return inner_.open_write(p, o);
  }
  Result<store::ListPage> list(const ObjectPath& p, const store::ListOptions& o) override {
    return inner_.list(p, o);
  }
  Status remove(const ObjectPath& p) override { return inner_.remove(p); }

  int requests() const { return stats + reads; }
  std::atomic<int> stats{0};
  std::atomic<int> reads{0};
  std::chrono::milliseconds read_delay{0};
  std::atomic<bool> down{false};  ///< stat answers as an unreachable remote does
  Gate* gate = nullptr;

 private:
  store::ObjectStore& inner_;
  store::Capabilities caps_{.native_files = false};  // a remote has no local files
};

std::string read_all(io::Reader& r) {
  std::string out;
  std::vector<std::byte> buf(7);  // small, to cross chunk edges
  for (;;) {
    auto n = r.read(buf).value();
    if (n == 0) return out;
    out.append(reinterpret_cast<const char*>(buf.data()), n);
  }
}

class CachingStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    local_ = store::local::LocalStore::open(root_ / "store", {"bucket"}).value();
    remote_ = std::make_unique<CountingStore>(*local_);
    reopen();
  }
  void TearDown() override {
    caching_.reset();
    cache_.reset();
    fs::remove_all(root_);
  }
  void reopen(std::uint64_t max_bytes = 1 << 20) {
    caching_.reset();
    cache_.reset();
    DiskCacheOptions o;
    o.dir = root_ / "cache";
    o.max_bytes = max_bytes;
    o.name = "storage";
    o.metrics = &metrics_;
    cache_ = DiskCache::open(o).value();
    caching_ = std::make_unique<CachingStore>(*remote_, cache_.get(), "test", &metrics_,
                                              CachingOptions{revalidate_after_, "", [this] { return now_; }});
  }
  void put(const std::string& key, const std::string& bytes) {
    auto w = local_->open_write({"bucket", key}, {}).value();
    w->write(std::as_bytes(std::span(bytes))).value();
    w->commit().value();
  }
  std::string get(const std::string& key, store::ReadOptions o = {}) {
    auto r = caching_->open_read({"bucket", key}, o).value();
    return read_all(*r);
  }

  fs::path root_ = fs::temp_directory_path() / ("stowage-caching-" + std::to_string(::getpid()));
  std::optional<std::chrono::seconds> revalidate_after_;
  std::chrono::system_clock::time_point now_ = std::chrono::system_clock::now();
  metrics::Registry metrics_;
  std::unique_ptr<store::ObjectStore> local_;
  std::unique_ptr<CountingStore> remote_;
  std::unique_ptr<DiskCache> cache_;
  std::unique_ptr<CachingStore> caching_;
};

TEST_F(CachingStoreTest, AMissFillsAndLaterReadsAskTheRemoteNothing) {
  put("a/x.jpg", "0123456789");
  EXPECT_EQ(get("a/x.jpg"), "0123456789");
  EXPECT_EQ(remote_->stats.load(), 1);
  EXPECT_EQ(remote_->reads.load(), 1);
  const int before = remote_->requests();
  EXPECT_EQ(get("a/x.jpg"), "0123456789");
  EXPECT_EQ(get("a/x.jpg", {.range = store::ByteRange{3, 4}}), "3456");
  EXPECT_EQ(get("a/x.jpg", {.range = store::ByteRange{8, std::nullopt}}), "89");
  auto info = caching_->stat({"bucket", "a/x.jpg"}).value();
  EXPECT_EQ(info.size, 10u);
  auto random = caching_->open_random(info).value();
  std::array<std::byte, 3> three{};
  EXPECT_EQ(random->read_at(5, three).value(), 3u);
  EXPECT_EQ(static_cast<char>(three[0]), '5');
  EXPECT_EQ(remote_->requests(), before);
  auto past = caching_->open_read({"bucket", "a/x.jpg"}, {.range = store::ByteRange{10, 1}});
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().code, ErrorCode::RangeNotSatisfiable);

  const std::string text = metrics_.render();
  EXPECT_NE(text.find("stowage_remote_requests_total{provider=\"counting\",op=\"get\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("stowage_remote_bytes_total{provider=\"counting\"} 10"), std::string::npos);
  EXPECT_NE(text.find("stowage_cache_misses_total{cache=\"storage\"} 1"), std::string::npos);
}

TEST_F(CachingStoreTest, ConcurrentMissesOfOneObjectFetchItOnce) {
  const std::string bytes(200000, 'z');  // under a quarter of the cache
  put("hot.png", bytes);
  remote_->read_delay = 100ms;
  std::vector<std::thread> readers;
  std::atomic<int> ok{0};
  for (int i = 0; i < 12; ++i) {
    readers.emplace_back([&] {
      auto r = caching_->open_read({"bucket", "hot.png"}, {});
      if (r && read_all(**r) == bytes) ++ok;
    });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(ok.load(), 12);
  EXPECT_EQ(remote_->reads.load(), 1);
  EXPECT_EQ(remote_->stats.load(), 1);
}

TEST_F(CachingStoreTest, EntriesSurviveARestart) {
  put("k.tif", "tiff bytes");
  EXPECT_EQ(get("k.tif"), "tiff bytes");
  reopen();
  const int before = remote_->requests();
  EXPECT_EQ(get("k.tif"), "tiff bytes");
  EXPECT_EQ(caching_->stat({"bucket", "k.tif"}).value().size, 10u);
  EXPECT_EQ(remote_->requests(), before);
}

TEST_F(CachingStoreTest, WritesAndRemovalsThroughTheStoreDropTheEntry) {
  put("k", "old");
  EXPECT_EQ(get("k"), "old");
  auto w = caching_->open_write({"bucket", "k"}, {}).value();
  w->write(view("new!")).value();
  w->commit().value();
  EXPECT_EQ(get("k"), "new!");
  caching_->remove({"bucket", "k"}).value();
  auto gone = caching_->open_read({"bucket", "k"}, {});
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ErrorCode::NotFound);
}

TEST_F(CachingStoreTest, AnotherVersionThanTheCachedOneIsRefetched) {
  put("v", "first");
  auto info = caching_->stat({"bucket", "v"}).value();
  EXPECT_EQ(get("v"), "first");
  put("v", "second");            // changed behind the cache's back
  EXPECT_EQ(get("v"), "first");  // served from the cache until it expires...
  auto fresh = local_->stat({"bucket", "v"}).value();
  ASSERT_NE(fresh.etag, info.etag);
  auto random = caching_->open_random(fresh).value();  // ...but a pinned newer version refills
  std::array<std::byte, 6> buf{};
  EXPECT_EQ(random->read_at(0, buf).value(), 6u);
  EXPECT_EQ(get("v"), "second");
}

TEST_F(CachingStoreTest, ObjectsTooLargeForTheCacheGoStraightToTheRemote) {
  reopen(1000);
  const std::string big(400, 'b');
  put("big", big);
  EXPECT_EQ(get("big"), big);
  EXPECT_EQ(get("big", {.range = store::ByteRange{390, 20}}), std::string(10, 'b'));
  EXPECT_EQ(cache_->entry_count(), 0u);
  auto cached = caching_->open_cached({"bucket", "big"});
  ASSERT_FALSE(cached);
  EXPECT_EQ(cached.error().code, ErrorCode::TooLarge);
}

TEST_F(CachingStoreTest, OpenCachedGivesALocalFile) {
  put("img.webp", "webp!");
  auto cached = caching_->open_cached({"bucket", "img.webp"}).value();
  EXPECT_EQ(cached.info.size, 5u);
  std::string out(5, '\0');
  EXPECT_EQ(cached.file.read_at(0, std::as_writable_bytes(std::span(out))).value(), 5u);
  EXPECT_EQ(out, "webp!");
  const int before = remote_->requests();
  EXPECT_TRUE(caching_->open_cached({"bucket", "img.webp"}));
  EXPECT_EQ(remote_->requests(), before);
}

TEST_F(CachingStoreTest, WithTheCacheOffEveryReadGoesToTheRemote) {
  put("k", "bytes");
  CachingStore off(*remote_, nullptr, "test", &metrics_);
  for (int i = 0; i < 3; ++i) {
    auto r = off.open_read({"bucket", "k"}, {}).value();
    EXPECT_EQ(read_all(*r), "bytes");
  }
  EXPECT_EQ(remote_->reads.load(), 3);
  EXPECT_FALSE(off.open_cached({"bucket", "k"}));
}

TEST(ObjectMeta, RoundTripsAndReadsTheFormatBeforeRevalidation) {
  store::ObjectInfo info;
  info.etag = "\"abc-1\"";
  info.size = 42;
  info.last_modified = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  const auto validated = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000123456));
  auto back = decode_object_meta({"b", "k"}, encode_object_meta(info, validated)).value();
  EXPECT_EQ(back.info.etag, info.etag);
  EXPECT_EQ(back.info.size, 42u);
  EXPECT_EQ(back.info.last_modified, info.last_modified);
  EXPECT_EQ(back.validated, validated);
  EXPECT_FALSE(decode_object_meta({"b", "k"}, "garbage"));
  // What an older build wrote: no validation time, so it is due for one.
  auto old = decode_object_meta({"b", "k"}, "v1\n\"e\"\n7\n0").value();
  EXPECT_EQ(old.info.size, 7u);
  EXPECT_EQ(old.validated, std::chrono::system_clock::time_point{});
}

// --- Revalidation, stale-if-error and streaming fills (issue 13) ----------------------------

TEST_F(CachingStoreTest, AFreshEntryCostsNothingAndAStaleOneOneStat) {
  revalidate_after_ = std::chrono::hours(1);
  reopen();
  put("cars/1.jpg", "version one");
  EXPECT_EQ(get("cars/1.jpg"), "version one");
  const int filled = remote_->requests();

  now_ += std::chrono::minutes(59);  // fresh: not asked
  EXPECT_EQ(get("cars/1.jpg"), "version one");
  EXPECT_EQ(caching_->stat({"bucket", "cars/1.jpg"}).value().size, 11u);
  EXPECT_EQ(remote_->requests(), filled);

  now_ += std::chrono::minutes(2);  // stale: one stat says it is the same, no GET
  EXPECT_EQ(get("cars/1.jpg"), "version one");
  EXPECT_EQ(remote_->stats.load(), 2);
  EXPECT_EQ(remote_->reads.load(), 1);
  EXPECT_EQ(get("cars/1.jpg"), "version one");  // fresh again for an hour
  EXPECT_EQ(remote_->requests(), filled + 1);

  put("cars/1.jpg", "version two!");  // rewritten in place by its owner
  EXPECT_EQ(get("cars/1.jpg"), "version one");  // still fresh: the interval is the promise
  now_ += std::chrono::minutes(61);
  EXPECT_EQ(get("cars/1.jpg"), "version two!");
  EXPECT_EQ(get("cars/1.jpg"), "version two!");
  const std::string text = metrics_.render();
  EXPECT_NE(text.find("stowage_cache_revalidations_total{cache=\"storage\",result=\"unchanged\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("stowage_cache_revalidations_total{cache=\"storage\",result=\"changed\"} 1"),
            std::string::npos)
      << text;
}

TEST_F(CachingStoreTest, AnUnreachableRemoteGetsTheCachedBytesServed) {
  revalidate_after_ = std::chrono::hours(1);
  reopen();
  put("k.png", "cached bytes");
  EXPECT_EQ(get("k.png"), "cached bytes");
  reopen();  // a restart keeps the entry and when it was validated
  remote_->down = true;
  EXPECT_EQ(get("k.png"), "cached bytes");  // fresh: the remote is not even asked
  EXPECT_EQ(remote_->stats.load(), 1);

  now_ += std::chrono::hours(2);
  EXPECT_EQ(get("k.png"), "cached bytes");  // stale, the remote fails: served anyway
  EXPECT_EQ(remote_->stats.load(), 2);
  EXPECT_EQ(get("k.png"), "cached bytes");  // and not asked again for a while
  EXPECT_EQ(caching_->stat({"bucket", "k.png"}).value().size, 12u);
  EXPECT_EQ(remote_->stats.load(), 2);
  now_ += CachingStore::kStaleRetry + std::chrono::seconds(1);
  EXPECT_EQ(get("k.png"), "cached bytes");
  EXPECT_EQ(remote_->stats.load(), 3);
  EXPECT_NE(metrics_.render().find("stowage_cache_stale_served_total{cache=\"storage\"} 2"),
            std::string::npos)
      << metrics_.render();

  // Back up, and the object is gone: that is an answer, not a failure to paper over.
  remote_->down = false;
  local_->remove({"bucket", "k.png"}).value();
  now_ += std::chrono::hours(2);
  auto gone = caching_->open_read({"bucket", "k.png"}, {});
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ErrorCode::NotFound);
  EXPECT_EQ(cache_->entry_count(), 0u);
}

TEST_F(CachingStoreTest, AColdReadStreamsBeforeTheRemoteHasSentEverything) {
  reopen(8 << 20);
  std::string bytes(1 << 20, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>('a' + i % 26);
  put("big.tif", bytes);
  CountingStore::Gate gate;
  gate.open_bytes = 4096;
  remote_->gate = &gate;

  auto reader = caching_->open_read({"bucket", "big.tif"}, {}).value();
  std::vector<std::byte> first(4096);
  std::size_t got = 0;
  while (got < first.size()) got += reader->read(std::span(first).subspan(got)).value();
  // The remote holds the rest back, yet the first bytes are here and right.
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(first.data()), 4096), bytes.substr(0, 4096));
  EXPECT_EQ(cache_->entry_count(), 0u);
  gate.release();
  std::string rest = read_all(*reader);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(first.data()), 4096) + rest, bytes);
  reader.reset();

  const int before = remote_->requests();
  remote_->gate = nullptr;
  EXPECT_EQ(get("big.tif"), bytes);  // published: a hit
  EXPECT_EQ(remote_->requests(), before);
}

TEST_F(CachingStoreTest, AReaderThatLeavesEarlyStillLeavesTheObjectCached) {
  reopen(16 << 20);
  const std::string bytes(3 << 20, 'q');
  put("video.mp4", bytes);
  {
    auto reader = caching_->open_read({"bucket", "video.mp4"}, {}).value();
    std::vector<std::byte> some(1000);
    EXPECT_EQ(reader->read(some).value(), 1000u);
  }  // the client went away after a thousand bytes
  for (int i = 0; i < 200 && cache_->entry_count() == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(cache_->entry_count(), 1u);
  const int before = remote_->requests();
  EXPECT_EQ(get("video.mp4"), bytes);
  EXPECT_EQ(remote_->requests(), before);
}

TEST_F(CachingStoreTest, AWriteDuringAFillKeepsTheOldBytesOutOfTheCache) {
  reopen(8 << 20);
  const std::string old_bytes(100000, 'o');
  put("team/model.pt", old_bytes);
  CountingStore::Gate gate;
  gate.open_bytes = 4096;
  remote_->gate = &gate;
  auto reader = caching_->open_read({"bucket", "team/model.pt"}, {}).value();
  std::vector<std::byte> first(4096);
  std::size_t got = 0;
  while (got < first.size()) got += reader->read(std::span(first).subspan(got)).value();
  // Rewritten through the store while the fill still holds the old bytes back.
  auto w = caching_->open_write({"bucket", "team/model.pt"}, {}).value();
  w->write(view("new model")).value();
  w->commit().value();
  // Readers and stats from now on see the new bytes, not the fill of the old ones still running.
  EXPECT_EQ(get("team/model.pt"), "new model");
  EXPECT_EQ(caching_->stat({"bucket", "team/model.pt"}).value().size, 9u);
  gate.release();
  (void)read_all(*reader);
  reader.reset();
  remote_->gate = nullptr;
  for (int i = 0; i < 100; ++i) {  // the fill thread ends on its own
    std::this_thread::sleep_for(10ms);
    if (get("team/model.pt") == "new model") break;
  }
  EXPECT_EQ(get("team/model.pt"), "new model");
  EXPECT_EQ(get("team/model.pt"), "new model");
}

TEST_F(CachingStoreTest, AnObjectRemovedDuringItsFillIsGoneAtOnce) {
  reopen(8 << 20);
  put("team/notes.txt", std::string(100000, 'n'));
  CountingStore::Gate gate;
  gate.open_bytes = 4096;
  remote_->gate = &gate;
  auto reader = caching_->open_read({"bucket", "team/notes.txt"}, {}).value();
  std::vector<std::byte> first(4096);
  std::size_t got = 0;
  while (got < first.size()) got += reader->read(std::span(first).subspan(got)).value();
  caching_->remove({"bucket", "team/notes.txt"}).value();
  // The fill still holds the old bytes, yet neither a stat nor a read finds the object.
  EXPECT_EQ(caching_->stat({"bucket", "team/notes.txt"}).error().code, ErrorCode::NotFound);
  EXPECT_EQ(caching_->open_read({"bucket", "team/notes.txt"}, {}).error().code,
            ErrorCode::NotFound);
  gate.release();
  (void)read_all(*reader);
  reader.reset();
  remote_->gate = nullptr;
  EXPECT_EQ(caching_->stat({"bucket", "team/notes.txt"}).error().code, ErrorCode::NotFound);
}

// Another writer (another server, another process over the same bucket) replaces an object
// between a stat and the read that follows it: the fill's GET, pinned to the stat's version,
// is refused, and the read gets what is there now instead of failing.
TEST_F(CachingStoreTest, AnObjectReplacedBetweenTheStatAndTheReadIsReadAsItIsNow) {
  put("videos/clip.mp4", "the same bytes");
  const auto before = caching_->stat({"bucket", "videos/clip.mp4"}).value();
  std::this_thread::sleep_for(10ms);  // a new modification time: a new etag
  put("videos/clip.mp4", "the same bytes");
  ASSERT_NE(local_->stat({"bucket", "videos/clip.mp4"}).value().etag, before.etag);
  EXPECT_EQ(get("videos/clip.mp4"), "the same bytes");
  // A caller that pinned the old version itself is still refused.
  store::ReadOptions pinned;
  pinned.if_match = before.etag;
  EXPECT_EQ(caching_->open_read({"bucket", "videos/clip.mp4"}, pinned).error().code,
            ErrorCode::PreconditionFailed);
}

TEST_F(CachingStoreTest, AHeaderReadOfAColdObjectDoesNotFetchAllOfIt) {
  const std::string bytes(100000, 'h');
  put("photo.jpg", bytes);
  EXPECT_EQ(get("photo.jpg", {.range = store::ByteRange{0, 64}}), bytes.substr(0, 64));
  EXPECT_EQ(cache_->entry_count(), 0u);
  EXPECT_NE(metrics_.render().find("stowage_remote_bytes_total{provider=\"counting\"} 64"),
            std::string::npos)
      << metrics_.render();
}

}  // namespace
}  // namespace stowage::cache
