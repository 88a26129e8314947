"""One bench cell, in its own process (``python -m lora_iqa.experiments.bench.cell CELL.json``): train or
fit the row's method, evaluate it on the shared test samples, record quality and cost."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import stats

from lora_iqa.config import IMAGE_SCORERS, Config, ScorerConfig
from lora_iqa.errors import LoraIqaError, atomic_write_text
from lora_iqa.experiments.bench.plan import Scores, cell_config, llm_configured
from lora_iqa.experiments.bench.report import flat_row
from lora_iqa.protocols import SS, Protocol, get_protocol
from lora_iqa.views import View


def run_cell(spec: dict, progress: bool = True) -> dict:
    """Train (if the method trains) and evaluate one cell; write ``cell.json``; return the cell."""
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.data.samples import protocol_samples

    t0 = time.perf_counter()
    cfg = cell_config(spec)
    # the spec's protocol: the image scorers' recipes train on single images whatever the bench judges
    template, d, protocol = cfg.template(), cfg.data, get_protocol(spec["protocol"], spec["reference"], cfg.data.k)
    manifest = read_manifest(spec["manifest"], template.dimensions)
    test = protocol_samples(manifest.split("test"), protocol, template.dimensions, spec["eval_seed"],
                            spec["test_per_image"], d.same_content, d.similar_below, d.window, spacing=d.make_view().spacing)
    method = spec["method"]
    cell: dict = {k: spec[k] for k in ("name", "method", "targets", "r", "protocol", "reference", "seed")}
    cost: dict = {}
    if method in ("lora", "full"):
        cell.update(_captioner_cell(cfg, protocol, test, template, spec, cost, progress))
    elif method == "clip_zero_shot":
        cell.update(_clip_zero_shot_cell(cfg, protocol, test, template, cost))
    elif method in IMAGE_SCORERS:
        cell.update(_scorer_cell(cfg, protocol, test, template, cost, progress))
    elif method == "zero_shot":
        cell.update(_zero_shot_cell(cfg, protocol, test, template, spec, cost))
    elif method == "mllm":
        cell.update(_mllm_cell(protocol, test, template, cost))
    else:
        cell.update(_classical_cell(cfg, protocol, manifest, test, template, cost))
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


def _captioner_cell(cfg: Config, protocol: Protocol, test, template, spec: dict, cost: dict, progress: bool) -> dict:
    from lora_iqa.methods.load import load_trained
    from lora_iqa.training.run import run

    res = run(cfg, progress=progress)
    _train_cost(res, cost)
    model, processor, meta = load_trained(res.dir)
    out = _captioner_eval(model, processor, test, template, protocol, spec, cost, meta.multi_image, meta.make_view())
    return {**out, "curve": res.curve, "losses": [round(x, 5) for x in res.losses]}


def _captioner_eval(model, processor, test, template, protocol: Protocol, spec: dict, cost: dict, index: bool,
                    view: View) -> dict:
    """Logit scoring (the cell's metrics and items); with captions: caption metrics, the template
    scorer's metrics and its agreement with the logits; with a configured server: the openai scorer too."""
    from lora_iqa.data.samples import caption_of
    from lora_iqa.evaluation import evaluate
    from lora_iqa.metrics import caption_scores

    ev, secs = _timed(evaluate, model, processor, test, template, "test", "logits", protocol=protocol, index=index,
                      view=view)
    cost["logits_images_per_s"] = round(_images_in(test) / secs, 2)
    out = {"metrics": ev["metrics"], "items": ev["items"], "scorings": {}}
    if not spec["captions"]:
        return out
    cap, secs = _timed(evaluate, model, processor, test, template, "test", "caption", protocol=protocol, index=index,
                       view=view)
    cost["generate_images_per_s"] = round(_images_in(test) / secs, 2)
    captions = [it["caption"] or "" for it in cap["items"]]
    out["captions"] = caption_scores(captions, [[caption_of(s, template, protocol)] for s in test])
    out["scorings"]["caption_template"] = {"metrics": cap["metrics"], "agreement": _agreement(ev["items"], cap["items"], protocol, template, True),
                                           "items": cap["items"]}
    if llm_configured():
        from lora_iqa.scorers import make_scorer

        scorer = make_scorer(ScorerConfig(backend="openai"), template, progress=False)
        oa = evaluate(model, processor, test, template, "test", "caption", protocol=protocol, index=index, scorer=scorer,
                      view=view)
        out["scorings"]["caption_openai"] = {"metrics": oa["metrics"], "agreement": _agreement(cap["items"], oa["items"], protocol, template),
                                             "items": oa["items"]}
    return out


def _answers(items: Sequence[dict], protocol: Protocol, template, from_caption: bool = False) -> list:
    """Each item's discrete answer: ss levels per dimension (``from_caption``: read from the item's caption,
    e.g. the logits' most probable levels), ds the preference, ms the ranking."""
    if not protocol.per_image:
        return [protocol.judgement(it["pred"]) for it in items]
    if from_caption:
        return [template.parse(it["caption"]) for it in items]
    return [{d: None if v is None else int(round(v)) for d, v in it["pred"].items()} for it in items]


def _agreement(a: Sequence[dict], b: Sequence[dict], protocol: Protocol, template, a_from_caption: bool = False) -> dict:
    """How two scorings of the same items agree: the fraction with the same answer (ss: the same level in
    every dimension), and for ss the SRCC between their overall scores."""
    same = [x == y for x, y in zip(_answers(a, protocol, template, a_from_caption), _answers(b, protocol, template))]
    out = {"exact": float(np.mean(same)) if same else None, "n": len(same)}
    if protocol.per_image:
        o = template.overall
        pairs = [(x["pred"].get(o), y["pred"].get(o)) for x, y in zip(a, b)]
        pairs = [p for p in pairs if None not in p]
        rho = float(stats.spearmanr(*zip(*pairs)).statistic) if len(pairs) > 2 else float("nan")
        out["overall_srcc"] = None if np.isnan(rho) else rho  # constant scores: undefined, not NaN in JSON
    return out


def _zero_shot_cell(cfg: Config, protocol: Protocol, test, template, spec: dict, cost: dict) -> dict:
    from lora_iqa.methods.blip.base import load_base
    from lora_iqa.methods.blip.predict import logit_scores
    from lora_iqa.methods.common import count_params

    model, processor = load_base(cfg.base)
    cost.update({"trainable_params": 0, "total_params": count_params(model)[1], "trainable_pct": 0.0, "size_bytes": 0})
    view = cfg.data.make_view()
    if protocol.single_image:
        return _captioner_eval(model, processor, test, template, protocol, spec, cost, False, view)
    # the base sees one image: ds / ms judgements compare its per-image overall scores
    return _per_image_cell(lambda ims: [r["scores"] for r in logit_scores(model, processor, ims, template, view=view)],
                           test, template, protocol, cost)


def _clip_zero_shot_cell(cfg: Config, protocol: Protocol, test, template, cost: dict) -> dict:
    """CLIP's antonym-prompt scores per image, zero-shot (CLIP-IQA)."""
    from lora_iqa.methods.clip.base import load_clip
    from lora_iqa.methods.clip.prompt import ClipPromptLearner
    from lora_iqa.methods.common import count_params

    clip, processor = load_clip(cfg.base)
    learner = ClipPromptLearner(clip, processor, cfg.adapter, template.dimensions, cfg.seed)
    learner.view = cfg.data.make_view()
    cost.update({"trainable_params": 0, "total_params": count_params(clip)[1], "trainable_pct": 0.0, "size_bytes": 0})
    return _per_image_cell(lambda ims: learner.scores(ims, zero_shot=True), test, template, protocol, cost)


def _scorer_cell(cfg: Config, protocol: Protocol, test, template, cost: dict, progress: bool) -> dict:
    """A method that scores single images (CLIP prompt learning, the image-only heads): trained by the one
    loop on ss samples, then each test stimulus scored alone."""
    from lora_iqa.methods.load import load_trained
    from lora_iqa.training.run import run

    res = run(cfg, progress=progress)
    _train_cost(res, cost)
    model, _, _ = load_trained(res.dir)
    out = _per_image_cell(model.scores, test, template, protocol, cost)
    return {**out, "curve": res.curve, "losses": [round(x, 5) for x in res.losses]}


def _classical_cell(cfg: Config, protocol: Protocol, manifest, test, template, cost: dict) -> dict:
    """scikit-image's noise sigma, blur effect and grey spread, fitted to each dimension on the train split."""
    from lora_iqa.data.samples import protocol_samples
    from lora_iqa.methods.classical import classical_scores, fit_classical

    dims = template.dimensions
    coef = fit_classical(protocol_samples(manifest.split("train"), SS, dims, cfg.seed, window=cfg.data.window,
                                          spacing=cfg.data.make_view().spacing), dims)
    cost.update({"trainable_params": int(coef.size), "total_params": int(coef.size), "trainable_pct": 100.0,
                 "size_bytes": int(coef.nbytes)})
    return _per_image_cell(lambda ims: classical_scores(coef, ims, dims), test, template, protocol, cost)


def _per_image_cell(score: Scores, test, template, protocol: Protocol, cost: dict) -> dict:
    """Score every test stimulus alone; ds prefers the higher overall, ms ranks by it (references unused)."""
    from lora_iqa.evaluation import items_of

    stimuli = {str(it.image): im for s in test for it, im in zip(s.items, s.images)}
    scores, secs = _timed(score, list(stimuli.values()))
    cost["logits_images_per_s"] = round(len(stimuli) / secs, 2)
    by_path = dict(zip(stimuli, scores))
    preds = [protocol.from_scores([by_path[str(it.image)] for it in s.items], template.overall) for s in test]
    items = items_of(test, preds, template, protocol)
    return {"metrics": protocol.metrics(items, template), "items": items, "scorings": {}}


def _mllm_cell(protocol: Protocol, test, template, cost: dict) -> dict:
    """The zero-shot vision-LLM baseline: the stimuli go to the configured server through the openai scorer."""
    from lora_iqa.evaluation import items_of
    from lora_iqa.scorers import make_scorer

    scorer = make_scorer(ScorerConfig(backend="openai"), template, progress=False)
    groups = [list(s.images[:len(s.items)]) for s in test]
    results, secs = _timed(scorer.score_images, groups, protocol)
    cost.update({"trainable_params": 0, "trainable_pct": 0.0, "size_bytes": 0,
                 "mllm_images_per_s": round(sum(map(len, groups)) / secs, 2)})
    preds = [protocol.result_answer(r, template) for r in results]
    items = items_of(test, preds, template, protocol)
    return {"metrics": protocol.metrics(items, template), "items": items, "scorings": {}}


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


def main(argv: Sequence[str] | None = None) -> int:
    """The cell process: ``python -m lora_iqa.experiments.bench.cell CELL.json``."""
    from lora_iqa.logs import quiet

    quiet()
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
