#!/usr/bin/env bash
# The seeds experiment of parity/README.md: resnet20 with its recipe, 10 epochs on all of
# ../shared/cifar10-subset, validated on its 500 test images, in scratchnet and in PyTorch
# (parity/train_torch.py) from the same initial weights, one seed after another.
#   parity/seeds.sh [SEED...]      default: 1 2 3 4; results in target/seeds/, summary printed
# TORCH_INIT=1 also trains PyTorch from PyTorch-style initial weights (parity/torch_init.py).
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3 4)
python=${PYTHON:-.peers/torch/bin/python}
data=${DATA:-../shared/cifar10-subset}
out=target/seeds
mkdir -p "$out"
cargo build --release --bin scratchnet --example parity_dump
for s in "${seeds[@]}"; do
  target/release/examples/parity_dump resnet20 0 "$out/init_$s" --seed "$s" --data "$data" > /dev/null
  target/release/scratchnet train --model resnet20 --data "$data" --epochs 10 --validation test \
    --seed "$s" --device cpu --run-dir "$out/scratch_$s" > "$out/scratch_$s.log" 2>&1
  "$python" parity/train_torch.py "$out/init_$s/step_000.safetensors" --seed "$s" --data "$data" \
    > "$out/torch_$s.log" 2>&1
  if [ "${TORCH_INIT:-0}" = 1 ]; then
    "$python" parity/torch_init.py "$out/init_$s/step_000.safetensors" "$s" "$out/tinit_$s"
    "$python" parity/train_torch.py "$out/tinit_$s/step_000.safetensors" --seed "$s" --data "$data" \
      > "$out/ttorch_$s.log" 2>&1
  fi
done
"$python" parity/seeds_summary.py "$out"
