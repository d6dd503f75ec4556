#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Small downloads through one Stowage server and through two, on one PostgreSQL catalog and one
# radosgw bucket pair (the scale-out set-up of issue 14), on this machine.
#
#   bench/cluster.sh
#
# 200 images of ~10 KiB are uploaded through server A; both servers read them once (their own
# storage caches fill), then wrk POSTs images.download round-robin over the 200 ids:
#   1 server:  wrk -t2 -c50 against A
#   2 servers: wrk -t1 -c25 against A and, at the same time, wrk -t1 -c25 against B (summed)
# Each is run BENCH_RUNS times alternately, median reported, with the load average. Everything
# shares the machine's cores (wrk, both servers, PostgreSQL, radosgw): the report says what each
# process used (CPU seconds from /proc) so the limit is visible.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

BENCH_DURATION=${BENCH_DURATION:-10}
BENCH_WARMUP=${BENCH_WARMUP:-2}
BENCH_RUNS=${BENCH_RUNS:-3}
require_tools wrk curl python3 awk vips
ensure_stowage
start_workdir cluster

pids=()
stop_servers() {
  local p
  for p in "${pids[@]}"; do stop_pid "$p"; done
  "$repo/scripts/test-servers/radosgw.sh" stop "$work/rgw" >/dev/null 2>&1 || true
  "$repo/scripts/test-servers/postgres.sh" stop "$work/pg" >/dev/null 2>&1 || true
}
log "starting PostgreSQL and radosgw"
"$repo/scripts/test-servers/postgres.sh" start "$work/pg" >&2
"$repo/scripts/test-servers/radosgw.sh" start "$work/rgw" >&2
database_url=$(sed -n 's/^DATABASE_URL=//p' "$work/pg/postgres.env")
storage=$(grep '^STORAGE_' "$work/rgw/radosgw.env")

start_report -cluster
# start_node NAME -> sets node_port; the node's pid is appended to pids
start_node() {
  local dir=$work/$1
  node_port=$(free_port)
  mkdir -p "$dir"
  {
    echo "$storage"
    echo "DATABASE_URL=$database_url"
    echo "DATA_PATH=$dir/data"
    echo "STOWAGE_LISTEN=127.0.0.1:$node_port"
  } >"$dir/.env"
  (cd "$dir" && exec "$STOWAGE_BIN" serve) >"$dir/serve.log" 2>&1 &
  pids+=($!)
  wait_port "$node_port" 30 || { cat "$dir/serve.log" >&2; die "$1 did not listen"; }
}
start_node a
port_a=$node_port pid_a=${pids[-1]}
token=$(cat "$work/a/data/admin-token")
start_node b
port_b=$node_port pid_b=${pids[-1]}
api=http://127.0.0.1:$port_a/public/api/v3

team=$(post teams.list '{}' | json 'd["entities"][0]["id"]')
ws=$(post workspaces.list "{\"teamId\":$team}" | json 'd["entities"][0]["id"]')
proj=$(post projects.add "{\"workspaceId\":$ws,\"name\":\"bench-$stamp\",\"type\":\"images\"}" | json 'd["id"]')
ds=$(post datasets.add "{\"projectId\":$proj,\"name\":\"d\"}" | json 'd["id"]')

