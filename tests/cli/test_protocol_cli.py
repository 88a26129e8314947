"""The ``lora-iqa`` command with ds / ms / full-reference adapters: score (JSON and text), eval --out
(every number recomputed from its items), and the one-line errors of mismatched protocols and inputs.

Tiny adapters trained for a few steps (under a second each); what is checked is the wiring, not quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import one_error_line

from lora_iqa.cli.main import main


def _train(out: Path, manifest: Path, base_dir: Path, protocol: str, reference: str = "nr") -> Path:
    from lora_iqa.config import load_config
    from lora_iqa.methods.blip.base import load_base
    from lora_iqa.training.run import run

    cfg = load_config(None, [f"output_dir={out}", f"data.manifest={manifest}", f"base={base_dir}",
                             f"protocol={protocol}", f"reference={reference}", "seed=5", "data.per_image=1",
                             "train.max_steps=4", "train.batch_size=16", "train.lr=1e-2", "train.warmup_steps=1",
                             "train.eval_every=4", "train.save_every=0"])
    return Path(run(cfg, base=load_base(str(base_dir)), progress=False).dir)


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, manifest, base_dir) -> dict[str, Path]:
    """Tiny adapters by name: ds_nr, ds_fr, ms_nr (ms k=4), ss_fr, all with seed 5 and data.per_image=1."""
    root = tmp_path_factory.mktemp("protocol_adapters")
    return {f"{p}_{r}": _train(root / f"{p}_{r}", manifest, base_dir, p, r)
            for p, r in (("ds", "nr"), ("ds", "fr"), ("ms", "nr"), ("ss", "fr"))}


@pytest.fixture(scope="module")
def test_rows(manifest):
    """Test-split rows of one content (the one with the most distinct overall scores), one per overall
    score, best first."""
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.template import CT_DIMENSIONS

    rows = read_manifest(manifest, CT_DIMENSIONS).split("test")
    by_content: dict = {}
    for it in rows:
        by_content.setdefault(it.content, {})[float(it.scores["overall"])] = it
    same = max(by_content.values(), key=len)
    assert len(same) >= 4, "the ms test needs four distinct overall scores in one test content"
    return [same[s] for s in sorted(same, reverse=True)]


def _records(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]


def _logit_answers(adapter: Path, paths: list, protocol: str, k: int = 4) -> dict:
    """What predict.preference_scores / ranking_scores say for one item of ``paths`` (in that order)."""
    from lora_iqa.data.io import load_image
    from lora_iqa.methods.blip.predict import preference_scores, ranking_scores
    from lora_iqa.methods.load import load_trained

    model, processor, meta = load_trained(adapter)
    images = tuple(load_image(p) for p in paths)
    assert meta.images == len(images)
    if protocol == "ds":
        return preference_scores(model, processor, [images], index=True, view=meta.make_view())[0]
    return ranking_scores(model, processor, [images], k, index=True, view=meta.make_view())[0]


# --- score -----------------------------------------------------------------------------------------

def test_score_ds_logits_is_preference_scores_in_either_order(adapters, test_rows, capsys):
    a, b = str(test_rows[0].image), str(test_rows[-1].image)
    for first, second in ((a, b), (b, a)):
        assert main(["score", first, second, "--protocol", "ds", "--adapter", str(adapters["ds_nr"]), "--json"]) == 0
        (rec,) = _records(capsys)
        assert rec["images"] == [first, second] and (rec["protocol"], rec["method"]) == ("ds", "logits")
        assert rec["status"] == "ok" and rec["caption"] is None and "reference" not in rec
        assert rec["preference"] in (0, 0.5, 1) and 0 <= rec["probability"] <= 1
        want = _logit_answers(adapters["ds_nr"], [first, second], "ds")
        assert rec["preference"] == want["preference"]
        assert rec["probability"] == pytest.approx(want["probability"], abs=1e-6)
        assert rec["probs"] == pytest.approx(want["probs"], abs=1e-6)
        assert rec["probability"] == pytest.approx(max(rec["probs"].values()), abs=1e-9)


def test_score_protocol_defaults_to_the_adapters_and_prints_text(adapters, test_rows, capsys):
    a, b = str(test_rows[0].image), str(test_rows[1].image)
    assert main(["score", a, b, "--adapter", str(adapters["ds_nr"]), "--json"]) == 0
    (rec,) = _records(capsys)
    assert rec["protocol"] == "ds"
    assert main(["score", a, b, "--adapter", str(adapters["ds_nr"])]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"{a} {b}: ") and "preference=" in out[0]


def test_score_ds_full_reference(adapters, test_rows, capsys):
    a, b, ref = str(test_rows[0].image), str(test_rows[1].image), str(test_rows[0].reference)
    assert main(["score", a, b, "--reference", ref, "--adapter", str(adapters["ds_fr"]), "--json"]) == 0
    (rec,) = _records(capsys)
    assert rec["images"] == [a, b] and rec["reference"] == ref
    want = _logit_answers(adapters["ds_fr"], [a, b, ref], "ds")
    assert rec["preference"] == want["preference"]
    assert rec["probs"] == pytest.approx(want["probs"], abs=1e-6)


def test_score_ms_logits_is_ranking_scores(adapters, test_rows, capsys):
    paths = [str(it.image) for it in test_rows[:4]]
    assert main(["score", *paths, "--adapter", str(adapters["ms_nr"]), "--protocol", "ms", "--json"]) == 0
    (rec,) = _records(capsys)
    assert rec["images"] == paths and rec["protocol"] == "ms" and sorted(rec["ranking"]) == [1, 2, 3, 4]
    want = _logit_answers(adapters["ms_nr"], paths, "ms")
    assert rec["ranking"] == want["ranking"]
    assert rec["expected_ranks"] == pytest.approx(want["expected_ranks"], abs=1e-6)
    assert rec["probability"] == pytest.approx(want["probability"], abs=1e-6)


def test_score_and_report_ss_full_reference(adapters, test_rows, tmp_path, capsys):
    """An ss fr adapter scores each IMAGE together with the one --reference (and report takes it too)."""
    from lora_iqa.data.io import load_image
    from lora_iqa.methods.blip.predict import logit_scores
    from lora_iqa.methods.load import load_trained
    from lora_iqa.template import Template

    a, b, ref = (str(p) for p in (test_rows[0].image, test_rows[1].image, test_rows[0].reference))
    adapter = adapters["ss_fr"]
    assert main(["score", a, b, "--reference", ref, "--adapter", str(adapter), "--json"]) == 0
    recs = _records(capsys)
    assert [r["images"] for r in recs] == [[a], [b]] and all(r["reference"] == ref for r in recs)
    model, processor, meta = load_trained(adapter)
    want = logit_scores(model, processor, [(load_image(a), load_image(ref)), (load_image(b), load_image(ref))],
                        Template(), index=True, view=meta.make_view())
    for r, w in zip(recs, want):
        assert r["protocol"] == "ss" and r["scores"] == pytest.approx({d: round(v, 4) for d, v in w["scores"].items()})
    assert main(["score", a, "--adapter", str(adapter)]) == 1
    one_error_line(capsys, adapter, "--reference PATH")
    out = tmp_path / "r.md"
    assert main(["report", a, "--reference", ref, "--adapter", str(adapter), "--out", str(out)]) == 0
    assert out.read_text().startswith("# Image quality report")


@pytest.mark.parametrize("answer, preference", [("first", 0.0), ("second", 1.0), ("similar", 0.5)])
def test_score_ds_caption_reads_the_generated_answer(adapters, test_rows, monkeypatch, capsys, answer, preference):
    """--method caption: generate, then the scorer reads the caption (the tiny adapter writes none that
    parse, so the generator is replaced by each valid answer)."""
    import lora_iqa.evaluation as evaluation
    from lora_iqa.template import render_preference

    seen = {}

    def fake(model, processor, images, **kw):
        seen.update(kw, n_images=[len(s) for s in images])
        return [render_preference(answer)] * len(images)

    monkeypatch.setattr(evaluation, "generate_captions", fake)
    a, b = str(test_rows[0].image), str(test_rows[1].image)
    assert main(["score", a, b, "--adapter", str(adapters["ds_nr"]), "--method", "caption", "--json"]) == 0
    (rec,) = _records(capsys)
    assert rec["caption"] == render_preference(answer) and rec["preference"] == preference
    assert rec["status"] == "ok" and rec["scorer"] == "template"
    assert seen["index"] is True and seen["n_images"] == [2]


@pytest.mark.parametrize("name, argv, words", [
    ("ds_nr", ["A"], ["exactly 2 images", "got 1"]),
    ("ds_nr", ["A", "B", "C"], ["exactly 2 images", "got 3"]),
    ("ms_nr", ["A", "B", "C"], ["exactly 4 images", "data.k", "got 3", "{adapter}"]),
    ("ds_nr", ["A", "B", "--protocol", "ms"], ["{adapter}", "ds adapter", "--protocol ms"]),
    ("ms_nr", ["A", "B", "--protocol", "ds"], ["{adapter}", "ms adapter", "--protocol ds"]),
    ("ds_fr", ["A", "B"], ["{adapter}", "full-reference", "--reference PATH"]),
    ("ds_nr", ["A", "B", "--reference", "R"], ["{adapter}", "no-reference", "--reference"]),
])
def test_score_protocol_errors_are_one_line(adapters, test_rows, capsys, name, argv, words):
    paths = {"A": test_rows[0].image, "B": test_rows[1].image, "C": test_rows[2].image, "R": test_rows[0].reference}
    adapter = adapters[name]
    argv = [str(paths.get(a, a)) for a in argv]
    assert main(["score", *argv, "--adapter", str(adapter), "--json"]) == 1
    one_error_line(capsys, *(w.format(adapter=adapter) for w in words))
    assert capsys.readouterr().out == ""


def test_ss_adapter_refuses_ds_and_report_refuses_ds_adapters(adapter_dir, adapters, test_rows, capsys):
    a, b = str(test_rows[0].image), str(test_rows[1].image)
    assert main(["score", a, b, "--protocol", "ds", "--adapter", str(adapter_dir)]) == 1
    one_error_line(capsys, adapter_dir, "ss adapter", "--protocol ds")
    assert main(["report", a, "--adapter", str(adapters["ds_nr"])]) == 1
    one_error_line(capsys, adapters["ds_nr"], "ds adapter")


# --- eval --------------------------------------------------------------------------------------------

def _thurstone_overall(items: list[dict], protocol: str) -> dict:
    """The overall scale's correlations, recomputed from eval items (Thurstone Case V over their judgements)."""
    from lora_iqa.metrics import correlations, thurstone_map

    if protocol == "ds":
        comparisons = [(it["images"][0], it["images"][1], 1.0 - it["pred"]["preference"]) for it in items]
    else:
        comparisons = [(it["images"][r[i] - 1], it["images"][r[j] - 1], 1.0) for it in items
                       for r in [it["pred"]["ranking"]] for i in range(len(r)) for j in range(i + 1, len(r))]
    truth = {p: t for it in items for p, t in zip(it["images"], it["true"]["overall"])}
    names = sorted(truth)
    pos = {p: i for i, p in enumerate(names)}
    scale = thurstone_map(len(names), [(pos[x], pos[y], w) for x, y, w in comparisons])
    return correlations(scale.tolist(), [truth[p] for p in names])


