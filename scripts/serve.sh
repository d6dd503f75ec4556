#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's first command: install, build, and start `stowage serve` on the embedded defaults
# (127.0.0.1:8080, local disk under ./data, SQLite). Extra arguments go to `stowage serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >&2
exec build/stowage serve "$@"
