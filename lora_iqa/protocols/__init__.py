"""The protocols (ss / ds / ms, each nr or fr) as objects: :func:`get_protocol` by name."""

from __future__ import annotations

from lora_iqa.errors import LoraIqaError
from lora_iqa.protocols.base import REFERENCES, AnswerError, Protocol
from lora_iqa.protocols.ds import DoubleStimulus
from lora_iqa.protocols.ms import MultipleStimulus
from lora_iqa.protocols.ss import SingleStimulus

REGISTRY: dict[str, type[Protocol]] = {cls.name: cls for cls in (SingleStimulus, DoubleStimulus, MultipleStimulus)}
PROTOCOLS = tuple(REGISTRY)  # the names: ss (single), ds (double), ms (multiple stimulus)
SS = SingleStimulus()  # the default: single stimulus, no reference

__all__ = ["PROTOCOLS", "REFERENCES", "AnswerError", "DoubleStimulus", "MultipleStimulus", "Protocol",
           "SS", "SingleStimulus", "get_protocol"]


def get_protocol(name: str, reference: str = "nr", k: int = 4) -> Protocol:
    """The protocol called ``name`` (ss | ds | ms), ``reference`` nr | fr, ``k`` images per ms ranking."""
    if name not in REGISTRY:
        raise LoraIqaError(f"unknown protocol {name!r} (expected one of {', '.join(PROTOCOLS)})")
    return REGISTRY[name](reference, k)
