"""A loopback HTTP server that speaks the OpenAI chat-completions API, with injectable faults.

The default answerer is an *exact oracle*: it reads the caption in the scorer's prompt with the
template and answers what the template scorer would, in the reply format the request asks for
(JSON schema / JSON mode / free text, with reasoning when asked). Faults (a fixed fraction of requests, at random places):
``429`` (with Retry-After), ``500``, ``hang`` (past the client's timeout), ``broken_json`` (a
truncated body), ``empty_choices`` and ``out_of_range`` (a value outside 0..4). ``echo_key`` (every
request) plays a hostile server that repeats the caller's API key (from the Authorization header):
``401`` rejects it with the key in the error body, ``reply`` answers validly with the key in the text
and the reasoning, ``invalid`` answers with the key as a value (so a failure reason would quote it).

    with ChatServer(fault_rate=0.3) as server:
        client = openai.OpenAI(base_url=server.url, api_key="x")
"""

from __future__ import annotations

import argparse
import json
import random
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from lora_iqa.template import PREFERENCES, Template, parse_preference, parse_ranking

FAULTS = ("429", "500", "hang", "broken_json", "empty_choices", "out_of_range")
ECHO_KEY = ("401", "reply", "invalid")
CAPTION = re.compile(r'Caption(?: of image \d+)?: "(.*?)"', re.S)


class ChatServer:
    """Serve ``POST {url}/chat/completions`` on 127.0.0.1 from a background thread."""

    def __init__(self, answer: Callable[[dict], dict | str] | None = None, latency: float = 0.0,
                 fault_rate: float = 0.0, faults: tuple[str, ...] = FAULTS, seed: int = 0,
                 retry_after: float = 0.05, hang_seconds: float = 5.0, echo_key: str | None = None) -> None:
        if echo_key not in (None, *ECHO_KEY):
            raise ValueError(f"echo_key must be one of {ECHO_KEY}, got {echo_key!r}")
        self.answer = answer or oracle_answer
        self.echo_key = echo_key
        self.latency, self.fault_rate, self.faults = latency, fault_rate, tuple(faults)
        self.retry_after, self.hang_seconds = retry_after, hang_seconds
        self.requests: list[dict] = []  # every request body received, in arrival order
        self.headers: list[dict] = []
        self.log: list[tuple[float, str]] = []  # (arrival time, fault or "ok")
        self._rng = random.Random(seed)
        self._schedule: list[str | None] = []
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def calls(self) -> int:
        return len(self.requests)

    def __enter__(self) -> "ChatServer":
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _draw_fault(self) -> str | None:
        """Exactly ``fault_rate`` of every block of 100 requests, at random places, of random kinds."""
        with self._lock:
            if not self._schedule:
                hits = set(self._rng.sample(range(100), round(self.fault_rate * 100)))
                self._schedule = [self._rng.choice(self.faults) if i in hits else None for i in range(100)]
            return self._schedule.pop(0)


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # socketserver's default backlog of 5 drops SYNs under concurrency (1 s stalls)


