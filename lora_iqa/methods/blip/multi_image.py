"""Multi-image conditioning (ds, ms and every full-reference protocol): each image of a sample is
encoded by the ViT, a learned image-index embedding (one vector per position, trained and saved with the
adapter through peft's ``modules_to_save``) is added to its tokens, and the text decoder cross-attends
to all of them."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Sequence

import torch
from transformers import (
    BlipForConditionalGeneration,
)

from lora_iqa.methods.common import IMAGE_INDEX

MAX_IMAGES = 8  # image positions an index embedding has (ms k <= 6, plus the reference)
# Unit-scale like the ViT's layer-normed tokens. Measured (ds, embedded base, 300 steps): a zero start
# never learned to tell the images apart (pairwise accuracy 0.50); std 1 reached 0.80.
INDEX_STD = 1.0


def add_image_index(blip: BlipForConditionalGeneration) -> BlipForConditionalGeneration:
    """Give ``blip`` an image-index embedding (``MAX_IMAGES`` x hidden, N(0, INDEX_STD^2), seeded by the
    caller's torch seed) if it has none; returns it. A multi-image adapter trains its own copy (peft
    ``modules_to_save``), so one base serves adapters of every protocol; ss adapters never add it.
    """
    if not hasattr(blip, IMAGE_INDEX):
        emb = torch.nn.Embedding(MAX_IMAGES, blip.config.vision_config.hidden_size)
        torch.nn.init.normal_(emb.weight, std=INDEX_STD)
        emb.to(next(blip.parameters()).device)
        setattr(blip, IMAGE_INDEX, emb)
    return blip


def peft_names(model, adapter_names: Sequence[str] | None):
    """A context in which peft routes each batch row through its own adapter (a mixed batch);
    a no-op for ``None``. Uses the hook that ``PeftModel.forward(adapter_names=...)`` uses."""
    if adapter_names is None:
        return nullcontext()
    return model.base_model._enable_peft_forward_hooks(adapter_names=list(adapter_names))


def encode_images(model, pixels: torch.Tensor, index: bool, adapter_names: Sequence[str] | None = None) -> torch.Tensor:
    """(B, k, 3, S, S) pixels -> (B, k*N, D) tokens the text decoder cross-attends to.

    Every image goes through the ViT; with ``index`` the image-index embedding of its position is
    added to its tokens (so the decoder knows which image a token came from). ``adapter_names``: one
    adapter per row (a mixed batch).
    """
    blip = _unwrap(model)
    b, k = pixels.shape[:2]
    rows = None if adapter_names is None else [n for n in adapter_names for _ in range(k)]
    with peft_names(model, rows):
        tokens = blip.vision_model(pixel_values=pixels.flatten(0, 1)).last_hidden_state
    tokens = tokens.view(b, k, *tokens.shape[1:])
    if index:
        with peft_names(model, adapter_names):
            positions = torch.arange(k, device=pixels.device).expand(b, k)
            tokens = tokens + getattr(blip, IMAGE_INDEX)(positions).unsqueeze(2)
    return tokens.flatten(1, 2)


def _unwrap(model) -> BlipForConditionalGeneration:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class CaptionTrainer(torch.nn.Module):
    """The training forward for any number of images per sample (what Accelerate prepares and DDP wraps).

    4-D pixels (one image per sample, no index) go through BLIP's own forward; (B, k, 3, S, S) pixels
    through :func:`encode_images` and the text decoder, with the same caption loss.
    """

    def __init__(self, model, index: bool) -> None:
        super().__init__()
        self.model, self.index = model, index

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor):
        if pixel_values.dim() == 4:
            return self.model(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention_mask,
                              labels=labels)
        tokens = encode_images(self.model, pixel_values, self.index)
        return _unwrap(self.model).text_decoder(input_ids=input_ids, attention_mask=attention_mask,
                                                encoder_hidden_states=tokens, labels=labels, reduction="mean")
