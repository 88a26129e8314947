"""Scores <-> quality caption (IQAGPT-style prompt template), with an exact inverse.

Every dimension is rated with the same five level words, so the caption has one "rating position"
per dimension whose next token is a level word; that is what logit scoring reads. The overall level
is also phrased as diagnostic acceptability on the LDCTIQAC scale.

Example (noise 3, artifact 2, sharpness 4, contrast 1, overall 2)::

    noise is good. artifact is fair. sharpness is excellent. contrast is poor.
    overall quality is fair, limited clinical interpretation.

Other domains (``Template(dims, domain="natural")`` or ``"aigc"``) keep the same grammar, but the
overall sentence ends at its level word (no clinical phrase), e.g.::

    sharpness is good. noise is fair. artifact is excellent. contrast is good. color is poor.
    overall quality is fair.

The CT domain (the default) is unchanged.

This module imports nothing from the package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

TEMPLATE_VERSION = "ct-v1"
LEVELS: tuple[str, ...] = ("bad", "poor", "fair", "good", "excellent")  # score 0 .. 4
CT_DIMENSIONS: tuple[str, ...] = ("noise", "artifact", "sharpness", "contrast", "overall")
ACCEPTABILITY: tuple[str, ...] = (
    "unacceptable for diagnostic interpretation",
    "no diagnostic interpretation possible",
    "limited clinical interpretation",
    "fit for diagnostic interpretation",
    "excellent for diagnostic interpretation",
)
DOMAINS: tuple[str, ...] = ("ct", "natural", "aigc")  # only "ct" phrases overall as diagnostic acceptability
# Natural photos (lora_iqa.data.synth.natural) and AI-generated images; overall last, as for CT.
NATURAL_DIMENSIONS: tuple[str, ...] = ("sharpness", "noise", "artifact", "contrast", "color", "overall")
AIGC_DIMENSIONS: tuple[str, ...] = ("sharpness", "noise", "color", "alignment", "overall")


@dataclass(frozen=True)
class Template:
    """A score <-> caption template for an ordered set of dimensions (0..4, higher is better)."""

    dimensions: tuple[str, ...] = CT_DIMENSIONS
    overall: str = "overall"
    domain: str = "ct"  # one of DOMAINS; not "ct": the overall sentence has no acceptability phrase

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"template: domain must be one of {DOMAINS}, got {self.domain!r}")

    def _tail(self, dim: str, level: int) -> str:
        """What follows ``dim``'s level word: the acceptability phrase (CT overall only) and the period."""
        return f", {ACCEPTABILITY[level]}." if dim == self.overall and self.domain == "ct" else "."

    def prefix(self, dim: str) -> str:
        """The words that precede ``dim``'s level word in a caption."""
        return f"{dim} quality is" if dim == self.overall else f"{dim} is"

    def render(self, scores: Mapping[str, int]) -> str:
        """Caption for integer scores in 0..4 (every dimension required)."""
        last = self.dimensions[-1]
        level = _level(scores, last)
        tail = f"{LEVELS[level]}" + self._tail(last, level)
        return f"{self.prompt(scores, last)} {tail}"

    def prompt(self, scores: Mapping[str, int], dim: str) -> str:
        """Caption text up to ``dim``'s rating position: earlier dimensions rendered from ``scores``."""
        parts = []
        for d in self.dimensions:
            if d == dim:
                return " ".join(parts + [self.prefix(d)])
            level = _level(scores, d)
            text = f"{self.prefix(d)} {LEVELS[level]}"
            parts.append(text + self._tail(d, level))
        raise KeyError(f"template: unknown dimension '{dim}'")

    def parse(self, caption: str) -> dict[str, int | None]:
        """Scores read back from a caption; a dimension that cannot be read is ``None`` (never guessed).

        Tolerant of case, punctuation and spacing. The overall level may come from its level word or,
        when that is absent, from its acceptability phrase (a one-to-one mapping, not a guess; CT only).
        """
        text = _normalise(caption)
        out: dict[str, int | None] = {}
        for dim in self.dimensions:
            out[dim] = self._find_level(text, dim)
            if out[dim] is None and dim == self.overall and self.domain == "ct":
                hits = [i for i, phrase in enumerate(ACCEPTABILITY) if phrase in text]
                out[dim] = hits[0] if len(hits) == 1 else None
        return out

    def _find_level(self, text: str, dim: str) -> int | None:
        words = "|".join(LEVELS)
        filler = r"(?:\s+(?:is|are|was|quality|level|score|rated|appears|looks|seems|overall))*"
        matches = re.findall(rf"\b{re.escape(dim)}\b{filler}\s+({words})\b", text)
        levels = {LEVELS.index(m) for m in matches}
        return levels.pop() if len(levels) == 1 else None  # absent or contradictory: missing


