#!/usr/bin/env bash
# `npm run bench -- [NAME] [ARGS...]`: runs bench/NAME.ts (default: squashfs) with vite-node.
# Each bench prints its own figures and ratios against the alternatives of the same run;
# `--json` gives machine-readable output. Record real runs in bench/README.md.
#   npm run bench                          # squashfs, default sizes
#   npm run bench -- squashfs --runs 5 --json
#   npm run bench -- firstboot             # as root
set -euo pipefail
cd "$(dirname "$0")/.."
name=squashfs
if [ $# -gt 0 ] && [ -f "bench/$1.ts" ]; then
  name=$1
  shift
fi
exec npx vite-node "bench/$name.ts" -- "$@"
