"""Physics-based synthetic CT image-quality data: anatomy -> projections -> dose/views/kernel/blur -> FBP.

The images and labels made here are SYNTHETIC: the images are simulated physics and the labels come
from a rule-based rater (below), not from human readers.

Content
    Field-of-view-filling axial slices with anatomy and texture (:mod:`lora_iqa.data.synth.anatomy`):
    abdomen, chest, head and pelvis in turn (content ids ``abd0000``, ``che0001``, ``hea0002``,
    ``pel0003``...), patient sizes, correlated tissue texture, vessels, trabecular bone, bowel gas, and
    targeted (zoomed) fields. Each content has its own pixel spacing, log-uniform in
    ``SynthCTConfig.spacing`` (0.5-1.0 mm/px: a ``size`` of 256 px is a 128-256 mm field), written to
    the manifest (``spacing_mm``) and the DICOM header, so that a reader resampling to a fixed mm/px
    (:mod:`lora_iqa.views`) sees synthetic and real CT at one scale. Each content carries 1-4 small
    lesions (4-15 mm), hypo- or hyper-dense. The anatomy and its lesions depend only on the
    content's seed; every degradation depends only on the image's seed.

Physics (scikit-image parallel-beam ``radon`` / ``iradon``, ``circle=True``)
    HU -> linear attenuation ``mu = MU_WATER * (1 + HU/1000)`` with ``MU_WATER = 0.02 /mm`` at the
    content's pixel spacing, so line integrals are realistic. Tissue outside the reconstruction circle
    is not simulated (a targeted field ignores the body around it: no interior-problem artefacts).
    Per content the sinogram is computed once at 360 angles over 180 deg; an image with ``views``
    projections uses the nearest ``views`` evenly spread angles (angular undersampling -> streaks).
    Detector/focal-spot blur: a Gaussian of ``blur`` px along the detector (= an isotropic image blur).
    Photon noise: ``counts ~ Poisson(dose * exp(-p))`` with ``dose = I0`` (counts floored at 1),
    ``p = -log(counts / I0)``. Filtered back-projection with ``kernel`` in ramp / shepp-logan /
    cosine / hamming / hann (smoother kernel: less noise, less sharpness). Back to HU.

Sampling (per image, independent targets)
    Noise sigma 4-80 HU (at the reading scale), relative views 12-240 (x size/128), MTF50 0.045-0.40 cycles/px and lesion
    contrast 10-80 HU are drawn on a log scale at position ``SHARED * z + (1 - SHARED) * u`` of their
    range, with ``z`` one protocol severity per image (shared by all four) and ``u`` independent per
    dimension (``SHARED = 0.6``): clinical degradations co-vary (a reduced-dose, sparse-view
    protocol is worse in several ways at once), and each dimension still varies on its own. The kernel is drawn among those that can still reach
    the MTF50 target and ``blur`` is solved in closed form; ``dose`` is then solved from a noise
    model (exp(p) through the centre, views, the kernel's noise power) so the noise level does not
    follow views or kernel. The labels use *measured* quantities where a reader would see them.

Rater (the labels; 0..4, higher is better). A perceptual rule: each dimension is rated from what is
visible in the image, so streaks and lesion contrast are rated as they appear (streak magnitude in
HU; lesion contrast relative to the noise, the Rose-model view of low-contrast detectability).

    ==========  ==================================================  ======  =========  =========  =========  =====
    dimension   quantity                                              4       3          2          1          0
    ==========  ==================================================  ======  =========  =========  =========  =====
    noise       measured noise RMS (HU) of noisy - clean in soft       < 9.6   9.6-13.8   13.8-20    20-30      >= 30
                tissue (-150..250 HU, 2 px from its edges)
    artifact    measured streak RMS (HU) in soft tissue: noiseless     < 18    18-31      31-49      49-94      >= 94
                ramp recon at ``views`` minus the same at 360 views
    sharpness   MTF50 of kernel x blur (cycles/px, max 0.5)           >= .202 .152-.202  .118-.152  .089-.118  < .089

    Every quantity is read at the reading scale, where a viewer (:mod:`lora_iqa.views`) sees the
    image: the maps are resampled to 0.7 mm/px before their RMS is taken, and the MTF50 in cycles/px
    is rescaled by 0.7 / spacing (at most 0.5).
    contrast    lesion CNR: abs(lesion HU) / measured noise std       >= 4.2  2.6-4.2    1.35-2.6   0.68-1.35  < 0.68
    ==========  ==================================================  ======  =========  =========  =========  =====

    Intervals include their lower end. MTF50 is the frequency where
    ``|kernel window(f)| * exp(-2 pi^2 blur^2 f^2)`` falls to 0.5 (ramp and shepp-logan reach
    Nyquist 0.5 unblurred; cosine 0.33, hamming 0.26, hann 0.25).

    overall (diagnostic acceptability, LDCTIQAC scale 0 bad .. 4 excellent)::

        overall = clip(round_half_up(min(2 + 1.5 * (mean(dims) - 2), min(dims) + 2)), 0, 4)

    i.e. the mean of the four dimensions, stretched by 1.5 about the middle of the scale (averaging
    compresses the spread; the stretch keeps all five levels in use), capped at two levels above
    the worst dimension (one bad dimension limits diagnostic use). It is non-decreasing in every
    dimension. The thresholds above sit near the quintiles of the sampled quantities (calibrated
    on 240 images of 256 px, seed 0), so every dimension's five levels are about equally frequent.
    The streak thresholds are high because every view-aliased edge and texture of the anatomy
    counts; at 256 px even 250 of 360 views leave about 20 HU of aliasing away from the centre.

    Jitter (``SynthCTConfig.jitter`` > 0): each dimension's continuous score (the quantity's
    position on the log scale of its thresholds, so that rounding it gives the table's level) and the
    overall formula's value get Gaussian noise of std ``jitter`` before rounding and clipping to 0..4,
    drawn from the image's seed.

Output of :func:`synth_ct`: ``images/<content>_<k>.png|dcm``, ``images/<content>_ref.png|dcm`` (the
clean reference: 360 views, ramp, no noise, no blur, lesions at 70 HU), ``manifest.csv`` and
``README.md``; the whole directory is built under a temporary name and renamed into place.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from lora_iqa.data.synth.common import (
    check_out_dir,
    content_splits,
    overall_from,
    round_half_up,
    worker_pool,
)
from lora_iqa.data.synth.anatomy import REGIONS, anatomy_slice
from lora_iqa.data.synth.ct_physics import (
    _KERNEL_MTF50,
    KERNELS,
    MAX_VIEWS,
    _kernel_window,
    _project,
    _project_delta,
    _reconstruct,
    _view_indices,
    mtf50,
    predicted_noise_hu,
)
from lora_iqa.errors import LoraIqaError, atomic_path
from lora_iqa.views import DEFAULT_SPACING, resample

DIMENSIONS = ("noise", "artifact", "sharpness", "contrast", "overall")
FORMATS = ("png", "dcm")
WINDOW = (40.0, 400.0)  # soft tissue (level, width) in HU, as io.DEFAULT_WINDOW
# Rater thresholds on the measured quantity (ascending). Level = number of thresholds <= x for
# "higher is better" quantities, 4 - that for "lower is better" ones.
NOISE_HU = (9.6, 13.8, 20.0, 30.0)  # lower is better; measured noise std (HU)
STREAK_HU = (18.0, 31.0, 49.0, 94.0)  # lower is better; measured streak RMS (HU) in soft tissue
MTF50 = (0.089, 0.118, 0.152, 0.202)  # higher is better; cycles/px
CNR = (0.68, 1.35, 2.6, 4.2)  # higher is better; |lesion HU| / measured noise std
# Sampling ranges (log-uniform). Thresholds above sit near the quintiles of what these ranges give
# (calibrated on 240 images of 256 px, seed 0), so the five levels of every dimension are about equally frequent.
NOISE_RANGE = (4.0, 80.0)
VIEWS_REL_RANGE = (12.0, 240.0)
MTF50_RANGE = (0.045, 0.40)
CONTRAST_RANGE = (10.0, 80.0)
# Weight of the shared protocol severity in every dimension's draw (0: independent dimensions).
# Clinical degradations co-vary: a reduced-dose, sparse-view protocol is worse in several ways at
# once; the independent part (1 - SHARED) keeps every dimension informative on its own.
SHARED = 0.6
REF_LESION_HU = 70.0  # lesion contrast of the clean reference image


@dataclass(frozen=True)
class SynthCTConfig:
    n: int = 400  # images in total
    size: int = 256  # pixels (square)
    spacing: tuple[float, float] = (0.5, 1.0)  # mm/px range, log-uniform per content
    seed: int = 0
    format: str = "png"  # "png" (16-bit, windowed W400/L40) or "dcm" (HU, CT DICOM)
    per_content: int = 8  # degraded versions of each phantom/content
    jitter: float = 0.0  # rater jitter: std of Gaussian noise (score units) added before rounding
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15)  # train/val/test fractions, by content
    workers: int = 0  # 0 = os.cpu_count()

    def __post_init__(self) -> None:
        def bad(key: str, want: str, got: Any) -> LoraIqaError:
            return LoraIqaError(f"synth: '{key}' must be {want}, got {got!r}")

        for key, lo in (("n", 1), ("size", 32), ("per_content", 1), ("workers", 0), ("seed", 0)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise bad(key, "an integer", v)
            if v < lo:
                raise bad(key, f">= {lo}", v)
            object.__setattr__(self, key, int(v))
        if self.size > 1024:
            raise bad("size", "<= 1024", self.size)
        if self.format not in FORMATS:
            raise bad("format", "one of " + "|".join(FORMATS), self.format)
        j = self.jitter
        if isinstance(j, bool) or not isinstance(j, (int, float, np.number)) or not math.isfinite(j) or j < 0:
            raise bad("jitter", "a finite number >= 0", j)
        object.__setattr__(self, "jitter", float(j))
        s = self.splits
        try:
            s = tuple(float(x) for x in s)
        except (TypeError, ValueError):
            raise bad("splits", "three fractions (train, val, test)", self.splits) from None
        if len(s) != 3 or not all(math.isfinite(x) and x > 0 for x in s) or abs(sum(s) - 1) > 1e-6:
            raise bad("splits", "three positive fractions (train, val, test) that sum to 1", self.splits)
        object.__setattr__(self, "splits", s)
        try:
            sp = tuple(float(x) for x in self.spacing)
        except (TypeError, ValueError):
            raise bad("spacing", "two numbers [min, max] of mm per pixel", self.spacing) from None
        if len(sp) != 2 or not all(math.isfinite(x) for x in sp) or not 0.2 <= sp[0] <= sp[1] <= 3.0:
            raise bad("spacing", "[min, max] mm per pixel with 0.2 <= min <= max <= 3", self.spacing)
        object.__setattr__(self, "spacing", sp)
        if self.n_contents < 3:
            raise bad("n", f">= 3 * per_content = {3 * self.per_content} (one content per split)", self.n)

    @property
    def n_contents(self) -> int:
        return -(-self.n // self.per_content)


def _count(x: float, th: tuple) -> int:
    return int(sum(x >= t for t in th))


def _continuous(x: float, th: tuple) -> float:
    """Position of x on the log scale of the ascending thresholds th, with th[k] at k + 0.5."""
    lx, lt = math.log(max(x, 1e-12)), [math.log(t) for t in th]
    if lx < lt[0]:
        return 0.5 - (lt[0] - lx) / (lt[1] - lt[0])
    if lx >= lt[-1]:
        return len(th) - 0.5 + (lx - lt[-1]) / (lt[-1] - lt[-2])
    k = max(i for i in range(len(lt)) if lt[i] <= lx)
    return k + 0.5 + (lx - lt[k]) / (lt[k + 1] - lt[k])


def rate(params: dict, measured: dict, *, jitter: float = 0.0, rng: np.random.Generator | None = None) -> dict[str, int]:
    """The rule-based rater: 0..4 per dimension (higher is better); see the table in the docstring.

    ``params``: ``kernel``, ``blur``, ``lesion_hu``; ``measured``: ``noise_hu``, ``streak_hu``.
    With ``jitter`` > 0 (needs ``rng``) each score gets Gaussian noise of that std before rounding.
    """
    if jitter > 0 and rng is None:
        raise ValueError("rate: jitter needs an rng")
    q = {
        "noise": (float(measured["noise_hu"]), NOISE_HU, False),
        "artifact": (float(measured["streak_hu"]), STREAK_HU, False),
        "sharpness": (reading_mtf50(params), MTF50, True),
        "contrast": (abs(float(params["lesion_hu"])) / max(float(measured["noise_hu"]), 1e-6), CNR, True),
    }
    out: dict[str, int] = {}
    for dim, (x, th, higher) in q.items():
        if jitter > 0:
            c = _continuous(x, th)
            c = c if higher else 4.0 - c
            level = round_half_up(c + jitter * float(rng.standard_normal()))
        else:
            level = _count(x, th) if higher else 4 - _count(x, th)
        out[dim] = int(min(4, max(0, level)))
    out["overall"] = overall_from([out[d] for d in DIMENSIONS[:-1]], jitter, rng)
    return out


def sample_params(rng: np.random.Generator, sino: np.ndarray, spacing_mm: float) -> dict:
    """Draw one image's degradations: a shared protocol severity plus an independent part per dimension."""
    size = sino.shape[0]
    z = float(rng.uniform())  # the protocol's quality (0 worst .. 1 best), shared by all dimensions

    def draw(lo: float, hi: float, better_high: bool) -> float:
        q = SHARED * z + (1.0 - SHARED) * float(rng.uniform())
        q = q if better_high else 1.0 - q
        return float(math.exp(math.log(lo) + q * (math.log(hi) - math.log(lo))))

    views = int(np.clip(round(draw(*VIEWS_REL_RANGE, True) * size / 128.0), 8, MAX_VIEWS))
    views = len(_view_indices(views))
    f50 = draw(*MTF50_RANGE, True)
    kernels = [k for k in KERNELS if _KERNEL_MTF50[k] >= f50]
    kernel = kernels[int(rng.integers(len(kernels)))]
    w = float(_kernel_window(kernel, np.array([f50]))[0])
    blur = round(math.sqrt(max(0.0, math.log(w / 0.5)) / (2 * math.pi**2 * f50**2)), 4)
    sigma = draw(*NOISE_RANGE, False)
    # the target is the noise at the reading scale: resampling from finer pixels averages noise down
    sigma_native = sigma * max(1.0, DEFAULT_SPACING / spacing_mm)
    dose = predicted_noise_hu(sino, views, kernel, 1.0, spacing_mm) ** 2 / sigma_native**2
    dose = int(np.clip(round(dose), 20, 10**10))
    lesion = round(draw(*CONTRAST_RANGE, True), 2)
    return {"dose": dose, "views": views, "kernel": kernel, "blur": blur, "lesion_hu": lesion, "size": size,
            "spacing_mm": spacing_mm}


