"""Tests for lora_iqa.views: crops, the evaluation grid and its weights, training windows, resampling."""

from __future__ import annotations

import numpy as np
import pytest

from lora_iqa.config import load_config
from lora_iqa.errors import LoraIqaError
from lora_iqa.views import RESIZE, View, crop, fit, make_view, pooled_scores, resample, weight


def _ramp(h: int, w: int) -> np.ndarray:
    """A [0.1, 0.9] image whose every pixel value says where it is."""
    return (0.1 + 0.8 * np.arange(h * w, dtype=np.float32).reshape(h, w) / (h * w)).astype(np.float32)


def test_grid_covers_corners_and_centre():
    v = View("crop", None, 3)
    assert v.positions() == [(a, b) for a in (0.0, 0.5, 1.0) for b in (0.0, 0.5, 1.0)]
    img = _ramp(100, 60)
    views, w = v.evaluation_views((img,), 32)
    assert len(views) == 9 and all(x[0].shape == (32, 32) for x in views)
    np.testing.assert_array_equal(views[0][0], img[:32, :32])
    np.testing.assert_array_equal(views[-1][0], img[-32:, -32:])
    np.testing.assert_array_equal(views[4][0], img[34:66, 14:46])
    assert w.sum() == pytest.approx(1.0) and np.allclose(w, 1 / 9)  # nothing clipped: equal weights


def test_windows_of_air_get_no_weight():
    img = np.zeros((96, 96), np.float32)  # air, clipped to black by the display window
    img[48:, 48:] = 0.5  # tissue in the bottom-right quadrant only
    _, w = View("crop", None, 2).evaluation_views((img,), 48)
    np.testing.assert_allclose(w, [0, 0, 0, 1])
    _, w = View("crop", None, 2).evaluation_views((np.zeros((96, 96), np.float32),), 48)
    np.testing.assert_allclose(w, [0.25] * 4)  # all air: uniform, never NaN


def test_same_window_in_every_image_of_a_sample():
    a, b = _ramp(80, 80), _ramp(80, 80)[::-1].copy()
    shown = View("crop", None, 3).training_view((a, b), 32, np.random.default_rng(5))
    again = View("crop", None, 3).training_view((a, b), 32, np.random.default_rng(5))
    np.testing.assert_array_equal(shown[0], again[0])
    ys, xs = np.nonzero(np.isin(a, shown[0]))
    y0, x0 = ys.min(), xs.min()
    np.testing.assert_array_equal(shown[1], b[y0:y0 + 32, x0:x0 + 32])


def test_training_prefers_windows_with_content():
    img = np.zeros((200, 200), np.float32)
    img[:, 100:] = 0.5
    picks = [View().training_view((img,), 32, np.random.default_rng(s))[0] for s in range(40)]
    assert np.mean([weight((p,)) for p in picks]) > 0.85  # 4 tries: P(all on air) is 1/16


def test_small_images_are_enlarged_and_resize_keeps_whole():
    small = _ramp(20, 40)
    assert fit(small, 32).shape == (32, 64)
    assert crop(small, 32, (0.5, 0.5)).shape == (32, 32)
    views, w = RESIZE.evaluation_views((small,), 32)
    assert len(views) == 1 and views[0][0].shape == (20, 40) and w.tolist() == [1.0]


def test_resample_scales_by_spacing_and_keeps_unknown():
    img = _ramp(128, 128)
    assert resample(img, 0.35, 0.7).shape == (64, 64)
    assert resample(img, 1.4, 0.7).shape == (256, 256)
    assert resample(img, None, 0.7) is img and resample(img, 0.7, None) is img
    assert resample(img, 0.701, 0.7) is img
    noise = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    assert float(np.std(resample(noise, 0.35, 0.7))) < 0.6  # antialiased: averaging lowers white noise


def test_pooled_scores_weight_the_windows():
    img = np.zeros((64, 64), np.float32)
    img[:, 32:] = 0.5  # the right half is tissue

    def score(crops):
        return [{"overall": float(c.mean() > 0)} for c in crops]

    (r,) = pooled_scores(score, [img], View("crop", None, 2), 32)
    assert r["overall"] == pytest.approx(1.0)  # the air windows carry no weight


def test_auto_by_domain_and_config_round_trip():
    assert make_view("auto", 0.7, 3, "ct").mode == "crop"
    assert make_view("auto", 0.7, 3, "natural").mode == "resize"
    cfg = load_config(None, ["data.view=crop", "data.spacing=0.5", "data.grid=2"])
    assert cfg.data.make_view() == View("crop", 0.5, 2)


@pytest.mark.parametrize("key,value", [("data.view", "zoom"), ("data.spacing", "0"), ("data.grid", "0"),
                                       ("data.grid", "9")])
def test_bad_view_settings_name_the_key(key, value):
    with pytest.raises(LoraIqaError, match=key.replace(".", r"\.")):
        load_config(None, [f"{key}={value}"])
