"""Real CT anatomy: do trained adapters order real slices by dose, streaks and noise?

pydicom's two real CT ``SLICES`` (never trained on), degraded by :mod:`lora_iqa.data.lowdose` (no code shared
with the training simulator): ``DOSES`` of the acquired dose at full views and after a sparse-view
reconstruction (streaks), and correlated noise of ``AMPLITUDES`` HU; ``--repeats`` realisations each.
``--ss``: per slice and series, the SRCC of level (dose; -amplitude) vs predicted overall. ``--ds`` (nr): dose
pairs of one series and repeat >= ``MIN_GAP`` levels apart, right only if the higher dose wins in both orders.
Writes results.json, results.md, degradations.png and (``--ss``) dose_series.png to ``--out``; without an
adapter, the degradations and their measured noise only:

    python benchmarks/scripts/real_ct_anatomy.py --ss ADAPTER_DIR [--ds DS_ADAPTER_DIR] \\
        --out benchmarks/results/real_ct --seed 0 --repeats 2
"""

import argparse
import json
import math
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from PIL import Image
from pydicom.data import get_testdata_file
from scipy import stats
from tqdm import tqdm

from lora_iqa.data.io import apply_window, read_dicom_hu
from lora_iqa.data.lowdose import correlated_noise, estimate_noise_hu, insert_lowdose_noise, noise_std_hu, sparse_view
from lora_iqa.errors import atomic_path, atomic_write_text, save_fig
from lora_iqa.views import View, resample

DOSES = (1.0, 0.5, 0.25, 0.12, 0.06, 0.03)  # fractions of the acquired dose
AMPLITUDES = (0.0, 12.0, 25.0, 50.0, 100.0)  # HU std of the additive correlated noise
CORR_MM = 1.5  # its correlation length (autocorrelation exp(-d^2 / (2 CORR_MM^2)))
MIN_GAP = 2  # ds pairs: dose levels at least this many steps apart in DOSES
# sparse views chosen by eye (degradations.png) for visible, moderate streaks: more for more pixels
SLICES = {"CT_small.dcm": {"label": "spine crop, 128 px, 0.661 mm/px", "sparse_views": 60},
          "J2K_pixelrep_mismatch.dcm": {"label": "head, 512 px, 0.431 mm/px, JPEG 2000", "sparse_views": 180}}
WINDOW = (40.0, 400.0)  # (level, width) HU: the soft-tissue window the adapters are trained with
TISSUE_HU = (-100.0, 200.0)  # soft tissue / water, where the inserted noise is measured
CHUNK = 4  # samples per model call (the progress bar's step)


def dose_order_srcc(levels: Sequence[float], scores: Sequence[float]) -> float:
    """Spearman SRCC of a series' levels (higher is better) vs its predicted scores; 0 if either is constant."""
    levels, scores = np.asarray(levels, dtype=float), np.asarray(scores, dtype=float)
    if len(levels) != len(scores):
        raise ValueError(f"{len(levels)} levels but {len(scores)} scores")
    if len(levels) < 2 or np.ptp(levels) == 0 or np.ptp(scores) == 0:
        return 0.0
    return float(stats.spearmanr(levels, scores).statistic)


