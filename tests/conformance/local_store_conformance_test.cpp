// SPDX-License-Identifier: Apache-2.0
// The conformance suite over LocalStore, plus what only a local disk can show: symlinks, the
// staging folder, renames by inode.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "conformance/store_conformance.hpp"
#include "stowage/store/local/local_store.hpp"
#include "stowage/store/local/local_store_internal.hpp"

namespace stowage::testing {
namespace {

namespace fs = std::filesystem;
using store::ObjectPath;
using store::local::LocalStore;

constexpr std::string_view kPublic = "test-public";
constexpr std::string_view kPrivate = "test-private";

/// A fresh folder under the system temp folder, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("stowage-local-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

Result<StoreUnderTest> make_local_store() {
  auto dir = std::make_shared<TempDir>();
  STOWAGE_ASSIGN_OR_RETURN(
      auto local,
      LocalStore::open(dir->path() / "storage", {std::string(kPublic), std::string(kPrivate)}));
  StoreUnderTest out;
  out.store = std::move(local);
  out.bucket = kPublic;
  out.other_bucket = kPrivate;
  out.keep_alive = dir;
  return out;
}

INSTANTIATE_TEST_SUITE_P(Local, StoreConformance,
                         ::testing::Values(StoreFactory{"local", &make_local_store}),
                         store_factory_name);

void write_file(const fs::path& p, std::string_view text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string read_object(store::ObjectStore& s, const ObjectPath& p) {
  auto reader = s.open_read(p, {}).value();
  std::string out;
  std::vector<std::byte> buffer(4096);
  while (const std::size_t n = reader->read(buffer).value()) {
    out.append(reinterpret_cast<const char*>(buffer.data()), n);
  }
  return out;
}

Status put_text(store::ObjectStore& s, const ObjectPath& p, std::string_view text) {
  STOWAGE_ASSIGN_OR_RETURN(auto writer, s.open_write(p, {}));
  STOWAGE_TRY(
      writer->write(std::span(reinterpret_cast<const std::byte*>(text.data()), text.size())));
  STOWAGE_TRY(writer->commit());
  return {};
}

class LocalStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }
  void reopen() {
    store_.reset();
    store_ = LocalStore::open(root(), {std::string(kPublic), std::string(kPrivate)}).value();
  }
  fs::path root() const { return dir_.path() / "storage"; }
  fs::path bucket_dir() const { return root() / kPublic; }
  ObjectPath at(std::string key) const { return ObjectPath{std::string(kPublic), std::move(key)}; }

  TempDir dir_;
  std::unique_ptr<LocalStore> store_;
};

TEST_F(LocalStoreTest, OpenCreatesBucketFoldersAndStaging) {
  EXPECT_TRUE(fs::is_directory(root() / kPublic));
  EXPECT_TRUE(fs::is_directory(root() / kPrivate));
  EXPECT_TRUE(fs::is_directory(root() / ".staging"));
  EXPECT_EQ(store_->staging_dir(), root() / ".staging");
  const auto& caps = store_->capabilities();
  EXPECT_TRUE(caps.atomic_publish && caps.conditional_put && caps.native_files);
  EXPECT_EQ(store_->name(), "local");
}

TEST_F(LocalStoreTest, ObjectsAreFilesAtBucketSlashKey) {
  ASSERT_TRUE(put_text(*store_, at("a/b c.txt"), "layout"));
  EXPECT_EQ(read_file(bucket_dir() / "a" / "b c.txt"), "layout");
  const auto native = store_->native_file(at("a/b c.txt")).value();
  EXPECT_EQ(native.path, bucket_dir() / "a" / "b c.txt");
  EXPECT_EQ(native.size, 6u);
}

TEST_F(LocalStoreTest, BadOrUnconfiguredBucket) {
  auto bad = LocalStore::open(root(), {"Bad_Name"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::InvalidArgument);
  auto st = store_->stat(ObjectPath{"not-configured", "k"});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::NotFound);
  EXPECT_NE(st.error().message.find("stat not-configured/k"), std::string::npos)
      << st.error().message;
}

TEST_F(LocalStoreTest, SymlinkEscapeIsRefused) {
  const fs::path outside = dir_.path() / "outside";
  fs::create_directories(outside);
  write_file(outside / "secret", "do not read");
  fs::create_directory_symlink(outside, bucket_dir() / "abs-link");
  fs::create_directory_symlink("../../outside", bucket_dir() / "rel-link");
  fs::create_symlink(outside / "secret", bucket_dir() / "file-link");

  for (const std::string key : {"abs-link/secret", "rel-link/secret", "file-link"}) {
    SCOPED_TRACE(key);
    auto st = store_->stat(at(key));
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ErrorCode::PermissionDenied) << st.error().to_string();
    auto rd = store_->open_read(at(key), {});
    ASSERT_FALSE(rd);
    EXPECT_EQ(rd.error().code, ErrorCode::PermissionDenied);
    auto native = store_->native_file(at(key));
    ASSERT_FALSE(native);
    EXPECT_EQ(native.error().code, ErrorCode::PermissionDenied);
  }
  // Writes through the folder link are refused at open_write(), or at the latest at commit().
  for (const std::string key : {"abs-link/new", "rel-link/deeper/new"}) {
    SCOPED_TRACE(key);
    auto written = put_text(*store_, at(key), "escaped");
    ASSERT_FALSE(written);
    EXPECT_EQ(written.error().code, ErrorCode::PermissionDenied) << written.error().to_string();
  }
  auto removed = store_->remove(at("abs-link/secret"));
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error().code, ErrorCode::PermissionDenied);
  auto listed = store_->list(at("abs-link/"), {});
  ASSERT_FALSE(listed);
  EXPECT_EQ(listed.error().code, ErrorCode::PermissionDenied);

  EXPECT_EQ(read_file(outside / "secret"), "do not read");
  EXPECT_FALSE(fs::exists(outside / "new"));
  EXPECT_FALSE(fs::exists(outside / "deeper"));
  // Links are not objects: a listing of the bucket shows none of them.
  EXPECT_TRUE(store_->list(at(""), {}).value().objects.empty());
}

