// SPDX-License-Identifier: Apache-2.0
#include "stowage/store/http/public_url_store.hpp"
#include "stowage/base/time.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <cctype>
#include <cstring>
#include <ctime>

namespace stowage::store::http_links {

namespace {

/// Bytes of an ignored Range we are willing to read and throw away. A server that answers a
/// ranged GET with 200 sends the whole object; skipping a small prefix is cheaper than failing,
/// but reading gigabytes to reach a far offset would turn every random read into a full download.
constexpr std::uint64_t kMaxSkipBytes = 16ull << 20;

/// Statuses that carry a Location to follow (RFC 9110 §15.4); 300 and 304 do not.
bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// A URL as it may appear in a message: no query or fragment (they may carry a token or a
/// signature), no userinfo (a password), no control characters.
std::string describe(std::string_view url) {
  url = url.substr(0, std::min(url.find('?'), url.find('#')));
  std::string out(url);
  if (const auto scheme_end = out.find("://"); scheme_end != std::string::npos) {
    const auto authority = scheme_end + 3;
    const auto authority_end = std::min(out.find('/', authority), out.size());
    const auto at = out.rfind('@', authority_end);
    if (at != std::string::npos && at >= authority) out.replace(authority, at - authority, "***");
  }
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

Error fail(ErrorCode code, std::string_view method, std::string_view url, std::string_view why) {
  return make_error(code, std::string(method) + " " + describe(url) + ": " + std::string(why));
}

/// One hop of a request: where it goes, and what to resolve.
struct Target {
  std::string url;   ///< absolute, without fragment, as it goes to the transport
  std::string host;  ///< for the resolver: a name or a numeric address, IPv6 without brackets
  std::uint16_t port = 0;
};

/// Parses and vets one absolute URL. InvalidArgument for anything but a plain http(s) URL.
Result<Target> parse_target(std::string_view method, std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return fail(ErrorCode::InvalidArgument, method, url, "not a valid absolute URL");
  const auto& u = *parsed;
  const std::string scheme = lower(u.scheme());
  if (scheme != "http" && scheme != "https") {
    return fail(ErrorCode::InvalidArgument, method, url, "only http and https links are allowed");
  }
  if (u.has_userinfo()) {
    return fail(ErrorCode::InvalidArgument, method, url, "links may not carry a user or password");
  }
  const std::string_view encoded_host = u.encoded_host();
  if (encoded_host.empty()) return fail(ErrorCode::InvalidArgument, method, url, "empty host");
  if (encoded_host.find('%') != std::string_view::npos) {
    return fail(ErrorCode::InvalidArgument, method, url, "percent-encoded host");
  }
  Target t;
  switch (u.host_type()) {
    case boost::urls::host_type::name:
    case boost::urls::host_type::ipv4:
    case boost::urls::host_type::ipv6:
      t.host = lower(u.host_address());
      break;
    default:
      return fail(ErrorCode::InvalidArgument, method, url, "unsupported host form");
  }
  t.port = scheme == "https" ? 443 : 80;
  if (u.has_port() && !u.port().empty()) {
    const std::string_view p = u.port();
    if (p.size() > 5 ||
        !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return fail(ErrorCode::InvalidArgument, method, url, "port out of range");
    }
    const unsigned long n = std::stoul(std::string(p));
    if (n < 1 || n > 65535)
      return fail(ErrorCode::InvalidArgument, method, url, "port out of range");
    t.port = static_cast<std::uint16_t>(n);
  }
  boost::urls::url clean(u);
  clean.remove_fragment();
  t.url = std::string(clean.buffer());
  return t;
}

/// The IPv4 verdict: empty when allowed, else which range refuses it.
std::string_view ipv4_refusal(std::uint32_t a, bool allow_private) {
  struct Range {
    std::uint32_t net;
    int bits;
    std::string_view name;
    bool always;  // refused even when private networks are allowed
  };
  static constexpr std::array kRanges{
      Range{0x00000000, 8, "unspecified (0.0.0.0/8)", true},
      Range{0xE0000000, 4, "multicast (224.0.0.0/4)", true},
      Range{0xFFFFFFFF, 32, "broadcast (255.255.255.255)", true},
      Range{0x0A000000, 8, "private (10.0.0.0/8)", false},
      Range{0x64400000, 10, "shared (100.64.0.0/10)", false},
      Range{0x7F000000, 8, "loopback (127.0.0.0/8)", false},
      Range{0xA9FE0000, 16, "link-local (169.254.0.0/16)", false},
      Range{0xAC100000, 12, "private (172.16.0.0/12)", false},
      Range{0xC0000000, 24, "reserved (192.0.0.0/24)", false},
      Range{0xC0000200, 24, "documentation (192.0.2.0/24)", false},
      Range{0xC0A80000, 16, "private (192.168.0.0/16)", false},
      Range{0xC6120000, 15, "benchmarking (198.18.0.0/15)", false},
      Range{0xC6336400, 24, "documentation (198.51.100.0/24)", false},
      Range{0xCB007100, 24, "documentation (203.0.113.0/24)", false},
      Range{0xF0000000, 4, "reserved (240.0.0.0/4)", false},
  };
  for (const auto& r : kRanges) {
    const std::uint32_t mask = r.bits == 0 ? 0 : ~std::uint32_t{0} << (32 - r.bits);
    if ((a & mask) == r.net && (r.always || !allow_private)) return r.name;
  }
  return {};
}

std::uint32_t ipv4_at(const std::uint8_t* b) {
  return std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 |
         std::uint32_t{b[3]};
}

std::string ntop(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, text, sizeof text);
  } else if (address->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text,
              sizeof text);
  }
  return text;
}

