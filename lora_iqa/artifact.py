"""The adapter directory's ``lora_iqa.json`` as :class:`AdapterMeta`: locate (local path or Hub id), read,
validate, write."""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lora_iqa import __version__
from lora_iqa.config import ADAPTER_METHODS, PROTOCOLS, REFERENCES, Config, DataConfig, config_from_dict
from lora_iqa.errors import LoraIqaError, atomic_write_text
from lora_iqa.protocols import Protocol, get_protocol
from lora_iqa.template import DOMAINS, Template
from lora_iqa.views import RESIZE, View, make_view

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")  # owner/name, as on the Hub


def resolve_adapter(path_or_id: str | Path) -> Path:
    """An adapter (or full fine-tune) directory: a local path as it is, or, when the argument is not an
    existing local path but looks like a Hub repo id (``owner/name``), its snapshot downloaded with
    ``huggingface_hub.snapshot_download`` (cached; offline it comes from the cache). The endpoint is
    ``HF_ENDPOINT``, read now; the token is whatever huggingface_hub finds (``HF_TOKEN``, a login).
    """
    path = Path(path_or_id)
    name = str(path_or_id)
    if path.exists() or not REPO_ID.match(name):
        return path
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        return Path(snapshot_download(name, endpoint=os.environ.get("HF_ENDPOINT") or None))
    except (RepositoryNotFoundError, GatedRepoError):
        why = "not found on the Hub (no such model repo, or a private/gated one and no valid token in HF_TOKEN)"
    except LocalEntryNotFoundError:
        why = ("cannot be downloaded: " + ("HF_HUB_OFFLINE is set" if constants.is_offline_mode()
                                           else "the Hub cannot be reached") + " and it is not in the local Hub cache")
    except Exception as e:  # other HTTP or connection errors
        why = f"downloading it from the Hub failed ({type(e).__name__}: {' '.join(str(e).split())[:300]})"
    raise LoraIqaError(f"{name}: not a local directory, and {why}")


META_FILE = "lora_iqa.json"
META_VERSION = 1  # lora_iqa.json's schema; a file without ``meta_version`` is version 0


@dataclass(frozen=True)
class BaseRef:
    """The base an adapter was trained on: its name or path, and the fingerprint of its weights."""

    name_or_path: str
    fingerprint: str


