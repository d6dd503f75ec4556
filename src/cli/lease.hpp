// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "stowage/base/error.hpp"
#include "stowage/catalog/catalog.hpp"

namespace stowage::cli {

/// How long a migration's lease lasts unless renewed (`--lease`); it is renewed every third of
/// that, so a run that dies is taken over by the next one at most this long after.
inline constexpr std::chrono::seconds kDefaultLeaseTtl{60};

/// This process as a lease holder or a worker of shared work: "host pid 123".
std::string this_process();

/// A catalog lease held for the life of a command: taken at creation, renewed in the background
/// and released on destruction, so that a second run of the same migration (on this machine or
/// another server of a shared catalog) is refused while this one lives.
class HeldLease {
 public:
  /// Takes `name` for this process. PreconditionFailed (naming the holder) while another run
  /// holds it; a holder of this machine whose process is gone (killed) is taken over at once.
  static Result<std::unique_ptr<HeldLease>> take(catalog::Catalog& catalog, std::string name,
                                                 std::chrono::milliseconds ttl);
  ~HeldLease();
  HeldLease(const HeldLease&) = delete;
  HeldLease& operator=(const HeldLease&) = delete;

  /// "host pid 123", as other runs see it.
  const std::string& holder() const noexcept { return holder_; }
  /// False once a renewal failed: another run may have taken the lease over.
  bool held() const;

 private:
  HeldLease(catalog::Catalog& catalog, std::string name, std::string holder,
            std::chrono::milliseconds ttl);
  void renew_until_stopped();

  catalog::Catalog& catalog_;
  const std::string name_;
  const std::string holder_;
  const std::chrono::milliseconds ttl_;
  mutable std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  bool held_ = true;
  std::thread renewer_;
};

}  // namespace stowage::cli