def dose_pairs(doses: Sequence[float], min_gap: int = MIN_GAP) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)`` of ``doses`` (high to low) at least ``min_gap`` apart; ``i`` the higher dose."""
    return [(i, j) for i in range(len(doses)) for j in range(i + min_gap, len(doses))]


def pair_accuracy(pref_ab: Sequence[float], pref_ba: Sequence[float]) -> float:
    """The fraction of pairs (a the better) answered 0 asked (a, b) and 1 asked (b, a) (0.5, similar, is wrong); NaN for none."""
    if len(pref_ab) != len(pref_ba):
        raise ValueError(f"{len(pref_ab)} answers in one order but {len(pref_ba)} in the other")
    if not pref_ab:
        return float("nan")
    return float(np.mean([a == 0.0 and b == 1.0 for a, b in zip(pref_ab, pref_ba)]))


def load_slice(name: str, index: int, repeats: int, seed: int) -> dict:
    """The slice, its own noise and its three series; every image draws from its own generator, seeded by
    (seed, slice, series, level, repeat)."""
    with warnings.catch_warnings():  # pydicom warns when it cannot download its optional extras
        warnings.simplefilter("ignore")
        hu, dcm = read_dicom_hu(get_testdata_file(name))
    spacing, views = float(dcm.PixelSpacing[0]), SLICES[name]["sparse_views"]
    ref, tissue = estimate_noise_hu(hu, spacing), (hu >= TISSUE_HU[0]) & (hu <= TISSUE_HU[1])
    series = []
    for s_index, (sname, kind, s_views, base, levels) in enumerate([
            ("dose, full views", "dose", None, hu, DOSES),
            (f"dose, {views} views", "dose", views, sparse_view(hu, spacing, views), DOSES),
            (f"correlated noise {CORR_MM:g} mm", "noise", None, hu, AMPLITUDES)]):
        # per image: its level, repeat, HU image, added noise std in soft tissue and, once scored, overall
        series.append(s := SimpleNamespace(name=sname, kind=kind, views=s_views, levels=[], repeats=[], images=[],
                                           added_std=[], overall=[]))
        for l_index, level in enumerate(levels):
            for r in range(repeats):
                rng = np.random.default_rng([seed, index, s_index, l_index, r])
                img = (insert_lowdose_noise(base, spacing, level, rng, ref_noise_hu=ref) if kind == "dose"
                       else (base + correlated_noise(hu.shape, spacing, level, CORR_MM, rng)).astype(np.float32))
                s.levels.append(level), s.repeats.append(r), s.images.append(img)
                s.added_std.append(noise_std_hu(img, base, tissue))
    return {"hu": hu, "spacing": spacing, "ref_noise": ref, "series": series}


def load_scorer(adapter_dir: str, protocol: str) -> SimpleNamespace:
    from lora_iqa.methods.load import load_trained

    model, processor, meta = load_trained(adapter_dir)
    if meta.protocol != protocol or (protocol == "ds" and meta.reference != "nr"):
        raise SystemExit(f"{adapter_dir}: a {meta.protocol} {meta.reference} adapter, expected {protocol}"
                         f"{' nr' if protocol == 'ds' else ''}")
    return SimpleNamespace(model=model, processor=processor, meta=meta, view=meta.make_view())


def model_image(hu: np.ndarray, spacing: float, view: View) -> np.ndarray:
    """The HU slice as the model sees it: float32 [0, 1] at WINDOW, resampled to the view's mm/px."""
    return resample(apply_window(hu.astype(np.float32), WINDOW).astype(np.float32), spacing, view.spacing)


def predict(scorer: SimpleNamespace, samples: list, bar) -> list[float]:
    """ss: each image's predicted overall; ds: each pair's answer (0 first better, 1 second, 0.5 similar)."""
    from lora_iqa.methods.blip.predict import protocol_logits

    meta, out = scorer.meta, []
    for start in range(0, len(samples), CHUNK):
        chunk = samples[start:start + CHUNK]
        for r in protocol_logits(scorer.model, scorer.processor, chunk, meta.make_protocol(), meta.template(),
                                 index=meta.multi_image, view=scorer.view):
            out.append(float(r["preference"]) if meta.protocol == "ds" else r["scores"][meta.template().overall])
        bar.update(len(chunk))
    return out


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
    out, t0 = Path(args.out), time.time()
    out.mkdir(parents=True, exist_ok=True)
    slices = {name: load_slice(name, i, args.repeats, args.seed) for i, name in enumerate(SLICES)}
    total = sum(len(s.images) for v in slices.values() for s in v["series"])
    print(f"degraded {total} images in {time.time() - t0:.1f}s")
    _plot_degradations(slices, out / "degradations.png")
    ss = load_scorer(args.ss, "ss") if args.ss else None
    ds = load_scorer(args.ds, "ds") if args.ds else None
    if ss is not None:
        with tqdm(total=total, desc="ss", unit="img", delay=2.0) as bar:
            for v in slices.values():
                for s in v["series"]:
                    s.overall = predict(ss, [model_image(h, v["spacing"], ss.view) for h in s.images], bar)
    result = _result(args, slices, ss, ds, _run_ds(ds, slices) if ds is not None else {})
    atomic_write_text(out / "results.json", json.dumps(result, indent=1))
    atomic_write_text(out / "results.md", md := _markdown(result))
    if ss is not None:
        _plot_dose_series(slices, out / "dose_series.png")
    print(md)


