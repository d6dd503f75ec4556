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

/// The server whose .env file the environment variable `env_var` names (set by its ctest
/// fixture); nullopt when unset. `provider` is the connection's (minio, azure, google).
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