@dataclass(frozen=True)
class AdapterMeta:
    """An adapter (or full fine-tune, or CLIP prompt) directory's ``lora_iqa.json``, checked and typed.

    Built once by the training run and written with :func:`write_meta`; every reader gets it from
    :func:`read_meta`. The JSON keys are the field names; ``base`` is ``{name_or_path, fingerprint}``.
    """

    dimensions: tuple[str, ...]
    base: BaseRef
    config: dict[str, Any]  # the training run's Config.to_dict()
    method: str = "lora"
    protocol: str = "ss"
    reference: str = "nr"
    images: int = 1  # images the model sees per sample (stimuli, plus the reference for fr)
    domain: str = "ct"
    template_version: str = ""  # "": not recorded
    num_processes: int = 1
    step: int = 0  # the selected (best) step
    metrics: dict[str, Any] = field(default_factory=dict)  # validation metrics at ``step``, per dimension
    lora_iqa_version: str = ""  # "": not recorded
    meta_version: int = META_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, written back as read

    @property
    def multi_image(self) -> bool:
        """Whether the model sees more than one image per sample (it then has an image-index embedding)."""
        return self.images > 1

    @property
    def adapter_name(self) -> str:
        """``{protocol}_{reference}``, e.g. ``ds_fr``: the adapter's default name in an AdapterSet."""
        return self.make_protocol().key

    @property
    def seed(self) -> int:
        """The training run's seed (0 where the config lacks it)."""
        return int(self.config.get("seed", 0))

    @property
    def data_manifest(self) -> str | None:
        """The manifest the adapter was trained on (as the recipe named it), if recorded."""
        return self.config.get("data", {}).get("manifest")

    def template(self) -> Template:
        """The caption template the adapter was trained with."""
        return Template(self.dimensions, domain=self.domain)

    def data_settings(self) -> dict[str, Any]:
        """The sample-drawing settings (data.k, per_image, same_content, similar_below, window) it was
        trained with; DataConfig's defaults where an older config lacks a key."""
        saved, defaults = self.config.get("data", {}), DataConfig()
        d = {key: saved.get(key, getattr(defaults, key))
             for key in ("k", "per_image", "same_content", "similar_below", "window")}
        d["window"] = tuple(d["window"]) if d["window"] else None
        return d

    def make_protocol(self) -> Protocol:
        """The protocol object it scores: its protocol and reference, ``k`` its data.k."""
        return get_protocol(self.protocol, self.reference, int(self.data_settings()["k"]))

    def make_view(self) -> View:
        """What the model saw of an image in training (crop or resize, spacing, grid); adapters saved
        before views existed resized whole (:data:`lora_iqa.views.RESIZE`)."""
        saved = self.config.get("data", {})
        if "view" not in saved:
            return RESIZE
        return make_view(saved["view"], saved.get("spacing"), int(saved.get("grid", 3)), self.domain)

    def training_config(self) -> Config:
        """The training run's Config, rebuilt from ``config`` (LoraIqaError if it is not a valid one)."""
        return config_from_dict(self.config)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``lora_iqa.json`` (unknown keys read from a file are kept)."""
        return {"meta_version": self.meta_version, "method": self.method, "protocol": self.protocol,
                "reference": self.reference, "images": self.images, "dimensions": list(self.dimensions),
                "domain": self.domain, "template_version": self.template_version,
                "base": {"name_or_path": self.base.name_or_path, "fingerprint": self.base.fingerprint},
                "config": copy.deepcopy(self.config), "num_processes": self.num_processes, "step": self.step,
                "metrics": copy.deepcopy(self.metrics), "lora_iqa_version": self.lora_iqa_version,
                **copy.deepcopy(self.extra)}

    @classmethod
    def from_dict(cls, raw: Any, where: str | Path) -> AdapterMeta:
        """A parsed ``lora_iqa.json`` with its keys and types checked (anything wrong: one line naming
        ``where`` and the key) and the keys older files lack filled with their defaults."""
        if not isinstance(raw, dict):
            raise LoraIqaError(f"{where}: not a JSON object (a JSON {type(raw).__name__})")
        version = _check_version(raw, where)
        for key in ("dimensions", "base", "config"):
            if key not in raw:
                raise _bad(where, key, "is missing")
        config = _check_config(raw["config"], where)
        meta = {"method": config.get("adapter", {}).get("method", "lora"), "protocol": "ss", "reference": "nr",
                "images": 1, "domain": "ct", **raw}
        _check_names(meta, where)
        _check_counts(meta, where)
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(dimensions=_check_dimensions(meta["dimensions"], where), base=_check_base(meta["base"], where),
                   config=config, method=meta["method"], protocol=meta["protocol"], reference=meta["reference"],
                   images=meta["images"], domain=meta["domain"],
                   template_version=meta.get("template_version", ""), num_processes=meta.get("num_processes", 1),
                   step=meta.get("step", 0), metrics=meta.get("metrics", {}),
                   lora_iqa_version=meta.get("lora_iqa_version", ""), meta_version=version,
                   extra={k: v for k, v in raw.items() if k not in known})


def _bad(where: str | Path, key: str, why: str) -> LoraIqaError:
    return LoraIqaError(f"{where}: key '{key}' {why}")


def _whole(v: Any, least: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= least


def _check_version(raw: dict, where: str | Path) -> int:
    """The file's schema version; a newer one than this lora_iqa reads is refused (its keys may mean more)."""
    version = raw.get("meta_version", 0)
    if not _whole(version, 0):
        raise _bad(where, "meta_version", f"must be a whole number >= 0, not {version!r:.60}")
    if version > META_VERSION:
        raise _bad(where, "meta_version", f"is {version}, newer than this lora_iqa {__version__} reads "
                                          f"({META_VERSION}): upgrade lora_iqa")
    return version


