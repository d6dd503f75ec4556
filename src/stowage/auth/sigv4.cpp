// SPDX-License-Identifier: Apache-2.0
#include "stowage/auth/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <span>

#include "stowage/io/checksum.hpp"
#include "stowage/uri/percent.hpp"

namespace stowage::auth::sigv4 {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

std::array<unsigned char, 32> hmac(std::span<const unsigned char> key, std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return out;
}

std::string sha256_hex(std::string_view text) {
  const auto digest = io::Sha256::of(std::as_bytes(std::span(text.data(), text.size())));
  return io::to_hex(digest);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// Trims and collapses runs of spaces and tabs to one space.
std::string trim_collapse(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::tm utc(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm;
}

/// RFC 3986 remove_dot_segments, plus collapsing empty segments ("//").
std::string normalize(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i <= path.size()) {
    const std::size_t j = std::min(path.find('/', i), path.size());
    const std::string_view seg = path.substr(i, j - i);
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
    } else if (!seg.empty() && seg != ".") {
      out.push_back(seg);
    }
    i = j + 1;
  }
  std::string result;
  for (const auto& seg : out) {
    result += '/';
    result += seg;
  }
  const bool trailing =
      path.size() > 1 && (path.back() == '/' || path.ends_with("/.") || path.ends_with("/.."));
  if (result.empty() || trailing) result += '/';
  return result;
}

}  // namespace

std::string amz_date(std::chrono::system_clock::time_point time) {
  const std::tm tm = utc(time);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string short_date(std::chrono::system_clock::time_point time) {
  return amz_date(time).substr(0, 8);
}

std::string credential_scope(std::chrono::system_clock::time_point time, std::string_view region,
                             std::string_view service) {
  return short_date(time) + "/" + std::string(region) + "/" + std::string(service) +
         "/aws4_request";
}

std::string canonical_uri(std::string_view path, bool normalize_path) {
  if (path.empty()) return "/";
  return uri::percent_encode(normalize_path ? normalize(path) : std::string(path), true);
}

std::string canonical_query(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(uri::percent_encode(name), uri::percent_encode(value));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out += '&';
    out += name;
    out += '=';
    out += value;
  }
  return out;
}

std::pair<std::string, std::string> canonical_headers(const std::vector<http::Header>& headers) {
  // Stable sort by lower-cased name keeps repeated headers in the order they were given.
  std::vector<std::pair<std::string, std::string>> items;
  items.reserve(headers.size());
  for (const auto& h : headers) items.emplace_back(lower(h.name), trim_collapse(h.value));
  std::stable_sort(items.begin(), items.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string block;
  std::string names;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0 && items[i].first == items[i - 1].first) {
      block.back() = ',';  // replaces the '\n' of the previous line
      block += items[i].second;
      block += '\n';
      continue;
    }
    if (!names.empty()) names += ';';
    names += items[i].first;
    block += items[i].first;
    block += ':';
    block += items[i].second;
    block += '\n';
  }
  return {block, names};
}

std::string canonical_request(const SignableRequest& request, bool normalize_path) {
  const auto [block, names] = canonical_headers(request.headers);
  return request.method + "\n" + canonical_uri(request.path, normalize_path) + "\n" +
         canonical_query(request.query) + "\n" + block + "\n" + names + "\n" + request.payload_hash;
}

std::string string_to_sign(std::string_view canonical_request,
                           std::chrono::system_clock::time_point time, std::string_view region,
                           std::string_view service) {
  return std::string(kAlgorithm) + "\n" + amz_date(time) + "\n" +
         credential_scope(time, region, service) + "\n" + sha256_hex(canonical_request);
}

std::array<unsigned char, 32> signing_key(std::string_view secret_key,
                                          std::chrono::system_clock::time_point time,
                                          std::string_view region, std::string_view service) {
  const std::string k = "AWS4" + std::string(secret_key);
  const auto k_date =
      hmac(std::span(reinterpret_cast<const unsigned char*>(k.data()), k.size()), short_date(time));
  const auto k_region = hmac(k_date, region);
  const auto k_service = hmac(k_region, service);
  return hmac(k_service, "aws4_request");
}

std::string signature(const std::array<unsigned char, 32>& key, std::string_view sts) {
  return io::to_hex(hmac(key, sts));
}

std::string authorization(std::string_view access_key_id, std::string_view scope,
                          std::string_view signed_headers, std::string_view sig) {
  return std::string(kAlgorithm) + " Credential=" + std::string(access_key_id) + "/" +
         std::string(scope) + ", SignedHeaders=" + std::string(signed_headers) +
         ", Signature=" + std::string(sig);
}

std::string sign(SignableRequest& request, const Credentials& credentials,
                 const SigningParams& params) {
  auto set = [&](std::string_view name, std::string value) {
    for (auto& h : request.headers) {
      if (lower(h.name) == lower(name)) {
        h.value = std::move(value);
        return;
      }
    }
    request.headers.push_back({std::string(name), std::move(value)});
  };
  set("X-Amz-Date", amz_date(params.time));
  if (params.service == "s3") set("X-Amz-Content-Sha256", request.payload_hash);
  if (!credentials.session_token.empty()) {
    set("X-Amz-Security-Token", credentials.session_token.reveal());
  }
  const std::string creq = canonical_request(request, params.normalize_path);
  const std::string sts = string_to_sign(creq, params.time, params.region, params.service);
  const auto key = signing_key(credentials.secret_access_key.reveal(), params.time, params.region,
                               params.service);
  const auto names = canonical_headers(request.headers).second;
  return authorization(credentials.access_key_id,
                       credential_scope(params.time, params.region, params.service), names,
                       signature(key, sts));
}

std::string presign(const SignableRequest& request, std::string_view scheme_host,
                    const Credentials& credentials, const SigningParams& params,
                    std::chrono::seconds expires) {
  SignableRequest r = request;
  r.payload_hash = std::string(kUnsignedPayload);
  const auto signed_names = canonical_headers(r.headers).second;
  r.query.emplace_back("X-Amz-Algorithm", std::string(kAlgorithm));
  r.query.emplace_back("X-Amz-Credential",
                       credentials.access_key_id + "/" +
                           credential_scope(params.time, params.region, params.service));
  r.query.emplace_back("X-Amz-Date", amz_date(params.time));
  r.query.emplace_back("X-Amz-Expires", std::to_string(expires.count()));
  if (!credentials.session_token.empty()) {
    r.query.emplace_back("X-Amz-Security-Token", credentials.session_token.reveal());
  }
  r.query.emplace_back("X-Amz-SignedHeaders", signed_names);
  const std::string creq = canonical_request(r, params.normalize_path);
  const std::string sts = string_to_sign(creq, params.time, params.region, params.service);
  const auto key = signing_key(credentials.secret_access_key.reveal(), params.time, params.region,
                               params.service);
  return std::string(scheme_host) + canonical_uri(r.path, params.normalize_path) + "?" +
         canonical_query(r.query) + "&X-Amz-Signature=" + signature(key, sts);
}

}  // namespace stowage::auth::sigv4