def _run_ds(scorer: SimpleNamespace, slices: dict) -> dict:
    jobs = []  # (slice, series, dose a, dose b, repeat, image a, image b), dose a the higher
    for name, v in slices.items():
        for s in (s for s in v["series"] if s.kind == "dose"):
            img = {(lvl, r): model_image(h, v["spacing"], scorer.view) for lvl, r, h in zip(s.levels, s.repeats, s.images)}
            jobs += [(name, s.name, DOSES[i], DOSES[j], r, img[DOSES[i], r], img[DOSES[j], r])
                     for r in sorted(set(s.repeats)) for i, j in dose_pairs(DOSES)]
    with tqdm(total=2 * len(jobs), desc="ds", unit="pair", delay=2.0) as bar:
        ab = predict(scorer, [(j[5], j[6]) for j in jobs], bar)
        ba = predict(scorer, [(j[6], j[5]) for j in jobs], bar)

    def accuracy(ks: list[int]) -> float:
        return pair_accuracy([ab[k] for k in ks], [ba[k] for k in ks])

    out = {}
    for name in slices:
        sel = [k for k, j in enumerate(jobs) if j[0] == name]
        out[name] = {"pairs": len(sel), "accuracy": accuracy(sel), "per_series": {
            n: accuracy([k for k in sel if jobs[k][1] == n]) for n in dict.fromkeys(jobs[k][1] for k in sel)},
            "items": [dict(zip(("series", "dose_a", "dose_b", "repeat"), jobs[k][1:5]), pref_ab=ab[k], pref_ba=ba[k])
                      for k in sel]}
    return out


def _by_level(s: SimpleNamespace, values: list, levels) -> dict:
    """The mean of ``values`` (one per image of ``s``) per level, keyed ``f"{level:g}"``."""
    return {f"{lvl:g}": float(np.mean([x for x, l2 in zip(values, s.levels) if l2 == lvl])) for lvl in levels}


def _result(args, slices: dict, ss: SimpleNamespace | None, ds: SimpleNamespace | None, ds_results: dict) -> dict:
    per_slice = {}
    for name, v in slices.items():
        series = {}
        for s in v["series"]:
            levels = list(dict.fromkeys(s.levels))  # DOSES or AMPLITUDES, in order
            e = series[s.name] = {"kind": s.kind, "views": s.views, "levels": levels,
                                  "added_noise_std_hu": _by_level(s, s.added_std, levels)}
            if s.kind == "dose":
                e["total_noise_std_hu"] = {f"{lvl:g}": float(v["ref_noise"] / math.sqrt(lvl)) for lvl in levels}
            if s.overall:
                e["items"] = [{"level": lvl, "repeat": r, "overall": o} for lvl, r, o in zip(s.levels, s.repeats, s.overall)]
                e["mean_overall"] = _by_level(s, s.overall, levels)
                e["srcc"] = dose_order_srcc(s.levels if s.kind == "dose" else [-a for a in s.levels], s.overall)
        srccs = [e["srcc"] for e in series.values() if "srcc" in e]
        per_slice[name] = {
            "label": SLICES[name]["label"], "shape": list(v["hu"].shape), "spacing_mm": v["spacing"],
            "ref_noise_hu": v["ref_noise"], "sparse_views": SLICES[name]["sparse_views"], "series": series,
            "min_srcc": min(srccs) if srccs else None, **({"ds": ds_results[name]} if name in ds_results else {}),
        }
    return {
        "benchmark": "real_ct_anatomy", "ss_adapter": args.ss, "ds_adapter": args.ds,
        "ss_view": repr(ss.view) if ss else None, "ds_view": repr(ds.view) if ds else None,
        "seed": args.seed, "repeats": args.repeats, "doses": list(DOSES), "noise_amplitudes_hu": list(AMPLITUDES),
        "noise_corr_mm": CORR_MM, "ds_min_gap": MIN_GAP, "slices": per_slice,
    }