def _check_config(config: Any, where: str | Path) -> dict:
    if not isinstance(config, dict):
        raise _bad(where, "config", f"must be a mapping (the training config), not {config!r:.60}")
    for key in ("adapter", "data"):
        if not isinstance(config.get(key, {}), dict):
            raise _bad(where, f"config.{key}", "must be a mapping")
    if "seed" in config and not _whole(config["seed"], 0):
        raise _bad(where, "config.seed", f"must be a whole number >= 0, not {config['seed']!r:.60}")
    return config


def _check_names(meta: dict, where: str | Path) -> None:
    """method, protocol, reference and domain: each one of its known names; the versions: strings."""
    for key, allowed in (("method", ADAPTER_METHODS), ("protocol", PROTOCOLS), ("reference", REFERENCES)):
        if not isinstance(meta[key], str) or meta[key] not in allowed:
            raise _bad(where, key, f"names an unknown {key} {meta[key]!r:.60} (expected one of {', '.join(allowed)})")
    if not isinstance(meta["domain"], str) or meta["domain"] not in DOMAINS:
        raise _bad(where, "domain", f"names an unknown domain {meta['domain']!r:.60} "
                                    f"(expected one of {', '.join(DOMAINS)})")
    for key in ("template_version", "lora_iqa_version"):
        if not isinstance(meta.get(key, ""), str):
            raise _bad(where, key, f"must be a string, not {meta[key]!r:.60}")


def _check_counts(meta: dict, where: str | Path) -> None:
    """images, num_processes, step: whole numbers; metrics: a mapping."""
    if not _whole(meta["images"], 1):
        raise _bad(where, "images", f"must be a whole number >= 1, not {meta['images']!r:.60}")
    if "num_processes" in meta and not _whole(meta["num_processes"], 1):
        raise _bad(where, "num_processes", f"must be a whole number >= 1, not {meta['num_processes']!r:.60}")
    if "step" in meta and not _whole(meta["step"], 0):
        raise _bad(where, "step", f"must be a whole number >= 0, not {meta['step']!r:.60}")
    if "metrics" in meta and not isinstance(meta["metrics"], dict):
        raise _bad(where, "metrics", "must be a mapping")


def _check_dimensions(dims: Any, where: str | Path) -> tuple[str, ...]:
    if not isinstance(dims, list) or not dims or not all(isinstance(d, str) and d for d in dims):
        raise _bad(where, "dimensions", f"must be a non-empty list of dimension names, not {dims!r:.60}")
    return tuple(dims)


def _check_base(base: Any, where: str | Path) -> BaseRef:
    if not isinstance(base, dict):
        raise _bad(where, "base", f"must be a mapping with name_or_path and fingerprint, not {base!r:.60}")
    for key in ("name_or_path", "fingerprint"):
        if not isinstance(base.get(key), str) or not base[key]:
            raise _bad(where, f"base.{key}", "is missing" if key not in base
                       else f"must be a non-empty string, not {base[key]!r:.60}")
    return BaseRef(base["name_or_path"], base["fingerprint"])


def read_meta(adapter_dir: str | Path) -> AdapterMeta:
    """The checked ``lora_iqa.json`` of an adapter (or full fine-tune) directory or Hub repo id.

    Keys a file lacks get their defaults (see :class:`AdapterMeta`); anything else wrong is one line
    naming the file and key.
    """
    root = resolve_adapter(adapter_dir)
    path = root / META_FILE
    where = path if root == Path(adapter_dir) else f"{adapter_dir} (Hub): {META_FILE}"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise LoraIqaError(f"{where}: not found (is {adapter_dir} a lora_iqa adapter directory?)") from None
    except (OSError, ValueError) as e:  # ValueError: not UTF-8 text, or not JSON
        raise LoraIqaError(f"{where}: unreadable ({e})") from None
    return AdapterMeta.from_dict(raw, where)


def write_meta(meta: AdapterMeta, adapter_dir: str | Path) -> None:
    """Write ``meta`` as ``adapter_dir/lora_iqa.json``, atomically (strict JSON: no NaN)."""
    atomic_write_text(Path(adapter_dir) / META_FILE, json.dumps(meta.to_dict(), indent=2, allow_nan=False))
