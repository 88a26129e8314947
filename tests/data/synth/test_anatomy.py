"""Tests for lora_iqa.data.synth.anatomy: SYNTHETIC field-filling CT slices (HU maps) with lesions."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from lora_iqa.data.synth.anatomy import REGIONS, anatomy_slice
from lora_iqa.data.synth.anatomy.abdomen import abdomen
from lora_iqa.data.synth.anatomy.field import WIDTH
from lora_iqa.data.synth.anatomy.head import head
from lora_iqa.data.synth.anatomy.trunk import BRAIN, SPLEEN
from lora_iqa.data.synth.ct_physics import _circle
from lora_iqa.errors import LoraIqaError

SIZE, PX = 256, 0.7  # a 179 mm field


def _slice(seed, region, size=SIZE, px=PX):
    return anatomy_slice(np.random.default_rng(seed), size, px, region)


def _zoomed(region, want=2, size=SIZE, px=PX):
    """The first ``want`` zoomed slices of a region (seeds scanned in order: deterministic)."""
    out = []
    for seed in range(200):
        hu, les, info = _slice(seed, region, size, px)
        if info["zoom"] and info["roi"] != "center":
            out.append((hu, les, info))
            if len(out) == want:
                break
    assert len(out) == want, f"no zoomed {region} slice in 200 seeds"
    return out


@pytest.mark.parametrize("region", REGIONS)
def test_shapes_dtypes_and_info(region):
    hu, les, info = _slice(1, region, size=160, px=0.9)
    assert hu.shape == les.shape == (160, 160)
    assert hu.dtype == les.dtype == np.float64
    assert np.isfinite(hu).all() and np.isfinite(les).all()
    assert hu.min() >= -1000.0 and les.min() >= -1.0 and les.max() <= 1.0
    assert json.loads(json.dumps(info)) == info
    assert info["region"] == region
    for key in ("body_width_mm", "zoom", "center_mm", "fov_mm", "roi", "level", "fill", "body_fraction", "lesions"):
        assert key in info
    assert info["fov_mm"] == pytest.approx(160 * 0.9)
    lo, hi = WIDTH[region]
    assert lo - 1e-6 <= info["body_width_mm"] <= hi + 1e-6


def test_deterministic_and_seed_dependent():
    for region in (*REGIONS, None):
        a = _slice(11, region)
        b = _slice(11, region)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert a[2] == b[2]
    assert not np.array_equal(_slice(11, "abdomen")[0], _slice(12, "abdomen")[0])


@pytest.mark.parametrize("size,px", [(128, 1.2), (200, 0.4), (257, 0.7)])
def test_outside_the_circle_is_air_and_no_lesion(size, px):
    circ = _circle(size)
    for region in REGIONS:
        hu, les, _ = _slice(3, region, size, px)
        assert np.all(hu[~circ] == -1000.0)
        assert np.all(les[~circ] == 0.0)


def _fractions(hu):
    v = hu[_circle(hu.shape[0])]
    return {
        "air": np.mean(v < -950), "lung": np.mean((v > -950) & (v < -600)), "fat": np.mean((v > -150) & (v < -50)),
        "soft": np.mean((v > -10) & (v < 110)), "bone": np.mean(v > 300), "dense": np.mean(v > 700),
        "brain": np.mean((v > 20) & (v < 50)),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_region_tissues(seed):
    f = _fractions(_slice(seed, "abdomen")[0])
    assert f["fat"] > 0.03 and f["soft"] > 0.3 and 0.005 < f["bone"] < 0.3
    f = _fractions(_slice(seed, "chest")[0])
    assert f["lung"] > 0.1 and f["soft"] > 0.05 and f["bone"] > 0.005
    f = _fractions(_slice(seed, "head")[0])
    assert f["dense"] > 0.02 and f["brain"] > 0.35
    f = _fractions(_slice(seed, "pelvis")[0])
    assert f["fat"] > 0.03 and f["soft"] > 0.25 and f["bone"] > 0.01


def test_head_has_a_skull_ring_around_the_brain():
    hu = _slice(5, "head")[0]
    brain = ndimage.binary_opening((hu > 20) & (hu < 50), iterations=2)
    lab, n = ndimage.label(brain)
    core = lab == np.argmax(np.bincount(lab.ravel())[1:]) + 1
    ring = ndimage.binary_dilation(core, iterations=int(15 / PX)) & ~core
    assert np.mean(hu[ring] > 700) > 0.1  # skull around the brain
    grey, white = hu[core & (hu > 35)], hu[core & (hu < 34)]
    assert len(grey) > 100 and len(white) > 100  # grey and white matter both present


@pytest.mark.parametrize("region", ["abdomen", "head", "pelvis"])
def test_body_fills_the_field(region):
    for seed in range(4):
        _, _, info = _slice(seed, region)
        assert info["fill"] > 0.6, info


@pytest.mark.parametrize("region", ["abdomen", "pelvis", "chest"])
def test_zoomed_fields_are_inside_the_body(region):
    for hu, _, info in _zoomed(region):
        assert info["body_fraction"] >= 0.95
        if region != "chest":  # (a lung field is tissue-free by nature)
            assert info["fill"] >= 0.9  # bowel gas is the rest
            assert np.mean(hu[_circle(SIZE)] > -950) >= 0.95


def test_body_width_matches_a_large_field():
    widths = [_slice(s, "abdomen", 512, 0.7)[2]["body_width_mm"] for s in range(3)]
    assert all(358.4 / 1.13 <= w <= 358.4 for w in widths)


def test_texture_inside_homogeneous_organs():
    stds = []
    for seed in range(8):
        cv, *_ = abdomen(np.random.default_rng(seed), SIZE, PX, False)
        m = ndimage.binary_erosion(cv.lab == SPLEEN, iterations=3)
        if m.sum() > 200:
            stds.append(cv.hu[m].std())
        cv, *_ = head(np.random.default_rng(seed), SIZE, PX, False)
        m = ndimage.binary_erosion(cv.lab == BRAIN, iterations=3)
        stds.append(cv.hu[m].std())
    assert len(stds) > 8
    assert all(2.0 < s < 25.0 for s in stds), stds


@pytest.mark.parametrize("region", REGIONS)
def test_lesions_inside_the_body(region):
    n_total = 0
    for seed in range(4):
        hu, les, info = _slice(seed, region)
        on = les != 0
        assert np.all(hu[on] > (-960 if region == "chest" else -500))  # inside organs (chest: maybe lung), never in air
        assert len(info["lesions"]) <= 4
        for lesion in info["lesions"]:
            assert 3.0 <= lesion["diameter_mm"] <= 15.0 and lesion["sign"] in (-1, 1)
        n_total += len(info["lesions"])
        if info["lesions"]:
            assert np.abs(les).max() == pytest.approx(1.0)
            _, n = ndimage.label(on)
            assert n == len(info["lesions"])
            signs = {int(np.sign(les[on & (np.abs(les) > 0.99)]).min()), int(np.sign(les[on & (np.abs(les) > 0.99)]).max())}
            assert signs <= {-1, 1}
    assert n_total >= 4


def test_bad_region_names_the_valid_ones():
    with pytest.raises(LoraIqaError, match="abdomen, chest, head, pelvis"):
        anatomy_slice(np.random.default_rng(0), 128, 0.7, "knee")
