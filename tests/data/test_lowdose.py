"""Degradations of a reconstructed CT slice (lora_iqa.data.lowdose) and the real-anatomy benchmark's
metric helpers. Synthetic phantoms only: pydicom's real slices are the benchmark's, not the tests'."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from lora_iqa.data.lowdose import (
    correlated_noise,
    estimate_noise_hu,
    insert_lowdose_noise,
    noise_std_hu,
    sparse_view,
)

SPACING = 0.5  # mm/px


def _disk(n: int = 192, spacing: float = SPACING, bone: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A 40 HU water-like disk (radius 0.42 n) in -1000 HU air, with a 1000 HU bone ring and a few
    inserts when ``bone``; and the mask of a uniform region inside it (not touching any edge)."""
    y, x = np.mgrid[:n, :n] - (n - 1) / 2
    r = np.hypot(x, y)
    hu = np.where(r < 0.42 * n, 40.0, -1000.0)
    if bone:
        hu[(r > 0.36 * n) & (r < 0.42 * n)] = 1000.0
        hu[np.hypot(x - 0.15 * n, y) < 0.05 * n] = 1000.0
        hu[np.hypot(x + 0.15 * n, y + 0.1 * n) < 0.05 * n] = -800.0
    uniform = (np.hypot(x, y - 0.15 * n) < 0.1 * n)
    return hu.astype(np.float32), uniform


# --- low-dose noise insertion ----------------------------------------------------------------------


@pytest.mark.parametrize("f", [0.5, 0.25, 0.1, 0.03])
def test_added_noise_follows_the_dose_formula(f):
    hu = np.full((256, 256), 40.0, np.float32)
    region = np.zeros(hu.shape, bool)
    region[64:192, 64:192] = True  # a quarter of the image: a measurement, not the normalisation itself
    noisy = insert_lowdose_noise(hu, SPACING, f, np.random.default_rng(1), ref_noise_hu=10.0)
    want = 10.0 * np.sqrt(1 / f - 1)
    assert noise_std_hu(noisy, hu, region) == pytest.approx(want, rel=0.05)
    assert noise_std_hu(noisy, hu) == pytest.approx(want, rel=1e-4)  # the whole field: exact by construction
    assert abs(float((noisy - hu)[region].mean())) < 0.1 * want  # zero-mean: no HU shift


def test_full_dose_changes_nothing_and_outside_fov_is_kept():
    hu, _ = _disk()
    assert np.array_equal(insert_lowdose_noise(hu, SPACING, 1.0, np.random.default_rng(0)), hu)
    hu[:10] = -2000.0  # outside the reconstruction circle
    noisy = insert_lowdose_noise(hu, SPACING, 0.1, np.random.default_rng(0))
    assert np.array_equal(noisy[:10], hu[:10]) and not np.array_equal(noisy[10:], hu[10:])
    with pytest.raises(ValueError):
        insert_lowdose_noise(hu, SPACING, 0.0, np.random.default_rng(0))


def test_noise_rises_strictly_as_dose_falls():
    hu, uniform = _disk()
    doses = [1.0, 0.5, 0.25, 0.12, 0.06, 0.03]
    stds = [noise_std_hu(insert_lowdose_noise(hu, SPACING, f, np.random.default_rng(7), ref_noise_hu=8.0), hu, uniform)
            for f in doses]
    assert stds[0] == 0.0
    assert all(a < b for a, b in zip(stds, stds[1:])), stds


def test_noise_texture_is_ct_like():
    """The radially averaged NPS is ramp-like at low frequency and peaks at the requested frequency:
    fine-grained, not blotchy and not white."""
    n, spacing = 256, 0.5
    noisy = insert_lowdose_noise(np.zeros((n, n), np.float32), spacing, 0.1, np.random.default_rng(3), nps_peak=0.3)
    power = np.abs(np.fft.fft2(noisy)) ** 2
    f = np.fft.fftfreq(n, spacing)
    rho = np.hypot(f[:, None], f[None, :])
    bins = np.arange(0, rho.max(), 0.05)
    which = np.digitize(rho, bins)
    radial = np.array([power[which == i].mean() for i in range(1, len(bins))])
    centres = bins[:-1] + 0.025
    assert 0.2 <= centres[np.argmax(radial)] <= 0.4
    assert radial[0] < 0.3 * radial.max()  # little power near zero frequency (the ramp)
    assert power[rho > 0.8].mean() < 1e-6 * radial.max()  # nothing beyond the apodised cut-off (0.72 c/mm)


def test_attenuation_scaling_puts_more_noise_in_the_thick_middle():
    hu, _ = _disk(128, spacing=1.5, bone=False)
    noisy = insert_lowdose_noise(hu, 1.5, 0.1, np.random.default_rng(0), ref_noise_hu=10.0, attenuation=True)
    y, x = np.mgrid[:128, :128] - 63.5
    r = np.hypot(x, y)
    centre, rim = noise_std_hu(noisy, hu, r < 12), noise_std_hu(noisy, hu, (r > 42) & (r < 50))
    assert centre > 1.2 * rim
    assert noise_std_hu(noisy, hu, r > 60) < rim  # air outside the body: less noise still


def test_estimate_noise_finds_the_noise_of_a_uniform_slice():
    hu, _ = _disk(bone=False)
    noisy = insert_lowdose_noise(hu, SPACING, 0.2, np.random.default_rng(2), ref_noise_hu=5.0)  # adds 10 HU
    assert estimate_noise_hu(noisy, SPACING) == pytest.approx(10.0, rel=0.1)
    assert np.isnan(estimate_noise_hu(np.full((64, 64), -1000.0), SPACING))


# --- sparse view -----------------------------------------------------------------------------------


