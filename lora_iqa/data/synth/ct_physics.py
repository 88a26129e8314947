"""CT acquisition physics: parallel-beam projection, Poisson noise at a dose, sparse views,
reconstruction kernels, detector blur, filtered back-projection; the noise and MTF models."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.transform import iradon, radon

from lora_iqa.errors import LoraIqaError

KERNELS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")
MU_WATER = 0.02  # 1/mm
MAX_VIEWS = 360  # angles of the per-content sinogram, over 180 degrees
_NOISE_KAPPA = 0.64  # calibrates the analytic FBP noise model to skimage's interpolating backprojector
# ...and per kernel (std): linear interpolation removes more of the sharp kernels' high-frequency noise
_KERNEL_NOISE_CAL = {"ramp": 0.83, "shepp-logan": 0.89, "cosine": 0.98, "hamming": 1.04, "hann": 1.04}


def _theta(n: int = MAX_VIEWS) -> np.ndarray:
    return np.linspace(0.0, 180.0, n, endpoint=False)


def _project(hu: np.ndarray, px: float) -> np.ndarray:
    """Line integrals of mu (dimensionless) at MAX_VIEWS angles; ``px``: pixel spacing in mm."""
    mu = np.clip(MU_WATER * px * (1.0 + hu / 1000.0), 0.0, None)
    return radon(np.where(_circle(hu.shape[0]), mu, 0.0), _theta(), circle=True)


def _project_delta(delta_hu: np.ndarray, px: float) -> np.ndarray:
    """Line integrals of an HU difference map (radon is linear)."""
    return radon(np.where(_circle(delta_hu.shape[0]), MU_WATER * px / 1000.0 * delta_hu, 0.0), _theta(), circle=True)


def _circle(size: int) -> np.ndarray:
    """skimage's reconstruction circle (radon requires the image to be zero outside it)."""
    c = (np.arange(size) - size // 2) ** 2
    return c[:, None] + c[None, :] <= (size // 2) ** 2


def _view_indices(views: int) -> np.ndarray:
    return np.unique(np.round(np.arange(views) * MAX_VIEWS / views).astype(int) % MAX_VIEWS)


def _to_hu(recon: np.ndarray, px: float) -> np.ndarray:
    return (recon / (MU_WATER * px) - 1.0) * 1000.0


def _reconstruct(sino: np.ndarray, params: dict, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray | None]:
    """HU image and (if dosed) the HU noise image = recon(noisy) - recon(noiseless), same geometry.
    ``params["spacing_mm"]``: the pixel spacing (mm)."""
    size, px = sino.shape[0], float(params["spacing_mm"])
    idx = _view_indices(int(params["views"]))
    p = sino[:, idx]
    th = _theta()[idx]
    blur = float(params.get("blur", 0.0) or 0.0)
    if blur > 0:
        p = ndimage.gaussian_filter1d(p, blur, axis=0, mode="constant")
    kernel = params.get("kernel", "ramp")
    clean = iradon(p, th, output_size=size, circle=True, filter_name=kernel)
    dose = params.get("dose")
    if not dose:
        return _to_hu(clean, px), None
    if rng is None:
        raise ValueError("simulate: a dosed simulation needs an rng")
    dose = float(dose)
    counts = np.maximum(rng.poisson(dose * np.exp(-p)), 1.0)
    noise = iradon(-np.log(counts / dose) - p, th, output_size=size, circle=True, filter_name=kernel)
    noise_hu = noise * (1000.0 / (MU_WATER * px))
    return _to_hu(clean, px) + noise_hu, noise_hu


def simulate(phantom_hu: np.ndarray, params: dict, rng: np.random.Generator | None = None) -> np.ndarray:
    """Reconstruct ``phantom_hu`` (HU, square) with ``params``: ``spacing_mm``, ``views`` (<= 360), ``kernel``,
    ``blur`` (detector blur sigma in px), ``dose`` (I0 counts per ray; falsy = noiseless). Returns HU."""
    return _reconstruct(_project(np.asarray(phantom_hu, float), float(params["spacing_mm"])), params, rng)[0]


def noise_roi(size: int) -> np.ndarray:
    """The central disk (radius size/8) where noise is measured."""
    c = (np.arange(size) - (size - 1) / 2) ** 2
    return c[:, None] + c[None, :] <= (size / 8) ** 2


def _kernel_window(kernel: str, f: np.ndarray) -> np.ndarray:
    """skimage's apodisation window of ``kernel`` at digital frequency f in [0, 0.5] (cycles/px)."""
    f = np.asarray(f, float)
    if kernel == "ramp":
        return np.ones_like(f)
    if kernel == "shepp-logan":
        return np.sinc(f)
    if kernel == "cosine":
        return np.cos(np.pi * f)
    if kernel == "hamming":
        return 0.54 + 0.46 * np.cos(2 * np.pi * f)
    if kernel == "hann":
        return np.cos(np.pi * f) ** 2
    raise LoraIqaError(f"synth: 'kernel' must be one of {'|'.join(KERNELS)}, got {kernel!r}")


def mtf50(kernel: str, blur: float) -> float:
    """MTF50 (cycles/px, at most Nyquist 0.5) of the kernel window times the Gaussian blur's MTF."""
    f = np.linspace(0.0, 0.5, 2001)
    m = _kernel_window(kernel, f) * np.exp(-2 * np.pi**2 * float(blur) ** 2 * f**2)
    below = np.nonzero(m < 0.5)[0]
    if len(below) == 0:
        return 0.5
    i = below[0]
    return float(f[i - 1] + (f[i] - f[i - 1]) * (m[i - 1] - 0.5) / (m[i - 1] - m[i]))


def _kernel_noise_power(kernel: str, size: int) -> float:
    """Mean squared Fourier filter of skimage's FBP for ``kernel`` (= sum of the squared taps)."""
    n = max(64, int(2 ** np.ceil(np.log2(2 * size))))
    k = np.fft.fftfreq(n)
    f = np.abs(k)
    ramp = 2 * f  # skimage's ramp is ~ 2|f| (its spatial-domain construction differs at f=0 only)
    return float(np.mean((ramp * _kernel_window(kernel, f)) ** 2))


def predicted_noise_hu(sino: np.ndarray, views: int, kernel: str, dose: float, px: float) -> float:
    """Analytic FBP noise std (HU) at the image centre for the per-content sinogram ``sino`` (``px`` mm/px)."""
    size = sino.shape[0]
    c = size // 2
    e = float(np.mean(np.exp(sino[c - 1:c + 2, :])))
    scale = 1000.0 / (MU_WATER * px)
    var = (np.pi / (2 * views)) ** 2 * views * e / dose * _kernel_noise_power(kernel, size) * _NOISE_KAPPA
    return scale * math.sqrt(var) * _KERNEL_NOISE_CAL[kernel]


_KERNEL_MTF50 = {k: mtf50(k, 0.0) for k in KERNELS}
