"""Real CT anatomy: do trained adapters order real slices by dose, streaks and noise?

Two real CT slices that ship with pydicom (evaluation only: never trained or tuned on) -
``CT_small.dcm`` (128 px, 0.661 mm/px, a crop through the spine) and ``J2K_pixelrep_mismatch.dcm``
(512 px, 0.431 mm/px, a head; JPEG 2000) - are degraded with :mod:`lora_iqa.data.lowdose`, whose code
shares nothing with the training simulator:

- dose series: dose fractions ``DOSES`` of the acquired dose (noise inserted in the image domain with
  a CT noise power spectrum, added std ``s_ref * sqrt(1/f - 1)``, ``s_ref`` the slice's own noise by
  the global noise index), each at full views (the slice as acquired) and after a sparse-view
  re-projection/reconstruction (the slice's ``sparse_views``; moderate, visible streaks);
- a correlated-noise series: additive Gaussian noise of ``AMPLITUDES`` HU, correlation length
  ``CORR_MM`` (a generic, not CT-specific, degradation);

each with ``--repeats`` noise realisations. Then

- ``--ss``: per slice and series, the Spearman SRCC between the level (dose fraction; -amplitude) and the
  predicted overall score over all the series' images, and its minimum over the series;
- ``--ds`` (a ds nr adapter): per slice, every pair of the same series and repeat whose dose levels are
  >= 2 apart in ``DOSES``, asked in both orders; a pair is right only if the higher-dose image is
  preferred in both (a "similar" answer is wrong). Accuracy per slice and series.

Writes ``results.json``, ``results.md``, ``degradations.png`` (the degraded images, before any scoring,
at native resolution) and ``dose_series.png`` (the slices across dose with their predicted overall, and
predicted overall vs dose) to ``--out``; prints the table. Without ``--ss`` only the degradations (figure,
measured noise) are written. The command:

    python benchmarks/scripts/real_ct_anatomy.py --ss ADAPTER_DIR [--ds DS_ADAPTER_DIR] \\
        --out benchmarks/results/real_ct --seed 0 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import stats

from lora_iqa.views import View, resample

DOSES = (1.0, 0.5, 0.25, 0.12, 0.06, 0.03)  # fractions of the acquired dose
AMPLITUDES = (0.0, 12.0, 25.0, 50.0, 100.0)  # HU std of the additive correlated noise
CORR_MM = 1.5  # its correlation length (autocorrelation exp(-d^2 / (2 CORR_MM^2)))
MIN_GAP = 2  # ds pairs: dose levels at least this many steps apart in DOSES
# the slices and their sparse-view count: chosen by eye (degradations.png) for visible but moderate
# streaks; the views a slice needs grow with its size in pixels (128 px vs 512 px)
SLICES = {
    "CT_small.dcm": {"label": "spine crop, 128 px, 0.661 mm/px", "sparse_views": 60},
    "J2K_pixelrep_mismatch.dcm": {"label": "head, 512 px, 0.431 mm/px, JPEG 2000", "sparse_views": 180},
}
WINDOW = (40.0, 400.0)  # (level, width) HU: the soft-tissue window the adapters are trained with
TISSUE_HU = (-100.0, 200.0)  # soft tissue / water, where the inserted noise is measured
CHUNK = 4  # samples per model call (the progress line's step)


# --- pure metric helpers (tested in tests/data/test_lowdose.py) ------------------------------------


def dose_order_srcc(levels: Sequence[float], scores: Sequence[float]) -> float:
    """Spearman SRCC between a series' quality levels (dose fraction; -amplitude for added noise) and
    the predicted scores, over all its images. Constant scores (or levels) order nothing: 0."""
    levels, scores = np.asarray(levels, dtype=float), np.asarray(scores, dtype=float)
    if len(levels) != len(scores):
        raise ValueError(f"{len(levels)} levels but {len(scores)} scores")
    if len(levels) < 2 or np.ptp(levels) == 0 or np.ptp(scores) == 0:
        return 0.0
    return float(stats.spearmanr(levels, scores).statistic)


def dose_pairs(doses: Sequence[float], min_gap: int = MIN_GAP) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)`` of ``doses`` (sorted high to low) at least ``min_gap`` levels apart; ``i``
    is the higher dose."""
    return [(i, j) for i in range(len(doses)) for j in range(i + min_gap, len(doses))]


