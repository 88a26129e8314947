"""Protocol samples from a manifest. ``ss`` (single stimulus): one image -> a score per dimension."""

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
