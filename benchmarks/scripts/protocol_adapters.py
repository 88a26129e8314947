"""Per-protocol adapters on one base: train ss / ds / ms, nr and fr, on SYNTHETIC CT and evaluate them on
held-out content (real CT: ``benchmarks/scripts/real_ct_anatomy.py --ds ADAPTER``).

    python benchmarks/scripts/protocol_adapters.py --out benchmarks/results/protocol_adapters [--only ds_nr,ds_fr] [--steps-scale 1.0]

Every adapter trains from its recipe (``recipes/configs/ct_<protocol>_<reference>_lora.yaml``) on the
demo's SYNTHETIC CT set (960 images, 120 phantoms; content-disjoint splits) and the embedded base.
Test figures (logit scoring): ss per-dimension SRCC; ds pairwise accuracy on pairs >= 1 level apart
and the Thurstone Case V scale's SRCC against the true overall; ms mean Kendall tau per ranking and its
scale's SRCC. nr and fr ds adapters are also compared on the SAME same-content test pairs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lora_iqa.bases.embedded import ensure_embedded
from lora_iqa.config import load_config
from lora_iqa.data.manifest import read_manifest
from lora_iqa.data.samples import protocol_samples
from lora_iqa.data.synth.ct import synth_ct
from lora_iqa.errors import atomic_write_text
from lora_iqa.evaluation import evaluate
from lora_iqa.experiments.demo import DATA
from lora_iqa.methods.load import load_trained
from lora_iqa.metrics import fmt
from lora_iqa.template import Template
from lora_iqa.training.run import run

ADAPTERS = ("ss_nr", "ss_fr", "ds_nr", "ds_fr", "ms_nr", "ms_fr")
TEST_SEED = 12345  # the test pairs / groups (the same for every adapter of a protocol)
FULL = ["adapter.method=full", "train.lr=1e-3"]  # the demo's full fine-tuning lr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/protocol_adapters")
    ap.add_argument("--only", default=",".join(ADAPTERS),
                    help="comma-separated adapters to train/evaluate (a _full suffix: full fine-tuning instead)")
    ap.add_argument("--steps-scale", type=float, default=1.0, help="scale every recipe's max_steps (smoke runs)")
    ap.add_argument("--test-per-image", type=int, default=8, help="ds pairs / ms groups per test image")
    ap.add_argument("--reuse", action="store_true", help="evaluate adapters already trained under OUT/runs "
                                                          "(their training figures are kept) instead of training")
    args = ap.parse_args()
    out = Path(args.out)
    manifest = out / "data" / "manifest.csv"
    if not manifest.exists():
        manifest = synth_ct(out / "data", DATA)
    base = ensure_embedded()
    template = Template()
    m = read_manifest(manifest, template.dimensions)
    results: dict = {"data": "SYNTHETIC CT (lora_iqa.experiments.demo.DATA)", "base": "embedded", "test_seed": TEST_SEED,
                     "test_per_image": args.test_per_image, "adapters": {}}
    old = out / "results.json"
    if old.exists():  # keep the adapters not re-run this time
        results["adapters"] = json.loads(old.read_text()).get("adapters", {})
    for name in args.only.split(","):
        protocol, reference, *full = name.split("_")  # "ds_nr_full": the same recipe, full fine-tuning
        recipe = f"recipes/configs/ct_{protocol}_{reference}_lora.yaml"
        cfg = load_config(recipe, [
            f"output_dir={out / 'runs' / name}", f"data.manifest={manifest}", f"base={base}", "train.save_every=0",
            f"train.max_steps={max(1, round(load_config(recipe).train.max_steps * args.steps_scale))}",
            *(FULL if full else [])])
        if args.reuse and name in results["adapters"]:
            kept = results["adapters"][name]
            model, processor, meta = load_trained(cfg.output_dir)
        else:
            res = run(cfg)
            kept = {"trainable_params": res.trainable_params, "total_params": res.total_params,
                    "train_seconds": round(res.train_seconds, 1), "selected_step": res.best_step}
            model, processor, meta = load_trained(res.dir)
        d = cfg.data
        p = cfg.make_protocol()
        test = protocol_samples(m.split("test"), p, template.dimensions, TEST_SEED, args.test_per_image,
                                d.same_content, d.similar_below, d.window, spacing=meta.make_view().spacing)
        ev = evaluate(model, processor, test, template, "test", "logits", protocol=p, index=meta.multi_image,
                      view=meta.make_view())
        row = {"method": cfg.adapter.method, "steps": cfg.train.max_steps, "batch_size": cfg.train.batch_size, "lr": cfg.train.lr,
               **{k: kept[k] for k in ("trainable_params", "total_params", "train_seconds", "selected_step")},
               "test": ev["metrics"], "n_test": ev["n"]}
        if protocol == "ds":
            same = protocol_samples(m.split("test"), p, template.dimensions, TEST_SEED, args.test_per_image, 1.0,
                                    d.similar_below, d.window, spacing=meta.make_view().spacing)  # same-content pairs
            row["test_same_content"] = evaluate(model, processor, same, template, "test", "logits", protocol=p,
                                                index=True, view=meta.make_view())["metrics"]
        results["adapters"][name] = row
        atomic_write_text(out / "results.json", json.dumps(results, indent=1))
    atomic_write_text(out / "results.md", table(results))
    print(table(results))


def table(results: dict) -> str:
    """The results as markdown."""
    lines = [f"Data: {results['data']} — SYNTHETIC. Base: {results['base']}. Test pairs/groups seed {results['test_seed']}.", "",
             "| adapter | steps | trainable | train s | test figure | overall SRCC | same-content ds acc |",
             "|---|---|---|---|---|---|---|"]
    for name, r in results["adapters"].items():
        t = r["test"]
        if "pairwise" in t:
            fig = f"pairwise acc {fmt(t['pairwise']['accuracy'])} (n={t['pairwise']['n']})"
        elif "ranking" in t:
            fig = f"Kendall tau {fmt(t['ranking']['kendall'])} (n={t['ranking']['n']})"
        else:
            fig = "mean SRCC " + fmt(float(np.mean([v["srcc"] for v in t.values()])))
        same = fmt(r["test_same_content"]["pairwise"]["accuracy"]) if "test_same_content" in r else ""
        lines.append(f"| {name} | {r['steps']} | {r['trainable_params']:,} | {r['train_seconds']} | {fig} | "
                     f"{fmt(t['overall']['srcc'])} | {same} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
