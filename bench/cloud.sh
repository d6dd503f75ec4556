#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Stowage on a remote store vs a direct client of the same server, side by side in one run
# (see bench/README.md, "cloud.sh"). For each test server of scripts/test-servers/ (radosgw = S3,
# azurite = Azure Blob, gcs = the project's fake GCS):
#   1. GET ~1 MiB object      curl POST images.download (cache off)   vs curl GET of the object by a
#   2. GET ~200 MiB object                                                 presigned URL / SAS / bearer token
#   3. Upload ~1 GiB image    curl -F to images.bulk.upload (+ VmHWM)  vs aws s3 cp / rclone copyto /
#                                                                          gcloud storage cp
#   4. One warm-cache GET of cases 1-2 after a restart with the default CACHE_STORAGE_SIZE.
# Everything listens on 127.0.0.1 only; everything started here is stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
# shellcheck source=bench/direct.sh
source "$here/direct.sh"

BENCH_PROVIDERS=${BENCH_PROVIDERS:-"radosgw azurite gcs"}
BENCH_GET_RUNS=${BENCH_GET_RUNS:-3}        # runs of each side per GET case, the median is reported
BENCH_UPLOAD_RUNS=${BENCH_UPLOAD_RUNS:-1}  # runs of each side of the 1 GiB upload
BENCH_WARM=${BENCH_WARM:-1}                # 0 skips the warm-cache run

# Image sides: 3 bands of uint8, uncompressed TIFF => side*side*3 bytes (+ a few KiB of header).
side_1m=591       # 1.05 MB ~ 1 MiB
side_200m=8372    # 210 MB  ~ 200 MiB
side_1g=18919     # 1.07 GB ~ 1 GiB

require_tools vips curl python3 awk aws rclone gcloud node openssl
ensure_stowage

