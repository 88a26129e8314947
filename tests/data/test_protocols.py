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
    from lora_iqa.data.protocols import ds_pairs

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
    from lora_iqa.data.protocols import ms_groups

    groups = ms_groups(_synthetic_items(), 50, seed=1, k=4)
    assert len(groups) == 50
    for group, ranking in groups:
        scores = [it.scores["overall"] for it in group]
        assert sorted(ranking) == [1, 2, 3, 4] and len(set(scores)) == 4
        assert [scores[i - 1] for i in ranking] == sorted(scores, reverse=True)
