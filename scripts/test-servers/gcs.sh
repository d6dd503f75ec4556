#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The fake Google Cloud Storage server of the tests (tests/fakes/gcs/server.mjs; see
# ../shared/spec/emulators.md): Node built-ins only, on 127.0.0.1, state in memory.
#
#   gcs.sh start <state-dir>   start (or keep) the server with a fresh service account and the
#                              buckets <prefix>-public and <prefix>-private; write <state-dir>/gcs.env
#   gcs.sh stop <state-dir>    kill what start started and remove its files
#
# Both are idempotent. The service account's RSA key is generated with openssl into the temp
# folder; its public key is registered with the fake, whose /token endpoint is the account's
# token_uri. Besides Stowage's variables, gcs.env has GCS_FAKE_ACCOUNTS_DIR (drop
# <client_email>.pem there to register another account) for the tests.
set -euo pipefail

name=gcs
# shellcheck source=scripts/test-servers/common.sh
source "$(dirname "$0")/common.sh"
server_js="$root/tests/fakes/gcs/server.mjs"

prefix=stowage-test
email=stowage-test@stowage-test.iam.gserviceaccount.com

stop() {
  local home
  home=$(server_home)
  if [ -n "$home" ]; then kill_pidfile "$home/server.pid"; fi
  remove_home
}

running() {
  [ -f "$home_link" ] && [ -f "$env_file" ] || return 1
  local home port
  home=$(cat "$home_link")
  [ -f "$home/server.pid" ] && kill -0 "$(cat "$home/server.pid")" 2>/dev/null || return 1
  port=$(cat "$home/port" 2>/dev/null || true)
  [ -n "$port" ] && curl -sf -o /dev/null "http://127.0.0.1:$port/_fake/stats"
}

start() {
  if running; then
    log "already running ($(sed -n 's/^STORAGE_ENDPOINT=//p' "$env_file"))"
    return 0
  fi
  stop
  command -v node >/dev/null || { log "node is not installed"; exit 1; }
  local home
  home=$(mktemp -d "$state/gcs.XXXXXX")
  echo "$home" >"$home_link"
  mkdir -p "$home/accounts"
  chmod 700 "$home"

  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$home/key.pem" 2>/dev/null
  openssl pkey -in "$home/key.pem" -pubout -out "$home/accounts/$email.pem"

  nohup node "$server_js" --port-file "$home/port" --accounts-dir "$home/accounts" \
    --bucket "$prefix-public" --bucket "$prefix-private" --log "$home/server.log" \
    >"$home/stdout.log" 2>&1 </dev/null &
  echo $! >"$home/server.pid"

  local port=""
  for _ in $(seq 200); do
    if [ -f "$home/port" ]; then
      port=$(cat "$home/port")
      curl -sf -o /dev/null "http://127.0.0.1:$port/_fake/stats" && break
    fi
    if ! kill -0 "$(cat "$home/server.pid")" 2>/dev/null; then
      log "the server exited:"
      cat "$home/stdout.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  [ -n "$port" ] || { log "the server did not start in 20 s"; cat "$home/stdout.log" >&2; exit 1; }

  # The service-account JSON, as the Cloud Console would hand it out (private key included).
  node -e '
    const fs = require("fs");
    const [key, email, port, out] = process.argv.slice(1);
    const sa = {
      type: "service_account",
      project_id: "stowage-test",
      private_key_id: "stowage-test-key-1",
      private_key: fs.readFileSync(key, "utf8"),
      client_email: email,
      client_id: "100000000000000000001",
      auth_uri: "https://accounts.google.com/o/oauth2/auth",
      token_uri: `http://127.0.0.1:${port}/token`,
    };
    fs.writeFileSync(out, JSON.stringify(sa, null, 2), {mode: 0o600});
  ' "$home/key.pem" "$email" "$port" "$home/service-account.json"
  rm -f "$home/key.pem"

  cat >"$env_file.tmp" <<EOF
# Written by scripts/test-servers/gcs.sh; removed by its stop.
STORAGE_PROVIDER=google
STORAGE_ENDPOINT=http://127.0.0.1:$port
STORAGE_CREDENTIALS_PATH=$home/service-account.json
STORAGE_BUCKET_PREFIX=$prefix
GCS_FAKE_ACCOUNTS_DIR=$home/accounts
EOF
  mv "$env_file.tmp" "$env_file"
  log "listening on 127.0.0.1:$port; wrote $env_file"
}

dispatch
