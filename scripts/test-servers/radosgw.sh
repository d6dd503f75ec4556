#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Ceph's RADOS Gateway as the S3 server of the tests (../shared/spec/emulators.md): one monitor,
# one memstore OSD and radosgw, all on 127.0.0.1, all data in RAM under a temp folder.
#
#   radosgw.sh start <state-dir>   start (or keep) the server, create the buckets, write
#                                  <state-dir>/radosgw.env
#   radosgw.sh stop <state-dir>    kill what start started and remove its data
#
# Both are idempotent. The .env configures Stowage (STORAGE_PROVIDER=minio, path style on a custom
# endpoint) with buckets <prefix>-public and <prefix>-private, plus RADOSGW_* variables for the
# tests: a second, virtual-hosted endpoint name, and the admin's keys.
set -euo pipefail

name=radosgw
# shellcheck source=scripts/test-servers/common.sh
source "$(dirname "$0")/common.sh"

access_key=STOWAGETESTACCESSKEY
secret_key=stowage-test-secret-key-0123456789abcdef
prefix=stowage-test
isolated_prefix=stowage-isolated

# A port nothing listens on, from the ephemeral range's lower neighbours.
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  log "no free port found"
  exit 1
}

stop() {
  local home
  home=$(server_home)
  if [ -n "$home" ]; then
    # memstore keeps nothing worth a clean shutdown: a short grace, then SIGKILL.
    for d in radosgw osd mon; do
      for f in "$home"/run/*"$d"*.pid "$home"/run/"$d".pid; do kill_pidfile "$f" 20; done
    done
    kill_pidfile "$home/run/client.admin.pid" 20
    kill_pidfile "$home/run/osd.0.pid" 20
    kill_pidfile "$home/run/mon.a.pid" 20
  fi
  remove_home
}

# An S3 request signed by curl (SigV4), for the buckets the tests need.
s3() {
  local method=$1 path=$2
  curl -sS -o /dev/null -w '%{http_code}' -X "$method" \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access_key:$secret_key" \
    -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
    "http://127.0.0.1:$rgw_port$path"
}

running() {
  [ -f "$home_link" ] && [ -f "$env_file" ] || return 1
  local home port
  home=$(cat "$home_link")
  port=$(sed -n 's/^STORAGE_PORT=//p' "$env_file")
  [ -n "$port" ] && [ -f "$home/run/client.admin.pid" ] &&
    kill -0 "$(cat "$home/run/client.admin.pid")" 2>/dev/null &&
    curl -s -o /dev/null "http://127.0.0.1:$port/"
}

start() {
  if running; then
    log "already running ($env_file)"
    return 0
  fi
  stop  # leftovers of a crashed run
  for tool in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph; do
    command -v "$tool" >/dev/null || { log "$tool is missing: run scripts/install-deps.sh"; exit 1; }
  done
  local home
  home=$(mktemp -d "$state/radosgw.XXXXXX")
  echo "$home" >"$home_link"
  mkdir -p "$home/run" "$home/log" "$home/mon" "$home/osd/ceph-0"
  local mon_port rgw_port fsid conf
  mon_port=$(free_port)
  rgw_port=$(free_port)
  fsid=$(cat /proc/sys/kernel/random/uuid)
  conf="$home/ceph.conf"
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $home/run
admin socket = $home/run/\$name.asok
pid file = $home/run/\$name.pid
log file = $home/log/\$name.log
mon data = $home/mon/\$cluster-\$id
osd data = $home/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = ${RADOSGW_MEMSTORE_BYTES:-3221225472}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon max pg per osd = 1000
mon allow pool size one = true
mon warn on pool no redundancy = false
[mon.a]
keyring = $home/mon/keyring
[osd.0]
keyring = $home/osd/keyring
[client.admin]
keyring = $home/admin.keyring
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw dns name = s3.localhost
rgw thread pool size = 64
CONF
  ceph-authtool --create-keyring "$home/mon/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$home/admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$home/mon/keyring" --import-keyring "$home/admin.keyring" >/dev/null
  monmaptool --create --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" "$home/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$home/monmap" --keyring "$home/mon/keyring"
  ceph-mon -c "$conf" -i a

  local osd_uuid
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  ceph -c "$conf" --connect-timeout 20 osd new "$osd_uuid" >/dev/null
  ceph-authtool --create-keyring "$home/osd/keyring" --gen-key -n osd.0 >/dev/null
  ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" --no-mon-config >"$home/log/osd-mkfs.log" 2>&1
  ceph -c "$conf" auth add osd.0 osd 'allow *' mon 'allow profile osd' -i "$home/osd/keyring" \
    >/dev/null 2>&1
  ceph-osd -c "$conf" -i 0
  for _ in $(seq 150); do
    ceph -c "$conf" osd stat 2>/dev/null | grep -q '1 up' && break
    sleep 0.2
  done

  radosgw -c "$conf" -n client.admin
  local ready=0
  for _ in $(seq 300); do
    if curl -s -o /dev/null "http://127.0.0.1:$rgw_port/"; then ready=1; break; fi
    sleep 0.2
  done
  if [ "$ready" != 1 ]; then
    log "radosgw did not answer on port $rgw_port; logs in $home/log"
    exit 1
  fi
  radosgw-admin -c "$conf" -n client.admin --admin-socket="$home/run/admin-cli.asok" user create --uid=stowage --display-name=Stowage \
    --access-key="$access_key" --secret-key="$secret_key" >/dev/null
  # A second pair for the tests that migrate whole buckets: they need buckets to themselves.
  for b in "$prefix-public" "$prefix-private" "$isolated_prefix-public" "$isolated_prefix-private"; do
    local code
    code=$(s3 PUT "/$b")
    if [ "$code" != 200 ] && [ "$code" != 409 ]; then
      log "cannot create bucket $b (HTTP $code)"
      exit 1
    fi
  done

  cat >"$env_file.tmp" <<ENV
# Written by scripts/test-servers/radosgw.sh; removed by its stop.
STORAGE_PROVIDER=minio
STORAGE_ENDPOINT=http://127.0.0.1
STORAGE_PORT=$rgw_port
STORAGE_ACCESS_KEY=$access_key
STORAGE_SECRET_KEY=$secret_key
STORAGE_REGION=us-east-1
STORAGE_BUCKET_PREFIX=$prefix
# For tests that need buckets no other test writes to: <this>-public and <this>-private.
TEST_ISOLATED_BUCKET_PREFIX=$isolated_prefix
# For tests: the gateway answers virtual-hosted requests for <bucket>.s3.localhost.
RADOSGW_DNS_NAME=s3.localhost
RADOSGW_HOME=$home
RADOSGW_CONF=$home/ceph.conf
ENV
  mv "$env_file.tmp" "$env_file"
  log "ready on 127.0.0.1:$rgw_port ($env_file)"
}

dispatch
