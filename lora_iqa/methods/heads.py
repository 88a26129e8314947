"""``adapter.method=regression`` / ``classification``: IQAGPT's image-only heads on the captioner's ViT.

The BLIP ViT's pooled output -> one score per dimension (``regression``, MSE), or five level logits per
dimension scored as the expected level (``classification``, cross-entropy). The ViT and the head are fully
fine-tuned by the one training loop with the recipe's optimizer, schedule, step budget, augmentation and
best-step selection on validation mean SRCC; they score single images (ss, nr), with no captions. The
bench turns their per-image scores into ds / ms judgements by comparing the overall.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Sequence

import torch

from lora_iqa.artifact import AdapterMeta
from lora_iqa.config import Config
from lora_iqa.data.augment import augmented
from lora_iqa.data.pixels import pixel_values
from lora_iqa.errors import LoraIqaError, first_line
from lora_iqa.methods.blip.base import load_base
from lora_iqa.methods.common import SAFE_WEIGHTS, check_base, check_file, check_safetensors
from lora_iqa.methods.interface import Collate, ImageScorer, Method, Trainer
from lora_iqa.protocols import Protocol
from lora_iqa.template import LEVELS, Template

HEADS = ("regression", "classification")


class HeadModel(ImageScorer):
    """The BLIP ViT with a multi-task head: per dimension a score, or level logits."""

    def __init__(self, vision: torch.nn.Module, dimensions: Sequence[str], kind: str, processor=None) -> None:
        super().__init__()
        self.vision, self.kind, self.dimensions, self.processor = vision, kind, tuple(dimensions), processor
        self.dims, self.levels = len(self.dimensions), len(LEVELS)
        self.head = torch.nn.Linear(vision.config.hidden_size, self.dims * (self.levels if kind == "classification" else 1))

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> SimpleNamespace:
        """``.logits``: scores on the 0..4 scale (B, dims); ``.loss`` with labels (else None)."""
        out = self.head(self.vision(pixel_values=pixel_values).pooler_output)
        if self.kind == "regression":
            loss = None if labels is None else torch.nn.functional.mse_loss(out, labels.float())
            return SimpleNamespace(logits=out, loss=loss)
        logits = out.view(-1, self.dims, self.levels)
        levels = torch.arange(self.levels, dtype=logits.dtype, device=logits.device)
        scores = (logits.softmax(-1) * levels).sum(-1)
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten().long())
        return SimpleNamespace(logits=scores, loss=loss)

    @torch.no_grad()
    def view_scores(self, crops: list) -> list[dict[str, float]]:
        """Per crop, its predicted score per dimension."""
        self.eval()
        return [dict(zip(self.dimensions, row)) for row in self(pixel_values(crops, self.processor)).logits.tolist()]


class ImageHead(Method):
    """A fully fine-tuned ViT with a ``regression`` or ``classification`` head."""

    library_name, captions, scoring = "lora_iqa", False, "head scoring"

    def __init__(self, kind: str) -> None:
        self.name, self.title, self.tags = kind, f"image-only {kind} head", f"blip, image-only-head, {kind}"

    def load_base(self, cfg: Config):
        return load_base(cfg.base)

    def attach(self, cfg: Config, model, processor, protocol: Protocol):
        # the head's initial weights depend on the seed alone, not on what loading the base drew
        torch.manual_seed(cfg.seed)
        head = HeadModel(model.vision_model, cfg.data.dimensions, self.name, processor).requires_grad_(True)
        head.view = cfg.data.make_view()
        return head

    def trainer(self, model, protocol: Protocol) -> torch.nn.Module:
        return Trainer(model)

    def collate(self, cfg: Config, processor, template: Template, protocol: Protocol, model,
                caption_fn: Callable | None = None) -> Collate:
        """Pixels and the integer 0..4 labels (ss: one image per sample)."""
        def collate(batch: list) -> dict[str, torch.Tensor]:
            _, imgs = augmented(cfg, processor, batch)
            labels = torch.tensor([[s.labels[d] for d in template.dimensions] for _, _, s in batch])
            return {"pixel_values": pixel_values(imgs, processor), "labels": labels}

        return collate

    def save(self, model, processor, out: Path, state_dict: dict | None = None) -> None:
        from safetensors.torch import save_file

        state = state_dict if state_dict is not None else model.state_dict()
        save_file({k: v.contiguous() for k, v in state.items()}, str(out / SAFE_WEIGHTS))

    def load(self, adapter_dir: Path, meta: AdapterMeta, base: str | None = None):
        from safetensors.torch import load_file

        base_name = base or meta.base.name_or_path
        blip, processor = load_base(base_name)
        check_base(blip, meta, adapter_dir, base_name)
        model = HeadModel(blip.vision_model, meta.dimensions, self.name, processor)
        model.view = meta.make_view()
        weights = adapter_dir / SAFE_WEIGHTS
        try:
            model.load_state_dict(load_file(str(weights)))
        except FileNotFoundError:
            raise LoraIqaError(f"{weights}: not found") from None
        except Exception as e:  # safetensors' own errors, or tensors that do not fit the head
            raise LoraIqaError(f"{weights}: cannot load the head ({type(e).__name__}: {first_line(e)})") from None
        return model.eval(), processor

    def check_saved(self, root: Path) -> None:
        check_file(root / SAFE_WEIGHTS)
        check_safetensors(root / SAFE_WEIGHTS)
