"""Images -> model input tensors at the processor's size, mean and std (grayscale as three windows)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import (
    BlipProcessor,
)

GRAY_STRETCH = (1.0, 4.0, 16.0)  # contrast gains of the three channels made from one grayscale image


def pixel_values(images: Sequence[np.ndarray], processor: BlipProcessor, gray: str = "windows") -> torch.Tensor:
    """Float [0,1] images (H,W) or (H,W,3) -> normalised (B,3,S,S) tensors at the processor's size/mean/std.

    Done in torch (bicubic, antialiased) rather than through PIL so 16-bit and HU-windowed data keep
    their full precision.
    """
    ip = processor.image_processor
    size = input_size(processor)
    mean = torch.tensor(ip.image_mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(ip.image_std, dtype=torch.float32).view(1, 3, 1, 1)
    out = []
    for img in images:
        t = torch.as_tensor(np.asarray(img, dtype=np.float32))
        if t.ndim == 2:
            t = gray_channels(t) if gray == "windows" else t.unsqueeze(0).expand(3, -1, -1)
        else:
            t = t.permute(2, 0, 1)
        t = t.unsqueeze(0)
        if t.shape[-2:] != (size, size):
            t = F.interpolate(t, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
        out.append(t.clamp(0, 1))
    return (torch.cat(out) - mean) / std


def input_size(processor) -> int:
    """The model's square input size in pixels (the processor's)."""
    ip = processor.image_processor
    return int(ip.size["height"]) if "height" in ip.size else int(ip.size["shortest_edge"])


def gray_channels(img: torch.Tensor) -> torch.Tensor:
    """One grayscale image -> 3 channels at contrast gains 1, 4, 16 about mid-grey.

    For CT windowed at W400/L40 these are the W400, W100 and W25 windows at L40: the multi-window
    stack CT models commonly use, which makes noise, streaks and low-contrast lesions visible to
    the ViT instead of wasting two of its three input channels on copies.
    """
    return torch.stack([((img - 0.5) * g + 0.5).clamp(0, 1) for g in GRAY_STRETCH])
