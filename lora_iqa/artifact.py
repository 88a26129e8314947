"""The adapter directory's ``lora_iqa.json``: locate (local path or Hub id), read and validate."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from lora_iqa.config import ADAPTER_METHODS, PROTOCOLS, REFERENCES
from lora_iqa.errors import LoraIqaError
from lora_iqa.template import DOMAINS

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


def read_meta(adapter_dir: str | Path) -> dict:
    """The validated ``lora_iqa.json`` of an adapter (or full fine-tune) directory or Hub repo id.

    Keys a file may lack get their defaults: protocol ``ss``, reference ``nr``, images 1, method from
    ``config.adapter.method`` (else ``lora``). Anything else wrong is one line naming the file and key.
    """
    root = resolve_adapter(adapter_dir)
    path = root / "lora_iqa.json"
    where = path if root == Path(adapter_dir) else f"{adapter_dir} (Hub): lora_iqa.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise LoraIqaError(f"{where}: not found (is {adapter_dir} a lora_iqa adapter directory?)") from None
    except (OSError, ValueError) as e:  # ValueError: not UTF-8 text, or not JSON
        raise LoraIqaError(f"{where}: unreadable ({e})") from None
    return check_meta(meta, where)


def check_meta(meta, where: str | Path) -> dict:
    """``meta`` (a parsed lora_iqa.json) with its keys and their types checked and the defaults filled in."""
    def bad(key: str, why: str) -> LoraIqaError:
        return LoraIqaError(f"{where}: key '{key}' {why}")

    def whole(v, least: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= least

    if not isinstance(meta, dict):
        raise LoraIqaError(f"{where}: not a JSON object (a JSON {type(meta).__name__})")
    for key in ("dimensions", "base", "config"):
        if key not in meta:
            raise bad(key, "is missing")
    config = meta["config"]
    if not isinstance(config, dict):
        raise bad("config", f"must be a mapping (the training config), not {config!r:.60}")
    for key in ("adapter", "data"):
        if not isinstance(config.get(key, {}), dict):
            raise bad(f"config.{key}", "must be a mapping")
    if "seed" in config and not whole(config["seed"], 0):
        raise bad("config.seed", f"must be a whole number >= 0, not {config['seed']!r:.60}")
    meta = {"method": config.get("adapter", {}).get("method", "lora"), "protocol": "ss", "reference": "nr",
            "images": 1, **meta}
    for key, allowed in (("method", ADAPTER_METHODS), ("protocol", PROTOCOLS), ("reference", REFERENCES)):
        if not isinstance(meta[key], str) or meta[key] not in allowed:
            raise bad(key, f"names an unknown {key} {meta[key]!r:.60} (expected one of {', '.join(allowed)})")
    if "domain" in meta and (not isinstance(meta["domain"], str) or meta["domain"] not in DOMAINS):
        raise bad("domain", f"names an unknown domain {meta['domain']!r:.60} (expected one of {', '.join(DOMAINS)})")
    if not whole(meta["images"], 1):
        raise bad("images", f"must be a whole number >= 1, not {meta['images']!r:.60}")
    dims = meta["dimensions"]
    if not isinstance(dims, list) or not dims or not all(isinstance(d, str) and d for d in dims):
        raise bad("dimensions", f"must be a non-empty list of dimension names, not {dims!r:.60}")
    base = meta["base"]
    if not isinstance(base, dict):
        raise bad("base", f"must be a mapping with name_or_path and fingerprint, not {base!r:.60}")
    for key in ("name_or_path", "fingerprint"):
        if not isinstance(base.get(key), str) or not base[key]:
            raise bad(f"base.{key}", "is missing" if key not in base
                      else f"must be a non-empty string, not {base[key]!r:.60}")
    if "step" in meta and not whole(meta["step"], 0):
        raise bad("step", f"must be a whole number >= 0, not {meta['step']!r:.60}")
    if "metrics" in meta and not isinstance(meta["metrics"], dict):
        raise bad("metrics", "must be a mapping")
    return meta


def multi_image(meta: dict) -> bool:
    """Whether an adapter (its ``lora_iqa.json``) shows the model more than one image per sample."""
    return int(meta.get("images", 1)) > 1
