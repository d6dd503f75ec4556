// SPDX-License-Identifier: Apache-2.0
#include "stowage/cache/disk_cache.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <random>
#include <unordered_set>

#include "stowage/io/checksum.hpp"

namespace stowage::cache {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

/// Fills reserve at least this much at a time when they do not know their size, so that a
/// stream of small writes does not take the lock for each one.
constexpr std::uint64_t kReserveStep = 1 << 20;

std::int64_t to_ms(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
Clock::time_point from_ms(std::int64_t ms) {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(ms)));
}

/// `<2 hex>/<sha256(key) hex>-<16 random hex>`: the random part gives every fill its own file,
/// so replacing an entry never renames over a file that a reader may be opening.
std::string fresh_file_name(std::string_view key) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto digest = io::Sha256::of(std::as_bytes(std::span(key.data(), key.size())));
  const std::string hex = io::to_hex(digest);
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
  return hex.substr(0, 2) + "/" + hex + "-" + suffix;
}

}  // namespace

// --- The SQLite index ------------------------------------------------------------------------

struct DiskCache::Index {
  sqlite3* db = nullptr;
  std::string where;  // for messages

  ~Index() {
    if (db != nullptr) sqlite3_close(db);
  }

  Error fail(std::string_view op) const {
    return make_error(ErrorCode::IoError,
                      "cache index " + where + ": " + std::string(op) + ": " + sqlite3_errmsg(db));
  }

  Status exec(const char* sql) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return fail(sql);
    return {};
  }

  /// Runs one statement with text/integer parameters, ignoring rows.
  template <class... A>
  Status run(const char* sql, const A&... args) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) return fail("prepare");
    int i = 0;
    (bind(stmt, ++i, args), ...);
    const int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return fail("step");
    return {};
  }

  static void bind(sqlite3_stmt* stmt, int i, const std::string& v) {
    sqlite3_bind_text(stmt, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  static void bind(sqlite3_stmt* stmt, int i, std::int64_t v) { sqlite3_bind_int64(stmt, i, v); }
};

// --- EntryWriter -----------------------------------------------------------------------------

Status EntryWriter::reserve(std::uint64_t total_bytes) {
  if (total_bytes <= reserved_) return {};
  if (total_bytes > cache_.max_entry_bytes()) {
    return make_error(ErrorCode::TooLarge, "cache " + cache_.options_.name + ": entry of " +
                                               std::to_string(total_bytes) +
                                               " bytes is larger than a quarter of the cache");
  }
  std::lock_guard lock(cache_.mutex_);
  STOWAGE_TRY(cache_.reserve_locked(total_bytes - reserved_));
  reserved_ = total_bytes;
  return {};
}

Status EntryWriter::write(std::span<const std::byte> bytes) {
  const std::uint64_t needed = written_ + bytes.size();
  if (needed > reserved_) {
    const std::uint64_t step =
        std::min(std::max(needed, reserved_ + kReserveStep), cache_.max_entry_bytes());
    STOWAGE_TRY(reserve(std::max(needed, step)));
  }
  STOWAGE_TRY(file_.write_all(bytes));
  written_ = needed;
  return {};
}

// --- DiskCache -------------------------------------------------------------------------------

DiskCache::DiskCache(DiskCacheOptions options) : options_(std::move(options)) {
  if (auto* m = options_.metrics) {
    const metrics::Labels l{{"cache", options_.name}};
    hits_ = &m->counter("stowage_cache_hits_total", "Cache lookups answered from disk.", l);
    misses_ = &m->counter("stowage_cache_misses_total", "Cache lookups that had to fill.", l);
    evictions_ = &m->counter("stowage_cache_evictions_total",
                             "Entries dropped to stay within the size bound or expired.", l);
    hit_bytes_ = &m->counter("stowage_cache_hit_bytes_total", "Bytes of entries found.", l);
    fill_bytes_ = &m->counter("stowage_cache_fill_bytes_total", "Bytes written by fills.", l);
    size_bytes_ = &m->gauge("stowage_cache_size_bytes", "Bytes of published entries.", l);
  }
}

DiskCache::~DiskCache() = default;

Result<std::unique_ptr<DiskCache>> DiskCache::open(DiskCacheOptions options) {
  if (options.dir.empty()) return make_error(ErrorCode::InvalidArgument, "cache: no folder");
  std::unique_ptr<DiskCache> cache(new DiskCache(std::move(options)));
  STOWAGE_TRY(cache->load());
  return cache;
}

Status DiskCache::load() {
  const fs::path& dir = options_.dir;
  STOWAGE_TRY(io::create_directories_durable(dir / "tmp"));
  // Fills that a crash interrupted: never published, never indexed.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir / "tmp", ec)) fs::remove(e.path(), ec);

  index_ = std::make_unique<Index>();
  index_->where = (dir / "index.db").string();
  if (sqlite3_open_v2(index_->where.c_str(), &index_->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return index_->fail("open");
  }
  sqlite3_busy_timeout(index_->db, 5000);
  // WAL with synchronous=NORMAL survives a killed process; after a power loss the last rows may
  // be lost, which only leaves orphan files that the next open() deletes.
  STOWAGE_TRY(index_->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
  STOWAGE_TRY(
      index_->exec("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, file TEXT NOT NULL,"
                   " size INTEGER NOT NULL, meta TEXT NOT NULL, accessed INTEGER NOT NULL)"
                   " WITHOUT ROWID"));

  std::vector<Entry> rows;
  {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(index_->db,
                           "SELECT key, file, size, meta, accessed FROM entries "
                           "ORDER BY accessed DESC",
                           -1, &stmt, nullptr) != SQLITE_OK) {
      return index_->fail("prepare");
    }
    auto text = [stmt](int col) {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
      return std::string(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, col)));
    };
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      Entry e;
      e.key = text(0);
      e.file = text(1);
      e.size = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 2));
      e.meta = text(3);
      e.accessed = e.accessed_written = from_ms(sqlite3_column_int64(stmt, 4));
      rows.push_back(std::move(e));
    }
    sqlite3_finalize(stmt);
  }

  const auto now = options_.now();
  std::unordered_set<std::string> kept;
  for (auto& e : rows) {
    struct stat st {};
    const fs::path file = dir / e.file;
    const bool intact = ::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
                        static_cast<std::uint64_t>(st.st_size) == e.size;
    if (!intact || now - e.accessed > options_.expires) {
      STOWAGE_TRY(index_->run("DELETE FROM entries WHERE key = ?", e.key));
      fs::remove(file, ec);
      continue;
    }
    kept.insert(e.file);
    used_ += e.size;
    lru_.push_back(std::move(e));
    by_key_[lru_.back().key] = std::prev(lru_.end());
  }
  // Files published but never indexed (a crash between the rename and the insert).
  for (const auto& sub : fs::directory_iterator(dir, ec)) {
    if (!sub.is_directory() || sub.path().filename() == "tmp") continue;
    for (const auto& f : fs::directory_iterator(sub.path(), ec)) {
      const std::string rel = sub.path().filename().string() + "/" + f.path().filename().string();
      if (!kept.contains(rel)) fs::remove(f.path(), ec);
    }
  }
  std::lock_guard lock(mutex_);
  while (used_ > options_.max_bytes && !lru_.empty()) drop_locked(std::prev(lru_.end()), true);
  if (size_bytes_) size_bytes_->set(static_cast<std::int64_t>(used_));
  return {};
}

