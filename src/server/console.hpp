// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/// The web console's static files (web/, embedded at build time by cmake/embed_web.cmake):
/// `GET /` is web/index.html and `GET /console/<name>` the other files. They carry no data: the
/// page signs in with an API token and calls the API with it, like any client.
namespace stowage::server {

/// One embedded file of web/.
struct ConsoleAsset {
  std::string_view name;          ///< relative to web/: "index.html", "app.js"
  std::string_view content_type;  ///< from the extension
  std::string_view bytes;
  std::string_view etag;  ///< quoted, strong: the start of the file's SHA-256
};

/// Every embedded file (generated code).
std::span<const ConsoleAsset> console_assets();

/// An answer to a GET or HEAD of the console.
struct ConsoleReply {
  int status = 200;
  std::string_view body;  ///< empty for 304 (and HEAD is the caller's business)
  std::vector<std::pair<std::string, std::string>> headers;
};

/// The Content-Security-Policy of every console answer: scripts, styles and connections to this
/// origin only, no inline script or style, images and media from this origin and blob: URLs (the
/// item view), no framing, no plugins, no form posts elsewhere.
extern const std::string_view kConsoleContentSecurityPolicy;

/// True for the paths the console answers: "/" and "/console/...".
bool is_console_path(std::string_view path);

/// The answer for `path` (a console path): the file with its Content-Type, ETag, a
/// Cache-Control that revalidates, the CSP and the other hardening headers; 304 when
/// `if_none_match` names its ETag; 404 (a JSON error) for a file that is not there.
ConsoleReply console_reply(std::string_view path, std::string_view if_none_match);

}  // namespace stowage::server
