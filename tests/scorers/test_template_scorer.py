"""Tests for the offline template scorer: exact inverse for every protocol, failures with reasons, report."""

from __future__ import annotations

import itertools

from lora_iqa.protocols import get_protocol
from lora_iqa.scorers.template_scorer import TemplateScorer
from lora_iqa.template import (
    CT_DIMENSIONS,
    LEVELS,
    PREFERENCES,
    Template,
    render_preference,
    render_ranking,
)

T = Template()


def test_ss_exact_for_every_score_vector():
    vectors = [dict(zip(CT_DIMENSIONS, v)) for v in itertools.product(range(len(LEVELS)), repeat=len(CT_DIMENSIONS))]
    results = TemplateScorer(T).score([T.render(v) for v in vectors], get_protocol("ss"))
    assert all(r.ok and r.scores == {d: float(x) for d, x in v.items()} for r, v in zip(results, vectors))


def test_ds_and_ms_exact():
    s = TemplateScorer(T)
    prefs = s.score([render_preference(p) for p in PREFERENCES], get_protocol("ds"))
    assert [r.preference for r in prefs] == [0.0, 1.0, 0.5]
    orders = list(itertools.permutations(range(1, 5)))
    assert [r.ranking for r in s.score([render_ranking(o) for o in orders], get_protocol("ms", k=4))] == [list(o) for o in orders]


def test_unreadable_caption_fails_with_reason_and_keeps_what_it_read():
    r = TemplateScorer(T).score(["noise is good. artifact is fair."], get_protocol("ss"))[0]
    assert r.status == "failed" and "sharpness" in r.reason and "contrast" in r.reason
    assert r.scores["noise"] == 3.0 and r.scores["sharpness"] is None


def test_report_lists_every_dimension_and_acceptability():
    scores = {"noise": 3.0, "artifact": 2.2, "sharpness": None, "contrast": 1.0, "overall": 2.6}
    md = TemplateScorer(T).report("a caption", scores, image="scan.dcm")
    assert md.startswith("# Image quality report") and "`scan.dcm`" in md
    assert "**Noise:** good (3.00 / 4)" in md and "**Sharpness:** not assessable" in md
    assert "## Impression" in md and "**good** (2.60 / 4): fit for diagnostic interpretation" in md
