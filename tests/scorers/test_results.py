"""Tests for answer validation: a table of replies -> ok with the value, or failed with the reason."""

from __future__ import annotations

import json

import pytest

from lora_iqa.scorers.results import (
    answer_schema,
    last_json_object,
    parse_answer,
    validate,
)
from lora_iqa.errors import LoraIqaError
from lora_iqa.protocols import get_protocol
from lora_iqa.template import CT_DIMENSIONS, Template

T = Template()
GOOD = {"noise": 3, "artifact": 2, "sharpness": 4, "contrast": 1, "overall": 2}

CASES = [  # (protocol, reply text, expected value or None, reason fragment)
    ("ss", json.dumps({"scores": GOOD}), GOOD, None),
    ("ss", json.dumps(GOOD), GOOD, None),  # bare mapping
    ("ss", json.dumps({"scores": {**GOOD, "noise": 2.5}}), {**GOOD, "noise": 2.5}, None),
    ("ss", json.dumps({"scores": {**GOOD, "noise": "good"}}), GOOD, None),  # level word
    ("ss", "Let me think.\n```json\n" + json.dumps({"scores": GOOD}) + "\n```", GOOD, None),
    ("ss", '{"draft": 1} then {"reasoning": "x", "scores": ' + json.dumps(GOOD) + "}", GOOD, None),
    ("ss", T.render(GOOD), GOOD, None),  # free text in the template grammar
    ("ss", json.dumps({"scores": {**GOOD, "noise": 7}}), None, "'noise'=7 out of range"),
    ("ss", json.dumps({"scores": {**GOOD, "noise": -0.5}}), None, "out of range"),
    ("ss", json.dumps({"scores": {k: v for k, v in GOOD.items() if k != "contrast"}}), None, "'contrast' missing"),
    ("ss", json.dumps({"scores": {**GOOD, "noise": True}}), None, "not a number"),
    ("ss", json.dumps({"scores": {**GOOD, "noise": "NaN"}}), None, "not a number"),
    ("ss", json.dumps({"scores": [1, 2]}), None, "not an object"),
    ("ss", "noise is good. the rest is unclear", None, "no readable level for artifact"),
    ("ss", "", None, "no JSON"),
    ("ds", '{"preference": "second", "confidence": 0.8}', 1.0, None),
    ("ds", '{"preference": "First"}', 0.0, None),
    ("ds", '{"preference": 0.5}', 0.5, None),
    ("ds", "The second image is better.", 1.0, None),
    ("ds", "the two images are similar.", 0.5, None),
    ("ds", '{"preference": "third"}', None, "'preference' must be one of"),
    ("ds", '{"preference": "first", "confidence": 2}', None, "'confidence' must be in 0..1"),
    ("ds", "hard to say", None, "no readable preference"),
    ("ms", '{"ranking": [3, 1, 4, 2]}', [3, 1, 4, 2], None),
    ("ms", "Ranking from best to worst: 2, 1, 3, 4.", [2, 1, 3, 4], None),
    ("ms", '{"ranking": [3, 1, 1, 2]}', None, "permutation of 1..4"),
    ("ms", '{"ranking": [1, 2, 3]}', None, "permutation of 1..4"),
    ("ms", '{"ranking": "1,2,3,4"}', None, "permutation"),
]


@pytest.mark.parametrize("protocol,text,expected,reason", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_parse_answer(protocol, text, expected, reason):
    r = parse_answer(text, get_protocol(protocol, k=4), T)
    if reason is not None:
        assert r.status == "failed" and reason in r.reason, r
        return
    assert r.ok and r.reason is None
    got = {"ss": r.scores, "ds": r.preference, "ms": r.ranking}[protocol]
    assert got == expected


def test_reasoning_is_kept():
    r = parse_answer(json.dumps({"reasoning": "noise visible", "scores": GOOD}), get_protocol("ss"), T)
    assert r.ok and r.extra["reasoning"] == "noise visible"
    assert "reasoning" in r.to_dict()["extra"] and "preference" not in r.to_dict()


def test_last_json_object_ignores_broken_and_non_objects():
    assert last_json_object('{"a": 1} [1, 2] {"b": 2') == {"a": 1}
    assert last_json_object("no braces") is None


@pytest.mark.parametrize("protocol", ["ss", "ds", "ms"])
@pytest.mark.parametrize("reasoning", [False, True])
def test_answer_schema_is_strict(protocol, reasoning):
    schema = answer_schema(get_protocol(protocol, k=4), CT_DIMENSIONS, reasoning=reasoning)
    assert schema["additionalProperties"] is False and set(schema["required"]) == set(schema["properties"])
    assert ("reasoning" in schema["properties"]) == reasoning
    if reasoning:
        assert next(iter(schema["properties"])) == "reasoning"  # reason first, answer last
    if protocol == "ss":
        assert schema["properties"]["scores"]["required"] == list(CT_DIMENSIONS)


def test_validate_unknown_protocol():
    with pytest.raises(LoraIqaError, match="unknown protocol 'xx'"):
        validate({}, get_protocol("xx"), CT_DIMENSIONS)
