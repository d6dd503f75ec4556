#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Azurite (npm azurite@3.35.0, locked in tests/servers/) as the Azure Blob server of the tests
# (../shared/spec/emulators.md). It enforces Shared Key and SAS like the real service.
#
#   azurite.sh start <state-dir>   start (or keep) the server on 127.0.0.1, create the containers,
#                                  write <state-dir>/azurite.env
#   azurite.sh stop <state-dir>    kill what start started and remove its data
#
# Both are idempotent. The .env configures Stowage (STORAGE_PROVIDER=azure, the emulator's
# path-style endpoint http://127.0.0.1:PORT/devstoreaccount1) with containers <prefix>-public and
# <prefix>-private, plus AZURITE_* variables for the tests.
set -euo pipefail

name=azurite
# shellcheck source=scripts/test-servers/common.sh
source "$(dirname "$0")/common.sh"

# The emulator's well-known account and key (public, documented by Microsoft): real clients
# (az, rclone with use_emulator) assume exactly these.
account=devstoreaccount1
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
version=2021-12-02
prefix=stowage-test
isolated_prefix=stowage-isolated

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop() {
  local home
  home=$(server_home)
  if [ -n "$home" ]; then kill_pidfile "$home/azurite.pid"; fi
  remove_home
}

running() {
  [ -f "$home_link" ] && [ -f "$env_file" ] || return 1
  local home port
  home=$(cat "$home_link")
  port=$(sed -n 's/^AZURITE_PORT=//p' "$env_file")
  [ -n "$port" ] && [ -f "$home/azurite.pid" ] && kill -0 "$(cat "$home/azurite.pid")" 2>/dev/null &&
    curl -s -o /dev/null "http://127.0.0.1:$port/"
}

# PUT <container>?restype=container, signed with Shared Key; prints the HTTP status.
create_container() {
  local port=$1 container=$2 date sts hexkey sig
  date=$(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S GMT')
  # VERB, 11 empty standard headers, x-ms-* headers, then the resource: the account appears twice
  # because the emulator's URLs are path-style.
  sts="PUT"$'\n\n\n\n\n\n\n\n\n\n\n\n'"x-ms-date:$date"$'\n'"x-ms-version:$version"$'\n'
  sts+="/$account/$account/$container"$'\n'"restype:container"
  hexkey=$(printf '%s' "$key" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  sig=$(printf '%s' "$sts" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary |
    base64 -w0)
  curl -sS -o /dev/null -w '%{http_code}' -X PUT -H "x-ms-date: $date" \
    -H "x-ms-version: $version" -H "Authorization: SharedKey $account:$sig" \
    "http://127.0.0.1:$port/$account/$container?restype=container"
}

start() {
  if running; then
    log "already running ($env_file)"
    return 0
  fi
  stop  # leftovers of a crashed run
  local bin="$root/tests/servers/node_modules/.bin/azurite-blob"
  if [ ! -x "$bin" ]; then
    log "$bin is missing: run scripts/install-deps.sh (npm ci in tests/servers)"
    exit 1
  fi
  local home port
  home=$(mktemp -d "$state/azurite.XXXXXX")
  echo "$home" >"$home_link"
  port=$(free_port)
  # --skipApiVersionCheck: Azurite 3.35 refuses x-ms-version values newer than it knows.
  setsid "$bin" --blobHost 127.0.0.1 --blobPort "$port" --location "$home/data" \
    --disableTelemetry --skipApiVersionCheck --silent >"$home/azurite.log" 2>&1 </dev/null &
  echo $! >"$home/azurite.pid"
  local ready=0
  for _ in $(seq 300); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then ready=1; break; fi
    if ! kill -0 "$(cat "$home/azurite.pid")" 2>/dev/null; then break; fi
    sleep 0.1
  done
  if [ "$ready" != 1 ]; then
    log "azurite did not answer on port $port; log: $home/azurite.log"
    cat "$home/azurite.log" >&2 || true
    exit 1
  fi
  # A second pair for the tests that migrate whole buckets: they need buckets to themselves.
  for c in "$prefix-public" "$prefix-private" "$isolated_prefix-public" "$isolated_prefix-private"; do
    local code
    code=$(create_container "$port" "$c")
    if [ "$code" != 201 ] && [ "$code" != 409 ]; then
      log "cannot create container $c (HTTP $code)"
      exit 1
    fi
  done

  cat >"$env_file.tmp" <<ENV
# Written by scripts/test-servers/azurite.sh; removed by its stop.
STORAGE_PROVIDER=azure
STORAGE_ENDPOINT=http://127.0.0.1:$port/$account
STORAGE_ACCESS_KEY=$account
STORAGE_SECRET_KEY=$key
STORAGE_BUCKET_PREFIX=$prefix
# For tests that need buckets no other test writes to: <this>-public and <this>-private.
TEST_ISOLATED_BUCKET_PREFIX=$isolated_prefix
# For tests.
AZURITE_PORT=$port
AZURITE_HOME=$home
ENV
  mv "$env_file.tmp" "$env_file"
  log "ready on 127.0.0.1:$port ($env_file)"
}

dispatch
