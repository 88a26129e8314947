"""Quality metrics (scipy): SRCC, PLCC after the VQEG 4-parameter logistic fit (and raw), KRCC, RMSE.

Direction and range travel with the name: every correlation is higher-is-better in [-1, 1];
RMSE is lower-is-better, in score units (0..4). Undefined values (constant input) are ``None``.
This module imports nothing from the package.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
from scipy import optimize, stats

HIGHER_IS_BETTER = {"srcc": True, "plcc": True, "plcc_raw": True, "krcc": True, "rmse": False}


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG monotonic 4-parameter logistic: (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2."""
    with np.errstate(over="ignore"):  # exp overflow -> inf -> the curve's asymptote, as intended
        return (b1 - b2) / (1.0 + np.exp(-(x - b3) / (abs(b4) + 1e-12))) + b2


def fit_logistic(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``pred`` mapped onto the scale of ``true`` by the 4-parameter logistic (identity if no fit).

    Least squares from a few standard starting points (slope scale = std(pred) x 1, 1/4, 1/16);
    the fit with the smallest residual wins. Only increasing fits count (predictions are scores,
    higher is better), so a predictor that runs the wrong way keeps a negative PLCC.
    """
    best, best_sse = pred, float(np.sum((pred - true) ** 2))
    scale = float(np.std(pred)) or 1.0
    for k in (1.0, 0.25, 0.0625):
        p0 = [float(true.max()), float(true.min()), float(np.mean(pred)), scale * k]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params, _ = optimize.curve_fit(logistic4, pred, true, p0=p0, method="trf", max_nfev=20000)
        except (RuntimeError, ValueError):
            continue
        if params[0] < params[1]:  # a decreasing curve would turn a wrong-way predictor into PLCC > 0
            continue
        fitted = logistic4(pred, *params)
        sse = float(np.sum((fitted - true) ** 2))
        if np.all(np.isfinite(fitted)) and np.ptp(fitted) > 1e-9 * (np.ptp(true) or 1.0) and sse < best_sse:
            best, best_sse = fitted, sse
    return best


def correlations(pred: Sequence[float], true: Sequence[float]) -> dict[str, float | None]:
    """srcc, plcc (after logistic fit), plcc_raw, krcc, rmse (raw, score units) and n."""
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"metrics: {p.shape[0]} predictions for {t.shape[0]} labels")
    out: dict[str, float | None] = {"n": int(p.size)}
    if p.size < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        out.update(srcc=None, plcc=None, plcc_raw=None, krcc=None)
    else:
        out["srcc"] = _clean(stats.spearmanr(p, t).statistic)
        out["krcc"] = _clean(stats.kendalltau(p, t).statistic)
        out["plcc_raw"] = _clean(stats.pearsonr(p, t).statistic)
        out["plcc"] = _clean(stats.pearsonr(fit_logistic(p, t), t).statistic)
    out["rmse"] = _clean(math.sqrt(float(np.mean((p - t) ** 2)))) if p.size else None
    return out


def fmt(x: float | None) -> str:
    """A metric for tables: three decimals, or an em dash when undefined."""
    return "—" if x is None else f"{x:.3f}"


def _clean(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x
