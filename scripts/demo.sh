#!/usr/bin/env bash
# `npm run demo`: installs what it needs, then bakes a built-in sample image end to end
# (registry on 127.0.0.1 -> lock -> fetch -> offline bake -> run from the archive).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run build --silent
exec npx vite-node scripts/demo.ts -- "$@"
