"""A persistent reply cache: one small JSON file per request, keyed by its content, written atomically.

The key is a sha256 of (base URL, model, messages, parameters); the API key is never part of it and
never stored. A re-run or a resumed run therefore repeats no call that already succeeded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lora_iqa.errors import atomic_write_text


class ReplyCache:
    """Validated reply texts on disk under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

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
        atomic_write_text(self._path(key), json.dumps({"model": model, "text": text}))
