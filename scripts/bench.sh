#!/usr/bin/env bash
# `npm run bench -- [NAME] [ARGS...]`: runs bench/NAME.ts with vite-node; without a NAME, every
# benchmark in turn (squashfs, pipeline, then firstboot when bench/firstboot.ts exists), each
# with the given ARGS. Each bench prints its own figures and ratios against the alternatives
# of the same run; `--json` gives machine-readable output. Record real runs in bench/README.md.
#   npm run bench                          # all of them (as root: dockerd, mounts)
#   npm run bench -- squashfs --runs 5 --json
#   npm run bench -- pipeline --runs 3 --json
#   npm run bench -- firstboot             # as root
set -euo pipefail
cd "$(dirname "$0")/.."
# Like `npm test` and `npm run demo`: install what is missing first (idempotent).
bash scripts/install-deps.sh
if [ $# -gt 0 ] && [ -f "bench/$1.ts" ]; then
  name=$1
  shift
  exec npx vite-node "bench/$name.ts" -- "$@"
fi
# The bench steps run the built CLI (bin/ctrbake.js -> dist/).
npm run --silent build || echo "bench: npm run build reported errors; dist/ may be stale" >&2
status=0
for name in squashfs pipeline firstboot; do
  [ -f "bench/$name.ts" ] || continue
  echo "== bench/$name.ts" >&2
  # firstboot takes its run count from the environment, not from flags.
  if [ "$name" = firstboot ]; then
    npx vite-node "bench/$name.ts" || status=1
  else
    npx vite-node "bench/$name.ts" -- "$@" || status=1
  fi
done
exit "$status"
