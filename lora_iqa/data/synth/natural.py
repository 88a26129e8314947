"""Synthetic natural-image quality data: scikit-image's bundled photos -> crops -> distortions -> labels.

The photos are real, but the distortions made here are simulated and the labels are SYNTHETIC: they
come from a rule-based rater (below), not from human ratings.

Content
    The natural colour photos that ship inside scikit-image (no download): ``astronaut``, ``chelsea``
    (the cat), ``coffee`` and ``rocket`` (``hubble_deep_field`` is left out: on its mostly black star
    fields the relative measures below are unstable). Each photo is cut into a grid of
    non-overlapping squares of side ``min(height, width) // 2`` (22 regions in all); every region is
    one ``content`` (``astronaut_0_1`` = row 0, column 1), resized to ``size`` px (Lanczos). Splits are
    disjoint by content, so no pixel of a test image is ever seen in training; regions of the same
    photo may still fall in different splits (the ``source`` column names the photo). At ``size``
    larger than a region (150-256 px) the region is upsampled and its reference is softer.

Distortions (per image, in this order; each active with probability 1/2, at least one)
    ``contrast_factor`` c: luminance Y -> mean + c (Y - mean), chroma kept; c in 0.2-1 (60 %) or 1-2.5.
    ``saturation_factor`` s: RGB -> Y + s (RGB - Y); s in 0-1 (60 %, 0 = greyscale) or 1-3.
    ``blur_sigma``: Gaussian blur, 0.3-5 px (log scale). ``noise_sigma``: additive Gaussian noise,
    i.i.d. per pixel and channel, 2-40 grey levels of 255 (log scale); then rounding to 8 bits.
    ``jpeg_quality``: JPEG compression (Pillow, 4:2:0), quality 60 down to 3 (log scale); 0 = none.
    A factor of 1 or a strength of 0 means "not applied"; ``distortions`` lists the applied ones.
    Strengths use one uniform severity per distortion, drawn from the image's seed.

Measured quantities (Y = luminance 0.299 R + 0.587 G + 0.114 B, 0..255; ref = the clean region;
N = the image distorted without its noise; F = the image written)
    sharp_ratio  (G(N) / std(N)) / (G(ref) / std(ref)); G = RMS of horizontal and vertical
                 neighbour differences of Y inside 8x8 blocks (JPEG block edges excluded); the std
                 normalisation makes it blind to contrast changes. 1 = as sharp as the reference.
    noise_std    std of Y(F) - Y(N), grey levels (the noise that survives rounding and compression).
    blockiness   (mean |dY| across 8-px block edges + 0.5) / (mean |dY| inside blocks + 0.5) - 1, on N.
    contrast_dev abs(ln(std Y(N) / std Y(ref))): lost or exaggerated (clipped) contrast. Clipping
                 bounds the std, so a strong increase of an already contrasty image rates fair, not bad.
    color_dev    abs(ln((M(N) + 1) / (M(ref) + 1))), M = Hasler-Suesstrunk colourfulness
                 (sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)): washed-out or garish.

Rater (the labels; 0..4, higher is better). Each dimension is rated from its measured quantity.

    ==========  ============  ======  ===========  ===========  ===========  ======
    dimension   quantity        4       3            2            1            0
    ==========  ============  ======  ===========  ===========  ===========  ======
    sharpness   sharp_ratio   >= .90  .75-.90      .51-.75      .32-.51      < .32
    noise       noise_std     < 2.0   2.0-3.5      3.5-6.0      6.0-10.5     >= 10.5
    artifact    blockiness    < .15   .15-.80      .80-1.4      1.4-2.8      >= 2.8
    contrast    contrast_dev  < .20   .20-.40      .40-.70      .70-1.1      >= 1.1
    color       color_dev     < .20   .20-.40      .40-.70      .70-1.1      >= 1.1
    ==========  ============  ======  ===========  ===========  ===========  ======

    Intervals include their lower end. The 4/3 threshold sits just outside what undistorted images
    measure (e.g. sharp_ratio >= .98, blockiness <= .10 for 95 % of them); the others sit near the
    quartiles of the quantity over the images where it is degraded (calibrated on 792 images, 128 px,
    seed 0: blur or JPEG for sharpness, noise, JPEG, contrast change, saturation change). Contrast
    and colour thresholds are ratios of e^0.2 = 1.22, e^0.4 = 1.49, e^0.7 = 2.0, e^1.1 = 3.0 either way.

    overall (general perceptual quality, 0 bad .. 4 excellent), as for synthetic CT::

        overall = clip(round_half_up(min(2 + 1.5 * (mean(dims) - 2), min(dims) + 2)), 0, 4)

    the mean of the five dimensions stretched by 1.5 about the middle of the scale, capped at two
    levels above the worst dimension. It is non-decreasing in every dimension.

Output of :func:`synth_natural`: ``images/<content>_<k>.png`` (8-bit RGB), ``images/<content>_ref.png``
(the clean region), ``manifest.csv`` and ``README.md``; the whole directory is built under a
temporary name and renamed into place.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from lora_iqa.data.synth.common import check_out_dir, content_splits, overall_from
from lora_iqa.errors import LoraIqaError, atomic_path

# Same names and order as lora_iqa.template.NATURAL_DIMENSIONS (a test checks it).
NATURAL_DIMENSIONS = ("sharpness", "noise", "artifact", "contrast", "color", "overall")
DIMENSIONS = NATURAL_DIMENSIONS
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
DISTORTIONS = ("contrast", "saturation", "blur", "noise", "jpeg")  # order of application
P_ACTIVE = 0.5
BLOCK = 8  # JPEG block size
# Rater thresholds (ascending) on the measured quantities; see the table in the docstring.
SHARP_RATIO = (0.32, 0.51, 0.75, 0.90)  # higher is better
NOISE_STD = (2.0, 3.5, 6.0, 10.5)  # lower is better (grey levels)
BLOCKINESS = (0.15, 0.80, 1.4, 2.8)  # lower is better
CONTRAST_DEV = (0.20, 0.40, 0.70, 1.1)  # lower is better
COLOR_DEV = (0.20, 0.40, 0.70, 1.1)  # lower is better
# Strength ranges (severity u in [0, 1] -> strength)
BLUR_RANGE = (0.3, 5.0)  # px, log scale
NOISE_RANGE = (2.0, 40.0)  # grey levels, log scale
JPEG_RANGE = (60, 3)  # quality, log scale
CONTRAST_DOWN, CONTRAST_UP = 0.2, 2.5
SATURATION_UP = 3.0
P_DOWN = 0.6  # contrast/saturation: probability of a reduction (else an increase)


@dataclass(frozen=True)
class SynthNaturalConfig:
    n: int = 400  # images in total, spread evenly over min(n, 22) contents
    size: int = 128  # pixels (square)
    seed: int = 0
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15)  # train/val/test fractions, by content

    def __post_init__(self) -> None:
        def bad(key: str, want: str, got: Any) -> LoraIqaError:
            return LoraIqaError(f"synth natural: '{key}' must be {want}, got {got!r}")

        for key, lo in (("n", 3), ("size", 32), ("seed", 0)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise bad(key, "an integer", v)
            if v < lo:
                raise bad(key, f">= {lo}", v)
            object.__setattr__(self, key, int(v))
        if self.size > 1024:
            raise bad("size", "<= 1024", self.size)
        s = self.splits
        try:
            s = tuple(float(x) for x in s)
        except (TypeError, ValueError):
            raise bad("splits", "three fractions (train, val, test)", self.splits) from None
        if len(s) != 3 or not all(math.isfinite(x) and x > 0 for x in s) or abs(sum(s) - 1) > 1e-6:
            raise bad("splits", "three positive fractions (train, val, test) that sum to 1", self.splits)
        object.__setattr__(self, "splits", s)

    @property
    def n_contents(self) -> int:
        return min(self.n, len(regions()))


@lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])


@lru_cache(maxsize=None)
def regions() -> tuple[tuple[str, str, tuple[int, int, int]], ...]:
    """(content id, photo, (top, left, side)) of every crop region, interleaved across photos."""
    per_photo = []
    for name in PHOTOS:
        h, w = _photo(name).shape[:2]
        side = min(h, w) // 2
        rows, cols = h // side, w // side
        top0, left0 = (h - rows * side) // 2, (w - cols * side) // 2
        per_photo.append([(f"{name}_{r}_{c}", name, (top0 + r * side, left0 + c * side, side))
                          for r in range(rows) for c in range(cols)])
    out = []
    for i in range(max(len(p) for p in per_photo)):  # round-robin: a small n still spans the photos
        out += [p[i] for p in per_photo if i < len(p)]
    return tuple(out)


def reference(content: str, size: int) -> np.ndarray:
    """The clean region ``content`` at ``size`` px: uint8 RGB (size, size, 3)."""
    from PIL import Image

    found = [r for r in regions() if r[0] == content]
    if not found:
        raise LoraIqaError(f"synth natural: unknown content {content!r}")
    _, photo, (top, left, side) = found[0]
    crop = _photo(photo)[top:top + side, left:left + side]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def _lum(x: np.ndarray) -> np.ndarray:
    return 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def distort(ref: np.ndarray, params: dict, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(written image, the same without its noise), both uint8 RGB, for ``params`` as in the manifest.

    ``params``: ``contrast_factor``, ``saturation_factor``, ``blur_sigma``, ``noise_sigma``,
    ``jpeg_quality`` (0 = none). Noise needs ``rng``.
    """
    x = ref.astype(np.float64)
    c = float(params.get("contrast_factor", 1.0))
    if c != 1.0:
        y = _lum(x)
        m = float(y.mean())
        x = x + ((m + c * (y - m)) - y)[..., None]
    s = float(params.get("saturation_factor", 1.0))
    if s != 1.0:
        y = _lum(x)[..., None]
        x = y + s * (x - y)
    b = float(params.get("blur_sigma", 0.0))
    if b > 0:
        x = ndimage.gaussian_filter(x, (b, b, 0), mode="reflect")
    sigma = float(params.get("noise_sigma", 0.0))
    clean = _u8(x)
    noisy = clean
    if sigma > 0:
        if rng is None:
            raise ValueError("distort: noise needs an rng")
        noisy = _u8(x + sigma * rng.standard_normal(x.shape))
    q = int(params.get("jpeg_quality", 0))
    if q > 0:
        compressed = _jpeg(clean, q)
        noisy = _jpeg(noisy, q) if sigma > 0 else compressed
        clean = compressed
    return noisy, clean


