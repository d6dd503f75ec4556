#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Linked objects behind the storage cache (issue 13; see bench/README.md, "link_cache.sh"), side
# by side in one run, for each test server of scripts/test-servers/ (radosgw, azurite, gcs):
#   1. Cold GET of a linked ~200 MiB image through Stowage (images.download, the storage cache
#      emptied and Stowage restarted before each run) vs a direct GET of the same object by a
#      presigned URL / SAS / bearer token: TTFB and MiB/s
#   2. Warm GET of it (from the storage cache) vs nginx serving the cache entry's own file
# Stowage runs on the local provider; the image is linked as <scheme>://<bucket>/<key> through
# remote_links.yml. Everything listens on 127.0.0.1 only; everything started here is stopped on
# exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
# shellcheck source=bench/direct.sh
source "$here/direct.sh"

BENCH_PROVIDERS=${BENCH_PROVIDERS:-"radosgw azurite gcs"}
BENCH_GET_RUNS=${BENCH_GET_RUNS:-3}  # runs of each side per case; the median is reported
BENCH_NGINX_WORKERS=${BENCH_NGINX_WORKERS:-auto}
side_200m=8372                       # 3 bands uint8 PNG without compression: 210 MB ~ 200 MiB

require_tools vips curl python3 awk aws rclone gcloud nginx
ensure_stowage

start_workdir link-cache
stowage_pid= nginx_pid= server_name=
stop_servers() {
  stop_pid "$stowage_pid"
  stop_pid "$nginx_pid"
  [[ -n $server_name ]] && "$repo/scripts/test-servers/$server_name.sh" stop "$work/state-$server_name" >/dev/null 2>&1
  return 0
}
start_report -link-cache
curl_w='%{http_code} %{time_starttransfer} %{time_total} %{size_download}\n'

img=$work/200m.png
vips black "$img[compression=0]" $side_200m $side_200m --bands 3  # stored deflate: ~raw size, header first
bytes=$(stat -c %s "$img")
key=bench-link-cache/200m.png

# The remote_links.yml connection of a test server (its .env sourced), allowing its public bucket.
connection_yaml() {  # name bucket
  echo "bench-$1:"
  case $1 in
    radosgw) echo "  provider: minio"; echo "  endpoint: $STORAGE_ENDPOINT:$STORAGE_PORT"
             echo "  force_path_style: true"; echo "  region: $STORAGE_REGION" ;;
    azurite) echo "  provider: azure"; echo "  endpoint: $STORAGE_ENDPOINT" ;;
    gcs) echo "  provider: google"; echo "  endpoint: $STORAGE_ENDPOINT"
         echo "  credentials_path: $STORAGE_CREDENTIALS_PATH" ;;
  esac
  if [[ $1 != gcs ]]; then
    echo "  access_key: $STORAGE_ACCESS_KEY"
    echo "  secret_key: env:BENCH_LINK_SECRET"
  fi
  echo "  buckets: [$2]"
}
scheme_of() { case $1 in radosgw) echo s3 ;; azurite) echo azure ;; gcs) echo google ;; esac; }

start_stowage() {  # on the local provider, with the links file; keeps DATA_PATH across restarts
  (cd "$sdir" && BENCH_LINK_SECRET=${STORAGE_SECRET_KEY:-} exec "$STOWAGE_BIN" serve) >>"$sdir/serve.log" 2>&1 &
  stowage_pid=$!
  wait_port "$sport" 20 || { cat "$sdir/serve.log" >&2; die "stowage did not listen"; }
  token=$(cat "$sdir/data/admin-token")
  api=http://127.0.0.1:$sport/public/api/v3
}
stop_stowage() {
  kill -TERM "$stowage_pid" 2>/dev/null && wait "$stowage_pid" 2>/dev/null || true
  stowage_pid=
}
get_stowage() {  # id -> "code ttfb total bytes"
  curl -sS -XPOST -H "x-api-key: $token" -H 'Content-Type: application/json' -d "{\"id\":$1}" \
    -o /dev/null -w "$curl_w" "$api/images.download"
}
# The file of the storage-cache entry of the linked object.
entry_file() {
  python3 - "$sdir/data/cache/storage" "$1" <<'EOF'
import sqlite3, sys
root, key = sys.argv[1:]
db = sqlite3.connect(f"file:{root}/index.db?mode=ro", uri=True)
rows = db.execute("SELECT file FROM entries WHERE key LIKE ?", (f"%\n{key}",)).fetchall()
print(rows[0][0] if rows else "")
EOF
}

