#!/usr/bin/env bash
# One prepared GPU check (< 10 min on one GPU): build the addon against the CUDA LibTorch of the
# installed Python torch (LIBTORCH_USE_PYTORCH=1), check every model kind on CUDA against the CPU,
# train on CUDA, and benchmark the headline config on CUDA against the Python reference on CUDA;
# prints a short table last. Without a usable GPU it runs the same checks on the CPU with the
# system LibTorch (the fallback path CI can exercise).
#   PYTHON=python3 bash scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if command -v nvidia-smi >/dev/null 2>&1 &&
  "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
  DEVICE=cuda
  export LIBTORCH_USE_PYTORCH=1
  echo "gpu-check: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1); torch $("$PYTHON" -c 'import torch; print(torch.__version__)')"
  [ -d node_modules ] || npm ci --ignore-scripts --no-audit --no-fund
  ADATT_BUILD_JOBS=$(nproc) node scripts/install/build-native.js
  npm run --silent build:ts
else
  DEVICE=cpu
  PYTHON=/usr/bin/python3
  echo "gpu-check: no usable CUDA device; running the CPU fallback path"
  bash scripts/setup.sh
fi
node scripts/gpu-check.js "$DEVICE" "$PYTHON"
