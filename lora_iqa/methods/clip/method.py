"""``adapter.method=clip_prompt``: antonym-prompt learning on a frozen CLIP (:mod:`lora_iqa.methods.clip.prompt`)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from lora_iqa.artifact import AdapterMeta
from lora_iqa.config import Config
from lora_iqa.data.augment import augmented
from lora_iqa.data.pixels import pixel_values
from lora_iqa.errors import LoraIqaError
from lora_iqa.methods.clip.base import load_clip
from lora_iqa.methods.clip.prompt import (
    TEMPLATE_VERSION,
    WEIGHTS_NAME,
    ClipPromptLearner,
    generation_prompt,
)
from lora_iqa.methods.common import check_base, check_file, check_safetensors
from lora_iqa.methods.interface import Collate, Method, Trainer
from lora_iqa.protocols import Protocol
from lora_iqa.template import Template


class ClipPrompt(Method):
    """Learnable text context and visual prompt tokens around a frozen CLIP; scores by antonym prompts."""

    name = "clip_prompt"
    title = "CLIP prompt learner"
    library_name = "lora_iqa"
    tags = "clip, prompt-learning, clip-prompt"
    template_version = TEMPLATE_VERSION
    captions = False  # it scores images; it writes no captions
    scoring = "antonym-prompt scoring"

    def load_base(self, cfg: Config):
        return load_clip(cfg.base)

    def attach(self, cfg: Config, model, processor, protocol: Protocol):
        learner = ClipPromptLearner(model, processor, cfg.adapter, cfg.data.dimensions, cfg.seed)
        learner.view = cfg.data.make_view()
        return learner

    def trainer(self, model, protocol: Protocol) -> torch.nn.Module:
        return Trainer(model)

    def collate(self, cfg: Config, processor, template: Template, protocol: Protocol, model,
                caption_fn: Callable | None = None) -> Collate:
        """Pixels, the 0..4 labels, and the generation prompts if aligned (``adapter.align_weight > 0``)."""
        tok = processor.tokenizer

        def collate(batch: list) -> dict[str, torch.Tensor]:
            _, imgs = augmented(cfg, processor, batch)  # ss: one image per sample
            labels = torch.tensor([[s.labels[d] for d in template.dimensions] for _, _, s in batch], dtype=torch.float32)
            out = {"pixel_values": pixel_values(imgs, processor), "labels": labels}
            if cfg.adapter.align_weight > 0:  # AI-generated images: their generation prompts
                enc = tok([generation_prompt(s.item) for _, _, s in batch], padding=True, truncation=True,
                          return_tensors="pt")
                out |= {"prompt_ids": enc.input_ids, "prompt_mask": enc.attention_mask}
            return out

        return collate

    def save(self, model, processor, out: Path, state_dict: dict | None = None) -> None:
        model.save_pretrained(str(out))

    def load(self, adapter_dir: Path, meta: AdapterMeta, base: str | None = None):
        try:
            cfg = meta.training_config()
        except LoraIqaError as e:
            raise LoraIqaError(f"{Path(adapter_dir) / 'lora_iqa.json'}: key 'config' is not a valid clip_prompt "
                               f"config ({e})") from None
        base_name = base or meta.base.name_or_path
        clip, processor = load_clip(base_name)
        check_base(clip, meta, adapter_dir, base_name)
        learner = ClipPromptLearner(clip, processor, cfg.adapter, meta.dimensions, cfg.seed)
        learner.load_prompts(adapter_dir)
        learner.view = meta.make_view()
        return learner.eval(), learner.processor

    def check_saved(self, root: Path) -> None:
        check_file(root / WEIGHTS_NAME)
        check_safetensors(root / WEIGHTS_NAME)

    def load_snippet(self, meta: AdapterMeta) -> str:
        return ("from lora_iqa.methods.load import load_trained\n"
                "learner, processor, meta = load_trained(\"PATH\")  # loads the CLIP base lora_iqa.json names\n"
                "scores = learner.scores([image])  # float [0, 1] arrays, (H, W) or (H, W, 3)")