def sample_params(rng: np.random.Generator) -> dict:
    """Draw one image's distortions: each active with probability P_ACTIVE (at least one)."""
    while True:
        active = [d for d in DISTORTIONS if rng.random() < P_ACTIVE]
        if active:
            break
    p: dict[str, Any] = {"contrast_factor": 1.0, "saturation_factor": 1.0, "blur_sigma": 0.0,
                         "noise_sigma": 0.0, "jpeg_quality": 0}

    def logscale(lo: float, hi: float, u: float) -> float:
        return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))

    for d in DISTORTIONS:  # fixed draw order: one severity per distortion, used or not
        u = float(rng.uniform(0.05, 1.0))
        down = bool(rng.random() < P_DOWN)
        if d not in active:
            continue
        if d == "contrast":
            p["contrast_factor"] = round(CONTRAST_DOWN ** u if down else CONTRAST_UP ** u, 4)
        elif d == "saturation":
            p["saturation_factor"] = round(1.0 - u if down else SATURATION_UP ** u, 4)
        elif d == "blur":
            p["blur_sigma"] = round(logscale(*BLUR_RANGE, u), 4)
        elif d == "noise":
            p["noise_sigma"] = round(logscale(*NOISE_RANGE, u), 3)
        else:
            p["jpeg_quality"] = int(round(logscale(*JPEG_RANGE, u)))
    p["distortions"] = "+".join(active)
    return p


