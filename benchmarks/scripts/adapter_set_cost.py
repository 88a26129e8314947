"""An adapter set (lora_iqa.methods.blip.adapter_set.AdapterSet): switching vs reloading, and mixed-batch throughput.

On the embedded base (cached; built on first use) and SYNTHETIC CT (``SynthCTConfig(n=160, size=96,
seed=0, per_content=8)``), trains two SMALL ss LoRA adapters (30 steps each, seeds 0 and 1: enough to
make them differ, not to make them good), loads both into one AdapterSet, and measures

1. switch latency: ``AdapterSet.use`` alternating between the two adapters, median and p95 over
   ``--switches`` switches (``time.perf_counter_ns``), and the same through peft's ``set_adapter``;
2. reload latency: ``lora_iqa.methods.load.load_trained`` (base + adapter from disk), median over ``--reloads``;
3. logit-scoring throughput (images/s) for one batch of ``--batch`` images: one adapter (plain forward,
   the single-adapter path), the same through ``predict`` (every row named "a"), and a mixed batch
   interleaving the two adapters on the same images (and, for comparison, each adapter's rows as its own
   plain batch after a ``use``); median over ``--repeats`` after a warm-up; plus the largest difference
   between the mixed batch and each adapter's own scores.

    python benchmarks/scripts/adapter_set_cost.py --out benchmarks/results/adapter_set_cost

Writes ``results.json`` and ``results.md`` (each to a temporary name, then renamed) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lora_iqa.bases.embedded import ensure_embedded
from lora_iqa.config import load_config
from lora_iqa.data.io import load_image
from lora_iqa.data.manifest import read_manifest
from lora_iqa.data.synth.ct import SynthCTConfig, synth_ct
from lora_iqa.errors import atomic_write_text
from lora_iqa.methods.blip.adapter_set import AdapterSet
from lora_iqa.methods.blip.base import load_base
from lora_iqa.methods.blip.predict import logit_scores
from lora_iqa.methods.load import load_trained
from lora_iqa.template import CT_DIMENSIONS, Template
from lora_iqa.training.run import run

DATA = SynthCTConfig(n=160, size=96, seed=0, per_content=8)


def train_adapter(out: Path, manifest: Path, base: Path, seed: int, steps: int) -> Path:
    """A small ss nr LoRA adapter (``steps`` steps, batch 32, lr 2e-3 as in the demo)."""
    cfg = load_config(None, [f"output_dir={out}", f"data.manifest={manifest}", f"base={base}", f"seed={seed}",
                             "adapter.method=lora", f"train.max_steps={steps}", "train.lr=2e-3",
                             f"train.eval_every={steps}", "train.save_every=0"])
    return Path(run(cfg, base=load_base(str(base)), progress=False).dir)


def split_by_adapter(aset: AdapterSet, images: list, names: list[str], template: Template, batch: int) -> list:
    """The alternative to one mixed batch: switch to each adapter and run its rows as a plain batch."""
    out: list = [None] * len(images)
    for name in dict.fromkeys(names):
        rows = [i for i, n in enumerate(names) if n == name]
        aset.use(name)
        for i, r in zip(rows, logit_scores(aset.model, aset.processor, [images[i] for i in rows], template,
                                           batch_size=batch)):
            out[i] = r
    return out


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q))


def timed(fn, repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn``."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e9)
    return out


def measure(args) -> dict:
    torch.manual_seed(args.seed)
    base = ensure_embedded(progress=False)
    with tempfile.TemporaryDirectory(prefix="lora_iqa_bench_adapters_") as tmp:
        tmp = Path(tmp)
        manifest = synth_ct(tmp / "ct", DATA, progress=False)
        t0 = time.perf_counter()
        dirs = {name: train_adapter(tmp / name, manifest, base, seed, args.steps)
                for name, seed in (("a", args.seed), ("b", args.seed + 1))}
        train_s = time.perf_counter() - t0
        metas = {n: json.loads((d / "lora_iqa.json").read_text()) for n, d in dirs.items()}
        m = read_manifest(manifest, CT_DIMENSIONS)
        items = (m.split("test") + m.split("val") + m.split("train"))[: args.batch]
        images = [load_image(it.image) for it in items]
        template = Template(CT_DIMENSIONS)

        aset = AdapterSet()
        for name, d in dirs.items():
            aset.load(d, name)

        # 1. switching
        aset.use("a")
        for name in ("b", "a"):  # warm-up
            aset.use(name)
        switch_ns = []
        for i in range(args.switches):
            name = "b" if i % 2 == 0 else "a"
            t0 = time.perf_counter_ns()
            aset.use(name)
            switch_ns.append(time.perf_counter_ns() - t0)
        switch_ms = [ns / 1e6 for ns in switch_ns]
        peft_ns = []  # the same switches through peft's own set_adapter (walks every module)
        for i in range(args.switches):
            name = "b" if i % 2 == 0 else "a"
            t0 = time.perf_counter_ns()
            aset.model.set_adapter(name, inference_mode=True)
            peft_ns.append(time.perf_counter_ns() - t0)
        peft_ms = [ns / 1e6 for ns in peft_ns]
        n_modules = sum(1 for _ in aset.model.modules())

        # 2. reloading base + adapter from disk (what a switch costs without a set)
        load_trained(dirs["b"])  # warm-up (imports, file cache)
        reload_s = timed(lambda: load_trained(dirs["b"]), args.reloads)

        # 3. throughput of one batch: single adapter vs a mixed batch of both
        aset.use("a")
        mixed_names = ["a" if i % 2 == 0 else "b" for i in range(len(images))]
        runs = {
            "single (plain forward, adapter a)": lambda: logit_scores(aset.model, aset.processor, images, template,
                                                                      batch_size=args.batch),
            "single via predict (all rows a)": lambda: aset.predict([("a", (im,)) for im in images], args.batch),
            "mixed via predict (a/b interleaved)": lambda: aset.predict(list(zip(mixed_names, ((im,) for im in images))),
                                                                        args.batch),
            "alternative: one plain batch per adapter + use()": lambda: split_by_adapter(aset, images, mixed_names,
                                                                                         template, args.batch),
        }
        for fn in runs.values():  # warm-up
            fn()
        # interleave the repeats so a change in the machine's load hits every variant alike
        times: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(args.repeats):
            for k, fn in runs.items():
                times[k] += timed(fn, 1)
        throughput = {k: {"median_s": statistics.median(v), "images_per_s": len(images) / statistics.median(v),
                          "seconds": v} for k, v in times.items()}

        # agreement: the mixed batch against each adapter's own plain-forward scores
        own = {}
        for name in ("a", "b"):
            aset.use(name)
            own[name] = [r["scores"] for r in logit_scores(aset.model, aset.processor, images, template)]
        mixed = aset.predict(list(zip(mixed_names, ((im,) for im in images))), args.batch)
        agree = max(abs(r["scores"][d] - own[n][i][d]) for i, (n, r) in enumerate(zip(mixed_names, mixed))
                    for d in CT_DIMENSIONS)
        differ = max(abs(own["a"][i][d] - own["b"][i][d]) for i in range(len(images)) for d in CT_DIMENSIONS)

    single = throughput["single (plain forward, adapter a)"]["images_per_s"]
    mixed_ips = throughput["mixed via predict (a/b interleaved)"]["images_per_s"]
    switch_median = statistics.median(switch_ms)
    reload_median = statistics.median(reload_s) * 1e3
    return {
        "data": f"SYNTHETIC CT: SynthCTConfig(n={DATA.n}, size={DATA.size}, seed={DATA.seed}, "
                f"per_content={DATA.per_content})",
        "base": str(base), "seed": args.seed,
        "adapters": {n: {"seed": metas[n]["config"]["seed"], "steps": args.steps, "step_selected": metas[n]["step"],
                         "val_overall_srcc": metas[n]["metrics"]["overall"]["srcc"]} for n in dirs},
        "train_seconds_both": round(train_s, 1),
        "switch": {"n": len(switch_ms), "median_ms": switch_median, "p95_ms": pct(switch_ms, 95),
                   "max_ms": max(switch_ms), "modules": n_modules},
        "switch_peft_set_adapter": {"n": len(peft_ms), "median_ms": statistics.median(peft_ms),
                                    "p95_ms": pct(peft_ms, 95)},
        "reload": {"n": len(reload_s), "median_ms": reload_median, "seconds": reload_s},
        "reload_over_switch": reload_median / switch_median,
        "throughput": {"batch": len(images), "repeats": args.repeats, "runs": throughput,
                       "mixed_over_single": mixed_ips / single},
        "max_abs_diff_mixed_vs_own": agree, "max_abs_diff_a_vs_b": differ,
        "targets": {"switch_median_ms_le_1": switch_median <= 1.0,
                    "reload_over_switch_ge_100": reload_median / switch_median >= 100,
                    "mixed_over_single_ge_0.9": mixed_ips / single >= 0.9},
        "environment": {"torch": torch.__version__, "peft": __import__("peft").__version__,
                        "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                        "loadavg_1min_at_end": os.getloadavg()[0], "python": platform.python_version()},
    }


def table(r: dict) -> str:
    s, rl, t = r["switch"], r["reload"], r["throughput"]
    rows = [
        "| measure | value |",
        "|---|---|",
        f"| switch `AdapterSet.use` (n={s['n']}) | median {s['median_ms']:.3f} ms, p95 {s['p95_ms']:.3f} ms |",
        f"| switch, peft `set_adapter` itself (n={r['switch_peft_set_adapter']['n']}) | median "
        f"{r['switch_peft_set_adapter']['median_ms']:.3f} ms, p95 {r['switch_peft_set_adapter']['p95_ms']:.3f} ms |",
        f"| reload `load_trained` base + adapter (n={rl['n']}) | median {rl['median_ms']:.1f} ms |",
        f"| reload / switch | {r['reload_over_switch']:.0f}x |",
    ]
    for k, v in t["runs"].items():
        rows.append(f"| logit scoring, batch {t['batch']}: {k} | {v['images_per_s']:.1f} images/s |")
    rows.append(f"| mixed / single (plain) throughput | {t['mixed_over_single']:.4f}x |")
    rows.append(f"| max abs diff mixed vs each adapter alone (0-4 scale) | {r['max_abs_diff_mixed_vs_own']:.1e} "
                f"(adapters a vs b differ by up to {r['max_abs_diff_a_vs_b']:.3f}) |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results/adapter_set_cost")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=30, help="training steps per adapter")
    p.add_argument("--switches", type=int, default=400)
    p.add_argument("--reloads", type=int, default=7)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batch", type=int, default=64)
    args = p.parse_args(argv)
    r = measure(args)
    md = markdown(r, args.out)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(r, indent=1))
    atomic_write_text(out / "results.md", md)
    print(md)


def markdown(r: dict, out: str) -> str:
    """``results.md`` from the ``results.json`` object."""
    env, seed, steps = r["environment"], r["seed"], r["adapters"]["a"]["steps"]
    ok = {True: "met", False: "NOT met"}
    return "\n".join([
        "# Adapter set: switching and mixed batches (SYNTHETIC data)", "",
        f"`python benchmarks/scripts/adapter_set_cost.py --out {out}` (seed {seed}); {r['data']}; base `embedded`.",
        f"Two SMALL ss LoRA adapters, {steps} steps each (seeds {seed}, {seed + 1}); "
        f"CPU, {env['threads']} thread(s) of {env['cpus']} cores, torch {env['torch']}, peft {env['peft']}; "
        f"1-min load average {env['loadavg_1min_at_end']:.1f} at the end (other jobs shared the machine).", "",
        table(r), "",
        f"Targets: switch median <= 1 ms: {ok[r['targets']['switch_median_ms_le_1']]}; reload/switch >= 100x: "
        f"{ok[r['targets']['reload_over_switch_ge_100']]}; mixed/single >= 0.9x: "
        f"{ok[r['targets']['mixed_over_single_ge_0.9']]}.", ""])


if __name__ == "__main__":
    sys.exit(main())
