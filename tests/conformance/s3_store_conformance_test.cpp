// SPDX-License-Identifier: Apache-2.0
// The conformance suite over S3Store against Ceph's radosgw (scripts/test-servers/radosgw.sh),
// in path style (how a custom endpoint is addressed) and in virtual-hosted style (how AWS is).
#include "conformance/store_conformance.hpp"
#include "support/radosgw_env.hpp"

namespace stowage::testing {
namespace {

Result<StoreUnderTest> make_s3_store(bool virtual_hosted) {
  STOWAGE_ASSIGN_OR_RETURN(auto gw, radosgw());
  auto options = gw.options;
  if (virtual_hosted) {
    // radosgw answers <bucket>.s3.localhost (rgw dns name); glibc does not resolve it, so every
    // request is sent to 127.0.0.1 with the virtual host in the Host header.
    options.endpoint.host = gw.vars["RADOSGW_DNS_NAME"];
    options.virtual_hosted_style = true;
    options.connect_address = "127.0.0.1";
  }
  STOWAGE_ASSIGN_OR_RETURN(auto s3, store::s3::S3Store::open(options, gw.transport));
  StoreUnderTest out;
  out.store = std::move(s3);
  out.bucket = gw.public_bucket();
  out.other_bucket = gw.private_bucket();
  return out;
}

// 2,100 keys: more than two pages of 1,000, at a pace radosgw keeps.
INSTANTIATE_TEST_SUITE_P(S3, StoreConformance,
                         ::testing::Values(StoreFactory{"radosgw_path_style",
                                                        [] { return make_s3_store(false); }, 2100},
                                           StoreFactory{"radosgw_virtual_hosted",
                                                        [] { return make_s3_store(true); }, 2100}),
                         store_factory_name);

}  // namespace
}  // namespace stowage::testing