/// The verdict on an IPv6 address, its embedded IPv4 forms included.
std::string ipv6_refusal(const std::uint8_t* b, bool allow_private) {
  static constexpr std::uint8_t kZero[16] = {};
  const bool first96_zero = std::memcmp(b, kZero, 12) == 0;
  if (std::memcmp(b, kZero, 16) == 0) return "unspecified (::)";
  if (first96_zero && ipv4_at(b + 12) == 1) {
    return allow_private ? std::string() : std::string("loopback (::1)");
  }
  const auto embedded = [&](std::uint32_t v4, std::string_view form) -> std::string {
    const auto why = ipv4_refusal(v4, allow_private);
    return why.empty() ? std::string() : std::string(form) + " of an IPv4 " + std::string(why);
  };
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static constexpr std::uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::memcmp(b, kMapped, 12) == 0) return embedded(ipv4_at(b + 12), "IPv4-mapped form");
  if (first96_zero) return embedded(ipv4_at(b + 12), "IPv4-compatible form");
  if (std::memcmp(b, kNat64, 12) == 0) return embedded(ipv4_at(b + 12), "NAT64 form");
  if (b[0] == 0x20 && b[1] == 0x02) return embedded(ipv4_at(b + 2), "6to4 form");
  if (b[0] == 0xff) return "multicast (ff00::/8)";
  if (allow_private) return {};
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "link-local (fe80::/10)";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return "site-local (fec0::/10)";
  if ((b[0] & 0xfe) == 0xfc) return "unique local (fc00::/7)";
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) {
    return "documentation (2001:db8::/32)";
  }
  return {};
}

/// Parses a numeric address (IPv4 dotted quad or IPv6) into a socket address.
bool to_sockaddr(const std::string& text, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    return true;
  }
  return false;
}

/// "bytes a-b/total" → {a, b, total (nullopt for '*')}.
struct ContentRange {
  std::optional<std::uint64_t> first;
  std::optional<std::uint64_t> last;
  std::optional<std::uint64_t> total;
};

