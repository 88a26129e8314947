"""Views: what the model sees of an image.

Quality lives at native resolution: CT noise and streaks are pixel-scale textures, and resizing a
512-px slice whole to a 96-px ViT input averages them away. A ``crop`` view therefore shows the model
square crops of the model's input size at the image's own scale:

- An image that states its pixel spacing (DICOM ``PixelSpacing``, or a manifest's ``spacing_mm``
  column) is first resampled to ``spacing`` mm/px (antialiased), so images from any scanner or
  reconstruction field meet the model at one physical scale. Other images keep their pixels.
- A window's *weight* is the fraction of its pixels inside the display range (not clipped to 0 or 1;
  mean over the sample's images): a CT window of air outside the body, or of bone, shows no noise.
- Training: one crop per sample (the same relative window in every image of a sample: ds pairs, ms
  groups and the full-reference image): the heaviest of ``TRAIN_TRIES`` random windows drawn from the
  sample's own generator, so training rarely wastes a step on air.
- Evaluation and scoring: a fixed ``grid`` x ``grid`` of windows spread evenly over the image
  (corners included). The model's answer probabilities are averaged over the windows, weighted by
  their weights (uniformly when every weight is 0); an ss score is thus the weighted mean of the
  windows' expected levels. The same image always gets the same score. Generated captions read the
  central window.
- An image smaller than a crop is first enlarged (bicubic) until its shorter side fits one.

``resize`` is the earlier behaviour: every image resized whole to the input size (adapters saved
before views existed load with it). ``auto`` is ``crop`` for CT and ``resize`` for photos and
AI-generated images, whose quality (composition, global blur, artefacts across the frame) is judged
on the whole picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lora_iqa.errors import LoraIqaError

VIEW_MODES = ("crop", "resize", "auto")
DEFAULT_SPACING = 0.7  # mm/px: a clinical 512-px body slice is 0.6-0.9 mm/px
TRAIN_TRIES = 4  # random windows a training crop is chosen from (the heaviest)
CLIP_EPS = 1e-3  # a pixel within this of 0 or 1 is clipped by the display window


@dataclass(frozen=True)
class View:
    """``mode`` crop | resize; ``spacing`` mm/px images that state theirs are resampled to (None: never);
    ``grid``: windows per side at evaluation (crop only)."""

    mode: str = "crop"
    spacing: float | None = DEFAULT_SPACING
    grid: int = 3

    def __post_init__(self) -> None:
        if self.mode not in ("crop", "resize"):
            raise LoraIqaError(f"data.view: must be one of {VIEW_MODES}, got {self.mode!r}")
        if self.spacing is not None:
            ok = not isinstance(self.spacing, bool) and isinstance(self.spacing, (int, float))
            if not ok or not math.isfinite(self.spacing) or not 0.05 <= self.spacing <= 10:
                raise LoraIqaError(f"data.spacing: must be null or a number of mm per pixel in [0.05, 10], "
                                   f"got {self.spacing!r}")
            object.__setattr__(self, "spacing", float(self.spacing))
        if isinstance(self.grid, bool) or not isinstance(self.grid, int) or not 1 <= self.grid <= 8:
            raise LoraIqaError(f"data.grid: must be an integer 1..8, got {self.grid!r}")

    @property
    def crops(self) -> bool:
        return self.mode == "crop"

    def positions(self) -> list[tuple[float, float]]:
        """The evaluation windows' relative positions (0 top/left .. 1 bottom/right), row-major."""
        if not self.crops:
            return [(0.5, 0.5)]
        steps = [0.5] if self.grid == 1 else np.linspace(0.0, 1.0, self.grid).tolist()
        return [(fy, fx) for fy in steps for fx in steps]

    def training_view(self, images: tuple[np.ndarray, ...], size: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """A training sample's images as the model sees them: the heaviest of ``TRAIN_TRIES`` random windows."""
        if not self.crops:
            return self.show(images, size, (0.5, 0.5))
        shown = [self.show(images, size, (float(rng.uniform()), float(rng.uniform()))) for _ in range(TRAIN_TRIES)]
        return shown[int(np.argmax([weight(v) for v in shown]))]

    def show(self, images: tuple[np.ndarray, ...], size: int, position: tuple[float, float]) -> tuple[np.ndarray, ...]:
        """Every image of a sample as the model sees it at ``position`` (crop) or whole (resize)."""
        if not self.crops:
            return tuple(np.asarray(im) for im in images)
        return tuple(crop(np.asarray(im), size, position) for im in images)

    def evaluation_views(self, images: tuple[np.ndarray, ...], size: int) -> tuple[list[tuple[np.ndarray, ...]], np.ndarray]:
        """The sample's images at each evaluation window (``grid`` squared of them; an image no larger than
        a crop repeats its one window) and the windows' normalised weights (summing to 1)."""
        arrays = tuple(np.asarray(im) for im in images)
        views = [self.show(arrays, size, pos) for pos in self.positions()]
        w = np.array([weight(v) for v in views]) if self.crops else np.ones(1)
        return views, (w / w.sum() if w.sum() > 0 else np.full(len(views), 1.0 / len(views)))

    def central(self, images: tuple[np.ndarray, ...], size: int) -> tuple[np.ndarray, ...]:
        """The central window of every image (what a generated caption describes)."""
        return self.show(images, size, (0.5, 0.5))


def weight(images: tuple[np.ndarray, ...]) -> float:
    """The fraction of a window's pixels inside the display range (mean over the sample's images)."""
    return float(np.mean([np.mean((im > CLIP_EPS) & (im < 1 - CLIP_EPS)) for im in images]))


def pooled_scores(score_fn, images, view: View, size: int) -> list[dict[str, float]]:
    """``score_fn`` (a list of single images -> per image {dim: score}) applied to every evaluation window
    of each image; per image, the weighted mean over its windows."""
    per = [view.evaluation_views((im,), size) for im in images]
    scores = score_fn([v[0] for views, _ in per for v in views])
    out, i = [], 0
    for views, w in per:
        chunk, i = scores[i:i + len(views)], i + len(views)
        out.append({d: float(sum(wj * s[d] for wj, s in zip(w, chunk))) for d in chunk[0]})
    return out


RESIZE = View("resize", None, 1)  # resize whole: the behaviour of adapters saved before views


def make_view(mode: str, spacing: float | None, grid: int, domain: str) -> View:
    """The View of a data config: ``auto`` resolves by ``domain`` (crop for ct)."""
    if mode not in VIEW_MODES:
        raise LoraIqaError(f"data.view: must be one of {VIEW_MODES}, got {mode!r}")
    return View("crop" if mode == "auto" and domain == "ct" else "resize" if mode == "auto" else mode, spacing, grid)


def _origin(shape: tuple[int, ...], size: int, position: tuple[float, float]) -> tuple[int, int]:
    return round(position[0] * (shape[0] - size)), round(position[1] * (shape[1] - size))


def fit(img: np.ndarray, size: int) -> np.ndarray:
    """``img`` enlarged (bicubic) so its shorter side is at least ``size``; unchanged when it already is."""
    h, w = img.shape[:2]
    if min(h, w) >= size:
        return img
    f = size / min(h, w)
    return _interpolate(img, (max(size, math.ceil(h * f)), max(size, math.ceil(w * f))), "bicubic")


def crop(img: np.ndarray, size: int, position: tuple[float, float]) -> np.ndarray:
    """The ``size`` x ``size`` window of ``img`` at a relative position (after :func:`fit`)."""
    img = fit(img, size)
    y, x = _origin(img.shape, size, position)
    return np.ascontiguousarray(img[y:y + size, x:x + size])


def resample(img: np.ndarray, src_mm: float | None, dst_mm: float | None) -> np.ndarray:
    """``img`` resampled from ``src_mm`` to ``dst_mm`` per pixel (antialiased bilinear when shrinking,
    bicubic when enlarging); unchanged when either is unknown or they agree within 1 %."""
    if not src_mm or not dst_mm or abs(src_mm / dst_mm - 1) < 0.01:
        return img
    f = src_mm / dst_mm
    h, w = img.shape[:2]
    shape = (max(1, round(h * f)), max(1, round(w * f)))
    return _interpolate(img, shape, "bilinear" if f < 1 else "bicubic")


def _interpolate(img: np.ndarray, shape: tuple[int, int], mode: str) -> np.ndarray:
    t = torch.as_tensor(np.asarray(img, dtype=np.float32))
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    t = F.interpolate(t, size=shape, mode=mode, antialias=True, align_corners=False)[0]
    return (t[0] if img.ndim == 2 else t.permute(1, 2, 0)).numpy()  # not clamped: HU noise maps resample too
