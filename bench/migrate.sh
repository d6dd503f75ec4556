#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `stowage migrate storage` vs `rclone copy` of the same tree to the same server (see
# bench/README.md, "migrate.sh"). For each test server in BENCH_PROVIDERS (radosgw = S3,
# azurite = Azure Blob):
#   1. A local DATA_PATH whose two bucket folders hold BENCH_SMALL small files (50-150 KiB) and
#      BENCH_LARGE files of BENCH_LARGE_MIB MiB (default ~1.7 GB in all).
#   2. `stowage migrate storage --to <server .env> --concurrency C` (copy, verify by SHA-256
#      read-back, journal), then the same again (everything skipped).
#   3. The target buckets emptied, then `rclone copy` of both folders with --transfers C
#      --checkers C, then the same again (everything skipped by size and modification time).
# Each run is measured with /usr/bin/time -v: wall time, user+sys CPU time, peak RSS.
# Everything listens on 127.0.0.1 only; everything started here is stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

BENCH_PROVIDERS=${BENCH_PROVIDERS:-"radosgw"}
BENCH_SMALL=${BENCH_SMALL:-1000}
BENCH_LARGE=${BENCH_LARGE:-4}
BENCH_LARGE_MIB=${BENCH_LARGE_MIB:-400}
BENCH_CONCURRENCY=${BENCH_CONCURRENCY:-8}

require_tools rclone python3 awk /usr/bin/time
ensure_stowage

start_workdir migrate
server_name= state=
stop_servers() {
  [[ -n $server_name ]] && "$repo/scripts/test-servers/$server_name.sh" stop "$state" >/dev/null 2>&1
  return 0
}
start_report -migrate