def pair_accuracy(pref_ab: Sequence[float], pref_ba: Sequence[float]) -> float:
    """The fraction of pairs judged right in both orders: asked (a, b) with ``a`` the better (higher
    dose) image the answer must be 0 (first better), asked (b, a) it must be 1 (second better);
    0.5 (similar) is wrong. NaN for no pairs."""
    if len(pref_ab) != len(pref_ba):
        raise ValueError(f"{len(pref_ab)} answers in one order but {len(pref_ba)} in the other")
    if not pref_ab:
        return float("nan")
    return float(np.mean([a == 0.0 and b == 1.0 for a, b in zip(pref_ab, pref_ba)]))


# --- the degraded images ----------------------------------------------------------------------------


@dataclass
class Series:
    """One series of one slice: ``kind`` dose | noise, its ``views`` (None: as acquired), and per image
    its level (dose fraction or noise HU), repeat and HU image; scores are filled in later."""
    name: str
    kind: str
    views: int | None
    levels: list[float] = field(default_factory=list)
    repeats: list[int] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)
    added_std: list[float] = field(default_factory=list)  # measured in soft tissue (HU)
    overall: list[float] = field(default_factory=list)

    def order_key(self) -> list[float]:
        """Higher is better: the dose fraction, or minus the noise amplitude."""
        return list(self.levels) if self.kind == "dose" else [-a for a in self.levels]


def load_slice(name: str) -> tuple[np.ndarray, float]:
    from pydicom.data import get_testdata_file

    from lora_iqa.data.io import read_dicom_hu

    with warnings.catch_warnings():  # pydicom warns when it cannot download its optional extras
        warnings.simplefilter("ignore")
        path = get_testdata_file(name)
    hu, ds = read_dicom_hu(path)
    return hu, float(ds.PixelSpacing[0])


def build_series(hu: np.ndarray, spacing: float, sparse_views: int, ref_noise: float, repeats: int,
                 seed: int, slice_index: int) -> list[Series]:
    """The dose series at full and sparse views and the correlated-noise series of one slice. Every
    image draws from its own generator, seeded by (seed, slice, series, level, repeat)."""
    from lora_iqa.data.lowdose import correlated_noise, insert_lowdose_noise, noise_std_hu, sparse_view

    tissue = (hu >= TISSUE_HU[0]) & (hu <= TISSUE_HU[1])
    out = []
    for s_index, views in enumerate((None, sparse_views)):
        base = hu if views is None else sparse_view(hu, spacing, views)  # deterministic: once per slice
        series = Series(f"dose, {'full views' if views is None else f'{views} views'}", "dose", views)
        for d_index, dose in enumerate(DOSES):
            for r in range(repeats):
                rng = np.random.default_rng([seed, slice_index, s_index, d_index, r])
                img = insert_lowdose_noise(base, spacing, dose, rng, ref_noise_hu=ref_noise)
                series.levels.append(dose), series.repeats.append(r), series.images.append(img)
                series.added_std.append(noise_std_hu(img, base, tissue))
        out.append(series)
    series = Series(f"correlated noise {CORR_MM:g} mm", "noise", None)
    for a_index, amp in enumerate(AMPLITUDES):
        for r in range(repeats):
            rng = np.random.default_rng([seed, slice_index, 2, a_index, r])
            img = (hu + correlated_noise(hu.shape, spacing, amp, CORR_MM, rng)).astype(np.float32)
            series.levels.append(amp), series.repeats.append(r), series.images.append(img)
            series.added_std.append(noise_std_hu(img, hu, tissue))
    out.append(series)
    return out


# --- the model calls: the only two places that touch the model API ----------------------------------


@dataclass
class Scorer:
    model: object
    processor: object
    meta: object
    view: View  # what the adapter sees of an image (lora_iqa.views)
    dir: str


def load_scorer(adapter_dir: str, protocol: str) -> Scorer:
    from lora_iqa.methods.load import load_trained

    model, processor, meta = load_trained(adapter_dir)
    if meta.protocol != protocol or (protocol == "ds" and meta.reference != "nr"):
        raise SystemExit(f"{adapter_dir}: a {meta.protocol} {meta.reference} adapter, expected {protocol}"
                         f"{' nr' if protocol == 'ds' else ''}")
    return Scorer(model, processor, meta, meta.make_view(), str(adapter_dir))


def model_image(hu: np.ndarray, spacing: float, scorer: Scorer) -> np.ndarray:
    """The HU slice as the model sees it: float32 [0, 1] at W400/L40, resampled to the view's mm/px."""
    from lora_iqa.data.io import apply_window

    img = apply_window(hu.astype(np.float32), WINDOW).astype(np.float32)
    return resample(img, spacing, scorer.view.spacing)


