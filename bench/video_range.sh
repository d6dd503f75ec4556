#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Video seeking (issue 9; see bench/README.md, "video_range.sh"): a large video uploaded through
# the SDK's path (videos.bulk.upload, import-storage.internal.meta.list, videos.bulk.add), then
# random 1 MiB ranges read the way a player seeks:
#   Stowage  POST videos.download {"id"} with Range: bytes=A-B   (token, catalog, item lookup)
#   nginx    GET of the very file Stowage stored, same Range      (a static file server)
# wrk drives both with the same Lua script and the same random offsets (seeded), so the two see
# identical requests. Reported: requests/s, MiB/s, p50/p99 latency, and Stowage's peak RSS (the
# upload and the ranged reads must not grow it with the video's size).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

BENCH_VIDEO_MB=${BENCH_VIDEO_MB:-1024}  # size of the video, MiB (approximately)
BENCH_RANGE_KB=${BENCH_RANGE_KB:-1024}  # bytes per ranged read, KiB
BENCH_CONNS=${BENCH_CONNS:-8}
BENCH_DURATION=${BENCH_DURATION:-10}
BENCH_NGINX_WORKERS=${BENCH_NGINX_WORKERS:-1}

require_tools ffmpeg wrk nginx curl python3 awk
ensure_stowage
start_workdir video-range
start_report -video-range

stowage_pid= nginx_pid=
stop_servers() {
  stop_pid "$nginx_pid"
  stop_pid "$stowage_pid"
}

# ---- The video: a short 720p H.264 clip, looped with -c copy up to the size asked for.
log "making a ~${BENCH_VIDEO_MB} MiB video"
ffmpeg -v error -y -f lavfi -i "testsrc2=size=1280x720:rate=30" -t 20 -c:v libx264 -preset ultrafast \
  -b:v 40M -pix_fmt yuv420p "$work/seed.mp4"
seed_bytes=$(stat -c %s "$work/seed.mp4")
loops=$(( BENCH_VIDEO_MB * 1048576 / seed_bytes ))
ffmpeg -v error -y -stream_loop "$loops" -i "$work/seed.mp4" -c copy -movflags +faststart \
  "$work/big.mp4"
rm -f "$work/seed.mp4"
video_bytes=$(stat -c %s "$work/big.mp4")
cmd "ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=30 -t 20 -c:v libx264 -preset ultrafast -b:v 40M seed.mp4; ffmpeg -stream_loop $loops -i seed.mp4 -c copy -movflags +faststart big.mp4"

# ---- Stowage on its embedded defaults
sport=$(free_port)
mkdir -p "$work/stowage"
printf 'DATA_PATH=%s\nSTOWAGE_LISTEN=127.0.0.1:%s\n' "$work/stowage/data" "$sport" >"$work/stowage/.env"
(cd "$work/stowage" && exec "$STOWAGE_BIN" serve) >"$work/stowage/serve.log" 2>&1 &
stowage_pid=$!
wait_port "$sport" 20 || { cat "$work/stowage/serve.log" >&2; die "stowage did not listen"; }
token=$(cat "$work/stowage/data/admin-token")
api=http://127.0.0.1:$sport/public/api/v3
hwm_idle=$(rss_kib VmHWM)

team=$(post teams.list '{}' | json 'd["entities"][0]["id"]')
ws=$(post workspaces.list "{\"teamId\":$team}" | json 'd["entities"][0]["id"]')
proj=$(post projects.add "{\"workspaceId\":$ws,\"name\":\"bench-$stamp\",\"type\":\"videos\"}" | json 'd["id"]')
ds=$(post datasets.add "{\"projectId\":$proj,\"name\":\"d\"}" | json 'd["id"]')

log "uploading $(mib $((video_bytes / 1024))) MiB through videos.bulk.upload"
t0=$(now)
curl -sS --fail-with-body -XPOST -H "x-api-key: $token" -F "0-file=@$work/big.mp4;filename=0;type=video/*" \
  -o "$work/up.json" "$api/videos.bulk.upload"
up_secs=$(elapsed "$t0" "$(now)")
hash=$(json 'd[0]["hash"]' <"$work/up.json")
post import-storage.internal.meta.list "{\"hashes\":[\"$hash\"]}" >"$work/meta.json"
frames=$(json 'd[0]["meta"]["streams"][0]["framesCount"]' <"$work/meta.json")
post videos.bulk.add "{\"datasetId\":$ds,\"videos\":[{\"title\":\"big.mp4\",\"hash\":\"$hash\",\"meta\":{\"videoStreamIndex\":0}}]}" \
  >"$work/add.json"
vid=$(json 'd[0]["id"]' <"$work/add.json")
path=$(json 'd[0]["pathOriginal"]' <"$work/add.json")
storage_root=$work/stowage/data/storage
cmp -s "$work/big.mp4" "$storage_root$path" || die "the stored video differs from the upload"
hwm_upload=$(rss_kib VmHWM)
rm -f "$work/big.mp4"

