#!/usr/bin/env bash
# `npm test`: installs prerequisites, builds, type-checks and runs every test (unit and
# integration against real engines, registry and kernel mounts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run build
npx tsc --noEmit -p tsconfig.json
exec npx vitest run "$@"
