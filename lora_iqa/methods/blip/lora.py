"""LoRA (peft) or full fine-tuning on a BLIP captioner: the target-module regexes and ``attach``."""

from __future__ import annotations

from typing import Sequence

from transformers import (
    BlipForConditionalGeneration,
)

from lora_iqa.config import AdapterConfig
from lora_iqa.methods.common import IMAGE_INDEX

# peft target-module regexes (names inside BlipForConditionalGeneration)
VISION_QKV = r"vision_model\.encoder\.layers\.\d+\.self_attn\.qkv"
VISION_PROJ = r"vision_model\.encoder\.layers\.\d+\.self_attn\.projection"
CROSS_QKV = r"text_decoder\.bert\.encoder\.layer\.\d+\.crossattention\.self\.(query|key|value)"
CROSS_OUT = r"text_decoder\.bert\.encoder\.layer\.\d+\.crossattention\.output\.dense"
TEXT_SELF = r"text_decoder\.bert\.encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"


def target_modules(adapter: AdapterConfig) -> str:
    """One peft ``target_modules`` regex for the parts set to ``lora``."""
    modes = adapter.part_modes()
    pats = []
    if modes["vision"] == "lora":
        pats += [VISION_QKV] + ([VISION_PROJ] if adapter.vision_projection else [])
    if modes["cross"] == "lora":
        pats += [CROSS_QKV] + ([CROSS_OUT] if adapter.cross_output else [])
    if modes["text"] == "lora":
        pats.append(TEXT_SELF)
    return rf"^(?:base_model\.model\.)?(?:{'|'.join(pats)})$"


WORD_EMBEDDINGS = "word_embeddings"  # the text decoder's token embeddings (tied to its output layer)


def attach(model: BlipForConditionalGeneration, adapter: AdapterConfig, name: str = "default",
           quantized: bool = False, tokens: Sequence[int] = ()):
    """Make the parts trainable as ``adapter`` says; returns a PeftModel for LoRA, the model for full.

    A model with an image-index embedding (:func:`add_image_index`) trains it too: as peft
    ``modules_to_save`` (saved in the adapter) for LoRA, as a plain weight for full fine-tuning.
    ``tokens``: token ids whose embeddings (and the tied output rows) LoRA also trains, through peft's
    ``trainable_token_indices``: a frozen decoder cannot put probability on tokens its base never learned
    to emit (the ds/ms answer words of a base pre-trained on quality captions only).

    (AdapterConfig refuses ``full`` parts with ``method=lora``: an adapter directory holds LoRA
    tensors only, so fully trained base weights would be lost on save.)
    """
    if adapter.method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    if quantized:
        from peft import prepare_model_for_kbit_training

        # Non-reentrant checkpointing needs no "inputs require grad" hook; that hook makes BLIP's text
        # embeddings output a leaf that its in-place position-embedding add then breaks in backward.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
        for module in model.modules():  # bitsandbytes repacks 4-bit CPU weights for inference at the first
            if hasattr(module, "support_avx512bf16_for_cpu"):  # eval and never unpacks them: training
                module.support_avx512bf16_for_cpu = False  # after a validation would take a no-grad path
    lcfg = LoraConfig(r=adapter.r, lora_alpha=adapter.alpha, lora_dropout=adapter.dropout,
                      target_modules=target_modules(adapter), use_rslora=adapter.use_rslora,
                      use_dora=adapter.use_dora, bias="none",
                      modules_to_save=[IMAGE_INDEX] if hasattr(model, IMAGE_INDEX) else None,
                      trainable_token_indices={WORD_EMBEDDINGS: sorted(set(tokens))} if tokens else None)
    return get_peft_model(model, lcfg, adapter_name=name)  # peft freezes every base weight
