"""``lora-iqa bench``: methods x protocols x seeds on one dataset, one step budget, one evaluation.

Every cell runs in its own process (``python -m lora_iqa.bench CELL.json``), so its peak RSS is its
own, and writes ``cells/ID/cell.json``; a finished cell is not run again. The parent gathers the cells
into ``results.json`` (DESIGN.md schema, every cell's items), ``results.csv``, ``results.md`` (mean ±
std over seeds) and PNG plots, after recomputing every SRCC from the items with scipy.
"""

from __future__ import annotations

import csv
import io
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy import stats

from lora_iqa.config import CLIP_METHODS, DETERMINISTIC, BenchConfig, Config, ScorerConfig, load_config
from lora_iqa.errors import LoraIqaError, atomic_write_text, save_fig
from lora_iqa.evaluation import judgement_scale

Scores = Callable[[Sequence[np.ndarray]], list[dict[str, float]]]  # images -> per-image scores


# ---------------------------------------------------------------- the plan (parent process)

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
    from lora_iqa.data.synth_ct import SynthCTConfig, synth_ct
    from lora_iqa.data.synth_natural import SynthNaturalConfig, synth_natural
    from lora_iqa.embedded import resolve_base

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
        proc = subprocess.run([sys.executable, "-m", "lora_iqa.bench", str(spec_path)], env=env)
        if proc.returncode != 0 or not path.exists():
            raise LoraIqaError(f"{spec_path}: cell {spec['id']} failed (exit {proc.returncode}); its output is above")
        ran += 1
    results = {"name": bc.name, "config": bc.to_dict(), "data": str(manifest), "base": base,
               "synthetic": not bc.manifest, "skipped": skipped,
               "cells": [json.loads((Path(s["dir"]) / "cell.json").read_text())["cell"] for s in cells]}
    results["srcc_check"] = check_srcc(results["cells"])
    write_results(results, out)
    return results


# ---------------------------------------------------------------- one cell (child process)

def run_cell(spec: dict, progress: bool = True) -> dict:
    """Train (if the method trains) and evaluate one cell; write ``cell.json``; return the cell."""
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.data.protocols import protocol_samples

    t0 = time.perf_counter()
    cfg = cell_config(spec)
    template, d, protocol = cfg.template(), cfg.data, spec["protocol"]
    manifest = read_manifest(spec["manifest"], template.dimensions)
    test = protocol_samples(manifest.split("test"), protocol, spec["reference"], template.dimensions, spec["eval_seed"],
                            d.k, spec["test_per_image"], d.same_content, d.similar_below, d.window)
    method = spec["method"]
    cell: dict = {k: spec[k] for k in ("name", "method", "targets", "r", "protocol", "reference", "seed")}
    cost: dict = {}
    if method in ("lora", "full"):
        cell.update(_captioner_cell(cfg, test, template, spec, cost, progress))
    elif method in CLIP_METHODS:
        cell.update(_clip_cell(cfg, method, test, template, cost, progress))
    elif method == "zero_shot":
        cell.update(_zero_shot_cell(cfg, test, template, spec, cost))
    elif method == "mllm":
        cell.update(_mllm_cell(cfg, test, template, cost))
    else:
        cell.update(_baseline_cell(cfg, method, manifest, test, template, cost, progress))
    cost["peak_rss_mb"] = round(peak_rss_mb(), 1)
    cost["wall_seconds"] = round(time.perf_counter() - t0, 2)
    cell["cost"] = cost
    path = Path(spec["dir"]) / "cell.json"
    if spec["tracking"] == "wandb":
        _log_wandb(spec, cell)
    atomic_write_text(path, json.dumps({"spec": spec, "cell": cell}, indent=1))
    return cell


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB: Linux's VmHWM, which starts afresh at exec (the
    ``ru_maxrss`` of a forked child keeps its parent's RSS at the fork); ``ru_maxrss`` elsewhere."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / (1024 if sys.platform == "darwin" else 1)


def _timed(fn, *args, **kwargs):
    t = time.perf_counter()
    res = fn(*args, **kwargs)
    return res, time.perf_counter() - t


def _images_in(samples) -> int:
    return sum(len(s.images) for s in samples)


