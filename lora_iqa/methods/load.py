"""Load any trained directory (LoRA adapter, full fine-tune, CLIP prompts) onto its base."""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError

from lora_iqa.artifact import multi_image, read_meta, resolve_adapter
from lora_iqa.errors import LoraIqaError, first_line
from lora_iqa.methods.blip.base import load_base
from lora_iqa.methods.blip.multi_image import add_image_index
from lora_iqa.methods.common import (
    IMAGE_INDEX,
    SAFE_WEIGHTS,
    check_base,
    require_adapter_weights,
)


def load_trained(adapter_dir: str | Path, base: str | None = None):
    """Load an adapter directory (or Hub repo id) onto its base (or a full fine-tune): (model, processor, meta).

    Weights are read from safetensors only. Refuses an adapter whose base fingerprint differs from the
    base it is loaded onto.
    """
    adapter_dir = resolve_adapter(adapter_dir)
    meta = read_meta(adapter_dir)
    if meta["method"] == "clip_prompt":  # prompt tensors on a CLIP base: the learner scores like a model
        from lora_iqa.methods.clip.prompt import load_prompt_adapter

        learner, meta = load_prompt_adapter(adapter_dir, base)
        return learner, learner.processor, meta
    if (adapter_dir / "adapter_config.json").exists():
        from peft import PeftModel

        weights = require_adapter_weights(adapter_dir)
        base_name = base or meta["base"]["name_or_path"]
        model, processor = load_base(base_name)
        check_base(model, meta, adapter_dir, base_name)
        if multi_image(meta):
            add_image_index(model)
        try:
            model = PeftModel.from_pretrained(model, str(adapter_dir))
        except SafetensorError as e:
            raise LoraIqaError(f"{weights}: corrupt or truncated safetensors ({first_line(e)})") from None
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
            raise LoraIqaError(f"{adapter_dir}: cannot load the adapter ({type(e).__name__}: "
                               f"{first_line(e)})") from None
    else:
        model, processor = load_base(str(adapter_dir))
        if multi_image(meta):  # transformers does not know the extra module: read its weight from the file
            from safetensors import safe_open

            add_image_index(model)
            weights = adapter_dir / SAFE_WEIGHTS
            try:
                with safe_open(str(weights), "pt") as f:
                    getattr(model, IMAGE_INDEX).weight.data.copy_(f.get_tensor(f"{IMAGE_INDEX}.weight"))
            except (OSError, RuntimeError, SafetensorError) as e:
                raise LoraIqaError(f"{weights}: no usable '{IMAGE_INDEX}.weight' ({first_line(e)})") from None
    model.eval()
    return model, processor, meta
