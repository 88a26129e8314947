"""Training-time augmentation: exact dihedral flips, drawn per (seed, epoch, sample)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def dihedral(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random one of the 8 flips/rotations by 90 degrees: exact on the pixel grid, so noise,
    streaks and blur keep their statistics (crops or resampling would change sharpness)."""
    img = np.rot90(img, int(rng.integers(4)), axes=(0, 1))
    return np.ascontiguousarray(img[:, ::-1] if rng.random() < 0.5 else img)


def augmented(seed: int, augment: bool, batch: Sequence[tuple]) -> tuple[list[np.random.Generator], list[np.ndarray]]:
    """Each ``(epoch, index, sample)``'s generator and every image of the batch, in order, flipped/rotated
    if ``augment``. The randomness is per (seed, epoch, sample): a resumed run, or any world size, draws
    exactly the same."""
    rngs = [np.random.default_rng([seed, epoch, idx]) for epoch, idx, _ in batch]
    return rngs, [dihedral(im, r) if augment else im for (_, _, s), r in zip(batch, rngs) for im in s.images]