def _normalise(text: str) -> str:
    text = text.lower().replace("artifacts", "artifact").replace("artefact", "artifact")
    text = re.sub(r"[^a-z0-9\s]", " ", text)
    return " ".join(text.split())


def _level(scores: Mapping[str, int], dim: str) -> int:
    if dim not in scores:
        raise KeyError(f"template: missing score for dimension '{dim}'")
    value = scores[dim]
    if int(value) != value or not 0 <= value < len(LEVELS):
        raise ValueError(f"template: score for '{dim}' must be an integer 0..4, got {value!r}")
    return int(value)


PREFERENCES: tuple[str, ...] = ("first", "second", "similar")  # ds answers; preference value 0, 1, 0.5
PREFERENCE_VALUE = {"first": 0.0, "second": 1.0, "similar": 0.5}


def render_preference(choice: str) -> str:
    """Double-stimulus caption: ``first``/``second`` image is better, or the two are ``similar``."""
    if choice not in PREFERENCES:
        raise ValueError(f"template: preference must be one of {PREFERENCES}, got {choice!r}")
    return "the two images are similar." if choice == "similar" else f"the {choice} image is better."


def parse_preference(caption: str) -> str | None:
    """Inverse of :func:`render_preference`; ``None`` when absent or contradictory."""
    text = _normalise(caption)
    hits = set(re.findall(r"\b(first|second)\b(?:\s+(?:image|one|picture))?\s+(?:is|looks|appears)\s+better\b", text))
    if re.search(r"\b(?:similar|same quality|equal quality|equally good)\b", text):
        hits.add("similar")
    return hits.pop() if len(hits) == 1 else None


def render_ranking(order: Sequence[int]) -> str:
    """Multiple-stimulus caption for image numbers (1-based) from best to worst."""
    if sorted(order) != list(range(1, len(order) + 1)):
        raise ValueError(f"template: a ranking must be a permutation of 1..{len(order)}, got {list(order)!r}")
    return "ranking from best to worst: " + ", ".join(str(i) for i in order) + "."


def parse_ranking(caption: str, k: int) -> list[int] | None:
    """Inverse of :func:`render_ranking` for ``k`` images; ``None`` unless a permutation of 1..k is found."""
    m = re.search(r"\bbest to worst\b\s*((?:\d+\s*)+)", _normalise(caption))
    order = [int(t) for t in m.group(1).split()] if m else []
    return order if sorted(order) == list(range(1, k + 1)) else None


def vocabulary(dimensions: Sequence[str] = CT_DIMENSIONS, domain: str = "ct") -> list[str]:
    """Every word a caption of this template can contain (for building an offline tokenizer)."""
    tmpl = Template(tuple(dimensions), domain=domain)
    words = set(LEVELS) | ({w for phrase in ACCEPTABILITY for w in phrase.split()} if domain == "ct" else set())
    for dim in tmpl.dimensions:
        words |= set(tmpl.prefix(dim).split())
    return sorted(words)
