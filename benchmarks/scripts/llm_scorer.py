"""The openai scorer on a loopback chat-completions server (lora_iqa.testing.chat_server).

Measures, with SYNTHETIC captions (random CT score vectors rendered by the template, seed 0):
1. steady-state throughput against concurrency (1..32) with a fixed 200 ms server latency, against
   the ideal concurrency / latency (after a warm-up batch: imports and connections excluded);
2. a re-run served by the on-disk cache (calls made);
3. a fault storm: 30 % of requests get one of six injected faults (429 + Retry-After, 500, a hang past
   the 2 s timeout, a truncated body, empty choices, an out-of-range value) over 500 items, compared
   with the fault-free run;
4. agreement with the template scorer on an exact-oracle server, per protocol and strategy;
5. that the API key appears in no file the runs wrote.

    python benchmarks/scripts/llm_scorer.py --out benchmarks/results/llm_scorer
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lora_iqa.config import ScorerConfig  # noqa: E402
from lora_iqa.errors import atomic_write_text  # noqa: E402
from lora_iqa.protocols import get_protocol  # noqa: E402
from lora_iqa.scorers.openai import OpenAIScorer  # noqa: E402
from lora_iqa.scorers.template_scorer import TemplateScorer
from lora_iqa.template import Template, render_preference, render_ranking  # noqa: E402
from lora_iqa.testing.chat_server import ChatServer  # noqa: E402

KEY = "sk-bench-" + "".join(random.Random().choice("abcdef0123456789") for _ in range(24))
T = Template()


def captions(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [T.render({d: rng.randint(0, 4) for d in T.dimensions}) for _ in range(n)]


def scorer(**kw) -> OpenAIScorer:
    return OpenAIScorer(ScorerConfig(backend="openai", **kw), T, progress=False)


@contextlib.contextmanager
def served(*flags: str) -> Iterator[Callable[[], dict]]:
    """A chat server in its own process (as a real one would be); yields a function reading its /stats."""
    proc = subprocess.Popen([sys.executable, "-m", "lora_iqa.testing.chat_server", *flags],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        os.environ["OPENAI_BASE_URL"] = url
        yield lambda: json.loads(urllib.request.urlopen(f"{url}/stats", timeout=10).read())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def throughput(latency: float, levels: list[int]) -> list[dict]:
    rows = []
    for c in levels:
        n = max(64, 40 * c)
        with served("--latency", str(latency)) as stats:
            s = scorer(concurrency=c, cache=False)
            s.score(captions(c, seed=99))  # warm-up: lazy imports and connections are not throughput
            warm = stats()["calls"]
            t0 = time.perf_counter()
            res = s.score(captions(n, seed=c))
            dt = time.perf_counter() - t0
            calls = stats()["calls"] - warm
        ideal = c / latency
        rows.append({"concurrency": c, "items": n, "seconds": round(dt, 3), "items_per_s": round(n / dt, 2),
                     "ideal_per_s": round(ideal, 2), "fraction_of_ideal": round(n / dt / ideal, 3),
                     "ok": sum(r.ok for r in res), "calls": calls})
        print(f"concurrency {c:3d}: {n / dt:7.1f} items/s (ideal {ideal:.0f}, {n / dt / ideal:.2f})")
    return rows


def cache_rerun(n: int = 200) -> dict:
    with served("--latency", "0.2") as stats:
        caps = captions(n, seed=11)
        first, second = scorer(concurrency=16), scorer(concurrency=16)
        t0 = time.perf_counter()
        a = first.score(caps)
        t1 = time.perf_counter()
        after_first = stats()["calls"]
        b = second.score(caps)
        t2 = time.perf_counter()
        rerun_requests = stats()["calls"] - after_first
    out = {"items": n, "first_calls": first.usage.calls, "first_seconds": round(t1 - t0, 3),
           "rerun_calls": second.usage.calls, "rerun_server_requests": rerun_requests,
           "rerun_cache_hits": second.usage.cache_hits, "rerun_seconds": round(t2 - t1, 3),
           "same_values": [r.scores for r in a] == [r.scores for r in b]}
    print(f"cache: first run {out['first_calls']} calls, re-run {out['rerun_calls']} calls, "
          f"{out['rerun_server_requests']} requests reached the server "
          f"({out['rerun_cache_hits']} hits, {out['rerun_seconds']} s)")
    return out


def fault_storm(n: int = 500, rate: float = 0.3) -> dict:
    caps = captions(n, seed=7)
    with ChatServer() as server:
        os.environ["OPENAI_BASE_URL"] = server.url
        clean = scorer(concurrency=16, cache=False).score(caps)
    with ChatServer(fault_rate=rate, hang_seconds=3.0, retry_after=0.2, seed=1) as server:
        os.environ["OPENAI_BASE_URL"] = server.url
        s = scorer(concurrency=16, cache=False, timeout=2.0, max_retries=5)
        t0 = time.perf_counter()
        stormy = s.score(caps)
        dt = time.perf_counter() - t0
    faults: dict[str, int] = {}
    for _, f in server.log:
        faults[f] = faults.get(f, 0) + 1
    failed = [r.reason for r in stormy if not r.ok]
    out = {"items": n, "fault_rate": rate, "server_requests": server.calls, "faults": faults,
           "injected_fraction": round(1 - faults.get("ok", 0) / server.calls, 3), "seconds": round(dt, 2),
           "scored": sum(r.ok for r in stormy), "failed_with_reason": sum(bool(x) for x in failed),
           "failed_reasons": failed, "values_equal_fault_free": all(
               a.scores == b.scores for a, b in zip(stormy, clean) if a.ok),
           "every_item_accounted": all(r.ok or (r.status == "failed" and r.reason) for r in stormy)}
    print(f"fault storm: {out['scored']}/{n} scored, {out['failed_with_reason']} failed with a reason, "
          f"values equal fault-free: {out['values_equal_fault_free']}, faults {faults}")
    return out


def oracle_agreement(n: int = 200) -> list[dict]:
    rows = []
    rng = random.Random(5)
    texts = {"ss": captions(n, seed=3),
             "ds": [render_preference(rng.choice(("first", "second", "similar"))) for _ in range(n)],
             "ms": [render_ranking(rng.sample(range(1, 5), 4)) for _ in range(n)]}
    template = TemplateScorer(T)
    with ChatServer() as server:
        os.environ["OPENAI_BASE_URL"] = server.url
        for protocol, items in texts.items():
            want = template.score(items, get_protocol(protocol, k=4))
            for strategy in ("standard", "cot"):
                for fmt in ("json_schema", "json_object", "text"):
                    got = scorer(concurrency=16, cache=False, strategy=strategy, response_format=fmt).score(items, get_protocol(protocol, k=4))
                    same = sum(a.ok and (a.scores, a.preference, a.ranking) == (b.scores, b.preference, b.ranking)
                               for a, b in zip(got, want))
                    rows.append({"protocol": protocol, "strategy": strategy, "response_format": fmt,
                                 "items": n, "agree": same, "agreement": same / n})
    print("oracle agreement: " + ", ".join(f"{r['protocol']}/{r['strategy']}/{r['response_format']} "
                                           f"{r['agreement']:.0%}" for r in rows))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/llm_scorer")
    ap.add_argument("--latency", type=float, default=0.2)
    args = ap.parse_args()
    out = Path(args.out)
    work = Path(tempfile.mkdtemp(prefix="llm_bench_"))
    os.environ["OPENAI_API_KEY"] = KEY
    os.environ["LORA_IQA_CACHE_DIR"] = str(work / "cache")
    levels = [1, 2, 4, 8, 16, 32]
    res = {"synthetic": True, "latency_s": args.latency, "throughput": throughput(args.latency, levels),
           "cache": cache_rerun(), "fault_storm": fault_storm(), "oracle_agreement": oracle_agreement()}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(res, indent=1))
    _plot(res, out / "throughput.png")
    _markdown(res, out / "results.md")
    written = [p for p in [*work.rglob("*"), *out.rglob("*")] if p.is_file()]
    leaked = [str(p) for p in written if KEY.encode() in p.read_bytes()]
    print(f"API key found in {len(leaked)} of {len(written)} files written" + (f": {leaked}" if leaked else ""))
    if leaked:
        raise SystemExit(1)


def _plot(res: dict, path: Path) -> None:
    rows = res["throughput"]
    c = [r["concurrency"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(c, [r["items_per_s"] for r in rows], "o-", label="openai scorer (measured)")
    ax.plot(c, [r["ideal_per_s"] for r in rows], "k--", label="ideal: concurrency / latency")
    ax.set(xscale="log", yscale="log", xlabel="concurrency", ylabel="items / s",
           title=f"loopback server, {res['latency_s'] * 1000:.0f} ms latency")
    ax.set_xticks(c, [str(x) for x in c])
    ax.legend()
    fig.tight_layout()
    with tempfile.NamedTemporaryFile(suffix=".png", dir=path.parent, delete=False) as tmp:
        fig.savefig(tmp.name, dpi=120)
    os.replace(tmp.name, path)
    plt.close(fig)


def _markdown(res: dict, path: Path) -> None:
    lines = [f"# openai scorer on a loopback server (SYNTHETIC captions, {res['latency_s'] * 1000:.0f} ms latency)", "",
             "| concurrency | items | items/s | ideal | fraction |", "|---|---|---|---|---|"]
    lines += [f"| {r['concurrency']} | {r['items']} | {r['items_per_s']} | {r['ideal_per_s']} | {r['fraction_of_ideal']} |"
              for r in res["throughput"]]
    c, f = res["cache"], res["fault_storm"]
    lines += ["", f"Cache: first run {c['first_calls']} calls in {c['first_seconds']} s; re-run {c['rerun_calls']} calls "
              f"({c['rerun_cache_hits']} cache hits) in {c['rerun_seconds']} s, same values: {c['same_values']}.", "",
              f"Fault storm: {f['items']} items, {f['injected_fraction']:.0%} of {f['server_requests']} requests faulted "
              f"({', '.join(f'{k} {v}' for k, v in sorted(f['faults'].items()))}); {f['scored']} scored, "
              f"{f['failed_with_reason']} failed with a reason; values equal the fault-free run: "
              f"{f['values_equal_fault_free']}; {f['seconds']} s.", "",
              "| protocol | strategy | response format | agreement with template scorer |", "|---|---|---|---|"]
    lines += [f"| {r['protocol']} | {r['strategy']} | {r['response_format']} | {r['agree']}/{r['items']} |"
              for r in res["oracle_agreement"]]
    atomic_write_text(path, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