def _content_plan(cfg: SynthCTConfig) -> list[tuple[int, str, str, int]]:
    """(index, content id, body region, number of images) per content, in order: the regions in turn."""
    plan = []
    for i in range(cfg.n_contents):
        region = REGIONS[i % len(REGIONS)]
        plan.append((i, f"{region[:3]}{i:04d}", region, min(cfg.per_content, cfg.n - i * cfg.per_content)))
    return plan


def reading_mtf50(params: dict) -> float:
    """MTF50 (cycles/px) as a reader sees it at the reading scale (DEFAULT_SPACING mm/px): the kernel and
    blur's MTF50 at the native spacing ``params["spacing_mm"]`` (default: the reading scale) rescaled, at
    most Nyquist."""
    ratio = DEFAULT_SPACING / float(params.get("spacing_mm", DEFAULT_SPACING))
    return min(0.5, mtf50(params["kernel"], float(params["blur"])) * ratio)


def _reading_std(map_hu: np.ndarray, m: np.ndarray, spacing_mm: float) -> float:
    """RMS (HU) of a noise or streak map over the soft-tissue mask ``m`` (already at the reading scale), at the
    reading scale (DEFAULT_SPACING mm/px): what a reader sees in the display window anywhere in the image (the
    whole field if it has no tissue)."""
    r = resample(map_hu.astype(np.float32), spacing_mm, DEFAULT_SPACING)
    return float(np.sqrt(np.mean(r[m] ** 2))) if m.sum() >= 16 else float(np.sqrt(np.mean(r**2)))


