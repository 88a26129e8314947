"""Tests for protocol samples: double-stimulus pairs and multiple-stimulus groups."""

from pathlib import Path

import numpy as np


def _synthetic_items(n_contents: int = 12, per: int = 6):
    from lora_iqa.data.manifest import Item

    rng = np.random.default_rng(0)
    return [Item(image=Path(f"c{c}_{k}.png"), split="test", content=f"c{c}", line=2,
                 scores={"overall": float(rng.integers(0, 5))}, reference=None, extra={})
            for c in range(n_contents) for k in range(per)]


def test_ds_pairs_are_balanced_reproducible_and_labelled():
    from lora_iqa.data.samples import ds_pairs

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
    from lora_iqa.data.samples import ms_groups

    groups = ms_groups(_synthetic_items(), 50, seed=1, k=4)
    assert len(groups) == 50
    for group, ranking in groups:
        scores = [it.scores["overall"] for it in group]
        assert sorted(ranking) == [1, 2, 3, 4] and len(set(scores)) == 4
        assert [scores[i - 1] for i in ranking] == sorted(scores, reverse=True)


def test_protocol_samples_nr_and_fr(manifest):
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.data.samples import caption_of, protocol_samples
    from lora_iqa.template import (
        CT_DIMENSIONS,
        Template,
        parse_preference,
        parse_ranking,
    )

    items = read_manifest(manifest, CT_DIMENSIONS).split("val")
    t = Template()
    ss = protocol_samples(items, "ss", "fr", CT_DIMENSIONS, seed=0)
    assert len(ss) == len(items) and all(len(s.images) == 2 for s in ss)
    assert t.parse(caption_of(ss[0], t)) == ss[0].labels
    ds_nr = protocol_samples(items, "ds", "nr", CT_DIMENSIONS, seed=0, per_image=2)
    assert len(ds_nr) == 2 * len(items) and all(len(s.images) == 2 for s in ds_nr)
    assert {s.items[0].content == s.items[1].content for s in ds_nr} == {True, False}
    assert all(parse_preference(caption_of(s, t)) == s.answer for s in ds_nr)
    # an image shown by several samples is read once and shared
    by_path = {}
    for s in ds_nr:
        for it, im in zip(s.items, s.images):
            assert by_path.setdefault(it.image, im) is im
    ds_fr = protocol_samples(items, "ds", "fr", CT_DIMENSIONS, seed=0, per_image=2)
    for s in ds_fr:
        assert len(s.images) == 3 and s.items[0].content == s.items[1].content
        assert s.items[0].reference == s.items[1].reference
    ms_fr = protocol_samples(items, "ms", "fr", CT_DIMENSIONS, seed=0, k=3, per_image=1)
    for s in ms_fr:
        assert len(s.images) == 4 and len({it.content for it in s.items}) == 1
        overall = [float(it.scores["overall"]) for it in s.items]
        assert parse_ranking(caption_of(s, t), 3) == list(s.answer)
        assert [overall[i - 1] for i in s.answer] == sorted(overall, reverse=True)
