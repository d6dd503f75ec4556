// SPDX-License-Identifier: Apache-2.0
#include "stowage/uri/locator.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace stowage::uri {
namespace {

constexpr std::array<std::pair<std::string_view, Scheme>, 8> kSchemes{{
    {"s3", Scheme::S3},
    {"minio", Scheme::S3},
    {"azure", Scheme::Azure},
    {"google", Scheme::Google},
    {"gcs", Scheme::Google},
    {"fs", Scheme::Fs},
    {"http", Scheme::Http},
    {"https", Scheme::Https},
}};

/// Links longer than this are refused before any parsing (S3 keys are at most 1024 bytes).
constexpr std::size_t kMaxLinkBytes = 8192;

/// A public URL without its query and fragment (shown as "?..."); anything else as it is.
std::string without_query(std::string_view link) {
  const auto starts = [&](std::string_view p) {
    return link.size() >= p.size() &&
           std::equal(p.begin(), p.end(), link.begin(),
                      [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); });
  };
  if (!starts("http://") && !starts("https://")) return std::string(link);
  const auto cut = link.find_first_of("?#");
  if (cut == std::string_view::npos) return std::string(link);
  return std::string(link.substr(0, cut)) + "?...";
}

Error bad_link(std::string_view link, std::string_view why) {
  const std::string bare = without_query(link);
  const std::string shown = bare.substr(0, std::min<std::size_t>(bare.size(), 200));
  return make_error(ErrorCode::InvalidArgument,
                    "invalid link '" + shown + "': " + std::string(why));
}

}  // namespace

std::string_view provider_of(Scheme scheme) noexcept {
  switch (scheme) {
    case Scheme::S3:
      return "minio";
    case Scheme::Azure:
      return "azure";
    case Scheme::Google:
      return "google";
    case Scheme::Fs:
      return "fs";
    case Scheme::Http:
    case Scheme::Https:
      return "";
  }
  return "";
}

std::string Locator::to_string() const {
  if (scheme == Scheme::Http || scheme == Scheme::Https) return url;
  return scheme_text + "://" + authority + "/" + key;
}

std::string Locator::to_display() const { return without_query(to_string()); }

Result<Locator> Locator::parse(std::string_view link) { return parse_any(link, false); }

Result<Locator> Locator::parse_prefix(std::string_view link) { return parse_any(link, true); }

Result<Locator> Locator::parse_any(std::string_view link, bool allow_empty_key) {
  if (link.size() > kMaxLinkBytes) return bad_link(link, "longer than 8192 bytes");
  for (char c : link) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return bad_link(link, "contains a control character");
    }
  }
  const std::size_t sep = link.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    return bad_link(link, "expected <provider>://<bucket>/<object> or an http(s) URL");
  }
  std::string scheme_text(link.substr(0, sep));
  std::transform(scheme_text.begin(), scheme_text.end(), scheme_text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto found = std::find_if(kSchemes.begin(), kSchemes.end(),
                                  [&](const auto& s) { return s.first == scheme_text; });
  if (found == kSchemes.end()) {
    return bad_link(link, "unknown scheme '" + scheme_text +
                              "' (use s3, minio, azure, google, gcs, fs, http or https)");
  }
  Locator out;
  out.scheme = found->second;
  out.scheme_text = std::move(scheme_text);
  out.url = std::string(link);
  const std::string_view rest = link.substr(sep + 3);
  const std::size_t slash = rest.find('/');
  out.authority = std::string(rest.substr(0, slash));
  out.key = slash == std::string_view::npos ? std::string() : std::string(rest.substr(slash + 1));
  if (out.authority.empty()) return bad_link(link, "no bucket or host after '://'");
  if (out.scheme != Scheme::Http && out.scheme != Scheme::Https && out.key.empty() &&
      !allow_empty_key) {
    return bad_link(link, "no object after the bucket");
  }
  return out;
}

}  // namespace stowage::uri