log "uploading 200 images through A"
ids=()
for i in $(seq 1 200); do
  vips gaussnoise "$work/n.v" 96 96 --seed "$i" >/dev/null
  vips jpegsave "$work/n.v" "$work/img.jpg" --Q 90
  hash=$(curl -sS --fail-with-body -XPOST -H "x-api-key: $token" -F "0-file=@$work/img.jpg;filename=0" \
    "$api/images.bulk.upload" | json 'd[0]["hash"]')
  ids+=("$(post images.bulk.add "{\"datasetId\":$ds,\"images\":[{\"title\":\"i$i.jpg\",\"hash\":\"$hash\"}]}" |
    json 'd[0]["id"]')")
done
small_bytes=$(stat -c %s "$work/img.jpg")
rm -f "$work/n.v"

# Round-robin over the ids, the same script for every wrk.
ids_csv=$(IFS=,; echo "${ids[*]}")
{
  echo 'wrk.method = "POST"'
  echo 'wrk.headers["Content-Type"] = "application/json"'
  echo "wrk.headers[\"x-api-key\"] = \"$token\""
  echo "local ids = {$ids_csv}"
  echo 'local i = 0'
  echo 'request = function() i = i % #ids + 1; return wrk.format(nil, nil, nil, "{\"id\":" .. ids[i] .. "}") end'
  wrk_done_lua
} >"$work/get.lua"

# Both nodes read every image once: the bytes come from radosgw into each node's cache.
for port in "$port_a" "$port_b"; do
  for id in "${ids[@]}"; do
    curl -sS --fail -o /dev/null -XPOST -H "x-api-key: $token" -H 'Content-Type: application/json' \
      -d "{\"id\":$id}" "http://127.0.0.1:$port/public/api/v3/images.download"
  done
done

cpu_secs() {  # pid: user+system seconds so far
  awk '{ printf "%.2f", ($14 + $15) / 100 }' "/proc/$1/stat"
}
# wrk_rps OUTPUT -> sets rps (req/s from the done() hook's totals); non-2xx/errors go to the notes
wrk_rps() {
  local line requests duration non2xx errors
  line=$(grep '^BENCH ' <<<"$1")
  requests=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$line")
  duration=$(sed 's/.*duration_us=\([0-9]*\).*/\1/' <<<"$line")
  non2xx=$(sed 's/.*non2xx=\([0-9]*\).*/\1/' <<<"$line")
  errors=$(sed 's/.*errors=\([0-9]*\).*/\1/' <<<"$line")
  [[ $non2xx -eq 0 && $errors -eq 0 ]] || notes+=("a wrk run had $non2xx non-2xx, $errors errors")
  rps=$(awk -v r="$requests" -v d="$duration" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
}
url_a=http://127.0.0.1:$port_a/public/api/v3/images.download
url_b=http://127.0.0.1:$port_b/public/api/v3/images.download
one=() two=() cpu_one=() cpu_two=()
for run in $(seq 1 "$BENCH_RUNS"); do
  log "run $run: one server"
  wrk -t2 -c50 -d"${BENCH_WARMUP}s" -s "$work/get.lua" "$url_a" >/dev/null 2>&1 || true
  c0=$(cpu_secs "$pid_a")
  out=$(wrk -t2 -c50 -d"${BENCH_DURATION}s" --timeout 30s -s "$work/get.lua" "$url_a")
  wrk_rps "$out"
  one+=("$rps")
  cpu_one+=("$(awk -v a="$c0" -v b="$(cpu_secs "$pid_a")" -v d="$BENCH_DURATION" 'BEGIN { printf "%.2f", (b - a) / d }')")

  log "run $run: two servers"
  wrk -t1 -c25 -d"${BENCH_WARMUP}s" -s "$work/get.lua" "$url_b" >/dev/null 2>&1 || true
  a0=$(cpu_secs "$pid_a") b0=$(cpu_secs "$pid_b")
  wrk -t1 -c25 -d"${BENCH_DURATION}s" --timeout 30s -s "$work/get.lua" "$url_a" >"$work/wa.txt" &
  wa=$!
  wrk -t1 -c25 -d"${BENCH_DURATION}s" --timeout 30s -s "$work/get.lua" "$url_b" >"$work/wb.txt"
  wait "$wa"
  wrk_rps "$(cat "$work/wa.txt")"
  ra=$rps
  wrk_rps "$(cat "$work/wb.txt")"
  two+=("$((ra + rps))")
  cpu_two+=("$(awk -v a0="$a0" -v b0="$b0" -v a="$(cpu_secs "$pid_a")" -v b="$(cpu_secs "$pid_b")" \
    -v d="$BENCH_DURATION" 'BEGIN { printf "%.2f", (a - a0 + b - b0) / d }')")
done
m_one=$(echo "${one[*]}" | median)
m_two=$(echo "${two[*]}" | median)
row "1 server (A), wrk -t2 -c50" "$m_one" "${one[*]}" "$(echo "${cpu_one[*]}" | median)"
row "2 servers (A + B), wrk -t1 -c25 each" "$m_two" "${two[*]}" "$(echo "${cpu_two[*]}" | median)"
cmd "wrk -t2 -c50 -d${BENCH_DURATION}s -s get.lua $url_a"
cmd "wrk -t1 -c25 -d${BENCH_DURATION}s -s get.lua $url_a & wrk -t1 -c25 -d${BENCH_DURATION}s -s get.lua $url_b"
notes+=("ratio 2 servers / 1 server: $(ratio "$m_two" "$m_one")")
notes+=("$(nproc) cores shared by wrk, the servers, PostgreSQL and radosgw; server CPU is in cores busy (CPU s / wall s)")
{
  echo "# 1 vs 2 Stowage servers over one PostgreSQL and one radosgw ($stamp)"
  echo
  echo "Small downloads (images.download of ${small_bytes}-byte JPEGs, 200 ids round-robin, served from each node's storage cache)."
  echo "Load average at start: $load_start; at end: $(cut -d' ' -f1-3 /proc/loadavg). Median of $BENCH_RUNS runs of ${BENCH_DURATION}s."
  echo
  echo "| set-up | req/s (median) | runs | server CPU (cores) |"
  echo "| --- | --- | --- | --- |"
  printf '%s\n' "${rows[@]}"
  report_tail
} | tee "$report"
log "report: $report"
