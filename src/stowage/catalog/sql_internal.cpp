// SPDX-License-Identifier: Apache-2.0
#include "stowage/catalog/sql_internal.hpp"

namespace stowage::catalog::sql {

bool is_conflict(const Error& error) noexcept {
  return error.provider_code.find(kConflictCode) != std::string::npos;
}

Pool::Pool(Opener open, std::size_t max_size, std::unique_ptr<Connection> first,
           VersionReader version)
    : open_(std::move(open)), max_size_(max_size), version_(std::move(version)) {
  if (first) {
    idle_.push_back(std::move(first));
    open_count_ = 1;
  }
}

Result<Lease> Pool::acquire() {
  std::unique_lock lock(mutex_);
  freed_.wait(lock, [&] { return !idle_.empty() || open_count_ < max_size_; });
  if (!idle_.empty()) {
    std::unique_ptr<Connection> conn = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(conn));
  }
  ++open_count_;  // reserve the slot, then open without holding the lock
  lock.unlock();
  auto conn = open_();
  if (!conn) {
    lock.lock();
    --open_count_;
    freed_.notify_one();
    return std::move(conn).error();
  }
  return Lease(this, std::move(*conn));
}

void Pool::release(std::unique_ptr<Connection> conn) noexcept {
  {
    std::lock_guard lock(mutex_);
    if (conn->broken()) {
      --open_count_;
      conn.reset();
    } else {
      idle_.push_back(std::move(conn));
    }
  }
  freed_.notify_one();
}

}  // namespace stowage::catalog::sql