def _train_cost(res, cost: dict) -> None:
    size = sum(f.stat().st_size for f in Path(res.dir).glob("*.safetensors"))
    cost.update({"trainable_params": res.trainable_params, "total_params": res.total_params,
                 "trainable_pct": round(100 * res.trainable_params / res.total_params, 4), "size_bytes": size,
                 "train_seconds": round(res.train_seconds, 2), "train_samples_per_s": round(res.samples_per_s, 2),
                 "best_step": res.best_step})


def _captioner_cell(cfg: Config, test, template, spec: dict, cost: dict, progress: bool) -> dict:
    from lora_iqa.model import load_trained, multi_image
    from lora_iqa.train import run

    res = run(cfg, progress=progress)
    _train_cost(res, cost)
    model, processor, meta = load_trained(res.dir)
    out = _captioner_eval(model, processor, test, template, spec, cost, multi_image(meta))
    return {**out, "curve": res.curve, "losses": [round(x, 5) for x in res.losses]}


def _captioner_eval(model, processor, test, template, spec: dict, cost: dict, index: bool) -> dict:
    """Logit scoring (the cell's metrics and items); with captions: caption metrics, the template
    scorer's metrics and its agreement with the logits; with a configured server: the openai scorer too."""
    from lora_iqa.data.protocols import caption_of
    from lora_iqa.evaluation import evaluate
    from lora_iqa.metrics import caption_scores

    protocol = spec["protocol"]
    ev, secs = _timed(evaluate, model, processor, test, template, "test", "logits", protocol=protocol, index=index)
    cost["logits_images_per_s"] = round(_images_in(test) / secs, 2)
    out = {"metrics": ev["metrics"], "items": ev["items"], "scorings": {}}
    if not spec["captions"]:
        return out
    cap, secs = _timed(evaluate, model, processor, test, template, "test", "caption", protocol=protocol, index=index)
    cost["generate_images_per_s"] = round(_images_in(test) / secs, 2)
    captions = [it["caption"] or "" for it in cap["items"]]
    out["captions"] = caption_scores(captions, [[caption_of(s, template)] for s in test])
    out["scorings"]["caption_template"] = {"metrics": cap["metrics"], "agreement": _agreement(ev["items"], cap["items"], protocol, template, True),
                                           "items": cap["items"]}
    if llm_configured():
        from lora_iqa.scorers import make_scorer

        scorer = make_scorer(ScorerConfig(backend="openai"), template, progress=False)
        oa = evaluate(model, processor, test, template, "test", "caption", protocol=protocol, index=index, scorer=scorer)
        out["scorings"]["caption_openai"] = {"metrics": oa["metrics"], "agreement": _agreement(cap["items"], oa["items"], protocol, template),
                                             "items": oa["items"]}
    return out


def _answers(items: Sequence[dict], protocol: str, template, from_caption: bool = False) -> list:
    """Each item's discrete answer: ss levels per dimension (``from_caption``: read from the item's caption,
    e.g. the logits' most probable levels), ds the preference, ms the ranking."""
    if protocol == "ds":
        return [it["pred"].get("preference") for it in items]
    if protocol == "ms":
        return [tuple(it["pred"].get("ranking") or ()) for it in items]
    if from_caption:
        return [template.parse(it["caption"]) for it in items]
    return [{d: None if v is None else int(round(v)) for d, v in it["pred"].items()} for it in items]


def _agreement(a: Sequence[dict], b: Sequence[dict], protocol: str, template, a_from_caption: bool = False) -> dict:
    """How two scorings of the same items agree: the fraction with the same answer (ss: the same level in
    every dimension), and for ss the SRCC between their overall scores."""
    same = [x == y for x, y in zip(_answers(a, protocol, template, a_from_caption), _answers(b, protocol, template))]
    out = {"exact": float(np.mean(same)) if same else None, "n": len(same)}
    if protocol == "ss":
        o = template.overall
        pairs = [(x["pred"].get(o), y["pred"].get(o)) for x, y in zip(a, b)]
        pairs = [p for p in pairs if None not in p]
        rho = float(stats.spearmanr(*zip(*pairs)).statistic) if len(pairs) > 2 else float("nan")
        out["overall_srcc"] = None if np.isnan(rho) else rho  # constant scores: undefined, not NaN in JSON
    return out


