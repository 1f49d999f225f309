#!/usr/bin/env bash
# Every check that needs a real GPU, in one pass, for a GPU machine lent for minutes: what Dawn finds,
# the kernel and model tests on that adapter, the time-to-adapter table in f32 and f16-storage, what a
# step costs the host, the matmul autotune's table, and the same training step in PyTorch (fp32 and fp16
# autocast) when torch, transformers and peft are there. Each part's output goes to its own log in $OUT; a part that fails
# or runs out of time does not stop the next.
#
#   OCTOCLIP_COMMIT=$(git rev-parse --short HEAD) OUT=/tmp/gpu-check bash bench/gpu-check.sh [--quick]
#
# --quick: the tiny model only, a few steps (to try the script on SwiftShader before spending GPU time).
# Copy the figures into docs/benchmarks.md with the device name the first log prints and the commit.
#
# The machine needs Node 20 and node_modules (carry them: the GPU machines here reach no registry) and a
# Vulkan loader for Dawn (libvulkan1; the device tool's README says how to carry its .deb). Where the
# NVIDIA driver's Vulkan ICD is not found on its own, set VK_DRIVER_FILES to its JSON file.
set -uo pipefail
quick=${1:-}
out=${OUT:-gpu-check}
mkdir -p "$out"
export OCTOCLIP_COMMIT=${OCTOCLIP_COMMIT:-unknown}

command -v node >/dev/null || { echo "gpu-check: no node on the PATH: carry Node 20"; exit 1; }
[ -d node_modules/webgpu ] || { echo "gpu-check: node_modules/webgpu is missing: carry node_modules"; exit 1; }
ldconfig -p 2>/dev/null | grep -q libvulkan || echo "gpu-check: ldconfig finds no libvulkan: Dawn will find no GPU"

part() { # part NAME SECONDS COMMAND...: runs COMMAND with a time limit into $out/NAME.log
  local name=$1 limit=$2
  shift 2
  local started=$SECONDS
  echo "== $name ($*)"
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  local status=$?
  echo "   exit $status after $((SECONDS - started)) s"
  tail -n 25 "$out/$name.log" | sed 's/^/   /'
}

part device 60 node scripts/with-webgpu.mjs node -e "
  const webgpu = require('webgpu');
  Object.assign(globalThis, webgpu.globals);
  webgpu.create([]).requestAdapter().then((adapter) => {
    if (!adapter) throw new Error('Dawn found no adapter');
    const { vendor, architecture, device, description } = adapter.info;
    console.log(JSON.stringify({ vendor, architecture, device, description, features: [...adapter.features].sort(),
      maxBufferSize: adapter.limits.maxBufferSize, maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize }, null, 1));
    process.exit(0);
  });"

if [ "$quick" = --quick ]; then
  part unit 600 node scripts/with-webgpu.mjs npx vitest run test/gpu test/kernels/matmul.test.ts test/model/half-weights.test.ts test/model/f16-arithmetic.test.ts
  part recipe 600 npm run bench -- --recipe --precision f32,f16-storage,f16 --json "$out/recipe.json"
  part host 300 npm run bench -- --host
  exit 0
fi
part unit 240 node scripts/with-webgpu.mjs npx vitest run test/gpu test/kernels test/model test/training
part recipe 300 npm run bench -- --recipe --recipe-vit 5 --precision f32,f16-storage,f16 --json "$out/recipe.json"
part host 60 npm run bench -- --host
part matmul 120 npm run bench -- --tune
if python3 -c 'import torch, transformers, peft' 2>/dev/null; then
  part pytorch 240 env PYTHONUNBUFFERED=1 python3 bench/pytorch_step.py --classes 10 --steps 20
else
  echo "== pytorch: skipped, python3 cannot import torch, transformers and peft here"
fi
