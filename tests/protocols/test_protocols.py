"""Tests for the protocol objects: what each protocol shows, answers, draws and how it is scored."""

from pathlib import Path

import numpy as np
import pytest

from lora_iqa.errors import LoraIqaError
from lora_iqa.protocols import PROTOCOLS, REGISTRY, SS, AnswerError, get_protocol
from lora_iqa.template import Template, parse_preference, parse_ranking

T = Template()

IMAGES = [  # (name, reference, k, stimuli, images the model sees, key)
    ("ss", "nr", 4, 1, 1, "ss_nr"),
    ("ss", "fr", 4, 1, 2, "ss_fr"),
    ("ds", "nr", 4, 2, 2, "ds_nr"),
    ("ds", "fr", 4, 2, 3, "ds_fr"),
    ("ms", "nr", 4, 4, 4, "ms_nr"),
    ("ms", "fr", 3, 3, 4, "ms_fr"),
]


@pytest.mark.parametrize("name,reference,k,stimuli,images,key", IMAGES)
def test_images_per_sample_and_key(name, reference, k, stimuli, images, key):
    p = get_protocol(name, reference, k)
    assert (p.name, p.stimuli, p.images, p.key, p.full_reference) == (name, stimuli, images, key, reference == "fr")


def test_registry_and_refusals():
    assert PROTOCOLS == ("ss", "ds", "ms") and set(REGISTRY) == set(PROTOCOLS)
    assert SS == get_protocol("ss") and SS.per_image and not get_protocol("ds").per_image
    with pytest.raises(LoraIqaError, match="unknown protocol 'xs'"):
        get_protocol("xs")
    with pytest.raises(LoraIqaError, match="unknown reference 'zz'"):
        get_protocol("ds", "zz")


@pytest.mark.parametrize("name,k,n,error", [
    ("ss", 4, 5, None), ("ds", 4, 2, None), ("ds", 4, 3, "exactly 2 images, got 3"),
    ("ms", 4, 4, None), ("ms", 4, 3, "exactly 4 images, got 3"), ("ms", 1, 1, "2 or more images, got 1"),
])
def test_count_error(name, k, n, error):
    got = get_protocol(name, k=k).count_error(n)
    assert got is None if error is None else error in got


def test_answer_captions_read_back():
    ds, ms = get_protocol("ds"), get_protocol("ms", k=3)
    assert SS.answer_captions() == []
    assert [parse_preference(c) for c in ds.answer_captions()] == ["first", "second", "similar"]
    assert parse_ranking(ms.answer_captions()[0], 3) == [1, 2, 3]
    levels = {d: 2 for d in T.dimensions}
    assert T.parse(SS.caption(levels, None, T)) == levels
    assert parse_ranking(ms.caption({}, (3, 1, 2), T), 3) == [3, 1, 2]


def test_per_image_scores_become_judgements():
    scores = [{"overall": 1.0}, {"overall": 3.0}, {"overall": 2.0}]
    assert SS.from_scores(scores[:1], "overall") == {"scores": {"overall": 1.0}}
    assert get_protocol("ds").from_scores(scores[:2], "overall") == {"preference": 1.0}
    assert get_protocol("ds").from_scores([scores[0], scores[0]], "overall") == {"preference": 0.5}
    assert get_protocol("ms", k=3).from_scores(scores, "overall") == {"ranking": [2, 3, 1]}


def _judged(protocol, answers, truths):
    """Items as ``eval --out`` writes them, with image paths named by their true overall score's index."""
    return [{"images": [f"img{t}" for t in truth], "true": {"overall": list(truth)}, "pred": answer}
            for answer, truth in zip(answers, truths)]


