"""Tests for lora_iqa.data.synth.ct: reproducibility, splits, labels, physics, rater, output files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import file_tree, manifest_rows

from lora_iqa.data.synth import ct as S
from lora_iqa.data.synth import ct_physics as P
from lora_iqa.data.synth.ct import DIMENSIONS, SynthCTConfig, rate, synth_ct
from lora_iqa.data.synth.ct_physics import simulate
from lora_iqa.data.synth.anatomy import anatomy_slice
from lora_iqa.errors import LoraIqaError

SIZE = 64


@pytest.fixture(scope="module")
def moderate(tmp_path_factory) -> Path:
    """A run of moderate size (15 contents, 120 images), generated in parallel."""
    out = tmp_path_factory.mktemp("synth") / "moderate"
    return synth_ct(out, SynthCTConfig(n=120, size=SIZE, seed=7, workers=2), progress=False)


# --- reproducibility and output -----------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    cfg = SynthCTConfig(n=24, size=SIZE, seed=1, workers=1)
    a = synth_ct(tmp_path / "a", cfg, progress=False).parent
    b = synth_ct(tmp_path / "b", SynthCTConfig(n=24, size=SIZE, seed=1, workers=2), progress=False).parent
    c = synth_ct(tmp_path / "c", SynthCTConfig(n=24, size=SIZE, seed=2, workers=1), progress=False).parent
    ta, tb, tc = file_tree(a), file_tree(b), file_tree(c)
    assert ta == tb  # same seed: byte-identical, whatever the number of workers
    assert len([k for k in ta if k.startswith("images/")]) == 24 + 3  # images + one reference per content
    assert ta["manifest.csv"] != tc["manifest.csv"]
    assert ta["images/abd0000_0.png"] != tc["images/abd0000_0.png"]


def test_manifest_columns_and_files(moderate):
    rows = manifest_rows(moderate)
    assert len(rows) == 120
    header = list(rows[0])
    assert header[:3] == ["image", "split", "content"]
    for col in ("reference", *DIMENSIONS, "dose", "views", "kernel", "blur", "lesion_hu", "spacing_mm", "region",
                "synthetic"):
        assert col in header
    root = moderate.parent
    for r in rows:
        assert (root / r["image"]).is_file() and (root / r["reference"]).is_file()
        assert r["synthetic"] == "1"
        assert r["kernel"] in P.KERNELS and 8 <= int(r["views"]) <= 360
        assert 0.5 <= float(r["spacing_mm"]) <= 1.0 and r["content"].startswith(r["region"][:3])
    assert {r["region"] for r in rows} == {"abdomen", "chest", "head", "pelvis"}
    assert len({r["spacing_mm"] for r in rows}) == len({r["content"] for r in rows})  # one spacing per content


def test_splits_content_disjoint_and_all_present(moderate):
    from lora_iqa.data.manifest import read_manifest

    m = read_manifest(moderate, dimensions=DIMENSIONS)  # validates that no content is in two splits
    by_split = {s: {it.content for it in m.split(s)} for s in ("train", "val", "test")}
    assert all(by_split.values())
    assert not (by_split["train"] & by_split["val"] or by_split["train"] & by_split["test"]
                or by_split["val"] & by_split["test"])
    assert len(by_split["train"]) > len(by_split["val"])


def test_labels_are_integers_and_span_levels(moderate):
    rows = manifest_rows(moderate)
    for d in DIMENSIONS:
        vals = [r[d] for r in rows]
        assert all(v in {"0", "1", "2", "3", "4"} for v in vals), d
        assert set(vals) == {"0", "1", "2", "3", "4"}, d  # every level of every dimension, overall included
    x = np.array([[int(r[d]) for d in DIMENSIONS[:4]] for r in rows], float)
    corr = np.corrcoef(x.T)[np.triu_indices(4, 1)]
    # a shared protocol severity makes the dimensions co-vary, each still varies on its own
    assert np.all(corr > -0.3) and np.all(corr < 0.95) and np.mean(corr) > 0.1, corr


def test_labels_match_rater_and_measured_noise(moderate):
    for r in manifest_rows(moderate)[:20]:
        params = {"views": int(r["views"]), "size": SIZE, "kernel": r["kernel"], "blur": float(r["blur"]),
                  "lesion_hu": float(r["lesion_hu"]), "spacing_mm": float(r["spacing_mm"])}
        measured = {"noise_hu": float(r["noise_hu"]), "streak_hu": float(r["streak_hu"])}
        assert rate(params, measured) == {d: int(r[d]) for d in DIMENSIONS}


def test_readme_says_synthetic(moderate):
    text = (moderate.parent / "README.md").read_text()
    first = text.splitlines()[0]
    assert "SYNTHETIC" in first and "rule-based rater" in first and "not" in first.lower()
    assert "seed" in text and "overall" in text and "MTF50" in text


def test_dcm_loads_back_and_matches_png(tmp_path):
    io = pytest.importorskip("lora_iqa.data.io")
    p = synth_ct(tmp_path / "p", SynthCTConfig(n=24, size=SIZE, seed=4, format="png", workers=1), progress=False)
    d = synth_ct(tmp_path / "d", SynthCTConfig(n=24, size=SIZE, seed=4, format="dcm", workers=1), progress=False)
    rows_p, rows_d = manifest_rows(p), manifest_rows(d)
    assert [r["image"][:-4] for r in rows_p] == [r["image"][:-4] for r in rows_d]
    assert [[r[k] for k in DIMENSIONS] for r in rows_p] == [[r[k] for k in DIMENSIONS] for r in rows_d]
    for rp, rd in list(zip(rows_p, rows_d))[:6]:
        a = io.load_image(p.parent / rp["image"])
        b = io.load_image(d.parent / rd["image"])
        # DICOM stores integer HU: at most 0.5 HU of a 400 HU window, plus the 16-bit PNG step
        assert np.abs(a - b).max() <= 0.5 / 400 + 1 / 65535 + 1e-6
        hu, ds = io.read_dicom_hu(d.parent / rd["image"])
        assert hu.shape == (SIZE, SIZE) and hu.min() <= -990
        assert io.pixel_spacing(d.parent / rd["image"]) == pytest.approx(float(rd["spacing_mm"]), rel=1e-5)


def test_jitter_is_reproducible_and_changes_labels(tmp_path):
    cfg = SynthCTConfig(n=24, size=SIZE, seed=5, jitter=0.7, workers=1)
    a = manifest_rows(synth_ct(tmp_path / "a", cfg, progress=False))
    b = manifest_rows(synth_ct(tmp_path / "b", cfg, progress=False))
    c = manifest_rows(synth_ct(tmp_path / "c", SynthCTConfig(n=24, size=SIZE, seed=5, workers=1), progress=False))
    assert a == b
    assert all(r[d] in {"0", "1", "2", "3", "4"} for r in a for d in DIMENSIONS)
    assert [r["image"] for r in a] == [r["image"] for r in c]
    assert [r["dose"] for r in a] == [r["dose"] for r in c]  # jitter touches labels only
    assert any(ra[d] != rc[d] for ra, rc in zip(a, c) for d in DIMENSIONS)


def test_rerun_replaces_output_but_foreign_dir_is_refused(tmp_path):
    out = tmp_path / "out"
    synth_ct(out, SynthCTConfig(n=24, size=SIZE, seed=0, per_content=8, workers=1), progress=False)
    synth_ct(out, SynthCTConfig(n=30, size=SIZE, seed=0, per_content=10, workers=1), progress=False)
    assert len(manifest_rows(out / "manifest.csv")) == 30
    assert len(list((out / "images").iterdir())) == 30 + 3
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(LoraIqaError, match="mine"):
        synth_ct(foreign, SynthCTConfig(n=24, size=SIZE, workers=1), progress=False)
    assert (foreign / "thesis.tex").read_text() == "keep me"


def test_crash_leaves_no_output(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = S._write

    def flaky(path, hu, fmt, meta):
        calls["n"] += 1
        if calls["n"] == 12:
            raise RuntimeError("disk full")
        real(path, hu, fmt, meta)

    monkeypatch.setattr(S, "_write", flaky)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk full"):
        synth_ct(out, SynthCTConfig(n=24, size=SIZE, workers=1), progress=False)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary left behind


# --- physics ------------------------------------------------------------------------------------

PX = 3.0  # mm/px: a whole head (skull edges included) in a 192 mm field at 64 px


@pytest.fixture(scope="module")
def phantom() -> np.ndarray:
    base, les, _ = anatomy_slice(np.random.default_rng(11), SIZE, PX, "head")
    return base + 40 * les


def _noise_std(ph, dose, seed=0, **kw):
    params = {"views": 180, "kernel": "ramp", "blur": 0.0, "spacing_mm": PX, **kw}
    noisy = simulate(ph, {**params, "dose": dose}, np.random.default_rng(seed))
    clean = simulate(ph, {**params, "dose": None})
    return float(np.std((noisy - clean)[P.noise_roi(ph.shape[0])]))


def test_noise_decreases_with_dose(phantom):
    stds = [_noise_std(phantom, dose) for dose in (1e3, 1e4, 1e5, 1e6)]
    assert all(a > 1.8 * b for a, b in zip(stds, stds[1:]))  # ~ sqrt(10) per decade
    assert _noise_std(phantom, 1e4, kernel="hann") < 0.6 * _noise_std(phantom, 1e4, kernel="ramp")


def test_predicted_noise_tracks_measured(phantom):
    sino = P._project(phantom, PX)
    for views, kernel in ((30, "ramp"), (90, "cosine"), (360, "hann")):
        pred = P.predicted_noise_hu(sino, views, kernel, 1e4, PX)
        meas = _noise_std(phantom, 1e4, views=views, kernel=kernel)
        assert 0.7 < meas / pred < 1.4


def test_fewer_views_more_streaks(phantom):
    ref = simulate(phantom, {"views": 360, "kernel": "ramp", "blur": 0.0, "spacing_mm": PX})
    body = phantom > -500
    energy = [float(np.sqrt(np.mean((simulate(phantom, {"views": v, "kernel": "ramp", "blur": 0.0, "spacing_mm": PX})
                                     - ref)[body] ** 2)))
              for v in (16, 32, 64, 128)]
    assert all(a > b for a, b in zip(energy, energy[1:]))
    assert energy[0] > 20  # clearly visible in a 400 HU window


def _sharpness(img):
    gy, gx = np.gradient(img)
    return float(np.mean(np.hypot(gx, gy)))


def test_blur_and_smooth_kernels_lower_sharpness(phantom):
    s = [_sharpness(simulate(phantom, {"views": 360, "kernel": "ramp", "blur": b, "spacing_mm": PX}))
         for b in (0.0, 0.7, 1.5, 3.0)]
    assert all(a > b for a, b in zip(s, s[1:]))
    assert _sharpness(simulate(phantom, {"views": 360, "kernel": "hann", "blur": 0.0, "spacing_mm": PX})) < s[0]


# --- rater --------------------------------------------------------------------------------------

BASE = {"views": 360, "size": 128, "kernel": "ramp", "blur": 0.0, "lesion_hu": 70.0}


def _scores(**changes):
    measured = {"noise_hu": changes.pop("noise_hu", 5.0), "streak_hu": changes.pop("streak_hu", 5.0)}
    return rate({**BASE, **changes}, measured)


@pytest.mark.parametrize("dim,key,values", [
    ("noise", "noise_hu", [5, 9.5, 9.6, 14, 20, 29.9, 30, 400]),  # decreasing quality
    ("artifact", "streak_hu", [0.1, 17.9, 18, 31, 49, 93.9, 94, 500]),
    ("sharpness", "blur", [0.0, 0.5, 0.8, 1.2, 1.8, 2.5, 4.0, 8.0]),
    ("contrast", "lesion_hu", [70, -21, 20, 10, 6.75, -3.4, 3.3, 1]),  # CNR at noise 5 HU
])
def test_rater_monotone(dim, key, values):
    got = [_scores(**{key: v}) for v in values]
    levels = [g[dim] for g in got]
    assert levels[0] == 4 and levels[-1] == 0
    assert all(a >= b for a, b in zip(levels, levels[1:])), levels
    overall = [g["overall"] for g in got]
    assert all(a >= b for a, b in zip(overall, overall[1:])), overall
    assert all(isinstance(v, int) and 0 <= v <= 4 for g in got for v in g.values())


def test_rater_thresholds_and_size():
    assert _scores(noise_hu=9.6)["noise"] == 3 and _scores(noise_hu=9.59)["noise"] == 4
    assert _scores(streak_hu=18)["artifact"] == 3 and _scores(streak_hu=17.9)["artifact"] == 4
    assert _scores(kernel="hann")["sharpness"] == 4  # MTF50 0.25
    assert _scores(lesion_hu=21, noise_hu=5)["contrast"] == 4 and _scores(lesion_hu=20.9, noise_hu=5)["contrast"] == 3
    assert _scores()["overall"] == 4


def test_overall_formula_is_monotone_and_bounded():
    import itertools

    table = {c: S.overall_from(list(c)) for c in itertools.product(range(5), repeat=4)}
    assert table[(4, 4, 4, 4)] == 4 and table[(0, 0, 0, 0)] == 0
    assert table[(4, 4, 4, 0)] == 2  # one bad dimension caps diagnostic use
    for c, v in table.items():
        for i in range(4):
            if c[i] < 4:
                up = list(c)
                up[i] += 1
                assert table[tuple(up)] >= v
    counts = np.bincount(list(table.values()), minlength=5) / len(table)
    assert counts.min() > 0.04  # every level in use under independent dimensions


def test_rater_jitter_reproducible():
    a = [rate(BASE, {"noise_hu": 30, "streak_hu": 3.0}, jitter=1.0, rng=np.random.default_rng(s)) for s in range(30)]
    b = [rate(BASE, {"noise_hu": 30, "streak_hu": 3.0}, jitter=1.0, rng=np.random.default_rng(s)) for s in range(30)]
    assert a == b and len({r["noise"] for r in a}) > 1
    assert all(0 <= v <= 4 for r in a for v in r.values())


# --- config ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("key,value", [
    ("n", 0), ("n", 16), ("n", 2.5), ("size", 8), ("size", True), ("seed", -1), ("format", "jpg"),
    ("per_content", 0), ("jitter", -0.1), ("jitter", float("nan")), ("splits", (0.5, 0.5, 0.0)),
    ("spacing", (1.0, 0.5)), ("spacing", (0.1, 0.5)), ("spacing", "x"),
    ("splits", (0.7, 0.2, 0.2)), ("splits", (1.0,)), ("splits", "abc"), ("workers", -1),
])
def test_bad_config_names_the_key(key, value):
    with pytest.raises(LoraIqaError, match=f"'{key}'"):
        SynthCTConfig(**{key: value})


def test_config_accepts_lists_from_yaml():
    cfg = SynthCTConfig(splits=[0.8, 0.1, 0.1])
    assert cfg.splits == (0.8, 0.1, 0.1) and cfg.n_contents == 50
