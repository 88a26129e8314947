"""Several adapter directories on ONE shared base: load once, switch by name, score mixed batches.

Each protocol (ss / ds / ms, nr / fr) has its own adapter; an :class:`AdapterSet` holds any number of
them as named peft adapters of one ``PeftModel`` (names default to ``{protocol}_{reference}``, e.g.
``ds_fr``). ``use(name)`` switches the active adapter (``set_adapter``: no weights move), and
``predict`` runs requests for different adapters as one mixed batch per protocol and image count,
each row through its own adapter (peft's ``adapter_names``).

    aset = AdapterSet()
    aset.load("runs/ct_ss_lora")            # -> "ss_nr"; loads the base its lora_iqa.json names
    aset.load("runs/ct_ds_lora")            # -> "ds_nr"; same base (fingerprint checked)
    aset.predict([("ss_nr", (img,)), ("ds_nr", (a, b))])
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from lora_iqa.artifact import AdapterMeta, read_meta, resolve_adapter
from lora_iqa.errors import LoraIqaError
from lora_iqa.methods.blip.base import load_base
from lora_iqa.methods.blip.multi_image import add_image_index
from lora_iqa.methods.blip.predict import protocol_logits
from lora_iqa.protocols import Protocol
from lora_iqa.methods.common import check_base, require_adapter_weights
from lora_iqa.template import Template
from lora_iqa.views import View

Request = tuple[str, "tuple[np.ndarray, ...] | np.ndarray"]  # (adapter name, the sample's images)


class AdapterSet:
    """Named adapters on one shared base. ``base``: the base's name or path (default: the one the first
    loaded adapter's ``lora_iqa.json`` names). Every adapter must have been trained on that exact base."""

    def __init__(self, base: str | None = None) -> None:
        self.base = base
        self.model = None  # the PeftModel, after the first load
        self.processor = None
        self._meta: dict[str, AdapterMeta] = {}
        self._dirs: dict[str, Path] = {}  # where each adapter was loaded from
        self._protocols: dict[str, Protocol] = {}  # each adapter's protocol, built once at load
        self._fingerprint: str | None = None
        self._aux: list = []  # peft's auxiliary wrappers (modules_to_save, trainable tokens)
        self._layers: list = []  # peft's LoRA layers

    @property
    def names(self) -> list[str]:
        """Loaded adapter names, in load order."""
        return list(self._meta)

    @property
    def active(self) -> str | None:
        """The active adapter's name (what a forward without ``adapter_names`` uses)."""
        return None if self.model is None else self.model.active_adapter

    def meta(self, name: str) -> AdapterMeta:
        """The ``lora_iqa.json`` of adapter ``name``."""
        self._known(name)
        return self._meta[name]

    def directory(self, name: str) -> Path:
        """Where adapter ``name`` was loaded from (a Hub id's local snapshot)."""
        self._known(name)
        return self._dirs[name]

    def load(self, adapter_dir: str | Path, name: str | None = None) -> str:
        """Add an adapter directory (or Hub repo id) under ``name``; returns the name. The first call also
        loads the base (with an image-index embedding, which only multi-image adapters use)."""
        path = resolve_adapter(adapter_dir)
        meta = read_meta(path)
        if not (path / "adapter_config.json").exists():
            raise LoraIqaError(f"{adapter_dir}: not a LoRA adapter directory (no adapter_config.json; a full "
                               "fine-tune is a whole model: load it with lora_iqa.methods.load.load_trained)")
        name = name or meta.adapter_name
        if name in self._meta:
            raise LoraIqaError(f"{adapter_dir}: an adapter named '{name}' is already loaded "
                               f"(from {self._dirs[name]}); pass another name")
        from peft import PeftModel

        require_adapter_weights(path)  # safetensors only: peft would also read an adapter_model.bin pickle
        if self.model is None:
            base_name = self.base or meta.base.name_or_path
            model, processor = load_base(base_name)
            check_base(model, meta, adapter_dir, base_name)
            with torch.random.fork_rng(devices=[]):  # the index init must not shift the caller's RNG stream
                add_image_index(model)  # once, before peft wraps the base; ss adapters never read it
            try:
                self.model = PeftModel.from_pretrained(model, str(path), adapter_name=name)
            except Exception as e:
                raise LoraIqaError(f"{adapter_dir}: cannot load the adapter ({str(e).splitlines()[0]})") from None
            self.processor, self.base, self._fingerprint = processor, base_name, meta.base.fingerprint
            _route_missing_to_base(self.model, lambda: self._aux)
        else:
            if meta.base.fingerprint != self._fingerprint:
                raise LoraIqaError(f"{adapter_dir}: adapter was trained on base {meta.base.fingerprint}, "
                                   f"but {self.base} is {self._fingerprint}")
            try:
                self.model.load_adapter(str(path), adapter_name=name)
            except Exception as e:  # a half-added adapter would break later mixed batches
                if name in self.model.peft_config:
                    self.model.delete_adapter(name)
                raise LoraIqaError(f"{adapter_dir}: cannot load the adapter ({str(e).splitlines()[0]})") from None
            # peft's load_adapter leaves the new adapter's tied output-layer token wrapper ACTIVE while the
            # model's active adapter is unchanged (measured: the active ss adapter's logits moved by 0.5);
            # setting the active adapter again makes every layer and wrapper agree
            self.model.set_adapter(self.model.active_adapter, inference_mode=True)
        self.model.eval()
        self._meta[name], self._dirs[name], self._protocols[name] = meta, path, meta.make_protocol()
        self._index_layers()
        return name

    def use(self, name: str) -> None:
        """Make ``name`` the active adapter (a forward without ``adapter_names`` then runs it).

        What peft's ``set_adapter(name, inference_mode=True)`` does, on the adapter layers listed at load
        time: peft walks every module of the model twice per switch, which was most of its cost (0.67 ms
        vs 0.20 ms on the 323-module embedded base, measured by benchmarks/scripts/adapter_set_cost.py; a test
        checks the resulting state equals peft's)."""
        self._known(name)
        for wrapper in self._aux:  # as peft.utils.other._set_adapter
            own = wrapper.check_set_adapter(name)
            wrapper.set_adapter(own if own in wrapper._adapters else [], inference_mode=True)
        for layer in self._layers:  # as peft.tuners.tuners_utils.set_adapter (the set never merges)
            layer.set_adapter(name, inference_mode=True)
        self.model.base_model.active_adapter = name
        self.model.active_adapter = name

    def _index_layers(self) -> None:
        """List the modules a switch touches (peft adds layers and wrappers as adapters load)."""
        from peft.utils.other import AuxiliaryTrainingWrapper

        layer_cls = self.model.base_model.tuner_layer_cls
        self._aux = [m for m in self.model.modules() if isinstance(m, AuxiliaryTrainingWrapper)]
        self._layers = [m for m in self.model.modules() if isinstance(m, layer_cls)]

    def predict(self, requests: Sequence[Request], batch_size: int = 64) -> list[dict]:
        """Score ``(name, images)`` requests, in request order. Requests that share protocol, image count
        (and, for ss, dimensions) run as one mixed batch, each row through its own adapter. Per request:
        ss ``{"adapter", "protocol", "reference", "scores"}``; ds ``"preference"`` (0 first, 1 second,
        0.5 similar), ``"probability"``, ``"probs"``; ms ``"ranking"`` (image numbers, best first),
        ``"probability"``, ``"expected_ranks"``."""
        groups: dict[tuple, list[int]] = defaultdict(list)
        protocols: dict[tuple, Protocol] = {}
        samples = []
        for i, (name, images) in enumerate(requests):
            self._known(name)
            images = images if isinstance(images, tuple) else (images,)
            meta = self._meta[name]
            if len(images) != meta.images:
                raise LoraIqaError(f"request {i}: adapter '{name}' ({meta.adapter_name}) "
                                   f"takes {meta.images} images per sample, got {len(images)}")
            samples.append(images)
            protocol = self._protocols[name]
            dims = meta.dimensions if protocol.per_image else ()
            # the reference splits ms groups of equal size: ms_nr k=4 and ms_fr k=3 both show 4 images
            key = (protocol.key, len(images), dims, meta.make_view())  # adapters trained on other views run apart
            groups[key].append(i)
            protocols.setdefault(key, protocol)
        out: list[dict | None] = [None] * len(requests)
        for key, rows in groups.items():
            protocol, n_images, dims, view = protocols[key], key[1], key[2], key[3]
            names = [requests[i][0] for i in rows]
            results = self._run(protocol, n_images > 1, dims, [samples[i] for i in rows], names, batch_size, view)
            for i, res in zip(rows, results):
                out[i] = {"adapter": requests[i][0], "protocol": protocol.name, "reference": protocol.reference, **res}
        return out  # type: ignore[return-value]

    def _run(self, protocol: Protocol, index: bool, dims: tuple[str, ...], images: list, names: list[str],
             batch_size: int, view: View) -> list[dict]:
        """One mixed batch of one protocol and view; ``index``: add image-index embeddings."""
        res = protocol_logits(self.model, self.processor, images, protocol, Template(dims), batch_size=batch_size,
                              index=index, adapter_names=names, view=view)
        return [{"scores": r["scores"]} for r in res] if protocol.per_image else res

    def _known(self, name: str) -> None:
        if name not in self._meta:
            raise LoraIqaError(f"adapter '{name}' is not loaded (loaded: {', '.join(self._meta) or 'none'})")