def _zero_shot_cell(cfg: Config, test, template, spec: dict, cost: dict) -> dict:
    from lora_iqa.model import count_params, load_base
    from lora_iqa.predict import logit_scores

    model, processor = load_base(cfg.base)
    cost.update({"trainable_params": 0, "total_params": count_params(model)[1], "trainable_pct": 0.0, "size_bytes": 0})
    if spec["protocol"] == "ss" and spec["reference"] == "nr":
        return _captioner_eval(model, processor, test, template, spec, cost, index=False)
    # the base sees one image: ds / ms judgements compare its per-image overall scores
    return _per_image_cell(lambda ims: [r["scores"] for r in logit_scores(model, processor, ims, template)],
                           test, template, spec["protocol"], cost)


def _clip_cell(cfg: Config, method: str, test, template, cost: dict, progress: bool) -> dict:
    """CLIP's antonym-prompt scores per image: zero-shot (CLIP-IQA), or after prompt learning."""
    from lora_iqa.clip_base import load_clip
    from lora_iqa.clip_prompt import ClipPromptLearner
    from lora_iqa.model import count_params, load_trained
    from lora_iqa.train import run

    if method == "clip_zero_shot":
        clip, processor = load_clip(cfg.base)
        learner = ClipPromptLearner(clip, processor, cfg.adapter, template.dimensions, cfg.seed)
        cost.update({"trainable_params": 0, "total_params": count_params(clip)[1], "trainable_pct": 0.0, "size_bytes": 0})
        return _per_image_cell(lambda ims: learner.scores(ims, zero_shot=True), test, template, cfg.protocol, cost)
    res = run(cfg, progress=progress)
    _train_cost(res, cost)
    learner, _, _ = load_trained(res.dir)
    out = _per_image_cell(learner.scores, test, template, cfg.protocol, cost)
    return {**out, "curve": res.curve, "losses": [round(x, 5) for x in res.losses]}


def _baseline_cell(cfg: Config, method: str, manifest, test, template, cost: dict, progress: bool) -> dict:
    from lora_iqa.baselines import classical_scores, fit_classical, head_scores, train_head
    from lora_iqa.data.protocols import protocol_samples
    from lora_iqa.model import load_base

    dims, d = template.dimensions, cfg.data
    train_s, val_s = (protocol_samples(manifest.split(s), "ss", "nr", dims, cfg.seed, window=d.window) for s in ("train", "val"))
    if method == "classical":
        coef = fit_classical(train_s, dims)
        cost.update({"trainable_params": int(coef.size), "total_params": int(coef.size), "trainable_pct": 100.0,
                     "size_bytes": int(coef.nbytes)})
        return _per_image_cell(lambda ims: classical_scores(coef, ims, dims), test, template, cfg.protocol, cost)
    blip, processor = load_base(cfg.base)
    model, res = train_head(cfg, method, blip.vision_model, processor, train_s, val_s, template, progress)
    _train_cost(res, cost)
    out = _per_image_cell(lambda ims: head_scores(model, processor, ims, dims), test, template, cfg.protocol, cost)
    return {**out, "curve": res.curve, "losses": [round(x, 5) for x in res.losses]}


def _per_image_cell(score: Scores, test, template, protocol: str, cost: dict) -> dict:
    """Score every test stimulus alone; ds prefers the higher overall, ms ranks by it (references unused)."""
    from lora_iqa.evaluation import items_of, protocol_metrics

    stimuli = {str(it.image): im for s in test for it, im in zip(s.items, s.images)}
    scores, secs = _timed(score, list(stimuli.values()))
    cost["logits_images_per_s"] = round(len(stimuli) / secs, 2)
    by_path = dict(zip(stimuli, scores))
    o = template.overall
    preds = []
    for s in test:
        overall = [by_path[str(it.image)][o] for it in s.items]
        if protocol == "ss":
            preds.append({"scores": by_path[str(s.item.image)]})
        elif protocol == "ds":
            preds.append({"preference": 0.0 if overall[0] > overall[1] else 1.0 if overall[1] > overall[0] else 0.5})
        else:
            preds.append({"ranking": [int(i) + 1 for i in np.argsort(-np.asarray(overall), kind="stable")]})
    items = items_of(test, preds, template, protocol)
    return {"metrics": protocol_metrics(items, template, protocol), "items": items, "scorings": {}}


