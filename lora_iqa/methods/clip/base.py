"""CLIP bases for ``adapter.method=clip_prompt``: a transformers ``CLIPModel`` by name or local path, and
the antonym words its prompts are made of."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class ClipProcessor:
    """What a CLIP base needs beside its weights: the image geometry/normalisation and the tokenizer."""

    image_processor: object
    tokenizer: object

    def save_pretrained(self, path: str | Path) -> None:
        self.image_processor.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))


def load_clip(name_or_path: str):
    """``(CLIPModel, ClipProcessor)``, frozen and in eval mode, from a checkpoint name or local path
    (``embedded-clip`` is resolved to its cached path first by :func:`lora_iqa.bases.embedded.resolve_base`)."""
    from safetensors import SafetensorError
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    from lora_iqa.methods.common import load_error

    path = name_or_path
    try:  # safetensors only: a pytorch_model.bin is a pickle, which can run code when it is loaded
        model = CLIPModel.from_pretrained(path, use_safetensors=True)
        processor = ClipProcessor(CLIPImageProcessor.from_pretrained(path), AutoTokenizer.from_pretrained(path))
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        raise load_error(name_or_path, "a CLIP model", e) from None
    model.requires_grad_(False)
    return model.eval(), processor


# (good, bad) words per dimension; the prompt is PROMPT with the context and one of them
ANTONYMS: dict[str, tuple[str, str]] = {
    "sharpness": ("sharp", "blurry"), "noise": ("clean", "noisy"), "artifact": ("smooth", "blocky"),
    "contrast": ("balanced", "flat"), "color": ("colorful", "dull"), "overall": ("good", "bad"),
    "alignment": ("faithful", "unfaithful"),
}
PROMPT = "{ctx} {word} photo."
ZERO_SHOT_CTX = "a"
PLACEHOLDER = "x"
