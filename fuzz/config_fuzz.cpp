// SPDX-License-Identifier: Apache-2.0
// The .env text parser, sizes and durations, and remote_links.yml (with no environment, so
// env: secrets are refused; file: secrets name paths the input chooses, which must be read
// boundedly or refused).
#include "fuzz.hpp"
#include "stowage/config/config.hpp"
#include "stowage/links/remote_links.hpp"

STOWAGE_FUZZ_TARGET(config) {
  const std::string_view input = stowage::fuzz::text(data, size);
  if (auto env = stowage::config::parse_env_text(input)) {
    for (const auto& [key, value] : *env) STOWAGE_FUZZ_CHECK(!key.empty());
  }
  (void)stowage::config::parse_size(input);
  (void)stowage::config::parse_duration(input);
  if (auto links = stowage::links::RemoteLinks::parse(input, "remote_links.yml", {})) {
    for (const auto& c : links->connections) STOWAGE_FUZZ_CHECK(!c.name.empty());
  }
  return 0;
}
