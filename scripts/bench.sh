#!/usr/bin/env bash
# `npm run bench -- [NAME] [ARGS...]`: runs bench/NAME.ts with vite-node; without a NAME, every
# benchmark in turn (squashfs, then pipeline, which ends with the first boots of every loader
# layout on its outputs), each with the given ARGS. Each bench prints its own figures and
# ratios against the alternatives of the same run; `--json` gives machine-readable output. Record real runs in bench/README.md.
#   npm run bench                          # all of them (as root: dockerd, mounts)
#   npm run bench -- squashfs --runs 5 --json
#   npm run bench -- pipeline --runs 3 --json                  # as root (dockerd, loop devices, mounts)
#   npm run bench -- pipeline --scale 0.1 --runs 1              # a quick run (~5 min)
#   npm run bench -- firstboot   # the layouts on the loader fixtures only (~30 s, as root)
#   npm run bench -- builder --runs 3   # native store bake vs engine path vs lower bound (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
# Like `npm test` and `npm run demo`: install what is missing first (idempotent).
bash scripts/install-deps.sh
# The pipeline bench runs the built CLI (bin/ctrbake.js -> dist/).
npm run --silent build || echo "bench: npm run build reported errors; dist/ may be stale" >&2
if [ $# -gt 0 ] && [ -f "bench/$1.ts" ]; then
  name=$1
  shift
  exec npx vite-node "bench/$name.ts" -- "$@"
fi
status=0
for name in squashfs pipeline; do
  echo "== bench/$name.ts" >&2
  npx vite-node "bench/$name.ts" -- "$@" || status=1
done
exit "$status"
