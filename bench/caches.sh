#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Stowage's caches vs named peers, side by side in one run (issue 7; see bench/README.md, "caches.sh"):
#   1. Preview cache hits   wrk GET /previews/... (x-api-key)           vs nginx static GET of the same bytes
#   2. Preview misses       N distinct ~2000x1500 JPEGs, one preview each vs vipsthumbnail --size 320x
#   3. Storage cache (GCS fake): wrk images.download of a cached ~1 MiB  vs nginx static GET of the same bytes;
#      cold / warm images.download of ~200 MiB                           vs curl GET from the fake (bearer token)
# Everything listens on 127.0.0.1 only; everything started here is stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

BENCH_DURATION=${BENCH_DURATION:-10}      # seconds per wrk run
BENCH_WARMUP=${BENCH_WARMUP:-2}           # seconds of untimed wrk before each timed run
BENCH_CONNS=${BENCH_CONNS:-32}
BENCH_MISSES=${BENCH_MISSES:-20}          # case 2: distinct images
BENCH_GET_RUNS=${BENCH_GET_RUNS:-3}       # case 3: warm / direct 200 MiB GETs, median
BENCH_CLOUD=${BENCH_CLOUD:-1}             # 0 skips case 3
BENCH_NGINX_WORKERS=${BENCH_NGINX_WORKERS:-auto}
preview_opts="ext:jpeg/resize:auto:320:0:0/q:70"

side_1m=591       # 1.05 MB uncompressed TIFF
side_200m=8372    # 210 MB

require_tools wrk nginx vips vipsthumbnail vipsheader curl python3 awk gcloud node openssl
ensure_stowage

# ---------------------------------------------------------------------------------------------
# Scratch dir, cleanup
start_workdir caches
stowage_pid= nginx_pid= gcs_state=
stop_servers() {
  stop_pid "$nginx_pid"
  stop_pid "$stowage_pid"
  [[ -n $gcs_state ]] && "$repo/scripts/test-servers/gcs.sh" stop "$gcs_state" >/dev/null 2>&1
  return 0
}

# ---------------------------------------------------------------------------------------------
# Report helpers
start_report -caches

# ---------------------------------------------------------------------------------------------
# Stowage: start_stowage NAME [extra .env lines...]
start_stowage() {
  local name=$1
  shift
  sdir=$work/stowage-$name
  mkdir -p "$sdir"
  sport=$(free_port)
  {
    echo "DATA_PATH=$sdir/data"
    echo "STOWAGE_LISTEN=127.0.0.1:$sport"
    printf '%s\n' "$@"
  } >"$sdir/.env"
  (cd "$sdir" && exec "$STOWAGE_BIN" serve) >>"$sdir/serve.log" 2>&1 &
  stowage_pid=$!
  wait_port "$sport" 20 || { cat "$sdir/serve.log" >&2; die "stowage did not listen"; }
  token=$(cat "$sdir/data/admin-token")
  base=http://127.0.0.1:$sport
  api=$base/public/api/v3
}
stop_stowage() {
  kill -TERM "$stowage_pid" 2>/dev/null && wait "$stowage_pid" 2>/dev/null || true
  stowage_pid=
}
alive() {  # what: dies if a server is gone
  if ! kill -0 "$stowage_pid" 2>/dev/null; then
    local st=0
    wait "$stowage_pid" || st=$?
    stowage_pid=
    tail -20 "$sdir/serve.log" >&2
    cp "$sdir/serve.log" "$results_dir/$stamp-caches-serve.log"
    die "stowage exited with status $st during $1"
  fi
  kill -0 "$nginx_pid" 2>/dev/null || die "nginx is gone during $1"
}
make_dataset() {
  local team ws proj
  team=$(post teams.list '{}' | json 'd["entities"][0]["id"]')
  ws=$(post workspaces.list "{\"teamId\":$team}" | json 'd["entities"][0]["id"]')
  proj=$(post projects.add "{\"workspaceId\":$ws,\"name\":\"caches-$stamp\",\"type\":\"images\"}" | json 'd["id"]')
  ds=$(post datasets.add "{\"projectId\":$proj,\"name\":\"d\"}" | json 'd["id"]')
}
# upload_and_add FILE TITLE -> img_id, img_path
upload_and_add() {
  curl -sS --fail-with-body -XPOST -H "x-api-key: $token" -F "0-file=@$1;filename=0" \
    -o "$work/up.json" "$api/images.bulk.upload" || { cat "$work/up.json" >&2; alive upload; die "upload of $1 failed"; }
  local hash
  hash=$(json 'd[0]["hash"]' <"$work/up.json")
  post images.bulk.add "{\"datasetId\":$ds,\"images\":[{\"title\":\"$2\",\"hash\":\"$hash\"}]}" >"$work/add.json"
  img_id=$(json 'd[0]["id"]' <"$work/add.json")
  img_path=$(json 'd[0]["pathOriginal"]' <"$work/add.json")
}
metrics() {  # grep pattern -> "name=value ..." of matching samples
  curl -sS "$base/metrics" | grep -v '^#' | grep -v '_bucket' | grep -iE "$1" | awk '{ s = s $1 "=" $2 " " } END { print s }'
}

