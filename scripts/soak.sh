#!/usr/bin/env bash
# `npm run test:soak`: the fault tests with many cuts per case (hours here, not for every
# change): every loader power-cut case gets CTRBAKE_POWERCUT_COUNT cuts (default 10: every
# mode and aim of the case, several times) and bake-faults CTRBAKE_FAULT_COUNT cuts per
# signal and mode (default 20), every layout under every init style (CTRBAKE_DEVICE_MATRIX=full). Each file prints its seeds and the line that replays them.
# Extra arguments go to vitest (e.g. -t 'split').
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run build
export CTRBAKE_POWERCUT_COUNT="${CTRBAKE_POWERCUT_COUNT:-10}"
export CTRBAKE_FAULT_COUNT="${CTRBAKE_FAULT_COUNT:-20}"
export CTRBAKE_DEVICE_MATRIX="${CTRBAKE_DEVICE_MATRIX:-full}"   # every layout under every init style
exec npx vitest run test/integration/loader-archive.test.ts test/integration/loader-store.test.ts \
  test/integration/loader-podman.test.ts test/integration/bake-faults.test.ts -t 'power cut|interrupted first boots|cut by signals' "$@"
