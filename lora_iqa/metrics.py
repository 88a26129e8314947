"""Quality metrics (scipy): SRCC, PLCC after the VQEG 4-parameter logistic fit (and raw), KRCC, RMSE;
caption metrics (BLEU, METEOR, ROUGE-L, CIDEr) through the package's local `evaluate` module.

Direction and range travel with the name: every correlation is higher-is-better in [-1, 1];
RMSE is lower-is-better, in score units (0..4). Undefined values (constant input) are ``None``.
This module imports nothing from the package.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import optimize, stats

CAPTION_METRIC = Path(__file__).parent / "resources" / "metrics" / "coco_caption"


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


def pairwise_accuracy(preference: Sequence[float], true_first: Sequence[float], true_second: Sequence[float],
                      min_gap: float = 1.0) -> dict[str, float | int | None]:
    """Double-stimulus accuracy over the pairs whose true scores differ by at least ``min_gap``.

    ``preference`` is 0 (first better) .. 1 (second better), 0.5 similar; a pair counts as right when
    the preference leans (strictly) towards the truly better image.
    """
    pref = np.asarray(preference, dtype=np.float64)
    diff = np.asarray(true_second, dtype=np.float64) - np.asarray(true_first, dtype=np.float64)
    keep = np.abs(diff) >= min_gap
    if not keep.any():
        return {"accuracy": None, "n": 0}
    right = np.where(diff[keep] > 0, pref[keep] > 0.5, pref[keep] < 0.5)
    return {"accuracy": float(right.mean()), "n": int(keep.sum())}


def ranking_kendall(rankings: Sequence[Sequence[int]], true_scores: Sequence[Sequence[float]]) -> dict[str, float | int | None]:
    """Mean Kendall tau (scipy, tau-b) between each predicted ranking (1-based image numbers, best first)
    and the true scores of that group's images."""
    taus = []
    for order, scores in zip(rankings, true_scores):
        rank_of = {img: pos for pos, img in enumerate(order)}  # 0 = best
        pred_quality = [-rank_of[i + 1] for i in range(len(scores))]
        tau = stats.kendalltau(pred_quality, scores).statistic
        if not math.isnan(tau):
            taus.append(float(tau))
    return {"kendall": float(np.mean(taus)) if taus else None, "n": len(taus)}


def thurstone_map(n_items: int, comparisons: Sequence[tuple[int, int, float]], prior_sd: float = 1.0) -> np.ndarray:
    """Thurstone Case V scale values by MAP with a Gaussian prior N(0, prior_sd^2) (MLLM-IQA study).

    ``comparisons`` are ``(i, j, outcome)``: outcome 1 if i was judged better than j, 0 if worse,
    0.5 for "similar" (half a win each). P(i beats j) = Phi(s_i - s_j).
    """
    if not comparisons:
        return np.zeros(n_items)
    i = np.array([c[0] for c in comparisons])
    j = np.array([c[1] for c in comparisons])
    w = np.array([float(c[2]) for c in comparisons])

    def neg_log_posterior(s: np.ndarray) -> tuple[float, np.ndarray]:
        d = s[i] - s[j]
        log_p, log_q = stats.norm.logcdf(d), stats.norm.logcdf(-d)
        nlp = -float(np.sum(w * log_p + (1 - w) * log_q)) + float(np.sum(s ** 2)) / (2 * prior_sd ** 2)
        log_pdf = stats.norm.logpdf(d)  # d/dd log Phi(d) = pdf/cdf, computed in logs for large |d|
        g_d = -(w * np.exp(log_pdf - log_p) - (1 - w) * np.exp(log_pdf - log_q))
        grad = np.zeros(n_items)
        np.add.at(grad, i, g_d)
        np.add.at(grad, j, -g_d)
        return nlp, grad + s / prior_sd ** 2

    res = optimize.minimize(neg_log_posterior, np.zeros(n_items), jac=True, method="L-BFGS-B")
    return res.x


def caption_scores(predictions: Sequence[str], references: Sequence[Sequence[str]],
                   tokenize: bool = True) -> dict[str, float]:
    """Corpus-level COCO caption metrics from pycocoevalcap (needs Java): bleu_1..bleu_4, meteor, rouge_l, cider.

    ``references`` holds one list (>= 1 caption) per prediction. ``tokenize`` runs coco-caption's
    PTBTokenizer first (lowercase, punctuation dropped); False takes the strings as already tokenized.
    The `evaluate` module loads from its path inside the package, never from the Hub.
    """
    import evaluate  # slow import (datasets); only callers of this function pay it

    module = evaluate.load(str(CAPTION_METRIC), keep_in_memory=True)
    return module.compute(predictions=list(predictions), references=[list(r) for r in references], tokenize=tokenize)
