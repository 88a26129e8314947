"""The LLM scorer through the official ``openai`` client (OpenAI or any OpenAI-compatible server).

``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` come from the environment only; the model and every other
setting from :class:`~lora_iqa.config.ScorerConfig`. Transport faults (429 with Retry-After, 5xx,
timeouts) are retried by the client itself (exponential backoff with jitter, Retry-After honoured);
broken or invalid replies (unparseable body, no choices, a value out of range) are retried here with
the same backoff. Requests run concurrently (bounded), validated replies are cached on disk, and an
item that still fails ends ``failed`` with its reason. The key is never logged, cached or written, and
:func:`redact` removes it from whatever the server or the client says (a 401 body that repeats it, a
reply that quotes it) before that text reaches a result, the cache, a report or an error.
"""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass, replace
from typing import Callable, Mapping, Sequence

import numpy as np
import openai
from tqdm.auto import tqdm

from lora_iqa.config import ScorerConfig, cache_dir
from lora_iqa.data.manifest import Item
from lora_iqa.errors import LoraIqaError
from lora_iqa.protocols import SS, Protocol
from lora_iqa.scorers import prompts
from lora_iqa.scorers.cache import ReplyCache
from lora_iqa.scorers.results import Result, answer_schema, failed, parse_answer
from lora_iqa.template import Template

# The credentials the openai client reads from the environment (organization and project ids are not secret).
SECRET_ENV = ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_WEBHOOK_SECRET")
REDACTED = "[redacted]"
MIN_SECRET_CHARS = 8  # shorter values are placeholders ("x", "EMPTY" for local servers): hunting them mangles text


def redact(text: str) -> str:
    """``text`` with every secret of :data:`SECRET_ENV` (as set, and whitespace-stripped) replaced by
    :data:`REDACTED`."""
    values: set[str] = set()
    for name in SECRET_ENV:
        value = os.environ.get(name) or ""
        values |= {value, value.strip()}
    for secret in sorted((v for v in values if len(v) >= MIN_SECRET_CHARS), key=len, reverse=True):
        text = text.replace(secret, REDACTED)  # longest first: "key\n" as set before its stripped "key"
    return text


