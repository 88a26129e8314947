"""Training checkpoints in lora_iqa's own format: a resume reads JSON and safetensors only.

Accelerate's ``save_state`` pickles the loop state and the RNG states, and its ``load_state``
unpickles them with ``weights_only=False``: a planted checkpoint would run code. A checkpoint here is
one folder ``checkpoints/step_NNNNNNN`` holding

* ``trainer_state.json``: the format tag, world size, base fingerprint, Accelerate's step counter,
  the loop state (:class:`LoopState`), the LR scheduler's (and an fp16 grad scaler's) state and the
  optimizer's param groups;
* ``model.safetensors``: the trainable weights (the frozen base is reloaded from ``base``);
* ``best_state.safetensors``: the trainable weights of the best step so far;
* ``optimizer.safetensors``: the optimizer's per-parameter tensors (AdamW moments and step);
* ``rng_R.safetensors``: rank R's torch CPU (and CUDA) generator states.

Files of any other name (e.g. accelerate's ``*.pkl``) are never opened. Every rank writes into one
temporary folder that rank 0 renames into place once all have written, so a killed run leaves the
previous checkpoint intact; the last two are kept. Sharded training states (DeepSpeed, FSDP) are not
supported: :func:`check_checkpointable` refuses them before training starts.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterator

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from lora_iqa.errors import LoraIqaError

FORMAT, VERSION = "lora_iqa-checkpoint", 1
STATE = "trainer_state.json"  # written last: its presence marks a lora_iqa checkpoint
MODEL, BEST, OPTIMIZER = "model.safetensors", "best_state.safetensors", "optimizer.safetensors"
KEEP = 2  # checkpoints kept
KEYS = ("num_processes", "base_fingerprint", "accelerator_step", "progress", "has_best_state", "scheduler", "scaler",
        "optimizer")  # of trainer_state.json, beside the format tag


@dataclass
class LoopState:
    """Loop position and best-so-far: what a checkpoint restores besides weights, optimizer and RNG."""

    step: int = 0  # optimizer steps
    epoch: int = 0
    batch: int = 0  # batches consumed in this epoch
    best_score: float = -math.inf
    best_step: int = 0
    best_metrics: dict = field(default_factory=dict)
    best_items: list = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None  # trainable weights at best_step
    losses: list = field(default_factory=list)  # training loss per optimizer step
    curve: list = field(default_factory=list)  # validation SRCC per dimension at each evaluation
    tracker_id: str = ""  # the W&B run id, so a resumed run logs into the same run

    def to_json(self) -> dict:
        """Every field but ``best_state`` (saved as safetensors), as JSON values."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "best_state"}


def find_checkpoint(out: Path, resume: str) -> Path | None:
    """``none`` -> None; ``auto`` -> the newest checkpoint under ``out/checkpoints`` (or None);
    a path -> that checkpoint. A folder that is not a lora_iqa checkpoint, or one with a corrupt or
    truncated file, is refused in one line now, before any work."""
    if resume == "none":
        return None
    if resume == "auto":
        ckpts = out / "checkpoints"
        found = sorted(p for p in ckpts.glob("step_*") if p.is_dir()) if ckpts.is_dir() else []
        if not found:
            return None
        path = found[-1]
    else:
        path = Path(resume)
    if not (path / STATE).is_file():
        raise LoraIqaError(f"{path}: not a lora_iqa checkpoint (key 'resume'; expected a checkpoints/step_* folder "
                           f"holding {STATE}; accelerate save_state folders are not read: they unpickle)")
    state = _read_state(path)
    for name in [MODEL, OPTIMIZER] + [BEST] * state["has_best_state"] + [
            f"rng_{i}.safetensors" for i in range(state["num_processes"])]:
        with _reading(path / name) as f, safe_open(str(f), "pt"):  # the header, checked against the file size
            pass
    return path


