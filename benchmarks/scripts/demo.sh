#!/usr/bin/env bash
# The numbers in README.md and in the issue notes: `lora-iqa demo` twice (a first run with an empty
# cache, which builds the embedded base, then a cached re-run), timed, plus the real-CT dose check.
# Seeds and configs are the package defaults (lora_iqa/experiments/demo.py, lora_iqa/resources/embedded_base.yaml).
#   bash benchmarks/scripts/demo.sh            # writes benchmarks/results/demo/ and benchmarks/results/real_ct/
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
export LORA_IQA_CACHE_DIR="$work/cache"
t0=$(date +%s); lora-iqa demo --out "$work/demo" > "$work/first.log" 2>&1; t1=$(date +%s)
rm -rf "$work/demo"/{lora,full,results.*}   # keep the data? no: a re-run reuses the cached base only
rm -rf "$work/demo/data"
t2=$(date +%s); lora-iqa demo --out "$work/demo" > "$work/second.log" 2>&1; t3=$(date +%s)
mkdir -p benchmarks/results/demo
cp "$work/demo"/results.md "$work/demo"/*.png benchmarks/results/demo/  # results.json (every test item) is not committed
printf '{"first_run_wall_s": %d, "cached_rerun_wall_s": %d, "nproc": %d}\n' $((t1-t0)) $((t3-t2)) "$(nproc)" > benchmarks/results/demo/timing.json
python benchmarks/scripts/real_ct_anatomy.py --ss "$work/demo/lora" --out benchmarks/results/real_ct
cat benchmarks/results/demo/timing.json benchmarks/results/demo/results.md
rm -rf "$work"
