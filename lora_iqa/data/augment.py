"""Training-time augmentation: exact dihedral flips, drawn per (seed, epoch, sample)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from lora_iqa.config import Config
from lora_iqa.data.pixels import input_size


def _dihedral(img: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """One of the 8 flips/rotations by 90 degrees: exact on the pixel grid, so noise, streaks and blur
    keep their statistics (resampling would change sharpness)."""
    img = np.rot90(img, k, axes=(0, 1))
    return np.ascontiguousarray(img[:, ::-1] if flip else img)


def augmented(cfg: Config, processor, batch: Sequence[tuple]) -> tuple[list[np.random.Generator], list[np.ndarray]]:
    """Each ``(epoch, index, sample)``'s generator and every image of the batch, in order, flipped/rotated
    if ``train.augment`` (one flip per sample, shared by its images), then as the data config's view
    shows it at the model's input size (a crop: the same window in every image of a sample). The
    randomness is per (seed, epoch, sample): a resumed run, or any world size, draws exactly the same."""
    rngs = [np.random.default_rng([cfg.seed, epoch, idx]) for epoch, idx, _ in batch]
    view, size = cfg.data.make_view(), input_size(processor)
    out = []
    for (_, _, s), r in zip(batch, rngs):
        images = tuple(np.asarray(im) for im in s.images)
        if cfg.train.augment:
            k, flip = int(r.integers(4)), r.random() < 0.5
            images = tuple(_dihedral(im, k, flip) for im in images)
        out.extend(view.training_view(images, size, r))
    return rngs, out