def test_sparse_view_many_views_reproduce_the_slice_and_few_views_streak():
    hu, uniform = _disk(128)
    hu = ndimage.gaussian_filter(hu, 1.0)  # band-limited, as a reconstructed slice is (its kernel)
    rec = {v: sparse_view(hu, SPACING, v) for v in (720, 30)}
    rmse = {v: float(np.sqrt(np.mean((r - hu) ** 2))) for v, r in rec.items()}
    # measured: 720 views 2.0 HU (bone ring 1000 HU, air -1000 HU); 30 views 63.5 HU
    assert rmse[720] < 5.0, rmse
    assert rmse[30] > 5 * rmse[720], rmse
    assert abs(float((rec[720] - hu).mean())) < 0.5  # no HU shift
    assert rec[30][uniform].std() > 10 * rec[720][uniform].std() + 5.0  # the streaks cross the uniform water
    with pytest.raises(ValueError):
        sparse_view(hu, SPACING, 0)


def test_sparse_view_keeps_a_crop_without_a_rim_and_outside_fov():
    """A crop whose edge cuts through tissue: no artificial rim streaks (the padding tapers it)."""
    hu = np.full((96, 96), 40.0, np.float32)
    hu[40:56, 40:56] = 300.0
    rec = sparse_view(hu, SPACING, 360)
    assert float(np.sqrt(np.mean((rec - hu) ** 2))) < 25.0
    assert np.abs(rec - hu)[:8].mean() < 15.0  # the cut edge itself
    hu2, _ = _disk(96)
    hu2[hu2 == -1000.0] = -2000.0  # padding outside the scanner's circle
    assert np.array_equal(sparse_view(hu2, SPACING, 60)[hu2 == -2000.0], hu2[hu2 == -2000.0])


# --- correlated noise ------------------------------------------------------------------------------


def test_correlated_noise_std_and_correlation_length():
    n, spacing, corr = 256, 0.5, 2.0
    noise = correlated_noise((n, n), spacing, 25.0, corr, np.random.default_rng(4))
    assert noise.dtype == np.float32 and noise.shape == (n, n)
    assert float(noise.std()) == pytest.approx(25.0, rel=1e-4)
    spectrum = np.abs(np.fft.fft2(noise.astype(np.float64))) ** 2
    acf = np.fft.ifft2(spectrum).real  # the (circular) autocovariance
    acf /= acf[0, 0]
    lag = int(round(corr / spacing))
    at_corr = (acf[0, lag] + acf[lag, 0]) / 2
    assert 0.45 < at_corr < 0.75, at_corr  # exp(-1/2) = 0.61
    far = (acf[0, 4 * lag] + acf[4 * lag, 0]) / 2
    assert abs(far) < 0.1, far


def test_everything_is_deterministic_by_rng():
    hu, _ = _disk(96)

    def run(seed):
        rng = np.random.default_rng(seed)
        a = insert_lowdose_noise(sparse_view(hu, SPACING, 60, rng), SPACING, 0.25, rng, ref_noise_hu=10.0)
        return a, correlated_noise(hu.shape, SPACING, 10.0, 1.0, rng)

    (a1, c1), (a2, c2), (a3, c3) = run(0), run(0), run(1)
    assert np.array_equal(a1, a2) and np.array_equal(c1, c2)
    assert not np.array_equal(a1, a3) and not np.array_equal(c1, c3)


# --- the benchmark's metric helpers ----------------------------------------------------------------


def _benchmark_module():
    """benchmarks/scripts/real_ct_anatomy.py, imported by path (its model imports are inside functions)."""
    if "real_ct_anatomy" not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "benchmarks" / "scripts" / "real_ct_anatomy.py"
        spec = importlib.util.spec_from_file_location("real_ct_anatomy", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["real_ct_anatomy"] = mod  # dataclasses look their module up while it is executed
        spec.loader.exec_module(mod)
    return sys.modules["real_ct_anatomy"]


def test_dose_order_srcc():
    bench = _benchmark_module()
    doses = [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert bench.dose_order_srcc([1.0, 0.5, 0.25, 0.12], [3.9, 3.0, 2.0, 2.1]) == pytest.approx(0.8)
    # repeats tie in dose: a perfect ordering of the levels is 0.956 (ties), the reverse -0.956
    assert bench.dose_order_srcc(doses, [3.9, 3.8, 3.0, 3.1, 2.0, 1.5]) == pytest.approx(0.9562, abs=1e-4)
    assert bench.dose_order_srcc(doses, [1.0, 1.1, 2.0, 2.2, 3.0, 3.5]) == pytest.approx(-0.9562, abs=1e-4)
    assert bench.dose_order_srcc(doses, [2.0] * 6) == 0.0  # constant predictions order nothing
    # the correlated-noise series is ranked by -amplitude
    assert bench.dose_order_srcc([-0.0, -10.0, -20.0, -40.0], [3.0, 2.5, 2.0, 1.0]) == pytest.approx(1.0)


def test_pairs_and_pair_accuracy():
    bench = _benchmark_module()
    doses = (1.0, 0.5, 0.25, 0.12)
    pairs = bench.dose_pairs(doses, min_gap=2)
    assert pairs == [(0, 2), (0, 3), (1, 3)]  # higher dose first, >= 2 levels apart
    # order (a, b): right if 0 (first better); order (b, a): right if 1 (second better); "similar" 0.5 never
    ab = [0.0, 0.0, 0.5, 1.0, 0.0]
    ba = [1.0, 0.0, 1.0, 1.0, 0.5]
    assert bench.pair_accuracy(ab, ba) == pytest.approx(1 / 5)
    assert bench.pair_accuracy([0.0, 0.0], [1.0, 1.0]) == 1.0
    with pytest.raises(ValueError):
        bench.pair_accuracy([0.0], [])
