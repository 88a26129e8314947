"""Evaluate a captioner on protocol samples: predictions (logits or captions) -> metrics, every item kept.

ss items carry scores per dimension; ds items a preference (0 first better, 1 second, 0.5 similar);
ms items a ranking. ds and ms judgements also become a per-image quality scale (Thurstone Case V,
MAP) whose correlation with the true overall score is reported under the overall dimension.
"""

from __future__ import annotations

import math
from typing import Sequence

from lora_iqa.data.samples import Sample
from lora_iqa.errors import LoraIqaError
from lora_iqa.methods.blip.predict import (
    generate_captions,
    logit_scores,
    preference_scores,
    ranking_scores,
)
from lora_iqa.metrics import (
    correlations,
    pairwise_accuracy,
    ranking_kendall,
    thurstone_map,
)
from lora_iqa.scorers.template_scorer import TemplateScorer
from lora_iqa.template import Template

METHODS = ("logits", "caption")


def predict(model, processor, samples: Sequence[Sample], template: Template, method: str,
            batch_size: int = 64, scorer=None, protocol: str = "ss", index: bool = False,
            k: int | None = None) -> list[dict]:
    """Per sample, by ``logits`` or ``caption``: ss ``{"scores", "caption"}``; ds ``{"preference",
    "probability", "caption"}``; ms ``{"ranking", "caption"}`` (logits add ``probs`` / ``expected_ranks``).

    Captions are turned into answers by ``scorer`` (default: the offline template scorer); an item the
    scorer could not read also carries ``"status": "failed"`` and its ``"reason"``. ``index``: the
    model adds image-index embeddings (every multi-image adapter).
    """
    return [finite_or_failed(p) for p in _predict(model, processor, samples, template, method, batch_size, scorer,
                                                   protocol, index, k)]


def finite_or_failed(pred: dict) -> dict:
    """A prediction with a NaN or infinite number in its answer (a diverged model) is a failed item:
    its numbers become ``None`` and it carries ``status`` and ``reason``; others are returned as they are."""
    bad = [key for key in ANSWER_KEYS if key in pred and not _finite(pred[key])]
    if not bad:
        return pred
    out = {key: _nones(v) if key in bad else v for key, v in pred.items()}
    return {**out, "status": "failed", "reason": f"non-finite {', '.join(bad)} (the model's output is NaN or inf)"}


ANSWER_KEYS = ("scores", "preference", "probability", "probs", "ranking", "expected_ranks")