def test_eval_ds_out_recomputes_from_items(adapters, manifest, tmp_path, capsys):
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.data.samples import protocol_samples
    from lora_iqa.metrics import pairwise_accuracy
    from lora_iqa.protocols import get_protocol
    from lora_iqa.template import CT_DIMENSIONS

    out = tmp_path / "ds" / "eval.json"
    code = main(["eval", "--adapter", str(adapters["ds_nr"]), "--data", str(manifest), "--out", str(out)])
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())
    failed = sum(it.get("status") == "failed" for r in (res, res["caption"]) for it in r["items"])
    assert code == (3 if failed else 0)  # an unreadable caption is a failed item
    assert (res["protocol"], res["reference"], res["split"], res["method"], res["seed"]) == ("ds", "nr", "test", "logits", 7)
    test = read_manifest(manifest, CT_DIMENSIONS).split("test")
    want = protocol_samples(test, get_protocol("ds"), CT_DIMENSIONS, seed=7, per_image=1)  # the adapter's seed + 2
    assert res["n"] == len(res["items"]) == len(want) == len(test)
    assert [it["images"] for it in res["items"]] == [[str(i.image) for i in s.items] for s in want]
    for r in (res, res["caption"]):
        items = r["items"]
        for it in items:
            assert {"images", "contents", "true", "answer", "pred"} <= set(it)
            assert it["answer"] in ("first", "second", "similar") and len(it["true"]["overall"]) == 2
        done = [it for it in items if it["pred"].get("preference") is not None]
        assert all(it["pred"]["preference"] in (0, 0.5, 1) for it in done)
        m = r["metrics"]
        assert set(m) == {"pairwise", "overall"}
        assert m["pairwise"] == pairwise_accuracy([it["pred"]["preference"] for it in done],
                                                  [it["true"]["overall"][0] for it in done],
                                                  [it["true"]["overall"][1] for it in done])
        assert m["overall"]["missing"] == len(items) - len(done)
        if done:
            again = _thurstone_overall(done, "ds")
            for key in ("srcc", "plcc", "krcc", "n"):
                assert m["overall"][key] == pytest.approx(again[key], abs=1e-9)
    logits = res["items"]
    assert all(it["pred"]["probability"] == pytest.approx(max(it["pred"]["probs"].values())) for it in logits)
    lines = printed.splitlines()
    assert lines[0].startswith("logits   pairwise accuracy ") and "Thurstone scale overall SRCC" in lines[0]
    assert lines[1].startswith("caption  pairwise accuracy ") and f"(n {res['metrics']['pairwise']['n']})" in lines[0]
    assert [p.name for p in out.parent.iterdir()] == ["eval.json"]


