"""One Accelerate training loop for LoRA and full fine-tuning.

Warmup + cosine schedule, gradient clipping, accumulation, fp32/bf16, validation with best-step
selection, checkpoints every N steps (:mod:`lora_iqa.checkpoint`: JSON and safetensors, nothing
unpickled on resume), and the DESIGN.md adapter directory at the end.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState, PartialState
from accelerate.utils import DataLoaderConfiguration, DistributedType, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from lora_iqa import __version__
from lora_iqa.checkpoint import (Progress, check_checkpointable, find_checkpoint, load_checkpoint,
                                  save_checkpoint, trainable_params)
from lora_iqa.clip_base import load_clip
from lora_iqa.clip_prompt import TEMPLATE_VERSION as CLIP_TEMPLATE_VERSION
from lora_iqa.clip_prompt import PromptTrainer, attach_prompts, generation_prompt
from lora_iqa.config import Config
from lora_iqa.data.manifest import read_manifest
from lora_iqa.data.protocols import Sample, caption_of, protocol_samples
from lora_iqa.errors import LoraIqaError, atomic_write_text, check_writable_dir, remove_path
from lora_iqa.evaluation import items_of, predict, protocol_metrics, selection_score
from lora_iqa.metrics import fmt
from lora_iqa.model import (Captioner, add_image_index, attach, count_params, fingerprint, load_base,
                            pixel_values)
from lora_iqa.tracking import Tracker
from lora_iqa.template import PREFERENCES, TEMPLATE_VERSION, render_preference, render_ranking

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


def _run(cfg: Config, out: Path, resume_from: Path | None, base, caption_fn: CaptionFn | None,
         progress: bool) -> TrainResult:
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
    set_seed(cfg.seed)
    prompts = cfg.adapter.method == "clip_prompt"  # CLIP prompt learning; else a BLIP captioner
    model, processor = base if base is not None else (load_clip(cfg.base) if prompts else load_base(cfg.base, cfg.quantize))
    base_name = getattr(model.config, "_name_or_path", "") or cfg.base
    # the fingerprint names the unquantized checkpoint: that is what the adapter is loaded onto
    base_fp = fingerprint(model if cfg.quantize == "none" else load_base(cfg.base)[0])
    n_images = images_per_sample(cfg)
    if n_images > 1:  # the decoder must know which image a token came from
        add_image_index(model)
    if prompts:
        model = attach_prompts(model, processor, cfg.adapter, cfg.data.dimensions, cfg.seed)
    else:
        tokens = answer_tokens(processor.tokenizer, cfg.protocol, cfg.data.k)
        model = attach(model, cfg.adapter, quantized=cfg.quantize != "none", tokens=tokens)
    trainable, total = count_params(model)
    accelerator.print(f"trainable params: {trainable:,} / {total:,} ({100 * trainable / total:.2f}%)")

    template = cfg.template()
    if cfg.data.manifest is None:
        raise LoraIqaError("key 'data.manifest' is required for training")
    with accelerator.main_process_first():
        manifest = read_manifest(cfg.data.manifest, cfg.data.dimensions)
    d = cfg.data
    train_s, val_s = (protocol_samples(manifest.split(split), cfg.protocol, cfg.reference, template.dimensions,
                                       cfg.seed + i, d.k, d.per_image, d.same_content, d.similar_below, d.window,
                                       check=accelerator.is_main_process,  # a bad image stops it before it starts
                                       progress=progress and accelerator.is_main_process)
                      for i, split in enumerate(("train", "val")))
    if not train_s or not val_s:
        raise LoraIqaError(f"{manifest.path}: needs rows in both the train and val splits")

    caption = caption_fn or (lambda s, _rng: caption_of(s, template))
    tok = processor.tokenizer
    bos = None if prompts else model.config.text_config.bos_token_id

    def augmented(batch: list[tuple[int, int, Sample]]) -> tuple[list[np.random.Generator], list[np.ndarray]]:
        """Each sample's generator and every image of the batch, in order, flipped/rotated if ``train.augment``."""
        # randomness per (seed, epoch, sample): a resumed run, or any world size, draws exactly the same
        rngs = [np.random.default_rng([cfg.seed, epoch, idx]) for epoch, idx, _ in batch]
        return rngs, [dihedral(im, r) if tc.augment else im for (_, _, s), r in zip(batch, rngs) for im in s.images]

    def collate(batch: list[tuple[int, int, Sample]]) -> dict[str, torch.Tensor]:
        rngs, imgs = augmented(batch)
        enc = tok([caption(s, r) for (_, _, s), r in zip(batch, rngs)], padding=True, truncation=True,
                  return_tensors="pt")
        ids = enc.input_ids.clone()
        ids[:, 0] = bos  # BLIP's decoder starts from [DEC], not [CLS]
        labels = ids.masked_fill(enc.attention_mask == 0, -100)
        pix = pixel_values(imgs, processor)
        if n_images > 1:  # (B, k, 3, S, S): every image of a sample, in order
            pix = pix.view(len(batch), n_images, *pix.shape[1:])
        return {"pixel_values": pix, "input_ids": ids, "attention_mask": enc.attention_mask, "labels": labels}

    def collate_prompts(batch: list[tuple[int, int, Sample]]) -> dict[str, torch.Tensor]:
        _, imgs = augmented(batch)  # ss: one image per sample
        labels = torch.tensor([[s.labels[d] for d in template.dimensions] for _, _, s in batch], dtype=torch.float32)
        out = {"pixel_values": pixel_values(imgs, processor), "labels": labels}
        if cfg.adapter.align_weight > 0:  # AI-generated images: their generation prompts
            enc = tok([generation_prompt(s.item) for _, _, s in batch], padding=True, truncation=True, return_tensors="pt")
            out |= {"prompt_ids": enc.input_ids, "prompt_mask": enc.attention_mask}
        return out

    sampler = EpochSampler(len(train_s), cfg.seed)
    loader = DataLoader(ByEpoch(train_s, sampler), batch_size=tc.batch_size, sampler=sampler,
                        collate_fn=collate_prompts if prompts else collate,
                        drop_last=len(train_s) > tc.batch_size)
    val_loader = DataLoader(torch.arange(len(val_s)), batch_size=tc.eval_batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, tc.warmup_steps, tc.max_steps)
    wrapped = PromptTrainer(model) if prompts else Captioner(model, n_images > 1)
    model, optimizer, loader, val_loader, scheduler = accelerator.prepare(wrapped, optimizer, loader, val_loader, scheduler)
    state = Progress()
    if tc.save_every or resume_from is not None:
        check_checkpointable(accelerator)
    if resume_from is not None:
        load_checkpoint(resume_from, accelerator, model, optimizer, scheduler, state, base_fp)
        accelerator.print(f"resumed from {resume_from} at step {state.step}")
    tracker = Tracker(accelerator, cfg, out, state.tracker_id)
    state.tracker_id = tracker.run_id

    seen, t0 = 0, time.perf_counter()
    bar = tqdm(total=tc.max_steps, initial=state.step, desc=f"train {cfg.adapter.method}", unit="step",
               disable=not (progress and accelerator.is_local_main_process))
    while state.step < tc.max_steps:
        sampler.epoch = state.epoch
        for batch in accelerator.skip_first_batches(loader, state.batch) if state.batch else loader:
            state.batch += 1
            model.train()
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                if not torch.isfinite(accelerator.reduce(loss.detach(), "sum")):  # every rank stops together
                    raise LoraIqaError(f"{out}: the training loss is non-finite ({loss.item()}) at step "
                                       f"{state.step + 1}; stopped, nothing saved (lower 'train.lr', or check "
                                       "the base and the data)")
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, tc.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            seen += batch["pixel_values"].shape[0] * accelerator.num_processes
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            step = state.step
            bar.set_postfix(loss=f"{loss.item():.3f}", samples_s=f"{seen / (time.perf_counter() - t0):.1f}")
            bar.update(1)
            state.losses.append(loss.item())
            tracker.log({"train/loss": loss.item(), "train/lr": scheduler.get_last_lr()[0]}, step)
            if step % tc.eval_every == 0 or step == tc.max_steps:
                items = _validate(accelerator, model, processor, val_s, val_loader, template, cfg.protocol, n_images > 1)
                m = protocol_metrics(items, template, cfg.protocol)
                score = selection_score(m, cfg.protocol)
                srcc = {dim: v["srcc"] for dim, v in m.items() if "srcc" in v}
                tracker.log({f"val/{dim}_srcc": v for dim, v in srcc.items()} | {f"val/{SELECTION[cfg.protocol]}": score}, step)
                state.curve.append({"step": step, **srcc} | ({} if cfg.protocol == "ss" else {SELECTION[cfg.protocol]: score}))
                if accelerator.is_main_process:
                    bar.write(f"step {step}: val {SELECTION[cfg.protocol].replace('_', ' ')} {score:.3f} "
                              f"(overall SRCC {fmt(m[template.overall]['srcc'])})")
                if score > state.best_score or not tc.select_best:
                    state.best_score, state.best_step, state.best_metrics = score, step, m
                    state.best_items = items
                    state.best_state = _trainable_state(model, accelerator)
            if tc.save_every and step % tc.save_every == 0:
                save_checkpoint(out, step, accelerator, model, optimizer, scheduler, state, base_fp)
            if step >= tc.max_steps:
                break
        else:
            state.epoch, state.batch = state.epoch + 1, 0
    bar.close()
    seconds = time.perf_counter() - t0
    unwrapped = accelerator.unwrap_model(model).model
    if state.best_state is not None:
        unwrapped.load_state_dict(state.best_state, strict=False)
    meta = {"method": cfg.adapter.method, "protocol": cfg.protocol, "reference": cfg.reference, "images": n_images,
            "dimensions": list(template.dimensions), "domain": template.domain,
            "template_version": CLIP_TEMPLATE_VERSION if prompts else TEMPLATE_VERSION,
            "base": {"name_or_path": str(base_name), "fingerprint": base_fp}, "config": cfg.to_dict(),
            "num_processes": accelerator.num_processes, "step": state.best_step,
            "metrics": {dim: ({k: v[k] for k in ("srcc", "plcc", "krcc", "rmse")} if "srcc" in v else v)
                        for dim, v in state.best_metrics.items()},
            "lora_iqa_version": __version__}
    # ZeRO-3 / FSDP shard the weights: gather them on every rank, or the saved adapter comes out empty
    sharded = accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP)
    state_dict = ({k.removeprefix("model."): v for k, v in accelerator.get_state_dict(model).items()}
                  if sharded else None)
    if accelerator.is_main_process:
        save_trained(unwrapped, processor, out, meta, state_dict=state_dict)
    tracker.finish(state.best_items, state.best_step)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return TrainResult(out, trainable, total, seconds, seen / max(seconds, 1e-9), state.best_step, meta["metrics"],
                       state.losses, state.curve)


