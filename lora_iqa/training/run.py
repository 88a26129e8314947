"""One Accelerate training loop for LoRA and full fine-tuning.

Warmup + cosine schedule, gradient clipping, accumulation, fp32/bf16, validation with best-step
selection, checkpoints every N steps (:mod:`lora_iqa.training.checkpoint`: JSON and safetensors, nothing
unpickled on resume), and the adapter directory (``training.card.save_trained``) at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DataLoaderConfiguration, DistributedType, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from lora_iqa import __version__
from lora_iqa.artifact import AdapterMeta, BaseRef
from lora_iqa.config import Config
from lora_iqa.data.manifest import read_manifest
from lora_iqa.data.samples import Sample, protocol_samples
from lora_iqa.errors import LoraIqaError
from lora_iqa.evaluation import items_of, predict
from lora_iqa.methods.common import count_params
from lora_iqa.methods.registry import get_method
from lora_iqa.metrics import fmt
from lora_iqa.protocols import Protocol
from lora_iqa.training.accel import has_accelerator
from lora_iqa.training.card import save_trained
from lora_iqa.training.checkpoint import (
    LoopState,
    check_checkpointable,
    find_checkpoint,
    load_checkpoint,
    save_checkpoint,
    trainable_params,
)
from lora_iqa.training.outdir import claim_output_dir
from lora_iqa.training.sampling import ByEpoch, EpochSampler
from lora_iqa.training.tracking import Tracker
from lora_iqa.views import View

CaptionFn = Callable[[Sample, np.random.Generator], str]


@dataclass
class TrainResult:
    """What a run produced: the saved directory and its cost figures."""

    dir: Path
    trainable_params: int
    total_params: int
    train_seconds: float
    samples_per_s: float
    best_step: int
    metrics: dict
    losses: list[float] = field(default_factory=list)  # per optimizer step
    curve: list[dict] = field(default_factory=list)  # {"step", DIM: val SRCC} at each evaluation


def run(cfg: Config, base=None, caption_fn: CaptionFn | None = None, progress: bool = True) -> TrainResult:
    """Train ``cfg`` and save its adapter (or full model) directory at ``cfg.output_dir``.

    ``base`` may be a preloaded ``(model, processor)``; otherwise ``cfg.base`` is loaded.
    ``caption_fn`` overrides the quality template as the caption source (used to pre-train a base).
    ``cfg.resume`` (``auto`` or a checkpoint path) continues a run exactly where its checkpoint left it.
    """
    out = Path(cfg.output_dir)
    resume_from = find_checkpoint(out, cfg.resume)
    with claim_output_dir(out, fresh=resume_from is None, overwrite=cfg.overwrite):
        return _run(cfg, out, resume_from, base, caption_fn, progress)


@dataclass
class _Setup:
    """What a run trains: the wrapped model and its pieces, prepared by Accelerate."""

    accelerator: Accelerator
    model: torch.nn.Module  # the method's training forward (its trainer), prepared
    processor: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    loader: DataLoader
    val_loader: DataLoader
    sampler: EpochSampler
    params: list
    val_s: list
    base_name: str
    base_fp: str
    protocol: Protocol
    trainable: int
    total: int


def _run(cfg: Config, out: Path, resume_from: Path | None, base, caption_fn: CaptionFn | None,
         progress: bool) -> TrainResult:
    s = _setup(cfg, out, base, caption_fn, progress)
    state = LoopState()
    if cfg.train.save_every or resume_from is not None:
        check_checkpointable(s.accelerator)
    if resume_from is not None:
        load_checkpoint(resume_from, s.accelerator, s.model, s.optimizer, s.scheduler, state, s.base_fp)
        s.accelerator.print(f"resumed from {resume_from} at step {state.step}")
    tracker = Tracker(s.accelerator, cfg, out, state.tracker_id)
    state.tracker_id = tracker.run_id
    seen, seconds = _loop(cfg, out, s, state, tracker, progress)
    meta = _save(cfg, out, s, state)
    tracker.finish(state.best_items, state.best_step)
    s.accelerator.wait_for_everyone()
    s.accelerator.end_training()
    return TrainResult(out, s.trainable, s.total, seconds, seen / max(seconds, 1e-9), state.best_step, meta.metrics,
                       state.losses, state.curve)


def _accelerator(cfg: Config, out: Path) -> Accelerator:
    tc = cfg.train
    # One process may run several trainings (demo, bench) with different precision/accumulation:
    # clear Accelerate's per-run singletons; the distributed PartialState is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()
    # split_batches: train.batch_size is the global batch, split across processes (one recipe, any world size)
    accelerator = Accelerator(gradient_accumulation_steps=tc.grad_accum, mixed_precision=tc.mixed_precision,
                              log_with=None if cfg.tracking == "none" else cfg.tracking, project_dir=str(out),
                              dataloader_config=DataLoaderConfiguration(split_batches=True),
                              cpu=not has_accelerator())  # no GPU: `accelerate launch --multi_gpu` runs gloo DDP
    for key, size in (("train.batch_size", tc.batch_size), ("train.eval_batch_size", tc.eval_batch_size)):
        if size % accelerator.num_processes:
            raise LoraIqaError(f"key '{key}' ({size}) must be divisible by the {accelerator.num_processes} processes")
    return accelerator


def _setup(cfg: Config, out: Path, base, caption_fn: CaptionFn | None, progress: bool) -> _Setup:
    """Accelerator, base + adapter, samples, loaders, optimizer and schedule, in the order that fixes the seeds' draws."""
    tc = cfg.train
    accelerator = _accelerator(cfg, out)
    set_seed(cfg.seed)
    method, protocol = get_method(cfg.adapter.method), cfg.make_protocol()
    model, processor = base if base is not None else method.load_base(cfg)
    base_name = getattr(model.config, "_name_or_path", "") or cfg.base
    base_fp = method.fingerprint(cfg, model)
    model = method.attach(cfg, model, processor, protocol)
    trainable, total = count_params(model)
    accelerator.print(f"trainable params: {trainable:,} / {total:,} ({100 * trainable / total:.2f}%)")

    template = cfg.template()
    train_s, val_s = _samples(cfg, protocol, accelerator, template, progress)
    collate = method.collate(cfg, processor, template, protocol, model, caption_fn)
    sampler = EpochSampler(len(train_s), cfg.seed)
    loader = DataLoader(ByEpoch(train_s, sampler), batch_size=tc.batch_size, sampler=sampler, collate_fn=collate,
                        drop_last=len(train_s) > tc.batch_size)
    val_loader = DataLoader(torch.arange(len(val_s)), batch_size=tc.eval_batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, tc.warmup_steps, tc.max_steps)
    wrapped = method.trainer(model, protocol)
    wrapped, optimizer, loader, val_loader, scheduler = accelerator.prepare(wrapped, optimizer, loader, val_loader,
                                                                            scheduler)
    return _Setup(accelerator, wrapped, processor, optimizer, scheduler, loader, val_loader, sampler, params, val_s,
                  str(base_name), base_fp, protocol, trainable, total)