def _markdown(result: dict) -> str:
    def row(label: str, cells, last: str = "") -> str:
        return f"| {label} | {' | '.join(cells)} |{last} |"

    run = (f"ss adapter: `{result['ss_adapter']}` (view: {result['ss_view']}); ds adapter: `{result['ds_adapter']}` "
           f"(view: {result['ds_view']})." if result["ss_adapter"] or result["ds_adapter"]
           else "No adapter given: the degradations and their measured noise only.")
    lines = ["# Real CT anatomy", "",
             f"{run} Seed {result['seed']}, {result['repeats']} noise realisations per level.",
             "Cells: mean predicted overall (0-4) per level; SRCC over all the series' images "
             "(level: dose fraction, or minus the noise amplitude). Noise: the added std measured in soft tissue (HU).", ""]
    for name, sl in result["slices"].items():
        lines += [f"## {name} ({sl['label']}; own noise {sl['ref_noise_hu']:.1f} HU)", ""]
        for sname, s in sl["series"].items():
            keys = [f"{lvl:g}" for lvl in s["levels"]]
            lines += [row(f"{sname}: {'dose fraction' if s['kind'] == 'dose' else 'noise (HU)'}", keys, " SRCC"),
                      "|---|" + "---:|" * (len(keys) + 1),
                      row("added noise std (HU)", [f"{s['added_noise_std_hu'][k]:.1f}" for k in keys])]
            if "total_noise_std_hu" in s:
                lines.append(row("total noise std (HU)", [f"{s['total_noise_std_hu'][k]:.1f}" for k in keys]))
            if "mean_overall" in s:
                lines.append(row("predicted overall", [f"{s['mean_overall'][k]:.2f}" for k in keys], f" {s['srcc']:.3f}"))
            lines.append("")
        if sl["min_srcc"] is not None:
            lines.append(f"min SRCC over the series: **{sl['min_srcc']:.3f}**")
        if d := sl.get("ds"):
            per = ", ".join(f"{k} {v:.3f}" for k, v in d["per_series"].items())
            lines.append(f"ds accuracy (right in both orders, {d['pairs']} pairs): **{d['accuracy']:.3f}** ({per})")
        lines.append("")
    return "\n".join(lines)


def _plot_degradations(slices: dict, path: Path, crop: int = 96) -> None:
    """Repeat 0 of every series: native-resolution crops of ``crop`` px centred on the body (HU > -500)."""
    rows = [(name, s) for name, v in slices.items() for s in v["series"]]
    fig = Figure(figsize=(1.1 * len(DOSES), 1.3 * len(rows)), layout="constrained")  # no pyplot: no GUI backend
    fig.suptitle("Degraded real CT slices (native-resolution crops, W400/L40; repeat 0)", fontsize=8)
    axes = fig.subplots(len(rows), len(DOSES), squeeze=False)
    for ax_row, (name, s) in zip(axes, rows):
        body = np.nonzero(s.images[0] > -500)
        y, x = (int(np.clip(c.mean() - crop // 2, 0, max(n - crop, 0))) for c, n in zip(body, s.images[0].shape))
        for ax, k in zip(ax_row, [k for k, r in enumerate(s.repeats) if r == 0]):
            ax.imshow(apply_window(s.images[k][y:y + crop, x:x + crop], WINDOW), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            what = f"dose {s.levels[k]:g}" if s.kind == "dose" else f"+{s.levels[k]:g} HU"
            ax.set_title(f"{name.split('.')[0][:9]} {s.name.split(', ')[-1] if s.kind == 'dose' else ''}\n"
                         f"{what} (added {s.added_std[k]:.0f} HU)", fontsize=5)
    for ax in axes.flat:
        ax.set_axis_off()
    save_fig(fig, path)
    with atomic_path(path) as tmp:  # 8-bit gray: well under half the bytes of RGBA (the file is committed)
        Image.open(path).convert("L").save(tmp, format="PNG")


def _plot_dose_series(slices: dict, path: Path) -> None:
    fig = Figure(figsize=(2.3 * (len(DOSES) + 1), 2.7 * len(slices)), layout="constrained")
    fig.suptitle("Real CT slices across dose (full views, repeat 0) and predicted overall vs dose", fontsize=8)
    axes = fig.subplots(len(slices), len(DOSES) + 1, squeeze=False)
    for ax_row, (name, v) in zip(axes, slices.items()):
        full = v["series"][0]
        for ax, k in zip(ax_row, [k for k, r in enumerate(full.repeats) if r == 0]):
            ax.imshow(apply_window(full.images[k], WINDOW), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{name.split('.')[0][:9]} dose {full.levels[k]:g}\noverall {full.overall[k]:.2f}", fontsize=7)
            ax.set_axis_off()
        for s in (s for s in v["series"] if s.kind == "dose"):
            line, = ax_row[-1].plot(DOSES, list(_by_level(s, s.overall, DOSES).values()), "o-", ms=3,
                                    label=s.name.split(", ")[-1])
            ax_row[-1].scatter(s.levels, s.overall, s=6, alpha=0.4, color=line.get_color())
        ax_row[-1].set(xscale="log", xlabel="dose fraction", ylabel="predicted overall")
        ax_row[-1].legend(fontsize=6)
    save_fig(fig, path)


if __name__ == "__main__":
    main()