std::optional<std::uint64_t> to_u64(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

std::optional<ContentRange> parse_content_range(std::string_view v) {
  if (!v.starts_with("bytes ")) return std::nullopt;
  v.remove_prefix(6);
  const auto slash = v.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  ContentRange cr;
  const std::string_view range = v.substr(0, slash), total = v.substr(slash + 1);
  if (total != "*") {
    cr.total = to_u64(total);
    if (!cr.total) return std::nullopt;
  }
  if (range != "*") {
    const auto dash = range.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    cr.first = to_u64(range.substr(0, dash));
    cr.last = to_u64(range.substr(dash + 1));
    if (!cr.first || !cr.last || *cr.last < *cr.first) return std::nullopt;
  }
  return cr;
}

std::chrono::system_clock::time_point parse_http_date(std::string_view text) {
  std::tm tm{};
  const std::string s(text);
  if (strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) == nullptr) return {};
  return utc_time_point(tm).value_or(std::chrono::system_clock::time_point{});
}

/// How a version tag is pinned on later requests. A strong ETag goes in If-Match; a weak one
/// cannot (If-Match compares strongly), and a tag derived from Last-Modified and size is ours:
/// those two are checked against each response here, plus If-Unmodified-Since when we have it.
constexpr std::string_view kDerivedPrefix = "size:";
constexpr std::string_view kLastModifiedPart = ";last-modified:";

std::string version_of(const http::ResponseStream& r, std::uint64_t size) {
  if (const auto etag = r.header("ETag"); etag && !etag->empty()) return std::string(*etag);
  std::string v = std::string(kDerivedPrefix) + std::to_string(size);
  if (const auto lm = r.header("Last-Modified"); lm && !lm->empty()) {
    v += std::string(kLastModifiedPart) + std::string(*lm);
  }
  return v;
}

void add_pin_headers(const std::string& etag, std::vector<http::Header>& headers) {
  if (etag.starts_with('"')) {
    headers.push_back({"If-Match", etag});
  } else if (etag.starts_with(kDerivedPrefix)) {
    if (const auto at = etag.find(kLastModifiedPart); at != std::string::npos) {
      headers.push_back({"If-Unmodified-Since", etag.substr(at + kLastModifiedPart.size())});
    }
  }
}

/// The object's total size as a response tells it: Content-Range's total, or Content-Length of
/// a 200.
std::optional<std::uint64_t> total_size(const http::ResponseStream& r) {
  if (r.status() == 206 || r.status() == 416) {
    if (const auto cr = r.header("Content-Range")) {
      if (auto parsed = parse_content_range(*cr)) return parsed->total;
    }
    return std::nullopt;
  }
  if (const auto cl = r.header("Content-Length")) return to_u64(*cl);
  return std::nullopt;
}

/// PreconditionFailed unless the response is still the version `etag` names. Servers that ignore
/// If-Match are caught here.
Status verify_pin(const std::string& etag, const http::ResponseStream& r, std::string_view method,
                  std::string_view url) {
  const auto changed = [&] {
    return fail(ErrorCode::PreconditionFailed, method, url,
                "the object changed (etag " + etag + ")");
  };
  if (etag.starts_with(kDerivedPrefix)) {
    const auto at = etag.find(kLastModifiedPart);
    const auto size = to_u64(std::string_view(etag).substr(
        kDerivedPrefix.size(),
        (at == std::string::npos ? etag.size() : at) - kDerivedPrefix.size()));
    if (const auto total = total_size(r); total && size && *total != *size) return changed();
    if (at != std::string::npos) {
      const auto lm = r.header("Last-Modified");
      if (lm && *lm != std::string_view(etag).substr(at + kLastModifiedPart.size())) {
        return changed();
      }
    }
    return {};
  }
  if (const auto got = r.header("ETag"); got && *got != etag) return changed();
  return {};
}

/// The error for a status we did not expect.
Error status_error(long status, std::string_view method, std::string_view url) {
  const std::string why = "HTTP " + std::to_string(status);
  Error e = fail(ErrorCode::InvalidArgument, method, url, why);
  if (status == 404 || status == 410) {
    e.code = ErrorCode::NotFound;
  } else if (status == 401 || status == 403) {
    e.code = ErrorCode::PermissionDenied;
  } else if (status == 412) {
    e.code = ErrorCode::PreconditionFailed;
  } else if (status == 416) {
    e.code = ErrorCode::RangeNotSatisfiable;
  } else if (status == 408 || status == 429 || status >= 500) {
    e.code = ErrorCode::Unavailable;
    e.retryable = true;
  } else if (status < 400) {
    e.code = ErrorCode::Unavailable;  // 1xx/3xx without a usable meaning here
  }
  e.http_status = static_cast<int>(status);
  return e;
}

