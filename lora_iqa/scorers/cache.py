"""A persistent reply cache: one small JSON file per request, keyed by its content, written atomically.

The key is a sha256 of (base URL, model, messages, parameters); the API key is never part of it and
never stored. A re-run or a resumed run therefore repeats no call that already succeeded. The folder
is checked when the cache is made (before any paid call); a write that fails later is skipped with one
warning, so the run keeps every reply it paid for.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from lora_iqa.errors import LoraIqaError, atomic_write_text, check_writable_dir


class ReplyCache:
    """Validated reply texts on disk under ``root`` (created, and checked writable, here)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        try:
            check_writable_dir(self.root)
        except LoraIqaError as e:
            raise LoraIqaError(f"{e}: the LLM reply cache folder is not writable; set LORA_IQA_CACHE_DIR to a "
                               "writable folder or scorer.cache=false") from None
        self._warned = False

    @staticmethod
    def key(base_url: str, model: str, messages: list, params: dict) -> str:
        blob = json.dumps({"base_url": base_url, "model": model, "messages": messages, "params": params},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        """The cached reply text, or ``None`` (a corrupt entry counts as a miss)."""
        try:
            return json.loads(self._path(key).read_text())["text"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, text: str, model: str) -> None:
        """Store a reply; if the folder stopped being writable (disk full, permissions), warn once and go on."""
        try:
            atomic_write_text(self._path(key), json.dumps({"model": model, "text": text}))
        except (OSError, LoraIqaError) as e:
            if not self._warned:
                self._warned = True
                why = getattr(e, "strerror", None) or e
                print(f"lora-iqa: warning: {self.root}: cannot write the LLM reply cache ({why}); "
                      "the run goes on without caching", file=sys.stderr)
