// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "stowage/config/config.hpp"

namespace stowage::server {

/// Runs `stowage serve`: opens the catalog and the configured store, bootstraps an empty catalog
/// (printing the admin token once on stdout and writing it to DATA_PATH/admin-token, mode 0600),
/// then serves HTTP on config.listen_host:listen_port until SIGINT or SIGTERM, letting requests in
/// flight finish. Returns the process exit code (0, 1 failed, 2 bad configuration).
int serve(const config::Config& config);

}  // namespace stowage::server