def _mllm_cell(cfg: Config, test, template, cost: dict) -> dict:
    """The zero-shot vision-LLM baseline: the stimuli go to the configured server through the openai scorer."""
    from lora_iqa.evaluation import items_of, protocol_metrics
    from lora_iqa.scorers import make_scorer

    scorer = make_scorer(ScorerConfig(backend="openai"), template, progress=False)
    groups = [list(s.images[:len(s.items)]) for s in test]
    results, secs = _timed(scorer.score_images, groups, cfg.protocol)
    cost.update({"trainable_params": 0, "trainable_pct": 0.0, "size_bytes": 0,
                 "mllm_images_per_s": round(sum(map(len, groups)) / secs, 2)})
    preds = [{"scores": r.scores or {}} if cfg.protocol == "ss" else {"preference": r.preference} if cfg.protocol == "ds"
             else {"ranking": r.ranking} for r in results]
    items = items_of(test, preds, template, cfg.protocol)
    return {"metrics": protocol_metrics(items, template, cfg.protocol), "items": items, "scorings": {}}


def _log_wandb(spec: dict, cell: dict) -> None:
    """One W&B run per cell, grouped by the bench's name: losses and validation curve as history,
    test metrics and cost as summary. Offline unless WANDB_MODE / WANDB_API_KEY say otherwise."""
    import wandb

    if not os.environ.get("WANDB_API_KEY"):
        os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    run = wandb.init(project=os.environ.get("WANDB_PROJECT", "lora_iqa"), group=spec["bench"], name=spec["id"],
                     job_type="bench", dir=spec["dir"], config={k: v for k, v in spec.items() if k != "dir"},
                     reinit="finish_previous")
    for step, loss in enumerate(cell.get("losses", []), 1):
        run.log({"train/loss": loss}, step=step)
    for row in cell.get("curve", []):
        run.log({f"val/{k}_srcc" if k in cell["metrics"] else f"val/{k}": v for k, v in row.items() if k != "step"},
                step=row["step"])
    run.summary.update(flat_row(cell))
    run.finish()


# ---------------------------------------------------------------- results (parent process)

def flat_row(cell: dict) -> dict:
    """One CSV row: the cell's identity, every metric and every cost, flattened."""
    row = {k: cell[k] if not isinstance(cell[k], list) else "+".join(cell[k])
           for k in ("name", "method", "targets", "r", "protocol", "reference", "seed") if cell[k] is not None}
    for dim, m in cell["metrics"].items():
        row.update({f"{dim}_{k}": v for k, v in m.items() if isinstance(v, (int, float)) or v is None})
    for name, s in cell.get("scorings", {}).items():
        overall = s["metrics"].get("overall", {})
        row[f"{name}_overall_srcc"] = overall.get("srcc")
        # the fraction of items whose answer could be read from the caption: an SRCC over few is no figure
        row[f"{name}_read"] = 1 - overall.get("missing", 0) / max(len(s["items"]), 1)
        row.update({f"{name}_agreement_{k}": v for k, v in s["agreement"].items() if k != "n"})
    row.update({f"caption_{k}": v for k, v in cell.get("captions", {}).items()})
    row.update(cell["cost"])
    return row


def check_srcc(cells: Sequence[dict]) -> dict:
    """Recompute every SRCC in the cells from their items with ``scipy.stats.spearmanr``: ss per
    dimension from (pred, true); ds / ms overall from the Thurstone scale refitted on the judgements.
    Raises if any differs by more than 1e-12; returns how many were checked and the largest difference."""
    n, worst = 0, 0.0
    for cell in cells:
        blocks = [(cell["metrics"], cell["items"])] + [(s["metrics"], s["items"]) for s in cell.get("scorings", {}).values()]
        for metrics, items in blocks:
            for dim, m in metrics.items():
                if "srcc" not in m or m["srcc"] is None:
                    continue
                pred, true = _srcc_inputs(items, dim, cell["protocol"])
                diff = abs(float(stats.spearmanr(pred, true).statistic) - m["srcc"])
                n, worst = n + 1, max(worst, diff)
                if diff > 1e-12:
                    raise LoraIqaError(f"cell {cell['name']} {cell['protocol']} seed {cell['seed']}: {dim} SRCC "
                                       f"{m['srcc']} does not recompute from its items (|diff| {diff:.2e})")
    return {"checked": n, "max_abs_diff": worst, "tool": "scipy.stats.spearmanr"}


