"""Protocol samples from a manifest.

``ss`` (single stimulus): one image -> a score per dimension. ``ds`` (double stimulus): pairs of rows
with which one is better (:func:`ds_pairs`). ``ms`` (multiple stimulus): groups of k rows with their
ranking (:func:`ms_groups`). Pairs and groups are drawn within the given items (one split).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from lora_iqa.data.io import load_image
from lora_iqa.data.manifest import Item


@dataclass(frozen=True)
class Sample:
    """One protocol sample: its images (float [0,1]), integer labels per dimension, and its source item."""

    images: tuple[np.ndarray, ...]
    labels: dict[str, int]
    item: Item


def ss_samples(items: Sequence[Item], dimensions: Sequence[str], window=None,
               progress: bool = False) -> list[Sample]:
    """Load every item's image once; labels rounded to the template's integer levels."""
    out = []
    for it in tqdm(items, desc="load images", unit="img", disable=not progress, leave=False):
        labels = {d: int(round(float(it.scores[d]))) for d in dimensions}
        out.append(Sample(images=(load_image(it.image, window=window),), labels=labels, item=it))
    return out


PREFERENCE_LABELS = ("first", "second", "similar")


@dataclass(frozen=True)
class Pair:
    """A double-stimulus item: two manifest rows and which one is better (``similar`` below a threshold)."""

    first: Item
    second: Item
    label: str


def ds_pairs(items: Sequence[Item], n: int, seed: int, overall: str = "overall", similar_below: float = 0.5,
             same_content: float = 0.5) -> list[Pair]:
    """``n`` pairs drawn from ``items`` (one split): a ``same_content`` fraction compare two degradations of
    one content, the rest two contents. Reproducible by seed; of the pairs with a better image, exactly
    half (rounded down) put it first. ``similar`` when |overall difference| < ``similar_below``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    by_content: dict[str, list[Item]] = {}
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


def ms_groups(items: Sequence[Item], n: int, seed: int, k: int = 4, overall: str = "overall",
              tries: int = 100) -> list[tuple[tuple[Item, ...], list[int]]]:
    """``n`` groups of ``k`` items with distinct overall scores (so the ranking is defined), in random
    order, each with its ranking: image numbers (1-based) from best to worst. Reproducible by seed."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    out = []
    for _ in range(n):
        for _ in range(tries):
            idx = rng.choice(len(items), k, replace=False)
            group = tuple(items[int(i)] for i in idx)
            scores = [float(it.scores[overall]) for it in group]
            if len(set(scores)) == k:
                order = sorted(range(k), key=lambda i: -scores[i])
                out.append((group, [i + 1 for i in order]))
                break
    return out
