"""The base captioner (BLIP), its processor and an offline tokenizer.

* ``load_base(name_or_path)``: any ``BlipForConditionalGeneration`` checkpoint by hub name or local
  path (optionally 4/8-bit through bitsandbytes for QLoRA).
* ``scratch_base(words)``: a tiny randomly initialised BLIP with an offline tokenizer (the starting
  point of the embedded base, see ``lora_iqa.bases.embedded``).

LoRA / full fine-tuning is :mod:`lora_iqa.methods.blip.lora`; multi-image conditioning is
:mod:`lora_iqa.methods.blip.multi_image`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Sequence

import torch
from safetensors import SafetensorError
from transformers import (
    BertTokenizerFast,
    BlipConfig,
    BlipForConditionalGeneration,
    BlipProcessor,
)

from lora_iqa.errors import LoraIqaError
from lora_iqa.methods.common import load_error
from lora_iqa.template import LEVELS

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]


def build_tokenizer(words: Sequence[str]) -> BertTokenizerFast:
    """An offline WordPiece tokenizer: BLIP's special tokens, ``words`` whole, and letters/digits as pieces."""
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    punct = list(".,:;!?-()/'\"%+")
    vocab = list(dict.fromkeys(SPECIAL + punct + chars + [f"##{c}" for c in chars] + sorted(words)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.txt"
        path.write_text("\n".join(vocab) + "\n")
        tok = BertTokenizerFast(str(path), do_lower_case=True, model_max_length=96)  # vocab file: positional in v4 and v5
    tok.add_special_tokens({"bos_token": "[DEC]"})
    return tok


def tiny_config(vocab_size: int, tokenizer: BertTokenizerFast, image_size: int = 96, patch: int = 8,
                hidden: int = 128, vision_layers: int = 4, text_layers: int = 3, heads: int = 4,
                mlp_ratio: int = 2) -> BlipConfig:
    """A small BLIP config of the real classes. initializer_range is 0.02 (BLIP's vision default,
    1e-10, gives a tower that never learns)."""
    ids = tokenizer.convert_tokens_to_ids
    return BlipConfig(
        vision_config=dict(hidden_size=hidden, intermediate_size=hidden * mlp_ratio, num_hidden_layers=vision_layers,
                           num_attention_heads=heads, image_size=image_size, patch_size=patch,
                           initializer_range=0.02),
        text_config=dict(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * mlp_ratio,
                         num_hidden_layers=text_layers, num_attention_heads=heads, encoder_hidden_size=hidden,
                         max_position_embeddings=96, bos_token_id=ids("[DEC]"), pad_token_id=ids("[PAD]"),
                         sep_token_id=ids("[SEP]"), eos_token_id=ids("[SEP]"), initializer_range=0.02),
        projection_dim=hidden,
    )


def scratch_base(words: Sequence[str], seed: int = 0, **geometry: int) -> tuple[BlipForConditionalGeneration, BlipProcessor]:
    """A tiny, randomly initialised BLIP captioner with an offline tokenizer covering ``words``."""
    from transformers import BlipImageProcessor

    tok = build_tokenizer(words)
    cfg = tiny_config(len(tok), tok, **geometry)
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(cfg)
    size = cfg.vision_config.image_size
    image_processor = BlipImageProcessor(size={"height": size, "width": size})
    return model, BlipProcessor(image_processor=image_processor, tokenizer=tok)


def load_base(name_or_path: str, quantize: str = "none") -> tuple[BlipForConditionalGeneration, BlipProcessor]:
    """Load a BLIP captioner and its processor by hub name or local path (offline when it is local).

    ``quantize`` (``4bit`` NF4 or ``8bit``) loads the linear layers through bitsandbytes for QLoRA; the
    vision patch embedding and the LM head stay unquantized.
    """
    kwargs = {}
    if quantize != "none":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=quantize == "4bit", load_in_8bit=quantize == "8bit", bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.float32, llm_int8_skip_modules=["decoder", "cls"])
    try:  # safetensors only: a pytorch_model.bin is a pickle, which can run code when it is loaded
        model = BlipForConditionalGeneration.from_pretrained(name_or_path, use_safetensors=True, **kwargs)
        processor = BlipProcessor.from_pretrained(name_or_path)
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        raise load_error(name_or_path, "a BLIP captioner", e) from None
    check_level_words(processor.tokenizer)
    model.eval()
    return model, processor


def check_level_words(tokenizer) -> list[int]:
    """Token ids of the level words; each must be one token for logit scoring."""
    ids = []
    for word in LEVELS:
        toks = tokenizer.tokenize(word)
        if len(toks) != 1:
            raise LoraIqaError(f"tokenizer: level word '{word}' is not a single token ({toks})")
        ids.append(tokenizer.convert_tokens_to_ids(toks[0]))
    return ids
