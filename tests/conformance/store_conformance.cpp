// SPDX-License-Identifier: Apache-2.0
#include "conformance/store_conformance.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <thread>

namespace stowage::testing {

using store::ByteRange;
using store::ListOptions;
using store::ListPage;
using store::ObjectInfo;
using store::ObjectPath;
using store::ReadOptions;
using store::WriteOptions;

std::string store_factory_name(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

std::vector<std::byte> pattern_bytes(std::uint64_t seed, std::size_t size) {
  std::vector<std::byte> out(size);
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (std::size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<std::byte>(x >> 24);
  }
  return out;
}

std::vector<std::byte> as_bytes(std::string_view text) {
  const auto* p = reinterpret_cast<const std::byte*>(text.data());
  return {p, p + text.size()};
}

void StoreConformance::SetUp() {
  auto made = GetParam().make();
  if (!made) {
    const bool ci = std::getenv("CI") != nullptr && std::string_view(std::getenv("CI")) == "true";
    if (made.error().code == ErrorCode::Unavailable && !ci) {
      GTEST_SKIP() << GetParam().name << " unavailable: " << made.error().to_string();
    }
    FAIL() << "cannot make a " << GetParam().name << " store: " << made.error().to_string();
  }
  under_test_ = std::move(*made);
  std::random_device rd;
  prefix_ = "conf-" + std::to_string(rd()) + std::to_string(rd()) + "/";
}

void StoreConformance::TearDown() {
  if (under_test_.store) {
    for (const auto& p : written_) (void)under_test_.store->remove(p);
  }
  under_test_.store.reset();
  under_test_.keep_alive.reset();
}

ObjectPath StoreConformance::path(std::string_view name) const {
  return ObjectPath{under_test_.bucket, prefix_ + std::string(name)};
}

ObjectInfo StoreConformance::put(const ObjectPath& at, std::span<const std::byte> bytes,
                                 std::size_t chunk, const WriteOptions& options) {
  written_.push_back(at);
  auto writer = store().open_write(at, options).value();
  for (std::size_t off = 0; off < bytes.size(); off += chunk) {
    writer->write(bytes.subspan(off, std::min(chunk, bytes.size() - off))).value();
  }
  return writer->commit().value();
}

ObjectInfo StoreConformance::put(const ObjectPath& at, std::string_view text) {
  const auto bytes = as_bytes(text);
  return put(at, bytes);
}

std::vector<std::byte> StoreConformance::get(const ObjectPath& at, const ReadOptions& options,
                                             std::size_t chunk) {
  auto reader = store().open_read(at, options).value();
  std::vector<std::byte> out;
  std::vector<std::byte> buffer(chunk);
  for (;;) {
    const std::size_t n = reader->read(buffer).value();
    if (n == 0) break;
    out.insert(out.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
  }
  if (auto size = reader->size()) {
    EXPECT_EQ(*size, out.size()) << at.to_string();
  }
  return out;
}

ListPage StoreConformance::list_all(const ObjectPath& at, ListOptions options, std::size_t* pages) {
  ListPage all;
  std::size_t count = 0;
  for (;;) {
    const ListPage page = store().list(at, options).value();
    ++count;
    EXPECT_LE(page.objects.size() + page.prefixes.size(), options.max_keys);
    all.objects.insert(all.objects.end(), page.objects.begin(), page.objects.end());
    all.prefixes.insert(all.prefixes.end(), page.prefixes.begin(), page.prefixes.end());
    if (page.next_page_token.empty()) break;
    EXPECT_NE(page.next_page_token, options.page_token) << "the listing does not advance";
    if (page.next_page_token == options.page_token || count > 100000) break;
    options.page_token = page.next_page_token;
  }
  if (pages != nullptr) *pages = count;
  return all;
}

namespace {

std::vector<std::string> keys_of(const ListPage& page) {
  std::vector<std::string> out;
  for (const auto& info : page.objects) out.push_back(info.path.key);
  return out;
}

std::vector<std::string> with_prefix(const std::string& prefix, std::vector<std::string> names) {
  for (auto& n : names) n = prefix + n;
  return names;
}

ErrorCode code_of(const Status& status) {
  return status ? ErrorCode::Internal : status.error().code;
}

}  // namespace

// ---- writing and reading ------------------------------------------------------------------------

TEST_P(StoreConformance, RoundTripEmptyObject) {
  const auto info = put(path("empty"), std::span<const std::byte>());
  EXPECT_EQ(info.size, 0u);
  EXPECT_FALSE(info.etag.empty());
  EXPECT_TRUE(get(path("empty")).empty());
  const auto st = store().stat(path("empty")).value();
  EXPECT_EQ(st.size, 0u);
  EXPECT_EQ(st.path, path("empty"));
}

TEST_P(StoreConformance, RoundTripOneByte) {
  put(path("one"), "x");
  EXPECT_EQ(get(path("one")), as_bytes("x"));
  EXPECT_EQ(store().stat(path("one")).value().size, 1u);
}

TEST_P(StoreConformance, RoundTripSeveralMiBInOddSizedWrites) {
  const auto bytes = pattern_bytes(7, (5 << 20) + 12345);
  const auto info = put(path("big/blob.bin"), bytes, 65537);
  EXPECT_EQ(info.size, bytes.size());
  const auto st = store().stat(path("big/blob.bin")).value();
  EXPECT_EQ(st.size, bytes.size());
  EXPECT_EQ(st.etag, info.etag) << "commit() and stat() must agree on the etag";
  EXPECT_GT(st.last_modified.time_since_epoch().count(), 0);
  EXPECT_EQ(get(path("big/blob.bin"), {}, 100003), bytes);
  EXPECT_EQ(get(path("big/blob.bin"), {}, 1 << 20), bytes);
}

TEST_P(StoreConformance, StatAndReadOfMissingObjectAreNotFound) {
  auto st = store().stat(path("missing"));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::NotFound);
  EXPECT_NE(st.error().message.find("missing"), std::string::npos) << "messages name the key";
  auto rd = store().open_read(path("missing"), {});
  ASSERT_FALSE(rd);
  EXPECT_EQ(rd.error().code, ErrorCode::NotFound);
}

TEST_P(StoreConformance, UnknownBucketIsNotFound) {
  const ObjectPath p{"stowage-no-such-bucket-" + std::to_string(std::random_device{}()), "k"};
  auto st = store().stat(p);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::NotFound);
}

TEST_P(StoreConformance, BucketsAreSeparate) {
  put(path("same-key"), "main");
  const ObjectPath other{other_bucket(), path("same-key").key};
  EXPECT_EQ(store().stat(other).error().code, ErrorCode::NotFound);
  put(other, "other");
  EXPECT_EQ(get(path("same-key")), as_bytes("main"));
  EXPECT_EQ(get(other), as_bytes("other"));
}

TEST_P(StoreConformance, Ranges) {
  const auto bytes = pattern_bytes(11, 1000);
  put(path("r"), bytes);
  auto slice = [&](std::size_t from, std::size_t to) {
    return std::vector<std::byte>(bytes.begin() + static_cast<std::ptrdiff_t>(from),
                                  bytes.begin() + static_cast<std::ptrdiff_t>(to));
  };
  EXPECT_EQ(get(path("r"), ReadOptions{ByteRange{100, 50}}), slice(100, 150)) << "middle";
  EXPECT_EQ(get(path("r"), ReadOptions{ByteRange{0, 1}}), slice(0, 1)) << "first byte";
  EXPECT_EQ(get(path("r"), ReadOptions{ByteRange{900, std::nullopt}}), slice(900, 1000))
      << "to the end";
  EXPECT_EQ(get(path("r"), ReadOptions{ByteRange{999, 1}}), slice(999, 1000)) << "last byte";
  EXPECT_EQ(get(path("r"), ReadOptions{ByteRange{990, 500}}), slice(990, 1000)) << "clamped";
  for (std::uint64_t start : {1000ull, 1001ull, 1ull << 40}) {
    auto past = store().open_read(path("r"), ReadOptions{ByteRange{start, 10}});
    ASSERT_FALSE(past) << start;
    EXPECT_EQ(past.error().code, ErrorCode::RangeNotSatisfiable) << start;
  }
}

TEST_P(StoreConformance, IfMatch) {
  const auto info = put(path("m"), "hello");
  EXPECT_EQ(get(path("m"), ReadOptions{std::nullopt, info.etag}), as_bytes("hello"));
  auto stale = store().open_read(path("m"), ReadOptions{std::nullopt, "\"not-the-etag\""});
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::PreconditionFailed);
}

