// SPDX-License-Identifier: Apache-2.0
// The public-URL store's pure parts: the address policy and URL <-> path. No network.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "stowage/store/http/public_url_store.hpp"

namespace stowage::store::http_links {
namespace {

/// check_address() on a numeric address.
Status check(const std::string& text, bool allow_private) {
  sockaddr_storage s{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&s);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&s);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
  } else {
    ADD_FAILURE() << "not an address: " << text;
  }
  return check_address(reinterpret_cast<const sockaddr*>(&s), allow_private);
}

/// Refused whatever the operator allows: not a unicast destination at all.
const char* const kAlwaysRefused[] = {
    "0.0.0.0",
    "0.1.2.3",
    "0.255.255.255",
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "::",
    "ff02::1",
    "ff05::1:3",
    "ffff::1",
    "::ffff:0.0.0.0",
    "::ffff:224.0.0.251",
    "::0.1.2.3",
    "64:ff9b::e000:1",
    "64:ff9b::0.0.0.0",
    "2002:e000:0001::1",
    "2002:0000:0000::1",
};

/// Refused unless private networks are allowed.
const char* const kPrivate[] = {
    "127.0.0.1",
    "127.0.0.2",
    "127.255.255.254",
    "10.0.0.1",
    "10.255.255.255",
    "100.64.0.1",
    "100.127.255.255",
    "169.254.169.254",
    "169.254.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.2.1",
    "192.168.0.1",
    "192.168.255.255",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.7",
    "203.0.113.9",
    "240.0.0.1",
    "254.255.255.255",
    "::1",
    "fe80::1",
    "febf:ffff::1",
    "fec0::1",
    "feff::1",
    "fc00::1",
    "fd00:ec2::254",
    "fdff:ffff::1",
    "2001:db8::1",
    "2001:db8:ffff::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:2",
    "::ffff:10.1.2.3",
    "::ffff:169.254.169.254",
    "::ffff:192.168.1.1",
    "::127.0.0.1",
    "::10.0.0.1",
    "::169.254.169.254",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::192.168.0.1",
    "2002:7f00:1::1",
    "2002:a9fe:a9fe::",
    "2002:c0a8:0101::",
};

/// Public: allowed in both policies.
const char* const kPublic[] = {
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "1.0.0.0",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.1",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.1",
    "192.0.3.1",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "198.51.101.1",
    "203.0.114.1",
    "223.255.255.255",
    "2606:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450::1",
    "::ffff:8.8.8.8",
    "::8.8.8.8",
    "64:ff9b::808:808",
    "2002:0808:0808::1",
    "fe7f::1",
    "fbff::1",
    "2001:db9::1",
    "::2:0:0",
};

TEST(CheckAddress, AlwaysRefusedInBothPolicies) {
  for (const char* a : kAlwaysRefused) {
    for (const bool allow : {false, true}) {
      const auto r = check(a, allow);
      ASSERT_FALSE(r) << a << " allow=" << allow;
      EXPECT_EQ(r.error().code, ErrorCode::PermissionDenied) << a;
    }
  }
}

TEST(CheckAddress, PrivateRefusedByDefaultAllowedWhenTheOperatorSays) {
  for (const char* a : kPrivate) {
    const auto refused = check(a, false);
    ASSERT_FALSE(refused) << a;
    EXPECT_EQ(refused.error().code, ErrorCode::PermissionDenied) << a;
    EXPECT_TRUE(check(a, true)) << a;
  }
}

TEST(CheckAddress, PublicAllowedInBothPolicies) {
  for (const char* a : kPublic) {
    EXPECT_TRUE(check(a, false)) << a << ": " << check(a, false).error().message;
    EXPECT_TRUE(check(a, true)) << a;
  }
}

TEST(CheckAddress, MessageNamesTheAddressAndTheRange) {
  const auto r = check("::ffff:169.254.169.254", false);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("::ffff:169.254.169.254"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("169.254.0.0/16"), std::string::npos) << r.error().message;
  EXPECT_NE(check("10.1.2.3", false).error().message.find("10.0.0.0/8"), std::string::npos);
}

TEST(CheckAddress, NonIpAddressesAreRefused) {
  EXPECT_FALSE(check_address(nullptr, true));
  sockaddr_un unix_address{};
  unix_address.sun_family = AF_UNIX;
  std::strcpy(unix_address.sun_path, "/run/docker.sock");
  EXPECT_FALSE(check_address(reinterpret_cast<const sockaddr*>(&unix_address), true));
}

TEST(PublicUrlPath, RoundTripsVerbatim) {
  const char* const urls[] = {
      "https://example.com/a/b.jpg",
      "http://example.com",
      "http://example.com/",
      "https://cdn.example.com/x/y.png?X-Amz-Signature=abc&t=1#frag",
      "http://example.com:8080//double//slash/",
      "https://example.com/%2e%2e/a%20b/%25",
      "https://[2606:4700::1111]:8443/dir/",
      "https://example.com/?",
  };
  for (const char* url : urls) {
    const ObjectPath path = path_of_url(url);
    EXPECT_EQ(url_of_path(path), url);
  }
  EXPECT_EQ(path_of_url("https://example.com/a?b"), (ObjectPath{"https", "example.com/a?b"}));
  EXPECT_EQ(path_of_url("http://h:1/k"), (ObjectPath{"http", "h:1/k"}));
}

TEST(PublicUrlPath, SchemeIsLowerCased) {
  EXPECT_EQ(path_of_url("HTTPS://Example.com/A"), (ObjectPath{"https", "Example.com/A"}));
  EXPECT_EQ(url_of_path(path_of_url("HtTp://h/x")), "http://h/x");
}

TEST(PublicUrlPath, OtherSchemesKeepTheirNameForTheStoreToRefuse) {
  EXPECT_EQ(path_of_url("file:///etc/passwd").bucket, "file");
  EXPECT_EQ(path_of_url("no-scheme").bucket, "");
}

}  // namespace
}  // namespace stowage::store::http_links
