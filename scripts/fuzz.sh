#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets of fuzz/ with clang, ASan and UBSan (in ./build-fuzz) and runs
# each for a bounded time:  scripts/fuzz.sh [SECONDS] [TARGET...]   (default 30 s, every target).
# New inputs go to a scratch corpus, never into the repository; a crash is copied to
# build-fuzz/crashes/<target>/ and the script exits 1, naming it. To keep a crash as a regression
# test, put the file in fuzz/regressions/<target>/: the ordinary build's ctest replays it.
# Prints one line per target: executions, exec/s, new corpus entries, crashes.
# FUZZ_SEED (default 1) makes a run repeatable, as the test command wants; FUZZ_SEED=0 lets
# libFuzzer pick a new seed each time, for longer hunts.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
export CCACHE_BASEDIR="$PWD"
CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTOWAGE_FUZZ=ON -DSTOWAGE_BUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n '/^set(STOWAGE_FUZZ_TARGETS/,/)/p' fuzz/CMakeLists.txt |
    tr ' ()' '\n\n\n' | grep -v -e '^set$' -e '^STOWAGE_FUZZ_TARGETS$' -e '^$')
fi
scratch=$(mktemp -d "${TMPDIR:-/tmp}/stowage-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# Leaks are reported at exit by LeakSanitizer as findings too; FFmpeg and libvips keep
# process-wide caches that are not leaks.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "build-fuzz/crashes/$t"
  log=$scratch/$t.log
  seeds=(fuzz/corpus/"$t")
  [ -d "fuzz/regressions/$t" ] && seeds+=("fuzz/regressions/$t")
  status=0
  build-fuzz/fuzz/fuzz_"$t" "$scratch/$t" "${seeds[@]}" -max_total_time="$seconds" -timeout=20 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -seed="${FUZZ_SEED:-1}" \
    -artifact_prefix="build-fuzz/crashes/$t/" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  added=$(find "$scratch/$t" -type f | wc -l)
  crashes=$(find "build-fuzz/crashes/$t" -type f -newer "$log" 2>/dev/null | wc -l)
  if [ "$status" -ne 0 ]; then
    failed=$((failed + 1))
    crashes=$((crashes > 0 ? crashes : 1))
    echo "fuzz $t: FAILED (exit $status); the log's end:" >&2
    tail -30 "$log" >&2
  fi
  printf 'fuzz %-14s %10s runs %8s exec/s %5s new inputs %3s crashes\n' "$t" "${runs:-0}" \
    "${speed:-0}" "$added" "$crashes"
done
echo "fuzz: $((${#targets[@]} - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
