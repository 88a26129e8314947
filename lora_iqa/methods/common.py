"""What every method's saved directory and base share: safetensors-only weight names, one-line load errors, the base fingerprint and its check, parameter counts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError

from lora_iqa.artifact import AdapterMeta
from lora_iqa.errors import LoraIqaError, first_line

# Weights are read from safetensors only: a .bin is a pickle, and unpickling can run code.
SAFE_WEIGHTS = "model.safetensors"  # a full model's (and a base's)
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # a peft adapter's


def load_error(name_or_path: str, what: str, e: Exception) -> LoraIqaError:
    """One line for a checkpoint ``from_pretrained`` could not load; missing or corrupt weights are named as such."""
    local = Path(name_or_path)
    if local.is_dir() and not any(local.glob("*.safetensors")):
        return missing_weights(local / SAFE_WEIGHTS, "*.bin")
    why = first_line(e)
    if isinstance(e, SafetensorError):
        why = f"{SAFE_WEIGHTS}: corrupt or truncated safetensors ({why})"
    return LoraIqaError(f"{name_or_path}: cannot load {what} ({why})")


def missing_weights(weights: Path, pickles: str) -> LoraIqaError:
    """``weights`` (safetensors) is missing: one line, naming a pickle beside it (glob ``pickles``) if there
    is one, which is never loaded (unpickling can run code)."""
    found = sorted(p.name for p in weights.parent.glob(pickles))
    return LoraIqaError(f"{weights}: not found" + (f" (only {found[0]}, a pickle, which lora_iqa does not load: "
                                                   "convert it to safetensors)" if found else ""))


def fingerprint(model: torch.nn.Module) -> str:
    """sha256 over the base weights (names, shapes, bytes): identifies the exact base an adapter needs."""
    h = hashlib.sha256()
    for name, t in sorted(_base_state(model).items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _base_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Base-weight tensors, with peft's wrapping, LoRA tensors and the image-index embedding (which
    belongs to each multi-image adapter) removed, and tied weights once."""
    state, seen = {}, set()
    for name, t in model.state_dict().items():
        if "lora_" in name or "modules_to_save" in name or "trainable_tokens" in name or IMAGE_INDEX in name:
            continue
        name = name.replace("base_model.model.", "").replace(".token_adapter", "").replace(".base_layer", "")
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        state[name] = t
    return state


IMAGE_INDEX = "image_index"  # the BLIP submodule holding the image-index embeddings


def count_params(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts, tied weights counted once."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if p.data_ptr() in seen:
            continue
        seen.add(p.data_ptr())
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def require_adapter_weights(adapter_dir: str | Path) -> Path:
    """A peft adapter directory's ``adapter_model.safetensors``; refused in one line if it is missing
    (an ``adapter_model.bin`` is a pickle, which can run code when loaded: lora_iqa never reads one)."""
    weights = Path(adapter_dir) / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise missing_weights(weights, "adapter_model*.bin")
    return weights


def check_base(model, meta: AdapterMeta, adapter_dir, base_name: str) -> None:
    """Refuse (one line) an adapter whose recorded base fingerprint is not ``model``'s."""
    fp = fingerprint(model)
    if fp != meta.base.fingerprint:
        raise LoraIqaError(f"{adapter_dir}: adapter was trained on base {meta.base.fingerprint}, "
                           f"but {base_name} is {fp}")


def check_file(path: Path) -> None:
    """Refuse (one line) a missing or empty file."""
    if not path.is_file():
        raise LoraIqaError(f"{path}: not found")
    if path.stat().st_size == 0:
        raise LoraIqaError(f"{path}: empty")


def check_json(path: Path) -> dict:
    """A JSON file holding an object; one line naming it otherwise."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LoraIqaError(f"{path}: unreadable ({first_line(e)})") from None
    if not isinstance(data, dict):
        raise LoraIqaError(f"{path}: not a JSON object")
    return data


def check_safetensors(path: Path) -> None:
    """Refuse (one line) a safetensors file that cannot be opened or holds no tensors."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            if not list(f.keys()):
                raise LoraIqaError(f"{path}: holds no tensors")
    except LoraIqaError:
        raise
    except Exception as e:  # safetensors raises its own SafetensorError on a bad header / truncation
        raise LoraIqaError(f"{path}: not a readable safetensors file ({first_line(e)})") from None
