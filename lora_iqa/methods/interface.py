"""The one interface every adaptation method implements (``adapter.method`` names one in the registry).

The training loop (:mod:`lora_iqa.training.run`), ``load_trained``, the model card and the Hub ask a
method object for everything that differs between methods; none of them asks which method it is.
A new method is one module with a :class:`Method` subclass plus one :func:`lora_iqa.methods.registry.register`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from lora_iqa.artifact import AdapterMeta
from lora_iqa.config import Config
from lora_iqa.data.pixels import input_size
from lora_iqa.protocols import Protocol
from lora_iqa.template import TEMPLATE_VERSION, Template
from lora_iqa.views import RESIZE, View, pooled_scores

Collate = Callable[[list], dict]  # (epoch, index, sample) triples -> a batch of tensors with "pixel_values"


class ImageScorer(torch.nn.Module):
    """A trained model that scores single images itself (per dimension, 0..4), with no captions: evaluation
    and ``score`` call :meth:`scores` instead of reading a captioner's logits. ``view``: what it sees of
    an image (set from the training config, or from ``AdapterMeta.make_view()`` at load)."""

    view: View = RESIZE

    def scores(self, images, batch_size: int = 64) -> list[dict[str, float]]:
        """Per image (float [0, 1] arrays): {dimension: score}, pooled over :attr:`view`'s windows."""
        return self.pooled(self.view_scores, images, batch_size)

    def pooled(self, score_fn, images, batch_size: int) -> list[dict[str, float]]:
        """``score_fn`` over every window of each image, weighted-averaged per image; ``batch_size`` counts windows."""
        size, step = input_size(self.processor), max(1, batch_size // len(self.view.positions()))
        return [r for i in range(0, len(images), step)
                for r in pooled_scores(score_fn, images[i:i + step], self.view, size)]

    def view_scores(self, crops: list) -> list[dict[str, float]]:
        """Per crop (the model's input size, or any size in resize mode): {dimension: score}."""
        raise NotImplementedError


class Trainer(torch.nn.Module):
    """The training loop's view of a model whose forward takes the batch's tensors and returns ``.loss``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, **batch: torch.Tensor):
        return self.model(**batch)


class Method:
    """One adaptation method: its base, what trains, how batches look, how it saves, loads and is described.

    ``trainer(model, protocol)`` returns a module whose ``forward(**batch)`` has ``.loss`` and whose
    ``.model`` is what :meth:`save` writes; the loop steps its trainable parameters.
    """

    name: str = ""  # the adapter.method value
    title: str = ""  # the model card's words for it, e.g. "LoRA adapter"
    library_name: str = "lora_iqa"  # the model card's (and the Hub's) library_name
    tags: str = ""  # extra model card tags
    template_version: str = TEMPLATE_VERSION
    captions: bool = True  # writes captions (eval's caption method applies)
    scoring: str = "logit scoring"  # how its validation scores are read, for the model card

    def load_base(self, cfg: Config) -> tuple[torch.nn.Module, object]:
        """The base model and its processor, as ``cfg.base`` names them."""
        raise NotImplementedError

    def fingerprint(self, cfg: Config, model: torch.nn.Module) -> str:
        """The fingerprint of the base an adapter is loaded onto (see :func:`lora_iqa.methods.common.fingerprint`)."""
        from lora_iqa.methods.common import fingerprint

        return fingerprint(model)

    def attach(self, cfg: Config, model: torch.nn.Module, processor, protocol: Protocol) -> torch.nn.Module:
        """``model`` with what trains made trainable (an adapter, prompts, a head)."""
        raise NotImplementedError

    def trainer(self, model: torch.nn.Module, protocol: Protocol) -> torch.nn.Module:
        """The training forward around ``model`` (what Accelerate prepares); ``.model`` is ``model``."""
        raise NotImplementedError

    def collate(self, cfg: Config, processor, template: Template, protocol: Protocol, model: torch.nn.Module,
                caption_fn: Callable | None = None) -> Collate:
        """Batches of this method's training forward."""
        raise NotImplementedError

    def save(self, model: torch.nn.Module, processor, out: Path, state_dict: dict | None = None) -> None:
        """Write the trained weights (and whatever loading needs besides ``lora_iqa.json``) into ``out``."""
        raise NotImplementedError

    def load(self, adapter_dir: Path, meta: AdapterMeta, base: str | None = None) -> tuple[torch.nn.Module, object]:
        """A saved directory as (model, processor), ready to score (eval mode)."""
        raise NotImplementedError

    def check_saved(self, root: Path) -> None:
        """Refuse (one line naming the file) a saved directory whose files are missing or unreadable (before a push)."""
        raise NotImplementedError

    def load_snippet(self, meta: AdapterMeta) -> str:
        """Python that loads the directory without lora_iqa where that is possible, for the model card."""
        return "from lora_iqa.methods.load import load_trained\nmodel, processor, meta = load_trained(\"PATH\")"
