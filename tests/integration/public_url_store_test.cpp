// SPDX-License-Identifier: Apache-2.0
// The public-URL store against a counting HTTP server on loopback: bytes, ranges, redirects and
// limits with private networks allowed; and a corpus of hostile links refused, with the server's
// counters proving that nothing was fetched from the forbidden place.
//
// Every test server is on loopback, so "a public host that redirects to loopback" is staged with
// PublicUrlOptions::allowed_addresses: the first hop is a server on 127.0.0.2, which the store is
// told to trust as if it were public; the redirect goes to the real 127.0.0.1 server, which stays
// forbidden. Redirects to addresses refused in every policy (0.0.0.0, [::], multicast) are also
// tested with allow_private_networks = true. DNS pinning uses the resolver seam: a name that only
// the seam knows can only be fetched if curl connects to the address we checked.
#include "stowage/store/http/public_url_store.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>

#include "support/link_http_server.hpp"

namespace stowage::store::http_links {
namespace {

using stowage::testing::BytesRoute;
using stowage::testing::LinkHttpServer;
using stowage::testing::RawRequest;
using stowage::testing::RawResponse;
using stowage::testing::test_bytes;

std::shared_ptr<http::Transport> transport() { return http::make_curl_transport(); }

std::unique_ptr<PublicUrlStore> make_store(PublicUrlOptions options = {}) {
  return PublicUrlStore::make(std::move(options), transport());
}

PublicUrlOptions private_allowed() {
  PublicUrlOptions o;
  o.allow_private_networks = true;
  return o;
}

Result<std::string> read_all(io::Reader& reader) {
  std::string out;
  std::vector<std::byte> buffer(7000);  // not a divisor of anything, to cross chunk edges
  for (;;) {
    STOWAGE_ASSIGN_OR_RETURN(std::size_t n, reader.read(buffer));
    if (n == 0) return out;
    out.append(reinterpret_cast<const char*>(buffer.data()), n);
  }
}

Result<std::string> get(PublicUrlStore& store, const std::string& url, ReadOptions options = {}) {
  STOWAGE_ASSIGN_OR_RETURN(auto reader, store.open_read(path_of_url(url), options));
  return read_all(*reader);
}

bool is_4xx(ErrorCode code) {
  return code == ErrorCode::PermissionDenied || code == ErrorCode::InvalidArgument;
}

class PublicUrlStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.serve_bytes("/bytes", data_);
    server_.serve_bytes("/nohead", data_, BytesRoute{.head = false});
    server_.serve_bytes("/norange", data_, BytesRoute{.ranges = false});
    server_.serve_bytes("/empty", "");
  }
  std::string url(const std::string& path) const { return server_.base_url() + path; }