def check_checkpointable(accelerator) -> None:
    """Refuse checkpoints under DeepSpeed / FSDP: their sharded model and optimizer states are not in this format."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP):
        raise LoraIqaError(f"keys 'train.save_every'/'resume': checkpoints are not supported under "
                           f"{accelerator.distributed_type.value} (sharded states); set train.save_every=0, "
                           "resume=none")


def save_checkpoint(out: Path, step: int, accelerator, model, optimizer, scheduler, progress: LoopState,
                    base_fingerprint: str) -> Path:
    """Write checkpoint ``out/checkpoints/step_NNNNNNN`` (every rank calls this); returns its path."""
    ckpts = out / "checkpoints"
    final = ckpts / f"step_{step:07d}"
    tmp = ckpts / f".{final.name}.tmp"
    if accelerator.is_main_process:
        for junk in ckpts.glob(".step_*.tmp"):  # left by a killed run
            shutil.rmtree(junk, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    save_file(_rng_state(), str(tmp / f"rng_{accelerator.process_index}.safetensors"))
    if accelerator.is_main_process:  # DDP: the weights and the optimizer are the same on every rank
        save_file(_cpu(trainable_params(accelerator, model)), str(tmp / MODEL))
        if progress.best_state is not None:
            save_file(_cpu(progress.best_state), str(tmp / BEST))
        opt = optimizer.state_dict()
        save_file(_cpu({f"{i}.{k}": v for i, s in opt["state"].items() for k, v in s.items()
                        if isinstance(v, torch.Tensor)}), str(tmp / OPTIMIZER))
        scaler = getattr(accelerator, "scaler", None)
        state = {"format": FORMAT, "version": VERSION, "num_processes": accelerator.num_processes,
                 "base_fingerprint": base_fingerprint, "accelerator_step": accelerator.step,
                 "progress": progress.to_json(), "has_best_state": progress.best_state is not None,
                 "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler is not None else None,
                 "optimizer": {"param_groups": opt["param_groups"],
                               "state": {str(i): {k: v for k, v in s.items() if not isinstance(v, torch.Tensor)}
                                         for i, s in opt["state"].items()}}}
        (tmp / STATE).write_text(json.dumps(state))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():  # the same step saved again after a resume
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in sorted(ckpts.glob("step_*"))[:-KEEP]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(path: Path, accelerator, model, optimizer, scheduler, progress: LoopState,
                    base_fingerprint: str) -> None:
    """Restore a checkpoint written by :func:`save_checkpoint` into this run's objects (every rank).

    A truncated, corrupt or mismatched checkpoint (another base, adapter settings, world size or
    precision) is one ``LoraIqaError`` line naming the file.
    """
    state = _read_state(path)
    with _reading(path / STATE) as f:
        if state["num_processes"] != accelerator.num_processes:
            raise LoraIqaError(f"{f}: saved by {state['num_processes']} processes, this run has "
                               f"{accelerator.num_processes} (resume with the same number of processes)")
        if state["base_fingerprint"] != base_fingerprint:
            raise LoraIqaError(f"{f}: saved on base {state['base_fingerprint']}, this run's base is {base_fingerprint}")
        _check_like(state["progress"], progress.to_json(), "progress")
        for k, v in state["progress"].items():
            setattr(progress, k, v)
        _check_like(state["scheduler"], scheduler.state_dict(), "scheduler")
        scheduler.load_state_dict(state["scheduler"])
        scaler = getattr(accelerator, "scaler", None)
        if (scaler is None) != (state["scaler"] is None):
            raise ValueError("saved with another train.mixed_precision (grad scaler)")
        if scaler is not None:
            _check_like(state["scaler"], scaler.state_dict(), "scaler")
            scaler.load_state_dict(state["scaler"])
        accelerator.step = int(state["accelerator_step"])
    params = trainable_params(accelerator, model)
    with _reading(path / MODEL) as f:
        weights = load_file(str(f))
        _check_tensors(weights, params)
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(weights[n])
    if state["has_best_state"]:
        with _reading(path / BEST) as f:
            progress.best_state = load_file(str(f))
            _check_tensors(progress.best_state, params)
    with _reading(path / OPTIMIZER) as f:
        tensors = _optimizer_tensors(load_file(str(f)), optimizer)
    with _reading(path / STATE):
        _load_optimizer(optimizer, tensors, state["optimizer"])
    with _reading(path / f"rng_{accelerator.process_index}.safetensors") as f:
        rng = load_file(str(f))
        torch.set_rng_state(rng["cpu"])
        if torch.cuda.is_available():
            torch.cuda.set_rng_state_all([rng[f"cuda.{i}"] for i in range(torch.cuda.device_count())])


def _read_state(path: Path) -> dict:
    """The checkpoint's ``trainer_state.json``, its format tag and the keys that name its other files checked."""
    with _reading(path / STATE) as f:
        state = json.loads(f.read_text())
        if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("version") != VERSION:
            raise ValueError(f"not a {FORMAT} version {VERSION} state")
        missing = [k for k in KEYS if k not in state]
        if missing:
            raise KeyError(missing[0])
        if not isinstance(state["has_best_state"], bool) or not isinstance(state["num_processes"], int):
            raise TypeError("'has_best_state' must be true/false and 'num_processes' a number")
    return state


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[Path]:
    """Turn whatever reading or applying ``path`` raises into one line naming it."""
    try:
        yield path
    except LoraIqaError:
        raise
    except FileNotFoundError:
        raise LoraIqaError(f"{path}: missing (an incomplete or foreign checkpoint)") from None
    except (OSError, ValueError, LookupError, TypeError, RuntimeError, SafetensorError) as e:
        why = " ".join(str(e).split())[:300]
        raise LoraIqaError(f"{path}: cannot resume from this checkpoint file ({type(e).__name__}: {why})") from None


