#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what building and testing Stowage need on Debian 12 (bookworm): Debian packages, and
# the npm packages of the test servers from their committed lock file. Idempotent: asks apt and
# npm only for what is missing, and does nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config ccache
  # libraries (Debian's own, as the project allows no others)
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-system1.81-dev
  libssl-dev libsqlite3-dev libvips-dev libspdlog-dev libcli11-dev libcurl4-openssl-dev libyaml-cpp-dev
  # tests
  libgtest-dev libgmock-dev
  # S3 provider: XML, and Ceph's RADOS Gateway as the tests' S3 server (scripts/test-servers)
  libpugixml-dev radosgw ceph-mon ceph-osd ceph-common
  # XML of the cloud providers' REST APIs (Azure Blob, S3); rclone, a real client that the
  # Azure tests cross-check with
  libpugixml-dev rclone
  # fuzzing (issue 18): clang 14 with libFuzzer and the sanitizers' runtimes (scripts/fuzz.sh)
  clang-14 libclang-rt-14-dev
  # videos (issue 9): FFmpeg's libraries, and its ffmpeg/ffprobe commands that the video tests
  # make their clips with and check the probe against
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev ffmpeg
  # the web console's browser tests (issue 16): a real headless Chromium, driven by
  # playwright-core from tests/browser (which downloads no browser of its own)
  chromium
  # the PostgreSQL catalog (issue 14): libpq to build against, and the PostgreSQL 15 server
  # that the tests start in a temp folder (scripts/test-servers/postgres.sh)
  libpq-dev postgresql
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  # Another install (a second checkout building at the same time) may hold dpkg's lock: wait.
  lock=(-o DPkg::Lock::Timeout=900)
  $sudo apt-get "${lock[@]}" update -qq
  $sudo apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages of the test servers and of the browser tests' driver, exactly as locked.
for dir in tests/servers tests/browser; do
  if [ -f "$dir/package-lock.json" ] &&
     { [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; }; then
    echo "install-deps: npm ci in $dir" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error && touch node_modules)
  fi
done
