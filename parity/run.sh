#!/usr/bin/env bash
# The PyTorch parity harness in one command (see parity/README.md):
#   parity/run.sh [MODEL...]          default: resnet20 keras6 nin_bn
# Environment: STEPS (default 50), SEED (default 1), DATA (default ../shared/cifar10-subset),
# PYTHON (default .peers/torch/bin/python, made by ../shared/peers/setup.sh), OUT (default
# target/parity), F64_EVERY (default 10: replay steps 1, 10, 20, ... in float64 too; 0: never),
# F64=1 to make the free-running yardstick a PyTorch float64 run (slow).
set -euo pipefail
cd "$(dirname "$0")/.."
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(resnet20 keras6 nin_bn)
steps=${STEPS:-50}
seed=${SEED:-1}
data=${DATA:-../shared/cifar10-subset}
python=${PYTHON:-.peers/torch/bin/python}
out=${OUT:-target/parity}
"$python" -c 'import torch, numpy' 2>/dev/null || {
  echo "no PyTorch at $python: run ../shared/peers/setup.sh (or set PYTHON)" >&2
  exit 1
}
cargo build --release --example parity_dump
dirs=()
for m in "${models[@]}"; do
  d="$out/$m"
  rm -rf "$d"
  echo "== scratchnet: $m, $steps steps (seed $seed)"
  target/release/examples/parity_dump "$m" "$steps" "$d" --seed "$seed" --data "$data" 2>&1 | tail -n 1
  dirs+=("$d")
done
extra=(--f64-every "${F64_EVERY:-10}")
[ "${F64:-0}" = 1 ] && extra+=(--f64)
echo "== PyTorch"
"$python" parity/run.py "${dirs[@]}" --json "$out/parity.json" "${extra[@]}"
