// SPDX-License-Identifier: Apache-2.0
#include "stowage/auth/azure_shared_key.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>
#include <map>

#include "stowage/io/checksum.hpp"

namespace stowage::auth::azure {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Percent-decoding of a query name or value ('+' stays '+': we never encode a space as '+').
std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::string trim_and_fold(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

/// The standard headers of the string to sign, in their order.
constexpr std::array<std::string_view, 11> kStandardHeaders = {"Content-Encoding",
                                                               "Content-Language",
                                                               "Content-Length",
                                                               "Content-MD5",
                                                               "Content-Type",
                                                               "Date",
                                                               "If-Modified-Since",
                                                               "If-Match",
                                                               "If-None-Match",
                                                               "If-Unmodified-Since",
                                                               "Range"};

}  // namespace

Result<SharedKeyCredentials> SharedKeyCredentials::from_base64(std::string account,
                                                               std::string_view key) {
  std::string decoded = io::from_base64(key);
  if (decoded.empty()) {
    return make_error(ErrorCode::InvalidArgument,
                      "the account key of Azure account '" + account +
                          "' is not base64 (copy it from the portal's Access keys, or use a SAS "
                          "token that contains sig=)");
  }
  return SharedKeyCredentials{std::move(account), Redacted(std::move(decoded))};
}

std::string rfc1123_date(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  static constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
  static constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buffer;
}

std::string canonicalized_headers(const std::vector<http::Header>& headers) {
  std::map<std::string, std::string> ms;  // sorted by lower-cased name
  for (const auto& h : headers) {
    std::string name = lower(h.name);
    if (!name.starts_with("x-ms-")) continue;
    ms[std::move(name)] = trim_and_fold(h.value);
  }
  std::string out;
  for (const auto& [name, value] : ms) out += name + ":" + value + "\n";
  return out;
}

std::string canonicalized_resource(std::string_view account, std::string_view url) {
  std::string_view rest = url;
  if (const auto scheme = rest.find("://"); scheme != std::string_view::npos) {
    rest.remove_prefix(scheme + 3);
    const auto path_start = rest.find_first_of("/?");
    rest = path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
  }
  const auto q = rest.find('?');
  std::string_view path = rest.substr(0, q);
  const std::string_view query =
      q == std::string_view::npos ? std::string_view() : rest.substr(q + 1);
  std::string out =
      "/" + std::string(account) + (path.empty() ? std::string("/") : std::string(path));

  std::map<std::string, std::vector<std::string>> params;
  std::size_t start = 0;
  while (start < query.size()) {
    const std::size_t end = std::min(query.find('&', start), query.size());
    const std::string_view pair = query.substr(start, end - start);
    start = end + 1;
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    std::string name = lower(url_decode(pair.substr(0, eq)));
    std::string value =
        eq == std::string_view::npos ? std::string() : url_decode(pair.substr(eq + 1));
    params[std::move(name)].push_back(std::move(value));
  }
  for (auto& [name, values] : params) {
    std::sort(values.begin(), values.end());
    out += "\n" + name + ":";
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out += ",";
      out += values[i];
    }
  }
  return out;
}

std::string string_to_sign(const http::Request& request, std::string_view account) {
  std::string out = request.method + "\n";
  for (const std::string_view name : kStandardHeaders) {
    std::string value;
    if (const auto v = http::find_header(request.headers, name)) {
      value = std::string(*v);
    } else if (name == "Content-Length") {
      const std::uint64_t size =
          request.body_reader != nullptr ? request.body_size.value_or(0) : request.body.size();
      if (size > 0) value = std::to_string(size);
    }
    // Since 2015-02-21 a zero length is signed as an empty line.
    if (name == "Content-Length" && value == "0") value.clear();
    out += value + "\n";
  }
  out += canonicalized_headers(request.headers);
  out += canonicalized_resource(account, request.url);
  return out;
}

std::string signature(std::string_view string_to_sign, const Redacted<>& key) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.reveal().data(), static_cast<int>(key.reveal().size()),
       reinterpret_cast<const unsigned char*>(string_to_sign.data()), string_to_sign.size(), mac,
       &length);
  return io::to_base64(std::span<const unsigned char>(mac, length));
}

void sign(http::Request& request, const SharedKeyCredentials& credentials,
          std::chrono::system_clock::time_point now) {
  if (!http::find_header(request.headers, "x-ms-date")) {
    request.headers.push_back({"x-ms-date", rfc1123_date(now)});
  }
  if (!http::find_header(request.headers, "x-ms-version")) {
    request.headers.push_back({"x-ms-version", std::string(kApiVersion)});
  }
  const std::string sts = string_to_sign(request, credentials.account);
  request.headers.push_back({"Authorization", "SharedKey " + credentials.account + ":" +
                                                  signature(sts, credentials.key)});
}

}  // namespace stowage::auth::azure