def _samples(cfg: Config, protocol: Protocol, accelerator: Accelerator, template,
             progress: bool) -> tuple[list[Sample], list[Sample]]:
    """The train and val samples of the recipe's manifest (every image read once first: a bad one stops here)."""
    if cfg.data.manifest is None:
        raise LoraIqaError("key 'data.manifest' is required for training")
    with accelerator.main_process_first():
        manifest = read_manifest(cfg.data.manifest, cfg.data.dimensions)
    d = cfg.data
    train_s, val_s = (protocol_samples(manifest.split(split), protocol, template.dimensions,
                                       cfg.seed + i, d.per_image, d.same_content, d.similar_below, d.window,
                                       spacing=d.make_view().spacing,
                                       check=accelerator.is_main_process,  # a bad image stops it before it starts
                                       progress=progress and accelerator.is_main_process)
                      for i, split in enumerate(("train", "val")))
    if not train_s or not val_s:
        raise LoraIqaError(f"{manifest.path}: needs rows in both the train and val splits")
    return train_s, val_s


def _loop(cfg: Config, out: Path, s: _Setup, state: LoopState, tracker: Tracker, progress: bool) -> tuple[int, float]:
    """Optimizer steps until ``train.max_steps``: accumulate, stop on a non-finite loss, clip, step, schedule,
    validate and keep the best, checkpoint. Returns (samples seen, seconds)."""
    tc, acc = cfg.train, s.accelerator
    seen, t0 = 0, time.perf_counter()
    bar = tqdm(total=tc.max_steps, initial=state.step, desc=f"train {cfg.adapter.method}", unit="step",
               disable=not (progress and acc.is_local_main_process))
    while state.step < tc.max_steps:
        s.sampler.epoch = state.epoch
        for batch in acc.skip_first_batches(s.loader, state.batch) if state.batch else s.loader:
            state.batch += 1
            s.model.train()
            with acc.accumulate(s.model):
                loss = s.model(**batch).loss
                if not torch.isfinite(acc.reduce(loss.detach(), "sum")):  # every rank stops together
                    raise LoraIqaError(f"{out}: the training loss is non-finite ({loss.item()}) at step "
                                       f"{state.step + 1}; stopped, nothing saved (lower 'train.lr', or check "
                                       "the base and the data)")
                acc.backward(loss)
                if acc.sync_gradients:
                    acc.clip_grad_norm_(s.params, tc.max_grad_norm)
                s.optimizer.step()
                s.scheduler.step()
                s.optimizer.zero_grad()
            seen += batch["pixel_values"].shape[0] * acc.num_processes
            if not acc.sync_gradients:
                continue
            state.step += 1
            step = state.step
            bar.set_postfix(loss=f"{loss.item():.3f}", samples_s=f"{seen / (time.perf_counter() - t0):.1f}")
            bar.update(1)
            state.losses.append(loss.item())
            tracker.log({"train/loss": loss.item(), "train/lr": s.scheduler.get_last_lr()[0]}, step)
            if step % tc.eval_every == 0 or step == tc.max_steps:
                _evaluate_step(cfg, s, state, tracker, bar)
            if tc.save_every and step % tc.save_every == 0:
                save_checkpoint(out, step, acc, s.model, s.optimizer, s.scheduler, state, s.base_fp)
            if step >= tc.max_steps:
                break
        else:
            state.epoch, state.batch = state.epoch + 1, 0
    bar.close()
    return seen, time.perf_counter() - t0