def _logits(scorer: Scorer, samples: list) -> list[dict]:
    from lora_iqa.methods.blip.predict import protocol_logits

    meta = scorer.meta
    return protocol_logits(scorer.model, scorer.processor, samples, meta.make_protocol(), meta.template(),
                           index=meta.multi_image, view=scorer.view)


def predict_overall(scorer: Scorer, images: list[np.ndarray], progress) -> list[float]:
    """ss: each image's predicted overall score."""
    overall = scorer.meta.template().overall
    out = []
    for start in range(0, len(images), CHUNK):
        out += [r["scores"][overall] for r in _logits(scorer, images[start:start + CHUNK])]
        progress.update(len(images[start:start + CHUNK]))
    return out


def predict_preference(scorer: Scorer, pairs: list[tuple[np.ndarray, np.ndarray]], progress) -> list[float]:
    """ds: each pair's answer, 0 first better, 1 second, 0.5 similar."""
    out = []
    for start in range(0, len(pairs), CHUNK):
        out += [float(r["preference"]) for r in _logits(scorer, pairs[start:start + CHUNK])]
        progress.update(len(pairs[start:start + CHUNK]))
    return out


# --- the run ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--ss", metavar="ADAPTER_DIR", help="an ss adapter: SRCC of dose vs predicted overall")
    ap.add_argument("--ds", metavar="ADAPTER_DIR", help="a ds nr adapter: accuracy on dose pairs, both orders")
    ap.add_argument("--out", default="benchmarks/results/real_ct")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2, help="noise realisations per level (default 2)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")

    from tqdm import tqdm

    from lora_iqa.data.lowdose import estimate_noise_hu
    from lora_iqa.errors import atomic_write_text

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    slices = {}
    t0 = time.time()
    for i, (name, info) in enumerate(SLICES.items()):
        hu, spacing = load_slice(name)
        ref = estimate_noise_hu(hu, spacing)
        slices[name] = {"hu": hu, "spacing": spacing, "ref_noise": ref,
                        "series": build_series(hu, spacing, info["sparse_views"], ref, args.repeats, args.seed, i)}
    print(f"degraded {sum(len(s.images) for v in slices.values() for s in v['series'])} images "
          f"in {time.time() - t0:.1f}s")
    _plot_degradations(slices, out / "degradations.png")

    ss = load_scorer(args.ss, "ss") if args.ss else None
    ds = load_scorer(args.ds, "ds") if args.ds else None
    ds_results = {}
    if ss is not None:
        total = sum(len(s.images) for v in slices.values() for s in v["series"])
        with tqdm(total=total, desc="ss", unit="img", delay=2.0) as bar:
            for v in slices.values():
                for s in v["series"]:
                    s.overall = predict_overall(ss, [model_image(h, v["spacing"], ss) for h in s.images], bar)
    if ds is not None:
        ds_results = _run_ds(ds, slices, tqdm)

    result = _result(args, slices, ss, ds, ds_results)
    atomic_write_text(out / "results.json", json.dumps(result, indent=1))
    md = _markdown(result)
    atomic_write_text(out / "results.md", md)
    if ss is not None:
        _plot_dose_series(slices, out / "dose_series.png")
    print(md)


def _run_ds(scorer: Scorer, slices: dict, tqdm) -> dict:
    """Per slice and dose series: every (higher, lower) dose pair of the same repeat >= MIN_GAP levels
    apart, asked (a, b) and (b, a)."""
    jobs = []  # (slice, series name, dose a, dose b, repeat, image a, image b)
    for name, v in slices.items():
        for s in v["series"]:
            if s.kind != "dose":
                continue
            index = {(lvl, r): k for k, (lvl, r) in enumerate(zip(s.levels, s.repeats))}
            images = [model_image(h, v["spacing"], scorer) for h in s.images]
            for r in sorted(set(s.repeats)):
                for i, j in dose_pairs(DOSES):
                    jobs.append((name, s.name, DOSES[i], DOSES[j], r,
                                 images[index[(DOSES[i], r)]], images[index[(DOSES[j], r)]]))
    with tqdm(total=2 * len(jobs), desc="ds", unit="pair", delay=2.0) as bar:
        ab = predict_preference(scorer, [(j[5], j[6]) for j in jobs], bar)
        ba = predict_preference(scorer, [(j[6], j[5]) for j in jobs], bar)
    out = {}
    for name in slices:
        sel = [k for k, j in enumerate(jobs) if j[0] == name]
        per_series = {}
        for series in dict.fromkeys(jobs[k][1] for k in sel):
            ks = [k for k in sel if jobs[k][1] == series]
            per_series[series] = pair_accuracy([ab[k] for k in ks], [ba[k] for k in ks])
        out[name] = {
            "pairs": len(sel), "accuracy": pair_accuracy([ab[k] for k in sel], [ba[k] for k in sel]),
            "per_series": per_series,
            "items": [{"series": jobs[k][1], "dose_a": jobs[k][2], "dose_b": jobs[k][3], "repeat": jobs[k][4],
                       "pref_ab": ab[k], "pref_ba": ba[k]} for k in sel],
        }
    return out