class EmptyReader final : public io::Reader {
 public:
  Result<std::size_t> read(std::span<std::byte>) override { return std::size_t{0}; }
  std::optional<std::uint64_t> size() const override { return 0; }
};

/// A response body as it arrives: skips a prefix the server did not skip for us, stops after the
/// bytes asked for, and refuses to read past max_object_bytes.
class BodyReader final : public io::Reader {
 public:
  BodyReader(std::unique_ptr<http::ResponseStream> stream, std::uint64_t skip,
             std::optional<std::uint64_t> length, std::uint64_t max_bytes, std::string what)
      : stream_(std::move(stream)),
        skip_(skip),
        left_(length),
        max_bytes_(max_bytes),
        what_(std::move(what)) {}

  Result<std::size_t> read(std::span<std::byte> out) override {
    if (out.empty()) return std::size_t{0};
    while (skip_ > 0) {
      const auto n = stream_->read(out.first(std::min<std::uint64_t>(out.size(), skip_)));
      if (!n) return n;
      if (*n == 0) return std::size_t{0};
      STOWAGE_TRY(count(*n));
      skip_ -= *n;
    }
    if (left_ && *left_ == 0) return std::size_t{0};
    if (left_) out = out.first(std::min<std::uint64_t>(out.size(), *left_));
    auto n = stream_->read(out);
    if (!n) return n;
    STOWAGE_TRY(count(*n));
    if (left_) *left_ -= *n;
    return n;
  }
  std::optional<std::uint64_t> size() const override { return left_ ? left_ : std::nullopt; }

 private:
  Status count(std::size_t n) {
    received_ += n;
    if (received_ > max_bytes_) {
      return make_error(ErrorCode::TooLarge,
                        what_ + ": larger than " + std::to_string(max_bytes_) + " bytes");
    }
    return {};
  }

  std::unique_ptr<http::ResponseStream> stream_;
  std::uint64_t skip_;
  std::optional<std::uint64_t> left_;
  std::uint64_t max_bytes_;
  std::uint64_t received_ = 0;
  std::string what_;
};

}  // namespace

ObjectPath path_of_url(std::string_view url) {
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) return {"", std::string(url)};
  return {lower(url.substr(0, sep)), std::string(url.substr(sep + 3))};
}

std::string url_of_path(const ObjectPath& path) { return path.bucket + "://" + path.key; }

Status check_address(const sockaddr* address, bool allow_private_networks) {
  std::string why;
  if (address == nullptr) {
    why = "no address";
  } else if (address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    why = ipv4_refusal(ntohl(v4->sin_addr.s_addr), allow_private_networks);
  } else if (address->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
    why = ipv6_refusal(v6->sin6_addr.s6_addr, allow_private_networks);
  } else {
    why = "not an IP address";
  }
  if (why.empty()) return {};
  const std::string text = address ? ntop(address) : std::string();
  return make_error(ErrorCode::PermissionDenied, "address " +
                                                     (text.empty() ? std::string("?") : text) +
                                                     " is " + why + "; links may not reach it");
}

struct PublicUrlStore::Impl {
  PublicUrlOptions options;
  std::shared_ptr<http::Transport> transport;
  Capabilities capabilities{.atomic_publish = false, .conditional_put = false};

