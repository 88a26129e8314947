"""Scorers: turn the captioner's text into numbers and reports. ``template`` (offline, exact) or ``openai``."""

from __future__ import annotations

from typing import Sequence

from lora_iqa.config import ScorerConfig
from lora_iqa.data.manifest import Item
from lora_iqa.scorers.results import Result
from lora_iqa.template import Template

__all__ = ["Result", "make_scorer"]


def make_scorer(cfg: ScorerConfig, template: Template, train_items: Sequence[Item] = (), window=None,
                progress: bool = True):
    """The scorer ``cfg.backend`` names; both offer ``score(texts, protocol, k)`` and ``report(...)``."""
    if cfg.backend == "template":
        from lora_iqa.scorers.template_scorer import TemplateScorer

        return TemplateScorer(template)
    from lora_iqa.scorers.openai import OpenAIScorer

    return OpenAIScorer(cfg, template, train_items, window, progress)
