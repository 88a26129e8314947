"""Multiple stimulus: k images ranked from best to worst."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lora_iqa.errors import LoraIqaError
from lora_iqa.metrics import fmt, ranking_kendall
from lora_iqa.protocols.base import AnswerError, Protocol, number
from lora_iqa.template import Template, parse_ranking, render_ranking


class MultipleStimulus(Protocol):
    """``ms``: k images (plus the reference for fr) -> their ranking, image numbers (1-based) best first."""

    name = "ms"
    title = "multiple stimulus: a ranking"
    selection = "kendall"
    selection_key = ("ranking", "kendall")
    judgement_label = "mean Kendall tau"
    answer_keys = ("ranking", "expected_ranks", "probability")

    @property
    def stimuli(self) -> int:
        return self.k

    def count_error(self, n: int) -> str | None:
        if n < 2:
            return f"ms ranks 2 or more images, got {n}"
        return None if n == self.k else f"ms ranks exactly {self.k} images, got {n}"

    def answer_captions(self) -> list[str]:
        return [render_ranking(list(range(1, self.k + 1)))]  # every ranking has the same tokens

    def caption(self, labels: dict, answer, template: Template) -> str:
        return render_ranking(answer)

    def answer_text(self, pred: dict) -> str:
        p = pred.get("probability")
        if pred.get("ranking") is None:
            return ""
        return (f"ranking={' > '.join(str(i) for i in pred['ranking'])} (image numbers, best first)"
                + (f" (p {fmt(p)})" if p is not None else ""))

    def result_answer(self, result, template: Template) -> dict:
        return {"ranking": result.ranking}

    def from_scores(self, scores: Sequence[dict], overall: str) -> dict:
        return {"ranking": [int(i) + 1 for i in np.argsort(-np.asarray([s[overall] for s in scores]), kind="stable")]}

    def judgement(self, pred: dict):
        ranking = pred.get("ranking")
        return None if ranking is None else tuple(ranking)

    def judgement_metrics(self, done: Sequence[dict], overall: str) -> dict:
        return {"ranking": ranking_kendall([it["pred"]["ranking"] for it in done], [it["true"][overall] for it in done])}

    def comparisons(self, items: Sequence[dict]) -> list[tuple[str, str, float]]:
        return [(it["images"][r[a] - 1], it["images"][r[b] - 1], 1.0)
                for it in items for r in (it["pred"]["ranking"],)
                for a in range(len(r)) for b in range(a + 1, len(r))]

    def draw(self, items: Sequence, n: int, seed: int, same_content: float, similar_below: float) -> list[tuple]:
        return [(g, tuple(order)) for g, order in ms_groups(items, n, seed, k=self.k, same_content=self.full_reference)]

    def schema(self, dimensions: Sequence[str]) -> dict:
        return {"ranking": {"type": "array", "minItems": self.k, "maxItems": self.k,
                            "items": {"type": "integer", "minimum": 1, "maximum": self.k}}}

    def validate(self, obj: dict, dimensions: Sequence[str]) -> dict:
        ranking = obj.get("ranking")
        if not isinstance(ranking, list) or sorted(_whole(r) or 0 for r in ranking) != list(range(1, self.k + 1)):
            raise AnswerError(f"'ranking' must be a permutation of 1..{self.k}, got {ranking!r}")
        return {"ranking": [int(r) for r in ranking]}

    def parse_text(self, text: str, template: Template) -> dict:
        order = parse_ranking(text, self.k)
        if order is None:
            raise AnswerError(f"no JSON and no readable ranking of 1..{self.k}")
        return {"ranking": order}

    def task(self, template: Template, about: str) -> str:
        return (f"Rank the {self.k} images ({about}) by overall diagnostic quality. "
                f'Return a JSON object {{"ranking": [image numbers from best to worst]}}, a permutation of 1..{self.k}.')

    def shot(self, rng, pool: Sequence, dimensions: Sequence[str], level: dict) -> tuple[tuple, dict]:
        group = rng.sample(pool, self.k)
        order = sorted(range(self.k), key=lambda i: (-level[id(group[i])], i))
        return tuple(group), {"ranking": [i + 1 for i in order]}

    def shot_caption(self, answer: dict, template: Template) -> str:
        return render_ranking(answer["ranking"])


def _whole(v) -> int | None:
    n = number(v)
    return int(n) if n is not None and n == int(n) else None


def ms_groups(items: Sequence, n: int, seed: int, k: int = 4, overall: str = "overall",
              tries: int = 100, same_content: bool = False) -> list[tuple[tuple, list[int]]]:
    """``n`` groups of ``k`` items with distinct overall scores (so the ranking is defined), in random
    order, each with its ranking: image numbers (1-based) from best to worst. Reproducible by seed.
    ``same_content``: every group is drawn within one content (one with ``k`` distinct scores)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    pools = [list(items)]
    if same_content:
        by_content: dict[str, list] = {}
        for it in items:
            by_content.setdefault(it.content, []).append(it)
        pools = [its for its in by_content.values() if len({float(it.scores[overall]) for it in its}) >= k]
        if not pools:
            raise LoraIqaError(f"ms: no content has {k} images with distinct '{overall}' scores (data.k={k})")
    out = []
    for _ in range(n):
        for _ in range(tries):
            pool = pools[int(rng.integers(len(pools)))] if len(pools) > 1 else pools[0]
            idx = rng.choice(len(pool), k, replace=False)
            group = tuple(pool[int(i)] for i in idx)
            scores = [float(it.scores[overall]) for it in group]
            if len(set(scores)) == k:
                order = sorted(range(k), key=lambda i: -scores[i])
                out.append((group, [i + 1 for i in order]))
                break
    return out