  /// Resolves a host and checks every address; the CONNECT_TO entry that pins the first one.
  Result<std::string> pin(const Target& t, std::string_view method) const {
    std::vector<sockaddr_storage> addresses;
    if (options.resolver) {
      STOWAGE_ASSIGN_OR_RETURN(auto texts, options.resolver(t.host));
      for (const auto& text : texts) {
        sockaddr_storage a;
        if (!to_sockaddr(text, a)) {
          return fail(ErrorCode::InvalidArgument, method, t.url, "resolver gave " + text);
        }
        addresses.push_back(a);
      }
    } else {
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* found = nullptr;
      const int rc = getaddrinfo(t.host.c_str(), nullptr, &hints, &found);
      if (rc != 0) {
        Error e = fail(rc == EAI_AGAIN ? ErrorCode::Unavailable : ErrorCode::InvalidArgument,
                       method, t.url, std::string("cannot resolve host: ") + gai_strerror(rc));
        e.retryable = rc == EAI_AGAIN;
        return e;
      }
      for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
        if (a->ai_addr == nullptr || a->ai_addrlen > sizeof(sockaddr_storage)) continue;
        sockaddr_storage s{};
        std::memcpy(&s, a->ai_addr, a->ai_addrlen);
        addresses.push_back(s);
      }
      freeaddrinfo(found);
    }
    if (addresses.empty()) {
      return fail(ErrorCode::InvalidArgument, method, t.url, "host has no address");
    }
    // Every address must pass, not just the one we use: a name that resolves to a public and a
    // private address is a rebinding attempt.
    for (const auto& a : addresses) {
      const auto* sa = reinterpret_cast<const sockaddr*>(&a);
      const bool excepted =
          std::find(options.allowed_addresses.begin(), options.allowed_addresses.end(), ntop(sa)) !=
          options.allowed_addresses.end();
      if (auto ok = check_address(sa, options.allow_private_networks || excepted); !ok) {
        return fail(ErrorCode::PermissionDenied, method, t.url, ok.error().message);
      }
    }
    const auto* first = reinterpret_cast<const sockaddr*>(&addresses.front());
    const std::string text = ntop(first);
    const std::string address = first->sa_family == AF_INET6 ? "[" + text + "]" : text;
    // Empty host and port match every connection of this request, so curl never resolves the
    // name itself, whatever it makes of the URL.
    return "::" + address + ":" + std::to_string(t.port);
  }

  /// Sends a request, following redirects by hand: every hop is parsed, resolved, checked and
  /// pinned before anything is sent to it.
  Result<std::unique_ptr<http::ResponseStream>> fetch(std::string method, const std::string& url,
                                                      const std::vector<http::Header>& headers) {
    std::string current = url;
    for (int hop = 0;; ++hop) {
      // A hop's error names the link as given, then the hop's own error.
      const auto at_hop = [&](Error e) {
        if (hop > 0) e.message = method + " " + describe(url) + ": redirect: " + e.message;
        return e;
      };
      auto target = parse_target(method, current);
      if (!target) return at_hop(std::move(target).error());
      const Target& t = *target;
      auto pinned = pin(t, method);
      if (!pinned) return at_hop(std::move(pinned).error());
      http::Request request;
      request.method = method;
      request.url = t.url;
      request.headers = headers;
      request.connect_to = {*pinned};
      request.connect_timeout = options.connect_timeout;
      request.stall_timeout = options.stall_timeout;
      STOWAGE_ASSIGN_OR_RETURN(auto stream, transport->open(request));
      if (!is_redirect(stream->status())) return stream;
      const auto location = stream->header("Location");
      if (!location || location->empty()) {
        return fail(ErrorCode::InvalidArgument, method, current, "redirect without a Location");
      }
      if (hop >= options.max_redirects) {
        return fail(ErrorCode::InvalidArgument, method, url,
                    "more than " + std::to_string(options.max_redirects) + " redirects");
      }
      auto ref = boost::urls::parse_uri_reference(*location);
      auto base = boost::urls::parse_uri(t.url);
      boost::urls::url next;
      if (!ref || !base || !boost::urls::resolve(*base, *ref, next)) {
        return fail(ErrorCode::InvalidArgument, method, current, "redirect to an invalid URL");
      }
      current = std::string(next.buffer());
      if (stream->status() == 303 && method != "HEAD") method = "GET";
    }
  }

  /// A GET of `url` (or of a range of it), pinned on `etag` when given, as a checked stream.
  Result<std::unique_ptr<io::Reader>> get(const std::string& url, std::optional<ByteRange> range,
                                          const std::optional<std::string>& etag) {
    std::vector<http::Header> headers;
    if (range && (range->offset > 0 || range->length)) {
      std::string spec = "bytes=" + std::to_string(range->offset) + "-";
      if (range->length) spec += std::to_string(range->offset + *range->length - 1);
      headers.push_back({"Range", spec});
    } else {
      range.reset();
    }
    if (etag) add_pin_headers(*etag, headers);
    STOWAGE_ASSIGN_OR_RETURN(auto stream, fetch("GET", url, headers));
    const long status = stream->status();
    if (status == 416) {
      const auto total = total_size(*stream);
      if (total && *total == 0) return std::unique_ptr<io::Reader>(new EmptyReader);
      return status_error(status, "GET", url);
    }
    if (status != 200 && status != 206) return status_error(status, "GET", url);
    if (etag) STOWAGE_TRY(verify_pin(*etag, *stream, "GET", url));
    const auto total = total_size(*stream);
    if (total && *total > options.max_object_bytes) {
      return fail(ErrorCode::TooLarge, "GET", url,
                  "object of " + std::to_string(*total) + " bytes is larger than the limit of " +
                      std::to_string(options.max_object_bytes));
    }
    const std::uint64_t offset = range ? range->offset : 0;
    std::uint64_t skip = 0;
    std::optional<std::uint64_t> length = range ? range->length : std::nullopt;
    if (status == 206) {
      const auto cr = stream->header("Content-Range");
      const auto parsed = cr ? parse_content_range(*cr) : std::nullopt;
      if (!range || !parsed || !parsed->first || *parsed->first != offset) {
        return fail(ErrorCode::Corrupt, "GET", url, "the server sent a range we did not ask for");
      }
      const std::uint64_t got = *parsed->last - *parsed->first + 1;
      length = length ? std::min(*length, got) : got;
    } else if (offset > 0) {
      // The server ignored Range and sends the whole object: skip the prefix ourselves, if small.
      if (offset > kMaxSkipBytes) {
        return fail(ErrorCode::Unsupported, "GET", url,
                    "the server ignores Range requests and the offset is too far to skip");
      }
      if (total && offset >= *total) return status_error(416, "GET", url);
      skip = offset;
    }
    if (status == 200 && total) {
      const std::uint64_t available = *total - std::min(*total, offset);
      length = length ? std::min(*length, available) : available;
    }
    return std::unique_ptr<io::Reader>(new BodyReader(
        std::move(stream), skip, length, options.max_object_bytes, "GET " + describe(url)));
  }

  Result<ObjectInfo> stat(const ObjectPath& path) {
    const std::string url = url_of_path(path);
    STOWAGE_ASSIGN_OR_RETURN(auto head, fetch("HEAD", url, {}));
    std::unique_ptr<http::ResponseStream> answer;
    std::optional<std::uint64_t> size;
    std::string method = "HEAD";
    if (head->status() == 200) {
      size = total_size(*head);
      if (size) answer = std::move(head);
    } else if (head->status() != 405 && head->status() != 501) {
      return status_error(head->status(), "HEAD", url);
    }
    if (!answer) {
      // HEAD refused (or sizeless): a one-byte GET tells the size in Content-Range.
      method = "GET";
      STOWAGE_ASSIGN_OR_RETURN(answer, fetch("GET", url, {{"Range", "bytes=0-0"}}));
      const long status = answer->status();
      if (status != 200 && status != 206 && status != 416) {
        return status_error(status, "GET", url);
      }
      size = total_size(*answer);
      if (!size)
        return fail(ErrorCode::Unsupported, "GET", url, "the server does not tell the size");
    }
    if (*size > options.max_object_bytes) {
      return fail(ErrorCode::TooLarge, method, url,
                  "object of " + std::to_string(*size) + " bytes is larger than the limit of " +
                      std::to_string(options.max_object_bytes));
    }
    ObjectInfo info;
    info.path = path;
    info.size = *size;
    info.etag = version_of(*answer, *size);
    if (const auto lm = answer->header("Last-Modified")) info.last_modified = parse_http_date(*lm);
    return info;
  }

  /// Ranged GETs of an object already stat'ed, each pinned on its version.
  class RandomReader final : public io::RandomAccessReader {
   public:
    RandomReader(Impl& impl, ObjectInfo info)
        : impl_(impl), info_(std::move(info)), url_(url_of_path(info_.path)) {}

    Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
      if (offset >= info_.size || out.empty()) return std::size_t{0};
      const std::uint64_t want = std::min<std::uint64_t>(out.size(), info_.size - offset);
      STOWAGE_ASSIGN_OR_RETURN(auto reader,
                               impl_.get(url_, ByteRange{offset, want}, std::optional(info_.etag)));
      std::size_t got = 0;
      while (got < want) {
        STOWAGE_ASSIGN_OR_RETURN(std::size_t n, reader->read(out.subspan(got, want - got)));
        if (n == 0) break;
        got += n;
      }
      if (got < want) {
        return fail(ErrorCode::Corrupt, "GET", url_, "the object is shorter than it was");
      }
      return got;
    }
    std::uint64_t size() const override { return info_.size; }

   private:
    Impl& impl_;
    ObjectInfo info_;
    std::string url_;
  };
};

