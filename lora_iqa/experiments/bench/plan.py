"""``lora-iqa bench``: methods x protocols x seeds on one dataset, one step budget, one evaluation.

Every cell runs in its own process (``python -m lora_iqa.experiments.bench.cell CELL.json``), so its peak RSS is its
own, and writes ``cells/ID/cell.json``; a finished cell is not run again. The parent gathers the cells
into ``results.json`` (every cell with its items), ``results.csv``, ``results.md`` (mean ±
std over seeds) and PNG plots, after recomputing every SRCC from the items with scipy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from lora_iqa.config import (
    CLIP_METHODS,
    DETERMINISTIC,
    BenchConfig,
    Config,
    load_config,
)
from lora_iqa.errors import LoraIqaError, atomic_write_text
from lora_iqa.experiments.bench.report import check_srcc, write_results

Scores = Callable[[Sequence[np.ndarray]], list[dict[str, float]]]  # images -> per-image scores


def llm_configured() -> bool:
    """An OpenAI-compatible server is configured (the environment names a key or a base URL)."""
    return bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))


def plan(bc: BenchConfig, manifest: Path, base: str, out: Path, clip_base: str | None = None) -> tuple[list[dict], list[str]]:
    """The cells to run (one spec each) and the rows skipped, with why. ``clip_base``: the resolved base
    of the CLIP rows."""
    cells, skipped = [], []
    for m in bc.methods:
        if m.method == "mllm" and not llm_configured():
            skipped.append(f"{m.name}: no OpenAI-compatible server configured (OPENAI_BASE_URL / OPENAI_API_KEY)")
            continue
        for protocol in bc.protocols:
            for seed in bc.seeds[:1] if m.method in DETERMINISTIC else bc.seeds:
                cid = f"{m.name}__{protocol}_{bc.reference}__s{seed}"
                recipe = bc.recipes.get(protocol)
                cells.append({"id": cid, "bench": bc.name, "name": m.name, "method": m.method,
                              "targets": list(m.targets) if m.method == "lora" else None,
                              "r": m.r if m.method == "lora" else None, "protocol": protocol,
                              "reference": bc.reference, "seed": seed, "deterministic": m.method in DETERMINISTIC,
                              "recipe": str(recipe) if recipe else None, "manifest": str(manifest),
                              "base": clip_base if m.method in CLIP_METHODS else base,
                              "overrides": [*bc.overrides, *m.recipe_overrides()], "test_per_image": bc.test_per_image,
                              "eval_seed": bc.eval_seed, "captions": bc.captions, "tracking": bc.tracking,
                              "dir": str(out / "cells" / cid)})
    return cells, skipped


def cell_config(spec: dict) -> Config:
    """The recipe a cell trains with: its recipe, the bench's budget and the method's own keys."""
    return load_config(spec["recipe"], [
        f"output_dir={Path(spec['dir']) / 'model'}", f"data.manifest={spec['manifest']}", f"base={spec['base']}",
        f"seed={spec['seed']}", f"protocol={spec['protocol']}", f"reference={spec['reference']}",
        "train.save_every=0", "tracking=none", "overwrite=true", *spec["overrides"]])  # the cell's own folder


def run_bench(bc: BenchConfig, out: Path, progress: bool = True) -> dict:
    """Run (or resume) every cell of ``bc`` into ``out``; write and return ``results.json``."""
    from lora_iqa.bases.embedded import resolve_base
    from lora_iqa.data.synth.ct import SynthCTConfig, synth_ct
    from lora_iqa.data.synth.natural import SynthNaturalConfig, synth_natural

    out.mkdir(parents=True, exist_ok=True)
    if bc.manifest:
        manifest = Path(bc.manifest).resolve()
        if not manifest.is_file():
            raise LoraIqaError(f"{manifest}: manifest not found (key 'manifest')")
    else:
        manifest = out / "data" / "manifest.csv"
        if not manifest.exists():
            synth_cfg, make = (SynthCTConfig, synth_ct) if bc.synth_kind == "ct" else (SynthNaturalConfig, synth_natural)
            try:
                synth = synth_cfg(**bc.synth)
            except TypeError as e:
                raise LoraIqaError(f"key 'synth': {e}") from None
            manifest = make(out / "data", synth, progress=progress)
    base = resolve_base(bc.base, progress=progress)
    # an embedded CLIP is built here, once, not inside a timed cell
    clip_base = resolve_base(bc.clip_base, progress) if any(m.method in CLIP_METHODS for m in bc.methods) else None
    cells, skipped = plan(bc, manifest, base, out, clip_base)
    for spec in cells:  # every recipe resolves before any cell runs: a bad key fails now, not in an hour
        cell_config(spec)
    t0, ran = time.perf_counter(), 0
    for i, spec in enumerate(cells, 1):
        path = Path(spec["dir"]) / "cell.json"
        if path.exists():
            try:
                done = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                raise LoraIqaError(f"{path}: unreadable ({e}); remove it to rerun the cell") from None
            if done.get("spec") != spec:
                raise LoraIqaError(f"{path}: holds a cell run with another spec; use another --out or remove it")
            print(f"[bench {bc.name}] cell {i}/{len(cells)} {spec['id']}: done already, not rerun", flush=True)
            continue
        left = len(cells) - i + 1
        eta = f", ETA {(time.perf_counter() - t0) / ran * left / 60:.1f} min" if ran else ""
        print(f"[bench {bc.name}] cell {i}/{len(cells)} {spec['id']} ({(time.perf_counter() - t0) / 60:.1f} min{eta})",
              flush=True)
        Path(spec["dir"]).mkdir(parents=True, exist_ok=True)
        spec_path = Path(spec["dir"]) / "spec.json"
        atomic_write_text(spec_path, json.dumps(spec, indent=1))
        env = {**os.environ, "LORA_IQA_PROGRESS": "1" if progress else "0"}
        proc = subprocess.run([sys.executable, "-m", "lora_iqa.experiments.bench.cell", str(spec_path)], env=env)
        if proc.returncode != 0 or not path.exists():
            raise LoraIqaError(f"{spec_path}: cell {spec['id']} failed (exit {proc.returncode}); its output is above")
        ran += 1
    results = {"name": bc.name, "config": bc.to_dict(), "data": str(manifest), "base": base,
               "synthetic": not bc.manifest, "skipped": skipped,
               "cells": [json.loads((Path(s["dir"]) / "cell.json").read_text())["cell"] for s in cells]}
    results["srcc_check"] = check_srcc(results["cells"])
    write_results(results, out)
    return results