def _write(path: Path, hu: np.ndarray, fmt: str, meta: dict) -> None:
    from lora_iqa.data import writers
    from lora_iqa.data.io import apply_window

    if fmt == "png":
        writers.write_png16(path, apply_window(hu, WINDOW))
    else:
        from pydicom.uid import generate_uid

        key = f"lora_iqa.synth_ct/{meta['seed']}/{meta['content']}"
        px = meta["spacing_mm"]
        writers.write_dicom_ct(
            path, hu, window=WINDOW,
            PatientID=meta["content"],
            StudyInstanceUID=generate_uid(entropy_srcs=[key, "study"]),
            SeriesInstanceUID=generate_uid(entropy_srcs=[key, "series"]),
            FrameOfReferenceUID=generate_uid(entropy_srcs=[key, "frame"]),
            SOPInstanceUID=generate_uid(entropy_srcs=[key, meta["name"]]),
            InstanceNumber=meta["k"] + 1,
            PixelSpacing=[f"{px:.6g}", f"{px:.6g}"],
            SliceThickness="1",
            ImageComments="SYNTHETIC image (simulated physics), not a patient",
        )


def _render_content(job: tuple) -> list[dict]:
    """Write one content's reference and images; return its manifest rows (in k order)."""
    index, cid, region, count, split, cfg_d, images_dir = job
    cfg = SynthCTConfig(**cfg_d)
    rng_c = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0, index]))
    lo, hi = cfg.spacing
    px = round(float(math.exp(rng_c.uniform(math.log(lo), math.log(hi)))), 4)
    base, les, _ = anatomy_slice(rng_c, cfg.size, px, region)
    s_base = _project(base, px)
    s_les = _project_delta(les, px)
    ext = cfg.format
    images_dir = Path(images_dir)
    ref_name = f"{cid}_ref.{ext}"
    meta = {"seed": cfg.seed, "content": cid, "spacing_mm": px}
    sharp = {"views": MAX_VIEWS, "kernel": "ramp", "blur": 0.0, "spacing_mm": px}
    ref = _reconstruct(s_base + REF_LESION_HU * s_les, sharp, None)[0]
    _write(images_dir / ref_name, ref, ext, {**meta, "name": ref_name, "k": -1})
    # streaks are read where a reader sees them: soft tissue, away from edges (which ring at any view count)
    tissue = ndimage.binary_erosion((base > -150.0) & (base < 250.0), iterations=2)
    tissue = resample(tissue.astype(np.float32), px, DEFAULT_SPACING) > 0.5  # at the reading scale, once per content
    all_views = _reconstruct(s_base, sharp, None)[0]  # the streak measure's reference (ramp, no lesions)
    rows = []
    for k in range(count):
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1, index, k]))
        params = sample_params(rng, s_base, px)
        sino = s_base + params["lesion_hu"] * s_les
        hu, noise = _reconstruct(sino, params, rng)
        noise_hu = _reading_std(noise, tissue, px)
        streaks = _reconstruct(s_base, {**sharp, "views": params["views"]}, None)[0] - all_views
        streak_hu = _reading_std(streaks, tissue, px)
        labels = rate(params, {"noise_hu": noise_hu, "streak_hu": streak_hu}, jitter=cfg.jitter, rng=rng)
        name = f"{cid}_{k}.{ext}"
        _write(images_dir / name, hu, ext, {**meta, "name": name, "k": k})
        rows.append({
            "image": f"images/{name}", "split": split, "content": cid,
            **{d: labels[d] for d in DIMENSIONS},
            "reference": f"images/{ref_name}",
            "dose": params["dose"], "views": params["views"], "kernel": params["kernel"],
            "blur": params["blur"], "lesion_hu": params["lesion_hu"],
            "noise_hu": round(noise_hu, 3), "streak_hu": round(streak_hu, 3), "mtf50": round(reading_mtf50(params), 4),
            "spacing_mm": px, "region": region, "synthetic": 1,
        })
    return rows


