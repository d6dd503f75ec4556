// SPDX-License-Identifier: Apache-2.0
// Preview URLs (/previews/<signature>/<options>/plain/<source>): what parses has a source that
// is a path, and options within the renderer's limits.
#include "fuzz.hpp"
#include "stowage/preview/options.hpp"

STOWAGE_FUZZ_TARGET(preview_path) {
  auto parsed = stowage::preview::parse_preview_path(stowage::fuzz::text(data, size));
  if (!parsed) return 0;
  STOWAGE_FUZZ_CHECK(!parsed->source.empty() && parsed->source.front() == '/');
  (void)parsed->options.canonical();
  return 0;
}