PROTOCOL_TEXT = {"ss": "single stimulus: scores per dimension", "ds": "double stimulus: which image is better",
                 "ms": "multiple stimulus: a ranking"}
SELECTION = {"ss": "mean_srcc", "ds": "pairwise_accuracy", "ms": "kendall"}  # what selects the best step


def images_per_sample(cfg: Config) -> int:
    """Images the model sees per sample: 1 (ss), 2 (ds) or k (ms) stimuli, plus the reference for fr."""
    return {"ss": 1, "ds": 2, "ms": cfg.data.k}[cfg.protocol] + (cfg.reference == "fr")


def answer_tokens(tokenizer, protocol: str, k: int) -> list[int]:
    """Token ids of every ds / ms answer caption (none for ss): the tokens LoRA trains as well."""
    if protocol == "ss":
        return []
    captions = ([render_preference(c) for c in PREFERENCES] if protocol == "ds"
                else [render_ranking(list(range(1, k + 1)))])  # every ranking has the same tokens
    special = set(tokenizer.all_special_ids)
    return sorted({i for c in captions for i in tokenizer(c).input_ids if i not in special})


def partial_state() -> PartialState:
    """The process group (Accelerate's PartialState), on CPU when there is no GPU or other accelerator."""
    return PartialState(cpu=not has_accelerator())


