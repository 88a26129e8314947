import numpy as np
import pytest
from scipy import stats

from lora_iqa.metrics import correlations, fit_logistic, logistic4


def test_matches_scipy_to_1e12():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 5, 200).astype(float)
    p = t + rng.normal(0, 0.7, 200)
    m = correlations(p, t)
    assert m["srcc"] == pytest.approx(stats.spearmanr(p, t).statistic, abs=1e-12)
    assert m["krcc"] == pytest.approx(stats.kendalltau(p, t).statistic, abs=1e-12)
    assert m["plcc_raw"] == pytest.approx(stats.pearsonr(p, t).statistic, abs=1e-12)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((p - t) ** 2)), abs=1e-12)
    assert m["n"] == 200


def test_logistic_fit_linearises_a_monotone_nonlinearity():
    x = np.linspace(-3, 3, 100)
    y = logistic4(x, 4.0, 0.0, 0.5, 0.4)
    assert stats.pearsonr(x, y).statistic < 0.96
    assert correlations(x, y)["plcc"] == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(fit_logistic(x, y), y, atol=1e-4)


def test_constant_predictions_give_none_not_nan():
    m = correlations([2.0] * 5, [0, 1, 2, 3, 4])
    assert m["srcc"] is None and m["plcc"] is None and m["rmse"] == pytest.approx(np.sqrt(2.0))


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        correlations([1, 2], [1, 2, 3])


def test_a_wrong_way_predictor_keeps_a_negative_plcc():
    """The logistic only straightens an increasing relation: it must not flip a decreasing one."""
    rng = np.random.default_rng(1)
    t = rng.integers(0, 5, 200).astype(float)
    p = -t + rng.normal(0, 0.7, 200)
    m = correlations(p, t)
    assert m["srcc"] < -0.8 and m["plcc"] < -0.8 and m["plcc"] == pytest.approx(m["plcc_raw"], abs=1e-12)