# ---------------------------------------------------------------------------------------------
# nginx on its own root (files copied there: the bytes Stowage answered)
www=$work/www
mkdir -p "$www"
start_nginx "$www"

# ---------------------------------------------------------------------------------------------
# wrk with a done() hook printing exact totals (bench/lib.sh)
wrk_done_lua >"$work/stats.lua"
# run_wrk NAME SCRIPT URL -> w_rps w_p50 w_p99 (ms), w_avg_bytes
run_wrk() {
  local name=$1 script=$2 url=$3 out line
  wrk -t1 -c"$BENCH_CONNS" -d"${BENCH_WARMUP}s" --timeout 30s -s "$script" "$url" >/dev/null 2>&1 || true
  cmd "wrk -t1 -c$BENCH_CONNS -d${BENCH_DURATION}s --timeout 30s --latency -s $(basename "$script") '$url'"
  out=$(wrk -t1 -c"$BENCH_CONNS" -d"${BENCH_DURATION}s" --timeout 30s --latency -s "$script" "$url")
  echo "$out" >"$work/wrk-$name.txt"
  alive "wrk $name"
  echo "$out" | sed 's/^/    /' >&2
  line=$(echo "$out" | grep '^BENCH ')
  local w_requests w_bytes w_duration_us w_non2xx w_errors w_p50_us w_p99_us
  eval "$(echo "$line" | sed 's/^BENCH //' | tr ' ' '\n' | sed 's/^/w_/')"
  w_rps=$(awk -v r="$w_requests" -v d="$w_duration_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
  w_p50=$(awk -v u="$w_p50_us" 'BEGIN { printf "%.2f", u / 1000 }')
  w_p99=$(awk -v u="$w_p99_us" 'BEGIN { printf "%.2f", u / 1000 }')
  w_avg_bytes=$(awk -v b="$w_bytes" -v r="$w_requests" 'BEGIN { if (r > 0) printf "%.0f", b / r; else print 0 }')
  ((w_non2xx + w_errors == 0)) || notes+=("wrk $name: $w_non2xx non-2xx and $w_errors socket errors")
}

# ---------------------------------------------------------------------------------------------
# Test images: 1 + BENCH_MISSES distinct 2000x1500 JPEGs (Gaussian noise, blurred a little so that
# they compress like photos rather than like pure noise), Q85
log "making $((BENCH_MISSES + 1)) test JPEGs in $work/jpg"
mkdir -p "$work/jpg"
for ((i = 0; i <= BENCH_MISSES; i++)); do
  vips gaussnoise "$work/n.v" 2000 1500 --seed $((i + 1)) --sigma 60
  vips gaussblur "$work/n.v" "$work/b.v" 1.5
  vips colourspace "$work/b.v" "$work/c.v" srgb   # 1 band -> 3 bands
  vips jpegsave "$work/c.v" "$work/jpg/img$i.jpg" --Q 85
done
rm -f "$work/n.v" "$work/b.v" "$work/c.v"
jpg_bytes=$(stat -c %s "$work/jpg/img0.jpg")

# ---------------------------------------------------------------------------------------------
# Cases 1-2: Stowage on local disk
log "starting stowage (local disk)"
start_stowage local
make_dataset
cmd "stowage serve   # .env: DATA_PATH, STOWAGE_LISTEN (local disk, default caches)"

# ---- Case 1: preview hits
log "case 1: preview cache hits vs nginx"
upload_and_add "$work/jpg/img0.jpg" img0.jpg
prev_url="$base/previews/q/$preview_opts/plain$img_path"
read -r code n < <(curl -sS -H "x-api-key: $token" -o "$www/preview.jpg" -w '%{http_code} %{size_download}\n' "$prev_url")
[[ $code == 200 ]] || die "preview GET gave HTTP $code: $(head -c 300 "$www/preview.jpg")"
prev_dims=$(vipsheader -f width "$www/preview.jpg")x$(vipsheader -f height "$www/preview.jpg")
prev_bytes=$n
cmd "curl -H 'x-api-key: \$TOKEN' -o www/preview.jpg '$prev_url'   # fills the preview cache"
{
  echo "wrk.headers[\"x-api-key\"] = \"$token\""
  cat "$work/stats.lua"
} >"$work/preview.lua"
m_before=$(metrics 'preview')
run_wrk preview-stowage "$work/preview.lua" "$prev_url"
s_rps=$w_rps s_p50=$w_p50 s_p99=$w_p99 s_avg=$w_avg_bytes
m_after=$(metrics 'preview')
run_wrk preview-nginx "$work/stats.lua" "http://127.0.0.1:$nport/preview.jpg"
row "1. Preview hit, $prev_dims JPEG of $prev_bytes B (of a 2000x1500, $jpg_bytes B JPEG), wrk -c$BENCH_CONNS: req/s (p50/p99 ms)" \
  "$s_rps ($s_p50/$s_p99)" "nginx: $w_rps ($w_p50/$w_p99)" "$(ratio "$s_rps" "$w_rps")"
notes+=("case 1 response bytes per request (incl. headers): stowage $s_avg, nginx $w_avg_bytes")
notes+=("case 1 preview metrics before wrk: ${m_before:-none}")
notes+=("case 1 preview metrics after wrk: ${m_after:-none}")

# ---- Case 2: preview misses
log "case 2: $BENCH_MISSES preview misses vs vipsthumbnail"
urls=()
for ((i = 1; i <= BENCH_MISSES; i++)); do
  upload_and_add "$work/jpg/img$i.jpg" "img$i.jpg"
  urls+=("$base/previews/q/$preview_opts/plain$img_path")
done
curl_args=()
for u in "${urls[@]}"; do curl_args+=(-o /dev/null -w '%{http_code} %{size_download} %{time_total}\n' "$u"); done
sync
m_before=$(metrics 'preview')
t0=$(now)
curl -sS -H "x-api-key: $token" "${curl_args[@]}" >"$work/misses.txt"
t1=$(now)
m_after=$(metrics 'preview')
alive "preview misses"
miss_s=$(elapsed "$t0" "$t1")
bad=$(awk '$1 != 200' "$work/misses.txt" | wc -l)
((bad == 0)) || notes+=("case 2: $bad of $BENCH_MISSES preview GETs were not 200: $(awk '$1 != 200' "$work/misses.txt" | head -3 | tr '\n' ';')")
cmd "curl -H 'x-api-key: \$TOKEN' -o /dev/null '$base/previews/q/$preview_opts/plain<pathOriginal 1>' … (one curl, $BENCH_MISSES URLs, one keep-alive connection, in sequence)"
mkdir -p "$work/thumbs"
files=()
for ((i = 1; i <= BENCH_MISSES; i++)); do files+=("$work/jpg/img$i.jpg"); done
t0=$(now)
vipsthumbnail --size 320x -o "$work/thumbs/%s.jpg[Q=70]" "${files[@]}"
t1=$(now)
vt_s=$(elapsed "$t0" "$t1")
cmd "vipsthumbnail --size 320x -o 'thumbs/%s.jpg[Q=70]' jpg/img1.jpg … jpg/img$BENCH_MISSES.jpg   # one process, in sequence"
t0=$(now)
for f in "${files[@]}"; do vips thumbnail "$f" "$work/thumbs/x.jpg[Q=70]" 320; done
t1=$(now)
vt2_s=$(elapsed "$t0" "$t1")
cmd "for f in jpg/img{1..$BENCH_MISSES}.jpg; do vips thumbnail \$f thumbs/x.jpg[Q=70] 320; done   # one process per image"
s_pps=$(awk -v n="$BENCH_MISSES" -v s="$miss_s" 'BEGIN { printf "%.1f", n / s }')
v_pps=$(awk -v n="$BENCH_MISSES" -v s="$vt_s" 'BEGIN { printf "%.1f", n / s }')
v2_pps=$(awk -v n="$BENCH_MISSES" -v s="$vt2_s" 'BEGIN { printf "%.1f", n / s }')
row "2. Preview miss, $BENCH_MISSES distinct 2000x1500 JPEGs -> 320 wide, in sequence: previews/s (s)" \
  "$s_pps ($miss_s s)" "vipsthumbnail: $v_pps ($vt_s s); vips thumbnail per process: $v2_pps ($vt2_s s)" \
  "$(ratio "$s_pps" "$v_pps") / $(ratio "$s_pps" "$v2_pps")"
notes+=("case 2 per-request time_total (s): $(awk '{ printf "%s ", $3 }' "$work/misses.txt")")
notes+=("case 2 preview metrics before: ${m_before:-none}; after: ${m_after:-none}")
notes+=("case 2 preview sizes (B): stowage $(awk '{ printf "%s ", $2 }' "$work/misses.txt" | cut -c1-80)…; vipsthumbnail $(stat -c %s "$work/thumbs/img1.jpg") (img1)")
stop_stowage

# ---------------------------------------------------------------------------------------------
# Case 3: storage cache on the GCS fake
if [[ $BENCH_CLOUD == 1 ]]; then
  log "case 3: GCS fake"
  gcs_state=$work/state-gcs
  "$repo/scripts/test-servers/gcs.sh" start "$gcs_state" >"$work/gcs-start.log" 2>&1 ||
    { tail -20 "$work/gcs-start.log" >&2; die "gcs.sh start failed"; }
  cmd "scripts/test-servers/gcs.sh start <state>; stowage serve with the STORAGE_* lines of <state>/gcs.env + DATA_PATH, STOWAGE_LISTEN (upload with CACHE_STORAGE_SIZE=0, then restart with the default)"
  envf=$gcs_state/gcs.env
  mapfile -t storage_env < <(grep -E '^STORAGE_' "$envf")
  STORAGE_ENDPOINT=$(sed -n 's/^STORAGE_ENDPOINT=//p' "$envf")
  STORAGE_CREDENTIALS_PATH=$(sed -n 's/^STORAGE_CREDENTIALS_PATH=//p' "$envf")
  export CLOUDSDK_CONFIG=$work/gcloud CLOUDSDK_CORE_DISABLE_PROMPTS=1
  export CLOUDSDK_AUTH_TOKEN_HOST=$STORAGE_ENDPOINT/token
  export CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=$STORAGE_ENDPOINT/
  gcloud auth activate-service-account --key-file="$STORAGE_CREDENTIALS_PATH" >/dev/null 2>&1 ||
    die "gcloud auth activate-service-account failed"
  gcs_token=$(gcloud auth print-access-token 2>/dev/null) || die "gcloud auth print-access-token failed"

  vips black "$work/1m.tif[compression=none]" $side_1m $side_1m --bands 3
  vips black "$work/200m.tif[compression=none]" $side_200m $side_200m --bands 3
  bytes_1m=$(stat -c %s "$work/1m.tif") bytes_200m=$(stat -c %s "$work/200m.tif")

  # Upload with the cache off so that nothing is cached before the cold GET.
  start_stowage gcs "${storage_env[@]}" CACHE_STORAGE_SIZE=0
  make_dataset
  upload_and_add "$work/1m.tif" 1m.tif
  id_1m=$img_id
  upload_and_add "$work/200m.tif" 200m.tif
  id_200m=$img_id path_200m=$img_path
  rm -f "$work/200m.tif"
  stop_stowage
  start_stowage gcs "${storage_env[@]}"   # default CACHE_STORAGE_SIZE (10 GiB)
  get() {  # id out -> "code ttfb total bytes"
    curl -sS -XPOST -H "x-api-key: $token" -H 'Content-Type: application/json' -d "{\"id\":$1}" \
      -o "$2" -w '%{http_code} %{time_starttransfer} %{time_total} %{size_download}\n' "$api/images.download"
  }

  # 3a: ~1 MiB cache hits vs nginx
  read -r code _ _ n < <(get "$id_1m" "$www/1m.tif")
  [[ $code == 200 && $n == "$bytes_1m" ]] || notes+=("case 3a fill GET: HTTP $code, $n B of $bytes_1m")
  cmp -s "$www/1m.tif" "$work/1m.tif" || notes+=("case 3a: bytes from images.download differ from the upload")
  {
    echo 'wrk.method = "POST"'
    echo "wrk.body = '{\"id\":$id_1m}'"
    echo 'wrk.headers["Content-Type"] = "application/json"'
    echo "wrk.headers[\"x-api-key\"] = \"$token\""
    cat "$work/stats.lua"
  } >"$work/download.lua"
  m_before=$(metrics 'cache|remote')
  run_wrk 1m-stowage "$work/download.lua" "$api/images.download"
  s_rps=$w_rps s_p50=$w_p50 s_p99=$w_p99
  m_after=$(metrics 'cache|remote')
  run_wrk 1m-nginx "$work/stats.lua" "http://127.0.0.1:$nport/1m.tif"
  row "3a. GCS fake, storage-cache hit, GET $bytes_1m B via images.download, wrk -c$BENCH_CONNS: req/s (p50/p99 ms)" \
    "$s_rps ($s_p50/$s_p99)" "nginx: $w_rps ($w_p50/$w_p99)" "$(ratio "$s_rps" "$w_rps")"
  notes+=("case 3a metrics before wrk: ${m_before:-none}")
  notes+=("case 3a metrics after wrk: ${m_after:-none}")

  # 3b: ~200 MiB cold / warm vs direct
  b=${path_200m#/} b=${b%%/*} k=${path_200m#/*/}
  enc=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$k")
  durl="$STORAGE_ENDPOINT/storage/v1/b/$b/o/$enc?alt=media"
  cmd "curl -XPOST -H 'x-api-key: \$TOKEN' -H 'Content-Type: application/json' -d '{\"id\":$id_200m}' -o /dev/null $api/images.download   # 1 cold, then $BENCH_GET_RUNS warm"
  cmd "curl -o /dev/null -H 'Authorization: Bearer \$(gcloud auth print-access-token)' '$durl'   # $BENCH_GET_RUNS runs (CLOUDSDK_AUTH_TOKEN_HOST=$CLOUDSDK_AUTH_TOKEN_HOST)"
  read -r code _ cold n < <(get "$id_200m" /dev/null)
  alive "cold GET"
  [[ $code == 200 && $n == "$bytes_200m" ]] || notes+=("case 3b cold GET: HTTP $code, $n B of $bytes_200m")
  warm_l="" direct_l=""
  for ((i = 1; i <= BENCH_GET_RUNS; i++)); do
    read -r code _ t n < <(get "$id_200m" /dev/null)
    [[ $code == 200 && $n == "$bytes_200m" ]] || notes+=("case 3b warm GET $i: HTTP $code, $n B")
    warm_l+=" $t"
    read -r code t n < <(curl -sS -H "Authorization: Bearer $gcs_token" -o /dev/null \
      -w '%{http_code} %{time_total} %{size_download}\n' "$durl")
    [[ $code == 200 && $n == "$bytes_200m" ]] || notes+=("case 3b direct GET $i: HTTP $code, $n B")
    direct_l+=" $t"
  done
  alive "warm GETs"
  warm=$(echo "$warm_l" | median) direct=$(echo "$direct_l" | median)
  row "3b. GCS fake, GET $bytes_200m B, 1 curl: MiB/s (s)" \
    "cold $(mbps "$bytes_200m" "$cold") ($cold s); warm (median of $BENCH_GET_RUNS) $(mbps "$bytes_200m" "$warm") ($warm s)" \
    "direct from the fake: $(mbps "$bytes_200m" "$direct") ($direct s)" \
    "cold $(ratio "$direct" "$cold"), warm $(ratio "$direct" "$warm")"
  notes+=("case 3b runs (s): warm$warm_l; direct$direct_l")
  notes+=("case 3b metrics after: $(metrics 'cache|remote')")
  stop_stowage
fi

# ---------------------------------------------------------------------------------------------
# Report
{
  echo "# Stowage caches benchmark $stamp"
  echo
  echo "- Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)," \
    "$(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)," \
    "load average at start $load_start / at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- Versions: $("$STOWAGE_BIN" --version 2>&1 | head -1) (git $(git -C "$repo" rev-parse --short HEAD)$(
    git -C "$repo" diff --quiet HEAD -- src 2>/dev/null || echo ", src/ has uncommitted changes")), $(nginx -v 2>&1)," \
    "$(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }'), $(curl --version | head -1 | awk '{ print $1, $2 }')," \
    "$(vips --version), node $(node --version)"
  echo "- Everything (servers, wrk, curl, vips) shares the same $(nproc) cores; compare ratios within one run." \
    "nginx worker_processes $BENCH_NGINX_WORKERS, root = a folder holding copies of the bytes Stowage answered."
  echo "- Preview options: $preview_opts; test JPEGs: 2000x1500, blurred Gaussian noise, Q85 (vips)."
  echo
  echo "| Case | Stowage | Peer | Ratio stowage/peer |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  report_tail "Commands (\$TOKEN = the admin token; preview.lua sets x-api-key, download.lua method POST, body {\"id\":N}," \
    "Content-Type and x-api-key; all .lua print exact totals in done()):"
} >"$report"
show_report