TEST_F(LocalStoreTest, OpenBeneathInBothModes) {
  using store::local::internal::Beneath;
  using store::local::internal::open_beneath;
  fs::create_directories(bucket_dir() / "sub");
  write_file(bucket_dir() / "sub" / "f", "x");
  fs::create_directory_symlink("sub", bucket_dir() / "inside-link");
  fs::create_directory_symlink("/", bucket_dir() / "root-link");
  const int dir = ::open(bucket_dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dir, 0);
  for (Beneath how : {Beneath::kOpenat2, Beneath::kWalk}) {
    const int plain = open_beneath(dir, "sub/f", O_RDONLY, how);
    if (plain == -ENOSYS) continue;  // kernel without openat2: kWalk still runs
    ASSERT_GE(plain, 0);
    ::close(plain);
    EXPECT_EQ(open_beneath(dir, "root-link/etc/passwd", O_RDONLY, how), -EXDEV);
    EXPECT_EQ(open_beneath(dir, "sub/../../x", O_RDONLY, how), -EXDEV);
    EXPECT_EQ(open_beneath(dir, "missing", O_RDONLY, how), -ENOENT);
    const int self = open_beneath(dir, "", O_RDONLY | O_DIRECTORY, how);
    EXPECT_GE(self, 0);
    if (self >= 0) ::close(self);
    const int linked = open_beneath(dir, "inside-link/f", O_RDONLY, how);
    if (how == Beneath::kOpenat2) {
      EXPECT_GE(linked, 0) << "a symlink that stays inside is followed";
    } else {
      EXPECT_EQ(linked, -EXDEV) << "the walk refuses every symlink";
    }
    if (linked >= 0) ::close(linked);
  }
  ::close(dir);
}

TEST_F(LocalStoreTest, StaleStagingFilesAreCleanedOnOpen) {
  write_file(store_->staging_dir() / "w.0123456789abcdef.tmp", "left by a crash");
  write_file(store_->staging_dir() / "junk", "also stale");
  reopen();
  EXPECT_TRUE(fs::is_empty(store_->staging_dir()));
}

TEST_F(LocalStoreTest, LiveWriterSurvivesAnotherOpenOfTheSameRoot) {
  auto writer = store_->open_write(at("live"), {}).value();
  ASSERT_TRUE(writer->write(std::as_bytes(std::span("in flight", 9))));
  EXPECT_FALSE(fs::is_empty(store_->staging_dir()));
  auto second = LocalStore::open(root(), {std::string(kPublic)}).value();
  EXPECT_FALSE(fs::is_empty(store_->staging_dir())) << "a locked temp file is not stale";
  ASSERT_TRUE(writer->commit());
  EXPECT_EQ(read_object(*second, at("live")), "in flight");
  EXPECT_TRUE(fs::is_empty(store_->staging_dir()));
}

