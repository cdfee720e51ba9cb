#!/usr/bin/env bash
# `npm run demo`: installs what it needs, then bakes a built-in sample image end to end
# (registry on 127.0.0.1 -> lock -> fetch -> offline bake -> run from the archive).
# Everything it writes is under .demo/ (git ignores it) and temp dirs it removes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh demo
# test/integration/demo.test.ts sets CTRBAKE_DEMO_NO_BUILD=1: it runs beside tests that run
# dist/, which a rebuild would rewrite under them (npm test has just built it).
[ "${CTRBAKE_DEMO_NO_BUILD:-}" = 1 ] || npm run build --silent
exec npx vite-node scripts/demo.ts -- "$@"
