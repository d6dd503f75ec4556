// SPDX-License-Identifier: Apache-2.0
// Crash safety of LocalStore: a child process writes objects in a loop and is SIGKILLed at random
// moments; after each kill, the store reopened by the parent holds only complete objects.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "stowage/store/local/local_store.hpp"

namespace stowage::store::local {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kBucket = "crash-public";
constexpr int kRounds = 5;
constexpr std::size_t kMaxObjectBytes = 3 << 20;
constexpr std::size_t kChunkBytes = 256 << 10;

std::uint64_t hash_of(std::string_view key) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (char c : key) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

/// The object's size and bytes are functions of its key, so a reader can check it alone.
std::size_t size_for(std::string_view key) { return hash_of(key) % kMaxObjectBytes; }

std::byte byte_at(std::uint64_t seed, std::uint64_t offset) {
  return static_cast<std::byte>((seed >> (offset % 7 * 8)) + offset * 131 + (offset >> 12));
}

void fill(std::string_view key, std::uint64_t offset, std::span<std::byte> out) {
  const std::uint64_t seed = hash_of(key);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = byte_at(seed, offset + i);
}

/// The child: writes objects forever (until killed); never returns into the test framework.
[[noreturn]] void child_main(const fs::path& root, int round) {
  auto opened = LocalStore::open(root, {std::string(kBucket)});
  if (!opened) _exit(2);
  LocalStore& store = **opened;
  std::vector<std::byte> chunk(kChunkBytes);
  for (int i = 0;; ++i) {
    // Some keys recur across rounds (overwrites), some are new; several folders.
    const std::string key = "d" + std::to_string(i % 5) + "/r" + std::to_string(round) + "-" +
                            std::to_string(i % 40) + ".bin";
    auto writer = store.open_write(ObjectPath{std::string(kBucket), key}, {});
    if (!writer) _exit(3);
    const std::size_t size = size_for(key);
    for (std::size_t off = 0; off < size; off += kChunkBytes) {
      const std::size_t n = std::min(kChunkBytes, size - off);
      fill(key, off, std::span(chunk).first(n));
      if (!(*writer)->write(std::span<const std::byte>(chunk.data(), n))) _exit(4);
    }
    if (!(*writer)->commit()) _exit(5);
    if (i % 7 == 6) (void)store.remove(ObjectPath{std::string(kBucket), "d0/r0-0.bin"});
  }
}

TEST(LocalStoreCrashTest, KilledWriterLeavesOnlyCompleteObjects) {
  std::random_device rd;
  const fs::path root =
      fs::temp_directory_path() / ("stowage-crash-" + std::to_string(rd()) + std::to_string(rd()));
  std::mt19937 rng(rd());
  std::uniform_int_distribution<int> delay_ms(20, 200);
  std::size_t verified = 0;

  for (int round = 0; round < kRounds; ++round) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) child_main(root, round);
    const int delay = delay_ms(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "round " << round << ": the child exited early, status "
                                     << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    auto reopened = LocalStore::open(root, {std::string(kBucket)});
    ASSERT_TRUE(reopened) << reopened.error().to_string();
    LocalStore& store = **reopened;
    EXPECT_TRUE(fs::is_empty(store.staging_dir()))
        << "round " << round << ": open() must delete the dead writer's temp file";

    ListOptions options;
    options.max_keys = 1000;
    const auto page = store.list(ObjectPath{std::string(kBucket), ""}, options).value();
    EXPECT_TRUE(page.next_page_token.empty());
    std::vector<std::byte> buffer(1 << 20);
    std::vector<std::byte> expected(1 << 20);
    for (const ObjectInfo& info : page.objects) {
      const std::string& key = info.path.key;
      SCOPED_TRACE("round " + std::to_string(round) + " key " + key);
      ASSERT_TRUE(key.ends_with(".bin")) << "only objects are listed, never temp files";
      const auto st = store.stat(info.path).value();
      ASSERT_EQ(st.size, size_for(key)) << "a listed object is complete";
      ASSERT_EQ(st.etag, info.etag);
      auto reader = store.open_read(info.path, {}).value();
      std::uint64_t offset = 0;
      for (;;) {
        const std::size_t n = reader->read(buffer).value();
        if (n == 0) break;
        fill(key, offset, std::span(expected).first(n));
        ASSERT_TRUE(std::equal(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n),
                               expected.begin()))
            << "bytes differ near offset " << offset;
        offset += n;
      }
      ASSERT_EQ(offset, st.size);
      ++verified;
    }
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  RecordProperty("objects_verified", static_cast<int>(verified));
  EXPECT_GT(verified, 0u) << "the child never committed anything: the test proved nothing";
}

}  // namespace
}  // namespace stowage::store::local
