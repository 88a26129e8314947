"""Structured scorer results and the one validator every backend's answer goes through.

An answer is a JSON object (or free text that holds one, or template-style text):
``ss`` ``{"scores": {dim: 0..4}}``, ``ds`` ``{"preference": "first"|"second"|"similar",
"confidence": 0..1}``, ``ms`` ``{"ranking": [image numbers, best first]}``. Anything that does not
validate is an item-level failure with its reason, never a guess.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from lora_iqa.protocols import AnswerError, Protocol
from lora_iqa.template import Template


@dataclass
class Result:
    """One item: ``status`` ok|failed, a ``reason`` when failed, and the protocol's answer."""

    status: str
    reason: str | None = None
    scores: dict[str, float | None] | None = None  # ss
    preference: float | None = None  # ds: 0 first better, 1 second better, 0.5 similar
    probability: float | None = None  # ds: the confidence in that preference, when known
    ranking: list[int] | None = None  # ms: image numbers (1-based), best first
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the model's reasoning (cot)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict without empty fields."""
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}


def failed(reason: str) -> Result:
    return Result(status="failed", reason=reason)


def answer_schema(protocol: Protocol, dimensions: tuple[str, ...], reasoning: bool = False) -> dict:
    """JSON schema of the answer (``reasoning`` first for chain-of-thought), for structured output."""
    props = protocol.schema(dimensions)
    if reasoning:
        props = {"reasoning": {"type": "string"}, **props}
    return {"type": "object", "additionalProperties": False, "required": list(props), "properties": props}


def parse_answer(text: str, protocol: Protocol, template: Template) -> Result:
    """Validate a reply: the last JSON object in it, else template-style words; failure says why."""
    obj = last_json_object(text)
    if obj is None:
        return parse_caption(text, protocol, template)
    result = validate(obj, protocol, template.dimensions)
    if isinstance(obj.get("reasoning"), str) and result.ok:
        result.extra["reasoning"] = obj["reasoning"]
    return result


def validate(obj: dict, protocol: Protocol, dimensions: tuple[str, ...]) -> Result:
    """Check a decoded answer: every dimension present, values in range, a real permutation."""
    try:
        return Result(status="ok", **protocol.validate(obj, dimensions))
    except AnswerError as e:
        return Result(status="failed", reason=str(e), **e.fields)


def last_json_object(text: str) -> dict | None:
    """The last JSON object in ``text`` (bare, fenced or after reasoning), or ``None``."""
    decoder = json.JSONDecoder()
    found = None
    i = text.find("{")
    while i != -1:
        try:
            obj, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            i = text.find("{", i + 1)
            continue
        if isinstance(obj, dict):
            found = obj
        i = text.find("{", end)
    return found


def parse_caption(text: str, protocol: Protocol, template: Template) -> Result:
    """Read template-grammar text (the template scorer); missing or contradictory parts fail the item."""
    try:
        return Result(status="ok", **protocol.parse_text(text, template))
    except AnswerError as e:
        return Result(status="failed", reason=str(e), **e.fields)
