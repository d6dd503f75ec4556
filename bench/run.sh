#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Stowage vs named peers, side by side in one run (see bench/README.md):
#   1. GET ~10 KiB object        stowage images.download (wrk, POST+JSON)  vs nginx static GET
#   2. GET 100 MiB object        same, fewer connections, GB/s
#   3. Upload 1 GiB image        curl -F to images.bulk.upload             vs dd conv=fsync
#   4. Peak RSS of stowage while 1 GiB and 5 GiB images stream up and down (BENCH_HUGE=0 skips 5 GiB)
# Everything listens on 127.0.0.1 only; everything started here is stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

BENCH_HUGE=${BENCH_HUGE:-1}               # 0 skips the 5 GiB case
BENCH_DURATION=${BENCH_DURATION:-10}      # seconds per wrk run
BENCH_WARMUP=${BENCH_WARMUP:-2}           # seconds of untimed wrk before each timed run
BENCH_SMALL_CONNS=${BENCH_SMALL_CONNS:-32}
BENCH_LARGE_CONNS=${BENCH_LARGE_CONNS:-4}
BENCH_UPLOAD_RUNS=${BENCH_UPLOAD_RUNS:-3}  # case 3: runs of each side, the median is reported
BENCH_NGINX_WORKERS=${BENCH_NGINX_WORKERS:-auto}

# Image sides: 3 bands of uint8, uncompressed TIFF => side*side*3 bytes (+ a few KiB of header).
side_100m=5920    # 105 MB  ~ 100 MiB
side_1g=18919     # 1.07 GB ~ 1 GiB
side_5g=42304     # 5.37 GB ~ 5 GiB (BigTIFF)

require_tools wrk nginx vips curl dd python3 awk
ensure_stowage

