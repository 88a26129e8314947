#!/usr/bin/env bash
# The recipe recipes/configs/ct_ss_lora.yaml on 1 process and as 2-rank DDP on CPU (gloo), through
#   accelerate launch --multi_gpu --num_processes 2 recipes/train.py recipes/configs/ct_ss_lora.yaml
# at the same global batch (train.batch_size is the global batch, split across ranks). SYNTHETIC data:
# `lora-iqa synth ct --n 960 --seed 0` (the demo's set); training seed 0 (the recipe's).
#   bash benchmarks/scripts/ddp.sh        # writes benchmarks/results/ddp/results.json and results.md
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
lora-iqa synth ct --out "$work/ct" --n 960 --seed 0 > /dev/null
python -m lora_iqa.bases.embedded > /dev/null     # the embedded base is built once, by one process
set_args=("data.manifest=$work/ct/manifest.csv" "train.save_every=0")
t0=$(date +%s)
lora-iqa train recipes/configs/ct_ss_lora.yaml "output_dir=$work/one" "${set_args[@]}" > "$work/one.log" 2>&1
t1=$(date +%s)
OMP_NUM_THREADS=1 accelerate launch --multi_gpu --num_processes 2 recipes/train.py recipes/configs/ct_ss_lora.yaml \
  "output_dir=$work/two" "${set_args[@]}" > "$work/two.log" 2>&1
t2=$(date +%s)
python - "$work" $((t1 - t0)) $((t2 - t1)) <<'PY'
import json, sys
from pathlib import Path
work, s1, s2 = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
runs = {k: json.loads((work / k / "lora_iqa.json").read_text()) for k in ("one", "two")}
rows = {k: {"num_processes": m["num_processes"], "selected_step": m["step"], "wall_s": s,
            "val_srcc": {d: v["srcc"] for d, v in m["metrics"].items()}}
        for (k, m), s in zip(runs.items(), (s1, s2))}
diff = {d: abs(rows["two"]["val_srcc"][d] - rows["one"]["val_srcc"][d]) for d in rows["one"]["val_srcc"]}
out = {"synthetic": True, "recipe": "recipes/configs/ct_ss_lora.yaml", "runs": rows, "abs_diff_val_srcc": diff}
Path("benchmarks/results/ddp").mkdir(parents=True, exist_ok=True)
Path("benchmarks/results/ddp/results.json").write_text(json.dumps(out, indent=1))
dims = list(diff)
md = ["# ct_ss_lora: 1 process vs 2-rank DDP on CPU (SYNTHETIC CT, validation split)", "",
      "| run | processes | selected step | wall s | " + " | ".join(f"{d} SRCC" for d in dims) + " |",
      "|---|---|---|---|" + "---|" * len(dims)]
for k, r in rows.items():
    md.append(f"| {k} | {r['num_processes']} | {r['selected_step']} | {r['wall_s']} | "
              + " | ".join(f"{r['val_srcc'][d]:.4f}" for d in dims) + " |")
md.append("| abs diff | | | | " + " | ".join(f"{diff[d]:.4f}" for d in dims) + " |")
Path("benchmarks/results/ddp/results.md").write_text("\n".join(md) + "\n")
print("\n".join(md))
PY
rm -rf "$work"