def _diffs(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour differences of y: (inside 8x8 blocks, across block edges), both directions."""
    dx, dy = np.diff(y, axis=1), np.diff(y, axis=0)
    edge_x = (np.arange(dx.shape[1]) % BLOCK) == BLOCK - 1
    edge_y = (np.arange(dy.shape[0]) % BLOCK) == BLOCK - 1
    inside = np.concatenate([dx[:, ~edge_x].ravel(), dy[~edge_y, :].ravel()])
    across = np.concatenate([dx[:, edge_x].ravel(), dy[edge_y, :].ravel()])
    return inside, across


def _colourfulness(x: np.ndarray) -> float:
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean()))


def measure(ref: np.ndarray, clean: np.ndarray, final: np.ndarray) -> dict[str, float]:
    """The rater's measured quantities (docstring) for a reference, its noiseless and written versions."""
    r, n, f = (a.astype(np.float64) for a in (ref, clean, final))
    yr, yn, yf = _lum(r), _lum(n), _lum(f)

    def grad_per_std(y: np.ndarray) -> float:
        inside, _ = _diffs(y)
        return float(np.sqrt(np.mean(inside**2))) / max(float(y.std()), 1e-6)

    inside, across = _diffs(yn)
    return {
        "sharp_ratio": grad_per_std(yn) / max(grad_per_std(yr), 1e-9),
        "noise_std": float(np.std(yf - yn)),
        "blockiness": float((np.mean(np.abs(across)) + 0.5) / (np.mean(np.abs(inside)) + 0.5) - 1.0),
        "contrast_dev": abs(math.log(max(float(yn.std()), 1e-6) / max(float(yr.std()), 1e-6))),
        "color_dev": abs(math.log((_colourfulness(n) + 1.0) / (_colourfulness(r) + 1.0))),
    }


def rate(measured: dict) -> dict[str, int]:
    """The rule-based rater: 0..4 per dimension (higher is better) from :func:`measure`'s quantities."""

    def count(x: float, th: tuple) -> int:
        return int(sum(x >= t for t in th))

    out = {
        "sharpness": count(float(measured["sharp_ratio"]), SHARP_RATIO),
        "noise": 4 - count(float(measured["noise_std"]), NOISE_STD),
        "artifact": 4 - count(float(measured["blockiness"]), BLOCKINESS),
        "contrast": 4 - count(float(measured["contrast_dev"]), CONTRAST_DEV),
        "color": 4 - count(float(measured["color_dev"]), COLOR_DEV),
    }
    out["overall"] = overall_from([out[d] for d in DIMENSIONS[:-1]])
    return out


def _save_png(path: Path, x: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(x).save(path, format="PNG")


def _readme(cfg: SynthNaturalConfig, rows: list[dict]) -> str:
    doc = __doc__ or ""
    rater = doc[doc.index("Rater (the labels"):doc.index("Output of")].rstrip()
    dist = doc[doc.index("Distortions (per image"):doc.index("Rater (the labels")].rstrip()
    counts = {d: np.bincount([r[d] for r in rows], minlength=5).tolist() for d in DIMENSIONS}
    splits = {s: len({r["content"] for r in rows if r["split"] == s}) for s in ("train", "val", "test")}
    lines = [
        "SYNTHETIC natural-image quality data: real photos with simulated distortions; the labels come from "
        "a rule-based rater, NOT from human ratings.",
        "",
        "# Synthetic natural-image quality (lora_iqa.data.synth.natural)",
        "",
        f"Generated by `lora_iqa.data.synth.natural.synth_natural` with config: `{asdict(cfg)}` (seed {cfg.seed}).",
        f"{len(rows)} images from {cfg.n_contents} contents (crop regions of scikit-image's photos "
        f"{', '.join(PHOTOS)}); contents per split: {splits}.",
        "",
        "Files: `images/<content>_<k>.png` (distorted, 8-bit RGB), `images/<content>_ref.png` (the clean "
        "region), `manifest.csv`.",
        "",
        "Manifest extras: the applied `distortions` and their strengths (`contrast_factor`, "
        "`saturation_factor`, `blur_sigma` px, `noise_sigma` grey levels, `jpeg_quality`, 0 = none), the "
        "measured quantities the labels come from (`sharp_ratio`, `noise_std`, `blockiness`, `contrast_dev`, "
        "`color_dev`), `source` = the photo, `synthetic` = 1. Read it with "
        "`read_manifest(path, NATURAL_DIMENSIONS)` (the numeric extras are not dimensions).",
        "",
        "## " + dist.replace("\n    ", "\n"),
        "",
        "## " + rater.replace("\n    ", "\n"),
        "",
        "Label counts per level 0..4: " + ", ".join(f"{d} {counts[d]}" for d in DIMENSIONS),
        "",
        "See the docstring of `lora_iqa/data/synth_natural.py` for the measured quantities.",
        "",
    ]
    return "\n".join(lines)


def synth_natural(out_dir: str | os.PathLike, cfg: SynthNaturalConfig | None = None, progress: bool = True) -> Path:
    """Generate the data set into ``out_dir`` (replaced atomically); return the manifest path."""
    from tqdm.auto import tqdm

    from lora_iqa.data.manifest import write_manifest

    cfg = cfg or SynthNaturalConfig()
    out = Path(out_dir)
    check_out_dir(out, "SYNTHETIC natural", "synthetic natural-image")
    contents = regions()[:cfg.n_contents]
    splits = content_splits(cfg.n_contents, cfg.splits, cfg.seed)
    counts = [cfg.n // len(contents) + (j < cfg.n % len(contents)) for j in range(len(contents))]
    rows: list[dict] = []
    with atomic_path(out, replace_dir=True) as tmp, tqdm(total=cfg.n, unit="img", desc="synth natural", disable=not progress) as bar:
        images = tmp / "images"
        images.mkdir(parents=True)
        for j, ((cid, photo, _), count) in enumerate(zip(contents, counts)):
            ref = reference(cid, cfg.size)
            ref_name = f"{cid}_ref.png"
            _save_png(images / ref_name, ref)
            for k in range(count):
                rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1, j, k]))
                params = sample_params(rng)
                final, clean = distort(ref, params, rng)
                m = measure(ref, clean, final)
                labels = rate(m)
                name = f"{cid}_{k}.png"
                _save_png(images / name, final)
                rows.append({
                    "image": f"images/{name}", "split": splits[j], "content": cid,
                    **{d: labels[d] for d in DIMENSIONS},
                    "reference": f"images/{ref_name}",
                    **params,
                    **{key: round(v, 4) for key, v in m.items()},
                    "source": photo, "synthetic": 1,
                })
                bar.update(1)
        (tmp / "README.md").write_text(_readme(cfg, rows))
        write_manifest(tmp / "manifest.csv", rows, DIMENSIONS)
    return out / "manifest.csv"
