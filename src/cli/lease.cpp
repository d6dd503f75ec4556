// SPDX-License-Identifier: Apache-2.0
#include "cli/lease.hpp"

#include <unistd.h>

#include <array>
#include <iostream>

namespace stowage::cli {

namespace {

std::string this_process() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host = {'?'};
  return std::string(host.data()) + " pid " + std::to_string(::getpid());
}

}  // namespace

Result<std::unique_ptr<HeldLease>> HeldLease::take(catalog::Catalog& catalog, std::string name,
                                                   std::chrono::milliseconds ttl) {
  std::string holder = this_process();
  STOWAGE_TRY(catalog.take_lease(name, holder, ttl));
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
