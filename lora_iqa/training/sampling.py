"""Training order: a restartable per-epoch shuffle."""

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
