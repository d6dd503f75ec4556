// SPDX-License-Identifier: Apache-2.0
#include "stowage/migration/runner.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace stowage::migration {
namespace {

using Clock = std::chrono::steady_clock;

/// The tasks between the pager and the workers: push() blocks while `capacity` tasks wait, so
/// the pager never runs ahead of the copying by more than that.
class TaskQueue {
 public:
  explicit TaskQueue(std::size_t capacity) : capacity_(capacity) {}

  void push(CopyTask task) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return tasks_.size() < capacity_; });
    tasks_.push_back(std::move(task));
    not_empty_.notify_one();
  }
  /// The next task, or std::nullopt once close() was called and the queue drained.
  std::optional<CopyTask> pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return !tasks_.empty() || closed_; });
    if (tasks_.empty()) return std::nullopt;
    CopyTask task = std::move(tasks_.front());
    tasks_.pop_front();
    not_full_.notify_one();
    return task;
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<CopyTask> tasks_;
  std::size_t capacity_;
  bool closed_ = false;
};

/// Counters shared by the workers, the counting thread and the progress thread.
struct Shared {
  std::mutex mutex;  // guards summary, totals
  Summary summary;
  std::optional<Totals> totals;
  std::atomic<std::uint64_t> bytes_finished{0};  // sizes of finished objects
  std::atomic<std::uint64_t> bytes_streaming{0};  // bytes streamed of objects in flight
  Clock::time_point start = Clock::now();

  Progress snapshot() {
    Progress p;
    std::lock_guard lock(mutex);
    p.copied = summary.copied;
    p.skipped = summary.skipped;
    p.failed = summary.failed;
    p.objects_done = summary.copied + summary.skipped + summary.would_copy + summary.failed;
    p.bytes_done = bytes_finished.load() + bytes_streaming.load();
    p.totals = totals;
    p.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    if (p.elapsed.count() > 0) {
      p.bytes_per_second = p.bytes_done * 1000 / static_cast<std::uint64_t>(p.elapsed.count());
    }
    if (p.totals && p.bytes_per_second > 0) {
      const std::uint64_t left = p.totals->bytes > p.bytes_done ? p.totals->bytes - p.bytes_done : 0;
      p.eta = std::chrono::seconds(left / p.bytes_per_second);
    }
    return p;
  }
};

void work(TaskQueue& queue, Shared& shared, const RunOptions& options) {
  while (auto task = queue.pop()) {
    std::uint64_t streamed = 0;
    CopyOptions copy = options.copy;
    copy.on_bytes = [&](std::uint64_t n) {
      streamed += n;
      shared.bytes_streaming += n;
      if (options.copy.on_bytes) options.copy.on_bytes(n);
    };
    Result<CopyResult> done = make_error(ErrorCode::Internal, "not copied");
    if (auto prepared = task->prepare ? task->prepare(*task) : Status{}; !prepared) {
      done = prepared.error();
    } else {
      copy.expected_sha256_hex = task->expected_sha256_hex;
      done = copy_object(*task->source, task->source_info, *task->target, task->target_path, copy);
    }
    if (task->on_done) task->on_done(done);
    shared.bytes_streaming -= streamed;
    shared.bytes_finished += task->source_info.size;
    std::lock_guard lock(shared.mutex);
    Summary& s = shared.summary;
    if (!done) {
      ++s.failed;
      s.failures.push_back(Failure{task->source_info.path, task->target_path, done.error()});
      continue;
    }
    s.bytes_written += done->bytes_written;
    switch (done->outcome) {
      case CopyOutcome::Copied:
        ++s.copied;
        s.bytes_copied += done->size_bytes;
        break;
      case CopyOutcome::Skipped:
        ++s.skipped;
        s.bytes_skipped += done->size_bytes;
        break;
      case CopyOutcome::WouldCopy:
        ++s.would_copy;
        s.bytes_would_copy += done->size_bytes;
        break;
    }
  }
}

}  // namespace

Summary run_copies(const TaskPager& pager, const RunOptions& options) {
  Shared shared;
  const std::size_t workers = std::max<std::size_t>(1, options.concurrency);
  TaskQueue queue(2 * workers);

  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stopping = false;

  std::thread counter;
  if (options.count) {
    counter = std::thread([&] {
      auto totals = options.count();
      if (!totals) return;  // the copying reports listing errors itself; totals stay unknown
      std::lock_guard lock(shared.mutex);
      shared.totals = *totals;
    });
  }
  std::thread reporter;
  if (options.on_progress) {
    reporter = std::thread([&] {
      std::unique_lock lock(stop_mutex);
      while (!stop_cv.wait_for(lock, options.progress_interval, [&] { return stopping; })) {
        lock.unlock();
        options.on_progress(shared.snapshot());
        lock.lock();
      }
    });
  }
  std::vector<std::thread> pool;
  pool.reserve(workers);
  for (std::size_t i = 0; i < workers; ++i) {
    pool.emplace_back([&] { work(queue, shared, options); });
  }

  std::optional<Error> aborted;
  for (;;) {
    auto page = pager();
    if (!page) {
      aborted = page.error();
      break;
    }
    if (page->empty()) break;
    for (auto& task : *page) queue.push(std::move(task));
  }
  queue.close();
  for (auto& t : pool) t.join();
  if (counter.joinable()) counter.join();
  {
    std::lock_guard lock(stop_mutex);
    stopping = true;
  }
  stop_cv.notify_all();
  if (reporter.joinable()) reporter.join();

  shared.summary.aborted = std::move(aborted);
  shared.summary.elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - shared.start);
  if (options.on_progress) options.on_progress(shared.snapshot());
  return std::move(shared.summary);
}

TaskPager bucket_pager(store::ObjectStore& source, store::ObjectStore& target,
                       std::vector<std::string> buckets, const http::RetryPolicy& retry,
                       std::size_t page_size) {
  struct State {
    std::vector<std::string> buckets;
    std::size_t index = 0;
    std::string page_token;
  };
  auto state = std::make_shared<State>();
  state->buckets = std::move(buckets);
  return [&source, &target, retry, page_size, state]() -> Result<std::vector<CopyTask>> {
    std::vector<CopyTask> tasks;
    while (tasks.empty() && state->index < state->buckets.size()) {
      store::ListOptions list;
      list.max_keys = page_size;
      list.page_token = state->page_token;
      const store::ObjectPath prefix{state->buckets[state->index], ""};
      auto page = http::with_retries(retry, [&] { return source.list(prefix, list); });
      if (!page) {
        Error e = page.error();
        e.message = "list " + std::string(source.name()) + "://" + prefix.bucket + ": " + e.message;
        return e;
      }
      for (auto& info : page->objects) {
        CopyTask task;
        task.source = &source;
        task.target = &target;
        task.target_path = info.path;
        task.source_info = std::move(info);
        tasks.push_back(std::move(task));
      }
      state->page_token = page->next_page_token;
      if (state->page_token.empty()) ++state->index;
    }
    return tasks;
  };
}

Result<Totals> count_objects(store::ObjectStore& store, const std::vector<std::string>& buckets,
                             const http::RetryPolicy& retry) {
  Totals totals;
  for (const auto& bucket : buckets) {
    store::ListOptions list;
    const store::ObjectPath prefix{bucket, ""};
    for (;;) {
      auto page = http::with_retries(retry, [&] { return store.list(prefix, list); });
      if (!page) return page.error();
      for (const auto& info : page->objects) {
        ++totals.objects;
        totals.bytes += info.size;
      }
      if (page->next_page_token.empty()) break;
      list.page_token = page->next_page_token;
    }
  }
  return totals;
}

}  // namespace stowage::migration
