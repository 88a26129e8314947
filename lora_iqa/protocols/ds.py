"""Double stimulus: two images, which one is better (or the two are similar)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from lora_iqa.metrics import fmt, pairwise_accuracy
from lora_iqa.protocols.base import AnswerError, Protocol, number
from lora_iqa.template import PREFERENCE_VALUE, PREFERENCES, Template, parse_preference, render_preference

PREFERENCE_WORDS = {0.0: "first better", 1.0: "second better", 0.5: "similar"}


class DoubleStimulus(Protocol):
    """``ds``: two images (plus the reference for fr) -> preference 0 (first better), 1 (second), 0.5 (similar)."""

    name = "ds"
    title = "double stimulus: which image is better"
    selection = "pairwise_accuracy"
    selection_key = ("pairwise", "accuracy")
    judgement_label = "pairwise accuracy"
    answer_keys = ("preference", "probability", "probs")

    @property
    def stimuli(self) -> int:
        return 2

    def count_error(self, n: int) -> str | None:
        return None if n == 2 else f"ds compares exactly 2 images, got {n}"

    def answer_captions(self) -> list[str]:
        return [render_preference(c) for c in PREFERENCES]

    def caption(self, labels: dict, answer, template: Template) -> str:
        return render_preference(answer)

    def answer_text(self, pred: dict) -> str:
        p = pred.get("probability")
        if pred.get("preference") is None:
            return ""
        return (f"preference={PREFERENCE_WORDS.get(pred['preference'], pred['preference'])}"
                + (f" (p {fmt(p)})" if p is not None else ""))

    def result_answer(self, result, template: Template) -> dict:
        return {"preference": result.preference, "probability": result.probability}

    def from_scores(self, scores: Sequence[dict], overall: str) -> dict:
        a, b = scores[0][overall], scores[1][overall]
        return {"preference": 0.0 if a > b else 1.0 if b > a else 0.5}

    def judgement_metrics(self, done: Sequence[dict], overall: str) -> dict:
        return {"pairwise": pairwise_accuracy([it["pred"]["preference"] for it in done],
                                              [it["true"][overall][0] for it in done],
                                              [it["true"][overall][1] for it in done])}

    def comparisons(self, items: Sequence[dict]) -> list[tuple[str, str, float]]:
        return [(it["images"][0], it["images"][1], 1.0 - it["pred"]["preference"]) for it in items]

    def draw(self, items: Sequence, n: int, seed: int, same_content: float, similar_below: float) -> list[tuple]:
        pairs = ds_pairs(items, n, seed, similar_below=similar_below,
                         same_content=1.0 if self.full_reference else same_content)
        return [((p.first, p.second), p.label) for p in pairs]

    def schema(self, dimensions: Sequence[str]) -> dict:
        return {"preference": {"type": "string", "enum": list(PREFERENCES)},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1}}

    def validate(self, obj: dict, dimensions: Sequence[str]) -> dict:
        pref = obj.get("preference")
        if isinstance(pref, str) and pref.strip().lower() in PREFERENCES:
            value = PREFERENCE_VALUE[pref.strip().lower()]
        elif number(pref) in (0.0, 0.5, 1.0) and not isinstance(pref, str):
            value = number(pref)
        else:
            raise AnswerError(f"'preference' must be one of {list(PREFERENCES)}, got {pref!r}")
        conf = obj.get("confidence")
        if conf is not None and (number(conf) is None or not 0 <= number(conf) <= 1):
            raise AnswerError(f"'confidence' must be in 0..1, got {conf!r}")
        return {"preference": value, "probability": None if conf is None else number(conf)}

    def parse_text(self, text: str, template: Template) -> dict:
        choice = parse_preference(text)
        if choice is None:
            raise AnswerError("no JSON and no readable preference")
        return {"preference": PREFERENCE_VALUE[choice]}

    def task(self, template: Template, about: str) -> str:
        return (f"Compare the overall diagnostic quality of the 2 images ({about}). "
                f'Return a JSON object {{"preference": one of {json.dumps(list(PREFERENCES))}, '
                '"confidence": a number 0-1}; "similar" means the same overall level.')

    def shot(self, rng, pool: Sequence, dimensions: Sequence[str], level: dict) -> tuple[tuple, dict]:
        a, b = rng.sample(pool, 2)
        diff = level[id(b)] - level[id(a)]
        return (a, b), {"preference": "similar" if diff == 0 else ("second" if diff > 0 else "first"), "confidence": 1.0}

    def shot_caption(self, answer: dict, template: Template) -> str:
        return render_preference(answer["preference"])


@dataclass(frozen=True)
class Pair:
    """A double-stimulus item: two manifest rows and which one is better (``similar`` below a threshold)."""

    first: object
    second: object
    label: str


def ds_pairs(items: Sequence, n: int, seed: int, overall: str = "overall", similar_below: float = 0.5,
             same_content: float = 0.5) -> list[Pair]:
    """``n`` pairs drawn from ``items`` (one split): a ``same_content`` fraction compare two degradations of
    one content, the rest two contents. Reproducible by seed; of the pairs with a better image, exactly
    half (rounded down) put it first. ``similar`` when |overall difference| < ``similar_below``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    by_content: dict[str, list] = {}
    for it in items:
        by_content.setdefault(it.content, []).append(it)
    multi = [c for c, its in by_content.items() if len(its) >= 2]
    contents = list(by_content)
    if len(items) < 2:
        return []
    drawn = []
    for _ in range(n):
        if multi and (rng.random() < same_content or len(contents) < 2):
            a, b = rng.choice(len(by_content[c := multi[rng.integers(len(multi))]]), 2, replace=False)
            x, y = by_content[c][a], by_content[c][b]
        else:
            c1, c2 = rng.choice(len(contents), 2, replace=False)
            x = by_content[contents[c1]][rng.integers(len(by_content[contents[c1]]))]
            y = by_content[contents[c2]][rng.integers(len(by_content[contents[c2]]))]
        drawn.append((x, y))
    score = lambda it: float(it.scores[overall])  # noqa: E731
    decided = [i for i, (x, y) in enumerate(drawn) if abs(score(x) - score(y)) >= similar_below]
    better_first = set(rng.permutation(decided)[: len(decided) // 2].tolist())
    pairs = []
    for i, (x, y) in enumerate(drawn):
        if i not in decided:
            pairs.append(Pair(x, y, "similar"))
            continue
        hi, lo = (x, y) if score(x) > score(y) else (y, x)
        pairs.append(Pair(hi, lo, "first") if i in better_first else Pair(lo, hi, "second"))
    return pairs