# ---------------------------------------------------------------------------------------------
# The tree: DATA_PATH/storage/<prefix>-{public,private}/..., random bytes (incompressible).
prefix=stowage-test
data=$work/data
log "making the tree in $data: $BENCH_SMALL small files, $BENCH_LARGE x $BENCH_LARGE_MIB MiB"
python3 - "$data/storage" "$prefix" "$BENCH_SMALL" "$BENCH_LARGE" "$BENCH_LARGE_MIB" <<'PY'
import os, random, sys
root, prefix, small, large, large_mib = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
rng = random.Random(8)
def put(bucket, key, n):
    path = os.path.join(root, f"{prefix}-{bucket}", key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        while n > 0:
            chunk = min(n, 1 << 22)
            f.write(os.urandom(chunk))
            n -= chunk
for i in range(small):
    put("public" if i % 4 else "private", f"{i % 16:02x}/{i:06d}.jpg", rng.randint(50 << 10, 150 << 10))
for i in range(large):
    put("private", f"videos/{i}.mp4", large_mib << 20)
PY
tree_bytes=$(du -sb --apparent-size "$data/storage" | awk '{ print $1 }')
tree_objects=$(find "$data/storage" -type f | wc -l)
printf 'DATA_PATH=%s\nSTORAGE_PROVIDER=http\nSTORAGE_BUCKET_PREFIX=%s\n' "$data" "$prefix" >"$work/source.env"

# measure NAME CMD...: runs CMD under /usr/bin/time -v; sets m_wall m_cpu m_rss_kib.
measure() {
  local name=$1
  shift
  /usr/bin/time -v -o "$work/time-$name.txt" "$@" >"$work/out-$name.txt" 2>"$work/err-$name.txt" ||
    { cat "$work/err-$name.txt" >&2; die "$name failed"; }
  m_wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0
    for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$work/time-$name.txt")
  m_cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' \
    "$work/time-$name.txt")
  m_rss_kib=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time-$name.txt")
}

run_provider() {
  local name=$1
  server_name=$name state=$work/state-$name
  log "== $name: starting the test server"
  "$repo/scripts/test-servers/$name.sh" start "$state" >/dev/null
  local env=$state/$name.env
  # Read, not exported: Stowage gives the environment precedence over --env files, so exported
  # STORAGE_* would make the source look like the target.
  # shellcheck disable=SC1090
  . "$env"
  local remote
  case $name in
    radosgw)
      export RCLONE_CONFIG_T_TYPE=s3 RCLONE_CONFIG_T_PROVIDER=Ceph RCLONE_CONFIG_T_ENV_AUTH=false \
        RCLONE_CONFIG_T_ACCESS_KEY_ID=$STORAGE_ACCESS_KEY RCLONE_CONFIG_T_SECRET_ACCESS_KEY=$STORAGE_SECRET_KEY \
        RCLONE_CONFIG_T_ENDPOINT=$STORAGE_ENDPOINT:$STORAGE_PORT RCLONE_CONFIG_T_REGION=us-east-1
      remote="s3 (provider Ceph) at $STORAGE_ENDPOINT:$STORAGE_PORT" ;;
    azurite)
      export RCLONE_CONFIG_T_TYPE=azureblob RCLONE_CONFIG_T_ACCOUNT=$STORAGE_ACCESS_KEY \
        RCLONE_CONFIG_T_KEY=$STORAGE_SECRET_KEY RCLONE_CONFIG_T_ENDPOINT=$STORAGE_ENDPOINT \
        RCLONE_CONFIG_T_USE_EMULATOR=true
      remote="azureblob (emulator) at $STORAGE_ENDPOINT" ;;
    *) die "unknown provider $name" ;;
  esac
  # rclone's S3 client loads AWS_CA_BUNDLE even for plain http, and fails on its transport.
  unset AWS_CA_BUNDLE
  export RCLONE_CONFIG=$work/rclone.conf
  : >"$RCLONE_CONFIG"
  local c=$BENCH_CONCURRENCY

  log "== $name: stowage migrate storage"
  rm -rf "$data/migrations"
  cmd "stowage --env source.env migrate storage --to $name.env --concurrency $c --json"
  measure "stowage-$name" "$STOWAGE_BIN" --env "$work/source.env" migrate storage --to "$env" \
    --concurrency "$c" --json
  local s_wall=$m_wall s_cpu=$m_cpu s_rss=$m_rss_kib
  local copied
  copied=$(json 'd["copied"]' <"$work/out-stowage-$name.txt")
  [[ $copied == "$tree_objects" ]] || notes+=("$name: stowage copied $copied of $tree_objects objects")
  measure "stowage-rerun-$name" "$STOWAGE_BIN" --env "$work/source.env" migrate storage --to "$env" \
    --concurrency "$c" --json
  local sr_wall=$m_wall sr_cpu=$m_cpu sr_rss=$m_rss_kib
  notes+=("$name: stowage rerun skipped $(json 'd["skipped"]' <"$work/out-stowage-rerun-$name.txt") objects")

  log "== $name: emptying the target buckets"
  rclone delete "T:$prefix-public" && rclone delete "T:$prefix-private"

  log "== $name: rclone copy"
  local rc=(--transfers "$c" --checkers "$c")
  cmd "rclone copy DATA_PATH/storage/$prefix-public T:$prefix-public --transfers $c --checkers $c   # and -private; T = $remote"
  measure "rclone-$name" bash -c 'rclone copy "$1/$2-public" "T:$2-public" "${@:3}" &&
    rclone copy "$1/$2-private" "T:$2-private" "${@:3}"' _ "$data/storage" "$prefix" "${rc[@]}"
  local r_wall=$m_wall r_cpu=$m_cpu r_rss=$m_rss_kib
  measure "rclone-rerun-$name" bash -c 'rclone copy "$1/$2-public" "T:$2-public" "${@:3}" &&
    rclone copy "$1/$2-private" "T:$2-private" "${@:3}"' _ "$data/storage" "$prefix" "${rc[@]}"
  local rr_wall=$m_wall rr_cpu=$m_cpu rr_rss=$m_rss_kib

  row "$name" "copy ($tree_objects objects)" "$s_wall s, $s_cpu s CPU, $(mib "$s_rss") MiB" \
    "$r_wall s, $r_cpu s CPU, $(mib "$r_rss") MiB" "$(ratio "$r_wall" "$s_wall")" "$(mbps "$tree_bytes" "$s_wall") / $(mbps "$tree_bytes" "$r_wall")"
  row "$name" "rerun (all already there)" "$sr_wall s, $sr_cpu s CPU, $(mib "$sr_rss") MiB" \
    "$rr_wall s, $rr_cpu s CPU, $(mib "$rr_rss") MiB" "$(ratio "$rr_wall" "$sr_wall")" "-"
  "$repo/scripts/test-servers/$name.sh" stop "$state" >/dev/null 2>&1 || true
  server_name=
}

for p in $BENCH_PROVIDERS; do
  run_provider "$p"
done

{
  echo "# stowage migrate storage vs rclone copy $stamp"
  echo
  echo "- Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)," \
    "$(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)," \
    "load average at start $load_start / at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- Versions: $("$STOWAGE_BIN" --version 2>&1 | head -1) (git $(git -C "$repo" rev-parse --short HEAD)$(
    git -C "$repo" diff --quiet HEAD -- src 2>/dev/null || echo ", src/ has uncommitted changes")), $(rclone version | head -1)"
  echo "- Tree: $tree_objects objects, $tree_bytes bytes ($BENCH_SMALL files of 50-150 KiB, $BENCH_LARGE of $BENCH_LARGE_MIB MiB)," \
    "random bytes. Concurrency $BENCH_CONCURRENCY on both sides (--concurrency / --transfers and --checkers)."
  echo "- Stowage reads every copy back and compares SHA-256 (twice the traffic of a plain copy) and journals it;" \
    "rclone checks the MD5 the server returns for single-part uploads and only the size for multipart ones." \
    "The reruns: Stowage lists both sides and trusts its journal after a stat per object; rclone compares size and modification time."
  echo "- Cells: wall time, user+sys CPU time, peak RSS (/usr/bin/time -v). Ratio = rclone wall / stowage wall" \
    "(> 1: Stowage faster). MB/s column: tree bytes / wall time, stowage / rclone."
  echo
  echo "| Server | Case | stowage migrate storage | rclone copy | Ratio | MiB/s |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  report_tail
} >"$report"
show_report
