#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's second command (and what CI runs): install, build, run every test with ctest.
# Tests start the servers they need themselves on 127.0.0.1 and stop them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
if ! ctest --test-dir build --output-on-failure --timeout 600 -j 2; then
  # The failures again, last: a CI log is often read from its end.
  scripts/ctest-failures.sh build
  exit 8
fi
# Every parser that sees untrusted bytes, fuzzed for a bounded time (FUZZ_SECONDS per target)
# under ASan and UBSan; the seeds and past crashes also replay in ctest above.
scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
