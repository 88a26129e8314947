"""Hostile: secrets and the LLM reply cache (issue 14, classes 6 and 8).

A server that repeats the caller's API key (in a 401 body, in a valid reply's text and reasoning, or
as an invalid value that a failure reason quotes) must not get it into any output: not the ``eval
--out`` JSON, the report, stdout/stderr, the reply cache or any other file. An unwritable cache is
one line naming the folder before any paid call; a cache that becomes unwritable during the run
costs one warning line and no reply. Assertions name where a key was found, never the text holding it.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from conftest import SECRET

from lora_iqa.artifact import read_meta
from lora_iqa.cli.main import main
from lora_iqa.config import ScorerConfig
from lora_iqa.errors import LoraIqaError
from lora_iqa.template import Template

pytestmark = pytest.mark.slow  # trains the tiny adapter (session fixture) and runs the CLI

REPORT = "## Technique and quality findings\n- Noise: good\n\n## Impression\nFit for diagnosis."


def _answer(adapter_dir: Path):
    """Valid replies for the adapter's dimensions (ss scores, or the report when one is asked for)."""
    dims = read_meta(adapter_dir).dimensions

    def answer(body: dict) -> dict | str:
        return REPORT if "radiology-style" in json.dumps(body["messages"]) else {"scores": dict.fromkeys(dims, 2)}

    return answer


def _leaks(root: Path, **texts: str) -> list[str]:
    """Where the key (or the key without surrounding whitespace) appears: file paths and text names."""
    keys = {SECRET, SECRET.strip()}
    where = [str(p) for p in sorted(root.rglob("*")) if p.is_file() and any(k.encode() in p.read_bytes() for k in keys)]
    return where + [name for name, t in texts.items() if any(k in t for k in keys)]


def _eval(adapter_dir: Path, manifest: Path, out: Path, *extra: str) -> int:
    return main(["eval", "--adapter", str(adapter_dir), "--data", str(manifest), "--method", "caption",
                 "--scorer", "openai", "--set", "max_retries=0", "--out", str(out), *extra])


def _items(out: Path) -> list[dict]:
    return json.loads(out.read_text())["items"]


# --- class 6: the key reaches no output, whatever the server returns ---------------------------------

def test_key_echoed_in_a_401_body_is_in_no_output(llm, adapter_dir, manifest, tmp_path, capsys):
    server = llm(echo_key="401", answer=_answer(adapter_dir))
    out = tmp_path / "eval.json"
    _eval(adapter_dir, manifest, out)  # (the exit status of a run with failed items is the CLI's rule)
    cap = capsys.readouterr()
    n = len(_items(out))  # (assertions show counts and names only: the texts may hold the key)
    assert server.calls == n > 0  # a 401 is not retried
    assert all(it.get("status") == "failed" and "HTTP 401" in it["reason"] for it in _items(out))  # counted as failed
    leaks = _leaks(tmp_path, stdout=cap.out, stderr=cap.err)  # (a name per leak, never the text)
    assert not leaks


@pytest.mark.parametrize("strategy", ["standard", "cot"])
def test_key_echoed_in_a_valid_reply_is_in_no_output(llm, adapter_dir, manifest, tmp_path, capsys, strategy):
    llm(echo_key="reply", answer=_answer(adapter_dir))
    out = tmp_path / "eval.json"
    assert _eval(adapter_dir, manifest, out, "--strategy", strategy) == 0
    cap = capsys.readouterr()
    assert all(it.get("status", "ok") == "ok" for it in _items(out))  # the reply is still used
    assert list((tmp_path / "cache" / "llm").rglob("*.json"))  # and cached, without the key
    leaks = _leaks(tmp_path, stdout=cap.out, stderr=cap.err)  # (a name per leak, never the text)
    assert not leaks


def test_key_quoted_by_a_failure_reason_is_in_no_output(llm, adapter_dir, manifest, tmp_path, capsys):
    llm(echo_key="invalid", answer=_answer(adapter_dir))
    out = tmp_path / "eval.json"
    _eval(adapter_dir, manifest, out)
    cap = capsys.readouterr()
    assert all(it.get("status") == "failed" and "is not a number" in it["reason"] for it in _items(out))
    leaks = _leaks(tmp_path, stdout=cap.out, stderr=cap.err)  # (a name per leak, never the text)
    assert not leaks


@pytest.mark.parametrize("mode", ["401", "reply"])
def test_report_carries_no_key(llm, adapter_dir, manifest, tmp_path, capsys, mode):
    llm(echo_key=mode, answer=_answer(adapter_dir))
    image = sorted((manifest.parent / "images").glob("*_1.png"))[0]
    out = tmp_path / "report.md"
    rc = main(["report", str(image), "--adapter", str(adapter_dir), "--scorer", "openai", "--set", "max_retries=0",
               "--out", str(out)])
    cap = capsys.readouterr()
    if mode == "401":
        assert rc == 1 and not out.exists()
        assert sum(line.startswith("lora-iqa: error: ") for line in cap.err.splitlines()) == 1
    else:
        written = REPORT in out.read_text()  # (a bool: a failure shows no text)
        assert rc == 0 and written
    leaks = _leaks(tmp_path, stdout=cap.out, stderr=cap.err)  # (a name per leak, never the text)
    assert not leaks