def has_accelerator() -> bool:
    acc = getattr(torch, "accelerator", None)
    return torch.cuda.is_available() or bool(acc is not None and acc.is_available())


class EpochSampler(torch.utils.data.Sampler):
    """A shuffled order per (seed, epoch), yielding ``(epoch, index)``: restartable at any epoch."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        order = np.random.default_rng([self.seed, self.epoch, 0x5EED]).permutation(self.n)
        return iter([(self.epoch, int(i)) for i in order])


class ByEpoch(torch.utils.data.Dataset):
    def __init__(self, samples: list[Sample], sampler: EpochSampler) -> None:
        self.samples, self.sampler = samples, sampler

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: tuple[int, int]) -> tuple[int, int, Sample]:
        epoch, idx = key
        return epoch, idx, self.samples[idx]


LOCK = ".lora_iqa.lock"  # held by the training that writes an output_dir; left by a killed one
RUN_MARKERS = ("lora_iqa.json", "checkpoints", "wandb", LOCK)  # what makes a folder a run's


@contextlib.contextmanager
def claim_output_dir(out: Path, fresh: bool, overwrite: bool) -> Iterator[None]:
    """Hold ``out`` for this training (main process only), checked before any work.

    Another live training's folder is refused. A ``fresh`` run (nothing to resume) into a folder that
    holds another run is refused unless ``overwrite``, which then clears it, so no earlier file can be
    taken for this run's; a folder that is not a run's and not empty is never written into.
    """
    if not partial_state().is_main_process:
        yield
        return
    if out.exists() and not out.is_dir():
        raise LoraIqaError(f"{out}: output_dir exists and is not a directory")
    check_writable_dir(out)
    lock = out / LOCK
    others = sorted(p.name for p in out.iterdir() if p.name != LOCK)
    if fresh and others and not lock.exists() and not any(p in RUN_MARKERS for p in others):
        raise LoraIqaError(f"{out}: output_dir is not empty and holds no lora_iqa run "
                           f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); choose a new one")
    left_by_a_killed_run = lock.exists()
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise LoraIqaError(f"{out}: another training (pid {f.read().strip() or '?'}) is writing into this "
                               "output_dir; wait for it or choose another output_dir") from None
        others = sorted(p.name for p in out.iterdir() if p.name != LOCK)
        if fresh and others and not overwrite:
            if not left_by_a_killed_run:
                lock.unlink()
            raise LoraIqaError(f"{out}: output_dir holds another run ({', '.join(others[:4])}"
                               f"{', ...' if len(others) > 4 else ''}); set overwrite=true to replace it, "
                               "or resume=auto to continue it")
        for name in others if fresh else ():
            remove_path(out / name)
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        yield
        lock.unlink()  # done (still held: nobody else took it); a failed or killed run's stays, marking its folder


def dihedral(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random one of the 8 flips/rotations by 90 degrees: exact on the pixel grid, so noise,
    streaks and blur keep their statistics (crops or resampling would change sharpness)."""
    img = np.rot90(img, int(rng.integers(4)), axes=(0, 1))
    return np.ascontiguousarray(img[:, ::-1] if rng.random() < 0.5 else img)


