"""What the synthetic generators share: the overall rule, splits by content, the output-folder check,
and a process pool whose workers die with the generator."""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from lora_iqa.errors import LoraIqaError

OVERALL_STRETCH = 1.5  # overall = 2 + 1.5 * (mean of the dimensions - 2), capped at worst + 2


def round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def overall_from(dims: dict[str, int] | list[int], jitter: float = 0.0, rng: np.random.Generator | None = None) -> int:
    """Overall 0..4 from the per-dimension scores (see the generators' docstrings), with optional rater jitter."""
    vals = list(dims.values()) if isinstance(dims, dict) else list(dims)
    q = min(2.0 + OVERALL_STRETCH * (sum(vals) / len(vals) - 2.0), min(vals) + 2.0)
    if jitter > 0:
        q += jitter * float(rng.standard_normal())
    return int(min(4, max(0, round_half_up(q))))


def content_splits(n_contents: int, fractions: tuple[float, float, float], seed: int) -> list[str]:
    """train/val/test per content (at least one content each for val and test), shuffled by seed."""
    c = n_contents
    n_val = max(1, int(round(fractions[1] * c)))
    n_test = max(1, int(round(fractions[2] * c)))
    while c - n_val - n_test < 1:
        if n_val >= n_test and n_val > 1:
            n_val -= 1
        else:
            n_test -= 1
    names = ["train"] * (c - n_val - n_test) + ["val"] * n_val + ["test"] * n_test
    order = np.random.default_rng(np.random.SeedSequence([seed, 2])).permutation(c)
    out = [""] * c
    for name, i in zip(names, order):
        out[int(i)] = name
    return out


def check_out_dir(out: Path, readme_start: str, what: str) -> None:
    """``out`` must be new, empty, or an earlier output of the same generator (its README starts with
    ``readme_start``), which is then replaced as a whole."""
    if not out.exists():
        return
    if not out.is_dir():
        raise LoraIqaError(f"{out}: output path exists and is not a directory")
    if not any(out.iterdir()):
        return
    readme = out / "README.md"
    if readme.is_file() and readme.read_text(errors="replace").startswith(readme_start):
        return
    raise LoraIqaError(f"{out}: output directory exists and is not a {what} output; choose an empty or new --out")


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool whose workers exit when this process dies, ``kill -9`` included (a killed parent
    runs no cleanup, and idle workers would otherwise wait on the task queue forever)."""
    # Forked or spawned workers are children of this process, which is what the checks watch (forkserver,
    # Python 3.14's default on Linux, would make them the server's children).
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_die_with_parent,
                               initargs=(os.getpid(),))


def _die_with_parent(parent: int) -> None:
    """Pool initializer: have the kernel SIGKILL this worker when its parent dies (Linux), and exit once
    the parent pid changes (re-parented: the parent is gone), also where there is no prctl."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
