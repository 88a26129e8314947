"""``lora-iqa demo``: synthesize CT-IQA, build/reuse the embedded base, train LoRA and full fine-tuning
with the same budget, evaluate both on the held-out test split, and write a table, JSON and plots."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from lora_iqa.bases.embedded import ensure_embedded
from lora_iqa.config import DataConfig, load_config
from lora_iqa.data.manifest import read_manifest
from lora_iqa.data.samples import ss_samples
from lora_iqa.data.synth.ct import SynthCTConfig, synth_ct
from lora_iqa.errors import atomic_write_text, save_fig
from lora_iqa.evaluation import METHODS, evaluate
from lora_iqa.methods.blip.base import load_base
from lora_iqa.methods.common import count_params
from lora_iqa.methods.load import load_trained
from lora_iqa.metrics import fmt
from lora_iqa.template import Template
from lora_iqa.training.run import run

DATA = SynthCTConfig(n=960, seed=0, per_content=8)
QUICK_DATA = SynthCTConfig(n=160, size=128, seed=0, per_content=8)
# One budget for both methods (steps x batch); the learning rate is each method's own.
BUDGET = ["train.max_steps=300", "train.batch_size=32", "train.warmup_steps=30", "train.eval_every=50"]
QUICK_BUDGET = ["train.max_steps=40", "train.batch_size=16", "train.warmup_steps=5", "train.eval_every=20"]
METHOD_OVERRIDES = {"lora": ["adapter.method=lora", "train.lr=2e-3"], "full": ["adapter.method=full", "train.lr=1e-3"]}


def run_demo(out: Path, quick: bool = False, progress: bool = True) -> dict:
    """Run the tour into ``out``; returns the ``results.json`` object."""
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data_cfg = QUICK_DATA if quick else DATA
    data_dir = out / ("data_quick" if quick else "data")
    manifest = data_dir / "manifest.csv"
    if manifest.exists():
        print(f"reusing SYNTHETIC data {manifest}")
    else:
        manifest = synth_ct(data_dir, data_cfg, progress=progress)
    base_path = ensure_embedded(progress=progress)
    print(f"base: {base_path}")

    template = Template()
    view = DataConfig().make_view()  # the recipes' default view (crops for CT), the base's too
    test = ss_samples(read_manifest(manifest, template.dimensions).split("test"), template.dimensions,
                      spacing=view.spacing)
    results: dict = {"base": str(base_path), "data": str(manifest), "synthetic": True, "methods": {}}
    model, processor = load_base(str(base_path))
    _, total = count_params(model)
    results["methods"]["zero_shot"] = {"dir": str(base_path), "trainable_params": 0, "total_params": total,
                                       "train_seconds": 0.0, "samples_per_s": 0.0,
                                       "eval": {m: evaluate(model, processor, test, template, "test", m, view=view)
                                                for m in METHODS}}
    for method, extra in METHOD_OVERRIDES.items():
        cfg = load_config(None, [f"output_dir={out / method}", f"data.manifest={manifest}", f"base={base_path}", "overwrite=true",
                                 "train.save_every=0", *(QUICK_BUDGET if quick else BUDGET), *extra])
        res = run(cfg, progress=progress)
        model, processor, meta = load_trained(res.dir)
        results["methods"][method] = {
            "dir": str(res.dir), "trainable_params": res.trainable_params, "total_params": res.total_params,
            "train_seconds": round(res.train_seconds, 2), "samples_per_s": round(res.samples_per_s, 2),
            "best_step": res.best_step,
            "eval": {m: evaluate(model, processor, test, template, "test", m, view=meta.make_view()) for m in METHODS}}
    results["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    table = results_table(results, template)
    print(table)
    atomic_write_text(out / "results.json", json.dumps(results, indent=1))
    atomic_write_text(out / "results.md", "# lora-iqa demo (SYNTHETIC CT data)\n\n" + table + "\n")
    plot_pred_vs_true(results, template, out / "pred_vs_true.png")
    show_examples(results, test, out / "examples.png")
    print(f"wrote {out / 'results.json'}, results.md, pred_vs_true.png, examples.png "
          f"({results['wall_seconds']:.0f} s)")
    return results


def results_table(results: dict, template: Template) -> str:
    """Markdown table: method, params, time, throughput, overall SRCC/PLCC/KRCC and per-dimension SRCC."""
    dims = template.dimensions
    head = ("| method | scoring | trainable params | % | train s | samples/s | overall SRCC | PLCC | KRCC | "
            + " | ".join(f"{d} SRCC" for d in dims[:-1]) + " |")
    lines = [head, "|" + "---|" * (9 + len(dims) - 1)]
    for name, m in results["methods"].items():
        for method in METHODS:
            met = m["eval"][method]["metrics"]
            o = met[template.overall]
            lines.append(f"| {name} | {method} | {m['trainable_params']:,} | {100 * m['trainable_params'] / m['total_params']:.2f} | "
                         f"{m['train_seconds']:.0f} | {m['samples_per_s']:.1f} | {fmt(o['srcc'])} | {fmt(o['plcc'])} | "
                         f"{fmt(o['krcc'])} | " + " | ".join(fmt(met[d]['srcc']) for d in dims[:-1]) + " |")
    return "\n".join(lines)


def plot_pred_vs_true(results: dict, template: Template, path: Path) -> None:
    """Scatter of predicted (logit score) vs true overall, one panel per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["methods"])
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, name in zip(axes[0], names):
        ev = results["methods"][name]["eval"]["logits"]
        t = np.array([it["true"][template.overall] for it in ev["items"]], dtype=float)
        p = np.array([it["pred"][template.overall] for it in ev["items"]], dtype=float)
        ax.scatter(t + rng.uniform(-0.15, 0.15, t.size), p, s=10, alpha=0.6)
        ax.plot([0, 4], [0, 4], "k--", lw=0.8)
        ax.set(title=f"{name}: SRCC {fmt(ev['metrics'][template.overall]['srcc'])}", xlabel="true overall (jittered)",
               ylabel="predicted overall (logits)", xlim=(-0.5, 4.5), ylim=(-0.2, 4.2))
    fig.suptitle("Held-out test split, SYNTHETIC CT")
    fig.tight_layout()
    save_fig(fig, path)


def show_examples(results: dict, test, path: Path, k: int = 3) -> None:
    """Three test images with their true and LoRA-generated captions, printed and plotted."""
    import matplotlib

    matplotlib.use("Agg")
    from textwrap import fill

    import matplotlib.pyplot as plt

    items = results["methods"]["lora"]["eval"]["caption"]["items"]
    by_overall = sorted(range(len(test)), key=lambda i: test[i].labels["overall"])
    picks = [by_overall[0], by_overall[len(by_overall) // 2], by_overall[-1]][:k]
    fig, axes = plt.subplots(1, len(picks), figsize=(5 * len(picks), 6.5), squeeze=False)
    template = Template()
    for ax, i in zip(axes[0], picks):
        true_cap, pred_cap = template.render(test[i].labels), items[i]["caption"]
        print(f"\n{Path(items[i]['images'][0]).name}\n  true: {true_cap}\n  LoRA: {pred_cap}")
        ax.imshow(test[i].images[0], cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
        ax.set_title(f"true: {fill(true_cap, 48)}\n\nLoRA: {fill(pred_cap, 48)}", fontsize=8, loc="left")
    fig.suptitle("SYNTHETIC CT test images (W400/L40) with captions")
    fig.tight_layout()
    save_fig(fig, path)
