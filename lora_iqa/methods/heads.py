"""Image-only baselines for the bench, on the same data, budget and evaluation as the captioners.

- ``regression`` / ``classification``: the IQAGPT paper's multi-task heads on the captioner's own ViT
  (its pooled output -> one score per dimension, or five level logits per dimension scored as the
  expected level). The ViT and the head are fully fine-tuned with the recipe's optimizer, schedule,
  step budget, augmentation and best-step selection on validation mean SRCC.
- ``classical``: a no-reference estimate with no deep features: scikit-image's noise sigma
  (``estimate_sigma``), blur effect (``blur_effect``) and the grey-level spread, mapped to each
  dimension by least squares on the train split.

Each yields per-image scores; the bench turns them into ds / ms judgements by comparing the overall.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from lora_iqa.data.pixels import pixel_values

HEADS = ("regression", "classification")


class HeadModel(torch.nn.Module):
    """The BLIP ViT with a multi-task head: per dimension a score, or level logits."""

    def __init__(self, vision: torch.nn.Module, dims: int, kind: str, levels: int) -> None:
        super().__init__()
        self.vision, self.kind, self.dims, self.levels = vision, kind, dims, levels
        self.head = torch.nn.Linear(vision.config.hidden_size, dims * (levels if kind == "classification" else 1))

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(scores on the 0..levels-1 scale (B, dims), loss or None)."""
        out = self.head(self.vision(pixel_values=pixel_values).pooler_output)
        if self.kind == "regression":
            loss = None if labels is None else torch.nn.functional.mse_loss(out, labels.float())
            return out, loss
        logits = out.view(-1, self.dims, self.levels)
        levels = torch.arange(self.levels, dtype=logits.dtype, device=logits.device)
        scores = (logits.softmax(-1) * levels).sum(-1)
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten().long())
        return scores, loss


@torch.no_grad()
def head_scores(model: HeadModel, processor, images: Sequence[np.ndarray], dims: Sequence[str],
                batch_size: int = 64) -> list[dict[str, float]]:
    """Per image, its predicted score per dimension."""
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        scores = model(pixel_values(images[i:i + batch_size], processor))[0]
        out += [dict(zip(dims, row)) for row in scores.tolist()]
    return out