def _handler(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def setup(self) -> None:
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle stalls

        def do_GET(self) -> None:  # {url}/stats: request and fault counts (for out-of-process use)
            if self.path.rstrip("/") not in ("/v1/stats", "/stats"):
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            with server._lock:
                counts: dict[str, int] = {}
                for _, f in server.log:
                    counts[f] = counts.get(f, 0) + 1
            self._send(200, {"calls": server.calls, "outcomes": counts})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            fault = server._draw_fault()
            with server._lock:
                server.requests.append(body)
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                server.log.append((time.monotonic(), fault or "ok"))
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            time.sleep(server.latency)
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if server.echo_key == "401":
                return self._send(401, {"error": {
                    "message": f"Incorrect API key provided: {key}. Authorization: Bearer {key}",
                    "type": "invalid_request_error", "param": key, "code": "invalid_api_key"}})
            if fault == "429":
                return self._send(429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                                  {"Retry-After": f"{server.retry_after:g}"})
            if fault == "500":
                return self._send(500, {"error": {"message": "internal error"}})
            if fault == "hang":
                time.sleep(server.hang_seconds)
            if fault == "broken_json":
                return self._send_raw(200, b'{"id": "chatcmpl-x", "object": "chat.completion", "choices": [{"ind')
            answer = _echo(server.answer(body), server.echo_key, key)
            if fault == "out_of_range" and isinstance(answer, dict) and "scores" in answer:
                answer = {**answer, "scores": {**answer["scores"], next(iter(answer["scores"])): 7}}
            content = _format(answer, body)
            choices = [] if fault == "empty_choices" else [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}]
            prompt_tokens = len(json.dumps(body.get("messages", []))) // 4
            self._send(200, {"id": "chatcmpl-loopback", "object": "chat.completion", "created": int(time.time()),
                             "model": body.get("model", "loopback"), "choices": choices,
                             "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(content) // 4,
                                       "total_tokens": prompt_tokens + len(content) // 4}})

        def _send(self, status: int, obj: dict, headers: dict | None = None) -> None:
            self._send_raw(status, json.dumps(obj).encode(), headers)

        def _send_raw(self, status: int, data: bytes, headers: dict | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    """``python -m lora_iqa.testing.chat_server``: print the base URL, then serve until killed."""
    ap = argparse.ArgumentParser(description="loopback OpenAI chat-completions server (exact template oracle)")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    ap.add_argument("--fault-rate", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hang-seconds", type=float, default=5.0)
    ap.add_argument("--retry-after", type=float, default=0.05)
    ap.add_argument("--echo-key", choices=ECHO_KEY, help="repeat the caller's API key (hostile server)")
    a = ap.parse_args(argv)
    server = ChatServer(latency=a.latency, fault_rate=a.fault_rate, seed=a.seed, hang_seconds=a.hang_seconds,
                        retry_after=a.retry_after, echo_key=a.echo_key)
    print(server.url, flush=True)
    server._httpd.serve_forever()


def _echo(answer: dict | str, mode: str | None, key: str) -> dict | str:
    """The answer with the caller's key planted: in prose and reasoning (``reply``) or as a value (``invalid``)."""
    if mode is None:
        return answer
    if isinstance(answer, str):
        return f"{answer}\n\n(Answered for {key}.)"
    if mode == "reply":
        return {**answer, "reasoning": f"The key {key} was checked. {answer.get('reasoning', '')}".strip()}
    if "scores" in answer:
        return {**answer, "scores": {**answer["scores"], next(iter(answer["scores"])): key}}
    return {**answer, "preference" if "preference" in answer else "ranking": key}


def _format(answer: dict | str, body: dict) -> str:
    """The answer as the request asked for it: JSON, or prose that ends in a fenced JSON block (text as is)."""
    if isinstance(answer, str):
        return answer
    fmt = (body.get("response_format") or {}).get("type", "text")
    if fmt in ("json_schema", "json_object"):
        return json.dumps(answer)
    return f"Looking at the description carefully.\n```json\n{json.dumps(answer)}\n```"


def _prompt_text(body: dict) -> str:
    parts = []
    for m in body.get("messages", []):
        c = m.get("content")
        parts += [c] if isinstance(c, str) else [p.get("text", "") for p in c or [] if p.get("type") == "text"]
    return "\n".join(parts)


def oracle_answer(body: dict) -> dict:
    """What the template scorer reads from the last caption in the request (exact oracle)."""
    last_user = [m for m in body.get("messages", []) if m.get("role") == "user"][-1]
    text = _prompt_text({"messages": [last_user]})
    full = _prompt_text(body)
    captions = CAPTION.findall(text)
    caption = captions[-1] if captions else ""
    reasoning = "reason" in json.dumps(body.get("response_format") or {}) or "step by step" in full
    if '"ranking"' in full:
        k = int(re.search(r"(\d+) images", full).group(1))
        answer: dict = {"ranking": parse_ranking(caption, k)}
    elif '"preference"' in full:
        answer = {"preference": parse_preference(caption) or PREFERENCES[2], "confidence": 1.0}
    else:
        dims = tuple(d.strip() for d in re.search(r"Dimensions: ([^\n.]+)", full).group(1).split(","))
        answer = {"scores": Template(dims).parse(caption)}
    return {"reasoning": "The caption states each level explicitly.", **answer} if reasoning else answer


if __name__ == "__main__":
    main()
