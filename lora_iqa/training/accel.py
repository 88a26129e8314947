"""The process group: Accelerate's PartialState, on CPU when there is no accelerator."""

from __future__ import annotations

import torch
from accelerate.state import PartialState


def partial_state() -> PartialState:
    """The process group (Accelerate's PartialState), on CPU when there is no GPU or other accelerator."""
    return PartialState(cpu=not has_accelerator())


def has_accelerator() -> bool:
    acc = getattr(torch, "accelerator", None)
    return torch.cuda.is_available() or bool(acc is not None and acc.is_available())
