#!/usr/bin/env bash
# Held-out SYNTHETIC CT at four times the demo's budget: full fine-tuning and LoRA from their recipes
# (recipes/configs/ct_ss_full.yaml, ct_ss_lora.yaml; seed 0), 1200 steps x 32 each, validation every 200
# steps, on the recipes' data (`lora-iqa synth ct --n 960 --seed 0`: 256 px anatomy, 120 contents).
# The base is the embedded one in $LORA_IQA_CACHE_DIR (built on first use).
#   bash benchmarks/scripts/long_budget.sh        # writes benchmarks/results/long_budget/results.md
set -euo pipefail
cd "$(dirname "$0")/../.."
out=benchmarks/results/long_budget
work=${WORK:-runs/long_budget}
mkdir -p "$out" "$work"
[ -f "$work/data/manifest.csv" ] || lora-iqa synth ct --out "$work/data" --n 960 --seed 0 > /dev/null
{
  echo "# Long budget: SYNTHETIC CT, held-out test split (logit scoring, 3 x 3 views)"
  echo
  echo '`bash benchmarks/scripts/long_budget.sh`: 1200 steps x 32, seed 0, data `lora-iqa synth ct --n 960 --seed 0`.'
  echo
} > "$out/results.md"
for method in full lora; do
  t0=$(date +%s)
  lora-iqa train "recipes/configs/ct_ss_$method.yaml" "output_dir=$work/$method" "data.manifest=$work/data/manifest.csv" \
    train.max_steps=1200 train.eval_every=200 train.save_every=0 overwrite=true > "$work/train_$method.log" 2>&1
  t1=$(date +%s)
  line=$(lora-iqa eval --adapter "$work/$method" --data "$work/data/manifest.csv" --split test --method logits \
    --out "$work/eval_$method.json" | grep '^logits')
  echo "- $method ($((t1 - t0)) s training): $line" >> "$out/results.md"
done
cat "$out/results.md"