def _result(args, slices: dict, ss: Scorer | None, ds: Scorer | None, ds_results: dict) -> dict:
    per_slice = {}
    for name, v in slices.items():
        series_out, srccs = {}, []
        for s in v["series"]:
            levels = sorted(set(s.levels), reverse=s.kind == "dose")
            entry = {
                "kind": s.kind, "views": s.views, "levels": levels,
                "added_noise_std_hu": {f"{lvl:g}": float(np.mean([a for a, l2 in zip(s.added_std, s.levels) if l2 == lvl]))
                                       for lvl in levels},
            }
            if s.kind == "dose":
                entry["total_noise_std_hu"] = {f"{lvl:g}": float(v["ref_noise"] / math.sqrt(lvl)) for lvl in levels}
            if s.overall:
                srcc = dose_order_srcc(s.order_key(), s.overall)
                srccs.append(srcc)
                entry.update({
                    "items": [{"level": lvl, "repeat": r, "overall": o}
                              for lvl, r, o in zip(s.levels, s.repeats, s.overall)],
                    "mean_overall": {f"{lvl:g}": float(np.mean([o for o, l2 in zip(s.overall, s.levels) if l2 == lvl]))
                                     for lvl in levels},
                    "srcc": srcc,
                })
            series_out[s.name] = entry
        per_slice[name] = {
            "label": SLICES[name]["label"], "shape": list(v["hu"].shape), "spacing_mm": v["spacing"],
            "ref_noise_hu": v["ref_noise"], "sparse_views": SLICES[name]["sparse_views"], "series": series_out,
            "min_srcc": min(srccs) if srccs else None,
        }
        if name in ds_results:
            per_slice[name]["ds"] = ds_results[name]
    return {
        "benchmark": "real_ct_anatomy",
        "ss_adapter": args.ss, "ds_adapter": args.ds,
        "ss_view": _view_name(ss), "ds_view": _view_name(ds),
        "seed": args.seed, "repeats": args.repeats, "doses": list(DOSES), "noise_amplitudes_hu": list(AMPLITUDES),
        "noise_corr_mm": CORR_MM, "ds_min_gap": MIN_GAP, "slices": per_slice,
    }


def _view_name(scorer: Scorer | None) -> str | None:
    """How the adapter's model sees an image (its View), or None without the adapter."""
    if scorer is None:
        return None
    return repr(scorer.view)


def _markdown(result: dict) -> str:
    if result["ss_adapter"] or result["ds_adapter"]:
        run = (f"ss adapter: `{result['ss_adapter']}` (view: {result['ss_view']}); ds adapter: `{result['ds_adapter']}` "
               f"(view: {result['ds_view']}).")
    else:
        run = "No adapter given: the degradations and their measured noise only."
    lines = ["# Real CT anatomy", "",
             f"{run} Seed {result['seed']}, {result['repeats']} noise realisations per level.",
             "Cells: mean predicted overall (0-4) per level; SRCC over all the series' images "
             "(level: dose fraction, or minus the noise amplitude). Noise: the added std measured in soft tissue (HU).", ""]
    for name, sl in result["slices"].items():
        lines += [f"## {name} ({sl['label']}; own noise {sl['ref_noise_hu']:.1f} HU)", ""]
        for sname, s in sl["series"].items():
            head = "dose fraction" if s["kind"] == "dose" else "noise (HU)"
            lines += [f"| {sname}: {head} | " + " | ".join(f"{lvl:g}" for lvl in s["levels"]) + " | SRCC |",
                      "|---|" + "---:|" * (len(s["levels"]) + 1),
                      "| added noise std (HU) | " + " | ".join(f"{s['added_noise_std_hu'][f'{lvl:g}']:.1f}"
                                                         for lvl in s["levels"]) + " | |"]
            if "total_noise_std_hu" in s:
                lines.append("| total noise std (HU) | " + " | ".join(f"{s['total_noise_std_hu'][f'{lvl:g}']:.1f}"
                                                               for lvl in s["levels"]) + " | |")
            if "mean_overall" in s:
                lines.append("| predicted overall | " + " | ".join(f"{s['mean_overall'][f'{lvl:g}']:.2f}"
                                                                 for lvl in s["levels"]) + f" | {s['srcc']:.3f} |")
            lines.append("")
        if sl["min_srcc"] is not None:
            lines.append(f"min SRCC over the series: **{sl['min_srcc']:.3f}**")
        if "ds" in sl:
            d = sl["ds"]
            per = ", ".join(f"{k} {v:.3f}" for k, v in d["per_series"].items())
            lines.append(f"ds accuracy (right in both orders, {d['pairs']} pairs): **{d['accuracy']:.3f}** ({per})")
        lines.append("")
    return "\n".join(lines)


