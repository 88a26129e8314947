"""The adaptation methods by ``adapter.method``: :func:`get_method` finds one, :func:`register` adds one."""

from __future__ import annotations

from lora_iqa.config import ADAPTER_METHODS
from lora_iqa.errors import LoraIqaError
from lora_iqa.methods.blip.method import BlipCaptioning
from lora_iqa.methods.clip.method import ClipPrompt
from lora_iqa.methods.heads import HEADS, ImageHead
from lora_iqa.methods.interface import Method

REGISTRY: dict[str, Method] = {m.name: m for m in (BlipCaptioning("lora"), BlipCaptioning("full"), ClipPrompt(),
                                                   *(ImageHead(kind) for kind in HEADS))}


def get_method(name: str) -> Method:
    """The method ``adapter.method`` names; one line naming the key when there is none."""
    if name not in REGISTRY:
        raise LoraIqaError(f"key 'adapter.method' must be one of {', '.join(REGISTRY)}, got {name!r}")
    return REGISTRY[name]


def register(method: Method) -> None:
    """Add a method under ``method.name``: recipes, ``lora_iqa.json`` and every command then accept it."""
    REGISTRY[method.name] = method
    if method.name not in ADAPTER_METHODS:
        ADAPTER_METHODS.append(method.name)
