"""Structured scorer results and the one validator every backend's answer goes through.

An answer is a JSON object (or free text that holds one, or template-style text):
``ss`` ``{"scores": {dim: 0..4}}``, ``ds`` ``{"preference": "first"|"second"|"similar",
"confidence": 0..1}``, ``ms`` ``{"ranking": [image numbers, best first]}``. Anything that does not
validate is an item-level failure with its reason, never a guess.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from lora_iqa.template import (
    LEVELS,
    PREFERENCE_VALUE,
    PREFERENCES,
    Template,
    parse_preference,
    parse_ranking,
)

PROTOCOLS = ("ss", "ds", "ms")


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


def answer_schema(protocol: str, dimensions: tuple[str, ...], k: int = 4, reasoning: bool = False) -> dict:
    """JSON schema of the answer (``reasoning`` first for chain-of-thought), for structured output."""
    if protocol == "ss":
        props: dict[str, Any] = {"scores": {
            "type": "object", "additionalProperties": False, "required": list(dimensions),
            "properties": {d: {"type": "number", "minimum": 0, "maximum": len(LEVELS) - 1} for d in dimensions}}}
    elif protocol == "ds":
        props = {"preference": {"type": "string", "enum": list(PREFERENCES)},
                 "confidence": {"type": "number", "minimum": 0, "maximum": 1}}
    elif protocol == "ms":
        props = {"ranking": {"type": "array", "minItems": k, "maxItems": k,
                             "items": {"type": "integer", "minimum": 1, "maximum": k}}}
    else:
        raise ValueError(f"unknown protocol '{protocol}' (expected one of {PROTOCOLS})")
    if reasoning:
        props = {"reasoning": {"type": "string"}, **props}
    return {"type": "object", "additionalProperties": False, "required": list(props), "properties": props}


def parse_answer(text: str, protocol: str, template: Template, k: int = 4) -> Result:
    """Validate a reply: the last JSON object in it, else template-style words; failure says why."""
    obj = last_json_object(text)
    if obj is None:
        return parse_caption(text, protocol, template, k)
    result = validate(obj, protocol, template.dimensions, k)
    if isinstance(obj.get("reasoning"), str) and result.ok:
        result.extra["reasoning"] = obj["reasoning"]
    return result


def validate(obj: dict, protocol: str, dimensions: tuple[str, ...], k: int = 4) -> Result:
    """Check a decoded answer: every dimension present, values in range, a real permutation."""
    if protocol == "ss":
        scores = obj.get("scores", obj)
        if not isinstance(scores, dict):
            return failed("'scores' is not an object")
        out = {}
        for d in dimensions:
            if d not in scores:
                return failed(f"dimension '{d}' missing")
            v = _number(scores[d])
            if v is None:
                return failed(f"'{d}' is not a number or level word: {scores[d]!r}")
            if not 0 <= v <= len(LEVELS) - 1:
                return failed(f"'{d}'={v:g} out of range 0..{len(LEVELS) - 1}")
            out[d] = v
        return Result(status="ok", scores=out)
    if protocol == "ds":
        pref = obj.get("preference")
        if isinstance(pref, str) and pref.strip().lower() in PREFERENCES:
            value = PREFERENCE_VALUE[pref.strip().lower()]
        elif _number(pref) in (0.0, 0.5, 1.0) and not isinstance(pref, str):
            value = _number(pref)
        else:
            return failed(f"'preference' must be one of {list(PREFERENCES)}, got {pref!r}")
        conf = obj.get("confidence")
        if conf is not None and (_number(conf) is None or not 0 <= _number(conf) <= 1):
            return failed(f"'confidence' must be in 0..1, got {conf!r}")
        return Result(status="ok", preference=value, probability=None if conf is None else _number(conf))
    if protocol == "ms":
        ranking = obj.get("ranking")
        if not isinstance(ranking, list) or sorted(_int_or_none(r) or 0 for r in ranking) != list(range(1, k + 1)):
            return failed(f"'ranking' must be a permutation of 1..{k}, got {ranking!r}")
        return Result(status="ok", ranking=[int(r) for r in ranking])
    raise ValueError(f"unknown protocol '{protocol}' (expected one of {PROTOCOLS})")


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


def parse_caption(text: str, protocol: str, template: Template, k: int = 4) -> Result:
    """Read template-grammar text (the template scorer); missing or contradictory parts fail the item."""
    if protocol == "ss":
        levels = template.parse(text)
        missing = [d for d, v in levels.items() if v is None]
        if missing:
            return Result(status="failed", reason=f"no JSON and no readable level for {', '.join(missing)}",
                          scores={d: (None if v is None else float(v)) for d, v in levels.items()})
        return Result(status="ok", scores={d: float(v) for d, v in levels.items()})
    if protocol == "ds":
        choice = parse_preference(text)
        return failed("no JSON and no readable preference") if choice is None else \
            Result(status="ok", preference=PREFERENCE_VALUE[choice])
    if protocol == "ms":
        order = parse_ranking(text, k)
        return failed(f"no JSON and no readable ranking of 1..{k}") if order is None else Result(status="ok", ranking=order)
    raise ValueError(f"unknown protocol '{protocol}' (expected one of {PROTOCOLS})")


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, str):
        word = v.strip().lower()
        if word in LEVELS:
            return float(LEVELS.index(word))
        try:
            f = float(word)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def _int_or_none(v: Any) -> int | None:
    n = _number(v)
    return int(n) if n is not None and n == int(n) else None
