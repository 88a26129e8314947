"""The offline, exact scorer: the template's inverse, plus a deterministic markdown report."""

from __future__ import annotations

from typing import Mapping, Sequence

from lora_iqa.protocols import SS, Protocol
from lora_iqa.scorers.results import Result, parse_caption
from lora_iqa.template import ACCEPTABILITY, LEVELS, Template


class TemplateScorer:
    """Reads captions in the template's grammar; a dimension it cannot read fails the item (with why)."""

    name = "template"

    def __init__(self, template: Template) -> None:
        self.template = template

    def score(self, texts: Sequence[str], protocol: Protocol = SS) -> list[Result]:
        """One :class:`Result` per caption."""
        return [parse_caption(t, protocol, self.template) for t in texts]

    def report(self, caption: str, scores: Mapping[str, float | None], image: str = "") -> str:
        """A radiology-style image-quality report (markdown) written from the caption and its scores."""
        return template_report(self.template, caption, scores, image)


def template_report(template: Template, caption: str, scores: Mapping[str, float | None], image: str = "") -> str:
    """Deterministic report: one finding per dimension, the overall level as diagnostic acceptability."""
    def level(v: float) -> str:
        return LEVELS[int(min(max(round(v), 0), len(LEVELS) - 1))]

    lines = ["# Image quality report", ""]
    if image:
        lines += [f"**Image:** `{image}`", ""]
    lines += ["## Technique and quality findings", ""]
    for d in template.dimensions:
        v = scores.get(d)
        if d != template.overall:
            lines.append(f"- **{d.capitalize()}:** " + ("not assessable from the caption" if v is None
                                                         else f"{level(v)} ({v:.2f} / 4)"))
    lines += ["", "## Impression", ""]
    v = scores.get(template.overall)
    if v is None:
        lines.append("Overall diagnostic quality could not be read from the caption.")
    else:
        lines.append(f"Overall image quality is **{level(v)}** ({v:.2f} / 4): "
                     f"{ACCEPTABILITY[LEVELS.index(level(v))]}.")
    lines += ["", f"> Model caption: \u201c{caption}\u201d", "",
              "_Written by lora_iqa's template scorer from the captioner's output; not a clinical report._", ""]
    return "\n".join(lines)
