"""Protocol samples from a manifest.

``ss`` (single stimulus): one image -> a score per dimension. ``ds`` (double stimulus): pairs of rows
with which one is better (:func:`ds_pairs`). ``ms`` (multiple stimulus): groups of k rows with their
ranking (:func:`ms_groups`). Pairs and groups are drawn within the given items (one split).
Full-reference (``fr``) samples add the clean reference of the stimuli's content as the last image;
their pairs and groups are drawn within one content, so that reference is shared.
:func:`protocol_samples` builds any of them; :func:`caption_of` is a sample's training caption.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lora_iqa.data import io
from lora_iqa.data.manifest import Item
from lora_iqa.errors import LoraIqaError
from lora_iqa.template import Template, render_preference, render_ranking

# Images are read at most this large (longer side, px; integer box reduction while decoding): the model
# resizes every image whole to its input size (96 px embedded, 384 px BLIP-base), so a huge photo
# costs its decoded 8-bit size once, never gigabytes of float.
MAX_SIDE = 2048
# A training keeps at most this much of its decoded images (per split); beyond it, images are read per
# batch. Small sets train at in-memory speed, large ones in bounded memory.
KEEP_BYTES = 1 << 30


@dataclass(frozen=True)
class ImageFile:
    """An image that is read when it is used (``np.asarray(img)``) and not kept: samples name their
    images, so memory is bounded by the batch being processed, not by the size of the data."""

    path: Path
    window: tuple[float, float] | None = None

    def load(self) -> np.ndarray:
        """The image as float32 in [0, 1] (see :func:`lora_iqa.data.io.load_image`)."""
        return io.load_image(self.path, window=self.window, max_side=MAX_SIDE)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        img = self.load()
        return img if dtype is None else img.astype(dtype, copy=False)


@dataclass(frozen=True)
class Sample:
    """One protocol sample: its images in the order the model sees them (the stimuli, then the clean
    reference for full-reference) as :class:`ImageFile` (read on use) or float [0, 1] arrays, ss labels
    (integer level per dimension), the first stimulus's manifest row, and for ds/ms every stimulus's row
    and the answer (ds: first | second | similar; ms: image numbers from best to worst)."""

    images: tuple[ImageFile | np.ndarray, ...]
    labels: dict[str, int]
    item: Item
    items: tuple[Item, ...] = ()
    answer: str | tuple[int, ...] | None = None


def caption_of(sample: Sample, template: Template) -> str:
    """The training caption: the quality template (ss), the preference (ds) or the ranking (ms)."""
    if sample.answer is None:
        return template.render(sample.labels)
    if isinstance(sample.answer, str):
        return render_preference(sample.answer)
    return render_ranking(sample.answer)


def protocol_samples(items: Sequence[Item], protocol: str, reference: str, dimensions: Sequence[str], seed: int,
                     k: int = 4, per_image: int = 4, same_content: float = 0.5, similar_below: float = 0.5,
                     window=None, check: bool = False, progress: bool = False) -> list[Sample]:
    """Samples of ``protocol`` (ss | ds | ms) over ``items`` (one split), ``reference`` nr or fr.

    ss: every item once. ds: ``per_image * len(items)`` pairs; ms: as many groups of ``k``. Images are
    :class:`ImageFile` s, read when a batch uses them. ``check`` (training) reads every image once now,
    so that a bad file stops a training before it starts (``progress``: with a bar), and keeps the
    decoded images up to ``KEEP_BYTES`` in all; the rest are read again when used. Reproducible by ``seed``.
    """
    if reference == "fr":
        missing = [it for it in items if it.reference is None]
        if missing:
            raise LoraIqaError(f"{missing[0].image}: full-reference protocols need the manifest column 'reference'")
    files: dict = {p: ImageFile(p, window) for it in items
                   for p in ((it.image, it.reference) if reference == "fr" else (it.image,))}
    if check:
        from tqdm.auto import tqdm

        kept = 0
        for path, f in tqdm(list(files.items()), desc="check images", unit="img", leave=False, disable=not progress):
            img = f.load()
            if kept + img.nbytes <= KEEP_BYTES:  # read once now: a training reads each many times
                files[path], kept = img, kept + img.nbytes

    def with_ref(stimuli: tuple[Item, ...]) -> tuple[ImageFile | np.ndarray, ...]:
        return tuple(files[it.image] for it in stimuli) + ((files[stimuli[0].reference],) if reference == "fr" else ())

    n = per_image * len(items)
    if protocol == "ss":
        return [Sample(images=with_ref((it,)), labels={d: int(round(float(it.scores[d]))) for d in dimensions},
                       item=it, items=(it,)) for it in items]
    if protocol == "ds":
        pairs = ds_pairs(items, n, seed, similar_below=similar_below,
                         same_content=1.0 if reference == "fr" else same_content)
        drawn = [((p.first, p.second), p.label) for p in pairs]
    elif protocol == "ms":
        drawn = [(g, tuple(order)) for g, order in ms_groups(items, n, seed, k=k, same_content=reference == "fr")]
    else:
        raise ValueError(f"unknown protocol '{protocol}'")
    return [Sample(images=with_ref(stimuli), labels={}, item=stimuli[0], items=stimuli, answer=answer)
            for stimuli, answer in drawn]


def ss_samples(items: Sequence[Item], dimensions: Sequence[str], window=None, check: bool = False) -> list[Sample]:
    """Single-stimulus, no-reference samples: every item's image once, labels rounded to the template's
    integer levels."""
    return protocol_samples(items, "ss", "nr", dimensions, seed=0, window=window, check=check)


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
              tries: int = 100, same_content: bool = False) -> list[tuple[tuple[Item, ...], list[int]]]:
    """``n`` groups of ``k`` items with distinct overall scores (so the ranking is defined), in random
    order, each with its ranking: image numbers (1-based) from best to worst. Reproducible by seed.
    ``same_content``: every group is drawn within one content (one with ``k`` distinct scores)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    pools = [list(items)]
    if same_content:
        by_content: dict[str, list[Item]] = {}
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