def _readme(cfg: SynthCTConfig, rows: list[dict]) -> str:
    doc = __doc__ or ""
    rater = doc[doc.index("Rater (the labels"):doc.index("Output of")].rstrip()
    counts = {d: np.bincount([r[d] for r in rows], minlength=5).tolist() for d in DIMENSIONS}
    splits = {s: len({r["content"] for r in rows if r["split"] == s}) for s in ("train", "val", "test")}
    settings = {k: v for k, v in asdict(cfg).items() if k != "workers"}
    lines = [
        "SYNTHETIC CT image-quality data: the images are simulated physics and the labels come from a "
        "rule-based rater, NOT from human ratings.",
        "",
        "# Synthetic CT image quality (lora_iqa.data.synth.ct)",
        "",
        f"Generated by `lora_iqa.data.synth.ct.synth_ct` with config: `{settings}` (seed {cfg.seed}; "
        "the output does not depend on the number of workers).",
        f"{len(rows)} images from {cfg.n_contents} contents (synthetic anatomy slices); contents per split: {splits}.",
        "",
        "Files: `images/<content>_<k>.<ext>` (degraded reconstructions), `images/<content>_ref.<ext>` "
        "(clean reference: 360 views, ramp kernel, no noise, no blur, lesions at 70 HU), `manifest.csv`.",
        "PNG files are 16-bit grayscale windowed at soft tissue (level 40 HU, width 400 HU) into [0, 1]; "
        "DICOM files hold HU with that window.",
        "",
        "Manifest extras: `dose` = I0 (incident photons per ray), `views` = projections over 180 deg, "
        "`kernel` = FBP filter, `blur` = detector blur sigma (px), `lesion_hu` = |lesion contrast| (HU), "
        "`noise_hu` = measured noise std (HU) in the central ROI at the reading scale (0.7 mm/px), "
        "`streak_hu` = measured streak std (HU), `mtf50` = cycles/px, `spacing_mm` = pixel spacing (mm/px), "
        "`region` = abdomen|chest|head|pelvis, `synthetic` = 1.",
        "",
        "## " + rater.replace("\n    ", "\n"),
        "",
        "Label counts per level 0..4: " + ", ".join(f"{d} {counts[d]}" for d in DIMENSIONS),
        "",
        "## Physics",
        "",
        *_dose_table(rows),
        "",
        "Parallel-beam radon/iradon (scikit-image), field of view = size x spacing, mu_water 0.02/mm, "
        "Poisson counts at I0, angular subsampling of a 360-angle sinogram, Gaussian detector blur, "
        "FBP with the listed kernel. See the docstring of `lora_iqa/data/synth/ct.py`.",
        "",
    ]
    return "\n".join(lines)


