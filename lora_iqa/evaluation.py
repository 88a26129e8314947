"""Evaluate a captioner on protocol samples: predictions (logits or captions) -> metrics, every item kept.

ss items carry scores per dimension; ds items a preference (0 first better, 1 second, 0.5 similar);
ms items a ranking. ds and ms judgements also become a per-image quality scale (Thurstone Case V,
MAP) whose correlation with the true overall score is reported under the overall dimension
(:mod:`lora_iqa.protocols`).
"""

from __future__ import annotations

import math
from typing import Sequence

from lora_iqa.data.samples import Sample
from lora_iqa.errors import LoraIqaError
from lora_iqa.methods.blip.predict import generate_captions, protocol_logits
from lora_iqa.methods.interface import ImageScorer
from lora_iqa.protocols import SS, Protocol
from lora_iqa.scorers.template_scorer import TemplateScorer
from lora_iqa.template import Template
from lora_iqa.views import RESIZE, View

METHODS = ("logits", "caption")


def predict(model, processor, samples: Sequence[Sample], template: Template, method: str,
            batch_size: int = 64, scorer=None, protocol: Protocol = SS, index: bool = False,
            view: View = RESIZE) -> list[dict]:
    """Per sample, by ``logits`` or ``caption``: ss ``{"scores", "caption"}``; ds ``{"preference",
    "probability", "caption"}``; ms ``{"ranking", "caption"}`` (logits add ``probs`` / ``expected_ranks``).

    Captions are turned into answers by ``scorer`` (default: the offline template scorer); an item the
    scorer could not read also carries ``"status": "failed"`` and its ``"reason"``. ``index``: the
    model adds image-index embeddings (every multi-image adapter). ``view``: what the model sees of each
    image (:mod:`lora_iqa.views`; the adapter's ``AdapterMeta.make_view()``).
    """
    return [finite_or_failed(p) for p in _predict(model, processor, samples, template, method, batch_size, scorer,
                                                   protocol, index, view)]


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
             scorer, protocol: Protocol, index: bool, view: View) -> list[dict]:
    images = [s.images for s in samples]
    if isinstance(model, ImageScorer):  # e.g. CLIP antonym prompts: one image, scores, no caption
        if method != "logits" or not protocol.per_image:
            raise LoraIqaError(f"{type(model).__name__} scores single images (no captions): use method "
                               f"logits and protocol ss (got {method}, {protocol.name})")
        return [{"scores": r, "caption": None} for r in model.scores([ims[0] for ims in images], batch_size=batch_size)]
    if method == "logits":
        res = protocol_logits(model, processor, images, protocol, template, batch_size=batch_size, index=index,
                              view=view)
        if protocol.per_image:  # the caption of the most probable levels
            return [{"scores": r["scores"], "caption": template.render(r["levels"])} for r in res]
        return [{**r, "caption": None} for r in res]
    if method == "caption":
        caps = generate_captions(model, processor, images, prompt=protocol.caption_prompt(template),
                                 batch_size=batch_size, index=index, view=view)
        results = (scorer or TemplateScorer(template)).score(caps, protocol)
        return [{**protocol.result_answer(r, template), "caption": c,
                 **({} if r.ok else {"status": r.status, "reason": r.reason})} for c, r in zip(caps, results)]
    raise ValueError(f"unknown scoring method '{method}' (expected one of {METHODS})")


def items_of(samples: Sequence[Sample], preds: Sequence[dict], template: Template, protocol: Protocol) -> list[dict]:
    """The ``eval --out`` items: image path(s), content(s), truth and prediction, per sample."""
    items = []
    for s, p in zip(samples, preds):
        extra = {k: p[k] for k in ("caption", "status", "reason") if k in p}
        stimuli = s.items or (s.item,)
        paths = [str(it.image) for it in stimuli] + [str(s.item.reference)] * (len(s.images) - len(stimuli))
        items.append(protocol.item(paths, s, p, extra, template))
    return items


def evaluate(model, processor, samples: Sequence[Sample], template: Template, split: str = "test",
             method: str = "logits", batch_size: int = 64, scorer=None, protocol: Protocol = SS,
             index: bool = False, view: View = RESIZE) -> dict:
    """The ``eval --out`` object: protocol, split, n, method, metrics, and every item.

    ``scorer`` reads the captions (method ``caption``); its name is recorded as ``"scorer"``.
    """
    preds = predict(model, processor, samples, template, method, batch_size=batch_size, scorer=scorer,
                    protocol=protocol, index=index, view=view)
    items = items_of(samples, preds, template, protocol)
    scorer_name = getattr(scorer, "name", "template") if method == "caption" else None
    return {"protocol": protocol.name, "split": split, "n": len(items), "method": method, "scorer": scorer_name,
            "metrics": protocol.metrics(items, template), "items": items}
