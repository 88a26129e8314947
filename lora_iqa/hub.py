"""Push an adapter (or full fine-tune) directory to the Hugging Face Hub, with its model card.

``push(dir, repo_id)`` checks the directory first (``lora_iqa.json``, the weights, the model card and
its metadata) and refuses with one line naming the file at fault; nothing is uploaded then. The token
is never an argument: huggingface_hub finds it (``HF_TOKEN``, or a ``huggingface-cli login`` /
``hf auth login``). Hidden and temporary files and ``checkpoints/`` (training state) stay local.

Loading from the Hub (``--adapter OWNER/NAME``) is ``lora_iqa.artifact.resolve_adapter``.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import yaml

from lora_iqa.artifact import META_FILE, AdapterMeta, read_meta
from lora_iqa.errors import LoraIqaError, first_line
from lora_iqa.methods.common import check_file
from lora_iqa.methods.registry import get_method

SKIP_DIRS = ("checkpoints", "wandb")  # training state and tracker logs, not the adapter
TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".incomplete", ".lock", ".swp", "~")
TAG = "lora_iqa"


def push(adapter_dir: str | Path, repo_id: str, private: bool = False, endpoint: str | None = None) -> str:
    """Upload a checked adapter / full fine-tune directory to ``repo_id``; returns the repo URL.

    ``endpoint`` defaults to ``HF_ENDPOINT`` (read now, not at import) or the public Hub.
    """
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise LoraIqaError(f"--repo-id {repo_id}: not a valid Hub repo id ({first_line(e)})") from None
    root = Path(adapter_dir)
    meta, files = check_dir(root)
    token = get_token()
    if not token:
        raise LoraIqaError("no Hugging Face token found: set HF_TOKEN or run `hf auth login` "
                           "(huggingface-cli login); lora-iqa never takes a token on the command line")
    for rel in files:  # belt and braces: the token must never leave in a file
        if not rel.endswith((".safetensors", ".bin")) and token.encode() in (root / rel).read_bytes():
            raise LoraIqaError(f"{root / rel}: contains your Hugging Face token; refusing to upload it")
    kind = get_method(meta.method).title
    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(root),
                          allow_patterns=[glob.escape(f) for f in files],
                          commit_message=f"lora_iqa {kind}, protocol {meta.protocol}, step {meta.step}")
    except Exception as e:  # HTTP errors (401/403/404...), offline mode, connection errors
        raise LoraIqaError(f"{repo_id}: push to the Hub failed ({type(e).__name__}: {_summary(e)})") from e
    return str(url)


def check_dir(root: Path) -> tuple[AdapterMeta, list[str]]:
    """(meta, files to upload) of a directory fit to push; LoraIqaError naming the file at fault otherwise."""
    if not root.is_dir():
        raise LoraIqaError(f"{root}: not a directory")
    meta = read_meta(root)  # keys and types checked; what older files lack is defaulted
    # a pushed adapter documents itself: what read_meta would default to "not recorded" must be there
    missing = [k for k, v in (("template_version", meta.template_version), ("metrics", meta.metrics)) if not v]
    if missing:
        raise LoraIqaError(f"{root / META_FILE}: missing key(s) {', '.join(missing)}")
    method = get_method(meta.method)
    method.check_saved(root)
    _check_card(root / "README.md", meta, method.library_name)
    return meta, upload_files(root)


def upload_files(root: Path) -> list[str]:
    """Paths (relative, posix) that are pushed: all files but hidden/temporary ones and ``checkpoints/``."""
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if (not p.is_file() or rel.parts[0] in SKIP_DIRS or "__pycache__" in rel.parts
                or any(part.startswith(".") or part.endswith(TEMP_SUFFIXES) for part in rel.parts)):
            continue
        out.append(rel.as_posix())
    return out


def card_metadata(text: str) -> dict | None:
    """The YAML front matter of a model card (``None`` when there is none)."""
    if not text.startswith("---"):
        return None
    head, sep, _ = text[3:].partition("\n---")
    if not sep:
        return None
    data = yaml.safe_load(head)
    return data if isinstance(data, dict) else None


def _check_card(path: Path, meta: AdapterMeta, library_name: str) -> None:
    check_file(path)
    try:
        data = card_metadata(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise LoraIqaError(f"{path}: unreadable model card metadata ({first_line(e)})") from None
    if data is None:
        raise LoraIqaError(f"{path}: no YAML metadata block (--- ... ---) at the top of the model card")
    want = {"base_model": meta.base.name_or_path, "library_name": library_name}
    for key, value in want.items():
        if data.get(key) != value:
            raise LoraIqaError(f"{path}: metadata '{key}' is {data.get(key)!r}, expected {value!r}")
    tags = data.get("tags")
    if not isinstance(tags, list) or TAG not in tags:
        raise LoraIqaError(f"{path}: metadata 'tags' must be a list that includes '{TAG}'")


def _summary(e: BaseException, limit: int = 300) -> str:
    """All of an error's message on one line (a Hub error's reason is on its later lines), shortened."""
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


