"""Chat messages for the LLM scorer: caption -> answer, images -> answer (zero-shot MLLM), report.

Strategies (MLLM-IQA study): ``standard``; ``in_context`` (labelled train examples as earlier turns);
``cot`` (reason first, then the final JSON). Nine prompting systems = ss/ds/ms x these three.
"""

from __future__ import annotations

import base64
import io
import json
import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from lora_iqa.data.manifest import Item
from lora_iqa.template import (
    ACCEPTABILITY,
    LEVELS,
    PREFERENCES,
    Template,
    render_preference,
    render_ranking,
)

SYSTEM = ("You are an expert in medical image quality assessment, reading images the way a radiologist "
          "rates them for diagnostic use.")
SCALE = ", ".join(f"{i} {w}" for i, w in enumerate(LEVELS))


@dataclass(frozen=True)
class Shot:
    """One labelled in-context example: its items (1 image for ss, 2 for ds, k for ms) and answer."""

    items: tuple[Item, ...]
    answer: dict


def task(protocol: str, template: Template, k: int, cot: bool, about: str) -> str:
    """The instruction: what to rate, on which scale, and the exact JSON to end with."""
    if protocol == "ss":
        ask = (f"Rate {about} on each quality dimension. Dimensions: {', '.join(template.dimensions)}. "
               f"Scale 0-4, higher is better: {SCALE}. The overall scale is diagnostic acceptability: "
               + "; ".join(f"{i} {a}" for i, a in enumerate(ACCEPTABILITY)) + ". "
               'Return a JSON object {"scores": {DIMENSION: NUMBER, ...}} with every dimension.')
    elif protocol == "ds":
        ask = (f"Compare the overall diagnostic quality of the 2 images ({about}). "
               f'Return a JSON object {{"preference": one of {json.dumps(list(PREFERENCES))}, '
               '"confidence": a number 0-1}; "similar" means the same overall level.')
    elif protocol == "ms":
        ask = (f"Rank the {k} images ({about}) by overall diagnostic quality. "
               f'Return a JSON object {{"ranking": [image numbers from best to worst]}}, a permutation of 1..{k}.')
    else:
        raise ValueError(f"unknown protocol '{protocol}'")
    if cot:
        ask += (" Think step by step: first reason about what you see for each dimension, then give the "
                'final JSON object last, with your reasoning in a "reasoning" field.')
    return ask


def caption_messages(caption: str, protocol: str, template: Template, strategy: str,
                     shots: Sequence[Shot] = (), k: int = 4) -> list[dict]:
    """Messages that ask an LLM to turn a captioner's text into the protocol's answer."""
    about = "the image described by the caption" if protocol == "ss" else "described by the caption"
    instruction = task(protocol, template, k, strategy == "cot", about)
    msgs: list[dict] = [{"role": "system", "content": SYSTEM + " You read a quality caption written by an "
                         "image-quality captioner and turn it into numbers, without adding anything it does not say."}]
    for shot in shots if strategy == "in_context" else ():
        msgs += [{"role": "user", "content": f'{instruction}\nCaption: "{_shot_caption(shot, protocol, template)}"'},
                 {"role": "assistant", "content": json.dumps(shot.answer)}]
    msgs.append({"role": "user", "content": f'{instruction}\nCaption: "{caption}"'})
    return msgs


def image_messages(images: Sequence[np.ndarray], protocol: str, template: Template, strategy: str,
                   shots: Sequence[tuple[Sequence[np.ndarray], dict]] = ()) -> list[dict]:
    """Messages that send the images themselves (base64 PNG data URLs) to a vision-capable model."""
    k = len(images)
    instruction = task(protocol, template, k, strategy == "cot", "the image" if protocol == "ss" else "shown below")
    msgs: list[dict] = [{"role": "system", "content": SYSTEM}]
    for shot_images, answer in shots if strategy == "in_context" else ():
        msgs += [{"role": "user", "content": _with_images(instruction, shot_images)},
                 {"role": "assistant", "content": json.dumps(answer)}]
    msgs.append({"role": "user", "content": _with_images(instruction, images)})
    return msgs


def report_messages(caption: str, scores: dict, template: Template) -> list[dict]:
    """Messages that ask for a radiology-style image-quality report from a caption and its scores."""
    facts = "; ".join(f"{d} {v:.2f}/4" for d, v in scores.items() if v is not None)
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": (
                "Write a concise radiology-style image-quality report in markdown with the sections "
                "'## Technique and quality findings' (one bullet per dimension) and '## Impression' (overall "
                "diagnostic acceptability). Use only these facts; do not invent anatomy or pathology.\n"
                f'Caption: "{caption}"\nScores (0 bad .. 4 excellent): {facts}')}]


def draw_shots(items: Sequence[Item], protocol: str, dimensions: Sequence[str], n: int, seed: int,
               k: int = 4) -> list[Shot]:
    """``n`` labelled examples from (train) items, reproducible by seed; ds pairs and ms groups by overall."""
    rng = random.Random(seed)
    pool = list(items)
    overall = dimensions[-1]
    level = {id(it): int(round(float(it.scores[overall]))) for it in pool}
    shots = []
    for _ in range(n):
        if protocol == "ss":
            it = rng.choice(pool)
            shots.append(Shot((it,), {"scores": {d: int(round(float(it.scores[d]))) for d in dimensions}}))
        elif protocol == "ds":
            a, b = rng.sample(pool, 2)
            diff = level[id(b)] - level[id(a)]
            pref = "similar" if diff == 0 else ("second" if diff > 0 else "first")
            shots.append(Shot((a, b), {"preference": pref, "confidence": 1.0}))
        elif protocol == "ms":
            group = rng.sample(pool, k)
            order = sorted(range(k), key=lambda i: (-level[id(group[i])], i))
            shots.append(Shot(tuple(group), {"ranking": [i + 1 for i in order]}))
        else:
            raise ValueError(f"unknown protocol '{protocol}'")
    return shots


def data_url(image: np.ndarray) -> str:
    """A float [0,1] grey or RGB image as a base64 PNG data URL (8-bit)."""
    arr = np.clip(np.asarray(image, dtype=np.float64) * 255 + 0.5, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _with_images(text: str, images: Sequence[np.ndarray]) -> list[dict]:
    parts: list[dict] = [{"type": "text", "text": text}]
    for i, im in enumerate(images, 1):
        if len(images) > 1:
            parts.append({"type": "text", "text": f"Image {i}:"})
        parts.append({"type": "image_url", "image_url": {"url": data_url(im)}})
    return parts


def _shot_caption(shot: Shot, protocol: str, template: Template) -> str:
    if protocol == "ss":
        return template.render(shot.answer["scores"])
    if protocol == "ds":
        return render_preference(shot.answer["preference"])
    return render_ranking(shot.answer["ranking"])
