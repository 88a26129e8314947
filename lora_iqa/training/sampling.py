"""Training order and augmentation: a restartable per-epoch shuffle and exact dihedral flips."""

from __future__ import annotations

import numpy as np
import torch

from lora_iqa.data.samples import Sample


class EpochSampler(torch.utils.data.Sampler):
    """A shuffled order per (seed, epoch), yielding ``(epoch, index)``: restartable at any epoch."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch, 0x5EED]).permutation(self.n)
        return iter([(self.epoch, int(i)) for i in order])


class ByEpoch(torch.utils.data.Dataset):
    def __init__(self, samples: list[Sample], sampler: EpochSampler) -> None:
        self.samples, self.sampler = samples, sampler

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: tuple[int, int]) -> tuple[int, int, Sample]:
        epoch, idx = key
        return epoch, idx, self.samples[idx]


def dihedral(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random one of the 8 flips/rotations by 90 degrees: exact on the pixel grid, so noise,
    streaks and blur keep their statistics (crops or resampling would change sharpness)."""
    img = np.rot90(img, int(rng.integers(4)), axes=(0, 1))
    return np.ascontiguousarray(img[:, ::-1] if rng.random() < 0.5 else img)
