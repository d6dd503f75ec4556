// SPDX-License-Identifier: Apache-2.0
#pragma once

// One fuzz target per parser that sees untrusted bytes. Each target's source defines its entry
// with STOWAGE_FUZZ_TARGET(name) { ... }. Built with clang and -DSTOWAGE_FUZZ=ON, the entry is
// libFuzzer's LLVMFuzzerTestOneInput and every target is its own binary (scripts/fuzz.sh runs
// them). In the ordinary build the same sources go into one replay binary that runs every input
// of fuzz/corpus/<name>/ and fuzz/regressions/<name>/ through its target, so that the seeds and
// every crash ever found stay tests under ctest, with g++, without a fuzzer.
//
// A target returns 0; it reports a bug by crashing: an abort from STOWAGE_FUZZ_CHECK (a broken
// invariant), or a sanitizer report (in the fuzzing build).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

namespace stowage::fuzz {

using Entry = int (*)(const std::uint8_t* data, std::size_t size);
/// Makes `entry` the target `name` of the replay binary; returns true.
bool register_target(const char* name, Entry entry);

/// The input as text.
inline std::string_view text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}
inline std::span<const std::byte> bytes(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

}  // namespace stowage::fuzz

/// Aborts (a finding) when an invariant of the code under test does not hold.
#define STOWAGE_FUZZ_CHECK(condition)                                                   \
  do {                                                                                  \
    if (!(condition)) {                                                                 \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

#ifdef STOWAGE_FUZZ_REPLAY
#define STOWAGE_FUZZ_TARGET(name)                                                      \
  static int stowage_fuzz_##name(const std::uint8_t* data, std::size_t size);          \
  [[maybe_unused]] static const bool stowage_fuzz_registered_##name =                  \
      ::stowage::fuzz::register_target(#name, &stowage_fuzz_##name);                   \
  static int stowage_fuzz_##name(const std::uint8_t* data, std::size_t size)
#else
#define STOWAGE_FUZZ_TARGET(name) \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
#endif
