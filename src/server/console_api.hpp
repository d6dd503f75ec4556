// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "server/api.hpp"
#include "stowage/config/config.hpp"
#include "stowage/service/service.hpp"

namespace stowage::server {

class Caches;

/// The API methods the web console needs beyond the SDK's, each what a CLI command does, called
/// with the same `x-api-key` as every method (the server authenticates first):
/// - `console.session`: who the token belongs to.
/// - `console.storage` (admins only): the provider and its buckets, checked live, and every
///   connection of remote_links.yml with a live check of each bucket (`stowage config check`'s
///   checks, service/instance_check.hpp); endpoints and bucket names, never a key.
/// - `console.caches`: both disk caches' use against their bounds.
/// - `console.tokens.list|create|revoke`: an admin sees and revokes every token, anyone else
///   their own; a new token's secret is in the create answer only.
/// - `console.migrations.start|status|list` (admins only): `stowage migrate project`, through
///   service::migrate_project, on a background thread; start answers a job id at once, status
///   the progress (items, bytes, rate, ETA) and, once done, the report of `--json`.
/// Thread-safe; handle() blocks (catalog, probes) and runs on the server's worker pool.
class ConsoleApi {
 public:
  /// `caches` may be null (no cache figures). All must outlive this object.
  ConsoleApi(const config::Config& config, service::Service& service, Caches* caches);
  /// Waits for the migrations still running, saying so in the log: a migration has no cancel
  /// point (it is safe to kill, and a rerun continues it).
  ~ConsoleApi();
  ConsoleApi(const ConsoleApi&) = delete;
  ConsoleApi& operator=(const ConsoleApi&) = delete;

  /// The methods above (console.*), in the order listed.
  static std::span<const std::string_view> methods();
  /// True for the methods above.
  static bool handles(std::string_view method);
  /// Answers an authenticated request (request.principal is set). Never throws.
  ApiResponse handle(const ApiRequest& request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stowage::server
