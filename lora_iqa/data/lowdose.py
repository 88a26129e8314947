"""Degradations of a *real, reconstructed* CT slice, for evaluation benchmarks.

Written independently of the training simulator (:mod:`lora_iqa.data.synth`), sharing none of its code, so a model
that learned the simulator's artefacts gains nothing on a benchmark built with these. Both slice degradations take
HU of known pixel spacing, return float32 HU of the same shape and leave pixels of ``hu <= -1500`` (outside the
scanner's reconstruction circle) unchanged; every random draw comes from the ``rng`` passed in. Compose them:
``insert_lowdose_noise(sparse_view(hu, ...), ...)``.

- :func:`insert_lowdose_noise`: noise variance is inversely proportional to dose, so a slice of noise std ``s_ref``
  at dose fraction ``f`` gets added noise of std ``s_ref * sqrt(1 / f - 1)``: white noise filtered by the square
  root of a CT noise power spectrum, FBP's ramp times a Hann window, ``NPS(rho) ∝ rho cos^2(pi rho / (2 rho_c))``
  below ``rho_c`` (cycles/mm), peaking at ``nps_peak``, then scaled to exactly that std over the image. With
  ``attenuation=True`` it is further scaled by ``sqrt(mean_theta exp(p_theta(x)))`` (``p``: the line integral of
  attenuation along the ray through ``x``, water 0.02/mm), median 1 over the body (HU > -300): more noise in the
  thick middle and behind bone. Off by default (a cropped slice lacks the body's full path lengths).
- :func:`sparse_view`: ``max(hu + 1000, 0)``, zero-padded to fit the rotation circle (a cosine taper where the
  image's edge cuts through the body, so a crop gains no rim), projected in parallel beam over ``views`` angles in
  [0, 180) (cubic-spline rotation, column sums) and reconstructed by Ram-Lak filtered back-projection. Many views
  reproduce the slice (RMSE ~5 HU on ``CT_small.dcm`` at 720 views); few leave the streaks of angular
  undersampling. The geometry is in pixels: ``spacing_mm`` does not enter.
- :func:`correlated_noise`: generic Gaussian noise of std exactly ``sigma_hu`` and autocorrelation
  ``exp(-d**2 / (2 corr_mm**2))``.
- :func:`noise_std_hu` measures ``std(noisy - clean)`` in a mask; :func:`estimate_noise_hu` the noise a slice
  already has (the global noise index of Christianson et al., Radiology 2015), the usual ``ref_noise_hu``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

WATER_MU_PER_MM = 0.02  # linear attenuation of water at ~70 keV (1/mm)
OUTSIDE_FOV_HU = -1500.0  # at or below: outside the scanner's reconstruction circle, left untouched
_HANN_PEAK = 0.41577  # argmax over [0, 1] of x * cos(pi x / 2)**2


def insert_lowdose_noise(hu: np.ndarray, spacing_mm: float, dose_fraction: float, rng: np.random.Generator,
                         ref_noise_hu: float = 10.0, nps_peak: float = 0.3, attenuation: bool = False) -> np.ndarray:
    """``hu`` as if scanned at ``dose_fraction`` of its dose, given the noise std it has, ``ref_noise_hu`` (e.g.
    :func:`estimate_noise_hu`); ``dose_fraction`` 1 returns an unchanged copy. See the module docstring."""
    hu = np.asarray(hu, dtype=np.float32)
    if not 0 < dose_fraction <= 1:
        raise ValueError(f"dose_fraction must be in (0, 1], got {dose_fraction}")
    _check_spacing(spacing_mm)
    sigma = float(ref_noise_hu) * np.sqrt(1.0 / dose_fraction - 1.0)
    if sigma == 0:
        return hu.copy()
    rho = _radial_frequency(hu.shape, spacing_mm)
    rho_c = nps_peak / _HANN_PEAK
    nps = np.where(rho < rho_c, rho * np.cos(np.pi * rho / (2 * rho_c)) ** 2, 0.0)
    noise = _filtered_white(hu.shape, np.sqrt(nps), rng) * sigma
    if attenuation:
        noise *= _attenuation_factor(hu, spacing_mm)
    return np.where(hu > OUTSIDE_FOV_HU, hu + noise, hu).astype(np.float32)


def sparse_view(hu: np.ndarray, spacing_mm: float, views: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """``hu`` re-projected over ``views`` angles and reconstructed by filtered back-projection. Deterministic:
    ``rng`` is accepted for a uniform signature and not used."""
    hu = np.asarray(hu, dtype=np.float32)
    _check_spacing(spacing_mm)
    if views < 1:
        raise ValueError(f"views must be >= 1, got {views}")
    padded, ((r0, r1), (c0, c1)) = _padded_attenuation(hu)
    angles = np.arange(views) * (180.0 / views)
    rec = backproject(_filter_ramp(project(padded, angles)), angles, padded.shape[0]) * (np.pi / views)
    out = rec[r0:r1, c0:c1] - 1000.0
    return np.where(hu > OUTSIDE_FOV_HU, out, hu).astype(np.float32)


def correlated_noise(shape: tuple[int, int], spacing_mm: float, sigma_hu: float, corr_mm: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Float32 noise of std exactly ``sigma_hu`` and autocorrelation ``exp(-d**2 / (2 corr_mm**2))`` at ``d`` mm:
    white noise blurred (periodically) by a Gaussian of std ``corr_mm / sqrt(2)``, normalised by its own std."""
    _check_spacing(spacing_mm)
    if corr_mm < 0 or sigma_hu < 0:
        raise ValueError(f"corr_mm and sigma_hu must be >= 0, got {corr_mm}, {sigma_hu}")
    rho = _radial_frequency(shape, spacing_mm)
    b = corr_mm / np.sqrt(2.0)  # blur std (mm); transfer function exp(-2 pi^2 b^2 rho^2)
    return (_filtered_white(shape, np.exp(-2 * np.pi ** 2 * b ** 2 * rho ** 2), rng) * sigma_hu).astype(np.float32)