def _validate(accelerator, model, processor, samples, val_loader, template, protocol: str, index: bool) -> list[dict]:
    """Logit predictions (a CLIP prompt learner's antonym-prompt scores) on this process's share of the
    validation samples, gathered with ``gather_for_metrics``: every process gets every item, in order
    (padding duplicates collapse onto their index)."""
    model.eval()
    net = accelerator.unwrap_model(model).model
    by_idx: dict[int, dict] = {}
    for batch in val_loader:
        idx = batch.tolist()
        preds = predict(net, processor, [samples[i] for i in idx], template, "logits", protocol=protocol, index=index)
        by_idx.update(accelerator.gather_for_metrics(list(zip(idx, preds)), use_gather_object=True))
    items = items_of(samples, [by_idx[i] for i in range(len(samples))], template, protocol)
    for it in items:
        it.pop("caption", None)
    return items


def _trainable_state(model, accelerator) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainable_params(accelerator, model).items()}


def save_trained(model, processor, out: Path, meta: dict, state_dict: dict | None = None) -> None:
    """Write the adapter (or full model) directory: weights first, ``lora_iqa.json`` last, each atomically.

    ``state_dict`` is the gathered full state under ZeRO-3/FSDP (else the model's own is used).
    """
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".save-", dir=out) as tmp_name:  # removed afterwards, even on error
        tmp = Path(tmp_name)
        model.save_pretrained(str(tmp), **({"state_dict": state_dict} if state_dict is not None else {}))
        if not hasattr(model, "peft_config") and not getattr(model, "is_prompt_learner", False):
            # a full fine-tune is a complete base: it carries its processor
            processor.save_pretrained(str(tmp))
        (tmp / "README.md").write_text(model_card(meta))
        for f in sorted(tmp.iterdir()):
            os.replace(f, out / f.name)
    atomic_write_text(out / "lora_iqa.json", json.dumps(meta, indent=2))


