// SPDX-License-Identifier: Apache-2.0
// Links as users write them: parsing never crashes, what parses prints back to itself, and the
// display form of a public URL never carries its query (a presigned signature, a SAS).
#include "fuzz.hpp"
#include "stowage/uri/locator.hpp"

STOWAGE_FUZZ_TARGET(locator) {
  using stowage::uri::Locator;
  const std::string_view link = stowage::fuzz::text(data, size);
  for (bool prefix : {false, true}) {
    auto parsed = prefix ? Locator::parse_prefix(link) : Locator::parse(link);
    if (!parsed) continue;
    const std::string printed = parsed->to_string();
    auto again = prefix ? Locator::parse_prefix(printed) : Locator::parse(printed);
    STOWAGE_FUZZ_CHECK(again);
    STOWAGE_FUZZ_CHECK(again->scheme == parsed->scheme);
    STOWAGE_FUZZ_CHECK(again->authority == parsed->authority);
    STOWAGE_FUZZ_CHECK(again->key == parsed->key);
    STOWAGE_FUZZ_CHECK(again->to_string() == printed);
    // Public URLs only: an fs:// or cloud key may hold '?' as any other byte.
    if (parsed->scheme == stowage::uri::Scheme::Http || parsed->scheme == stowage::uri::Scheme::Https) {
      const auto q = parsed->url.find('?');
      if (q != std::string::npos && parsed->url.size() - q > 12) {
        const std::string query = parsed->url.substr(q + 1);
        if (parsed->url.substr(0, q).find(query) == std::string::npos) {
          STOWAGE_FUZZ_CHECK(parsed->to_display().find(query) == std::string::npos);
        }
      }
    }
  }
  return 0;
}