TEST_P(StoreConformance, OverwriteReplacesBytesAndEtag) {
  const auto first = put(path("o"), "first version");
  const auto second = put(path("o"), "second");
  EXPECT_EQ(get(path("o")), as_bytes("second"));
  EXPECT_EQ(store().stat(path("o")).value().size, 6u);
  EXPECT_NE(first.etag, second.etag);
  auto stale = store().open_read(path("o"), ReadOptions{std::nullopt, first.etag});
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::PreconditionFailed);
}

TEST_P(StoreConformance, IfNoneMatchRefusesExistingObject) {
  if (!caps().conditional_put) GTEST_SKIP() << "no conditional put";
  const WriteOptions once{std::nullopt, true};
  put(path("n"), as_bytes("original"), 1 << 20, once);  // absent: succeeds
  auto writer = store().open_write(path("n"), once);
  if (writer) {
    (*writer)->write(as_bytes("intruder")).value();
    auto committed = (*writer)->commit();
    ASSERT_FALSE(committed);
    EXPECT_EQ(committed.error().code, ErrorCode::AlreadyExists);
  } else {
    EXPECT_EQ(writer.error().code, ErrorCode::AlreadyExists);
  }
  EXPECT_EQ(get(path("n")), as_bytes("original"));
}

TEST_P(StoreConformance, NothingVisibleBeforeCommit) {
  auto writer = store().open_write(path("pending"), {}).value();
  writer->write(as_bytes("half")).value();
  EXPECT_EQ(store().stat(path("pending")).error().code, ErrorCode::NotFound);
  EXPECT_TRUE(store().list(ObjectPath{bucket(), prefix()}, {}).value().objects.empty());
  writer->write(as_bytes(" and the rest")).value();
  const auto info = writer->commit().value();
  EXPECT_EQ(info.size, 17u);
  EXPECT_EQ(get(path("pending")), as_bytes("half and the rest"));
  EXPECT_FALSE(writer->write(as_bytes("late"))) << "write after commit must fail";
}

