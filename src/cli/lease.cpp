// SPDX-License-Identifier: Apache-2.0
#include "cli/lease.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <array>
#include <iostream>

namespace stowage::cli {

namespace {

std::string this_host() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host = {'?'};
  return std::string(host.data());
}


/// True when `holder` names a process of this machine ("HOST pid N") that no longer runs. A
/// reused pid reads as alive: the lease is then only taken over once it expired.
bool is_dead_local_process(const std::string& holder) {
  const std::string prefix = this_host() + " pid ";
  if (!holder.starts_with(prefix)) return false;
  const std::string digits = holder.substr(prefix.size());
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  const long pid = std::stol(digits);
  return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
}

}  // namespace

std::string this_process() { return this_host() + " pid " + std::to_string(::getpid()); }

Result<std::unique_ptr<HeldLease>> HeldLease::take(catalog::Catalog& catalog, std::string name,
                                                   std::chrono::milliseconds ttl) {
  std::string holder = this_process();
  Status taken = catalog.take_lease(name, holder, ttl);
  if (!taken && taken.error().code == ErrorCode::PreconditionFailed) {
    // Held by a run of this machine that was killed: no need to wait for its lease to expire.
    auto current = catalog.lease_holder(name);
    if (current && *current && is_dead_local_process(**current)) {
      if (catalog.take_over_lease(name, holder, ttl, **current)) {
        std::cerr << "stowage: took over the lease on " << name << " from " << **current
                  << ", which no longer runs\n";
        taken = Status();
      }
    }
  }
  STOWAGE_TRY(taken);
  return std::unique_ptr<HeldLease>(
      new HeldLease(catalog, std::move(name), std::move(holder), ttl));
}

HeldLease::HeldLease(catalog::Catalog& catalog, std::string name, std::string holder,
                     std::chrono::milliseconds ttl)
    : catalog_(catalog), name_(std::move(name)), holder_(std::move(holder)), ttl_(ttl) {
  renewer_ = std::thread([this] { renew_until_stopped(); });
}

HeldLease::~HeldLease() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  renewer_.join();
  (void)catalog_.release_lease(name_, holder_);
}

bool HeldLease::held() const {
  std::lock_guard lock(mutex_);
  return held_;
}

void HeldLease::renew_until_stopped() {
  std::unique_lock lock(mutex_);
  while (!stop_cv_.wait_for(lock, ttl_ / 3, [this] { return stop_; })) {
    lock.unlock();
    Status renewed = catalog_.take_lease(name_, holder_, ttl_);
    lock.lock();
    if (!renewed && held_) {
      held_ = false;
      std::cerr << "stowage: warning: could not renew the lease on " << name_ << ": "
                << renewed.error().message << '\n';
    } else if (renewed) {
      held_ = true;
    }
  }
}

}  // namespace stowage::cli
