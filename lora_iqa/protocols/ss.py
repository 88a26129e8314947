"""Single stimulus: each image alone, scored 0..4 on every dimension."""

from __future__ import annotations

from typing import Sequence

from lora_iqa.metrics import correlations, fmt
from lora_iqa.protocols.base import AnswerError, Protocol, number
from lora_iqa.template import ACCEPTABILITY, LEVELS, Template

SCALE = ", ".join(f"{i} {w}" for i, w in enumerate(LEVELS))


class SingleStimulus(Protocol):
    """``ss``: one image (plus the reference for fr) -> a score per dimension."""

    name = "ss"
    title = "single stimulus: scores per dimension"
    selection = "mean_srcc"
    answer_keys = ("scores",)
    per_image = True
    about_caption = "the image described by the caption"
    about_images = "the image"

    @property
    def stimuli(self) -> int:
        return 1

    def caption(self, labels: dict, answer, template: Template) -> str:
        return template.render(labels)

    def caption_prompt(self, template: Template) -> str:
        return template.prefix(template.dimensions[0])

    def answer(self, pred: dict) -> dict:
        return {"scores": {d: (None if v is None else round(v, 4)) for d, v in pred["scores"].items()}}

    def answer_text(self, pred: dict) -> str:
        return " ".join(f"{d}={fmt(v)}" for d, v in (pred.get("scores") or {}).items())

    def result_answer(self, result, template: Template) -> dict:
        return {"scores": {d: (result.scores or {}).get(d) for d in template.dimensions}}

    def from_scores(self, scores: Sequence[dict], overall: str) -> dict:
        return {"scores": scores[0]}

    def judgement(self, pred: dict):
        return pred.get("scores")

    def item(self, paths: list[str], sample, pred: dict, extra: dict, template: Template) -> dict:
        return {"images": paths, "content": sample.item.content, "true": dict(sample.labels), "pred": pred["scores"],
                **extra}

    def metrics(self, items: Sequence[dict], template: Template) -> dict:
        """Per-dimension correlations over the items whose prediction is present (``missing``: the rest)."""
        out = {}
        for d in template.dimensions:
            pairs = [(it["pred"][d], it["true"][d]) for it in items if it["pred"].get(d) is not None]
            m = correlations([p for p, _ in pairs], [t for _, t in pairs])
            m["missing"] = len(items) - len(pairs)
            out[d] = m
        return out

    def selection_score(self, metrics: dict) -> float:
        """The mean SRCC over the dimensions (an undefined one counts as -1)."""
        vals = [m["srcc"] if m["srcc"] is not None else -1 for m in metrics.values()]
        return float(sum(vals) / len(vals))

    def metrics_line(self, metrics: dict, overall: str) -> str:
        return "  ".join(f"{d} SRCC {fmt(v['srcc'])}" for d, v in metrics.items())

    def draw(self, items: Sequence, n: int, seed: int, same_content: float, similar_below: float) -> list[tuple]:
        """Every item once, in order (``n`` and the seed do not apply)."""
        return [((it,), None) for it in items]

    def schema(self, dimensions: Sequence[str]) -> dict:
        return {"scores": {"type": "object", "additionalProperties": False, "required": list(dimensions),
                           "properties": {d: {"type": "number", "minimum": 0, "maximum": len(LEVELS) - 1}
                                          for d in dimensions}}}

    def validate(self, obj: dict, dimensions: Sequence[str]) -> dict:
        scores = obj.get("scores", obj)
        if not isinstance(scores, dict):
            raise AnswerError("'scores' is not an object")
        out = {}
        for d in dimensions:
            if d not in scores:
                raise AnswerError(f"dimension '{d}' missing")
            v = number(scores[d])
            if v is None:
                raise AnswerError(f"'{d}' is not a number or level word: {scores[d]!r}")
            if not 0 <= v <= len(LEVELS) - 1:
                raise AnswerError(f"'{d}'={v:g} out of range 0..{len(LEVELS) - 1}")
            out[d] = v
        return {"scores": out}

    def parse_text(self, text: str, template: Template) -> dict:
        levels = template.parse(text)
        scores = {d: (None if v is None else float(v)) for d, v in levels.items()}
        missing = [d for d, v in levels.items() if v is None]
        if missing:
            raise AnswerError(f"no JSON and no readable level for {', '.join(missing)}", {"scores": scores})
        return {"scores": scores}

    def task(self, template: Template, about: str) -> str:
        return (f"Rate {about} on each quality dimension. Dimensions: {', '.join(template.dimensions)}. "
                f"Scale 0-4, higher is better: {SCALE}. The overall scale is diagnostic acceptability: "
                + "; ".join(f"{i} {a}" for i, a in enumerate(ACCEPTABILITY)) + ". "
                'Return a JSON object {"scores": {DIMENSION: NUMBER, ...}} with every dimension.')

    def shot(self, rng, pool: Sequence, dimensions: Sequence[str], level: dict) -> tuple[tuple, dict]:
        it = rng.choice(pool)
        return (it,), {"scores": {d: int(round(float(it.scores[d]))) for d in dimensions}}

    def shot_caption(self, answer: dict, template: Template) -> str:
        return template.render(answer["scores"])
