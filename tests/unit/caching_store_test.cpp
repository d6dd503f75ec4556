// SPDX-License-Identifier: Apache-2.0
// The storage cache as an ObjectStore decorator, over a local store that counts the requests
// made to it (standing in for a remote provider).
#include "stowage/cache/caching_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
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
    return inner_.stat(p);
  }
  Result<std::unique_ptr<io::Reader>> open_read(const ObjectPath& p,
                                                const store::ReadOptions& o) override {
    ++reads;
    std::this_thread::sleep_for(read_delay);
    return inner_.open_read(p, o);
  }
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
    caching_ = std::make_unique<CachingStore>(*remote_, cache_.get(), "test", &metrics_);
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

TEST(ObjectMeta, RoundTrips) {
  store::ObjectInfo info;
  info.etag = "\"abc-1\"";
  info.size = 42;
  info.last_modified = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  auto back = decode_object_meta({"b", "k"}, encode_object_meta(info)).value();
  EXPECT_EQ(back.etag, info.etag);
  EXPECT_EQ(back.size, 42u);
  EXPECT_EQ(back.last_modified, info.last_modified);
  EXPECT_FALSE(decode_object_meta({"b", "k"}, "garbage"));
}

}  // namespace
}  // namespace stowage::cache