# ---- nginx at the file Stowage stored
start_nginx "$storage_root"

# ---- The same random ranges for both: wrk's Lua, seeded per thread.
range_bytes=$((BENCH_RANGE_KB * 1024))
lua() {  # file method body
  cat >"$1" <<EOF
math.randomseed(42)
local size, len = $video_bytes, $range_bytes
wrk.method = "$2"
$( [[ -n $3 ]] && echo "wrk.body = '$3'" )
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = "$token"
request = function()
  local a = math.random(0, size - len)
  wrk.headers["Range"] = "bytes=" .. a .. "-" .. (a + len - 1)
  return wrk.format()
end
$(wrk_done_lua)
EOF
}
lua "$work/stowage.lua" POST "{\"id\":$vid}"
lua "$work/nginx.lua" GET ""

# A spot check that both answer the same bytes for one range.
curl -sS -XPOST -H "x-api-key: $token" -H 'Content-Type: application/json' -H 'Range: bytes=1000000-1999999' \
  -d "{\"id\":$vid}" -o "$work/s.bin" "$api/videos.download"
curl -sS -H 'Range: bytes=1000000-1999999' -o "$work/n.bin" "http://127.0.0.1:$nport$path"
cmp -s "$work/s.bin" "$work/n.bin" || die "stowage and nginx disagree on a range"

run() {  # name script url -> r_rps r_mibs r_p50 r_p99
  local out line
  wrk -t1 -c"$BENCH_CONNS" -d2s -s "$2" "$3" >/dev/null 2>&1 || true
  cmd "wrk -t1 -c$BENCH_CONNS -d${BENCH_DURATION}s --latency -s $(basename "$2") $3"
  out=$(wrk -t1 -c"$BENCH_CONNS" -d"${BENCH_DURATION}s" --timeout 30s --latency -s "$2" "$3")
  line=$(echo "$out" | grep '^BENCH ' | sed 's/^BENCH //')
  eval "$(echo "$line" | tr ' ' '\n' | sed 's/^/local w_/')"
  [[ $((w_non2xx + w_errors)) -eq 0 ]] || notes+=("$1: $w_non2xx non-2xx, $w_errors socket errors")
  r_rps=$(awk -v r="$w_requests" -v d="$w_duration_us" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
  r_mibs=$(awk -v b="$w_bytes" -v d="$w_duration_us" 'BEGIN { printf "%.0f", b / (d / 1e6) / 1048576 }')
  r_p50=$(awk -v u="$w_p50_us" 'BEGIN { printf "%.2f", u / 1000 }')
  r_p99=$(awk -v u="$w_p99_us" 'BEGIN { printf "%.2f", u / 1000 }')
}
log "random ${BENCH_RANGE_KB} KiB ranges, -c$BENCH_CONNS, ${BENCH_DURATION}s each"
run stowage "$work/stowage.lua" "$api/videos.download"
s_rps=$r_rps s_mibs=$r_mibs s_p50=$r_p50 s_p99=$r_p99
run nginx "$work/nginx.lua" "http://127.0.0.1:$nport$path"
n_rps=$r_rps n_mibs=$r_mibs n_p50=$r_p50 n_p99=$r_p99
hwm_end=$(rss_kib VmHWM)

row "random ${BENCH_RANGE_KB} KiB ranges of a $(mib $((video_bytes / 1024))) MiB video, -c$BENCH_CONNS (req/s)" \
  "$s_rps" "$n_rps" "$(ratio "$s_rps" "$n_rps")"
row "throughput (MiB/s)" "$s_mibs" "$n_mibs" "$(ratio "$s_mibs" "$n_mibs")"
row "latency p50 / p99 (ms)" "$s_p50 / $s_p99" "$n_p50 / $n_p99" ""

{
  echo "# Video seeking: Stowage videos.download with Range vs nginx ($stamp)"
  echo
  echo "- Video: $(mib $((video_bytes / 1024))) MiB H.264 MP4, $frames frames (import-storage.internal.meta.list)," \
    "uploaded through videos.bulk.upload in ${up_secs} s."
  echo "- Stowage peak RSS (VmHWM): idle $(mib "$hwm_idle") MiB, after the upload $(mib "$hwm_upload") MiB," \
    "after the ranged reads $(mib "$hwm_end") MiB."
  echo "- Machine: $(nproc) cores, load average at start $load_start / at end $(cut -d' ' -f1-3 /proc/loadavg);" \
    "wrk, nginx ($BENCH_NGINX_WORKERS worker) and Stowage share the cores; the file is in the page cache."
  echo "- Versions: stowage git $(git -C "$repo" rev-parse --short HEAD), $(nginx -v 2>&1), $(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }')."
  echo
  echo "| Case | Stowage | nginx | Ratio |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  report_tail
} >"$report"
show_report