TEST_P(StoreConformance, AbortLeavesNothing) {
  auto writer = store().open_write(path("aborted"), {}).value();
  writer->write(pattern_bytes(3, 3 << 20)).value();
  writer->abort().value();
  writer->abort().value();  // idempotent
  EXPECT_FALSE(writer->write(as_bytes("x")));
  EXPECT_FALSE(writer->commit());
  EXPECT_EQ(store().stat(path("aborted")).error().code, ErrorCode::NotFound);
  EXPECT_TRUE(store().list(ObjectPath{bucket(), prefix()}, {}).value().objects.empty());
}

TEST_P(StoreConformance, DestroyWithoutCommitLeavesNothing) {
  {
    auto writer = store().open_write(path("dropped"), {}).value();
    writer->write(pattern_bytes(4, 100000)).value();
  }
  EXPECT_EQ(store().stat(path("dropped")).error().code, ErrorCode::NotFound);
  EXPECT_TRUE(store().list(ObjectPath{bucket(), prefix()}, {}).value().objects.empty());
}

TEST_P(StoreConformance, AbortedOverwriteKeepsOldObject) {
  put(path("keep"), "old");
  auto writer = store().open_write(path("keep"), {}).value();
  writer->write(as_bytes("new")).value();
  writer.reset();
  EXPECT_EQ(get(path("keep")), as_bytes("old"));
}

TEST_P(StoreConformance, RemoveIsIdempotentAndHidesEmptyFolders) {
  put(path("d/e/f"), "deep");
  put(path("d/g"), "sibling");
  store().remove(path("d/e/f")).value();
  EXPECT_EQ(store().stat(path("d/e/f")).error().code, ErrorCode::NotFound);
  store().remove(path("d/e/f")).value();        // again
  store().remove(path("never/there")).value();  // never existed
  EXPECT_EQ(get(path("d/g")), as_bytes("sibling"));
  ListOptions delimited;
  delimited.delimiter = "/";
  const auto top = store().list(ObjectPath{bucket(), prefix() + "d/"}, delimited).value();
  EXPECT_EQ(keys_of(top), std::vector<std::string>{prefix() + "d/g"});
  EXPECT_TRUE(top.prefixes.empty()) << "no common prefix for an emptied folder";
  store().remove(path("d/g")).value();
  const auto root = store().list(ObjectPath{bucket(), prefix()}, delimited).value();
  EXPECT_TRUE(root.objects.empty());
  EXPECT_TRUE(root.prefixes.empty());
}

