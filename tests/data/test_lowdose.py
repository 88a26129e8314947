"""Degradations of a reconstructed CT slice (lora_iqa.data.lowdose) and the real-anatomy benchmark's
metric helpers. Synthetic phantoms only: pydicom's real slices are the benchmark's, not the tests'."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from numpy.random import default_rng
from scipy import ndimage

from lora_iqa.data.lowdose import correlated_noise, estimate_noise_hu, insert_lowdose_noise, noise_std_hu, sparse_view

SPACING = 0.5  # mm/px


def _disk(n: int = 192, bone: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A 40 HU disk in -1000 HU air (with a 1000 HU ring, a bone and an air insert), and a uniform region's mask."""
    y, x = np.mgrid[:n, :n] - (n - 1) / 2
    r = np.hypot(x, y)
    hu = np.where(r < 0.42 * n, 40.0, -1000.0)
    if bone:
        hu[(r > 0.36 * n) & (r < 0.42 * n)] = 1000.0
        hu[np.hypot(x - 0.15 * n, y) < 0.05 * n] = 1000.0
        hu[np.hypot(x + 0.15 * n, y + 0.1 * n) < 0.05 * n] = -800.0
    return hu.astype(np.float32), np.hypot(x, y - 0.15 * n) < 0.1 * n


@pytest.mark.parametrize("f", [0.5, 0.25, 0.1, 0.03])
def test_added_noise_follows_the_dose_formula(f):
    hu = np.full((256, 256), 40.0, np.float32)
    region = np.pad(np.ones((128, 128), bool), 64)  # a quarter of the image: a measurement, not the normalisation itself
    noisy = insert_lowdose_noise(hu, SPACING, f, default_rng(1), ref_noise_hu=10.0)
    want = 10.0 * np.sqrt(1 / f - 1)
    assert noise_std_hu(noisy, hu, region) == pytest.approx(want, rel=0.05)
    assert noise_std_hu(noisy, hu) == pytest.approx(want, rel=1e-4)  # the whole field: exact by construction
    assert abs(float((noisy - hu)[region].mean())) < 0.1 * want  # zero-mean: no HU shift


def test_full_dose_changes_nothing_outside_fov_is_kept_and_noise_rises_as_dose_falls():
    hu, uniform = _disk()
    stds = [noise_std_hu(insert_lowdose_noise(hu, SPACING, f, default_rng(7), ref_noise_hu=8.0), hu, uniform)
            for f in [1.0, 0.5, 0.25, 0.12, 0.06, 0.03]]
    assert stds[0] == 0.0 and all(a < b for a, b in zip(stds, stds[1:])), stds
    assert np.array_equal(insert_lowdose_noise(hu, SPACING, 1.0, default_rng(0)), hu)
    hu[:10] = -2000.0  # outside the reconstruction circle
    noisy = insert_lowdose_noise(hu, SPACING, 0.1, default_rng(0))
    assert np.array_equal(noisy[:10], hu[:10]) and not np.array_equal(noisy[10:], hu[10:])
    with pytest.raises(ValueError):
        insert_lowdose_noise(hu, SPACING, 0.0, default_rng(0))


def test_noise_texture_is_ct_like():
    """The radially averaged NPS is ramp-like at low frequency and peaks at the requested frequency."""
    noisy = insert_lowdose_noise(np.zeros((256, 256), np.float32), SPACING, 0.1, default_rng(3), nps_peak=0.3)
    power = np.abs(np.fft.fft2(noisy)) ** 2
    rho = np.hypot.outer(*[np.fft.fftfreq(256, SPACING)] * 2)
    bins = np.arange(0, rho.max(), 0.05)
    radial = np.array([power[np.digitize(rho, bins) == i].mean() for i in range(1, len(bins))])
    assert 0.2 <= bins[np.argmax(radial)] + 0.025 <= 0.4
    assert radial[0] < 0.3 * radial.max()  # little power near zero frequency (the ramp)
    assert power[rho > 0.8].mean() < 1e-6 * radial.max()  # nothing beyond the apodised cut-off (0.72 c/mm)


def test_attenuation_scaling_puts_more_noise_in_the_thick_middle():
    hu, _ = _disk(128, bone=False)
    noisy = insert_lowdose_noise(hu, 1.5, 0.1, default_rng(0), ref_noise_hu=10.0, attenuation=True)
    r = np.hypot(*(np.mgrid[:128, :128] - 63.5))
    rim = noise_std_hu(noisy, hu, (r > 42) & (r < 50))
    assert noise_std_hu(noisy, hu, r < 12) > 1.2 * rim
    assert noise_std_hu(noisy, hu, r > 60) < rim  # air outside the body: less noise still


def test_estimate_noise_finds_the_noise_of_a_uniform_slice():
    noisy = insert_lowdose_noise(_disk(bone=False)[0], SPACING, 0.2, default_rng(2), ref_noise_hu=5.0)  # adds 10 HU
    assert estimate_noise_hu(noisy, SPACING) == pytest.approx(10.0, rel=0.1)
    assert np.isnan(estimate_noise_hu(np.full((64, 64), -1000.0), SPACING))


