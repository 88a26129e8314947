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

import copy
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DataLoaderConfiguration, set_seed
from safetensors.torch import save_file
from skimage.color import rgb2gray
from skimage.measure import blur_effect
from skimage.restoration import estimate_sigma
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from lora_iqa.config import Config
from lora_iqa.data.protocols import Sample
from lora_iqa.errors import atomic_path
from lora_iqa.evaluation import metrics_of, selection_score
from lora_iqa.model import count_params, pixel_values
from lora_iqa.template import LEVELS, Template
from lora_iqa.train import EpochSampler, TrainResult, ByEpoch, dihedral, has_accelerator

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


def train_head(cfg: Config, kind: str, vision: torch.nn.Module, processor, train_s: Sequence[Sample],
               val_s: Sequence[Sample], template: Template, progress: bool = True) -> tuple[HeadModel, TrainResult]:
    """Fine-tune ``vision`` (a copy) with a ``kind`` head on ss samples; keep the best validation step."""
    tc, out = cfg.train, Path(cfg.output_dir)
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    accelerator = Accelerator(gradient_accumulation_steps=tc.grad_accum, mixed_precision=tc.mixed_precision,
                              dataloader_config=DataLoaderConfiguration(split_batches=True), cpu=not has_accelerator())
    set_seed(cfg.seed)
    dims = template.dimensions
    model = HeadModel(copy.deepcopy(vision), len(dims), kind, len(LEVELS))
    model.requires_grad_(True)
    trainable, total = count_params(model)

    def collate(batch):
        rngs = [np.random.default_rng([cfg.seed, epoch, idx]) for epoch, idx, _ in batch]
        imgs = [dihedral(s.images[0], r) if tc.augment else s.images[0] for (_, _, s), r in zip(batch, rngs)]
        labels = torch.tensor([[s.labels[d] for d in dims] for _, _, s in batch])
        return pixel_values(imgs, processor), labels

    sampler = EpochSampler(len(train_s), cfg.seed)
    loader = DataLoader(ByEpoch(train_s, sampler), batch_size=tc.batch_size, sampler=sampler, collate_fn=collate,
                        drop_last=len(train_s) > tc.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, tc.warmup_steps, tc.max_steps)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    step, epoch, seen, losses, curve = 0, 0, 0, [], []
    best = (-2.0, 0, None, None)  # score, step, metrics, state
    t0 = time.perf_counter()
    bar = tqdm(total=tc.max_steps, desc=f"train {kind} head", unit="step", disable=not progress)
    while step < tc.max_steps:
        sampler.epoch, epoch = epoch, epoch + 1
        for pix, labels in loader:
            model.train()
            with accelerator.accumulate(model):
                loss = model(pix, labels)[1]
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), tc.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            seen += pix.shape[0] * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            step += 1
            losses.append(loss.item())
            bar.set_postfix(loss=f"{loss.item():.3f}", samples_s=f"{seen / (time.perf_counter() - t0):.1f}")
            bar.update(1)
            if step % tc.eval_every == 0 or step == tc.max_steps:
                m = metrics_of(head_items(accelerator.unwrap_model(model), processor, val_s, dims, tc.eval_batch_size), dims)
                score = selection_score(m, "ss")
                curve.append({"step": step, **{d: v["srcc"] for d, v in m.items()}})
                if score > best[0] or not tc.select_best:
                    state = {k: v.detach().clone() for k, v in accelerator.unwrap_model(model).state_dict().items()}
                    best = (score, step, m, state)
            if step >= tc.max_steps:
                break
    bar.close()
    seconds = time.perf_counter() - t0
    model = accelerator.unwrap_model(model)
    model.load_state_dict(best[3])
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.safetensors") as tmp:  # never a half-written weights file
        save_file({k: v.contiguous() for k, v in best[3].items()}, str(tmp))
    metrics = {d: {k: v[k] for k in ("srcc", "plcc", "krcc", "rmse")} for d, v in best[2].items()}
    return model.eval(), TrainResult(out, trainable, total, seconds, seen / max(seconds, 1e-9), best[1], metrics,
                                     losses, curve)


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


def head_items(model: HeadModel, processor, samples: Sequence[Sample], dims: Sequence[str], batch_size: int = 64) -> list[dict]:
    """Minimal ss items (truth, prediction) for validation metrics."""
    preds = head_scores(model, processor, [s.images[0] for s in samples], dims, batch_size)
    return [{"true": dict(s.labels), "pred": p} for s, p in zip(samples, preds)]


CLASSICAL_FEATURES = ("noise_sigma", "blur_effect", "grey_std")


def classical_features(image: np.ndarray) -> np.ndarray:
    """scikit-image's noise sigma and blur effect, and the grey-level standard deviation, of one image."""
    image = np.asarray(image, dtype=np.float64)  # an ImageFile is read here
    gray = rgb2gray(image) if image.ndim == 3 else image
    return np.array([estimate_sigma(gray), blur_effect(gray), gray.std()])


def fit_classical(train_s: Sequence[Sample], dims: Sequence[str]) -> np.ndarray:
    """Least-squares map (features + 1) -> each dimension, fitted on the train split: (4, dims)."""
    x = np.array([classical_features(s.images[0]) for s in tqdm(train_s, desc="classical features", unit="img", leave=False)])
    y = np.array([[s.labels[d] for d in dims] for s in train_s], dtype=np.float64)
    return np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)[0]


def classical_scores(coef: np.ndarray, images: Sequence[np.ndarray], dims: Sequence[str]) -> list[dict[str, float]]:
    """Per image, the fitted map's score per dimension."""
    x = np.array([classical_features(im) for im in images])
    return [dict(zip(dims, row)) for row in (np.c_[x, np.ones(len(x))] @ coef).tolist()]