@dataclass
class Usage:
    """Calls made, cache hits, tokens and (when prices are configured) cost."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failed_items: int = 0

    def cost(self, cfg: ScorerConfig) -> float | None:
        if cfg.price_input is None or cfg.price_output is None:
            return None
        return (self.prompt_tokens * cfg.price_input + self.completion_tokens * cfg.price_output) / 1e6

    def line(self, cfg: ScorerConfig) -> str:
        cost = self.cost(cfg)
        return (f"openai scorer ({cfg.model}): {self.calls} calls, {self.cache_hits} cache hits, "
                f"{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens"
                + (f", ${cost:.4f}" if cost is not None else " (set scorer.price_input/price_output for cost)")
                + (f", {self.failed_items} items failed" if self.failed_items else ""))


class OpenAIScorer:
    """Caption(s) -> answers, images -> answers (zero-shot MLLM baseline), and reports, through an LLM."""

    name = "openai"

    def __init__(self, cfg: ScorerConfig, template: Template, train_items: Sequence[Item] = (),
                 window: tuple[float, float] | None = None, progress: bool = True) -> None:
        if not os.environ.get("OPENAI_API_KEY"):
            raise LoraIqaError("OPENAI_API_KEY is not set: the openai scorer reads its key from the environment only")
        if cfg.strategy == "in_context" and len(train_items) < max(cfg.shots, 4):
            raise LoraIqaError("scorer.strategy=in_context needs labelled train items to draw "
                               f"{cfg.shots} examples from (give a manifest with a train split)")
        self.cfg, self.template, self.train_items, self.window = cfg, template, list(train_items), window
        self.progress = progress
        self.usage = Usage()
        self.cache = ReplyCache(cache_dir() / "llm") if cfg.cache else None

    # -- the interface ---------------------------------------------------------------------------
    def score(self, texts: Sequence[str], protocol: Protocol = SS) -> list[Result]:
        """One :class:`Result` per caption (ss: scores, ds: preference, ms: ranking of ``protocol.k``)."""
        shots = self._shots(protocol)
        jobs = [prompts.caption_messages(t, protocol, self.template, self.cfg.strategy, shots) for t in texts]
        return self._run(jobs, protocol, lambda text: parse_answer(text, protocol, self.template))

    def score_images(self, groups: Sequence[Sequence[np.ndarray]], protocol: Protocol = SS) -> list[Result]:
        """The zero-shot MLLM baseline: send the images themselves (1, 2 or k per item)."""
        from lora_iqa.data.samples import ImageFile

        protocol = replace(protocol, k=len(groups[0])) if groups else protocol  # ms: as many as each item shows
        shots = [([ImageFile(it.image, self.window) for it in s.items], s.answer) for s in self._shots(protocol)]
        jobs = [prompts.image_messages(g, protocol, self.template, self.cfg.strategy, shots) for g in groups]
        return self._run(jobs, protocol, lambda text: parse_answer(text, protocol, self.template))

    def report(self, caption: str, scores: Mapping[str, float | None], image: str = "") -> str:
        """A radiology-style markdown report written by the LLM from the caption and its scores."""
        msgs = prompts.report_messages(caption, dict(scores), self.template)
        res = self._run([msgs], None, _report_check)[0]
        if not res.ok:
            raise LoraIqaError(f"openai scorer: report for {image or 'image'} failed: {res.reason}")
        head = f"# Image quality report\n\n**Image:** `{image}`\n\n" if image else "# Image quality report\n\n"
        return head + res.extra["text"].strip() + f"\n\n_Written by {self.cfg.model} from lora_iqa's caption; not a clinical report._\n"

    def usage_line(self) -> str:
        return self.usage.line(self.cfg)

    # -- machinery -------------------------------------------------------------------------------
    def _shots(self, protocol: Protocol) -> list[prompts.Shot]:
        if self.cfg.strategy != "in_context":
            return []
        return prompts.draw_shots(self.train_items, protocol, self.template.dimensions, self.cfg.shots,
                                  self.cfg.seed)

    def _params(self, protocol: Protocol | None) -> dict:
        """Request parameters; ``protocol`` None: a free-text report."""
        params: dict = {"temperature": self.cfg.temperature, "max_tokens": self.cfg.max_tokens}
        if protocol is None or self.cfg.response_format == "text":
            return params
        if self.cfg.response_format == "json_object":
            return {**params, "response_format": {"type": "json_object"}}
        schema = answer_schema(protocol, self.template.dimensions, reasoning=self.cfg.strategy == "cot")
        return {**params, "response_format": {"type": "json_schema", "json_schema": {
            "name": f"{protocol.name}_answer", "schema": schema, "strict": True}}}

    def _run(self, jobs: list[list[dict]], protocol: Protocol | None, check: Callable[[str], Result]) -> list[Result]:
        params = self._params(protocol)
        results = asyncio.run(self._gather(jobs, params, check))
        self.usage.failed_items += sum(not r.ok for r in results)
        return results

    async def _gather(self, jobs: list[list[dict]], params: dict, check: Callable[[str], Result]) -> list[Result]:
        client = openai.AsyncOpenAI(timeout=self.cfg.timeout, max_retries=self.cfg.max_retries)
        gate = asyncio.Semaphore(self.cfg.concurrency)
        bar = tqdm(total=len(jobs), desc=f"{self.name} scorer", unit="item", disable=not self.progress or len(jobs) < 2)
        try:
            async def one(msgs: list[dict]) -> Result:
                try:
                    return await self._one(client, gate, msgs, params, check)
                finally:
                    bar.update()

            return list(await asyncio.gather(*(one(m) for m in jobs)))
        finally:
            bar.close()
            await client.close()

    async def _one(self, client: openai.AsyncOpenAI, gate: asyncio.Semaphore, msgs: list[dict], params: dict,
                   check: Callable[[str], Result]) -> Result:
        """One item's result, its reason and extra texts redacted (a reply may quote a key in escaped JSON
        that only decoding reveals)."""
        r = await self._ask(client, gate, msgs, params, check)
        return replace(r, reason=r.reason and redact(r.reason),
                       extra={k: redact(v) if isinstance(v, str) else v for k, v in r.extra.items()})

    async def _ask(self, client: openai.AsyncOpenAI, gate: asyncio.Semaphore, msgs: list[dict], params: dict,
                   check: Callable[[str], Result]) -> Result:
        key = ReplyCache.key(str(client.base_url), self.cfg.model, msgs, params) if self.cache else ""
        cached = check(self.cache.get(key) or "") if self.cache else None
        if cached is not None and cached.ok:
            self.usage.cache_hits += 1
            return cached
        reason = "no attempt"
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:  # a broken or invalid reply: back off (exponential, jitter) and ask again
                await asyncio.sleep(min(0.5 * 2 ** (attempt - 1), 8.0) * (1 - 0.25 * random.random()))
            try:
                async with gate:
                    self.usage.calls += 1
                    reply = await client.chat.completions.create(model=self.cfg.model, messages=msgs, **params)
            except openai.APITimeoutError:
                return failed(f"timed out after {self.cfg.timeout:g} s ({self.cfg.max_retries} retries)")
            except openai.APIStatusError as e:
                if e.status_code in (429,) or e.status_code >= 500:
                    return failed(f"HTTP {e.status_code} after {self.cfg.max_retries} retries")
                return failed(f"HTTP {e.status_code}: {_short(e.message)}")  # 4xx: asking again will not help
            except openai.APIConnectionError as e:
                return failed(f"connection error: {_short(str(e))}")
            except (openai.APIResponseValidationError, ValueError) as e:
                reason = f"broken reply body ({_short(str(e))})"
                continue
            if reply.usage is not None:
                self.usage.prompt_tokens += reply.usage.prompt_tokens or 0
                self.usage.completion_tokens += reply.usage.completion_tokens or 0
            if not reply.choices:
                reason = "reply has no choices"
                continue
            text = redact(reply.choices[0].message.content or "")  # before it is parsed or cached
            result = check(text)
            if result.ok:
                if self.cache:
                    self.cache.put(key, text, self.cfg.model)
                return result
            reason = f"invalid reply: {result.reason}"
        return failed(f"{reason} (after {self.cfg.max_retries + 1} attempts)")


def _report_check(text: str) -> Result:
    text = text.strip()
    return Result(status="ok", extra={"text": text}) if text else failed("empty report")


def _short(msg: str, n: int = 160) -> str:
    """The server's or the client's message on one line, redacted before it is cut (no partial key)."""
    msg = " ".join(redact(str(msg)).split())
    return msg if len(msg) <= n else msg[: n - 3] + "..."
