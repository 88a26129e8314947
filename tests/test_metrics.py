import numpy as np
import pytest
from scipy import stats

from lora_iqa.metrics import correlations, fit_logistic, logistic4, pairwise_accuracy, ranking_kendall, thurstone_map


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


def test_pairwise_accuracy_counts_only_pairs_a_level_apart():
    pref = [0.0, 1.0, 0.5, 1.0, 0.2]
    first = [3, 1, 2, 4, 2]
    second = [1, 3, 2, 0, 2.5]  # right, right, (skipped: equal), wrong, (skipped: gap < 1)
    m = pairwise_accuracy(pref, first, second)
    assert m == {"accuracy": pytest.approx(2 / 3), "n": 3}
    assert pairwise_accuracy([0.5], [1], [1]) == {"accuracy": None, "n": 0}


def test_ranking_kendall():
    true = [[0, 3, 1, 4], [2, 1, 4, 0]]
    perfect = [[4, 2, 3, 1], [3, 1, 2, 4]]
    assert ranking_kendall(perfect, true) == {"kendall": pytest.approx(1.0), "n": 2}
    reversed_ = [list(reversed(r)) for r in perfect]
    assert ranking_kendall(reversed_, true)["kendall"] == pytest.approx(-1.0)


def test_thurstone_map_recovers_a_known_scale():
    """Simulated Case V judgements (with ties) over 30 items: the MAP scale orders the items as the truth does."""
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 1.5, 30)
    comps = []
    for _ in range(1500):
        a, b = rng.choice(30, 2, replace=False)
        d = truth[a] - truth[b] + rng.normal()
        comps.append((int(a), int(b), 0.5 if abs(d) < 0.2 else float(d > 0)))
    s = thurstone_map(30, comps)
    assert stats.spearmanr(s, truth).statistic > 0.95
    assert abs(float(np.mean(s))) < 0.3  # the prior centres the scale
    assert np.allclose(thurstone_map(3, []), 0)
