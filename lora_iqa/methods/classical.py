"""The classical no-reference baseline: scikit-image's noise sigma, blur effect and grey spread, mapped
to each dimension by least squares on the train split."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from skimage.color import rgb2gray
from skimage.measure import blur_effect
from skimage.restoration import estimate_sigma
from tqdm.auto import tqdm

from lora_iqa.data.samples import Sample


def classical_features(image: np.ndarray) -> np.ndarray:
    """scikit-image's noise sigma and blur effect, and the grey-level standard deviation, of one image."""
    image = np.asarray(image, dtype=np.float64)  # an ImageFile is read here
    gray = rgb2gray(image) if image.ndim == 3 else image
    return np.array([estimate_sigma(gray), blur_effect(gray), gray.std()])


def fit_classical(train_s: Sequence[Sample], dims: Sequence[str]) -> np.ndarray:
    """Least-squares map (features + 1) -> each dimension, fitted on the train split: (4, dims)."""
    x = np.array([classical_features(s.images[0]) for s in tqdm(train_s, desc="classical features", unit="img", leave=False)])
    y = np.array([[s.labels[d] for d in dims] for s in train_s], dtype=np.float64)
    return np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)[0]


def classical_scores(coef: np.ndarray, images: Sequence[np.ndarray], dims: Sequence[str]) -> list[dict[str, float]]:
    """Per image, the fitted map's score per dimension."""
    x = np.array([classical_features(im) for im in images])
    return [dict(zip(dims, row)) for row in (np.c_[x, np.ones(len(x))] @ coef).tolist()]
