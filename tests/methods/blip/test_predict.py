"""Tests for lora_iqa.predict and lora_iqa.evaluation: logit scores, captions, the eval-out schema."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from lora_iqa.evaluation import evaluate
from lora_iqa.methods.blip.base import load_base
from lora_iqa.methods.blip.predict import generate_captions, logit_scores
from lora_iqa.methods.load import load_trained
from lora_iqa.template import CT_DIMENSIONS, LEVELS, Template

TEMPLATE = Template()
METRIC_KEYS = ("srcc", "plcc", "krcc", "rmse")


@pytest.fixture(scope="module")
def base(base_dir):
    return load_base(str(base_dir))


def _images(samples, n=6):
    return [s.images[0] for s in samples["test"][:n]]


def test_logit_scores_are_distributions(base, samples):
    model, processor = base
    images = _images(samples)
    res = logit_scores(model, processor, images, TEMPLATE, batch_size=4)  # two batches, the last partial
    assert len(res) == len(images)
    for r in res:
        assert set(r["scores"]) == set(r["probs"]) == set(CT_DIMENSIONS)
        for d in CT_DIMENSIONS:
            p = np.asarray(r["probs"][d])
            assert p.shape == (len(LEVELS),)
            assert np.all(p >= 0) and p.sum() == pytest.approx(1.0, abs=1e-6)
            assert 0.0 <= r["scores"][d] <= 4.0
            assert r["scores"][d] == pytest.approx(float(np.dot(p, np.arange(len(LEVELS)))), abs=1e-6)


def test_logit_scores_deterministic_and_batch_independent(base, samples):
    model, processor = base
    images = _images(samples)
    a = logit_scores(model, processor, images, TEMPLATE, batch_size=64)
    b = logit_scores(model, processor, images, TEMPLATE, batch_size=64)
    assert a == b
    c = logit_scores(model, processor, images, TEMPLATE, batch_size=1)  # no padding
    for x, y in zip(a, c):
        for d in CT_DIMENSIONS:
            assert x["scores"][d] == pytest.approx(y["scores"][d], abs=1e-5)
    # different images give different scores (the model looks at the pixels)
    assert len({round(r["scores"]["overall"], 8) for r in a}) > 1


def test_logit_scores_follow_a_trained_adapter(adapter_dir, samples, base):
    model, processor = base
    images = _images(samples)
    before = logit_scores(model, processor, images, TEMPLATE)
    trained, tproc, _ = load_trained(adapter_dir)
    after = logit_scores(trained, tproc, images, TEMPLATE)
    assert any(abs(x["scores"][d] - y["scores"][d]) > 1e-4 for x, y in zip(before, after) for d in CT_DIMENSIONS)


def test_generate_captions(base, samples):
    model, processor = base
    images = _images(samples, 3)
    caps = generate_captions(model, processor, images, max_new_tokens=8)
    assert len(caps) == 3 and all(isinstance(c, str) for c in caps)
    assert caps == generate_captions(model, processor, images, max_new_tokens=8)  # greedy: deterministic
    assert not any("[DEC]" in c or "[SEP]" in c or "[PAD]" in c for c in caps)


@pytest.mark.parametrize("method", ["logits", "caption"])
def test_evaluate_schema_and_srcc_recomputes(adapter_dir, samples, method):
    model, processor, _ = load_trained(adapter_dir)
    test = samples["test"]
    res = evaluate(model, processor, test, TEMPLATE, split="test", method=method)
    assert res["protocol"] == "ss" and res["split"] == "test" and res["method"] == method
    assert res["n"] == len(test) == len(res["items"])
    assert set(res["metrics"]) == set(CT_DIMENSIONS)
    for it, s in zip(res["items"], test):
        assert it["images"] == [str(s.item.image)]
        assert it["true"] == s.labels
        assert set(it["pred"]) == set(CT_DIMENSIONS)
        assert isinstance(it["caption"], str)
        if method == "logits":
            # the caption is the template rendered at each dimension's most likely level
            levels = TEMPLATE.parse(it["caption"])
            assert it["caption"] == TEMPLATE.render(levels)
    recomputed = 0
    for d, m in res["metrics"].items():
        assert set(METRIC_KEYS) <= set(m)
        pairs = [(it["pred"][d], it["true"][d]) for it in res["items"] if it["pred"][d] is not None]
        assert m["missing"] == len(res["items"]) - len(pairs)
        if m["srcc"] is None:
            continue
        rho = stats.spearmanr([p for p, _ in pairs], [t for _, t in pairs]).statistic
        assert abs(m["srcc"] - rho) <= 1e-12
        rmse = math.sqrt(np.mean([(p - t) ** 2 for p, t in pairs]))
        assert abs(m["rmse"] - rmse) <= 1e-12
        recomputed += 1
    if method == "logits":
        assert recomputed == len(CT_DIMENSIONS)  # continuous scores: every SRCC is defined


def test_preference_and_ranking_scores_are_distributions_over_valid_answers(base, samples):
    from lora_iqa.methods.blip.multi_image import add_image_index
    from lora_iqa.methods.blip.predict import preference_scores, ranking_scores

    model, processor = base
    add_image_index(model)
    imgs = _images(samples, 8)
    pairs = [(imgs[i], imgs[i + 1]) for i in range(0, 8, 2)]
    for r in preference_scores(model, processor, pairs):
        assert sum(r["probs"].values()) == pytest.approx(1, abs=1e-5)
        best = max(r["probs"], key=r["probs"].get)
        assert r["preference"] == {"first": 0.0, "second": 1.0, "similar": 0.5}[best]
        assert r["probability"] == pytest.approx(r["probs"][best])
    # batch-independent: each pair alone gives the same probabilities
    alone = [preference_scores(model, processor, [p])[0]["probs"] for p in pairs]
    together = [r["probs"] for r in preference_scores(model, processor, pairs)]
    for x, y in zip(alone, together):
        assert all(abs(x[c] - y[c]) < 1e-5 for c in x)
    groups = [tuple(imgs[:4]), tuple(imgs[4:8])]
    for r in ranking_scores(model, processor, groups, k=4):
        assert sorted(r["ranking"]) == [1, 2, 3, 4]
        assert sum(r["expected_ranks"]) == pytest.approx(10, abs=1e-4)
        ranks = r["expected_ranks"]
        assert [ranks[i - 1] for i in r["ranking"]] == sorted(ranks)
        assert 0 < r["probability"] <= 1


def test_both_orders_swaps_the_answer_exactly(base, samples):
    from lora_iqa.methods.blip.multi_image import add_image_index
    from lora_iqa.methods.blip.predict import preference_scores

    model, processor = base
    add_image_index(model)
    a, b = _images(samples, 2)
    ab, ba = (preference_scores(model, processor, [p])[0]["probs"] for p in ((a, b), (b, a)))
    assert ab["first"] == pytest.approx(ba["second"], abs=1e-6) and ab["similar"] == pytest.approx(ba["similar"], abs=1e-6)
    one = preference_scores(model, processor, [(a, b)], both_orders=False)[0]["probs"]
    other = preference_scores(model, processor, [(b, a)], both_orders=False)[0]["probs"]
    assert ab["first"] == pytest.approx((one["first"] + other["second"]) / 2, abs=1e-6)


def test_views_batch_equals_one_at_a_time_and_repeat(base, samples):
    """With crop views (a grid of windows per image, weighted): a batch of 16 scores like one image at a
    time within 1e-5, and scoring twice gives identical numbers."""
    from lora_iqa.views import View

    model, processor = base
    view = View("crop", None, 3)
    images = [s.images[0] for s in samples["test"][:16]]
    batch = logit_scores(model, processor, images, TEMPLATE, batch_size=64, view=view)
    again = logit_scores(model, processor, images, TEMPLATE, batch_size=64, view=view)
    single = [logit_scores(model, processor, [im], TEMPLATE, view=view)[0] for im in images]
    assert batch == again
    for b, s in zip(batch, single):
        for d in CT_DIMENSIONS:
            assert b["scores"][d] == pytest.approx(s["scores"][d], abs=1e-5)
    whole = logit_scores(model, processor, images, TEMPLATE)  # resized whole: a different input, other scores
    assert any(abs(w["scores"]["overall"] - b["scores"]["overall"]) > 1e-4 for w, b in zip(whole, batch))