def _dose_table(rows: list[dict]) -> list[str]:
    """Markdown: measured noise (HU, reading scale) per dose decade (I0), median over the images there."""
    decades = sorted({int(math.floor(math.log10(r["dose"]))) for r in rows})
    lines = ["Noise at each dose level (incident photons per ray I0; the noise std measured in the central "
             "ROI at the reading scale; a clinical abdomen at routine dose shows about 10-15 HU, a low-dose "
             "scan 20-40 HU):", "", "| I0 | images | median noise HU | 10-90 % |", "|---|---|---|---|"]
    for d in decades:
        v = [r["noise_hu"] for r in rows if int(math.floor(math.log10(r["dose"]))) == d]
        lo, mid, hi = np.percentile(v, [10, 50, 90])
        lines.append(f"| 1e{d}-1e{d + 1} | {len(v)} | {mid:.1f} | {lo:.1f}-{hi:.1f} |")
    return lines


def synth_ct(out_dir: str | os.PathLike, cfg: SynthCTConfig | None = None, progress: bool = True) -> Path:
    """Generate the data set into ``out_dir`` (replaced atomically); return the manifest path."""
    from tqdm.auto import tqdm

    from lora_iqa.data.manifest import write_manifest

    cfg = cfg or SynthCTConfig()
    out = Path(out_dir)
    check_out_dir(out, "SYNTHETIC CT", "synthetic CT")
    plan = _content_plan(cfg)
    splits = content_splits(cfg.n_contents, cfg.splits, cfg.seed)
    workers = cfg.workers or os.cpu_count() or 1
    workers = min(workers, len(plan))
    cfg_d = asdict(cfg)
    with atomic_path(out, replace_dir=True) as tmp:  # check_out_dir: an earlier output of this generator
        images = tmp / "images"
        images.mkdir(parents=True)
        jobs = [(i, cid, kind, m, splits[i], cfg_d, str(images)) for i, cid, kind, m in plan]
        results: list[list[dict] | None] = [None] * len(jobs)
        with tqdm(total=cfg.n, unit="img", desc="synth ct", disable=not progress) as bar:
            if workers <= 1:
                for i, job in enumerate(jobs):
                    results[i] = _render_content(job)
                    bar.update(len(results[i]))
            else:
                ex = worker_pool(workers)
                try:
                    futs = {ex.submit(_render_content, job): i for i, job in enumerate(jobs)}
                    for fut in as_completed(futs):
                        results[futs[fut]] = fut.result()
                        bar.update(len(results[futs[fut]]))
                finally:  # on failure: drop queued contents, wait for running ones, then clean up
                    ex.shutdown(wait=True, cancel_futures=True)
        rows = [r for res in results for r in res]  # content order, independent of scheduling
        (tmp / "README.md").write_text(_readme(cfg, rows))
        write_manifest(tmp / "manifest.csv", rows, DIMENSIONS)
    return out / "manifest.csv"
