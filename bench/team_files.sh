#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Issue 17 on radosgw, side by side in one run (see bench/README.md, "team_files.sh"):
#   1. Team file upload of BENCH_TEAM_FILE_GIB (3) GiB: curl -F name/path/file to
#      file-storage.bulk.upload (the SDK's upload), Stowage's VmHWM sampled   vs aws s3 cp
#   2. The same file down: curl POST file-storage.download > /dev/null      vs aws s3 cp to /dev/null
#   3. `stowage links sync` of BENCH_SYNC_OBJECTS (10,000) small PNGs under one prefix (items/s),
#      beside `aws s3 ls --recursive` of the same prefix (the listing alone).
# Everything listens on 127.0.0.1 only; everything started here is stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

BENCH_TEAM_FILE_GIB=${BENCH_TEAM_FILE_GIB:-3}
BENCH_SYNC_OBJECTS=${BENCH_SYNC_OBJECTS:-10000}

require_tools curl python3 awk aws vips
ensure_stowage

start_workdir team-files
stowage_pid= sampler_pid= state=
stop_servers() {
  [[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null && wait "$sampler_pid" 2>/dev/null
  stop_pid "$stowage_pid"
  [[ -n $state ]] && "$repo/scripts/test-servers/radosgw.sh" stop "$state" >/dev/null 2>&1
  return 0
}
start_report -team-files

log "starting radosgw"
state=$work/state
# The test radosgw keeps objects in RAM (memstore, 3 GiB by default) and frees deleted multipart
# tails only after its own gc delay: room for both sides' copies of the file, plus the PNGs.
export RADOSGW_MEMSTORE_BYTES=$(((2 * BENCH_TEAM_FILE_GIB + 2) << 30))
"$repo/scripts/test-servers/radosgw.sh" start "$state" >"$work/radosgw.log" 2>&1 ||
  { tail -20 "$work/radosgw.log" >&2; die "radosgw.sh start failed"; }
envf=$state/radosgw.env
set -a
# shellcheck disable=SC1090
. "$envf"
set +a
s3_ep=http://127.0.0.1:$STORAGE_PORT
export AWS_ACCESS_KEY_ID=$STORAGE_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$STORAGE_SECRET_KEY
export AWS_DEFAULT_REGION=$STORAGE_REGION
unset AWS_CA_BUNDLE
cmd "scripts/test-servers/radosgw.sh start <state>; stowage serve with <state>/radosgw.env + DATA_PATH, STOWAGE_LISTEN, CACHE_STORAGE_SIZE=0"

sdir=$work/stowage
mkdir -p "$sdir"
sport=$(free_port)
{
  grep -E '^STORAGE_' "$envf"
  echo "DATA_PATH=$sdir/data"
  echo "STOWAGE_LISTEN=127.0.0.1:$sport"
  echo "CACHE_STORAGE_SIZE=0"
  echo "REMOTE_LINKS_PATH=$sdir/remote_links.yml"
} >"$sdir/.env"
cat >"$sdir/remote_links.yml" <<EOF
bench:
  provider: minio
  endpoint: $s3_ep
  access_key: env:AWS_ACCESS_KEY_ID
  secret_key: env:AWS_SECRET_ACCESS_KEY
  region: $STORAGE_REGION
  force_path_style: true
  buckets: [$STORAGE_BUCKET_PREFIX-public]
EOF
(cd "$sdir" && exec "$STOWAGE_BIN" serve) >>"$sdir/serve.log" 2>&1 &
stowage_pid=$!
wait_port "$sport" 20 || { cat "$sdir/serve.log" >&2; die "stowage did not listen"; }
token=$(cat "$sdir/data/admin-token")
api=http://127.0.0.1:$sport/public/api/v3
team=$(post teams.list '{}' | json 'd["entities"][0]["id"]')

# ---- 1 and 2: a big team file up and down -----------------------------------------------------
big=$work/checkpoint.bin
bytes=$((BENCH_TEAM_FILE_GIB << 30))
log "making a $BENCH_TEAM_FILE_GIB GiB file"
head -c "$bytes" /dev/urandom >"$big"
cat "$big" >/dev/null
sum=$(sha256sum "$big" | cut -d' ' -f1)
hwm_idle=$(rss_kib VmHWM)
peak=0
( while kill -0 "$stowage_pid" 2>/dev/null; do
    awk '$1 == "VmRSS:" { print $2 }' "/proc/$stowage_pid/status" 2>/dev/null
    sleep 0.1
  done ) >"$work/rss" &
sampler_pid=$!

log "stowage: upload"
cmd "curl -F name=checkpoint.bin -F path=/bench/ -F file=@<file> '$api/file-storage.bulk.upload?teamId=$team'"
t0=$(now)
curl -sS --fail-with-body -H "x-api-key: $token" -F name=checkpoint.bin -F path=/bench/ \
  -F "file=@$big;type=application/octet-stream" -o "$work/up.json" \
  "$api/file-storage.bulk.upload?teamId=$team" || { cat "$work/up.json" >&2; die "upload failed"; }
t1=$(now)
st_up=$(elapsed "$t0" "$t1")
hwm_up=$(rss_kib VmHWM)
log "stowage: download"
cmd "curl -XPOST -d '{\"teamId\":$team,\"path\":\"/bench/checkpoint.bin\"}' $api/file-storage.download | sha256sum"
t0=$(now)
down_sum=$(curl -sS --fail -XPOST -H "x-api-key: $token" -H 'Content-Type: application/json' \
  -d "{\"teamId\":$team,\"path\":\"/bench/checkpoint.bin\"}" "$api/file-storage.download" |
  sha256sum | cut -d' ' -f1)
t1=$(now)
st_down=$(elapsed "$t0" "$t1")
hwm_down=$(rss_kib VmHWM)
kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null || true
sampler_pid=
peak=$(sort -n "$work/rss" | tail -1)
[[ $down_sum == "$sum" ]] || notes+=("the downloaded team file's SHA-256 differs from the file's")
post file-storage.remove "{\"teamId\":$team,\"path\":\"/bench/\"}" >/dev/null

log "aws s3 cp: upload and download"
cmd "aws s3 cp <file> s3://$STORAGE_BUCKET_PREFIX-private/bench/checkpoint.bin --endpoint-url $s3_ep"
t0=$(now)
aws s3 cp --only-show-errors "$big" "s3://$STORAGE_BUCKET_PREFIX-private/bench/checkpoint.bin" \
  --endpoint-url "$s3_ep"
t1=$(now)
aws_up=$(elapsed "$t0" "$t1")
cmd "aws s3 cp s3://$STORAGE_BUCKET_PREFIX-private/bench/checkpoint.bin - --endpoint-url $s3_ep | sha256sum"
t0=$(now)
aws s3 cp --only-show-errors "s3://$STORAGE_BUCKET_PREFIX-private/bench/checkpoint.bin" - \
  --endpoint-url "$s3_ep" | sha256sum >/dev/null
t1=$(now)
aws_down=$(elapsed "$t0" "$t1")
aws s3 rm --only-show-errors "s3://$STORAGE_BUCKET_PREFIX-private/bench/checkpoint.bin" \
  --endpoint-url "$s3_ep"
rm -f "$big"

row "1 | team file upload, $BENCH_TEAM_FILE_GIB GiB" "$(mbps "$bytes" "$st_up") MiB/s ($st_up s)" \
  "$(mbps "$bytes" "$aws_up") MiB/s ($aws_up s)" "$(ratio "$aws_up" "$st_up")"
row "2 | team file download, $BENCH_TEAM_FILE_GIB GiB" "$(mbps "$bytes" "$st_down") MiB/s ($st_down s)" \
  "$(mbps "$bytes" "$aws_down") MiB/s ($aws_down s)" "$(ratio "$aws_down" "$st_down")"
notes+=("Stowage's memory: VmHWM $(mib "$hwm_idle") MiB idle, $(mib "$hwm_up") MiB after the upload, $(mib "$hwm_down") MiB after the download; peak VmRSS sampled every 100 ms: $(mib "$peak") MiB")

# ---- 3: bucket sync -----------------------------------------------------------------------------
log "putting $BENCH_SYNC_OBJECTS small PNGs under s3://$STORAGE_BUCKET_PREFIX-public/sync/"
mkdir -p "$work/sync"
vips black "$work/one.png" 16 16
for ((i = 0; i < BENCH_SYNC_OBJECTS; i++)); do cp "$work/one.png" "$work/sync/$i.png"; done
aws s3 cp --only-show-errors --recursive "$work/sync" "s3://$STORAGE_BUCKET_PREFIX-public/sync/" \
  --endpoint-url "$s3_ep"
rm -rf "$work/sync"
ws=$(post workspaces.list "{\"teamId\":$team}" | json 'd["entities"][0]["id"]')
proj=$(post projects.add "{\"workspaceId\":$ws,\"name\":\"sync-$stamp\",\"type\":\"images\"}" | json 'd["id"]')
ds=$(post datasets.add "{\"projectId\":$proj,\"name\":\"d\"}" | json 'd["id"]')
prefix=s3://$STORAGE_BUCKET_PREFIX-public/sync/
cmd "aws s3 ls --recursive $prefix --endpoint-url $s3_ep | wc -l"
t0=$(now)
listed=$(aws s3 ls --recursive "$prefix" --endpoint-url "$s3_ep" | wc -l)
t1=$(now)
ls_secs=$(elapsed "$t0" "$t1")
cmd "stowage links sync $prefix --dataset $ds --json"
t0=$(now)
(cd "$sdir" && "$STOWAGE_BIN" links sync "$prefix" --dataset "$ds" --json) >"$work/sync.json"
t1=$(now)
sync_secs=$(elapsed "$t0" "$t1")
added=$(json 'd["added"]' <"$work/sync.json")
t0=$(now)
(cd "$sdir" && "$STOWAGE_BIN" links sync "$prefix" --dataset "$ds" --json) >"$work/resync.json"
t1=$(now)
resync_secs=$(elapsed "$t0" "$t1")
existing=$(json 'd["existing"]' <"$work/resync.json")
row "3 | links sync, $BENCH_SYNC_OBJECTS objects" \
  "$added added in $sync_secs s: $(awk -v n="$added" -v s="$sync_secs" 'BEGIN { printf "%.0f", n / s }') items/s; rerun ($existing already there) $resync_secs s" \
  "aws s3 ls: $listed keys in $ls_secs s" "-"
aws s3 rm --only-show-errors --recursive "$prefix" --endpoint-url "$s3_ep"

{
  echo "# Team files and links sync on radosgw — $stamp"
  echo
  echo "Load average at start: $load_start; at end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "$(aws --version 2>&1 | awk '{ print $1 }'), $(curl --version | head -1 | awk '{ print $1, $2 }')"
  echo
  echo "| # | case | stowage | peer | peer time / stowage time |"
  echo "|---|------|---------|------|-------|"
  printf '%s\n' "${rows[@]}"
  echo
  report_tail
} >"$report"
show_report