void DiskCache::drop_locked(Lru::iterator it, bool eviction) {
  if (auto ok = index_->run("DELETE FROM entries WHERE key = ?", it->key); !ok) {
    spdlog::warn("{}", ok.error().to_string());
  }
  std::error_code ec;
  fs::remove(options_.dir / it->file, ec);
  used_ -= it->size;
  by_key_.erase(it->key);
  lru_.erase(it);
  if (eviction && evictions_) evictions_->inc();
  if (size_bytes_) size_bytes_->set(static_cast<std::int64_t>(used_));
}

Status DiskCache::reserve_locked(std::uint64_t bytes) {
  // Expired entries go first: the tail is the least recently used, so stop at a fresh one.
  const auto now = options_.now();
  while (!lru_.empty() && now - lru_.back().accessed > options_.expires)
    drop_locked(std::prev(lru_.end()), true);
  while (used_ + reserved_ + bytes > options_.max_bytes && !lru_.empty())
    drop_locked(std::prev(lru_.end()), true);
  if (used_ + reserved_ + bytes > options_.max_bytes) {
    return make_error(ErrorCode::TooLarge, "cache " + options_.name + ": no room for " +
                                               std::to_string(bytes) +
                                               " more bytes while other fills are in progress");
  }
  reserved_ += bytes;
  return {};
}

void DiskCache::release(std::uint64_t bytes) {
  std::lock_guard lock(mutex_);
  reserved_ -= bytes;
}

std::optional<DiskCache::Lru::iterator> DiskCache::lookup_locked(std::string_view key) {
  const auto found = by_key_.find(std::string(key));
  if (found == by_key_.end()) return std::nullopt;
  auto it = found->second;
  const auto now = options_.now();
  if (now - it->accessed > options_.expires) {
    drop_locked(it, true);
    return std::nullopt;
  }
  it->accessed = now;
  lru_.splice(lru_.begin(), lru_, it);
  if (now - it->accessed_written >= kAccessWriteInterval) {
    if (index_->run("UPDATE entries SET accessed = ? WHERE key = ?", to_ms(now), it->key)) {
      it->accessed_written = now;
    }
  }
  return it;
}

