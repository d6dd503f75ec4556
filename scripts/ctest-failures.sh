#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prints what each test of ctest's last run that failed printed (its last 80 lines), from the
# build's Testing/Temporary logs: scripts/test.sh calls it after a failed run, so that the
# reasons come last in the log instead of hundreds of lines up among passing tests.
#
#   scripts/ctest-failures.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
failed=$build/Testing/Temporary/LastTestsFailed.log
log=$build/Testing/Temporary/LastTest.log
[[ -f $failed && -f $log ]] || { echo "no failed tests recorded under $build"; exit 0; }
echo
echo "==================== failed tests, what they printed ===================="
while IFS= read -r line; do
  name=${line#*:}
  echo "---- $name"
  # The test's block: from its "Testing:" line to its "end time" line.
  awk -v name="$name" '
    BEGIN { start = "Testing: " name; end = "\"" name "\" end time" }
    !on && length($0) >= length(start) && substr($0, length($0) - length(start) + 1) == start {
      on = 1
    }
    on { print }
    on && index($0, end) == 1 { exit }
  ' "$log" | tail -n 80
done <"$failed"
