#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Stowage links (see bench/README.md, "links.sh"), with an fs connection of remote_links.yml:
#   1. remote-storage.upload of a ~1 GiB image to an fs:// link: wall time and Stowage's peak RSS,
#      next to dd conv=fsync of the same file into the same folder
#   2. images.bulk.add of 10,000 small PNG links (fs://), batches of 50, forceMetadataForLinks=true
#      (Stowage reads each file's header) and, for scale, =false: items per second
# Everything listens on 127.0.0.1 only; everything started here is stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

BENCH_LINKS=${BENCH_LINKS:-10000}      # number of PNG links
BENCH_BATCH=${BENCH_BATCH:-50}         # items per images.bulk.add
side_1g=18919                          # 3 bands uint8 uncompressed TIFF: 1.07 GB ~ 1 GiB

require_tools vips curl dd python3 awk
ensure_stowage

start_workdir links
stowage_pid= sampler_pid=
stop_servers() {
  [[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null && wait "$sampler_pid" 2>/dev/null
  stop_pid "$stowage_pid"
}

start_report -links

# ---------------------------------------------------------------------------------------------
# Stowage (local disk) with an fs connection
links_root=$work/links
mkdir -p "$work/stowage" "$links_root/up" "$links_root/png"
sport=$(free_port)
cat >"$work/stowage/.env" <<EOF
DATA_PATH=$work/stowage/data
STOWAGE_LISTEN=127.0.0.1:$sport
EOF
cat >"$work/stowage/remote_links.yml" <<EOF
bench-fs:
  provider: fs
  path: $links_root
  storage_id: bench-links
EOF
log "starting stowage on 127.0.0.1:$sport (fs://bench-links = $links_root)"
(cd "$work/stowage" && exec "$STOWAGE_BIN" serve) >"$work/stowage/serve.log" 2>&1 &
stowage_pid=$!
wait_port "$sport" 20 || { cat "$work/stowage/serve.log" >&2; die "stowage did not listen"; }
token=$(cat "$work/stowage/data/admin-token")
api=http://127.0.0.1:$sport/public/api/v3
alive() {
  if ! kill -0 "$stowage_pid" 2>/dev/null; then
    local st=0
    wait "$stowage_pid" || st=$?
    stowage_pid=
    tail -20 "$work/stowage/serve.log" >&2
    cp "$work/stowage/serve.log" "$results_dir/$stamp-links-serve.log"
    die "stowage exited with status $st during $1"
  fi
}
team=$(post teams.list '{}' | json 'd["entities"][0]["id"]')
ws=$(post workspaces.list "{\"teamId\":$team}" | json 'd["entities"][0]["id"]')
proj=$(post projects.add "{\"workspaceId\":$ws,\"name\":\"links-$stamp\",\"type\":\"images\"}" | json 'd["id"]')
hwm_idle=$(rss_kib VmHWM)

# ---------------------------------------------------------------------------------------------
# Case 1: remote-storage.upload of 1 GiB to fs://
log "case 1: making the 1 GiB image"
big=$work/1g.tif
vips black "$big[compression=none]" $side_1g $side_1g --bands 3
big_bytes=$(stat -c %s "$big")
cat "$big" >/dev/null
t0=$(date +%s.%N)
dd if="$big" of="$links_root/up/dd.tif" bs=1M conv=fsync status=none
t1=$(date +%s.%N)
dd_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
rm -f "$links_root/up/dd.tif"
cmd "dd if=$big of=$links_root/up/dd.tif bs=1M conv=fsync"
cat "$big" >/dev/null
sync
(
  while [[ -r /proc/$stowage_pid/status ]]; do
    awk '$1 == "VmRSS:" { print $2 }' "/proc/$stowage_pid/status" 2>/dev/null || break
    sleep 0.1
  done
) >"$work/rss.log" 2>/dev/null &
sampler_pid=$!
log "case 1: remote-storage.upload to fs://bench-links/up/1g.tif"
cmd "curl -XPOST -H 'x-api-key: \$TOKEN' -F path=fs://bench-links/up/1g.tif -F 'file=@$big;filename=1g.tif' -w '%{time_total}' $api/remote-storage.upload"
up_s=$(curl -sS --fail-with-body -XPOST -H "x-api-key: $token" -F path=fs://bench-links/up/1g.tif \
  -F "file=@$big;filename=1g.tif" -o "$work/rup.json" -w '%{time_total}' "$api/remote-storage.upload") ||
  { cat "$work/rup.json" >&2; alive remote-storage.upload; die "remote-storage.upload failed"; }
kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null || true
sampler_pid=
alive remote-storage.upload
up_s=$(awk -v s="$up_s" 'BEGIN { printf "%.3f", s }')
peak=$(sort -n "$work/rss.log" | tail -1)
hwm_up=$(rss_kib VmHWM)
stored=$(stat -c %s "$links_root/up/1g.tif" 2>/dev/null || echo missing)
[[ $stored == "$big_bytes" ]] || notes+=("remote-storage.upload: stored $stored B, file has $big_bytes B")
cmp -s "$big" "$links_root/up/1g.tif" || notes+=("remote-storage.upload: stored file differs from the source")
notes+=("remote-storage.upload answered: $(head -c 300 "$work/rup.json")")
row "1. remote-storage.upload $(mib $((big_bytes / 1024))) MiB to fs:// (MiB/s; s)" \
  "$(mbps "$big_bytes" "$up_s") ($up_s s)" "dd conv=fsync: $(mbps "$big_bytes" "$dd_s") ($dd_s s)" "$(ratio "$dd_s" "$up_s")"
row "1. Stowage VmHWM idle / after upload; peak VmRSS during upload" \
  "$(mib "$hwm_idle") / $(mib "$hwm_up") MiB; $(mib "$peak") MiB" "-" "-"
rm -f "$big" "$links_root/up/1g.tif"

# ---------------------------------------------------------------------------------------------
# Case 2: 10,000 PNG links
log "case 2: writing $BENCH_LINKS PNGs (32x32 RGB, each a different colour)"
python3 - "$links_root/png" "$BENCH_LINKS" <<'EOF'
import struct, sys, zlib
d, n = sys.argv[1], int(sys.argv[2])
def chunk(t, b):
    return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xffffffff)
for i in range(n):
    w, h = 32, 32
    px = bytes((i & 255, (i >> 8) & 255, 128)) * w
    raw = b"".join(b"\0" + px for _ in range(h))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    with open(f"{d}/{i:05d}.png", "wb") as f:
        f.write(png)
EOF
# add_links FORCE -> prints "seconds items bad" (one keep-alive connection, like an SDK client)
add_links() {
  local dsid
  dsid=$(post datasets.add "{\"projectId\":$proj,\"name\":\"links-force-$1\"}" | json 'd["id"]')
  python3 - "127.0.0.1" "$sport" "$token" "$dsid" "$BENCH_LINKS" "$BENCH_BATCH" "$1" <<'EOF'
import http.client, json, sys, time
host, port, token, ds, n, batch, force = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7] == "true"
c = http.client.HTTPConnection(host, port, timeout=120)
items = bad = 0
first = None
t0 = time.monotonic()
for start in range(0, n, batch):
    body = json.dumps({"datasetId": ds, "forceMetadataForLinks": force, "images": [
        {"title": f"{i:05d}.png", "link": f"fs://bench-links/png/{i:05d}.png"} for i in range(start, min(n, start + batch))]})
    c.request("POST", "/public/api/v3/images.bulk.add", body,
              {"x-api-key": token, "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        bad += min(n, start + batch) - start
        if first is None: first = f"HTTP {r.status}: {data[:200]!r}"
        continue
    for it in json.loads(data):
        ok = "id" in it and (not force or (it.get("width") == 32 and it.get("height") == 32 and it.get("mime") == "image/png"))
        if ok: items += 1
        else:
            bad += 1
            if first is None: first = json.dumps(it)[:300]
t = time.monotonic() - t0
print(f"{t:.3f} {items} {bad} {first or ''}")
EOF
}
for force in true false; do
  log "case 2: images.bulk.add of $BENCH_LINKS fs:// links, batches of $BENCH_BATCH, forceMetadataForLinks=$force"
  read -r secs items bad first < <(add_links "$force")
  alive "images.bulk.add"
  [[ $bad == 0 ]] || notes+=("bulk.add force=$force: $bad items not added as expected; first: $first")
  eval "secs_$force=$secs items_$force=$items"
  cmd "POST $api/images.bulk.add x $((BENCH_LINKS / BENCH_BATCH)) on one keep-alive connection: {\"datasetId\":N,\"forceMetadataForLinks\":$force,\"images\":[{\"title\":\"00000.png\",\"link\":\"fs://bench-links/png/00000.png\"},… $BENCH_BATCH]}"
done
ips_t=$(awk -v n="$items_true" -v s="$secs_true" 'BEGIN { printf "%.0f", n / s }')
ips_f=$(awk -v n="$items_false" -v s="$secs_false" 'BEGIN { printf "%.0f", n / s }')
row "2. images.bulk.add $BENCH_LINKS fs:// PNG links, batches of $BENCH_BATCH (items/s; s)" \
  "forceMetadataForLinks=true: $ips_t ($secs_true s, $items_true ok)" \
  "=false: $ips_f ($secs_false s, $items_false ok)" "$(ratio "$secs_false" "$secs_true")"
hwm_end=$(rss_kib VmHWM)
notes+=("Stowage VmHWM at the end: $(mib "$hwm_end") MiB")

{
  echo "# Stowage links benchmark $stamp"
  echo
  echo "- Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)," \
    "$(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)," \
    "load average at start $load_start / at end $(cut -d' ' -f1-3 /proc/loadavg)," \
    "fs under test: $(df -T "$links_root" | awk 'NR == 2 { print $2 " on " $1 }')"
  echo "- Versions: $("$STOWAGE_BIN" --version 2>&1 | head -1) (git $(git -C "$repo" rev-parse --short HEAD)$(
    git -C "$repo" diff --quiet HEAD -- src 2>/dev/null || echo ", src/ has uncommitted changes")), $(curl --version | head -1 | awk '{ print $1, $2 }'), $(vips --version)"
  echo "- remote_links.yml: one \`provider: fs\` connection, storage_id bench-links, path = a folder of the scratch dir."
  echo "  Case 2 ratio = time with forceMetadataForLinks=false / time with =true (the cost of reading each header)."
  echo
  echo "| Case | Stowage | Peer | Ratio |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  report_tail "Commands (\$TOKEN = the admin token):"
} >"$report"
show_report
