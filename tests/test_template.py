import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


# --- other domains (natural photos, AI-generated images); CT output must stay byte-identical ---------

from lora_iqa.template import (  # noqa: E402
    AIGC_DIMENSIONS,
    DOMAINS,
    NATURAL_DIMENSIONS,
    TEMPLATE_VERSION,
    vocabulary,
)


@pytest.mark.parametrize("domain, dims", [("natural", NATURAL_DIMENSIONS), ("aigc", AIGC_DIMENSIONS)])
def test_round_trip_every_score_vector_of_other_domains(domain, dims):
    t = Template(dims, domain=domain)
    vectors = [dict(zip(dims, v)) for v in itertools.product(range(5), repeat=len(dims))]
    assert len(vectors) == 5 ** len(dims)
    for s in vectors:
        cap = t.render(s)
        assert t.parse(cap) == s
        assert "diagnostic" not in cap and "clinical" not in cap
        assert cap.endswith(f"overall quality is {LEVELS[s['overall']]}.")
        for d in dims:
            assert cap.startswith(t.prompt(s, d)) and t.prompt(s, d).endswith(t.prefix(d))


@pytest.mark.parametrize("s, caption", [
    (dict(noise=3, artifact=2, sharpness=4, contrast=1, overall=2),
     "noise is good. artifact is fair. sharpness is excellent. contrast is poor. "
     "overall quality is fair, limited clinical interpretation."),
    (dict(noise=0, artifact=4, sharpness=1, contrast=3, overall=0),
     "noise is bad. artifact is excellent. sharpness is poor. contrast is good. "
     "overall quality is bad, unacceptable for diagnostic interpretation."),
    (dict.fromkeys(CT_DIMENSIONS, 4),
     "noise is excellent. artifact is excellent. sharpness is excellent. contrast is excellent. "
     "overall quality is excellent, excellent for diagnostic interpretation."),
])
def test_ct_captions_unchanged(s, caption):
    assert T.render(s) == caption == Template(CT_DIMENSIONS, domain="ct").render(s)
    assert T.prompt(s, "contrast") == caption[:caption.index("contrast is") + len("contrast is")]


def test_ct_constants_and_vocabulary_unchanged():
    assert TEMPLATE_VERSION == "ct-v1"
    assert LEVELS == ("bad", "poor", "fair", "good", "excellent")
    assert CT_DIMENSIONS == ("noise", "artifact", "sharpness", "contrast", "overall")
    assert ACCEPTABILITY[2] == "limited clinical interpretation" and len(ACCEPTABILITY) == 5
    assert vocabulary() == vocabulary(CT_DIMENSIONS, "ct") == [
        "artifact", "bad", "clinical", "contrast", "diagnostic", "excellent", "fair", "fit", "for", "good",
        "interpretation", "is", "limited", "no", "noise", "overall", "poor", "possible", "quality", "sharpness",
        "unacceptable"]
    assert Template() == Template(CT_DIMENSIONS, "overall", "ct")


def test_other_domain_vocabulary_covers_its_captions():
    for domain, dims in (("natural", NATURAL_DIMENSIONS), ("aigc", AIGC_DIMENSIONS)):
        vocab = set(vocabulary(dims, domain))
        t = Template(dims, domain=domain)
        for level in range(5):
            words = t.render(dict.fromkeys(dims, level)).replace(".", "").split()
            assert set(words) <= vocab
        assert not vocab & {"diagnostic", "clinical", "interpretation"}


def test_other_domains_never_read_the_acceptability_phrase():
    t = Template(NATURAL_DIMENSIONS, domain="natural")
    assert t.parse("overall: fit for diagnostic interpretation")["overall"] is None
    assert T.parse("overall: fit for diagnostic interpretation")["overall"] == 3


def test_unknown_domain_is_rejected():
    assert set(DOMAINS) == {"ct", "natural", "aigc"}
    with pytest.raises(ValueError, match="domain"):
        Template(NATURAL_DIMENSIONS, domain="photo")
