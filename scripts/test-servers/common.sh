# SPDX-License-Identifier: Apache-2.0
# Sourced by the test-server scripts (radosgw.sh, azurite.sh, gcs.sh), never run. Each sets
# `name` first, then sources this file, which parses "start|stop <state-dir>" and sets:
#   cmd        start or stop
#   state      the state folder, absolute
#   env_file   <state>/<name>.env, the configuration the script writes for the tests
#   home_link  <state>/<name>.home, which holds the path of the server's temp folder
#   root       the repository
# The script defines start() and stop() and ends with `dispatch`.

usage() {
  echo "usage: $0 start|stop <state-dir>" >&2
  exit 2
}

cmd=${1:-}
state=${2:-}
if [ -z "$cmd" ] || [ -z "$state" ]; then usage; fi
mkdir -p "$state"
state=$(cd "$state" && pwd)
env_file="$state/$name.env"
home_link="$state/$name.home"
root=$(cd "$(dirname "$0")/../.." && pwd)

log() { echo "$name.sh: $*" >&2; }

# kill_pidfile FILE [TICKS]: stops the process FILE names (SIGTERM, then SIGKILL after TICKS
# tenths of a second, 5 s by default) and removes FILE; quiet when there is none.
kill_pidfile() {
  local f=$1 ticks=${2:-50} pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq "$ticks"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# The server's temp folder, or nothing when none was started.
server_home() {
  if [ -f "$home_link" ]; then cat "$home_link"; fi
}

# Removes the temp folder, the link to it and the .env (after stop() killed the processes).
remove_home() {
  local home
  home=$(server_home)
  if [ -n "$home" ]; then rm -rf "$home"; fi
  rm -f "$home_link" "$env_file"
}

dispatch() {
  case "$cmd" in
    start) start ;;
    stop) stop ;;
    *) usage ;;
  esac
}
