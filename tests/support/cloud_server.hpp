// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "stowage/config/config.hpp"
#include "stowage/links/remote_links.hpp"
#include "stowage/store/object_store.hpp"

namespace stowage::testing {

/// A cloud test server (radosgw, Azurite, the GCS fake) as a test reaches it: the configuration
/// its script wrote, a store on its buckets, and a remote_links.yml connection that allows its
/// public bucket.
struct CloudServer {
  config::Config config;
  std::unique_ptr<store::ObjectStore> store;
  links::Connection connection;
};

/// The .env file of the test server that `env_var` (STOWAGE_TEST_<NAME>_ENV) names, or, for
/// tests that need several servers (gtest_discover_tests passes one variable only),
/// <STOWAGE_TEST_SERVERS_DIR>/<name>.env; empty when neither is set.
std::string test_server_env_file(const char* env_var);

/// The server whose .env file test_server_env_file() finds; nullopt when there is none.
/// `provider` is the connection's (minio, azure, google).
std::optional<CloudServer> cloud_server(const char* env_var, const std::string& provider);

/// Skips the test when `env_var` is unset, or fails it when CI=true (the fixture did not start).
#define STOWAGE_REQUIRE_CLOUD(var, env_var, provider)                                    \
  auto var##_opt = ::stowage::testing::cloud_server(env_var, provider);                  \
  if (!var##_opt) {                                                                      \
    if (const char* ci = std::getenv("CI"); ci && std::string(ci) == "true") {           \
      FAIL() << env_var << " is not set: the test server did not start";                \
    }                                                                                    \
    GTEST_SKIP() << env_var << " not set";                                               \
  }                                                                                      \
  ::stowage::testing::CloudServer& var = *var##_opt

}  // namespace stowage::testing
