import socket

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
from scipy import stats

from lora_iqa.metrics import (
    caption_scores,
    correlations,
    fit_logistic,
    logistic4,
    pairwise_accuracy,
    ranking_kendall,
    thurstone_map,
)


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


CAPTION_CASES = [  # (prediction, references)
    ("A dog runs on the grass.", ["A dog runs on the grass."]),  # perfect match
    ("a red car parked by the road", ["A red car parked on a street.", "a car that is red"]),
    ("Two people ride bikes.", ["Two people riding bicycles down a road.", "People on bikes!", "two cyclists"]),
    ("zebra zebra", ["a bowl of soup", "Soup in a bowl."]),  # disjoint
    ("A blurry, dark photo of a cat.", ["a dark and blurry photo of a cat", "An underexposed cat picture."]),
]
CAPTION_KEYS = ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider"]


@pytest.fixture(scope="module")
def coco_scores():
    """caption_scores (with every socket connect refused) and pycocoevalcap called directly, as COCOEvalCap does."""
    preds, refs = [p for p, _ in CAPTION_CASES], [r for _, r in CAPTION_CASES]
    connects = []

    def refuse(self, address):
        connects.append(address)
        raise OSError(f"no network in tests: {address}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        ours = caption_scores(preds, refs)
    assert connects == []  # the module loads from its path, never from the Hub

    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": r} for r in rs] for i, rs in enumerate(refs)})
    res = tokenizer.tokenize({i: [{"caption": p}] for i, p in enumerate(preds)})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    ref = {f"bleu_{n + 1}": b for n, b in enumerate(bleu)}
    ref["meteor"], _ = Meteor().compute_score(gts, res)
    ref["rouge_l"], _ = Rouge().compute_score(gts, res)
    ref["cider"], _ = Cider().compute_score(gts, res)
    return ours, ref, gts, res


@pytest.mark.slow
@pytest.mark.parametrize("key", CAPTION_KEYS)
def test_caption_scores_equal_pycocoevalcap_exactly(coco_scores, key):
    ours, ref, _, _ = coco_scores
    assert sorted(ours) == sorted(CAPTION_KEYS)
    assert type(ours[key]) is float and ours[key] == ref[key]
    assert 0 < ours[key] < (10 if key == "cider" else 1)  # neither all-perfect nor all-disjoint


@pytest.mark.slow
def test_caption_scores_without_tokenization_take_tokens_as_given(coco_scores):
    """Already PTB-tokenized captions with tokenize=False score exactly as raw captions with tokenize=True."""
    _, ref, gts, res = coco_scores
    ours = caption_scores([res[i][0] for i in res], [gts[i] for i in gts], tokenize=False)
    assert ours == ref
