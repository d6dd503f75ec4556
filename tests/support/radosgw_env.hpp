// SPDX-License-Identifier: Apache-2.0
// The radosgw that scripts/test-servers/radosgw.sh started, as the S3 tests see it.
#pragma once

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "stowage/config/config.hpp"
#include "stowage/http/transport.hpp"
#include "stowage/store/s3/s3_store.hpp"

namespace stowage::testing {

/// What STOWAGE_TEST_RADOSGW_ENV describes: the Stowage config, the raw variables and options
/// for an S3Store. Unavailable when the variable is unset or the server does not answer.
struct Radosgw {
  config::Config config;
  std::map<std::string, std::string> vars;
  store::s3::S3Options options;
  std::shared_ptr<http::Transport> transport;

  std::string public_bucket() const { return config.public_bucket(); }
  std::string private_bucket() const { return config.private_bucket(); }
};

inline Result<Radosgw> radosgw() {
  const char* env = std::getenv("STOWAGE_TEST_RADOSGW_ENV");
  if (env == nullptr || *env == '\0') {
    return make_error(ErrorCode::Unavailable,
                      "STOWAGE_TEST_RADOSGW_ENV is unset (ctest starts radosgw through "
                      "scripts/test-servers/radosgw.sh)");
  }
  Radosgw r;
  config::LoadOptions load;
  load.env_file = env;
  auto config = config::load(load);
  if (!config) {
    Error e = config.error();
    e.code = ErrorCode::Unavailable;
    return e;
  }
  r.config = *config;
  std::ifstream in(env);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (auto vars = config::parse_env_text(text)) r.vars = *vars;
  r.transport = http::make_curl_transport();
  STOWAGE_ASSIGN_OR_RETURN(r.options, store::s3::S3Options::from_config(r.config, r.transport, {}));
  r.options.retry.base_delay = std::chrono::milliseconds(20);
  r.options.housekeeping_buckets.clear();  // tests sweep explicitly, under their own keys
  auto probe = store::s3::S3Store::open(r.options, r.transport);
  if (!probe) return probe.error();
  if (auto ok = (*probe)->probe_bucket(r.public_bucket()); !ok) {
    Error e = ok.error();
    if (e.http_status == 0) e.code = ErrorCode::Unavailable;
    return e;
  }
  return r;
}

/// Skips the test (or fails it when CI=true) when radosgw is not there.
#define STOWAGE_REQUIRE_RADOSGW(var)                                             \
  auto var##_made = ::stowage::testing::radosgw();                               \
  if (!var##_made) {                                                             \
    const char* ci = std::getenv("CI");                                          \
    if (var##_made.error().code == ErrorCode::Unavailable &&                     \
        !(ci != nullptr && std::string_view(ci) == "true")) {                    \
      GTEST_SKIP() << "radosgw unavailable: " << var##_made.error().to_string(); \
    }                                                                            \
    FAIL() << "radosgw: " << var##_made.error().to_string();                     \
  }                                                                              \
  auto& var = *var##_made

}  // namespace stowage::testing