run_provider() {
  local name=$1 state=$work/state-$1
  log "== $name: starting the test server"
  server_name=$name
  "$repo/scripts/test-servers/$name.sh" start "$state" >"$work/$name-start.log" 2>&1 ||
    { tail -20 "$work/$name-start.log" >&2; die "$name.sh start failed"; }
  (
    trap 'set +e; stop_pid "$stowage_pid"; stop_pid "$nginx_pid"' EXIT
    set -a
    # shellcheck disable=SC1090
    . "$state/$name.env"
    set +a
    local bucket=${STORAGE_BUCKET_PREFIX}-public
    setup_direct_"$name"
    direct_put_"$name" "$img" "$bucket" "$key" || die "$name: direct upload failed"
    sdir=$work/stowage-$name sport=$(free_port)
    mkdir -p "$sdir"
    connection_yaml "$name" "$bucket" >"$sdir/remote_links.yml"
    printf 'DATA_PATH=%s\nSTOWAGE_LISTEN=127.0.0.1:%s\nREMOTE_LINKS_PATH=%s\n' \
      "$sdir/data" "$sport" "$sdir/remote_links.yml" >"$sdir/.env"
    cmd "stowage serve (local provider) with remote_links.yml of $name; images.bulk.add {\"link\":\"$(scheme_of "$name")://$bucket/$key\"}"
    start_stowage
    team=$(post teams.list '{}' | json 'd["entities"][0]["id"]')
    ws=$(post workspaces.list "{\"teamId\":$team}" | json 'd["entities"][0]["id"]')
    proj=$(post projects.add "{\"workspaceId\":$ws,\"name\":\"links-$stamp\",\"type\":\"images\"}" | json 'd["id"]')
    ds=$(post datasets.add "{\"projectId\":$proj,\"name\":\"d\"}" | json 'd["id"]')
    post images.bulk.add "{\"datasetId\":$ds,\"images\":[{\"title\":\"200m.png\",\"link\":\"$(scheme_of "$name")://$bucket/$key\"}],\"forceMetadataForLinks\":true}" \
      >"$work/add.json" || { cat "$work/add.json" "$sdir/remote_links.yml" >&2; die "$name: adding the link failed"; }
    id=$(json 'd[0]["id"]' <"$work/add.json")
    direct_hdr=()
    direct_url_"$name" "$bucket" "$key"
    curl -sS "${direct_hdr[@]}" -o /dev/null "$url"  # untimed: the server's page cache

    log "$name: cold GETs (cache emptied, Stowage restarted before each)"
    local i code ttfb total n s_ttfb="" s_tot="" d_ttfb="" d_tot=""
    for ((i = 1; i <= BENCH_GET_RUNS; i++)); do
      stop_stowage
      rm -rf "$sdir/data/cache/storage"
      start_stowage
      read -r code ttfb total n < <(get_stowage "$id")
      [[ $code == 200 && $n == "$bytes" ]] || notes+=("$name cold run $i: HTTP $code, $n B of $bytes")
      s_ttfb+=" $ttfb" s_tot+=" $total"
      read -r code ttfb total n < <(curl -sS "${direct_hdr[@]}" -o /dev/null -w "$curl_w" "$url")
      [[ $code == 200 && $n == "$bytes" ]] || notes+=("$name direct run $i: HTTP $code, $n B of $bytes")
      d_ttfb+=" $ttfb" d_tot+=" $total"
    done
    local st sf dt df
    st=$(echo "$s_tot" | median) sf=$(echo "$s_ttfb" | median)
    dt=$(echo "$d_tot" | median) df=$(echo "$d_ttfb" | median)
    row "$name" "Cold linked GET $(mib $((bytes / 1024))) MiB (MiB/s; TTFB ms)" \
      "$(mbps "$bytes" "$st") ($(ms "$sf"))" "direct: $(mbps "$bytes" "$dt") ($(ms "$df"))" \
      "$(ratio "$dt" "$st")" "$(awk -v a="$sf" -v b="$df" 'BEGIN { printf "%+.1f", (a - b) * 1000 }') ms"
    notes+=("$name cold totals (s): stowage$s_tot; direct$d_tot. Direct client: $direct_client")

    log "$name: warm GETs vs nginx on the cache entry"
    get_stowage "$id" >/dev/null
    local file
    file=$(entry_file "$bucket"$'\n'"$key")
    [[ -n $file ]] || die "$name: no storage-cache entry for $key"
    start_nginx "$sdir/data/cache/storage"
    cmd "nginx (lib.sh start_nginx) root = DATA_PATH/cache/storage; curl -o /dev/null http://127.0.0.1:\$NPORT/$file"
    local w_ttfb="" w_tot="" x_ttfb="" x_tot=""
    for ((i = 1; i <= BENCH_GET_RUNS; i++)); do
      read -r code ttfb total n < <(get_stowage "$id")
      [[ $code == 200 && $n == "$bytes" ]] || notes+=("$name warm run $i: HTTP $code, $n B")
      w_ttfb+=" $ttfb" w_tot+=" $total"
      read -r code ttfb total n < <(curl -sS -o /dev/null -w "$curl_w" "http://127.0.0.1:$nport/$file")
      [[ $code == 200 && $n == "$bytes" ]] || notes+=("$name nginx run $i: HTTP $code, $n B")
      x_ttfb+=" $ttfb" x_tot+=" $total"
    done
    st=$(echo "$w_tot" | median) sf=$(echo "$w_ttfb" | median)
    dt=$(echo "$x_tot" | median) df=$(echo "$x_ttfb" | median)
    row "$name" "Warm linked GET $(mib $((bytes / 1024))) MiB from the storage cache (MiB/s; TTFB ms)" \
      "$(mbps "$bytes" "$st") ($(ms "$sf"))" "nginx: $(mbps "$bytes" "$dt") ($(ms "$df"))" \
      "$(ratio "$dt" "$st")" "$(awk -v a="$sf" -v b="$df" 'BEGIN { printf "%+.1f", (a - b) * 1000 }') ms"
    hits=$(curl -sS "http://127.0.0.1:$sport/metrics" | grep -E '^stowage_(cache_(hits|misses)_total\{cache="storage"\}|remote_requests_total)' | awk '{ s = s $1 "=" $2 " " } END { print s }')
    notes+=("$name warm totals (s): stowage$w_tot; nginx$x_tot. Metrics after: $hits")
    stop_stowage
    stop_pid "$nginx_pid"
    nginx_pid=
    direct_rm_"$name" "$bucket" "$key" || true
    declare -p rows notes commands | sed "s/^declare -a /declare -ga /" >"$work/out-$name.sh"
  )
  # shellcheck disable=SC1090
  . "$work/out-$name.sh"
  "$repo/scripts/test-servers/$name.sh" stop "$state" >/dev/null 2>&1 || true
  server_name=
}

for p in $BENCH_PROVIDERS; do
  run_provider "$p"
done

{
  echo "# Linked objects behind the storage cache $stamp"
  echo
  echo "- Machine: $(nproc) cores, load average at start $load_start / at end $(cut -d' ' -f1-3 /proc/loadavg);" \
    "$("$STOWAGE_BIN" --version 2>&1 | head -1) (git $(git -C "$repo" rev-parse --short HEAD)), $(nginx -v 2>&1)"
  echo "- Cold: the first images.download of a linked $bytes-byte image after the storage cache was emptied and" \
    "Stowage restarted: it streams from the remote while it fills the cache. Direct: one curl GET of the same object" \
    "(presigned URL / SAS / bearer token). Warm: the same download answered from the cache entry, next to nginx" \
    "serving that very file with sendfile. Medians of $BENCH_GET_RUNS runs."
  echo "- Ratio = peer time / Stowage time (above 1: Stowage was faster). Everything shares the same $(nproc) cores."
  echo
  echo "| Server | Case | Stowage | Peer | Ratio | TTFB Stowage - peer |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  report_tail "Commands (\$TOKEN = the admin token):"
} >"$report"
show_report
