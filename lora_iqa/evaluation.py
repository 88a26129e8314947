"""Evaluate a captioner on protocol samples: predictions (logits or captions) -> metrics, every item kept."""

from __future__ import annotations

from typing import Sequence

from lora_iqa.data.protocols import Sample
from lora_iqa.metrics import correlations
from lora_iqa.predict import generate_captions, logit_scores
from lora_iqa.scorers.template import TemplateScorer
from lora_iqa.template import Template

METHODS = ("logits", "caption")


def predict(model, processor, samples: Sequence[Sample], template: Template, method: str,
            batch_size: int = 64, scorer=None) -> list[dict]:
    """Per sample ``{"scores": {dim: float|None}, "caption": str}`` by ``logits`` or ``caption``.

    Captions are turned into scores by ``scorer`` (default: the offline template scorer); an item the
    scorer could not read also carries ``"status": "failed"`` and its ``"reason"``.
    """
    images = [s.images[0] for s in samples]
    if method == "logits":
        res = logit_scores(model, processor, images, template, batch_size=batch_size)
        return [{"scores": r["scores"], "caption": template.render(r["levels"])} for r in res]
    if method == "caption":
        prompt = template.prefix(template.dimensions[0])
        caps = generate_captions(model, processor, images, prompt=prompt, batch_size=batch_size)
        results = (scorer or TemplateScorer(template)).score(caps, "ss")
        return [{"scores": {d: (r.scores or {}).get(d) for d in template.dimensions}, "caption": c,
                 **({} if r.ok else {"status": r.status, "reason": r.reason})} for c, r in zip(caps, results)]
    raise ValueError(f"unknown scoring method '{method}' (expected one of {METHODS})")


def evaluate(model, processor, samples: Sequence[Sample], template: Template, split: str = "test",
             method: str = "logits", batch_size: int = 64, scorer=None) -> dict:
    """The ``eval --out`` object: protocol, split, n, method, metrics per dimension, and every item.

    ``scorer`` reads the captions (method ``caption``); its name is recorded as ``"scorer"``.
    """
    preds = predict(model, processor, samples, template, method, batch_size=batch_size, scorer=scorer)
    items = [{"images": [str(p) for p in (s.item.image,)], "content": s.item.content,
              "true": dict(s.labels), "pred": p["scores"], "caption": p["caption"],
              **{k: p[k] for k in ("status", "reason") if k in p}}
             for s, p in zip(samples, preds)]
    scorer_name = getattr(scorer, "name", "template") if method == "caption" else None
    return {"protocol": "ss", "split": split, "n": len(items), "method": method, "scorer": scorer_name,
            "metrics": metrics_of(items, template.dimensions), "items": items}


def metrics_of(items: Sequence[dict], dimensions: Sequence[str]) -> dict[str, dict]:
    """Per-dimension correlations over the items whose prediction is present (``missing`` counts the rest)."""
    out = {}
    for d in dimensions:
        pairs = [(it["pred"][d], it["true"][d]) for it in items if it["pred"].get(d) is not None]
        m = correlations([p for p, _ in pairs], [t for _, t in pairs])
        m["missing"] = len(items) - len(pairs)
        out[d] = m
    return out
