#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The catalog at scale, SQLite beside PostgreSQL in the same run: one dataset filled with N items
# by one SQL bulk insert (10 k and 1 M by default), then p50/p99 of the catalog calls behind
# images.list page 1 and its last page (500 per page, as the SDK asks), images.info and
# images.bulk.add of 50. PostgreSQL is the tests' throw-away server (scripts/test-servers).
#
#   bench/catalog.sh [ITEMS...]        e.g. bench/catalog.sh 10000 1000000
#   CATALOG_BENCH_BIN=build/stowage_catalog_bench ROUNDS=50 bench/catalog.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(10000 1000000)
rounds=${ROUNDS:-50}
BENCH_BIN=${CATALOG_BENCH_BIN:-$repo/build-bench/stowage_catalog_bench}
if [[ ! -x $BENCH_BIN ]]; then
  log "building stowage_catalog_bench into build-bench"
  (cd "$repo" && flock /tmp/stowage-build.lock bash -c \
     'cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTOWAGE_BUILD_TESTS=OFF \
        >/dev/null && ninja -C build-bench -j2 stowage_catalog_bench') >&2
fi

start_workdir catalog
stop_servers() { "$repo/scripts/test-servers/postgres.sh" stop "$work/pg" >/dev/null 2>&1 || true; }
"$repo/scripts/test-servers/postgres.sh" start "$work/pg" >&2
# shellcheck disable=SC1091
server=$(sed -n 's/^POSTGRES_URL=//p' "$work/pg/postgres.env")
psql_bin=/usr/lib/postgresql/15/bin/psql

start_report -catalog
lines=()
for n in "${sizes[@]}"; do
  log "sqlite, $n items"
  mapfile -t out < <("$BENCH_BIN" sqlite "sqlite:$work/bench-$n.db" "$n" "$rounds")
  lines+=("${out[@]}")
  log "postgres, $n items"
  "$psql_bin" -q "$server/postgres" -c "CREATE DATABASE bench_$n" >/dev/null
  mapfile -t out < <("$BENCH_BIN" postgres "$server/bench_$n" "$n" "$rounds")
  lines+=("${out[@]}")
  rm -f "$work/bench-$n.db"*
done

{
  echo "# catalog at scale ($(date -u +%Y-%m-%dT%H:%MZ), load ${load_start}, $rounds rounds)"
  echo
  echo "| engine | items | call | p50 ms | p99 ms |"
  echo "| --- | --- | --- | --- | --- |"
  for l in "${lines[@]}"; do
    read -r engine items call p50 p99 <<<"$l"
    echo "| $engine | $items | $call | $p50 | $p99 |"
  done
  if [[ ${#sizes[@]} -gt 1 ]]; then
    # The issue's rule: a call at the largest size costs under 2x what it costs at the smallest.
    echo
    echo "| engine | call | p50 ${sizes[-1]} / ${sizes[0]} |"
    echo "| --- | --- | --- |"
    printf '%s\n' "${lines[@]}" | awk -v small="${sizes[0]}" -v big="${sizes[-1]}" '
      $2 == small { base[$1 " " $3] = $4 }
      $2 == big { top[$1 " " $3] = $4; order[++n] = $1 " " $3 }
      END { for (i = 1; i <= n; i++) { k = order[i]; split(k, f, " ")
              printf "| %s | %s | %.2f |\n", f[1], f[2], top[k] / (base[k] > 0 ? base[k] : 0.001) } }'
  fi
} | tee "$report"
log "report: $report"