TEST_F(LocalStoreTest, AdoptFileRenamesSameInode) {
  const fs::path spool = dir_.path() / "spool.bin";  // same file system as the store
  write_file(spool, "adopted bytes");
  struct stat before {};
  ASSERT_EQ(::stat(spool.c_str(), &before), 0);
  const auto info = store_->adopt_file(spool, at("x/adopted.bin"), {}).value();
  EXPECT_EQ(info.size, 13u);
  EXPECT_FALSE(fs::exists(spool)) << "the spool file is consumed";
  const auto native = store_->native_file(at("x/adopted.bin")).value();
  struct stat after {};
  ASSERT_EQ(::stat(native.path.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "renamed, not copied";
  EXPECT_EQ(read_object(*store_, at("x/adopted.bin")), "adopted bytes");
  EXPECT_EQ(store_->stat(at("x/adopted.bin")).value().etag, info.etag);

  write_file(spool, "second");
  auto refused = store_->adopt_file(spool, at("x/adopted.bin"), {std::nullopt, true});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::AlreadyExists);
  EXPECT_TRUE(fs::exists(spool)) << "a failed adopt leaves the spool file to the caller";
}

TEST_F(LocalStoreTest, KeyAndFolderConflictsFailCleanly) {
  ASSERT_TRUE(put_text(*store_, at("a/b"), "deep"));
  auto folder = store_->stat(at("a"));
  ASSERT_FALSE(folder);
  EXPECT_EQ(folder.error().code, ErrorCode::NotFound) << "a folder is not an object";
  auto over_folder = put_text(*store_, at("a"), "flat");
  ASSERT_FALSE(over_folder);
  EXPECT_EQ(over_folder.error().code, ErrorCode::InvalidArgument);
  ASSERT_TRUE(put_text(*store_, at("f"), "file"));
  auto under_file = put_text(*store_, at("f/g"), "child");
  ASSERT_FALSE(under_file);
  EXPECT_EQ(under_file.error().code, ErrorCode::InvalidArgument);
  EXPECT_TRUE(store_->remove(at("a")));  // a folder: nothing to remove
  EXPECT_EQ(read_object(*store_, at("a/b")), "deep");
  EXPECT_EQ(read_object(*store_, at("f")), "file");
  EXPECT_TRUE(fs::is_empty(store_->staging_dir())) << "failed commits leave no temp file";
}

TEST_F(LocalStoreTest, PublishSurvivesConcurrentPruneOfItsFolder) {
  // Each thread writes then removes its own key in a shared folder: every remove() prunes the
  // folder when it empties it, under the feet of the other thread's publish.
  constexpr int kThreads = 3;
  constexpr int kRounds = 150;
  std::mutex mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const auto key = at("p/q/r/k" + std::to_string(t));
      for (int i = 0; i < kRounds; ++i) {
        Status done = put_text(*store_, key, "v");
        if (done) done = store_->remove(key);
        if (!done) {
          const std::lock_guard lock(mutex);
          failures.push_back(done.error().to_string());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(failures.empty()) << failures.size() << " failures, first: " << failures.front();
  EXPECT_FALSE(fs::exists(bucket_dir() / "p")) << "emptied folders are pruned";
}

TEST_F(LocalStoreTest, EtagChangesOnSameSizeRewrite) {
  ASSERT_TRUE(put_text(*store_, at("e"), "aaaa"));
  const auto first = store_->stat(at("e")).value();
  ASSERT_TRUE(put_text(*store_, at("e"), "bbbb"));
  const auto second = store_->stat(at("e")).value();
  EXPECT_EQ(first.size, second.size);
  EXPECT_NE(first.etag, second.etag);
  auto stale = store_->open_read(at("e"), {std::nullopt, first.etag});
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::PreconditionFailed);
  EXPECT_EQ(read_object(*store_, at("e")), "bbbb");
}

TEST_F(LocalStoreTest, EmptyObjectRangesAndFifo) {
  ASSERT_TRUE(put_text(*store_, at("empty"), ""));
  auto reader = store_->open_read(at("empty"), {store::ByteRange{0, 10}}).value();
  std::vector<std::byte> buffer(4);
  EXPECT_EQ(reader->read(buffer).value(), 0u);
  // A FIFO planted in the bucket is not an object, and must not hang open_read().
  ASSERT_EQ(::mkfifo((bucket_dir() / "fifo").c_str(), 0644), 0);
  auto fifo = store_->open_read(at("fifo"), {});
  ASSERT_FALSE(fifo);
  EXPECT_EQ(fifo.error().code, ErrorCode::NotFound);
  EXPECT_EQ(store_->list(at(""), {}).value().objects.size(), 1u);
}

}  // namespace
}  // namespace stowage::testing
