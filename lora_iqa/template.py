"""Scores <-> quality caption (IQAGPT-style prompt template), with an exact inverse.

Every dimension is rated with the same five level words, so the caption has one "rating position"
per dimension whose next token is a level word; that is what logit scoring reads. The overall level
is also phrased as diagnostic acceptability on the LDCTIQAC scale.

Example (noise 3, artifact 2, sharpness 4, contrast 1, overall 2)::

    noise is good. artifact is fair. sharpness is excellent. contrast is poor.
    overall quality is fair, limited clinical interpretation.

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


@dataclass(frozen=True)
class Template:
    """A score <-> caption template for an ordered set of dimensions (0..4, higher is better)."""

    dimensions: tuple[str, ...] = CT_DIMENSIONS
    overall: str = "overall"

    def prefix(self, dim: str) -> str:
        """The words that precede ``dim``'s level word in a caption."""
        return f"{dim} quality is" if dim == self.overall else f"{dim} is"

    def render(self, scores: Mapping[str, int]) -> str:
        """Caption for integer scores in 0..4 (every dimension required)."""
        last = self.dimensions[-1]
        level = _level(scores, last)
        tail = f"{LEVELS[level]}" + (f", {ACCEPTABILITY[level]}." if last == self.overall else ".")
        return f"{self.prompt(scores, last)} {tail}"

    def prompt(self, scores: Mapping[str, int], dim: str) -> str:
        """Caption text up to ``dim``'s rating position: earlier dimensions rendered from ``scores``."""
        parts = []
        for d in self.dimensions:
            if d == dim:
                return " ".join(parts + [self.prefix(d)])
            level = _level(scores, d)
            text = f"{self.prefix(d)} {LEVELS[level]}"
            parts.append(text + (f", {ACCEPTABILITY[level]}." if d == self.overall else "."))
        raise KeyError(f"template: unknown dimension '{dim}'")

    def parse(self, caption: str) -> dict[str, int | None]:
        """Scores read back from a caption; a dimension that cannot be read is ``None`` (never guessed).

        Tolerant of case, punctuation and spacing. The overall level may come from its level word or,
        when that is absent, from its acceptability phrase (a one-to-one mapping, not a guess).
        """
        text = _normalise(caption)
        out: dict[str, int | None] = {}
        for dim in self.dimensions:
            out[dim] = self._find_level(text, dim)
            if out[dim] is None and dim == self.overall:
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


def vocabulary(dimensions: Sequence[str] = CT_DIMENSIONS) -> list[str]:
    """Every word a caption of this template can contain (for building an offline tokenizer)."""
    tmpl = Template(tuple(dimensions))
    words = set(LEVELS) | {w for phrase in ACCEPTABILITY for w in phrase.split()}
    for dim in tmpl.dimensions:
        words |= set(tmpl.prefix(dim).split())
    return sorted(words)
