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
from lora_iqa.protocols import Protocol
from lora_iqa.template import Template

SYSTEM = ("You are an expert in medical image quality assessment, reading images the way a radiologist "
          "rates them for diagnostic use.")


@dataclass(frozen=True)
class Shot:
    """One labelled in-context example: its items (1 image for ss, 2 for ds, k for ms) and answer."""

    items: tuple[Item, ...]
    answer: dict


def task(protocol: Protocol, template: Template, cot: bool, about: str) -> str:
    """The instruction: what to rate, on which scale, and the exact JSON to end with."""
    ask = protocol.task(template, about)
    if cot:
        ask += (" Think step by step: first reason about what you see for each dimension, then give the "
                'final JSON object last, with your reasoning in a "reasoning" field.')
    return ask


def caption_messages(caption: str, protocol: Protocol, template: Template, strategy: str,
                     shots: Sequence[Shot] = ()) -> list[dict]:
    """Messages that ask an LLM to turn a captioner's text into the protocol's answer."""
    instruction = task(protocol, template, strategy == "cot", protocol.about_caption)
    msgs: list[dict] = [{"role": "system", "content": SYSTEM + " You read a quality caption written by an "
                         "image-quality captioner and turn it into numbers, without adding anything it does not say."}]
    for shot in shots if strategy == "in_context" else ():
        msgs += [{"role": "user", "content": f'{instruction}\nCaption: "{protocol.shot_caption(shot.answer, template)}"'},
                 {"role": "assistant", "content": json.dumps(shot.answer)}]
    msgs.append({"role": "user", "content": f'{instruction}\nCaption: "{caption}"'})
    return msgs


def image_messages(images: Sequence[np.ndarray], protocol: Protocol, template: Template, strategy: str,
                   shots: Sequence[tuple[Sequence[np.ndarray], dict]] = ()) -> list[dict]:
    """Messages that send the images themselves (base64 PNG data URLs) to a vision-capable model."""
    instruction = task(protocol, template, strategy == "cot", protocol.about_images)
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


def draw_shots(items: Sequence[Item], protocol: Protocol, dimensions: Sequence[str], n: int, seed: int) -> list[Shot]:
    """``n`` labelled examples from (train) items, reproducible by seed; ds pairs and ms groups by overall."""
    rng = random.Random(seed)
    pool = list(items)
    level = {id(it): int(round(float(it.scores[dimensions[-1]]))) for it in pool}
    return [Shot(*protocol.shot(rng, pool, dimensions, level)) for _ in range(n)]


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