def trainable_params(accelerator, model) -> dict[str, torch.nn.Parameter]:
    """The trainable parameters of the wrapped model (the method's trainer's ``.model``) by name,
    tied weights once, in the optimizer's order; ``LoopState.best_state`` uses the same names."""
    return {n: p for n, p in accelerator.unwrap_model(model).model.named_parameters() if p.requires_grad}


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {n: t.detach().cpu().contiguous() for n, t in tensors.items()}


def _rng_state() -> dict[str, torch.Tensor]:
    """This rank's torch generator states (dropout draws from them; the data order is seeded per epoch)."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state |= {f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    return state


def _check_tensors(saved: dict[str, torch.Tensor], params: dict[str, torch.Tensor]) -> None:
    """The checkpoint's tensors must be this run's trainable parameters, by name and shape."""
    missing, extra = sorted(set(params) - set(saved)), sorted(set(saved) - set(params))
    if missing or extra:
        raise ValueError(f"tensors of another model or adapter settings (missing {missing[:2]}, "
                         f"unexpected {extra[:2]})")
    for n, p in params.items():
        if tuple(saved[n].shape) != tuple(p.shape):
            raise ValueError(f"tensor '{n}' is {tuple(saved[n].shape)}, this run's is {tuple(p.shape)}: a checkpoint "
                             "of other adapter settings")


def _optimizer_tensors(tensors: dict[str, torch.Tensor], optimizer) -> dict[int, dict]:
    """``optimizer.safetensors`` as the optimizer's per-parameter state, each shape checked against its parameter."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state: dict[int, dict] = {}
    for key, t in tensors.items():
        i, name = key.split(".", 1)
        p = params[int(i)]
        if t.dim() and tuple(t.shape) != tuple(p.shape):
            raise ValueError(f"optimizer state {key} is {tuple(t.shape)}, its parameter {tuple(p.shape)}")
        state.setdefault(int(i), {})[name] = t
    return state


def _load_optimizer(optimizer, state: dict[int, dict], saved: dict) -> None:
    """Load ``state`` (from :func:`_optimizer_tensors`) with the param groups and other values saved in JSON."""
    for i, extra in saved["state"].items():
        state.setdefault(int(i), {}).update(extra)
    current = optimizer.param_groups
    if len(saved["param_groups"]) != len(current):
        raise ValueError(f"{len(saved['param_groups'])} parameter groups, this run has {len(current)}")
    groups = []
    for g, cur in zip(saved["param_groups"], current):
        _check_like({k: v for k, v in g.items() if k != "params"}, {k: v for k, v in cur.items() if k != "params"},
                    "optimizer")
        if len(g["params"]) != len(cur["params"]):
            raise ValueError(f"a parameter group of {len(g['params'])} tensors, this run's has {len(cur['params'])}")
        groups.append({k: tuple(v) if isinstance(cur.get(k), tuple) else v for k, v in g.items()})
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _check_like(saved, current: dict, key: str) -> None:
    """``saved`` must have ``current``'s keys, each value of the same JSON kind (what a hand edit breaks)."""
    def kind(v) -> str:
        return ("bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else
                "null" if v is None else type(v).__name__)

    current = json.loads(json.dumps(current))  # tuples as lists, as saved
    if not isinstance(saved, dict) or set(saved) != set(current):
        raise ValueError(f"'{key}' does not hold {sorted(current)}")
    for k, v in current.items():
        if v is not None and kind(saved[k]) != kind(v):
            raise ValueError(f"'{key}.{k}' is a {kind(saved[k])}, expected a {kind(v)}")
