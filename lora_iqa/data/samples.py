"""Protocol samples from a manifest: the stimuli a protocol draws (:mod:`lora_iqa.protocols`), as images.

Full-reference (``fr``) samples add the clean reference of the stimuli's content as the last image.
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
from lora_iqa.protocols import SS, Protocol
from lora_iqa.template import Template
from lora_iqa.views import resample

# Images are read at most this large (longer side, px; integer box reduction while decoding): the model
# sees crops of its input size or the image resized whole (lora_iqa.views), so a huge photo costs its
# decoded size at this scale once, never gigabytes of float.
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
    spacing: float | None = None  # mm/px to resample to (the view's), when the image's own spacing is known
    own_spacing: float | None = None  # the image's mm/px when its file cannot say (a manifest's spacing_mm)

    def load(self) -> np.ndarray:
        """The image as float32 in [0, 1] (see :func:`lora_iqa.data.io.load_image`), resampled to
        ``spacing`` when the image's own spacing is known (``own_spacing`` or the DICOM header)."""
        img = io.load_image(self.path, window=self.window, max_side=MAX_SIDE)
        if self.spacing is None:
            return img
        return resample(img, self.own_spacing or io.pixel_spacing(self.path, rows=img.shape[0]), self.spacing)

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


def caption_of(sample: Sample, template: Template, protocol: Protocol) -> str:
    """The training caption: the quality template (ss), the preference (ds) or the ranking (ms)."""
    return protocol.caption(sample.labels, sample.answer, template)


def protocol_samples(items: Sequence[Item], protocol: Protocol, dimensions: Sequence[str], seed: int,
                     per_image: int = 4, same_content: float = 0.5, similar_below: float = 0.5,
                     window=None, check: bool = False, progress: bool = False, spacing: float | None = None) -> list[Sample]:
    """Samples of ``protocol`` over ``items`` (one split).

    ss: every item once. ds: ``per_image * len(items)`` pairs; ms: as many groups of ``protocol.k``. Images are
    :class:`ImageFile` s, read when a batch uses them. ``check`` (training) reads every image once now,
    so that a bad file stops a training before it starts (``progress``: with a bar), and keeps the
    decoded images up to ``KEEP_BYTES`` in all; the rest are read again when used. Reproducible by ``seed``.
    ``spacing``: the view's mm/px (images with a known spacing, from the file or the manifest's
    ``spacing_mm`` column, are resampled to it).
    """
    fr = protocol.full_reference
    if fr:
        missing = [it for it in items if it.reference is None]
        if missing:
            raise LoraIqaError(f"{missing[0].image}: full-reference protocols need the manifest column 'reference'")
    files: dict = {p: ImageFile(p, window, spacing, _own_spacing(it)) for it in items
                   for p in ((it.image, it.reference) if fr else (it.image,))}
    if check:
        from tqdm.auto import tqdm

        kept = 0
        for path, f in tqdm(list(files.items()), desc="check images", unit="img", leave=False, disable=not progress):
            img = f.load()
            if kept + img.nbytes <= KEEP_BYTES:  # read once now: a training reads each many times
                files[path], kept = img, kept + img.nbytes

    def with_ref(stimuli: tuple[Item, ...]) -> tuple[ImageFile | np.ndarray, ...]:
        return tuple(files[it.image] for it in stimuli) + ((files[stimuli[0].reference],) if fr else ())

    def labels(stimuli: tuple[Item, ...]) -> dict[str, int]:  # the template's integer levels, per image
        return {d: int(round(float(stimuli[0].scores[d]))) for d in dimensions} if protocol.per_image else {}

    drawn = protocol.draw(items, per_image * len(items), seed, same_content, similar_below)
    return [Sample(images=with_ref(stimuli), labels=labels(stimuli), item=stimuli[0], items=stimuli, answer=answer)
            for stimuli, answer in drawn]


def ss_samples(items: Sequence[Item], dimensions: Sequence[str], window=None, check: bool = False,
               spacing: float | None = None) -> list[Sample]:
    """Single-stimulus, no-reference samples: every item's image once, labels rounded to the template's
    integer levels."""
    return protocol_samples(items, SS, dimensions, seed=0, window=window, check=check, spacing=spacing)


def _own_spacing(item: Item) -> float | None:
    """The manifest's ``spacing_mm`` (mm/px) of an item, if the column is there and holds a number."""
    raw = item.extra.get("spacing_mm")
    try:
        mm = float(raw) if raw not in (None, "") else None
    except ValueError:
        raise LoraIqaError(f"manifest line {item.line}: column 'spacing_mm' must be a number of mm per pixel, "
                           f"got {raw!r}") from None
    return mm if mm and mm > 0 else None