def test_sparse_view_many_views_reproduce_the_slice_and_few_views_streak():
    hu, uniform = _disk(128)
    hu = ndimage.gaussian_filter(hu, 1.0)  # band-limited, as a reconstructed slice is (its kernel)
    rec = {v: sparse_view(hu, SPACING, v) for v in (720, 30)}
    rmse = {v: float(np.sqrt(np.mean((r - hu) ** 2))) for v, r in rec.items()}
    assert rmse[720] < 5.0 and rmse[30] > 5 * rmse[720], rmse  # measured: 2.0 and 63.5 HU
    assert abs(float((rec[720] - hu).mean())) < 0.5  # no HU shift
    assert rec[30][uniform].std() > 10 * rec[720][uniform].std() + 5.0  # the streaks cross the uniform water
    with pytest.raises(ValueError):
        sparse_view(hu, SPACING, 0)


def test_sparse_view_keeps_a_crop_without_a_rim_and_outside_fov():
    hu = np.full((96, 96), 40.0, np.float32)  # a crop whose edge cuts through tissue: the padding tapers it
    hu[40:56, 40:56] = 300.0
    rec = sparse_view(hu, SPACING, 360)
    assert float(np.sqrt(np.mean((rec - hu) ** 2))) < 25.0
    assert np.abs(rec - hu)[:8].mean() < 15.0  # the cut edge itself
    hu2, _ = _disk(96)
    hu2[hu2 == -1000.0] = -2000.0  # padding outside the scanner's circle
    assert np.array_equal(sparse_view(hu2, SPACING, 60)[hu2 == -2000.0], hu2[hu2 == -2000.0])


def test_correlated_noise_std_and_correlation_length():
    noise = correlated_noise((256, 256), SPACING, 25.0, 2.0, default_rng(4))
    assert noise.dtype == np.float32 and noise.shape == (256, 256)
    assert float(noise.std()) == pytest.approx(25.0, rel=1e-4)
    acf = np.fft.ifft2(np.abs(np.fft.fft2(noise.astype(np.float64))) ** 2).real  # the (circular) autocovariance
    acf /= acf[0, 0]
    assert 0.45 < (acf[0, 4] + acf[4, 0]) / 2 < 0.75  # at 2 mm: exp(-1/2) = 0.61
    assert abs((acf[0, 16] + acf[16, 0]) / 2) < 0.1


def test_everything_is_deterministic_by_rng():
    hu, gens = _disk(96)[0], [default_rng(seed) for seed in (0, 0, 1)]
    a1, a2, a3 = (insert_lowdose_noise(sparse_view(hu, SPACING, 60, g), SPACING, 0.25, g) for g in gens)
    c1, c2, c3 = (correlated_noise(hu.shape, SPACING, 10.0, 1.0, g) for g in gens)  # each generator's next draws
    assert np.array_equal(a1, a2) and np.array_equal(c1, c2)
    assert not np.array_equal(a1, a3) and not np.array_equal(c1, c3)


@pytest.fixture(scope="module")
def bench():
    """benchmarks/scripts/real_ct_anatomy.py, imported by path (its model imports are inside functions)."""
    spec = importlib.util.spec_from_file_location(
        "real_ct_anatomy", Path(__file__).resolve().parents[2] / "benchmarks" / "scripts" / "real_ct_anatomy.py")
    spec.loader.exec_module(mod := importlib.util.module_from_spec(spec))
    return mod


TIED = [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]  # repeats tie in dose: a perfect ordering is 0.956, the reverse -0.956


@pytest.mark.parametrize("levels, scores, want", [
    ([1.0, 0.5, 0.25, 0.12], [3.9, 3.0, 2.0, 2.1], 0.8), (TIED, [3.9, 3.8, 3.0, 3.1, 2.0, 1.5], 0.9562),
    (TIED, [1.0, 1.1, 2.0, 2.2, 3.0, 3.5], -0.9562), (TIED, [2.0] * 6, 0.0),  # constant predictions order nothing
    ([-0.0, -10.0, -20.0, -40.0], [3.0, 2.5, 2.0, 1.0], 1.0),  # the correlated-noise series: by -amplitude
])
def test_dose_order_srcc(bench, levels, scores, want):
    assert bench.dose_order_srcc(levels, scores) == pytest.approx(want, abs=1e-4)


def test_pairs_and_pair_accuracy(bench):
    assert bench.dose_pairs((1.0, 0.5, 0.25, 0.12), min_gap=2) == [(0, 2), (0, 3), (1, 3)]  # higher dose first
    # order (a, b): right if 0 (first better); order (b, a): right if 1 (second better); "similar" 0.5 never
    assert bench.pair_accuracy([0.0, 0.0, 0.5, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0, 0.5]) == pytest.approx(1 / 5)
    assert bench.pair_accuracy([0.0, 0.0], [1.0, 1.0]) == 1.0
    with pytest.raises(ValueError):
        bench.pair_accuracy([0.0], [])
