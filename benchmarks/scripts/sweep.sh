#!/usr/bin/env bash
# `lora-iqa sweep recipes/sweeps/lora_rank.yaml` locally, as its header says: SYNTHETIC data first,
# then the grid (adapter.r = 4, 8, 16; 100 steps each; seeds from the recipe). Uses the cached
# embedded base (built on first use).
#   bash benchmarks/scripts/sweep.sh      # writes benchmarks/results/sweep_lora_rank/ (comparison.md/.json/.png, timing.json)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f runs/data/ct_sweep/manifest.csv ] || lora-iqa synth ct --out runs/data/ct_sweep --n 480 > /dev/null
python -m lora_iqa.bases.embedded > /dev/null
out=$(mktemp -d)
t0=$(date +%s)
lora-iqa sweep recipes/sweeps/lora_rank.yaml --out "$out"
t1=$(date +%s)
mkdir -p benchmarks/results/sweep_lora_rank
cp "$out"/comparison.* benchmarks/results/sweep_lora_rank/
printf '{"wall_s": %d, "nproc": %d}\n' $((t1 - t0)) "$(nproc)" > benchmarks/results/sweep_lora_rank/timing.json
cat benchmarks/results/sweep_lora_rank/timing.json
rm -rf "$out"