def _srcc_inputs(items: Sequence[dict], dim: str, protocol: str) -> tuple[list[float], list[float]]:
    if protocol == "ss":
        pairs = [(it["pred"][dim], it["true"][dim]) for it in items if it["pred"].get(dim) is not None]
        return [p for p, _ in pairs], [t for _, t in pairs]
    key = "preference" if protocol == "ds" else "ranking"
    return judgement_scale([it for it in items if it["pred"].get(key) is not None], protocol, dim)


def summary(cells: Sequence[dict]) -> list[dict]:
    """Mean and std over seeds per (row name, protocol), in the config's order."""
    groups: dict = {}
    for c in cells:
        groups.setdefault((c["name"], c["protocol"]), []).append(flat_row(c))
    out = []
    for (name, protocol), rows in groups.items():
        keys = [k for k in rows[0] if all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool) for r in rows)]
        stat = {k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows]))) for k in keys if k != "seed"}
        out.append({"name": name, "protocol": protocol, "method": rows[0]["method"], "runs": len(rows), "stat": stat})
    return out


def _ms(stat: dict, key: str, digits: int = 3) -> str:
    if key not in stat:
        return "—"
    mean, std = stat[key]
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _caption_srcc(stat: dict) -> str:
    """The template-read captions' overall SRCC, with the share of test items it could be read from."""
    if "caption_template_read" not in stat:
        return "—"
    return f"{_ms(stat, 'caption_template_overall_srcc')} ({stat['caption_template_read'][0]:.0%} read)"


def markdown(results: dict) -> str:
    """results.md: quality and cost tables (mean ± std over seeds), the SRCC check, skipped rows."""
    rows = summary(results["cells"])
    dims = list(results["cells"][0]["metrics"]) if results["cells"] else []
    per_dim = [d for d in dims if d not in ("overall", "pairwise", "ranking")]
    ref = {r["protocol"]: r["stat"].get("overall_srcc", (None,))[0] for r in rows if r["method"] == "full"}
    lines = [f"# bench {results['name']}" + (" (SYNTHETIC data)" if results.get("synthetic") else ""), "",
             f"Data: `{results['data']}`. Base: `{results['base']}`. Mean ± std over seeds "
             f"{results['config']['seeds']} (untrained rows run once). Overall SRCC of ds / ms rows is the Thurstone "
             "scale's; Δ full is the row's mean overall SRCC minus full fine-tuning's. Caption metrics compare the "
             "generated captions with the template caption of the true labels; caption SRCC is the overall SRCC of "
             "the captions as the template scorer reads them (in parentheses: the share of test items it could "
             "read); caption=logits is the share of items whose caption reads as the logits' answer.", "",
             "## Quality (held-out test split)", "",
             "| row | protocol | runs | overall SRCC | Δ full | PLCC | KRCC | RMSE | pairwise acc | Kendall tau | "
             + " | ".join(f"{d} SRCC" for d in per_dim) + " | BLEU-4 | METEOR | ROUGE-L | CIDEr | caption SRCC | caption=logits |",
             "|" + "---|" * (16 + len(per_dim))]
    for r in rows:
        s = r["stat"]
        delta = (f"{s['overall_srcc'][0] - ref[r['protocol']]:+.3f}" if ref.get(r["protocol"]) is not None
                 and "overall_srcc" in s else "—")
        lines.append(f"| {r['name']} | {r['protocol']} | {r['runs']} | {_ms(s, 'overall_srcc')} | {delta} | "
                     f"{_ms(s, 'overall_plcc')} | {_ms(s, 'overall_krcc')} | {_ms(s, 'overall_rmse')} | "
                     f"{_ms(s, 'pairwise_accuracy')} | {_ms(s, 'ranking_kendall')} | "
                     + " | ".join(_ms(s, f"{d}_srcc") for d in per_dim) + " | "
                     + " | ".join(_ms(s, f"caption_{k}") for k in ("bleu_4", "meteor", "rouge_l", "cider"))
                     + f" | {_caption_srcc(s)} | {_ms(s, 'caption_template_agreement_exact', 2)} |")
    lines += ["", "## Cost", "", "| row | protocol | trainable params | % | size on disk (KB) | train samples/s | train s | "
              "peak RSS (MB) | logits images/s | generation images/s | wall s |", "|" + "---|" * 11]
    for r in rows:
        s = r["stat"]
        lines.append(f"| {r['name']} | {r['protocol']} | {_ms(s, 'trainable_params', 0).split(' ±')[0]} | "
                     f"{_ms(s, 'trainable_pct', 2).split(' ±')[0]} | {s.get('size_bytes', (0,))[0] / 1024:.0f} | "
                     f"{_ms(s, 'train_samples_per_s', 1)} | {_ms(s, 'train_seconds', 1)} | {_ms(s, 'peak_rss_mb', 0)} | "
                     f"{_ms(s, 'logits_images_per_s', 1)} | {_ms(s, 'generate_images_per_s', 1)} | {_ms(s, 'wall_seconds', 1)} |")
    chk = results["srcc_check"]
    lines += ["", f"Every SRCC above recomputes from its cell's items with {chk['tool']} ({chk['checked']} checked, "
              f"max |diff| {chk['max_abs_diff']:.1e})."]
    lines += [f"Skipped: {s}" for s in results["skipped"]]
    return "\n".join(lines) + "\n"