Result<Hit> DiskCache::open_locked(Lru::iterator it) {
  STOWAGE_ASSIGN_OR_RETURN(auto file, io::File::open_read(options_.dir / it->file));
  return Hit{std::move(file), it->size, it->meta};
}

Result<std::optional<Hit>> DiskCache::find(std::string_view key) {
  std::lock_guard lock(mutex_);
  if (auto it = lookup_locked(key)) {
    auto hit = open_locked(*it);
    if (hit) {
      if (hits_) hits_->inc();
      if (hit_bytes_) hit_bytes_->inc(hit->size);
      return std::optional<Hit>(std::move(*hit));
    }
    drop_locked(*it, false);  // its file vanished under us: a miss
  }
  if (misses_) misses_->inc();
  return std::optional<Hit>();
}

Result<Hit> DiskCache::get_or_fill(std::string_view key_view, const Fill& fill) {
  const std::string key(key_view);
  std::shared_ptr<Flight> flight;
  {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (auto it = lookup_locked(key)) {
        auto hit = open_locked(*it);
        if (hit) {
          if (hits_) hits_->inc();
          if (hit_bytes_) hit_bytes_->inc(hit->size);
          return hit;
        }
        drop_locked(*it, false);
      }
      const auto other = flights_.find(key);
      if (other == flights_.end()) break;
      auto waiting = other->second;
      waiting->cv.wait(lock, [&] { return waiting->done; });
      if (waiting->error && !waiting->retry) return *waiting->error;
      // Published: the next turn finds it (or, if it was evicted at once or the fill was given
      // up, fills again).
    }
    if (misses_) misses_->inc();
    flight = std::make_shared<Flight>();
    flights_[key] = flight;
  }
  try {
    auto result = fill_and_publish(key, fill);
    land(key, *flight, result ? std::nullopt : std::optional<Error>(result.error()), false);
    return result;
  } catch (...) {
    // A fill that throws (a bug) must not leave its waiters waiting forever.
    land(key, *flight, make_error(ErrorCode::Internal, "cache " + options_.name + ": a fill failed"),
         false);
    throw;
  }
}

void DiskCache::land(const std::string& key, Flight& flight, std::optional<Error> error,
                     bool retry) {
  {
    std::lock_guard lock(mutex_);
    flight.done = true;
    flight.retry = retry;
    flight.error = std::move(error);
    if (auto it = flights_.find(key); it != flights_.end() && it->second.get() == &flight) {
      flights_.erase(it);
    }
  }
  flight.cv.notify_all();
}

Result<std::pair<fs::path, std::unique_ptr<EntryWriter>>> DiskCache::start_fill() {
  fs::path temp = io::unique_temp_path(options_.dir / "tmp", "fill");
  STOWAGE_ASSIGN_OR_RETURN(auto file, io::File::create_exclusive(temp, 0600));
  return std::pair{std::move(temp),
                   std::unique_ptr<EntryWriter>(new EntryWriter(*this, std::move(file)))};
}

Error DiskCache::abandon_fill(const fs::path& temp, EntryWriter& writer, Error error) {
  (void)writer.file_.close();
  release(writer.reserved_);
  writer.reserved_ = 0;
  std::error_code ec;
  fs::remove(temp, ec);
  return error;
}

Result<Hit> DiskCache::fill_and_publish(const std::string& key, const Fill& fill) {
  STOWAGE_ASSIGN_OR_RETURN(auto started, start_fill());
  auto& [temp, writer] = started;
  Result<std::string> meta = std::string();
  try {
    meta = fill(*writer);
  } catch (...) {
    (void)abandon_fill(temp, *writer, make_error(ErrorCode::Internal, "fill threw"));
    throw;
  }
  if (!meta) return abandon_fill(temp, *writer, meta.error());
  return publish_fill(key, temp, *writer, std::move(*meta));
}

