"""Fixtures for the scorer tests: a loopback chat-completions server driven through the real openai client."""

from __future__ import annotations

import random

import pytest

from lora_iqa.template import Template

SECRET = "sk-test-NEVER-WRITE-ME-4f1c"


@pytest.fixture
def llm(monkeypatch, tmp_path):
    """Start ``ChatServer(**kw)``; OPENAI_* point at it; a private reply cache under ``tmp_path``."""
    from lora_iqa.testing.chat_server import ChatServer

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("LORA_IQA_CACHE_DIR", str(tmp_path / "cache"))
    servers = []

    def start(**kw) -> ChatServer:
        server = ChatServer(**kw).__enter__()
        servers.append(server)
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        return server

    yield start
    for s in servers:
        s.__exit__(None, None, None)


def captions(n: int, seed: int = 0, template: Template = Template()) -> list[str]:
    """``n`` template captions of random score vectors."""
    rng = random.Random(seed)
    return [template.render({d: rng.randint(0, 4) for d in template.dimensions}) for _ in range(n)]