# --- figures ----------------------------------------------------------------------------------------


def _crop(hu: np.ndarray, size: int = 192) -> np.ndarray:
    """A native-resolution window of at most ``size`` px, centred on the body (HU > -500)."""
    h, w = hu.shape
    if max(h, w) <= size:
        return hu
    rows, cols = np.nonzero(hu > -500)
    cy, cx = (int(rows.mean()), int(cols.mean())) if rows.size else (h // 2, w // 2)
    y = min(max(cy - size // 2, 0), h - size)
    x = min(max(cx - size // 2, 0), w - size)
    return hu[y:y + size, x:x + size]


def _plot_degradations(slices: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lora_iqa.data.io import apply_window
    from lora_iqa.errors import save_fig

    rows = [(name, s) for name, v in slices.items() for s in v["series"]]
    cols = max(len(set(s.levels)) for _, s in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.9 * cols, 2.15 * len(rows)), squeeze=False)
    for ax_row, (name, s) in zip(axes, rows):
        levels = sorted(set(s.levels), reverse=s.kind == "dose")
        for ax in ax_row:
            ax.set_axis_off()
        for ax, lvl in zip(ax_row, levels):
            k = next(i for i, (l2, r) in enumerate(zip(s.levels, s.repeats)) if l2 == lvl and r == 0)
            ax.imshow(apply_window(_crop(s.images[k]), WINDOW), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            what = f"dose {lvl:g}" if s.kind == "dose" else f"+{lvl:g} HU"
            ax.set_title(f"{name.split('.')[0][:9]} {s.name.split(', ')[-1] if s.kind == 'dose' else ''}\n"
                         f"{what} (added {s.added_std[k]:.0f} HU)", fontsize=7)
    fig.suptitle("Degraded real CT slices (native-resolution crops, W400/L40; repeat 0)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    save_fig(fig, path)


def _plot_dose_series(slices: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lora_iqa.data.io import apply_window
    from lora_iqa.errors import save_fig

    n = len(DOSES)
    fig, axes = plt.subplots(len(slices), n + 1, figsize=(2.3 * (n + 1), 2.7 * len(slices)), squeeze=False)
    for ax_row, (name, v) in zip(axes, slices.items()):
        full = v["series"][0]
        for ax, dose in zip(ax_row, DOSES):
            k = next(i for i, (lvl, r) in enumerate(zip(full.levels, full.repeats)) if lvl == dose and r == 0)
            ax.imshow(apply_window(full.images[k], WINDOW), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{name.split('.')[0][:9]} dose {dose:g}\noverall {full.overall[k]:.2f}", fontsize=7)
            ax.set_axis_off()
        ax = ax_row[n]
        for s in v["series"]:
            if s.kind != "dose":
                continue
            means = [np.mean([o for o, lvl in zip(s.overall, s.levels) if lvl == d]) for d in DOSES]
            line, = ax.plot(DOSES, means, "o-", ms=3, label=s.name.split(", ")[-1])
            ax.scatter(s.levels, s.overall, s=6, alpha=0.4, color=line.get_color())
        ax.set_xscale("log")
        ax.set_xlabel("dose fraction", fontsize=7)
        ax.set_ylabel("predicted overall", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.legend(fontsize=6)
    fig.suptitle("Real CT slices across dose (full views, repeat 0) and predicted overall vs dose", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    save_fig(fig, path)


if __name__ == "__main__":
    main()