// ---- listing ------------------------------------------------------------------------------------

TEST_P(StoreConformance, ListPrefixStartAfterAndDelimiter) {
  // "a-x" < "a/b" in byte order ('-' is 0x2d, '/' is 0x2f), though the folder "a" sorts first.
  const std::vector<std::string> names = {"a-x", "a/b", "a/c/d", "a/c/e", "a0", "ab", "b"};
  for (const auto& n : names) put(path(n), n);
  const auto everything = keys_of(list_all(ObjectPath{bucket(), prefix()}, {}));
  EXPECT_EQ(everything, with_prefix(prefix(), names));

  const auto under_a = keys_of(list_all(ObjectPath{bucket(), prefix() + "a/"}, {}));
  EXPECT_EQ(under_a, with_prefix(prefix(), {"a/b", "a/c/d", "a/c/e"}));

  const auto mid = keys_of(list_all(ObjectPath{bucket(), prefix() + "a"}, {}));
  EXPECT_EQ(mid, with_prefix(prefix(), {"a-x", "a/b", "a/c/d", "a/c/e", "a0", "ab"}))
      << "a prefix may end mid-segment";

  const auto mid2 = keys_of(list_all(ObjectPath{bucket(), prefix() + "a/c/"}, {}));
  EXPECT_EQ(mid2, with_prefix(prefix(), {"a/c/d", "a/c/e"}));
  EXPECT_TRUE(keys_of(list_all(ObjectPath{bucket(), prefix() + "zz"}, {})).empty());
  EXPECT_TRUE(keys_of(list_all(ObjectPath{bucket(), prefix() + "a/c/d/"}, {})).empty());

  ListOptions after;
  after.start_after = prefix() + "a/c/d";
  const auto tail = keys_of(list_all(ObjectPath{bucket(), prefix() + "a"}, after));
  EXPECT_EQ(tail, with_prefix(prefix(), {"a/c/e", "a0", "ab"}));

  ListOptions delimited;
  delimited.delimiter = "/";
  const auto top = list_all(ObjectPath{bucket(), prefix() + "a"}, delimited);
  EXPECT_EQ(keys_of(top), with_prefix(prefix(), {"a-x", "a0", "ab"}));
  EXPECT_EQ(top.prefixes, with_prefix(prefix(), {"a/"}));

  const auto in_a = list_all(ObjectPath{bucket(), prefix() + "a/"}, delimited);
  EXPECT_EQ(keys_of(in_a), with_prefix(prefix(), {"a/b"}));
  EXPECT_EQ(in_a.prefixes, with_prefix(prefix(), {"a/c/"}));

  delimited.start_after = prefix() + "a/b";
  const auto in_a_after = list_all(ObjectPath{bucket(), prefix() + "a/"}, delimited);
  EXPECT_TRUE(keys_of(in_a_after).empty());
  EXPECT_EQ(in_a_after.prefixes, with_prefix(prefix(), {"a/c/"}));
}

