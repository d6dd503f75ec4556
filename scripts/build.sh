#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what is missing and builds Stowage in Release under ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# ccache hashes paths relative to the clone, so another clone (CI's, a worktree) reuses its hits.
export CCACHE_BASEDIR="$PWD"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
