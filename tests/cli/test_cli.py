"""Tests for the ``lora-iqa`` command: help, synth, score, eval, and one-line errors with exit status 1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import one_error_line
from pydicom.data import get_testdata_file

from lora_iqa.cli.main import main
from lora_iqa.template import CT_DIMENSIONS, Template

SUBCOMMANDS = [["demo"], ["synth"], ["synth", "ct"], ["train"], ["eval"], ["score"], ["report"], ["bench"]]


def _image(manifest: Path) -> Path:
    return sorted((manifest.parent / "images").glob("*_1.png"))[0]


def test_console_script_help():
    exe = shutil.which("lora-iqa") or str(Path(sys.executable).with_name("lora-iqa"))
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    for cmd in ("demo", "synth", "train", "eval", "score"):
        assert cmd in proc.stdout


@pytest.mark.parametrize("argv", SUBCOMMANDS, ids=lambda a: " ".join(a))
def test_every_subcommand_has_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    assert "usage: lora-iqa " + " ".join(argv) in capsys.readouterr().out


def test_synth_ct_writes_manifest(tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["synth", "ct", "--out", str(out), "--n", "24", "--size", "32", "--seed", "1"]) == 0
    manifest = out / "manifest.csv"
    assert manifest.is_file() and str(manifest) in capsys.readouterr().out
    from lora_iqa.data.manifest import read_manifest

    m = read_manifest(manifest, CT_DIMENSIONS)
    assert len(m.items) == 24 and all(it.image.is_file() for it in m.items)


@pytest.mark.parametrize("method", ["logits", "caption"])
def test_score_json(adapter_dir, manifest, method, capsys):
    png = _image(manifest)
    dcm = get_testdata_file("CT_small.dcm")
    code = main(["score", str(png), dcm, "--adapter", str(adapter_dir), "--method", method, "--json"])
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 2
    recs = [json.loads(line) for line in lines]
    failed = sum(r["status"] == "failed" for r in recs)  # the tiny adapter's captions are mostly unreadable
    assert (code, failed and f"{failed} of 2 items failed" in err) == ((3, True) if failed else (0, 0))
    assert [r["images"] for r in recs] == [[str(png)], [dcm]]
    for r in recs:
        assert {"images", "protocol", "method", "caption", "scores"} <= set(r)
        assert r["protocol"] == "ss" and r["method"] == method and isinstance(r["caption"], str)
        assert set(r["scores"]) == set(CT_DIMENSIONS)
        for v in r["scores"].values():
            assert v is None or 0 <= v <= 4
        if method == "logits":
            assert all(v is not None for v in r["scores"].values())


def test_eval_out(adapter_dir, manifest, tmp_path, capsys):
    out = tmp_path / "res" / "eval.json"
    code = main(["eval", "--adapter", str(adapter_dir), "--data", str(manifest), "--out", str(out)])
    res = json.loads(out.read_text())
    failed = sum(it.get("status") == "failed" for r in (res, res["caption"]) for it in r["items"])
    assert code == (3 if failed else 0)  # the tiny adapter's captions are mostly unreadable
    assert res["protocol"] == "ss" and res["split"] == "test" and res["method"] == "logits"
    assert res["n"] == len(res["items"]) == 24
    assert set(res["metrics"]) == set(CT_DIMENSIONS)
    assert all({"srcc", "plcc", "krcc", "rmse"} <= set(m) for m in res["metrics"].values())
    for it in res["items"]:
        assert {"images", "true", "pred", "caption"} <= set(it)
        assert Path(it["images"][0]).is_file()
    cap = res["caption"]
    assert cap["method"] == "caption" and cap["n"] == res["n"] and set(cap["metrics"]) == set(CT_DIMENSIONS)
    assert len(cap["items"]) == res["n"]
    assert str(out) in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["eval.json"]  # no temporary left behind


# --- errors: one line naming the file, exit 1, nothing written -----------------------------------

def test_score_corrupt_image(adapter_dir, tmp_path, capsys):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    assert main(["score", str(bad), "--adapter", str(adapter_dir), "--json"]) == 1
    one_error_line(capsys, bad)
    assert capsys.readouterr().out == ""


def test_score_truncated_dicom(adapter_dir, capsys):
    truncated = get_testdata_file("MR_truncated.dcm")
    assert main(["score", truncated, "--adapter", str(adapter_dir), "--json"]) == 1
    one_error_line(capsys, truncated)


def test_score_adapter_without_meta(manifest, tmp_path, capsys):
    empty = tmp_path / "not_an_adapter"
    empty.mkdir()
    assert main(["score", str(_image(manifest)), "--adapter", str(empty)]) == 1
    one_error_line(capsys, empty / "lora_iqa.json")


def test_eval_bad_score_value(adapter_dir, manifest, tmp_path, capsys):
    lines = manifest.read_text().splitlines()
    header = lines[0].split(",")
    col = header.index("overall")
    row = lines[2].split(",")
    row[col] = "excellent"
    lines[2] = ",".join(row)
    bad = manifest.parent / "bad_manifest.csv"  # beside the images: paths stay valid
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "eval.json"
    try:
        assert main(["eval", "--adapter", str(adapter_dir), "--data", str(bad), "--out", str(out)]) == 1
    finally:
        bad.unlink()
    line = one_error_line(capsys, f"{bad}:3", "overall")
    assert "column 'overall'" in line
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_eval_missing_manifest(adapter_dir, tmp_path, capsys):
    missing = tmp_path / "nope" / "manifest.csv"
    out = tmp_path / "eval.json"
    assert main(["eval", "--adapter", str(adapter_dir), "--data", str(missing), "--out", str(out)]) == 1
    one_error_line(capsys, missing)
    assert not out.exists()


def test_eval_adapter_without_meta(manifest, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "eval.json"
    assert main(["eval", "--adapter", str(empty), "--data", str(manifest), "--out", str(out)]) == 1
    one_error_line(capsys, empty / "lora_iqa.json")
    assert not out.exists()


def test_train_recipe_unknown_key(manifest, tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    out = tmp_path / "run"
    recipe.write_text(f"output_dir: {out}\nbase: scratch\ndata:\n  manifest: {manifest}\ntrain:\n  max_stepz: 5\n")
    assert main(["train", str(recipe)]) == 1
    line = one_error_line(capsys, recipe, "train.max_stepz")
    assert "unknown key" in line
    assert not out.exists()


def test_subprocess_error_is_one_line(adapter_dir, tmp_path):
    """The real console script, failing after peft/transformers are imported (the base is missing):
    no library chatter, loading bar or traceback around the error line."""
    adapter = tmp_path / "adapter"
    shutil.copytree(adapter_dir, adapter)
    meta = json.loads((adapter / "lora_iqa.json").read_text())
    missing = tmp_path / "missing_base"
    meta["base"]["name_or_path"] = str(missing)
    (adapter / "lora_iqa.json").write_text(json.dumps(meta))
    exe = shutil.which("lora-iqa") or str(Path(sys.executable).with_name("lora-iqa"))
    img = get_testdata_file("CT_small.dcm")
    proc = subprocess.run([exe, "score", img, "--adapter", str(adapter)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1 and str(missing) in proc.stderr, proc.stderr
    assert proc.stdout == ""


# --- scorers through the CLI: template, openai (loopback server), zero-shot MLLM, reports ------------

def _records(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]


def test_score_caption_openai_agrees_with_template(adapter_dir, manifest, llm, capsys, monkeypatch):
    """The CLI wiring captioner -> scorer. The tiny test adapter writes no readable captions, so the
    captioner is replaced by known template captions; the scorers must read them back exactly."""
    from conftest import captions

    import lora_iqa.evaluation as evaluation

    caps = captions(6, seed=4)
    monkeypatch.setattr(evaluation, "generate_captions", lambda model, processor, images, **kw: caps[:len(images)])
    server = llm()
    images = [str(p) for p in sorted((manifest.parent / "images").glob("*.png"))[:6]]
    args = ["score", *images, "--adapter", str(adapter_dir), "--method", "caption", "--json"]
    assert main(args) == 0
    want = _records(capsys)
    assert main(args + ["--scorer", "openai", "--set", "concurrency=4"]) == 0
    got = _records(capsys)
    assert [r["scorer"] for r in want] == ["template"] * 6 and [r["scorer"] for r in got] == ["openai"] * 6
    assert [r["caption"] for r in got] == [r["caption"] for r in want] == caps
    assert all(r["status"] == "ok" for r in got + want)
    assert [r["scores"] for r in got] == [r["scores"] for r in want] == \
        [{d: float(v) for d, v in Template().parse(c).items()} for c in caps]
    assert server.calls == 6


def test_score_mllm_ds_and_errors(llm, manifest, capsys):
    llm(answer=lambda body: {"preference": "first", "confidence": 0.9})
    a, b = [str(p) for p in sorted((manifest.parent / "images").glob("*.png"))[:2]]
    assert main(["score", a, b, "--method", "mllm", "--scorer", "openai", "--protocol", "ds", "--json"]) == 0
    (rec,) = _records(capsys)
    assert rec["images"] == [a, b] and rec["protocol"] == "ds" and rec["preference"] == 0.0
    assert rec["probability"] == 0.9 and rec["status"] == "ok"
    assert main(["score", a, "--method", "mllm", "--json"]) == 1
    one_error_line(capsys, "--scorer openai")
    assert main(["score", a, "--method", "mllm", "--scorer", "openai", "--protocol", "ds"]) == 1
    one_error_line(capsys, "exactly 2 images")
    assert main(["score", a, "--method", "mllm", "--scorer", "openai", "--strategy", "in_context"]) == 1
    one_error_line(capsys, "--data MANIFEST")
    assert main(["score", a, "--method", "mllm", "--scorer", "openai", "--set", "concurrency=0"]) == 1
    one_error_line(capsys, "scorer.concurrency")


def test_score_logits_rejects_llm_scorer(adapter_dir, manifest, capsys):
    assert main(["score", str(_image(manifest)), "--adapter", str(adapter_dir), "--scorer", "openai"]) == 1
    one_error_line(capsys, "--method caption")


@pytest.mark.parametrize("backend", ["template", "openai"])
def test_report(adapter_dir, manifest, llm, tmp_path, backend, capsys):
    from lora_iqa.testing.chat_server import oracle_answer

    report = "## Technique and quality findings\n- noise: fair\n\n## Impression\nLimited."
    server = llm(answer=lambda body: report if "radiology-style" in json.dumps(body) else oracle_answer(body))
    out = tmp_path / "reports" / "r.md"
    img = str(_image(manifest))
    assert main(["report", img, "--adapter", str(adapter_dir), "--scorer", backend, "--set", "max_retries=0",
                 "--out", str(out)]) == 0
    md = out.read_text()
    assert md.startswith("# Image quality report") and "## Impression" in md and img in md
    assert server.calls == (2 if backend == "openai" else 0)  # the caption's scores, then the report
    assert (report in md) == (backend == "openai")
    assert [p.name for p in out.parent.iterdir()] == ["r.md"]


def test_eval_caption_with_openai_scorer(adapter_dir, manifest, llm, tmp_path, monkeypatch, capsys):
    """eval --scorer openai: the LLM reads the captions; with captions that state the truth (the tiny
    adapter writes none), both scorers recover every label exactly."""
    import lora_iqa.evaluation as evaluation
    from lora_iqa.data.manifest import read_manifest

    t = Template()
    truth = [t.render({d: int(round(float(it.scores[d]))) for d in t.dimensions})
             for it in read_manifest(manifest, t.dimensions).split("test")]
    monkeypatch.setattr(evaluation, "generate_captions", lambda model, processor, images, **kw: truth[:len(images)])
    server = llm()
    outs = {}
    for backend in ("template", "openai"):
        outs[backend] = tmp_path / f"{backend}.json"
        assert main(["eval", "--adapter", str(adapter_dir), "--data", str(manifest), "--method", "caption",
                     "--scorer", backend, "--out", str(outs[backend])]) == 0
    a, b = (json.loads(outs[k].read_text()) for k in ("template", "openai"))
    assert (a["scorer"], b["scorer"]) == ("template", "openai") and server.calls == len(truth) == b["n"]
    assert [it["pred"] for it in a["items"]] == [it["pred"] for it in b["items"]]
    assert all(it["pred"] == {d: float(v) for d, v in it["true"].items()} for it in b["items"])
    assert "openai scorer" in capsys.readouterr().err