Result<Hit> DiskCache::publish_fill(const std::string& key, const fs::path& temp,
                                    EntryWriter& writer, std::string meta) {
  if (meta.find('\0') != std::string::npos) {
    return abandon_fill(temp, writer, make_error(ErrorCode::Internal, "cache meta must be text"));
  }
  if (auto ok = writer.file_.sync(); !ok) return abandon_fill(temp, writer, ok.error());
  if (auto ok = writer.file_.close(); !ok) return abandon_fill(temp, writer, ok.error());
  const std::uint64_t size = writer.written_;
  release(writer.reserved_ - size);  // keep only what was written
  writer.reserved_ = size;

  const std::string name = fresh_file_name(key);
  if (auto ok = io::publish(temp, options_.dir / name); !ok) {
    return abandon_fill(temp, writer, ok.error());
  }
  if (fill_bytes_) fill_bytes_->inc(size);

  std::lock_guard lock(mutex_);
  reserved_ -= size;
  used_ += size;
  writer.reserved_ = 0;
  if (auto old = by_key_.find(key); old != by_key_.end()) drop_locked(old->second, false);
  const auto now = options_.now();
  auto inserted = index_->run(
      "INSERT OR REPLACE INTO entries (key, file, size, meta, accessed) VALUES (?, ?, ?, ?, ?)",
      key, name, static_cast<std::int64_t>(size), meta, to_ms(now));
  lru_.push_front(Entry{key, name, size, std::move(meta), now, now});
  by_key_[key] = lru_.begin();
  if (!inserted) {
    drop_locked(lru_.begin(), false);
    return inserted.error();
  }
  if (size_bytes_) size_bytes_->set(static_cast<std::int64_t>(used_));
  return open_locked(lru_.begin());
}

Result<std::optional<PendingEntry>> DiskCache::begin_fill(std::string_view key_view) {
  std::string key(key_view);
  auto flight = std::make_shared<Flight>();
  {
    std::lock_guard lock(mutex_);
    if (flights_.contains(key)) return std::optional<PendingEntry>();
    flights_[key] = flight;
    if (misses_) misses_->inc();
  }
  auto started = start_fill();
  if (!started) {
    land(key, *flight, started.error(), true);
    return started.error();
  }
  return std::optional<PendingEntry>(PendingEntry(*this, std::move(key),
                                                  std::move(started->first),
                                                  std::move(started->second), std::move(flight)));
}

Status DiskCache::set_meta(std::string_view key_view, std::string meta) {
  const std::string key(key_view);
  if (meta.find('\0') != std::string::npos) {
    return make_error(ErrorCode::Internal, "cache meta must be text");
  }
  std::lock_guard lock(mutex_);
  const auto found = by_key_.find(key);
  if (found == by_key_.end()) {
    return make_error(ErrorCode::NotFound, "cache " + options_.name + ": no entry to update");
  }
  STOWAGE_TRY(index_->run("UPDATE entries SET meta = ? WHERE key = ?", meta, key));
  found->second->meta = std::move(meta);
  return {};
}

// --- PendingEntry ----------------------------------------------------------------------------

PendingEntry::PendingEntry(PendingEntry&& other) noexcept
    : cache_(other.cache_),
      key_(std::move(other.key_)),
      temp_(std::move(other.temp_)),
      writer_(std::move(other.writer_)),
      flight_(std::move(other.flight_)) {}

PendingEntry::~PendingEntry() { abandon(); }

Result<io::File> PendingEntry::open_written() const {
  if (!writer_) return make_error(ErrorCode::Internal, "cache entry already finished");
  return io::File::open_read(temp_);
}

Result<Hit> PendingEntry::publish(std::string meta) {
  if (!writer_) return make_error(ErrorCode::Internal, "cache entry already finished");
  auto hit = cache_->publish_fill(key_, temp_, *writer_, std::move(meta));
  writer_.reset();
  cache_->land(key_, *flight_, hit ? std::nullopt : std::optional<Error>(hit.error()), !hit);
  return hit;
}

void PendingEntry::abandon() {
  if (!writer_) return;
  (void)cache_->abandon_fill(temp_, *writer_, make_error(ErrorCode::Cancelled, "abandoned"));
  writer_.reset();
  cache_->land(key_, *flight_, make_error(ErrorCode::Cancelled, "fill abandoned"), true);
}

std::optional<std::string> DiskCache::peek_meta(std::string_view key) {
  std::lock_guard lock(mutex_);
  const auto found = by_key_.find(std::string(key));
  if (found == by_key_.end() || options_.now() - found->second->accessed > options_.expires) {
    return std::nullopt;
  }
  return found->second->meta;
}

Status DiskCache::erase(std::string_view key) {
  std::lock_guard lock(mutex_);
  if (auto it = by_key_.find(std::string(key)); it != by_key_.end()) drop_locked(it->second, false);
  return {};
}

std::uint64_t DiskCache::used_bytes() const {
  std::lock_guard lock(mutex_);
  return used_;
}

std::uint64_t DiskCache::charged_bytes() const {
  std::lock_guard lock(mutex_);
  return used_ + reserved_;
}

std::size_t DiskCache::entry_count() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

}  // namespace stowage::cache