# ---------------------------------------------------------------------------------------------
# Scratch dir, cleanup
start_workdir bench
stowage_pid= nginx_pid= sampler_pid=
stop_servers() {
  [[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null && wait "$sampler_pid" 2>/dev/null
  stop_pid "$nginx_pid"
  stop_pid "$stowage_pid"
}

# ---------------------------------------------------------------------------------------------
# Report helpers
start_report 
commands=()    # exact commands, printed in the report
rows=()        # table rows
notes=()

# ---------------------------------------------------------------------------------------------
# Stowage
sport=$(free_port)
mkdir -p "$work/stowage"
cat >"$work/stowage/.env" <<EOF
DATA_PATH=$work/stowage/data
STOWAGE_LISTEN=127.0.0.1:$sport
EOF
log "starting stowage on 127.0.0.1:$sport"
# Builds before 4562889 died of SIGPIPE (exit 141) when a client hung up mid-sendfile(2).
# BENCH_SIGPIPE=ignore starts it with SIGPIPE ignored (SIG_IGN survives exec) to measure such a build.
if [[ ${BENCH_SIGPIPE:-default} == ignore ]]; then
  (cd "$work/stowage" && trap '' PIPE && exec "$STOWAGE_BIN" serve) >"$work/stowage/serve.log" 2>&1 &
else
  (cd "$work/stowage" && exec "$STOWAGE_BIN" serve) >"$work/stowage/serve.log" 2>&1 &
fi
stowage_pid=$!
[[ ${BENCH_SIGPIPE:-default} == ignore ]] && notes+=("stowage ran with SIGPIPE ignored (BENCH_SIGPIPE=ignore)")
wait_port "$sport" 20 || { cat "$work/stowage/serve.log" >&2; die "stowage did not listen"; }
token=$(cat "$work/stowage/data/admin-token")
storage_root=$work/stowage/data/storage
api=http://127.0.0.1:$sport/public/api/v3


team=$(post teams.list '{}' | json 'd["entities"][0]["id"]')
ws=$(post workspaces.list "{\"teamId\":$team}" | json 'd["entities"][0]["id"]')
proj=$(post projects.add "{\"workspaceId\":$ws,\"name\":\"bench-$stamp\",\"type\":\"images\"}" | json 'd["id"]')
ds=$(post datasets.add "{\"projectId\":$proj,\"name\":\"d\"}" | json 'd["id"]')

# RSS sampler: every 100 ms "<epoch.ms> <phase> <VmRSS kB>"; the phase comes from a file.
phase_file=$work/phase
rss_log=$work/rss.log
echo idle >"$phase_file"
(
  while [[ -r /proc/$stowage_pid/status ]]; do
    r=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$stowage_pid/status" 2>/dev/null) || break
    echo "$(date +%s.%N | cut -c1-14) $(cat "$phase_file") $r"
    sleep 0.1
  done
) >"$rss_log" 2>/dev/null &
sampler_pid=$!
phase() {  # name; also checks that both servers still run
  echo "$1" >"$phase_file"
  if ! kill -0 "$stowage_pid" 2>/dev/null; then
    local st=0
    wait "$stowage_pid" || st=$?
    stowage_pid=
    tail -20 "$work/stowage/serve.log" >&2
    cp "$work/stowage/serve.log" "$results_dir/$stamp-serve.log"
    die "stowage exited with status $st ($( ((st > 128)) && kill -l $((st - 128)))) before phase $1"
  fi
  [[ -z $nginx_pid ]] || kill -0 "$nginx_pid" 2>/dev/null || die "nginx is gone before phase $1"
}
phase_peak() { awk -v p="$1" '$2 == p && $3 > m { m = $3 } END { print m + 0 }' "$rss_log"; }
hwm_idle=$(rss_kib VmHWM)

# upload FILE TITLE -> sets up_secs, up_hash, img_id, img_path
upload_and_add() {
  local file=$1 title=$2 out
  out=$(curl -sS --fail-with-body -XPOST -H "x-api-key: $token" -F "0-file=@$file;filename=0" \
    -o "$work/up.json" -w '%{time_total}' "$api/images.bulk.upload")
  up_secs=$(awk -v s="$out" 'BEGIN { printf "%.3f", s }')
  up_hash=$(json 'd[0]["hash"]' <"$work/up.json")
  post images.bulk.add "{\"datasetId\":$ds,\"images\":[{\"title\":\"$title\",\"hash\":\"$up_hash\"}]}" \
    >"$work/add.json"
  img_id=$(json 'd[0]["id"]' <"$work/add.json")
  img_path=$(json 'd[0]["pathOriginal"]' <"$work/add.json")
}
upload_cmd_text() {
  echo "curl -sS -XPOST -H 'x-api-key: \$TOKEN' -F '0-file=@$1;filename=0' -o up.json -w '%{time_total}' $api/images.bulk.upload"
}

# ---------------------------------------------------------------------------------------------
# Test images
log "making test images in $work"
phase setup
vips gaussnoise "$work/noise.v" 128 128
vips jpegsave "$work/noise.v" "$work/small.jpg" --Q 90
rm -f "$work/noise.v"
vips black "$work/100m.tif[compression=none]" $side_100m $side_100m --bands 3
upload_and_add "$work/small.jpg" small.jpg
small_id=$img_id small_path=$img_path
upload_and_add "$work/100m.tif" 100m.tif
large_id=$img_id large_path=$img_path
small_bytes=$(stat -c %s "$storage_root$small_path")
large_bytes=$(stat -c %s "$storage_root$large_path")
cmp -s "$work/small.jpg" "$storage_root$small_path" || die "stored small object differs from the upload"
rm -f "$work/100m.tif"

# ---------------------------------------------------------------------------------------------
# nginx, its root at the very files stowage stores
start_nginx "$storage_root"
n_small=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$nport$small_path")
[[ $n_small == "200 $small_bytes" ]] || die "nginx GET $small_path gave '$n_small'"

# ---------------------------------------------------------------------------------------------
# wrk. A done() hook prints exact totals so both peers are measured the same way.
wrk_done_lua >"$work/stats.lua"
make_post_lua() {  # file id
  {
    echo 'wrk.method = "POST"'
    echo "wrk.body = '{\"id\":$2}'"
    echo 'wrk.headers["Content-Type"] = "application/json"'
    echo "wrk.headers[\"x-api-key\"] = \"$token\""
    cat "$work/stats.lua"
  } >"$1"
}
make_post_lua "$work/small.lua" "$small_id"
make_post_lua "$work/large.lua" "$large_id"

# run_wrk NAME CONNS SCRIPT URL -> sets w_rps w_bps w_p50 w_p99 w_bad, keeps the output
run_wrk() {
  local name=$1 conns=$2 script=$3 url=$4 out line
  wrk -t1 -c"$conns" -d"${BENCH_WARMUP}s" --timeout 30s -s "$script" "$url" >/dev/null 2>&1 || true
  cmd "wrk -t1 -c$conns -d${BENCH_DURATION}s --timeout 30s -s $(basename "$script") $url"
  out=$(wrk -t1 -c"$conns" -d"${BENCH_DURATION}s" --timeout 30s --latency -s "$script" "$url")
  echo "$out" >"$work/wrk-$name.txt"
  phase "$(cat "$phase_file")"   # dies if a server died under the load
  echo "$out" | sed 's/^/    /' >&2
  line=$(echo "$out" | grep '^BENCH ')
  eval "$(echo "$line" | sed 's/^BENCH //' | tr ' ' '\n' | sed 's/^/local w_/')"
  w_rps=$(awk -v r="$w_requests" -v d="$w_duration_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
  w_bps=$(awk -v b="$w_bytes" -v d="$w_duration_us" 'BEGIN { printf "%.0f", b / (d / 1e6) }')
  w_p50=$(awk -v u="$w_p50_us" 'BEGIN { printf "%.2f", u / 1000 }')
  w_p99=$(awk -v u="$w_p99_us" 'BEGIN { printf "%.2f", u / 1000 }')
  w_bad=$((w_non2xx + w_errors))
  [[ $w_bad -eq 0 ]] || notes+=("wrk $name: $w_non2xx non-2xx and $w_errors socket errors")
  w_rps_out=$w_rps w_bps_out=$w_bps w_p50_out=$w_p50 w_p99_out=$w_p99
}

# ---- Case 1
log "case 1: GET ${small_bytes} B object, $BENCH_SMALL_CONNS connections"
phase get-small
run_wrk small-stowage "$BENCH_SMALL_CONNS" "$work/small.lua" "$api/images.download"
s_rps=$w_rps_out s_p50=$w_p50_out s_p99=$w_p99_out
run_wrk small-nginx "$BENCH_SMALL_CONNS" "$work/stats.lua" "http://127.0.0.1:$nport$small_path"
n_rps=$w_rps_out n_p50=$w_p50_out n_p99=$w_p99_out
row "1. GET $(awk -v b="$small_bytes" 'BEGIN{printf "%.1f KiB", b/1024}'), -c$BENCH_SMALL_CONNS (req/s; p50/p99 ms)" \
  "$s_rps ($s_p50/$s_p99)" "$n_rps ($n_p50/$n_p99)" "$(ratio "$s_rps" "$n_rps")" "≥ 0.7"

# ---- Case 2
log "case 2: GET ${large_bytes} B object, $BENCH_LARGE_CONNS connections"
phase get-large
run_wrk large-stowage "$BENCH_LARGE_CONNS" "$work/large.lua" "$api/images.download"
s_bps=$w_bps_out
run_wrk large-nginx "$BENCH_LARGE_CONNS" "$work/stats.lua" "http://127.0.0.1:$nport$large_path"
n_bps=$w_bps_out
row "2. GET $(mib $((large_bytes / 1024))) MiB, -c$BENCH_LARGE_CONNS (GB/s)" \
  "$(gbps "$s_bps" 1)" "$(gbps "$n_bps" 1)" "$(ratio "$s_bps" "$n_bps")" "≥ 0.9"
hwm_gets=$(rss_kib VmHWM)

# ---------------------------------------------------------------------------------------------
# Case 3 (+ case 4 with the same 1 GiB file)
log "case 3: making the 1 GiB image"
big1=$work/1g.tif
vips black "$big1[compression=none]" $side_1g $side_1g --bands 3
big1_bytes=$(stat -c %s "$big1")
cat "$big1" >/dev/null   # both sides read the source from the page cache
dd_target=$storage_root/.bench-dd-target
cmd "dd if=$big1 of=$dd_target bs=1M conv=fsync"
cmd "$(upload_cmd_text "$big1")"
dd_list="" up_list=""
phase upload-1g
for ((i = 1; i <= BENCH_UPLOAD_RUNS; i++)); do
  cat "$big1" >/dev/null
  t0=$(date +%s.%N)
  dd if="$big1" of="$dd_target" bs=1M conv=fsync status=none
  t1=$(date +%s.%N)
  rm -f "$dd_target"
  dd_list+=" $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
  cat "$big1" >/dev/null
  sync
  upload_and_add "$big1" "1g-$i.tif"
  up_list+=" $up_secs"
  log "  run $i: dd $(echo "$dd_list" | awk '{print $NF}') s, stowage $up_secs s"
  sync
done
dd_s=$(echo "$dd_list" | median) up_s=$(echo "$up_list" | median)
want_hash=$(python3 -c 'import base64,hashlib,sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
print(base64.b64encode(h.digest()).decode())' "$big1")
[[ $up_hash == "$want_hash" ]] || notes+=("1 GiB upload: hash $up_hash != sha256 of the file $want_hash")
stored=$(stat -c %s "$storage_root$img_path")
[[ $stored == "$big1_bytes" ]] || notes+=("1 GiB upload: stored $stored B, file has $big1_bytes B")
row "3. Upload $(mib $((big1_bytes / 1024))) MiB, median of $BENCH_UPLOAD_RUNS (GB/s; s)" \
  "$(gbps "$big1_bytes" "$up_s") ($up_s s)" "dd: $(gbps "$big1_bytes" "$dd_s") ($dd_s s)" \
  "$(ratio "$dd_s" "$up_s")" "≥ 0.85"
notes+=("case 3 runs (s): dd${dd_list}; stowage${up_list}")

# Download of the 1 GiB image, for RSS (and throughput vs nginx, one run each)
download_stowage() {  # id -> seconds
  curl -sS --fail-with-body -XPOST -H "x-api-key: $token" -H 'Content-Type: application/json' \
    -d "{\"id\":$1}" -o /dev/null -w '%{time_total} %{size_download}\n' "$api/images.download"
}
download_nginx() {  # path -> seconds
  curl -sS --fail -o /dev/null -w '%{time_total} %{size_download}\n' "http://127.0.0.1:$nport$1"
}
phase download-1g
read -r d1_s d1_n < <(download_stowage "$img_id")
[[ $d1_n == "$big1_bytes" ]] || notes+=("1 GiB download: got $d1_n B of $big1_bytes")
read -r d1n_s _ < <(download_nginx "$img_path")
cmd "curl -sS -XPOST -H 'x-api-key: \$TOKEN' -H 'Content-Type: application/json' -d '{\"id\":$img_id}' -o /dev/null $api/images.download"
row "4a. Download $(mib $((big1_bytes / 1024))) MiB, 1 curl (GB/s)" \
  "$(gbps "$big1_bytes" "$d1_s")" "nginx: $(gbps "$big1_bytes" "$d1n_s")" "$(ratio "$d1n_s" "$d1_s")" "-"
hwm_1g=$(rss_kib VmHWM)
rm -f "$big1"

# ---------------------------------------------------------------------------------------------
# Case 4: 5 GiB
hwm_5g="skipped"
if [[ $BENCH_HUGE == 1 ]]; then
  log "case 4: making the 5 GiB image"
  big5=$work/5g.tif
  vips black "$big5[compression=none,bigtiff]" $side_5g $side_5g --bands 3
  big5_bytes=$(stat -c %s "$big5")
  cat "$big5" >/dev/null
  phase upload-5g
  cmd "$(upload_cmd_text "$big5")"
  upload_and_add "$big5" 5g.tif
  up5_s=$up_secs
  stored=$(stat -c %s "$storage_root$img_path")
  [[ $stored == "$big5_bytes" ]] || notes+=("5 GiB upload: stored $stored B, file has $big5_bytes B")
  rm -f "$big5"
  phase download-5g
  read -r d5_s d5_n < <(download_stowage "$img_id")
  [[ $d5_n == "$big5_bytes" ]] || notes+=("5 GiB download: got $d5_n B of $big5_bytes")
  read -r d5n_s _ < <(download_nginx "$img_path")
  row "4b. Upload / download $(mib $((big5_bytes / 1024))) MiB, 1 curl (GB/s)" \
    "$(gbps "$big5_bytes" "$up5_s") / $(gbps "$big5_bytes" "$d5_s")" "nginx GET: $(gbps "$big5_bytes" "$d5n_s")" \
    "$(ratio "$d5n_s" "$d5_s") (GET)" "-"
  hwm_5g=$(rss_kib VmHWM)
  hwm_5g="$(mib "$hwm_5g") MiB"
fi
phase done
sleep 0.3
peaks=""
for p in idle setup get-small get-large upload-1g download-1g upload-5g download-5g; do
  v=$(phase_peak "$p")
  [[ $v -gt 0 ]] && peaks+="$p $(mib "$v") MiB; "
done
row "4. Stowage VmHWM: idle / after GETs / after 1 GiB / after 5 GiB" \
  "$(mib "$hwm_idle") / $(mib "$hwm_gets") / $(mib "$hwm_1g") MiB / $hwm_5g" "-" "-" "flat"
notes+=("VmRSS peak per phase (100 ms samples): $peaks")

# ---------------------------------------------------------------------------------------------
# Report
{
  echo "# Stowage benchmark $stamp"
  echo
  echo "- Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)," \
    "$(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)," \
    "load average at start $load_start / at end $(cut -d' ' -f1-3 /proc/loadavg)," \
    "fs under test: $(df -T "$storage_root" | awk 'NR == 2 { print $2 " on " $1 }')"
  echo "- Versions: $("$STOWAGE_BIN" --version 2>&1 | head -1) (git $(git -C "$repo" rev-parse --short HEAD)$(
    git -C "$repo" diff --quiet HEAD -- src 2>/dev/null || echo ", src/ has uncommitted changes")), $(nginx -v 2>&1)," \
    "$(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }'), $(curl --version | head -1 | awk '{ print $1, $2 }')," \
    "$(vips --version)"
  echo "- Load generators share the same $(nproc) cores as the servers; nginx worker_processes $BENCH_NGINX_WORKERS," \
    "stowage with default threads. Stowage answers POST images.download (JSON body, x-api-key, catalog lookup)," \
    "nginx a plain static GET of the same blob file."
  echo
  echo "| Case | Stowage | Peer | Ratio stowage/peer | Aim |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  report_tail "Commands (\$TOKEN = the admin token; the .lua files set method POST, body {\"id\":N}," \
    "Content-Type and x-api-key, and print exact totals in done()):"
} >"$report"
show_report
