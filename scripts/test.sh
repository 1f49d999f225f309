#!/usr/bin/env bash
# npm test: from a fresh clone on Debian with Node 20, installs what is missing and runs every check:
# type check, unit tests (WebGPU in Node through Dawn) and end-to-end tests (the studio in headless
# Chromium). Stops at the first failure, with a non-zero exit status.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/ensure-system.sh

current_stage=''
report() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    printf '\nnpm test FAILED in "%s" (exit status %s)\n' "$current_stage" "$status" >&2
  fi
}
trap report EXIT

stage() {
  current_stage="$1"
  shift
  section "$current_stage"
  local started=$SECONDS
  "$@"
  echo "($current_stage: $((SECONDS - started)) s)"
}

stage 'Node.js' ensure_node
stage 'System packages' ensure_test_system_packages
stage 'npm dependencies' ensure_npm_dependencies
stage 'Type check' npx --no-install tsc --noEmit
stage 'Unit tests' bash scripts/with-webgpu.sh vitest run
stage 'End-to-end tests' bash scripts/with-webgpu.sh playwright test
section "All checks passed in ${SECONDS} s"
