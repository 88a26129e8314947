"""Training the image-only heads (IQAGPT's regression / classification on the captioner's ViT)."""

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
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from lora_iqa.config import Config
from lora_iqa.data.pixels import pixel_values
from lora_iqa.data.samples import Sample
from lora_iqa.errors import atomic_path
from lora_iqa.evaluation import metrics_of, selection_score
from lora_iqa.methods.common import count_params
from lora_iqa.methods.heads import HeadModel, head_scores
from lora_iqa.template import LEVELS, Template
from lora_iqa.training.accel import has_accelerator
from lora_iqa.training.run import TrainResult
from lora_iqa.training.sampling import ByEpoch, EpochSampler, dihedral


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


def head_items(model: HeadModel, processor, samples: Sequence[Sample], dims: Sequence[str], batch_size: int = 64) -> list[dict]:
    """Minimal ss items (truth, prediction) for validation metrics."""
    preds = head_scores(model, processor, [s.images[0] for s in samples], dims, batch_size)
    return [{"true": dict(s.labels), "pred": p} for s, p in zip(samples, preds)]
