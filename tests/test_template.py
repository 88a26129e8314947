import itertools

import pytest
from hypothesis import given, strategies as st

from lora_iqa.template import ACCEPTABILITY, CT_DIMENSIONS, LEVELS, Template

T = Template()
ALL = [dict(zip(CT_DIMENSIONS, v)) for v in itertools.product(range(5), repeat=len(CT_DIMENSIONS))]


def test_round_trip_every_score_vector():
    assert len(ALL) == 5 ** 5
    for s in ALL:
        assert T.parse(T.render(s)) == s


@given(st.lists(st.sampled_from(["noise", "blur", "sharpness", "glare", "contrast", "overall", "snr"]),
                min_size=1, max_size=6, unique=True).flatmap(
    lambda dims: st.tuples(st.just(tuple(dims)), st.lists(st.integers(0, 4), min_size=len(dims), max_size=len(dims)))))
def test_round_trip_any_dimension_set(case):
    dims, values = case
    t = Template(dims)
    s = dict(zip(dims, values))
    assert t.parse(t.render(s)) == s


def test_overall_is_phrased_as_diagnostic_acceptability():
    for level in range(5):
        cap = T.render({**dict.fromkeys(CT_DIMENSIONS, 2), "overall": level})
        assert f"overall quality is {LEVELS[level]}, {ACCEPTABILITY[level]}." in cap
    assert "unacceptable for diagnostic interpretation" in T.render(dict.fromkeys(CT_DIMENSIONS, 0))
    assert "excellent for diagnostic interpretation" in T.render(dict.fromkeys(CT_DIMENSIONS, 4))


@pytest.mark.parametrize("text, expected", [
    ("NOISE IS GOOD. Artifact is Fair. SHARPNESS is excellent. contrast is poor. overall quality is fair.",
     dict(noise=3, artifact=2, sharpness=4, contrast=1, overall=2)),
    ("noise is good artifact is fair sharpness is excellent contrast is poor overall quality is fair",
     dict(noise=3, artifact=2, sharpness=4, contrast=1, overall=2)),
    ("Noise: good; artifacts are fair! sharpness - excellent, contrast poor. Overall: bad",
     dict(noise=3, artifact=2, sharpness=4, contrast=1, overall=0)),
    ("noise is good. sharpness is excellent. overall quality is fair.",  # two dimensions missing
     dict(noise=3, artifact=None, sharpness=4, contrast=None, overall=2)),
    ("noise is good. overall: fit for diagnostic interpretation",  # overall from its acceptability phrase
     dict(noise=3, artifact=None, sharpness=None, contrast=None, overall=3)),
    ("noise is good. noise is bad.", dict(noise=None, artifact=None, sharpness=None, contrast=None, overall=None)),
    ("", dict.fromkeys(CT_DIMENSIONS)),
    ("the image looks great", dict.fromkeys(CT_DIMENSIONS)),
])
def test_near_miss_text_parses_tolerantly_and_never_guesses(text, expected):
    assert T.parse(text) == expected


@pytest.mark.parametrize("bad", [{"noise": 5}, {"noise": -1}, {"noise": 2.5}, {}])
def test_render_rejects_bad_scores(bad):
    with pytest.raises((ValueError, KeyError)):
        T.render({**dict.fromkeys(CT_DIMENSIONS[1:], 1), **bad} if bad else {})


def test_prompt_ends_at_the_rating_position():
    s = dict(noise=3, artifact=2, sharpness=4, contrast=1, overall=2)
    for d in CT_DIMENSIONS:
        p = T.prompt(s, d)
        assert T.render(s).startswith(p) and p.endswith(T.prefix(d))
