#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# PostgreSQL 15 (Debian's postgresql package) as the catalog server of the tests: a throw-away
# cluster made by initdb in a temp folder, served by pg_ctl on 127.0.0.1 and a free port.
#
#   postgres.sh start <state-dir>   start (or keep) the server, write <state-dir>/postgres.env
#   postgres.sh stop <state-dir>    stop what start started and remove its data
#
# Both are idempotent. PostgreSQL refuses to run as root, and CI runs as root: then the cluster
# belongs to the `postgres` system user that the Debian package creates. The .env holds
# DATABASE_URL (user `stowage` with a password, database `stowage`) for the servers of the
# tests, and POSTGRES_* variables for tests that create databases of their own (the user may).
#
# Durability is traded for speed (fsync=off, synchronous_commit=off, full_page_writes=off): the
# data is thrown away after the run, and crash tests kill Stowage, never PostgreSQL.
set -euo pipefail

name=postgres
# shellcheck source=scripts/test-servers/common.sh
source "$(dirname "$0")/common.sh"

bin=${POSTGRES_BIN:-/usr/lib/postgresql/15/bin}
user=stowage
database=stowage

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

# as_owner CMD...: runs CMD as the cluster's owner (postgres when we are root).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

stop() {
  local home
  home=$(server_home)
  if [ -n "$home" ] && [ -f "$home/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" stop -D "$home/data" -m immediate -w -t 30 >/dev/null 2>&1 || true
    # pg_ctl gave up or is missing: the postmaster's pid is the file's first line.
    if [ -f "$home/data/postmaster.pid" ]; then
      kill -9 "$(head -n1 "$home/data/postmaster.pid")" 2>/dev/null || true
    fi
  fi
  remove_home
}

running() {
  [ -f "$home_link" ] && [ -f "$env_file" ] || return 1
  local home
  home=$(cat "$home_link")
  as_owner "$bin/pg_ctl" status -D "$home/data" >/dev/null 2>&1
}

start() {
  if running; then
    log "already running ($env_file)"
    return 0
  fi
  stop  # leftovers of a crashed run
  if [ ! -x "$bin/initdb" ]; then
    log "$bin/initdb is missing: run scripts/install-deps.sh (Debian's postgresql)"
    exit 1
  fi
  local home port password
  # Under /tmp rather than the state folder: the owner must be able to reach it, and the
  # checkout's folders may be closed to the postgres user.
  home=$(mktemp -d /tmp/stowage-postgres.XXXXXX)
  echo "$home" >"$home_link"
  port=$(free_port)
  password=$(openssl rand -hex 16)
  printf '%s\n' "$password" >"$home/pwfile"
  chmod 600 "$home/pwfile"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$home"; fi
  if ! as_owner "$bin/initdb" -D "$home/data" -U "$user" --pwfile="$home/pwfile" \
      --auth-host=scram-sha-256 --auth-local=peer --encoding=UTF8 --locale=C.UTF-8 \
      >"$home/initdb.log" 2>&1; then
    log "initdb failed; log: $home/initdb.log"
    cat "$home/initdb.log" >&2 || true
    exit 1
  fi
  rm -f "$home/pwfile"
  # Three servers with a pool each, plus the tests' own connections.
  if ! as_owner "$bin/pg_ctl" start -D "$home/data" -l "$home/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $home -c max_connections=300 \
          -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null; then
    log "postgres did not start on port $port; log: $home/postgres.log"
    cat "$home/postgres.log" >&2 || true
    exit 1
  fi
  local url="postgresql://$user:$password@127.0.0.1:$port"
  if ! PGPASSWORD=$password "$bin/psql" -q -v ON_ERROR_STOP=1 "$url/postgres" \
      -c "CREATE DATABASE $database" >/dev/null; then
    log "cannot create database $database"
    exit 1
  fi

  cat >"$env_file.tmp" <<ENV
# Written by scripts/test-servers/postgres.sh; removed by its stop.
DATABASE_URL=$url/$database
# For tests: the server's address and a user that may create databases of its own.
POSTGRES_URL=$url
POSTGRES_PORT=$port
POSTGRES_HOME=$home
ENV
  mv "$env_file.tmp" "$env_file"
  log "ready on 127.0.0.1:$port ($env_file)"
}

dispatch