TEST_P(StoreConformance, ListPagesOverManyKeys) {
  const std::size_t n = GetParam().bulk_keys;
  std::vector<std::string> expected;
  for (std::size_t i = 0; i < n; ++i) {
    // Three folders and a flat part, so pages cross folder boundaries.
    const std::string name =
        (i % 4 == 3 ? std::string("flat-") : "f" + std::to_string(i % 3) + "/") +
        std::to_string(100000 + i);
    expected.push_back(prefix() + name);
    put(path(name), std::string_view(name));
  }
  std::sort(expected.begin(), expected.end());

  ListOptions paged;
  paged.max_keys = 1000;
  std::size_t pages = 0;
  const auto all = list_all(ObjectPath{bucket(), prefix()}, paged, &pages);
  EXPECT_EQ(keys_of(all), expected);
  EXPECT_EQ(pages, (n + 999) / 1000);
  for (const auto& info : all.objects) {
    ASSERT_EQ(info.size, info.path.key.size() - prefix().size());
    ASSERT_FALSE(info.etag.empty());
  }

  // Pages of 7 with start_after in the middle of a folder.
  ListOptions small;
  small.max_keys = 7;
  small.start_after = expected[n / 2];
  const auto rest = keys_of(list_all(ObjectPath{bucket(), prefix()}, small));
  EXPECT_EQ(rest, std::vector<std::string>(
                      expected.begin() + static_cast<std::ptrdiff_t>(n / 2 + 1), expected.end()));

  // Delimited pages of one item: each page holds either a key or a common prefix.
  ListOptions one;
  one.max_keys = 1;
  one.delimiter = "/";
  std::size_t delimited_pages = 0;
  const auto top = list_all(ObjectPath{bucket(), prefix()}, one, &delimited_pages);
  EXPECT_EQ(top.prefixes, with_prefix(prefix(), {"f0/", "f1/", "f2/"}));
  EXPECT_EQ(top.objects.size(), n / 4);
  EXPECT_EQ(delimited_pages, n / 4 + 3);
}

TEST_P(StoreConformance, KeysWithSpecialCharacters) {
  const std::vector<std::string> names = {"q?x=1&y=2",
                                          "hash#frag",
                                          "pct%20%2F",
                                          "with space",
                                          "plus+sign",
                                          "unicod\xC3\xA9/\xE6\x97\xA5\xE6\x9C\xAC.jpg",
                                          "emoji-\xF0\x9F\x93\xB7",
                                          "semi;colon,comma",
                                          ".dotfile",
                                          "tilde~and'quote\"",
                                          "star*bracket[1]"};
  for (const auto& n : names) {
    put(path(n), n);
    EXPECT_EQ(get(path(n)), as_bytes(n)) << n;
    EXPECT_EQ(store().stat(path(n)).value().size, n.size()) << n;
  }
  auto expected = with_prefix(prefix(), names);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(keys_of(list_all(ObjectPath{bucket(), prefix()}, {})), expected);
  for (const auto& n : names) store().remove(path(n)).value();
  EXPECT_TRUE(list_all(ObjectPath{bucket(), prefix()}, {}).objects.empty());
}

TEST_P(StoreConformance, InvalidKeysAreRefused) {
  const std::vector<std::string> bad = {
      "",     "a//b", "../x",  "a/../../x", "/abs", std::string("nul\0byte", 8),
      "dir/", "./x",  "a/./b", "ctl\x01"};
  for (const auto& key : bad) {
    const ObjectPath p{bucket(), key};
    SCOPED_TRACE("key '" + key + "'");
    auto st = store().stat(p);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ErrorCode::InvalidArgument);
    auto rd = store().open_read(p, {});
    ASSERT_FALSE(rd);
    EXPECT_EQ(rd.error().code, ErrorCode::InvalidArgument);
    auto wr = store().open_write(p, {});
    ASSERT_FALSE(wr);
    EXPECT_EQ(wr.error().code, ErrorCode::InvalidArgument);
    EXPECT_EQ(code_of(store().remove(p)), ErrorCode::InvalidArgument);
  }
  const ObjectPath bad_bucket{"Bad_Bucket", "k"};
  EXPECT_EQ(store().stat(bad_bucket).error().code, ErrorCode::InvalidArgument);
  auto listed = store().list(ObjectPath{bucket(), "../"}, {});
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code, ErrorCode::InvalidArgument);
}

// ---- concurrency --------------------------------------------------------------------------------