def test_eval_ms_and_seed(adapters, manifest, tmp_path, capsys):
    from lora_iqa.metrics import ranking_kendall

    outs = {}
    for seed in ("default", "3"):
        outs[seed] = tmp_path / f"ms_{seed}.json"
        extra = [] if seed == "default" else ["--seed", seed]
        assert main(["eval", "--adapter", str(adapters["ms_nr"]), "--data", str(manifest), "--method", "logits",
                     "--out", str(outs[seed]), *extra]) == 0
    res, other = (json.loads(outs[s].read_text()) for s in ("default", "3"))
    assert (res["seed"], other["seed"]) == (7, 3)
    assert [it["images"] for it in res["items"]] != [it["images"] for it in other["items"]]
    items = res["items"]
    assert res["n"] == len(items) > 0 and set(res["metrics"]) == {"ranking", "overall"}
    assert all(len(it["images"]) == 4 and sorted(it["pred"]["ranking"]) == [1, 2, 3, 4] for it in items)
    assert res["metrics"]["ranking"] == ranking_kendall([it["pred"]["ranking"] for it in items],
                                                        [it["true"]["overall"] for it in items])
    again = _thurstone_overall(items, "ms")
    assert res["metrics"]["overall"]["srcc"] == pytest.approx(again["srcc"], abs=1e-9)
    assert "logits   mean Kendall tau " in capsys.readouterr().out


def test_eval_ds_full_reference_items_end_with_the_reference(adapters, manifest, tmp_path):
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.template import CT_DIMENSIONS

    reference = {str(it.image): str(it.reference) for it in read_manifest(manifest, CT_DIMENSIONS).items}
    out = tmp_path / "fr.json"
    assert main(["eval", "--adapter", str(adapters["ds_fr"]), "--data", str(manifest), "--method", "logits",
                 "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["reference"] == "fr" and res["n"] > 0
    for it in res["items"]:
        assert len(set(it["contents"])) == 1  # fr pairs share a content, so its reference
        assert it["images"][2:] == [reference[it["images"][0]]] == [reference[it["images"][1]]]