def _route_missing_to_base(model, wrappers) -> None:
    """Make mixed batches work on a set whose adapters differ in peft's auxiliary modules.

    peft 0.21 hands the same ``adapter_names`` to every LoRA layer and every auxiliary wrapper
    (``modules_to_save``: the image index; ``trainable_token_indices``: the word embeddings and the tied
    output layer). A LoRA layer sends rows of adapters it does not hold through the base layer, but a
    wrapper looks every row's adapter up and fails (KeyError) -- so once a ds/ms adapter is loaded, even
    a batch of ss adapters fails. Here each wrapper gets its own list, with the adapters it does not hold
    as ``"__base__"`` (peft's name for "no adapter"), from a hook registered after peft's own.
    ``wrappers()``: the model's auxiliary wrappers (listed once per load, not walked per forward).
    """
    tuner = model.base_model
    enable = tuner._enable_peft_forward_hooks  # the bound method of the class

    @contextmanager
    def hooks(*args, **kwargs):
        names = kwargs.get("adapter_names")
        try:
            with enable(*args, **kwargs):
                handles = []
                if names is not None:
                    for module in wrappers():
                        if not set(names) <= set(module._adapters):
                            own = [n if n in module._adapters else "__base__" for n in names]
                            handles.append(module.register_forward_pre_hook(partial(_names_hook, own),
                                                                            with_kwargs=True))
                try:
                    yield
                finally:
                    for h in handles:
                        h.remove()
        except BaseException:
            _drop_name_hooks(tuner)  # peft removes its hooks only when the forward succeeds
            raise

    tuner._enable_peft_forward_hooks = hooks


def _names_hook(names: list[str], module, args, kwargs):
    kwargs["adapter_names"] = names
    return args, kwargs


def _drop_name_hooks(tuner) -> None:
    """Remove every ``adapter_names`` pre-forward hook (peft's and ours). peft's context manager has no
    ``finally``: a forward that raises inside it leaves its hooks on every layer, and each later forward
    is routed by the failed batch's names (or fails on the batch size)."""
    from peft.tuners.lora import model as lora_model

    stale = {_names_hook, getattr(lora_model, "_adapter_names_pre_forward_hook", None)}
    for module in tuner.modules():
        for key, hook in list(module._forward_pre_hooks.items()):
            if isinstance(hook, partial) and hook.func in stale:
                del module._forward_pre_hooks[key]
                module._forward_pre_hooks_with_kwargs.pop(key, None)