# ---------------------------------------------------------------------------------------------
# Scratch dir, cleanup
start_workdir cloud
stowage_pid= sampler_pid= server_name=
stop_servers() {
  [[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null && wait "$sampler_pid" 2>/dev/null
  stop_pid "$stowage_pid"
  [[ -n $server_name ]] && "$repo/scripts/test-servers/$server_name.sh" stop "$work/state-$server_name" >/dev/null 2>&1
  return 0
}

# ---------------------------------------------------------------------------------------------
# Report helpers
start_report -cloud
curl_w='%{http_code} %{time_starttransfer} %{time_total} %{size_download}\n'

# ---------------------------------------------------------------------------------------------
# Test images, shared by all providers
log "making test images in $work"
img_1m=$work/1m.tif img_200m=$work/200m.tif img_1g=$work/1g.tif
vips black "$img_1m[compression=none]" $side_1m $side_1m --bands 3
vips black "$img_200m[compression=none]" $side_200m $side_200m --bands 3
vips black "$img_1g[compression=none]" $side_1g $side_1g --bands 3
bytes_1m=$(stat -c %s "$img_1m") bytes_200m=$(stat -c %s "$img_200m") bytes_1g=$(stat -c %s "$img_1g")
hash_1g=$(python3 -c 'import base64,hashlib,sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
print(base64.b64encode(h.digest()).decode())' "$img_1g")

# ---------------------------------------------------------------------------------------------
# Stowage: start_stowage NAME ENVFILE CACHE(0|default)
start_stowage() {
  local name=$1 envf=$2 cache=$3
  sdir=$work/stowage-$name
  mkdir -p "$sdir"
  [[ -n ${sport:-} ]] || sport=$(free_port)
  {
    grep -E '^STORAGE_' "$envf"
    echo "DATA_PATH=$sdir/data"
    echo "STOWAGE_LISTEN=127.0.0.1:$sport"
    [[ $cache == 0 ]] && echo "CACHE_STORAGE_SIZE=0"
  } >"$sdir/.env"
  (cd "$sdir" && exec "$STOWAGE_BIN" serve) >>"$sdir/serve.log" 2>&1 &
  stowage_pid=$!
  wait_port "$sport" 20 || { cat "$sdir/serve.log" >&2; die "stowage did not listen"; }
  token=$(cat "$sdir/data/admin-token")
  api=http://127.0.0.1:$sport/public/api/v3
}
stop_stowage() {
  kill -TERM "$stowage_pid" 2>/dev/null && wait "$stowage_pid" 2>/dev/null || true
  stowage_pid=
}
alive() {  # what: dies if stowage is gone
  if ! kill -0 "$stowage_pid" 2>/dev/null; then
    local st=0
    wait "$stowage_pid" || st=$?
    stowage_pid=
    tail -20 "$sdir/serve.log" >&2
    cp "$sdir/serve.log" "$results_dir/$stamp-cloud-serve.log"
    die "stowage exited with status $st during $1"
  fi
}
# upload_and_add FILE TITLE -> up_secs, up_hash, img_id, img_path, img_size
upload_and_add() {
  local out
  out=$(curl -sS --fail-with-body -XPOST -H "x-api-key: $token" -F "0-file=@$1;filename=0" \
    -o "$work/up.json" -w '%{time_total}' "$api/images.bulk.upload") || { cat "$work/up.json" >&2; alive upload; die "upload of $1 failed"; }
  up_secs=$(awk -v s="$out" 'BEGIN { printf "%.3f", s }')
  up_hash=$(json 'd[0]["hash"]' <"$work/up.json")
  post images.bulk.add "{\"datasetId\":$ds,\"images\":[{\"title\":\"$2\",\"hash\":\"$up_hash\"}]}" >"$work/add.json"
  img_id=$(json 'd[0]["id"]' <"$work/add.json")
  img_path=$(json 'd[0]["pathOriginal"]' <"$work/add.json")
  img_size=$(json 'd[0]["size"]' <"$work/add.json")
}
get_stowage() {  # id -> "code ttfb total bytes"
  curl -sS -XPOST -H "x-api-key: $token" -H 'Content-Type: application/json' -d "{\"id\":$1}" \
    -o /dev/null -w "$curl_w" "$api/images.download"
}

# ---------------------------------------------------------------------------------------------
# One GET case: get_case NAME LABEL BYTES ID BUCKET KEY
get_case() {
  local name=$1 label=$2 want=$3 id=$4 bucket=$5 key=$6 url i out code ttfb total n
  local s_ttfb="" s_tot="" d_ttfb="" d_tot=""
  direct_hdr=()
  direct_url_"$name" "$bucket" "$key"
  cmd "curl -XPOST -H 'x-api-key: \$TOKEN' -H 'Content-Type: application/json' -d '{\"id\":$id}' -o /dev/null -w '$curl_w' $api/images.download"
  get_stowage "$id" >/dev/null   # untimed warm-up of both paths (connections, catalog, page cache of the server)
  curl -sS "${direct_hdr[@]}" -o /dev/null "$url"
  for ((i = 1; i <= BENCH_GET_RUNS; i++)); do
    read -r code ttfb total n < <(get_stowage "$id")
    alive "GET $label"
    [[ $code == 200 && $n == "$want" ]] || { notes+=("$name $label stowage GET run $i: HTTP $code, $n B of $want"); }
    s_ttfb+=" $ttfb" s_tot+=" $total"
    read -r code ttfb total n < <(curl -sS "${direct_hdr[@]}" -o /dev/null -w "$curl_w" "$url")
    [[ $code == 200 && $n == "$want" ]] || { notes+=("$name $label direct GET run $i: HTTP $code, $n B of $want"); }
    d_ttfb+=" $ttfb" d_tot+=" $total"
  done
  local st sf dt df
  st=$(echo "$s_tot" | median) sf=$(echo "$s_ttfb" | median)
  dt=$(echo "$d_tot" | median) df=$(echo "$d_ttfb" | median)
  row "$name" "GET $label, median of $BENCH_GET_RUNS (MiB/s; TTFB ms)" "$(mbps "$want" "$st") ($(ms "$sf"))" \
    "$(mbps "$want" "$dt") ($(ms "$df"))" "$(ratio "$dt" "$st")" "$(awk -v a="$sf" -v b="$df" 'BEGIN { printf "%+.1f", (a - b) * 1000 }') ms"
  notes+=("$name GET $label totals (s): stowage$s_tot; direct$d_tot")
}

# ---------------------------------------------------------------------------------------------
run_provider() {
  local name=$1 state=$work/state-$1
  log "== $name: starting the test server"
  server_name=$name
  "$repo/scripts/test-servers/$name.sh" start "$state" >"$work/$name-start.log" 2>&1 ||
    { tail -20 "$work/$name-start.log" >&2; die "$name.sh start failed"; }
  cmd "scripts/test-servers/$name.sh start <state>; stowage serve with <state>/$name.env + DATA_PATH, STOWAGE_LISTEN, CACHE_STORAGE_SIZE=0"
  local envf=$state/$name.env
  (
    trap 'set +e; [[ -n $sampler_pid ]] && kill "$sampler_pid"; [[ -n $stowage_pid ]] && kill "$stowage_pid" && wait "$stowage_pid"' EXIT
    set -a
    # shellcheck disable=SC1090
    . "$envf"
    set +a
    sport=
    start_stowage "$name" "$envf" 0
    setup_direct_"$name"
    team=$(post teams.list '{}' | json 'd["entities"][0]["id"]')
    ws=$(post workspaces.list "{\"teamId\":$team}" | json 'd["entities"][0]["id"]')
    proj=$(post projects.add "{\"workspaceId\":$ws,\"name\":\"cloud-$stamp\",\"type\":\"images\"}" | json 'd["id"]')
    ds=$(post datasets.add "{\"projectId\":$proj,\"name\":\"d\"}" | json 'd["id"]')
    hwm_idle=$(rss_kib VmHWM)

    log "$name: uploading the 1 MiB and 200 MiB images through stowage"
    upload_and_add "$img_1m" 1m.tif
    id_1m=$img_id path_1m=$img_path
    upload_and_add "$img_200m" 200m.tif
    id_200m=$img_id path_200m=$img_path
    # pathOriginal is /<bucket>/<key>
    b_1m=${path_1m#/} b_1m=${b_1m%%/*} k_1m=${path_1m#/*/}
    b_200m=${path_200m#/} b_200m=${b_200m%%/*} k_200m=${path_200m#/*/}

    log "$name: GET 1 MiB"
    get_case "$name" "$(mib $((bytes_1m / 1024))) MiB" "$bytes_1m" "$id_1m" "$b_1m" "$k_1m"
    log "$name: GET 200 MiB"
    get_case "$name" "$(mib $((bytes_200m / 1024))) MiB" "$bytes_200m" "$id_200m" "$b_200m" "$k_200m"
    hwm_gets=$(rss_kib VmHWM)

    # 1 GiB upload: stowage (with an RSS sampler), then the real client; both objects deleted after.
    local s_list="" d_list="" peak=0 i
    for ((i = 1; i <= BENCH_UPLOAD_RUNS; i++)); do
      log "$name: upload 1 GiB through stowage (run $i)"
      cat "$img_1g" >/dev/null
      (
        while [[ -r /proc/$stowage_pid/status ]]; do
          awk '$1 == "VmRSS:" { print $2 }' "/proc/$stowage_pid/status" 2>/dev/null || break
          sleep 0.1
        done
      ) >"$work/rss-$name.log" 2>/dev/null &
      sampler_pid=$!
      upload_and_add "$img_1g" "1g-$i.tif"
      kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null || true
      sampler_pid=
      alive "upload 1 GiB"
      p=$(sort -n "$work/rss-$name.log" | tail -1)
      ((p > peak)) && peak=$p
      s_list+=" $up_secs"
      [[ $up_hash == "$hash_1g" ]] || notes+=("$name 1 GiB upload: hash $up_hash != sha256 of the file $hash_1g")
      [[ $img_size == "$bytes_1g" ]] || notes+=("$name 1 GiB upload: size $img_size B, file has $bytes_1g B")
      local b k=${img_path#/*/}
      b=${img_path#/} b=${b%%/*}
      direct_rm_"$name" "$b" "$k" || notes+=("$name: could not delete $img_path")
      log "$name: upload 1 GiB with the direct client (run $i)"
      cat "$img_1g" >/dev/null
      t0=$(date +%s.%N)
      direct_put_"$name" "$img_1g" "$b" "bench-direct-1g.tif" || die "$name direct upload failed"
      t1=$(date +%s.%N)
      d_list+=" $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
      direct_rm_"$name" "$b" bench-direct-1g.tif || notes+=("$name: could not delete bench-direct-1g.tif")
    done
    hwm_up=$(rss_kib VmHWM)
    cmd "curl -XPOST -H 'x-api-key: \$TOKEN' -F '0-file=@$img_1g;filename=0' -w '%{time_total}' $api/images.bulk.upload"
    local su du
    su=$(echo "$s_list" | median) du=$(echo "$d_list" | median)
    row "$name" "Upload $(mib $((bytes_1g / 1024))) MiB (MiB/s; s)" "$(mbps "$bytes_1g" "$su") ($su s)" \
      "$(mbps "$bytes_1g" "$du") ($du s)" "$(ratio "$du" "$su")" "-"
    row "$name" "Stowage VmHWM idle / after GETs / after upload; peak VmRSS during upload" \
      "$(mib "$hwm_idle") / $(mib "$hwm_gets") / $(mib "$hwm_up") MiB; $(mib "$peak") MiB" "-" "-" "-"
    notes+=("$name upload runs (s): stowage$s_list; direct$d_list. Direct client: $direct_client")

    if [[ $BENCH_WARM == 1 ]]; then
      log "$name: warm cache (restart with the default CACHE_STORAGE_SIZE)"
      stop_stowage
      sport=
      start_stowage "$name" "$envf" default
      local c1 c2 wc1 wc2 code n t
      for id in "$id_1m" "$id_200m"; do
        read -r code _ c1 n < <(get_stowage "$id")
        read -r code t c2 n < <(get_stowage "$id")
        alive "warm GET"
        [[ $code == 200 ]] || notes+=("$name warm GET id $id: HTTP $code")
        if [[ $id == "$id_1m" ]]; then wc1="$(mbps "$bytes_1m" "$c2") ($(ms "$t"))"; first1=$(mbps "$bytes_1m" "$c1"); fi
        if [[ $id == "$id_200m" ]]; then wc2="$(mbps "$bytes_200m" "$c2") ($(ms "$t"))"; first2=$(mbps "$bytes_200m" "$c1"); fi
      done
      hits=$(curl -sS "http://127.0.0.1:$sport/metrics" | grep -i 'cache' | grep -iv '^#' | grep -i 'hit' | awk '{ s = s $1 "=" $2 " " } END { print s }')
      row "$name" "Warm cache GET 1 MiB / 200 MiB, 2nd GET after restart (MiB/s; TTFB ms)" "$wc1 / $wc2" \
        "-" "-" "1st (cold) GET: $first1 / $first2 MiB/s"
      notes+=("$name warm-cache metrics: ${hits:-no cache hit metric found}")
    fi
    stop_stowage
    # hand rows/notes/commands back to the parent shell
    declare -p rows notes commands | sed "s/^declare -a /declare -ga /" >"$work/out-$name.sh"
  )
  # shellcheck disable=SC1090
  . "$work/out-$name.sh"
  log "== $name: stopping the test server"
  "$repo/scripts/test-servers/$name.sh" stop "$state" >/dev/null 2>&1 || true
  server_name=
}

for p in $BENCH_PROVIDERS; do
  run_provider "$p"
done

# ---------------------------------------------------------------------------------------------
# Report
{
  echo "# Stowage on remote stores $stamp"
  echo
  echo "- Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)," \
    "$(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)," \
    "load average at start $load_start / at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- Versions: $("$STOWAGE_BIN" --version 2>&1 | head -1) (git $(git -C "$repo" rev-parse --short HEAD)$(
    git -C "$repo" diff --quiet HEAD -- src 2>/dev/null || echo ", src/ has uncommitted changes")), $(curl --version | head -1 | awk '{ print $1, $2 }')," \
    "$(aws --version 2>&1 | awk '{ print $1 }'), $(rclone version | head -1), $(vips --version)"
  echo "- Stowage runs with CACHE_STORAGE_SIZE=0 except in the warm-cache rows. Its GET is POST images.download" \
    "(JSON body, x-api-key, catalog lookup, then a GET from the server); the direct GET is one curl GET of the same object" \
    "(presigned URL / SAS / bearer token). The test servers (radosgw memstore, Azurite, the Node GCS fake), the" \
    "clients and Stowage share the same $(nproc) cores; compare ratios within one run."
  echo "- Ratio = direct time / Stowage time (1.00 = as fast as the direct client; throughput ratio). TTFB added =" \
    "Stowage's median time to first byte minus the direct one; curl's time_starttransfer is the first byte of the" \
    "response (status line), so a server that answers headers before its first body byte looks faster than it is."
  echo "- Image sizes: $bytes_1m B, $bytes_200m B, $bytes_1g B (uncompressed TIFF, vips black)."
  echo
  echo "| Server | Case | Stowage | Direct | Ratio stowage/direct | TTFB added |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  report_tail "Commands (\$TOKEN = the admin token):"
} >"$report"
show_report