@pytest.mark.parametrize("mode", ["401", "reply", "invalid"])
def test_scorer_results_and_errors_carry_no_key(llm, mode):
    """The API itself: every reason, extra field and raised error, for captions, images and reports."""
    import numpy as np

    from lora_iqa.scorers.openai import OpenAIScorer

    t = Template()
    llm(echo_key=mode, answer=lambda body: REPORT if "radiology-style" in json.dumps(body["messages"])
        else {"scores": dict.fromkeys(t.dimensions, 2)})
    s = OpenAIScorer(ScorerConfig(backend="openai", strategy="cot", max_retries=0), t, progress=False)
    results = s.score([t.render(dict.fromkeys(t.dimensions, 2))] * 3)
    results += s.score_images([[np.zeros((32, 32, 3))]])
    assert all(r.ok == (mode == "reply") for r in results)
    texts = {f"result {i}": json.dumps(r.to_dict()) for i, r in enumerate(results)}
    try:
        texts["report"] = s.report("noise is good.", {"noise": 3.0}, image="a.png")
    except LoraIqaError as e:
        assert mode == "401"
        texts["report error"] = str(e)
    texts["usage"] = s.usage_line()
    leaks = [name for name, text in texts.items() if SECRET in text]
    assert not leaks


def test_redact_removes_every_environment_secret(monkeypatch):
    from lora_iqa.scorers.openai import redact

    monkeypatch.setenv("OPENAI_API_KEY", f"  {SECRET}\n")  # pasted with whitespace: the client may strip it
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-ALSO-SECRET-91")
    monkeypatch.setenv("OPENAI_WEBHOOK_SECRET", "whsec-HOOK-SECRET-12")
    text = redact(f"Bearer {SECRET}; admin sk-admin-ALSO-SECRET-91, hook whsec-HOOK-SECRET-12, x")
    secrets = {"api key": SECRET, "admin key": "sk-admin-ALSO-SECRET-91", "webhook secret": "whsec-HOOK-SECRET-12"}
    leaks = [name for name, value in secrets.items() if value in text]
    assert not leaks
    kept = text.startswith("Bearer ") and text.endswith(", x")  # (a bool: a failure shows no text)
    assert kept
    monkeypatch.setenv("OPENAI_API_KEY", "x")  # a placeholder key for a local server is not a secret to hunt
    assert redact("x marks the spot") == "x marks the spot"


# --- class 8: an unwritable LLM cache -------------------------------------------------------------------

def test_unwritable_cache_is_one_line_before_any_call(llm, adapter_dir, manifest, tmp_path, capsys, monkeypatch):
    server = llm(answer=_answer(adapter_dir))
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("LORA_IQA_CACHE_DIR", str(blocker / "cache"))
    out = tmp_path / "eval.json"
    assert _eval(adapter_dir, manifest, out) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("lora-iqa: error: ")]
    assert len(errors) == 1 and str(blocker / "cache" / "llm") in errors[0] and "Traceback" not in err
    assert server.calls == 0 and not out.exists()


def test_unwritable_cache_via_the_api_and_cache_off(llm, tmp_path, monkeypatch):
    from lora_iqa.scorers.openai import OpenAIScorer

    llm()
    (tmp_path / "blocker").write_text("")
    monkeypatch.setenv("LORA_IQA_CACHE_DIR", str(tmp_path / "blocker"))
    with pytest.raises(LoraIqaError, match=f"{tmp_path / 'blocker' / 'llm'}: .*not writable"):
        OpenAIScorer(ScorerConfig(backend="openai"), Template(), progress=False)
    OpenAIScorer(ScorerConfig(backend="openai", cache=False), Template(), progress=False)  # the way out


def test_cache_unwritable_mid_run_loses_no_paid_reply(llm, adapter_dir, manifest, tmp_path, capsys):
    root = tmp_path / "cache" / "llm"
    answer, lock = _answer(adapter_dir), threading.Lock()

    def answer_then_break_the_cache(body: dict):
        with lock:  # the first request makes the cache folder a file; no reply leaves before that is done
            if not root.is_file():
                shutil.rmtree(root, ignore_errors=True)  # (unfixed, the cache made no folder up front)
                root.parent.mkdir(parents=True, exist_ok=True)
                root.write_text("")
        return answer(body)

    server = llm(answer=answer_then_break_the_cache)
    out = tmp_path / "eval.json"
    assert _eval(adapter_dir, manifest, out) == 0
    err = capsys.readouterr().err
    items = _items(out)
    assert all(it.get("status", "ok") == "ok" for it in items)  # every reply paid for is scored
    assert server.calls == len(items)  # and none was asked for twice
    warned = [line for line in err.splitlines() if str(root) in line]
    assert len(warned) == 1 and "Traceback" not in err, err