def test_metrics_and_selection_of_every_protocol():
    t = Template(("overall",))
    ss_items = [{"true": {"overall": v}, "pred": {"overall": v + 0.1}} for v in (0, 1, 2, 3)]
    m = SS.metrics(ss_items, t)
    assert m["overall"]["srcc"] == pytest.approx(1.0) and SS.selection_score(m) == pytest.approx(1.0)
    ds = get_protocol("ds")
    right = _judged(ds, [{"preference": 1.0}, {"preference": 0.0}, {"preference": 1.0}], [(0, 2), (3, 1), (1, 4)])
    m = ds.metrics(right + [{"images": ["a", "b"], "true": {"overall": [0, 1]}, "pred": {"preference": None}}], t)
    assert m["pairwise"] == {"accuracy": 1.0, "n": 3} and m["overall"]["missing"] == 1
    assert m["overall"]["srcc"] > 0.5 and ds.selection_score(m) == 1.0  # 3 disjoint pairs order the scale partly
    ms = get_protocol("ms", k=3)
    m = ms.metrics(_judged(ms, [{"ranking": [3, 2, 1]}, {"ranking": [1, 3, 2]}], [(0, 1, 2), (4, 2, 3)]), t)
    assert m["ranking"]["kendall"] == pytest.approx(1.0) and ms.selection_score(m) == pytest.approx(1.0)
    assert "mean Kendall tau 1.000" in ms.metrics_line(m, "overall")


def test_validate_and_parse_text_say_why():
    with pytest.raises(AnswerError, match="dimension 'noise' missing"):
        SS.validate({"scores": {}}, T.dimensions)
    with pytest.raises(AnswerError) as e:
        SS.parse_text("noise is good.", T)
    assert e.value.fields["scores"]["noise"] == 3.0 and e.value.fields["scores"]["overall"] is None
    assert get_protocol("ms", k=2).validate({"ranking": ["2", 1]}, ()) == {"ranking": [2, 1]}


def test_shots_are_reproducible_and_labelled():
    import random

    items = _synthetic_items(4, 3)
    level = {id(it): int(it.scores["overall"]) for it in items}
    for name in PROTOCOLS:
        p = get_protocol(name, k=3)
        a = [p.shot(random.Random(5), items, ("overall",), level) for _ in range(3)]
        b = [p.shot(random.Random(5), items, ("overall",), level) for _ in range(3)]
        assert a == b and all(len(group) == p.stimuli for group, _ in a)


def _synthetic_items(n_contents: int = 12, per: int = 6):
    from lora_iqa.data.manifest import Item

    rng = np.random.default_rng(0)
    return [Item(image=Path(f"c{c}_{k}.png"), split="test", content=f"c{c}", line=2,
                 scores={"overall": float(rng.integers(0, 5))}, reference=None, extra={})
            for c in range(n_contents) for k in range(per)]


def test_ds_pairs_are_balanced_reproducible_and_labelled():
    from lora_iqa.protocols.ds import ds_pairs

    items = _synthetic_items()
    pairs = ds_pairs(items, 400, seed=3)
    assert len(pairs) == 400 and pairs == ds_pairs(items, 400, seed=3) and pairs != ds_pairs(items, 400, seed=4)
    firsts = sum(p.label == "first" for p in pairs)
    seconds = sum(p.label == "second" for p in pairs)
    assert abs(firsts - seconds) <= 1 and firsts > 100
    for p in pairs:
        a, b = p.first.scores["overall"], p.second.scores["overall"]
        assert p.label == ("similar" if abs(a - b) < 0.5 else "first" if a > b else "second")
    same = sum(p.first.content == p.second.content for p in pairs)
    assert 150 < same < 250  # about half same-content (two degradations of one scene), half across contents


def test_ms_groups_rank_distinct_scores():
    from lora_iqa.protocols.ms import ms_groups

    groups = ms_groups(_synthetic_items(), 50, seed=1, k=4)
    assert len(groups) == 50
    for group, ranking in groups:
        scores = [it.scores["overall"] for it in group]
        assert sorted(ranking) == [1, 2, 3, 4] and len(set(scores)) == 4
        assert [scores[i - 1] for i in ranking] == sorted(scores, reverse=True)