def model_card(meta: dict) -> str:
    """A model card: base, protocol, dimensions, template, training config, metrics, how to load."""
    import yaml

    cfg, base = meta["config"], meta["base"]["name_or_path"]
    rows = "\n".join(f"| {d} | " + " | ".join(fmt(m[k]) for k in ("srcc", "plcc", "krcc", "rmse")) + " |"
                     for d, m in meta["metrics"].items() if "srcc" in m)
    judged = {k: v for k, v in meta["metrics"].items() if "srcc" not in v}  # ds pairwise accuracy, ms Kendall tau
    if judged:
        rows += "\n\n" + "; ".join(f"{k}: " + ", ".join(f"{n} {fmt(x) if isinstance(x, float) else x}" for n, x in v.items())
                                  for k, v in judged.items())
    method = cfg["adapter"]["method"]
    kind = {"lora": "LoRA adapter", "clip_prompt": "CLIP prompt learner"}.get(method, "fully fine-tuned model")
    if method == "clip_prompt":
        load = ("from lora_iqa.clip_prompt import load_prompt_adapter\n"
                "learner, meta = load_prompt_adapter(\"PATH\")  # loads the CLIP base lora_iqa.json names\n"
                "scores = learner.scores([image])  # float [0, 1] arrays, (H, W) or (H, W, 3)")
    elif method == "lora":
        load = (f"from peft import PeftModel\nfrom transformers import BlipForConditionalGeneration\n"
                f"base = BlipForConditionalGeneration.from_pretrained(\"{base}\")\n"
                + ("from lora_iqa.model import add_image_index\nbase = add_image_index(base)  # this adapter's image-index "
                   "embeddings load into it\n" if meta.get("images", 1) > 1 else "")
                + "model = PeftModel.from_pretrained(base, \"PATH_OR_REPO_ID\")")
    else:
        load = ("from transformers import BlipForConditionalGeneration\n"
                "model = BlipForConditionalGeneration.from_pretrained(\"PATH_OR_REPO_ID\")")
    resolved = yaml.safe_dump({"num_processes": meta.get("num_processes"), **cfg}, sort_keys=False).strip()
    return f"""---
base_model: {json.dumps(base)}
library_name: {"peft" if kind.startswith("LoRA") else "lora_iqa" if method == "clip_prompt" else "transformers"}
tags: [lora_iqa, image-quality-assessment, {"clip, prompt-learning" if method == "clip_prompt" else "blip"}, { {"lora": "lora", "clip_prompt": "clip-prompt"}.get(method, "full-fine-tuning")}]
---
# lora_iqa {kind}: protocol `{meta['protocol']}_{meta.get('reference', 'nr')}`

Image-quality {"scorer" if method == "clip_prompt" else "captioner"} ({kind}) trained with lora_iqa {meta.get('lora_iqa_version', '')}.

- base: `{base}` (fingerprint `{meta['base']['fingerprint']}`)
- protocol: `{meta['protocol']}` ({PROTOCOL_TEXT[meta['protocol']]}), `{meta.get('reference', 'nr')}` ({meta.get('images', 1)} image(s) per sample); dimensions: {', '.join(meta['dimensions'])} (0–4, higher is better)
- template: `{meta['template_version']}`
- data: `{cfg['data']['manifest']}` (if it was made by `lora-iqa synth`, its images and labels are SYNTHETIC)
- training: {cfg['train']['max_steps']} steps, batch {cfg['train']['batch_size']}, lr {cfg['train']['lr']}, adapter {cfg['adapter']}
- selected step: {meta['step']}

## Validation metrics ({"antonym-prompt scoring" if method == "clip_prompt" else "logit scoring"}, at the selected step{'' if meta['protocol'] == 'ss' else '; overall: the Thurstone Case V scale of the judgements'})

| dimension | SRCC | PLCC | KRCC | RMSE |
|---|---|---|---|---|
{rows}

## Training config (resolved)

```yaml
{resolved}
```

## Load

```python
{load}
```

With lora_iqa (checks the base fingerprint; a Hub id works wherever a directory does):
`lora-iqa score IMAGE --adapter PATH_OR_REPO_ID --json`
"""
