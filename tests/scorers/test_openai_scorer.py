"""The openai scorer against a real loopback HTTP server, through the real openai client.

Covers: every reply format x strategy agreeing with the template scorer (exact oracle), in-context
examples from the train split, images for the MLLM baseline, every injected fault, Retry-After,
a 30 % fault storm, the on-disk cache, and that the API key is written nowhere.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SECRET, captions
from PIL import Image
from pydicom.data import get_testdata_file

from lora_iqa.config import ScorerConfig
from lora_iqa.errors import LoraIqaError
from lora_iqa.protocols import get_protocol
from lora_iqa.scorers.openai import OpenAIScorer
from lora_iqa.scorers.template_scorer import TemplateScorer
from lora_iqa.template import Template, render_preference, render_ranking

T = Template()


def scorer(**kw) -> OpenAIScorer:
    train = kw.pop("train_items", ())
    return OpenAIScorer(ScorerConfig(backend="openai", **kw), T, train, progress=False)


@pytest.mark.parametrize("fmt", ["json_schema", "json_object", "text"])
@pytest.mark.parametrize("strategy", ["standard", "cot"])
def test_agrees_with_template_scorer(llm, fmt, strategy):
    server = llm()
    caps = captions(40, seed=1)
    got = scorer(response_format=fmt, strategy=strategy, cache=False).score(caps)
    want = TemplateScorer(T).score(caps)
    assert [r.scores for r in got] == [r.scores for r in want] and all(r.ok for r in got)
    body = server.requests[0]
    if fmt == "text":
        assert "response_format" not in body
    else:
        assert body["response_format"]["type"] == fmt
    if fmt == "json_schema":
        schema = body["response_format"]["json_schema"]["schema"]
        assert ("reasoning" in schema["properties"]) == (strategy == "cot")
    if strategy == "cot":
        assert all(r.extra.get("reasoning") for r in got)
        assert "step by step" in body["messages"][-1]["content"]


def test_ds_and_ms_captions(llm):
    llm()
    s = scorer(cache=False)
    assert [r.preference for r in s.score([render_preference(p) for p in ("first", "second", "similar")], get_protocol("ds"))] \
        == [0.0, 1.0, 0.5]
    assert s.score([render_ranking([2, 4, 1, 3])], get_protocol("ms", k=4))[0].ranking == [2, 4, 1, 3]


def test_in_context_examples_come_from_the_train_split(llm, manifest):
    from lora_iqa.data.manifest import read_manifest

    server = llm()
    m = read_manifest(manifest, T.dimensions)
    train = m.split("train")
    s = scorer(strategy="in_context", shots=3, train_items=train, cache=False)
    assert s.score(captions(2))[0].ok
    msgs = server.requests[0]["messages"]
    assert [x["role"] for x in msgs] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    train_labels = [{d: int(round(float(it.scores[d]))) for d in T.dimensions} for it in train]
    for ans in (json.loads(x["content"]) for x in msgs if x["role"] == "assistant"):
        assert ans["scores"] in train_labels
    assert server.requests[1]["messages"][:-1] == msgs[:-1]  # the same shots for every item (seeded)
    with pytest.raises(LoraIqaError, match="in_context needs labelled train items"):
        scorer(strategy="in_context", train_items=())


def _decode(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


@pytest.mark.parametrize("strategy", ["standard", "in_context", "cot"])
@pytest.mark.parametrize("protocol,n", [("ss", 1), ("ds", 2), ("ms", 4)])
def test_mllm_baseline_sends_the_images(llm, manifest, protocol, n, strategy):
    """The nine prompting systems: the images arrive as PNG data URLs; the answer validates."""
    from lora_iqa.data.io import load_image
    from lora_iqa.data.manifest import read_manifest

    answers = {"ss": {"scores": dict.fromkeys(T.dimensions, 2)}, "ds": {"preference": "second", "confidence": 0.7},
               "ms": {"ranking": [4, 3, 2, 1]}}
    server = llm(answer=lambda body: answers[protocol])
    m = read_manifest(manifest, T.dimensions)
    images = [load_image(it.image) for it in m.split("test")[:n]]
    s = scorer(strategy=strategy, shots=2, train_items=m.split("train"), cache=False)
    r = s.score_images([images], get_protocol(protocol))[0]
    assert r.ok
    assert {"ss": r.scores, "ds": r.preference, "ms": r.ranking}[protocol] == \
        {"ss": {d: 2.0 for d in T.dimensions}, "ds": 1.0, "ms": [4, 3, 2, 1]}[protocol]
    last = server.requests[0]["messages"][-1]["content"]
    sent = [_decode(p["image_url"]["url"]) for p in last if p["type"] == "image_url"]
    assert len(sent) == n
    for got, want in zip(sent, images):
        assert got.shape == want.shape and np.abs(got / 255.0 - want).max() <= 1 / 255 + 1e-9
    n_user = sum(x["role"] == "user" for x in server.requests[0]["messages"])
    assert n_user == (3 if strategy == "in_context" else 1)


def test_mllm_dicom_is_rendered_with_its_window(llm):
    from lora_iqa.data.io import load_image

    server = llm(answer=lambda body: {"scores": dict.fromkeys(T.dimensions, 1)})
    dcm = get_testdata_file("CT_small.dcm")
    narrow, wide = load_image(dcm, window=(40, 80)), load_image(dcm, window=(40, 2000))
    scorer(cache=False).score_images([[narrow], [wide]])
    sent = [_decode(r["messages"][-1]["content"][1]["image_url"]["url"]) for r in server.requests]
    sent = sorted(sent, key=lambda a: -a.std())  # requests run concurrently: arrival order is not fixed
    for got, want in zip(sent, (narrow, wide)):  # each request carries its own windowed rendering
        assert np.abs(got / 255.0 - want).max() <= 1 / 255 + 1e-9
    assert sent[0].std() > 1.5 * sent[1].std()  # the narrow window shows more contrast


@pytest.mark.parametrize("fault,reason", [
    ("429", "HTTP 429"), ("500", "HTTP 500"), ("hang", "timed out"), ("broken_json", "broken reply body"),
    ("empty_choices", "no choices"), ("out_of_range", "out of range")])
def test_persistent_fault_fails_the_item_with_its_reason(llm, fault, reason):
    server = llm(fault_rate=1.0, faults=(fault,), hang_seconds=1.0)
    results = scorer(timeout=0.3, max_retries=1, cache=False).score(captions(2))
    assert all(r.status == "failed" and reason in r.reason for r in results), results
    assert server.calls == 4  # 2 items x (1 try + 1 retry), by the client or by the scorer


def test_client_error_is_not_retried(llm, monkeypatch):
    server = llm()
    monkeypatch.setenv("OPENAI_BASE_URL", server.url.replace("/v1", "/nope"))
    r = scorer(cache=False, max_retries=3).score(captions(1))[0]
    assert r.status == "failed" and "HTTP 404" in r.reason and server.calls == 1


def test_retry_after_is_honoured(llm):
    server = llm(fault_rate=1.0, faults=("429",), retry_after=0.6)
    scorer(max_retries=1, cache=False).score(captions(1))
    (t0, _), (t1, _) = server.log
    assert t1 - t0 >= 0.6


def test_fault_storm_every_item_ends_scored_or_failed_with_values_of_the_clean_run(llm):
    """30 % injected faults (all six kinds) over 500 items: nothing crashes, the values do not change."""
    caps = captions(500, seed=7)
    llm()
    clean = scorer(cache=False, concurrency=16).score(caps)
    server = llm(fault_rate=0.3, hang_seconds=1.0, seed=3)
    stormy = scorer(cache=False, concurrency=16, timeout=0.4, max_retries=5).score(caps)
    faults = [f for _, f in server.log if f != "ok"]
    assert len(faults) / server.calls >= 0.28 and len(set(faults)) == 6
    assert all(r.ok or (r.status == "failed" and r.reason) for r in stormy)
    assert sum(r.ok for r in stormy) >= 495
    assert all(s.scores == c.scores for s, c in zip(stormy, clean) if s.ok)


def test_rerun_is_served_by_the_cache(llm):
    server = llm()
    caps = captions(30, seed=2)
    first = scorer()
    a = first.score(caps)
    assert server.calls == 30 and first.usage.calls == 30 and first.usage.prompt_tokens > 0
    second = scorer()
    b = second.score(caps)
    assert server.calls == 30 and second.usage.calls == 0 and second.usage.cache_hits == 30
    assert [r.scores for r in a] == [r.scores for r in b]
    scorer(model="another-model").score(caps[:1])  # the model is part of the key
    assert server.calls == 31


def test_invalid_replies_are_not_cached(llm):
    server = llm(fault_rate=1.0, faults=("out_of_range",))
    scorer(max_retries=0).score(captions(1))
    scorer(max_retries=0).score(captions(1))
    assert server.calls == 2


def test_usage_and_cost_line(llm):
    llm()
    s = scorer(cache=False, price_input=1.0, price_output=2.0)
    s.score(captions(3))
    u = s.usage
    assert u.cost(s.cfg) == pytest.approx((u.prompt_tokens + 2 * u.completion_tokens) / 1e6)
    assert "3 calls" in s.usage_line() and "$" in s.usage_line()


def test_report(llm):
    report = "## Technique and quality findings\n- Noise: good\n\n## Impression\nFit for diagnosis."
    server = llm(answer=lambda body: report)
    md = scorer(cache=False).report("noise is good.", {"noise": 3.0}, image="a.png")
    assert md.startswith("# Image quality report") and report in md and "`a.png`" in md
    assert "noise 3.00/4" in server.requests[0]["messages"][-1]["content"]
    server.answer = lambda body: "   "
    with pytest.raises(LoraIqaError, match="report for a.png failed: .*empty report"):
        scorer(cache=False, max_retries=0).report("noise is good.", {"noise": 3.0}, image="a.png")


def test_missing_key_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LoraIqaError, match="OPENAI_API_KEY is not set"):
        scorer()


def test_api_key_is_written_nowhere(llm, tmp_path):
    server = llm(fault_rate=0.3, seed=5, hang_seconds=0.5)
    s = scorer(timeout=0.3, strategy="cot")
    s.score(captions(20))
    assert server.headers[0]["authorization"] == f"Bearer {SECRET}"  # it was sent, to the server only
    written = [p for p in Path(tmp_path).rglob("*") if p.is_file()]
    assert written and not [p for p in written if SECRET.encode() in p.read_bytes()]
    assert SECRET not in s.usage_line()
