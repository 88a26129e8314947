"""Tests for lora_iqa.data.synth.natural: reproducibility, splits, labels, rater, output files, CLI."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from conftest import file_tree, manifest_rows
from scipy.stats import spearmanr

from lora_iqa import template
from lora_iqa.data.synth import natural as S
from lora_iqa.data.manifest import read_manifest
from lora_iqa.data.synth.natural import (
    NATURAL_DIMENSIONS,
    SynthNaturalConfig,
    distort,
    measure,
    rate,
    synth_natural,
)
from lora_iqa.errors import LoraIqaError

SIZE = 64


@pytest.fixture(scope="module")
def moderate(tmp_path_factory) -> Path:
    """A run of moderate size: 220 images, 10 per content."""
    return synth_natural(tmp_path_factory.mktemp("nat") / "moderate", SynthNaturalConfig(n=220, size=SIZE, seed=7),
                         progress=False)


def test_dimensions_match_the_template():
    assert NATURAL_DIMENSIONS == template.NATURAL_DIMENSIONS and NATURAL_DIMENSIONS[-1] == "overall"


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = synth_natural(tmp_path / "a", SynthNaturalConfig(n=30, size=SIZE, seed=1), progress=False).parent
    b = synth_natural(tmp_path / "b", SynthNaturalConfig(n=30, size=SIZE, seed=1), progress=False).parent
    c = synth_natural(tmp_path / "c", SynthNaturalConfig(n=30, size=SIZE, seed=2), progress=False).parent
    ta, tb, tc = file_tree(a), file_tree(b), file_tree(c)
    assert ta == tb
    assert len([k for k in ta if k.startswith("images/")]) == 30 + 22  # images + one reference per content
    assert ta["manifest.csv"] != tc["manifest.csv"]
    assert ta["images/astronaut_0_0_0.png"] != tc["images/astronaut_0_0_0.png"]
    assert ta["images/astronaut_0_0_ref.png"] == tc["images/astronaut_0_0_ref.png"]  # the clean region


def test_manifest_reads_back_with_natural_dimensions(moderate):
    m = read_manifest(moderate, NATURAL_DIMENSIONS)
    assert m.dimensions == NATURAL_DIMENSIONS and len(m.items) == 220
    for item in m.items:
        assert item.reference is not None and item.reference.is_file()
        assert item.extra["synthetic"] == "1" and item.extra["source"] in S.PHOTOS
        assert all(v in range(5) for v in item.scores.values())
        assert set(item.extra["distortions"].split("+")) <= set(S.DISTORTIONS)
    header = list(manifest_rows(moderate)[0])
    for col in ("blur_sigma", "noise_sigma", "jpeg_quality", "contrast_factor", "saturation_factor", "sharp_ratio"):
        assert col in header
    from PIL import Image

    with Image.open(m.items[0].image) as im:
        assert im.mode == "RGB" and im.size == (SIZE, SIZE)


def test_splits_disjoint_by_content(moderate):
    rows = manifest_rows(moderate)
    split_of: dict[str, set] = {}
    for r in rows:
        split_of.setdefault(r["content"], set()).add(r["split"])
    assert all(len(s) == 1 for s in split_of.values())
    assert {next(iter(s)) for s in split_of.values()} == {"train", "val", "test"}
    assert len(split_of) == 22
    assert sorted(np.unique([r["content"] for r in rows], return_counts=True)[1]) == [10] * 22


def test_small_n_spans_photos_and_splits(tmp_path):
    rows = manifest_rows(synth_natural(tmp_path / "s", SynthNaturalConfig(n=5, size=SIZE), progress=False))
    assert len(rows) == 5 and len({r["content"] for r in rows}) == 5
    assert len({r["source"] for r in rows}) == 4 and {r["split"] for r in rows} == {"train", "val", "test"}


def test_labels_follow_their_distortion(moderate):
    rows = manifest_rows(moderate)
    f = lambda key, rs: np.array([float(r[key]) for r in rs])  # noqa: E731
    no_jpeg = [r for r in rows if r["jpeg_quality"] == "0"]
    assert spearmanr(f("blur_sigma", no_jpeg), f("sharpness", no_jpeg))[0] < -0.8
    assert spearmanr(f("noise_sigma", rows), f("noise", rows))[0] < -0.8
    jq = np.where(f("jpeg_quality", rows) == 0, 101, f("jpeg_quality", rows))
    assert spearmanr(jq, f("artifact", rows))[0] > 0.8
    assert spearmanr(np.abs(np.log(f("contrast_factor", rows))), f("contrast", rows))[0] < -0.8
    assert spearmanr(np.abs(np.log(f("saturation_factor", rows) + 0.05)), f("color", rows))[0] < -0.8
    for r in rows:  # labels are the rater's, from the recorded measurements
        measured = {k: float(r[k]) for k in ("sharp_ratio", "noise_std", "blockiness", "contrast_dev", "color_dev")}
        assert rate(measured) == {d: int(r[d]) for d in NATURAL_DIMENSIONS}
    for d in NATURAL_DIMENSIONS:
        assert len({r[d] for r in rows}) >= 4, d  # the levels are in use


@pytest.mark.parametrize("key, values, dim", [
    ("blur_sigma", [0.0, 0.5, 1.0, 2.0, 3.5, 6.0], "sharpness"),
    ("noise_sigma", [0.0, 3.0, 6.0, 12.0, 25.0, 50.0], "noise"),
    ("jpeg_quality", [0, 60, 30, 15, 8, 3], "artifact"),
    ("contrast_factor", [1.0, 0.8, 0.6, 0.4, 0.25, 0.15], "contrast"),
    ("contrast_factor", [1.0, 1.3, 1.7, 2.2, 3.0], "contrast"),
    ("saturation_factor", [1.0, 0.8, 0.6, 0.4, 0.2, 0.0], "color"),
    ("saturation_factor", [1.0, 1.3, 1.8, 2.5, 4.0], "color"),
])
def test_single_distortion_sweep_is_monotone(key, values, dim):
    for content in ("astronaut_0_0", "coffee_1_1"):
        ref = S.reference(content, 128)
        levels, overall = [], []
        for v in values:
            final, clean = distort(ref, {key: v}, np.random.default_rng(0))
            labels = rate(measure(ref, clean, final))
            levels.append(labels[dim])
            overall.append(labels["overall"])
        # more contrast saturates in std (clipping at 0/255): the measure reaches fair, not bad
        worst = 2 if key == "contrast_factor" and values[-1] > 1 else 1
        assert levels[0] == 4 and levels[-1] <= worst, (content, levels)
        assert all(a >= b for a, b in zip(levels, levels[1:])), (content, levels)
        assert all(a >= b for a, b in zip(overall, overall[1:])), (content, overall)


def test_clean_image_rates_excellent():
    ref = S.reference("rocket_0_2", SIZE)
    final, clean = distort(ref, {})
    assert np.array_equal(final, ref) and rate(measure(ref, clean, final)) == dict.fromkeys(NATURAL_DIMENSIONS, 4)


def test_overall_formula_is_monotone_and_bounded():
    table = {c: S.overall_from(list(c)) for c in itertools.product(range(5), repeat=5)}
    assert table[(4,) * 5] == 4 and table[(0,) * 5] == 0 and table[(4, 4, 4, 4, 0)] == 2
    for c, v in table.items():
        for i in range(5):
            if c[i] < 4:
                assert table[c[:i] + (c[i] + 1,) + c[i + 1:]] >= v


def test_readme_says_synthetic(moderate):
    text = (moderate.parent / "README.md").read_text()
    first = text.splitlines()[0]
    assert "SYNTHETIC" in first and "rule-based rater" in first and "NOT" in first
    assert "seed" in text and "sharp_ratio" in text and "overall" in text and "Label counts" in text


def test_rerun_replaces_output_but_foreign_dir_is_refused(tmp_path):
    out = tmp_path / "out"
    synth_natural(out, SynthNaturalConfig(n=30, size=SIZE), progress=False)
    synth_natural(out, SynthNaturalConfig(n=24, size=SIZE), progress=False)
    assert len(manifest_rows(out / "manifest.csv")) == 24
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(LoraIqaError, match="mine"):
        synth_natural(foreign, SynthNaturalConfig(n=24, size=SIZE), progress=False)
    assert (foreign / "thesis.tex").read_text() == "keep me"


def test_crash_leaves_no_output(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = S._save_png

    def flaky(path, x):
        calls["n"] += 1
        if calls["n"] == 12:
            raise RuntimeError("disk full")
        real(path, x)

    monkeypatch.setattr(S, "_save_png", flaky)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk full"):
        synth_natural(out, SynthNaturalConfig(n=24, size=SIZE), progress=False)
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key, value", [
    ("n", 2), ("n", 2.5), ("size", 8), ("size", True), ("seed", -1), ("splits", (0.5, 0.5, 0.0)), ("splits", "abc"),
])
def test_bad_config_names_the_key(key, value):
    with pytest.raises(LoraIqaError, match=f"'{key}'"):
        SynthNaturalConfig(**{key: value})


def test_cli_synth_natural_writes_a_manifest(tmp_path, capsys):
    from lora_iqa.cli.main import main

    out = tmp_path / "nat"
    assert main(["synth", "natural", "--out", str(out), "--n", "24", "--size", str(SIZE), "--seed", "3"]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    m = read_manifest(out / "manifest.csv", NATURAL_DIMENSIONS)
    assert len(m.items) == 24
    assert main(["synth", "natural", "--out", str(out), "--n", "1"]) == 1
    assert "'n'" in capsys.readouterr().err
