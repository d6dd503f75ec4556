# SPDX-License-Identifier: Apache-2.0
# Shared by the bench/*.sh scripts: sourced, never run. Each script sets `here` and `repo`,
# sources this file, then calls require_tools, ensure_stowage, start_workdir and start_report,
# and defines stop_servers() to stop what it started (called on every exit).

bench_name=$(basename "$0")
STOWAGE_BIN=${STOWAGE_BIN:-$repo/build-bench/stowage}
BENCH_TMPDIR=${BENCH_TMPDIR:-/tmp}

die() { echo "$bench_name: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "missing $tool"
  done
}

# Builds the Release binary into build-bench when it is not there yet (one job: 2 shared cores).
ensure_stowage() {
  [[ -x $STOWAGE_BIN ]] && return 0
  log "building stowage into build-bench"
  (cd "$repo" && cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release \
     -DSTOWAGE_BUILD_TESTS=OFF >/dev/null && ninja -C build-bench -j1 stowage) >&2
}

# start_workdir NAME: a scratch dir `work` under BENCH_TMPDIR, removed on exit (BENCH_KEEP=1
# keeps it) after the script's stop_servers().
start_workdir() {
  work=$(mktemp -d "$BENCH_TMPDIR/stowage-$1.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}
bench_cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  declare -F stop_servers >/dev/null && stop_servers
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then log "kept $work"; else rm -rf "$work"; fi
  exit "$rc"
}
# stop_pid PID: SIGTERM, then wait; quiet when it is already gone.
stop_pid() {
  [[ -n $1 ]] && kill -TERM "$1" 2>/dev/null && wait "$1" 2>/dev/null
  return 0
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {  # port seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# start_report SUFFIX: `report` is bench/results/<stamp><SUFFIX>.md; cmd/row/notes collect it.
start_report() {
  results_dir=$here/results
  mkdir -p "$results_dir"
  stamp=$(date +%Y%m%d-%H%M%S)
  load_start=$(cut -d' ' -f1-3 /proc/loadavg)
  report=$results_dir/$stamp${1:-}.md
  commands=() rows=() notes=()
}
cmd() { commands+=("$*"); }
row() {  # one table row of any number of cells
  local r="|" cell
  for cell in "$@"; do r+=" $cell |"; done
  rows+=("$r")
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mbps() { awk -v by="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", by / s / 1048576; else print "n/a" }'; }
gbps() { awk -v by="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.3f", by / s / 1e9; else print "n/a" }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ms() { awk -v s="$1" 'BEGIN { printf "%.1f", s * 1000 }'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# Stowage's memory (VmHWM, VmRSS, ... in KiB) and its API, once stowage_pid, token and api are set.
rss_kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$stowage_pid/status"; }
post() {  # method json
  curl -sS --fail-with-body -XPOST -H "x-api-key: $token" -H 'Content-Type: application/json' \
    -d "$2" "$api/$1"
}

# start_nginx ROOT: nginx on 127.0.0.1 (port `nport`, pid `nginx_pid`) serving ROOT statically
# with sendfile and long keep-alive, BENCH_NGINX_WORKERS workers, all its files under $work/nginx.
start_nginx() {
  local root=$1 nginx_user=""
  nport=$(free_port)
  mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
  [[ $EUID -eq 0 ]] && nginx_user="user root;"   # the scratch dir is 0700: workers must reach it
  cat >"$work/nginx/nginx.conf" <<EOF
$nginx_user
daemon off;
worker_processes $BENCH_NGINX_WORKERS;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  types { image/jpeg jpeg jpg; image/tiff tif tiff; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$nport;
    root $root;
  }
}
EOF
  log "starting nginx on 127.0.0.1:$nport (root $root)"
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log" \
    >"$work/nginx/logs/stdout.log" 2>&1 &
  nginx_pid=$!
  wait_port "$nport" 10 || { cat "$work/nginx/logs/error.log" >&2; die "nginx did not listen"; }
}

# wrk_done_lua: a wrk done() hook printing exact totals ("BENCH requests=... p99_us=..."), so
# that every peer is measured the same way; the scripts append it to their .lua files.
wrk_done_lua() {
  cat <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d bytes=%d duration_us=%d non2xx=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.bytes, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
EOF
}

# report_tail [HEADING...]: a report's notes (when there are any) and its commands under HEADING
# (its words joined by spaces, as echo does; "Commands:" by default); inside the script's
# { ... } >"$report".
report_tail() {
  local heading="$*"
  if ((${#notes[@]})); then
    echo "Notes:"
    printf -- '- %s\n' "${notes[@]}"
    echo
  fi
  echo "${heading:-Commands:}"
  echo '```'
  printf '%s\n' "${commands[@]}"
  echo '```'
}

# show_report: prints the report written and where it is.
show_report() {
  echo
  cat "$report"
  echo
  log "report written to $report"
}