def _evaluate_step(cfg: Config, s: _Setup, state: LoopState, tracker: Tracker, bar) -> None:
    """Validate now; log it, add it to the curve, and keep the weights if it is the best so far."""
    template, protocol, step = cfg.template(), s.protocol, state.step
    # validation reads the central window only (grid 1): it picks the best step, a cost paid every eval_every
    # steps, and the full grid would multiply it by grid**2 (9x at 3 x 3)
    items = _validate(s.accelerator, s.model, s.processor, s.val_s, s.val_loader, template, protocol, protocol.images > 1,
                      replace(cfg.data.make_view(), grid=1))
    m = protocol.metrics(items, template)
    score = protocol.selection_score(m)
    srcc = {dim: v["srcc"] for dim, v in m.items() if "srcc" in v}
    tracker.log({f"val/{dim}_srcc": v for dim, v in srcc.items()} | {f"val/{protocol.selection}": score}, step)
    state.curve.append({"step": step, **srcc} | ({} if protocol.per_image else {protocol.selection: score}))
    if s.accelerator.is_main_process:
        bar.write(f"step {step}: val {protocol.selection.replace('_', ' ')} {score:.3f} "
                  f"(overall SRCC {fmt(m[template.overall]['srcc'])})")
    if score > state.best_score or not cfg.train.select_best:
        state.best_score, state.best_step, state.best_metrics = score, step, m
        state.best_items = items
        state.best_state = _trainable_state(s.model, s.accelerator)


def _save(cfg: Config, out: Path, s: _Setup, state: LoopState) -> AdapterMeta:
    """The best step's weights into the model, then the directory (rank 0 writes); returns its lora_iqa.json."""
    acc, template = s.accelerator, cfg.template()
    unwrapped = acc.unwrap_model(s.model).model
    if state.best_state is not None:
        unwrapped.load_state_dict(state.best_state, strict=False)
    method = get_method(cfg.adapter.method)
    meta = AdapterMeta(
        method=cfg.adapter.method, protocol=cfg.protocol, reference=cfg.reference, images=s.protocol.images,
        dimensions=template.dimensions, domain=template.domain,
        template_version=method.template_version,
        base=BaseRef(s.base_name, s.base_fp), config=cfg.to_dict(), num_processes=acc.num_processes,
        step=state.best_step,
        metrics={dim: ({k: v[k] for k in ("srcc", "plcc", "krcc", "rmse")} if "srcc" in v else v)
                 for dim, v in state.best_metrics.items()},
        lora_iqa_version=__version__)
    # ZeRO-3 / FSDP shard the weights: gather them on every rank, or the saved adapter comes out empty
    sharded = acc.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP)
    state_dict = ({k.removeprefix("model."): v for k, v in acc.get_state_dict(s.model).items()}
                  if sharded else None)
    if acc.is_main_process:
        save_trained(method, unwrapped, s.processor, out, meta, state_dict=state_dict)
    return meta


def _validate(accelerator, model, processor, samples, val_loader, template, protocol: Protocol, index: bool,
              view: View) -> list[dict]:
    """Logit predictions (a CLIP prompt learner's antonym-prompt scores) on this process's share of the
    validation samples, gathered with ``gather_for_metrics``: every process gets every item, in order
    (padding duplicates collapse onto their index)."""
    model.eval()
    net = accelerator.unwrap_model(model).model
    by_idx: dict[int, dict] = {}
    for batch in val_loader:
        idx = batch.tolist()
        preds = predict(net, processor, [samples[i] for i in idx], template, "logits", protocol=protocol, index=index,
                        view=view)
        by_idx.update(accelerator.gather_for_metrics(list(zip(idx, preds)), use_gather_object=True))
    items = items_of(samples, [by_idx[i] for i in range(len(samples))], template, protocol)
    for it in items:
        it.pop("caption", None)
    return items


def _trainable_state(model, accelerator) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainable_params(accelerator, model).items()}
