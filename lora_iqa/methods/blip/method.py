"""``adapter.method=lora`` and ``full``: the BLIP quality captioner, trained on the template's captions.

LoRA puts peft adapters on the ViT attention and the BERT cross-attention (``methods.blip.lora``); full
fine-tuning trains every weight. Both train on captions (ss: the quality template; ds/ms: the answer),
see every image of a sample (``methods.blip.multi_image``) and score by logits or generated captions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from safetensors import SafetensorError

from lora_iqa.artifact import AdapterMeta
from lora_iqa.config import Config
from lora_iqa.data.augment import augmented
from lora_iqa.data.pixels import pixel_values
from lora_iqa.data.samples import caption_of
from lora_iqa.errors import LoraIqaError, first_line
from lora_iqa.methods.blip.base import load_base
from lora_iqa.methods.blip.lora import attach
from lora_iqa.methods.blip.multi_image import CaptionTrainer, add_image_index
from lora_iqa.methods.common import (
    ADAPTER_WEIGHTS,
    IMAGE_INDEX,
    SAFE_WEIGHTS,
    check_base,
    check_file,
    check_json,
    check_safetensors,
    fingerprint,
    require_adapter_weights,
)
from lora_iqa.methods.interface import Collate, Method
from lora_iqa.protocols import Protocol
from lora_iqa.template import Template


FULL_WEIGHTS = (SAFE_WEIGHTS, "model.safetensors.index.json")  # safetensors only: lora_iqa loads no pickle
FULL_PROCESSOR = ("processor_config.json", "preprocessor_config.json")


class BlipCaptioning(Method):
    """A BLIP captioner adapted by LoRA (``lora``) or fully fine-tuned (``full``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        lora = name == "lora"
        self.title = "LoRA adapter" if lora else "fully fine-tuned model"
        self.library_name = "peft" if lora else "transformers"
        self.tags = "blip, lora" if lora else "blip, full-fine-tuning"

    def load_base(self, cfg: Config):
        return load_base(cfg.base, cfg.quantize)

    def fingerprint(self, cfg: Config, model) -> str:
        # the fingerprint names the unquantized checkpoint: that is what the adapter is loaded onto
        return fingerprint(model if cfg.quantize == "none" else load_base(cfg.base)[0])

    def attach(self, cfg: Config, model, processor, protocol: Protocol):
        if protocol.images > 1:  # the decoder must know which image a token came from
            add_image_index(model)
        return attach(model, cfg.adapter, quantized=cfg.quantize != "none",
                      tokens=answer_tokens(processor.tokenizer, protocol))

    def trainer(self, model, protocol: Protocol) -> torch.nn.Module:
        return CaptionTrainer(model, protocol.images > 1)

    def collate(self, cfg: Config, processor, template: Template, protocol: Protocol, model,
                caption_fn: Callable | None = None) -> Collate:
        """Pixels (B, 3, S, S) or (B, k, 3, S, S), the caption's ids and labels (``caption_fn`` overrides the
        protocol's caption, as the embedded base's pre-training does)."""
        caption = caption_fn or (lambda s, _rng: caption_of(s, template, protocol))
        tok, bos, n_images = processor.tokenizer, model.config.text_config.bos_token_id, protocol.images

        def collate(batch: list) -> dict[str, torch.Tensor]:
            rngs, imgs = augmented(cfg, processor, batch)
            enc = tok([caption(s, r) for (_, _, s), r in zip(batch, rngs)], padding=True, truncation=True,
                      return_tensors="pt")
            ids = enc.input_ids.clone()
            ids[:, 0] = bos  # BLIP's decoder starts from [DEC], not [CLS]
            labels = ids.masked_fill(enc.attention_mask == 0, -100)
            pix = pixel_values(imgs, processor)
            if n_images > 1:  # (B, k, 3, S, S): every image of a sample, in order
                pix = pix.view(len(batch), n_images, *pix.shape[1:])
            return {"pixel_values": pix, "input_ids": ids, "attention_mask": enc.attention_mask, "labels": labels}

        return collate

    def save(self, model, processor, out: Path, state_dict: dict | None = None) -> None:
        model.save_pretrained(str(out), **({"state_dict": state_dict} if state_dict is not None else {}))
        if self.name == "full":  # a full fine-tune is a complete base: it carries its processor
            processor.save_pretrained(str(out))

    def load(self, adapter_dir: Path, meta: AdapterMeta, base: str | None = None):
        if self.name == "lora":
            return _load_adapter(adapter_dir, meta, base)
        model, processor = load_base(str(adapter_dir))
        if meta.multi_image:  # transformers does not know the extra module: read its weight from the file
            from safetensors import safe_open

            add_image_index(model)
            weights = adapter_dir / SAFE_WEIGHTS
            try:
                with safe_open(str(weights), "pt") as f:
                    getattr(model, IMAGE_INDEX).weight.data.copy_(f.get_tensor(f"{IMAGE_INDEX}.weight"))
            except (OSError, RuntimeError, SafetensorError) as e:
                raise LoraIqaError(f"{weights}: no usable '{IMAGE_INDEX}.weight' ({first_line(e)})") from None
        return model.eval(), processor

    def check_saved(self, root: Path) -> None:
        if self.name == "lora":
            for name in ("adapter_config.json", ADAPTER_WEIGHTS):
                check_file(root / name)
            check_json(root / "adapter_config.json")
            check_safetensors(root / ADAPTER_WEIGHTS)
            return
        check_file(root / "config.json")
        check_json(root / "config.json")
        weights = [root / n for n in FULL_WEIGHTS if (root / n).is_file()]
        if not weights:
            raise LoraIqaError(f"{root / FULL_WEIGHTS[0]}: not found (a full fine-tune needs its model weights)")
        if weights[0].name.endswith(".index.json"):
            for shard in sorted(set(check_json(weights[0]).get("weight_map", {}).values())):
                check_file(root / shard)
        else:
            check_safetensors(weights[0])
        if not any((root / n).is_file() for n in FULL_PROCESSOR):
            raise LoraIqaError(f"{root / FULL_PROCESSOR[0]}: not found (a full fine-tune carries its processor)")

    def load_snippet(self, meta: AdapterMeta) -> str:
        if self.name == "full":
            return ("from transformers import BlipForConditionalGeneration\n"
                    "model = BlipForConditionalGeneration.from_pretrained(\"PATH_OR_REPO_ID\")")
        return (f"from peft import PeftModel\nfrom transformers import BlipForConditionalGeneration\n"
                f"base = BlipForConditionalGeneration.from_pretrained(\"{meta.base.name_or_path}\")\n"
                + ("from lora_iqa.methods.blip.multi_image import add_image_index\nbase = add_image_index(base)  # this "
                   "adapter's image-index embeddings load into it\n" if meta.multi_image else "")
                + "model = PeftModel.from_pretrained(base, \"PATH_OR_REPO_ID\")")


def _load_adapter(adapter_dir: Path, meta: AdapterMeta, base: str | None):
    """A LoRA adapter directory on its base (fingerprint checked), weights from safetensors only."""
    from peft import PeftModel

    weights = require_adapter_weights(adapter_dir)
    base_name = base or meta.base.name_or_path
    model, processor = load_base(base_name)
    check_base(model, meta, adapter_dir, base_name)
    if meta.multi_image:
        add_image_index(model)
    try:
        model = PeftModel.from_pretrained(model, str(adapter_dir))
    except SafetensorError as e:
        raise LoraIqaError(f"{weights}: corrupt or truncated safetensors ({first_line(e)})") from None
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        raise LoraIqaError(f"{adapter_dir}: cannot load the adapter ({type(e).__name__}: {first_line(e)})") from None
    return model.eval(), processor


def answer_tokens(tokenizer, protocol: Protocol) -> list[int]:
    """Token ids of every ds / ms answer caption (none for ss): the tokens LoRA trains as well."""
    special = set(tokenizer.all_special_ids)
    return sorted({i for c in protocol.answer_captions() for i in tokenizer(c).input_ids if i not in special})