TEST_P(StoreConformance, ConcurrentWritersOfOneKeyLeaveOneCompleteObject) {
  constexpr int kWriters = 6;
  constexpr std::size_t kSize = (1 << 20) + 4099;
  std::vector<std::vector<std::byte>> contents;
  for (int i = 0; i < kWriters; ++i) contents.push_back(pattern_bytes(100 + i, kSize));
  std::atomic<int> committed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      auto writer = store().open_write(path("contended"), {});
      if (!writer) return;
      for (std::size_t off = 0; off < kSize; off += 65536) {
        const std::size_t n = std::min<std::size_t>(65536, kSize - off);
        if (!(*writer)->write(std::span(contents[i]).subspan(off, n))) return;
      }
      if ((*writer)->commit()) committed.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(committed.load(), kWriters);
  const auto got = get(path("contended"));
  EXPECT_TRUE(std::find(contents.begin(), contents.end(), got) != contents.end())
      << "the object must be exactly one writer's bytes";
  EXPECT_EQ(keys_of(list_all(ObjectPath{bucket(), prefix()}, {})),
            std::vector<std::string>{path("contended").key});
}

TEST_P(StoreConformance, ConcurrentIfNoneMatchHasOneWinner) {
  if (!caps().conditional_put) GTEST_SKIP() << "no conditional put";
  constexpr int kWriters = 6;
  std::atomic<int> won{0};
  std::atomic<int> lost{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] {
      auto writer = store().open_write(path("once"), WriteOptions{std::nullopt, true});
      if (!writer) {
        if (writer.error().code == ErrorCode::AlreadyExists) lost.fetch_add(1);
        return;
      }
      if (!(*writer)->write(pattern_bytes(i, 200000))) return;
      auto done = (*writer)->commit();
      if (done) won.fetch_add(1);
      if (!done && done.error().code == ErrorCode::AlreadyExists) lost.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(lost.load(), kWriters - 1);
}

TEST_P(StoreConformance, OpenRandomFromSeveralThreads) {
  const auto bytes = pattern_bytes(21, (3 << 20) + 17);
  const auto info = put(path("random"), bytes);
  auto reader = store().open_random(store().stat(path("random")).value()).value();
  EXPECT_EQ(reader->size(), bytes.size());
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::vector<std::byte> buffer(70000);
      for (int i = 0; i < 200; ++i) {
        const std::uint64_t off = rng() % bytes.size();
        auto n = reader->read_at(off, buffer);
        const std::size_t expect = std::min<std::size_t>(buffer.size(), bytes.size() - off);
        if (!n || *n != expect ||
            !std::equal(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(*n),
                        bytes.begin() + static_cast<std::ptrdiff_t>(off))) {
          mismatches.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  std::vector<std::byte> buffer(10);
  EXPECT_EQ(reader->read_at(bytes.size(), buffer).value(), 0u) << "at the end: 0 bytes";
  (void)info;
}

TEST_P(StoreConformance, OpenRandomPinsTheVersion) {
  const auto first = put(path("pinned"), "version one");
  put(path("pinned"), "version two!");
  auto reader = store().open_random(first);
  if (reader) {
    std::vector<std::byte> buffer(64);
    auto n = (*reader)->read_at(0, buffer);
    ASSERT_FALSE(n) << "a changed object must not be read under an old etag";
    EXPECT_EQ(n.error().code, ErrorCode::PreconditionFailed);
  } else {
    EXPECT_EQ(reader.error().code, ErrorCode::PreconditionFailed);
  }
}

// ---- files --------------------------------------------------------------------------------------

TEST_P(StoreConformance, NativeFileWhenSupported) {
  put(path("native"), "native bytes");
  auto native = store().native_file(path("native"));
  if (!caps().native_files) {
    ASSERT_FALSE(native);
    EXPECT_EQ(native.error().code, ErrorCode::Unsupported);
    return;
  }
  ASSERT_TRUE(native) << native.error().to_string();
  EXPECT_EQ(native->size, 12u);
  std::ifstream in(native->path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "native bytes");
}

TEST_P(StoreConformance, AdoptFileConsumesTheSpoolFile) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("stowage-spool-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  const auto spool = dir / "upload.part";
  const auto bytes = pattern_bytes(5, 300000);
  {
    std::ofstream out(spool, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  const auto info = store().adopt_file(spool, path("adopted/file.bin"), {}).value();
  EXPECT_EQ(info.size, bytes.size());
  EXPECT_FALSE(std::filesystem::exists(spool));
  EXPECT_EQ(get(path("adopted/file.bin")), bytes);
  std::filesystem::remove_all(dir);
}

}  // namespace stowage::testing