def noise_std_hu(noisy: np.ndarray, clean: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Standard deviation (HU) of ``noisy - clean`` over ``mask`` (all pixels if None)."""
    d = np.asarray(noisy, dtype=np.float64) - np.asarray(clean, dtype=np.float64)
    return float(d[mask].std() if mask is not None else d.std())


def estimate_noise_hu(hu: np.ndarray, spacing_mm: float, roi_mm: float = 6.0,
                      tissue: tuple[float, float] = (0.0, 100.0)) -> float:
    """The mode of the standard deviations in ``roi_mm`` squares centred on soft tissue (local mean in ``tissue``
    HU): anatomy only adds to a local std, so its most common value is the noise. NaN without tissue."""
    hu = np.asarray(hu, dtype=np.float64)
    _check_spacing(spacing_mm)
    size = max(3, int(round(roi_mm / spacing_mm)) | 1)
    mean = ndimage.uniform_filter(hu, size)
    std = np.sqrt(np.maximum(ndimage.uniform_filter(hu * hu, size) - mean ** 2, 0.0))
    half = size // 2
    inner = np.zeros(hu.shape, dtype=bool)
    inner[half:-half or None, half:-half or None] = True
    sel = std[inner & (mean >= tissue[0]) & (mean <= tissue[1])]
    if sel.size == 0:
        return float("nan")
    hist, edges = np.histogram(sel, bins=np.arange(0.0, min(sel.max(), 200.0) + 1.0, 0.5))
    hist = ndimage.uniform_filter1d(hist.astype(np.float64), 5)
    return float(edges[np.argmax(hist)] + 0.25)


def project(img: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Parallel-beam projections of a square image, one row per angle: the image rotated (cubic spline, zero
    outside) and summed over rows; bin ``j`` sees the ray at ``s = j - (n - 1) / 2 = dx cos(theta) + dy sin(theta)``.
    Summed over columns, the same rotation gives the projection at ``theta + 90``: one rotation for the two."""
    coeffs = ndimage.spline_filter(np.asarray(img, dtype=np.float64), order=3)  # once, not per angle
    angles = [float(a) for a in angles_deg]
    out = np.empty((len(angles), coeffs.shape[1]))
    todo = {round(a % 360.0, 9): i for i, a in reversed(list(enumerate(angles)))}
    done = np.zeros(len(angles), dtype=bool)
    for i, a in enumerate(angles):
        if done[i]:
            continue
        rot = ndimage.rotate(coeffs, a, reshape=False, order=3, prefilter=False)
        out[i], done[i] = rot.sum(axis=0), True
        j = todo.get(round((a + 90.0) % 360.0, 9))
        if j is not None and not done[j]:
            out[j], done[j] = rot.sum(axis=1), True
    return out


def backproject(sino: np.ndarray, angles_deg: np.ndarray, n: int, upsample: int = 4) -> np.ndarray:
    """The adjoint of :func:`project` up to interpolation, on an ``n`` x ``n`` grid: each projection resampled
    ``upsample`` times finer (cubic spline), then read linearly along its rays (nearly a cubic read)."""
    c = (n - 1) / 2.0
    d = np.arange(n, dtype=np.float64) - c
    fine = np.arange((sino.shape[1] - 1) * upsample + 1) / upsample
    out = np.zeros((n, n))
    for row, a in zip(sino, np.deg2rad(angles_deg)):
        row = ndimage.map_coordinates(row, [fine], order=3, mode="constant")
        s = d[None, :] * np.cos(a) + d[:, None] * np.sin(a) + c
        out += np.interp(s.ravel(), fine, row, left=0.0, right=0.0).reshape(n, n)
    return out


def _filter_ramp(sino: np.ndarray) -> np.ndarray:
    """Each projection convolved with the band-limited Ram-Lak kernel (pixel units)."""
    n = sino.shape[1]
    size = int(2 ** np.ceil(np.log2(2 * n)))
    k = np.arange(size)
    k = np.where(k <= size // 2, k, k - size)  # signed offsets, circular
    h = np.zeros(size)
    h[k == 0] = 0.25
    odd = k % 2 == 1
    h[odd] = -1.0 / (np.pi * k[odd]) ** 2
    ramp = np.fft.rfft(h).real
    return np.fft.irfft(np.fft.rfft(sino, size, axis=1) * ramp, size, axis=1)[:, :n]


def _padded_attenuation(hu: np.ndarray) -> tuple[np.ndarray, tuple[tuple[int, int], tuple[int, int]]]:
    """``max(hu + 1000, 0)`` on a square grid whose rotation circle holds its support, and where ``hu`` sits in it.
    Tissue at the image edge (a crop) is continued by reflection under a cosine taper to air over ~1/8 of the image."""
    a = np.maximum(hu.astype(np.float64) + 1000.0, 0.0)
    h, w = a.shape
    taper = max(4, int(round(max(h, w) / 8)))
    edge = max(a[0].max(), a[-1].max(), a[:, 0].max(), a[:, -1].max())
    pad = taper if edge > 100.0 else 0  # > -900 HU on an edge: the body is cut by the crop
    if pad:
        a = np.pad(a, pad, mode="reflect")
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(pad) + 0.5) / pad)  # 0 -> 1 towards the image
        win_r, win_c = (np.concatenate([ramp, np.ones(k), ramp[::-1]]) for k in (h, w))
        a *= win_r[:, None] * win_c[None, :]
    # the smallest square, centred, whose inscribed circle holds every non-air pixel and every pixel
    # to be returned (outside that circle filtered back-projection sees only some of the views)
    need = a > 1.0
    need[pad:pad + h, pad:pad + w] |= hu > OUTSIDE_FOV_HU
    rows, cols = np.nonzero(need)
    hh, ww = a.shape
    r = np.sqrt(((rows - (hh - 1) / 2) ** 2 + (cols - (ww - 1) / 2) ** 2).max()) if rows.size else 0.0
    n = max(hh, ww, int(np.ceil(2 * r + 3)))
    n += (n - hh) % 2  # keep the image centred exactly (same parity both ways, for square inputs)
    top, left = (n - hh) // 2, (n - ww) // 2
    big = np.zeros((n, n))
    big[top:top + hh, left:left + ww] = a
    return big, ((top + pad, top + pad + h), (left + pad, left + pad + w))