def write_results(results: dict, out: Path) -> None:
    """results.json, results.csv, results.md and the plots, each written atomically."""
    rows = [flat_row(c) for c in results["cells"]]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, keys)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(out / "results.json", json.dumps(results, indent=1))
    atomic_write_text(out / "results.csv", buf.getvalue())
    md = markdown(results)
    atomic_write_text(out / "results.md", md)
    plot(results, out)
    print(md)
    print(f"wrote {out / 'results.json'}, results.csv, results.md, quality_vs_params.png, srcc_vs_step.png, cost.png")


def plot(results: dict, out: Path) -> None:
    """quality_vs_params.png (log x), srcc_vs_step.png (validation curves, mean over seeds), cost.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary(results["cells"])
    tag = " (SYNTHETIC)" if results.get("synthetic") else ""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        s = r["stat"]
        if "overall_srcc" not in s:
            continue
        x = max(s["trainable_params"][0], 1)
        ax.errorbar(x, s["overall_srcc"][0], yerr=s["overall_srcc"][1], fmt="o", capsize=3)
        ax.annotate(f"{r['name']} ({r['protocol']})", (x, s["overall_srcc"][0]), fontsize=7, xytext=(4, 3),
                    textcoords="offset points")
    ax.set(xscale="log", xlabel="trainable parameters (log; untrained rows at 1)", ylabel="overall SRCC (test)",
           title=f"bench {results['name']}: quality vs trainable parameters{tag}")
    ax.grid(alpha=0.3)
    save_fig(fig, out / "quality_vs_params.png")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    curves: dict = {}
    for c in results["cells"]:
        for row in c.get("curve", []):
            v = row.get("overall", row.get("pairwise_accuracy", row.get("kendall")))
            curves.setdefault(f"{c['name']} ({c['protocol']})", {}).setdefault(row["step"], []).append(v)
    for label, by_step in curves.items():
        steps = sorted(by_step)
        ax.plot(steps, [np.mean(by_step[s]) for s in steps], marker=".", label=label)
    ax.set(xlabel="training step", ylabel="validation overall SRCC (ds: accuracy, ms: tau)",
           title=f"validation curves, mean over seeds{tag}")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=7)
    save_fig(fig, out / "srcc_vs_step.png")

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    labels = [f"{r['name']} ({r['protocol']})" for r in rows]
    for ax, key, title in zip(axes, ("train_samples_per_s", "peak_rss_mb", "size_bytes"),
                              ("train samples/s", "peak RSS (MB)", "size on disk (bytes, log)")):
        ax.bar(labels, [r["stat"].get(key, (0, 0))[0] for r in rows], yerr=[r["stat"].get(key, (0, 0))[1] for r in rows])
        ax.set_title(title + tag, fontsize=9)
        ax.tick_params(axis="x", labelsize=6)
        plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
        if key == "size_bytes":
            ax.set_yscale("log")
    fig.tight_layout()
    save_fig(fig, out / "cost.png")


def main(argv: Sequence[str] | None = None) -> int:
    """The cell process: ``python -m lora_iqa.bench CELL.json``."""
    from lora_iqa.cli import _quiet

    _quiet()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        spec = json.loads(Path(args[0]).read_text())
        run_cell(spec, progress=os.environ.get("LORA_IQA_PROGRESS", "1") == "1")
    except LoraIqaError as e:
        print(f"lora-iqa bench: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
