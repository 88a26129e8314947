"""What every protocol is: how many images a sample shows, its answer, how answers are scored and asked for.

A protocol is a psychophysical procedure (ITU-R BT.500 / MLLM-IQA): single stimulus (``ss``, one image
scored per dimension), double stimulus (``ds``, which of two is better), multiple stimulus (``ms``, k
images ranked); each no-reference (``nr``) or full-reference (``fr``: the clean image of the stimuli's
content is shown last). Everything that differs between protocols is a method of its class here;
the rest of the package asks the object, never compares names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from lora_iqa.errors import LoraIqaError
from lora_iqa.metrics import correlations, thurstone_map
from lora_iqa.template import LEVELS, Template

REFERENCES = ("nr", "fr")  # no-reference; full-reference adds the clean reference image as one more input


class AnswerError(ValueError):
    """An answer that does not validate; ``fields``: what could be read of it (kept on the failed item)."""

    def __init__(self, reason: str, fields: dict | None = None) -> None:
        super().__init__(reason)
        self.fields = fields or {}


@dataclass(frozen=True)
class Protocol:
    """One protocol with its reference mode and (ms) group size ``k``."""

    reference: str = "nr"
    k: int = 4  # ms: images per ranking (ss and ds ignore it)

    name: ClassVar[str]
    title: ClassVar[str]  # what the answer is, for model cards
    selection: ClassVar[str]  # the validation number that selects the best step (higher is better)
    answer_keys: ClassVar[tuple[str, ...]]  # the answer fields of a prediction (score --json)
    per_image: ClassVar[bool] = False  # ss: each image judged alone; ds/ms: a group judged together

    def __post_init__(self) -> None:
        if self.reference not in REFERENCES:
            raise LoraIqaError(f"unknown reference {self.reference!r} (expected one of {', '.join(REFERENCES)})")

    @property
    def key(self) -> str:
        """``{name}_{reference}``, e.g. ``ds_fr``: an adapter's default name in an adapter set."""
        return f"{self.name}_{self.reference}"

    @property
    def full_reference(self) -> bool:
        return self.reference == "fr"

    @property
    def single_image(self) -> bool:
        """Whether the model sees one image per sample (ss, no reference)."""
        return self.per_image and not self.full_reference

    @property
    def stimuli(self) -> int:
        """Images judged per sample (the reference not counted)."""
        raise NotImplementedError

    @property
    def images(self) -> int:
        """Images the model sees per sample: the stimuli, plus the reference for fr."""
        return self.stimuli + self.full_reference

    def count_error(self, n: int) -> str | None:
        """Why ``n`` images cannot be scored as this protocol's samples (the reference not counted), or None."""
        return None

    # -- captions -----------------------------------------------------------------------------------
    def answer_captions(self) -> list[str]:
        """Every answer caption the decoder must be able to write (none for ss: the template's words)."""
        return []

    def caption(self, labels: dict, answer: Any, template: Template) -> str:
        """A sample's training caption from its labels (ss) or answer (ds/ms)."""
        raise NotImplementedError

    def caption_prompt(self, template: Template) -> str:
        """The text generation starts from (ss: the first dimension's prefix)."""
        return ""

    # -- answers --------------------------------------------------------------------------------------
    def answer(self, pred: dict) -> dict:
        """The answer fields of a prediction, as ``score --json`` writes them."""
        return {key: pred[key] for key in self.answer_keys if key in pred}

    def answer_text(self, pred: dict) -> str:
        """The answer in words, for the terminal."""
        raise NotImplementedError

    def result_answer(self, result, template: Template) -> dict:
        """A scorer's result (``scores`` / ``preference`` / ``ranking`` attributes) as prediction fields."""
        raise NotImplementedError

    def from_scores(self, scores: Sequence[dict], overall: str) -> dict:
        """The answer a per-image scorer gives: ``scores`` are each stimulus's scores, in order."""
        raise NotImplementedError

    def judgement(self, pred: dict):
        """The discrete answer of a prediction (ds preference, ms ranking), ``None`` when unanswered."""
        return pred.get(self.answer_keys[0])

    # -- evaluation -----------------------------------------------------------------------------------
    def item(self, paths: list[str], sample, pred: dict, extra: dict, template: Template) -> dict:
        """An ``eval --out`` item: the images, the truth and the prediction of one sample."""
        truth = [float(it.scores[template.overall]) for it in sample.items]
        answers = {k: v for k, v in pred.items() if k not in extra}
        return {"images": paths, "contents": [it.content for it in sample.items], "true": {template.overall: truth},
                "answer": sample.answer if isinstance(sample.answer, str) else list(sample.answer), "pred": answers,
                **extra}

    def metrics(self, items: Sequence[dict], template: Template) -> dict:
        """The judgement's own metric, plus the Thurstone scale's correlations under the overall dimension."""
        o = template.overall
        done = [it for it in items if self.judgement(it["pred"]) is not None]
        out = self.judgement_metrics(done, o)
        scale, truth = self.scale(done, o)
        m = correlations(scale, truth)
        m["rmse"] = None  # the scale is in z units, not on the 0..4 scale
        m["missing"] = len(items) - len(done)
        out[o] = m
        return out

    def judgement_metrics(self, done: Sequence[dict], overall: str) -> dict:
        raise NotImplementedError

    def comparisons(self, items: Sequence[dict]) -> list[tuple[str, str, float]]:
        """(image a, image b, 1 if a judged better, 0 worse, 0.5 similar) of every answered item."""
        raise NotImplementedError

    def scale(self, items: Sequence[dict], dim: str) -> tuple[list[float], list[float]]:
        """The Thurstone Case V scale (MAP) of every stimulus judged in ``items`` (every item answered), and
        each stimulus's true ``dim`` score, in path order."""
        truth = {path: t for it in items for path, t in zip(it["images"], it["true"][dim])}
        names = sorted(truth)
        pos = {p: i for i, p in enumerate(names)}
        scale = thurstone_map(len(names), [(pos[a], pos[b], w) for a, b, w in self.comparisons(items)])
        return scale.tolist(), [truth[p] for p in names]

    def selection_score(self, metrics: dict) -> float:
        """The number that selects the best validation step (higher is better; -1 when undefined)."""
        head, key = self.selection_key
        v = metrics[head][key]
        return -1.0 if v is None else float(v)

    selection_key: ClassVar[tuple[str, str]]  # where selection_score reads its number in the metrics
    judgement_label: ClassVar[str]  # the judgement metric in words

    def metrics_line(self, metrics: dict, overall: str) -> str:
        """One terminal row of ``eval``: the judgement's metric and the Thurstone scale's correlations."""
        from lora_iqa.metrics import fmt

        head, key = self.selection_key
        m, scale = metrics[head], metrics[overall]
        missing = f"  ({scale['missing']} unreadable)" if scale.get("missing") else ""
        return (f"{self.judgement_label} {fmt(m[key])} (n {m['n']})  Thurstone scale {overall} SRCC "
                f"{fmt(scale['srcc'])} PLCC {fmt(scale['plcc'])} KRCC {fmt(scale['krcc'])}{missing}")

    # -- sample drawing -------------------------------------------------------------------------------
    def draw(self, items: Sequence, n: int, seed: int, same_content: float, similar_below: float) -> list[tuple]:
        """``n`` (stimuli, answer) groups drawn from ``items`` (one split); fr draws within one content."""
        raise NotImplementedError

    # -- the LLM scorer -------------------------------------------------------------------------------
    def schema(self, dimensions: Sequence[str]) -> dict:
        """JSON-schema properties of the answer object (structured output)."""
        raise NotImplementedError

    def validate(self, obj: dict, dimensions: Sequence[str]) -> dict:
        """A decoded answer object's fields, checked; :class:`AnswerError` says what is wrong."""
        raise NotImplementedError

    def parse_text(self, text: str, template: Template) -> dict:
        """Template-grammar text read as answer fields; :class:`AnswerError` when it cannot be."""
        raise NotImplementedError

    def task(self, template: Template, about: str) -> str:
        """The instruction to an LLM: what to judge, on which scale, and the exact JSON to end with."""
        raise NotImplementedError

    about_caption: ClassVar[str] = "described by the caption"  # how a caption prompt names the image(s)
    about_images: ClassVar[str] = "shown below"  # how an image prompt names them

    def shot(self, rng, pool: Sequence, dimensions: Sequence[str], level: dict) -> tuple[tuple, dict]:
        """One labelled in-context example (items, answer) drawn with ``rng`` from ``pool``;
        ``level``: id(item) -> its overall level."""
        raise NotImplementedError

    def shot_caption(self, answer: dict, template: Template) -> str:
        """An example answer written as the captioner would write it."""
        raise NotImplementedError


def number(v: Any) -> float | None:
    """A finite number, or a level word's index, from a JSON value; ``None`` otherwise."""
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