def _attenuation_factor(hu: np.ndarray, spacing_mm: float, views: int = 36) -> np.ndarray:
    """``sqrt(mean_theta exp(p_theta(x)))``, median 1 over the body (HU > -300)."""
    padded, ((r0, r1), (c0, c1)) = _padded_attenuation(hu)
    mu_pixel = padded * (WATER_MU_PER_MM / 1000.0) * spacing_mm  # attenuation per pixel length
    angles = np.arange(views) * (180.0 / views)
    g = np.sqrt(backproject(np.exp(project(mu_pixel, angles)), angles, padded.shape[0])[r0:r1, c0:c1] / views)
    body = hu > -300
    ref = np.median(g[body]) if body.any() else np.median(g)
    return (g / ref).astype(np.float32)


def _check_spacing(spacing_mm: float) -> None:
    if not spacing_mm > 0:
        raise ValueError(f"spacing_mm must be positive, got {spacing_mm}")


def _radial_frequency(shape: tuple[int, int], spacing_mm: float) -> np.ndarray:
    """|frequency| in cycles/mm on the FFT grid of ``shape`` (square pixels of ``spacing_mm``)."""
    fy = np.fft.fftfreq(shape[0], d=spacing_mm)
    fx = np.fft.fftfreq(shape[1], d=spacing_mm)
    return np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def _filtered_white(shape: tuple[int, int], transfer: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """White Gaussian noise filtered by ``transfer`` in Fourier space, scaled to unit std."""
    white = rng.standard_normal(shape)
    field = np.fft.ifft2(np.fft.fft2(white) * transfer).real
    std = field.std()
    return field / std if std > 0 else field
