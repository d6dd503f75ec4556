// SPDX-License-Identifier: Apache-2.0
#include "server/console.hpp"

#include "server/api.hpp"

namespace stowage::server {
namespace {

constexpr std::string_view kConsolePrefix = "/console/";

/// True when an If-None-Match list (`"a", W/"b"` or `*`) names `etag`. Weak comparison, as RFC
/// 9110 13.1.2 asks for If-None-Match.
bool matches(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    const auto comma = if_none_match.find(',');
    std::string_view tag = if_none_match.substr(0, comma);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == "*" || tag == etag) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

const std::string_view kConsoleContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; manifest-src 'self'; "
    "worker-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

bool is_console_path(std::string_view path) {
  return path == "/" || path.starts_with(kConsolePrefix);
}

ConsoleReply console_reply(std::string_view path, std::string_view if_none_match) {
  std::string_view name =
      path == "/" ? std::string_view("index.html") : path.substr(kConsolePrefix.size());
  ConsoleReply reply;
  reply.headers = {{"Content-Security-Policy", std::string(kConsoleContentSecurityPolicy)},
                   {"X-Content-Type-Options", "nosniff"},
                   {"Referrer-Policy", "no-referrer"},
                   {"X-Frame-Options", "DENY"}};
  // index.html is reached as "/", never as /console/index.html (one URL per page).
  const ConsoleAsset* found = nullptr;
  if (name != "index.html" || path == "/") {
    for (const auto& asset : console_assets()) {
      if (asset.name == name) found = &asset;
    }
  }
  if (found == nullptr) {
    static const std::string kNotFound =
        Api::error_json("NotFound", "the console has no file " + std::string("at this path"));
    reply.status = 404;
    reply.body = kNotFound;
    reply.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
    reply.headers.emplace_back("Cache-Control", "no-store");
    return reply;
  }
  // The names are not fingerprinted, so every use revalidates; the ETag makes that a 304.
  reply.headers.emplace_back("Cache-Control", "no-cache");
  reply.headers.emplace_back("ETag", std::string(found->etag));
  if (matches(if_none_match, found->etag)) {
    reply.status = 304;
    return reply;
  }
  // The media worker (web/sw.js) controls the whole console, whose page is "/".
  if (found->name == "sw.js") reply.headers.emplace_back("Service-Worker-Allowed", "/");
  reply.body = found->bytes;
  reply.headers.emplace_back("Content-Type", std::string(found->content_type));
  return reply;
}

}  // namespace stowage::server
