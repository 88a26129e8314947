"""Load any trained directory (LoRA adapter, full fine-tune, CLIP prompts, any registered method) onto its base."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lora_iqa.artifact import AdapterMeta, read_meta, resolve_adapter
from lora_iqa.methods.registry import get_method


def load_trained(adapter_dir: str | Path, base: str | None = None) -> tuple[Any, Any, AdapterMeta]:
    """Load an adapter directory (or Hub repo id) by its method: (model, processor, its AdapterMeta), in eval mode.

    Weights are read from safetensors only. Refuses an adapter whose base fingerprint differs from the
    base it is loaded onto (``base``: another name or path of that base).
    """
    adapter_dir = resolve_adapter(adapter_dir)
    meta = read_meta(adapter_dir)
    model, processor = get_method(meta.method).load(adapter_dir, meta, base)
    return model, processor, meta