namespace {

Error read_only(std::string_view what) {
  return make_error(ErrorCode::Unsupported, std::string(what) + ": http links are read-only");
}

Status check_bucket(const ObjectPath& path) {
  if (path.bucket != "http" && path.bucket != "https") {
    return make_error(ErrorCode::InvalidArgument,
                      "not an http(s) link: " + describe(url_of_path(path)));
  }
  return {};
}

}  // namespace

std::unique_ptr<PublicUrlStore> PublicUrlStore::make(PublicUrlOptions options,
                                                     std::shared_ptr<http::Transport> transport) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->transport = std::move(transport);
  return std::unique_ptr<PublicUrlStore>(new PublicUrlStore(std::move(impl)));
}

PublicUrlStore::PublicUrlStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PublicUrlStore::~PublicUrlStore() = default;

const Capabilities& PublicUrlStore::capabilities() const { return impl_->capabilities; }

Result<ObjectInfo> PublicUrlStore::stat(const ObjectPath& path) {
  STOWAGE_TRY(check_bucket(path));
  return impl_->stat(path);
}

Result<std::unique_ptr<io::Reader>> PublicUrlStore::open_read(const ObjectPath& path,
                                                              const ReadOptions& options) {
  STOWAGE_TRY(check_bucket(path));
  if (options.range && options.range->length && *options.range->length == 0) {
    // Nothing to read, but the range must still start inside a non-empty object.
    STOWAGE_ASSIGN_OR_RETURN(ObjectInfo info, impl_->stat(path));
    if (options.if_match && *options.if_match != info.etag) {
      return fail(ErrorCode::PreconditionFailed, "GET", url_of_path(path), "the object changed");
    }
    if (info.size > 0 && options.range->offset >= info.size) {
      return status_error(416, "GET", url_of_path(path));
    }
    return std::unique_ptr<io::Reader>(new EmptyReader);
  }
  return impl_->get(url_of_path(path), options.range, options.if_match);
}

Result<std::unique_ptr<io::RandomAccessReader>> PublicUrlStore::open_random(
    const ObjectInfo& info) {
  STOWAGE_TRY(check_bucket(info.path));
  return std::unique_ptr<io::RandomAccessReader>(new Impl::RandomReader(*impl_, info));
}

Result<std::unique_ptr<Writer>> PublicUrlStore::open_write(const ObjectPath&, const WriteOptions&) {
  return read_only("open_write");
}

Result<ListPage> PublicUrlStore::list(const ObjectPath&, const ListOptions&) {
  return read_only("list");
}

Status PublicUrlStore::remove(const ObjectPath&) { return read_only("remove"); }

}  // namespace stowage::store::http_links