def _finite(v) -> bool:
    if isinstance(v, dict):
        return all(_finite(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return all(_finite(x) for x in v)
    return v is None or math.isfinite(v)


def _nones(v):
    if isinstance(v, dict):
        return {key: None for key in v}
    return None


def _predict(model, processor, samples: Sequence[Sample], template: Template, method: str, batch_size: int,
             scorer, protocol: str, index: bool, k: int | None) -> list[dict]:
    images = [s.images for s in samples]
    k = k or (len(samples[0].items) if samples and protocol == "ms" else 4)
    if getattr(model, "is_prompt_learner", False):  # CLIP antonym prompts: one image, scores, no caption
        if method != "logits" or protocol != "ss":
            raise LoraIqaError(f"a CLIP prompt learner scores single images by its antonym prompts: use method "
                               f"logits and protocol ss (got {method}, {protocol})")
        return [{"scores": r, "caption": None} for r in model.scores([ims[0] for ims in images], batch_size=batch_size)]
    if method == "logits":
        if protocol == "ds":
            return [{**r, "caption": None} for r in preference_scores(model, processor, images, index)]
        if protocol == "ms":
            return [{**r, "caption": None} for r in ranking_scores(model, processor, images, k, index)]
        res = logit_scores(model, processor, images, template, batch_size=batch_size, index=index)
        return [{"scores": r["scores"], "caption": template.render(r["levels"])} for r in res]
    if method == "caption":
        prompt = template.prefix(template.dimensions[0]) if protocol == "ss" else ""
        caps = generate_captions(model, processor, images, prompt=prompt, batch_size=batch_size, index=index)
        results = (scorer or TemplateScorer(template)).score(caps, protocol, k)
        out = []
        for c, r in zip(caps, results):
            answer = ({"scores": {d: (r.scores or {}).get(d) for d in template.dimensions}} if protocol == "ss" else
                      {"preference": r.preference, "probability": r.probability} if protocol == "ds" else
                      {"ranking": r.ranking})
            out.append({**answer, "caption": c, **({} if r.ok else {"status": r.status, "reason": r.reason})})
        return out
    raise ValueError(f"unknown scoring method '{method}' (expected one of {METHODS})")


def items_of(samples: Sequence[Sample], preds: Sequence[dict], template: Template, protocol: str) -> list[dict]:
    """The ``eval --out`` items: image path(s), content(s), truth and prediction, per sample."""
    items = []
    for s, p in zip(samples, preds):
        extra = {k: p[k] for k in ("caption", "status", "reason") if k in p}
        stimuli = s.items or (s.item,)
        paths = [str(it.image) for it in stimuli] + [str(s.item.reference)] * (len(s.images) - len(stimuli))
        if protocol == "ss":
            items.append({"images": paths, "content": s.item.content, "true": dict(s.labels), "pred": p["scores"], **extra})
            continue
        truth = [float(it.scores[template.overall]) for it in s.items]
        pred = {k: v for k, v in p.items() if k not in extra}
        items.append({"images": paths, "contents": [it.content for it in s.items], "true": {template.overall: truth},
                      "answer": s.answer if isinstance(s.answer, str) else list(s.answer), "pred": pred, **extra})
    return items


def evaluate(model, processor, samples: Sequence[Sample], template: Template, split: str = "test",
             method: str = "logits", batch_size: int = 64, scorer=None, protocol: str = "ss",
             index: bool = False) -> dict:
    """The ``eval --out`` object: protocol, split, n, method, metrics, and every item.

    ``scorer`` reads the captions (method ``caption``); its name is recorded as ``"scorer"``.
    """
    preds = predict(model, processor, samples, template, method, batch_size=batch_size, scorer=scorer,
                    protocol=protocol, index=index)
    items = items_of(samples, preds, template, protocol)
    scorer_name = getattr(scorer, "name", "template") if method == "caption" else None
    return {"protocol": protocol, "split": split, "n": len(items), "method": method, "scorer": scorer_name,
            "metrics": protocol_metrics(items, template, protocol), "items": items}


def protocol_metrics(items: Sequence[dict], template: Template, protocol: str) -> dict:
    """ss: per-dimension correlations. ds: ``pairwise`` accuracy (pairs >= 1 level apart) and the
    Thurstone scale's correlations under the overall dimension. ms: mean ``kendall`` tau per ranking and
    the scale from the rankings' pairwise orders."""
    if protocol == "ss":
        return metrics_of(items, template.dimensions)
    o = template.overall
    done = [it for it in items if (it["pred"].get("preference") if protocol == "ds" else it["pred"].get("ranking")) is not None]
    out: dict = {}
    if protocol == "ds":
        out["pairwise"] = pairwise_accuracy([it["pred"]["preference"] for it in done], [it["true"][o][0] for it in done],
                                            [it["true"][o][1] for it in done])
    else:
        out["ranking"] = ranking_kendall([it["pred"]["ranking"] for it in done], [it["true"][o] for it in done])
    scale, truth = judgement_scale(done, protocol, o)
    m = correlations(scale, truth)
    m["rmse"] = None  # the scale is in z units, not on the 0..4 scale
    m["missing"] = len(items) - len(done)
    out[o] = m
    return out


def judgement_scale(items: Sequence[dict], protocol: str, dim: str) -> tuple[list[float], list[float]]:
    """The Thurstone Case V scale (MAP) of every stimulus judged in ``items`` (ds preferences or ms
    rankings, every item answered), and each stimulus's true ``dim`` score, in path order."""
    if protocol == "ds":
        comparisons = [(it["images"][0], it["images"][1], 1.0 - it["pred"]["preference"]) for it in items]
    else:
        comparisons = [(it["images"][r[a] - 1], it["images"][r[b] - 1], 1.0)
                       for it in items for r in (it["pred"]["ranking"],)
                       for a in range(len(r)) for b in range(a + 1, len(r))]
    truth = {path: t for it in items for path, t in zip(it["images"], it["true"][dim])}
    names = sorted(truth)
    pos = {p: i for i, p in enumerate(names)}
    scale = thurstone_map(len(names), [(pos[a], pos[b], w) for a, b, w in comparisons])
    return scale.tolist(), [truth[p] for p in names]


def selection_score(metrics: dict, protocol: str) -> float:
    """One validation number to select the best step by (higher is better): the mean SRCC over the
    dimensions (ss), pairwise accuracy (ds) or mean Kendall tau (ms)."""
    if protocol == "ds":
        v = metrics["pairwise"]["accuracy"]
    elif protocol == "ms":
        v = metrics["ranking"]["kendall"]
    else:
        vals = [m["srcc"] if m["srcc"] is not None else -1 for m in metrics.values()]
        return float(sum(vals) / len(vals))
    return -1.0 if v is None else float(v)


def metrics_of(items: Sequence[dict], dimensions: Sequence[str]) -> dict[str, dict]:
    """Per-dimension correlations over the items whose prediction is present (``missing`` counts the rest)."""
    out = {}
    for d in dimensions:
        pairs = [(it["pred"][d], it["true"][d]) for it in items if it["pred"].get(d) is not None]
        m = correlations([p for p, _ in pairs], [t for _, t in pairs])
        m["missing"] = len(items) - len(pairs)
        out[d] = m
    return out