  LinkHttpServer server_;
  const std::string data_ = test_bytes(100'000);
};

// ---- positive: private networks allowed ------------------------------------------------------

TEST_F(PublicUrlStoreTest, StatAndReadWholeObject) {
  auto store = make_store(private_allowed());
  const auto info = store->stat(path_of_url(url("/bytes"))).value();
  EXPECT_EQ(info.size, data_.size());
  EXPECT_EQ(info.etag, "\"v1\"");
  EXPECT_NE(info.last_modified, std::chrono::system_clock::time_point{});
  EXPECT_EQ(get(*store, url("/bytes")).value(), data_);
  EXPECT_EQ(server_.requests().front().method, "HEAD");
}

TEST_F(PublicUrlStoreTest, Ranges) {
  auto store = make_store(private_allowed());
  EXPECT_EQ(get(*store, url("/bytes"), {.range = ByteRange{10, 100}}).value(),
            data_.substr(10, 100));
  EXPECT_EQ(get(*store, url("/bytes"), {.range = ByteRange{99'995, std::nullopt}}).value(),
            data_.substr(99'995));
  EXPECT_EQ(get(*store, url("/bytes"), {.range = ByteRange{99'990, 1000}}).value(),
            data_.substr(99'990));
  auto past = store->open_read(path_of_url(url("/bytes")), {.range = ByteRange{100'000, 5}});
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().code, ErrorCode::RangeNotSatisfiable);
  EXPECT_EQ(get(*store, url("/bytes"), {.range = ByteRange{5, 0}}).value(), "");
  EXPECT_EQ(get(*store, url("/empty"), {.range = ByteRange{0, std::nullopt}}).value(), "");
  EXPECT_EQ(get(*store, url("/empty")).value(), "");
  const auto requests = server_.requests();
  EXPECT_EQ(requests.front().header("Range"), "bytes=10-109");
}

TEST_F(PublicUrlStoreTest, StatFallsBackToARangedGetWhenHeadIsRefused) {
  auto store = make_store(private_allowed());
  const auto info = store->stat(path_of_url(url("/nohead"))).value();
  EXPECT_EQ(info.size, data_.size());
  EXPECT_EQ(info.etag, "\"v1\"");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[1].method, "GET");
  EXPECT_EQ(requests[1].header("Range"), "bytes=0-0");
}

TEST_F(PublicUrlStoreTest, ServerThatIgnoresRangeHasItsPrefixSkipped) {
  auto store = make_store(private_allowed());
  EXPECT_EQ(get(*store, url("/norange"), {.range = ByteRange{1000, 50}}).value(),
            data_.substr(1000, 50));
  // Far offsets are refused instead of downloading everything before them.
  const std::string big = test_bytes(17u << 20);
  server_.serve_bytes("/big-norange", big, BytesRoute{.ranges = false});
  auto far = store->open_read(path_of_url(url("/big-norange")), {.range = ByteRange{17u << 20}});
  ASSERT_FALSE(far);
  EXPECT_EQ(far.error().code, ErrorCode::Unsupported);
}

TEST_F(PublicUrlStoreTest, RandomReadsArePinnedOnTheEtag) {
  auto store = make_store(private_allowed());
  const auto info = store->stat(path_of_url(url("/bytes"))).value();
  auto reader = store->open_random(info).value();
  std::vector<std::byte> out(300);
  ASSERT_EQ(reader->read_at(500, out).value(), 300u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(out.data()), 300), data_.substr(500, 300));
  ASSERT_EQ(reader->read_at(99'900, out).value(), 100u);
  EXPECT_EQ(reader->read_at(100'000, out).value(), 0u);
  EXPECT_EQ(server_.requests().back().header("If-Match"), "\"v1\"");

  // The object changes behind our back: the next read fails instead of mixing versions.
  server_.serve_bytes("/bytes", test_bytes(100'000), BytesRoute{.etag = "\"v2\""});
  auto changed = reader->read_at(0, out);
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().code, ErrorCode::PreconditionFailed);
  auto stale = store->open_read(info.path, {.if_match = "\"v1\""});
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, ErrorCode::PreconditionFailed);
}

TEST_F(PublicUrlStoreTest, PinsAServerThatIgnoresIfMatchOnItsEtag) {
  // A server that never checks If-Match but says its ETag: the store compares it itself.
  std::string etag = "\"a\"";
  server_.route("/careless", [&](const RawRequest&) {
    return RawResponse{.headers = {{"ETag", etag}}, .body = "hello"};
  });
  auto store = make_store(private_allowed());
  const auto info = store->stat(path_of_url(url("/careless"))).value();
  etag = "\"b\"";
  auto reader = store->open_random(info).value();
  std::vector<std::byte> out(5);
  auto r = reader->read_at(0, out);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::PreconditionFailed);
}

TEST_F(PublicUrlStoreTest, RedirectsAreFollowed) {
  server_.redirect("/relative", "/bytes");
  server_.redirect("/dot-relative", "sub/../bytes", 301);
  server_.redirect("/absolute", url("/bytes"), 307);
  server_.redirect("/chain1", "/chain2", 308);
  server_.redirect("/chain2", "/chain3", 303);
  server_.redirect("/chain3", url("/bytes?x=1"));
  auto store = make_store(private_allowed());
  for (const char* start : {"/relative", "/dot-relative", "/absolute", "/chain1"}) {
    EXPECT_EQ(get(*store, url(start)).value(), data_) << start;
    EXPECT_EQ(store->stat(path_of_url(url(start))).value().size, data_.size()) << start;
  }
  // The etag and ranges work through redirects too.
  const auto info = store->stat(path_of_url(url("/chain1"))).value();
  std::vector<std::byte> out(10);
  EXPECT_EQ(store->open_random(info).value()->read_at(20, out).value(), 10u);
}

TEST_F(PublicUrlStoreTest, RedirectLoopsAndLongChainsStopAtTheLimit) {
  server_.redirect("/loop", "/loop");
  PublicUrlOptions options = private_allowed();
  options.max_redirects = 3;
  auto store = make_store(options);
  auto r = store->stat(path_of_url(url("/loop")));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(r.error().message.find("redirects"), std::string::npos) << r.error().message;
  EXPECT_EQ(server_.hits("/loop"), 4u);  // the first request and three redirects
}

TEST_F(PublicUrlStoreTest, SizeLimit) {
  PublicUrlOptions options = private_allowed();
  options.max_object_bytes = 1000;
  auto store = make_store(options);
  auto s = store->stat(path_of_url(url("/bytes")));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::TooLarge);
  auto r = store->open_read(path_of_url(url("/bytes")), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::TooLarge);

  // A lying Content-Length is refused before any byte is read.
  server_.route("/huge", [](const RawRequest&) {
    // Keeps the connection open, as a real huge download would.
    return RawResponse{.body = "x",
                       .content_length = 1ull << 50,
                       .stall = std::chrono::milliseconds(3000),
                       .stall_after = 1};
  });
  auto huge = make_store(private_allowed())->open_read(path_of_url(url("/huge")), {});
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, ErrorCode::TooLarge);

  // No length at all: the limit is enforced while streaming.
  server_.route("/unsized", [&](const RawRequest&) {
    return RawResponse{.body = test_bytes(5000), .until_close = true};
  });
  auto unsized = store->open_read(path_of_url(url("/unsized")), {}).value();
  auto all = read_all(*unsized);
  ASSERT_FALSE(all);
  EXPECT_EQ(all.error().code, ErrorCode::TooLarge);
}

TEST_F(PublicUrlStoreTest, StallTimeout) {
  server_.route("/slow", [](const RawRequest&) {
    return RawResponse{.body = std::string(1000, 's'),
                       .stall = std::chrono::milliseconds(10'000),
                       .stall_after = 0};
  });
  PublicUrlOptions options = private_allowed();
  options.stall_timeout = std::chrono::milliseconds(1000);
  auto store = make_store(options);
  const auto start = std::chrono::steady_clock::now();
  auto reader = store->open_read(path_of_url(url("/slow")), {});
  Status result = reader ? Status(read_all(**reader).error()) : Status(reader.error());
  // read_all can only end in an error here: the body is never complete.
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, ErrorCode::Timeout) << result.error().message;
  // libcurl averages the speed over a few seconds; well before the server would resume.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
}

TEST_F(PublicUrlStoreTest, StatusesMapToErrorCodesWithoutTheQuery) {
  const std::pair<int, ErrorCode> cases[] = {
      {404, ErrorCode::NotFound},         {410, ErrorCode::NotFound},
      {401, ErrorCode::PermissionDenied}, {403, ErrorCode::PermissionDenied},
      {400, ErrorCode::InvalidArgument},  {418, ErrorCode::InvalidArgument},
      {429, ErrorCode::Unavailable},      {500, ErrorCode::Unavailable},
      {503, ErrorCode::Unavailable},
  };
  auto store = make_store(private_allowed());
  for (const auto& [status, code] : cases) {
    const std::string path = "/status" + std::to_string(status);
    server_.route(path, [status](const RawRequest&) { return RawResponse{.status = status}; });
    for (int op = 0; op < 2; ++op) {
      const std::string link = url(path + "?X-Amz-Signature=SECRET&token=SECRET");
      Status r = op == 0 ? Status(store->stat(path_of_url(link)).error())
                         : Status(store->open_read(path_of_url(link), {}).error());
      EXPECT_EQ(r.error().code, code) << status;
      EXPECT_EQ(r.error().retryable, status >= 429) << status;
      EXPECT_EQ(r.error().message.find("SECRET"), std::string::npos) << r.error().message;
      EXPECT_NE(r.error().message.find(server_.base_url() + path), std::string::npos)
          << r.error().message;
    }
  }
}

TEST_F(PublicUrlStoreTest, ReadOnly) {
  auto store = make_store(private_allowed());
  const ObjectPath p = path_of_url(url("/bytes"));
  EXPECT_EQ(store->open_write(p, {}).error().code, ErrorCode::Unsupported);
  EXPECT_EQ(store->list(p, {}).error().code, ErrorCode::Unsupported);
  EXPECT_EQ(store->remove(p).error().code, ErrorCode::Unsupported);
  EXPECT_EQ(server_.total_hits(), 0u);
}

// ---- hostile links: refused with a 4xx, nothing fetched ------------------------------------

/// Links that must never be fetched with the default policy. `P` is replaced by the loopback
/// server's port, so that a mistake would show in its request counter.
const char* const kHostileLinks[] = {
    // loopback, every spelling glibc accepts
    "http://127.0.0.1:P/bytes",
    "http://127.0.0.2:P/bytes",
    "http://127.1:P/bytes",
    "http://127.0.1:P/bytes",
    "http://2130706433:P/bytes",
    "http://0x7f000001:P/bytes",
    "http://0x7f.0.0.1:P/bytes",
    "http://0x7f.1:P/bytes",
    "http://017700000001:P/bytes",
    "http://0177.0.0.1:P/bytes",
    "http://0177.1:P/bytes",
    "http://127.000.000.001:P/bytes",
    "http://localhost:P/bytes",
    "http://LOCALHOST:P/bytes",
    "http://localhost.:P/bytes",
    "https://127.0.0.1:P/bytes",
    // IPv6 loopback, mapped, compatible, NAT64 and 6to4 forms of it
    "http://[::1]:P/bytes",
    "http://[0:0:0:0:0:0:0:1]:P/bytes",
    "http://[::ffff:127.0.0.1]:P/bytes",
    "http://[::ffff:7f00:1]:P/bytes",
    "http://[0:0:0:0:0:ffff:127.0.0.1]:P/bytes",
    "http://[::127.0.0.1]:P/bytes",
    "http://[64:ff9b::127.0.0.1]:P/bytes",
    "http://[2002:7f00:1::1]:P/bytes",
    // unspecified ("this host" on Linux)
    "http://0.0.0.0:P/bytes",
    "http://0:P/bytes",
    "http://0x0:P/bytes",
    "http://[::]:P/bytes",
    "http://[::ffff:0.0.0.0]:P/bytes",
    // cloud metadata, private, shared, link-local, multicast, broadcast
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/latest/meta-data/",
    "http://0xa9fea9fe/latest/meta-data/",
    "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "http://[ff02::1]/",
    // smuggling: userinfo, encoded hosts, odd schemes and ports, junk
    "http://user@127.0.0.1:P/bytes",
    "http://user:hunter2@example.com/",
    "http://example.com@127.0.0.1:P/bytes",
    "http://%31%32%37.0.0.1:P/bytes",
    "http://%6c%6f%63%61%6c%68%6f%73%74:P/bytes",
    "ftp://127.0.0.1:P/bytes",
    "file:///etc/passwd",
    "gopher://127.0.0.1:P/_GET",
    "dict://127.0.0.1:P/",
    "http:///bytes",
    "http://:P/bytes",
    "http://example.com:0/",
    "http://example.com:65536/",
    "http://example.com:99999999999/",
    "http://[v1.fe]/",
    "http://127.0.0.1\\@example.com/",
    "http://exa mple.com/",
    "http://[fe80::1%25lo]:P/bytes",
    "javascript:alert(1)",
    "no-scheme-at-all",
};

std::string with_port(std::string link, std::uint16_t port) {
  for (auto at = link.find(":P"); at != std::string::npos; at = link.find(":P")) {
    link.replace(at, 2, ":" + std::to_string(port));
  }
  return link;
}

TEST_F(PublicUrlStoreTest, HostileLinksAreRefusedAndNothingIsFetched) {
  auto store = make_store();
  ASSERT_GE(std::size(kHostileLinks), 35u);
  for (const char* hostile : kHostileLinks) {
    const std::string link = with_port(hostile, server_.port());
    const ObjectPath path = path_of_url(link);
    auto s = store->stat(path);
    ASSERT_FALSE(s) << link;
    EXPECT_TRUE(is_4xx(s.error().code)) << link << ": " << s.error().to_string();
    EXPECT_FALSE(s.error().retryable) << link;
    EXPECT_EQ(s.error().message.find("hunter2"), std::string::npos) << s.error().message;
    auto r = store->open_read(path, {.range = ByteRange{0, 10}});
    ASSERT_FALSE(r) << link;
    EXPECT_TRUE(is_4xx(r.error().code)) << link << ": " << r.error().to_string();
    auto random = store->open_random(ObjectInfo{.path = path, .size = 100, .etag = "\"v1\""});
    if (random) {
      std::vector<std::byte> out(10);
      auto n = (*random)->read_at(0, out);
      ASSERT_FALSE(n) << link;
      EXPECT_TRUE(is_4xx(n.error().code)) << link;
    }
    EXPECT_EQ(server_.total_hits(), 0u) << link;
  }
}

/// A "public" server (127.0.0.2, trusted through allowed_addresses) redirecting to the real
/// loopback server, which the policy forbids: refused at the hop, the forbidden server untouched.
TEST_F(PublicUrlStoreTest, RedirectFromAPublicHostToLoopbackIsRefusedAtTheHop) {
  LinkHttpServer outside("127.0.0.2");
  PublicUrlOptions options;
  options.allowed_addresses = {"127.0.0.2"};
  auto store = make_store(options);
  outside.serve_bytes("/bytes", "public bytes");
  ASSERT_EQ(get(*store, outside.base_url() + "/bytes").value(), "public bytes");

  const std::string port = std::to_string(server_.port());
  const std::string targets[] = {
      "http://127.0.0.1:" + port + "/bytes",
      "http://localhost:" + port + "/bytes",
      "http://2130706433:" + port + "/bytes",
      "http://0x7f.1:" + port + "/bytes",
      "http://[::ffff:127.0.0.1]:" + port + "/bytes",
      "http://[::1]:" + port + "/bytes",
      "http://169.254.169.254/latest/meta-data/",
      "http://user@127.0.0.1:" + port + "/bytes",
      "file:///etc/passwd",
      "gopher://127.0.0.1:" + port + "/_GET",
  };
  int i = 0;
  for (const auto& target : targets) {
    const std::string hop = "/hop" + std::to_string(i++);
    outside.redirect(hop, target, i % 2 ? 302 : 307);
    auto s = store->stat(path_of_url(outside.base_url() + hop + "?sig=SECRET"));
    ASSERT_FALSE(s) << target;
    EXPECT_TRUE(is_4xx(s.error().code)) << target << ": " << s.error().to_string();
    EXPECT_NE(s.error().message.find("redirect"), std::string::npos) << s.error().message;
    EXPECT_EQ(s.error().message.find("SECRET"), std::string::npos) << s.error().message;
    auto r = store->open_read(path_of_url(outside.base_url() + hop), {});
    ASSERT_FALSE(r) << target;
    EXPECT_TRUE(is_4xx(r.error().code)) << target;
    EXPECT_EQ(outside.hits(hop), 2u) << target;  // the first hop was fetched, by stat and read
  }
  // A chain that turns bad at its third hop.
  outside.redirect("/c1", "/c2");
  outside.redirect("/c2", "http://127.0.0.1:" + port + "/bytes");
  EXPECT_EQ(store->stat(path_of_url(outside.base_url() + "/c1")).error().code,
            ErrorCode::PermissionDenied);
  EXPECT_EQ(server_.total_hits(), 0u);
}

/// Addresses that no policy allows, reached by redirect from an allowed server.
TEST_F(PublicUrlStoreTest, RedirectToAnAlwaysForbiddenAddressIsRefusedEvenWithPrivateAllowed) {
  const std::string port = std::to_string(server_.port());
  const std::string targets[] = {
      "http://0.0.0.0:" + port + "/bytes", "http://0:" + port + "/bytes",
      "http://[::]:" + port + "/bytes",    "http://[::ffff:0.0.0.0]:" + port + "/bytes",
      "http://224.0.0.1:" + port + "/",    "http://[ff02::1]:" + port + "/",
  };
  auto store = make_store(private_allowed());
  int i = 0;
  for (const auto& target : targets) {
    const std::string hop = "/to-forbidden" + std::to_string(i++);
    server_.redirect(hop, target);
    auto r = store->open_read(path_of_url(url(hop)), {});
    ASSERT_FALSE(r) << target;
    EXPECT_EQ(r.error().code, ErrorCode::PermissionDenied) << r.error().to_string();
    EXPECT_EQ(server_.hits("/bytes"), 0u) << target;
  }
}

/// The connection goes to the address that was checked, never to a second lookup's answer.
TEST_F(PublicUrlStoreTest, ConnectionsArePinnedToTheCheckedAddress) {
  LinkHttpServer outside("127.0.0.2");
  outside.serve_bytes("/bytes", "pinned");
  int lookups = 0;
  PublicUrlOptions options;
  options.allowed_addresses = {"127.0.0.2"};
  options.resolver = [&](const std::string& host) -> Result<std::vector<std::string>> {
    ++lookups;
    if (host == "public.test") return std::vector<std::string>{"127.0.0.2"};
    if (host == "split.test") return std::vector<std::string>{"127.0.0.2", "127.0.0.1"};
    return make_error(ErrorCode::InvalidArgument, "unknown host " + host);
  };
  auto store = make_store(options);
  // Only the seam knows public.test: curl can only reach it through the pinned address.
  const std::string port = std::to_string(outside.port());
  EXPECT_EQ(get(*store, "http://public.test:" + port + "/bytes").value(), "pinned");
  EXPECT_EQ(outside.requests().back().header("Host"), "public.test:" + port);
  EXPECT_EQ(lookups, 1);
  // A name with one good and one forbidden address is refused outright.
  auto split = store->stat(path_of_url("http://split.test:" + port + "/bytes"));
  ASSERT_FALSE(split);
  EXPECT_EQ(split.error().code, ErrorCode::PermissionDenied);
  EXPECT_EQ(outside.hits("/bytes"), 1u);
  EXPECT_EQ(server_.total_hits(), 0u);
}

}  // namespace
}  // namespace stowage::store::http_links
