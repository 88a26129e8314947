"""A training's claim on its output_dir: a lock, and never another run's or a foreign folder's files."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from lora_iqa.errors import LoraIqaError, check_writable_dir, remove_path
from lora_iqa.training.accel import partial_state

LOCK = ".lora_iqa.lock"  # held by the training that writes an output_dir; left by a killed one
RUN_MARKERS = ("lora_iqa.json", "checkpoints", "wandb", LOCK)  # what makes a folder a run's


@contextlib.contextmanager
def claim_output_dir(out: Path, fresh: bool, overwrite: bool) -> Iterator[None]:
    """Hold ``out`` for this training (main process only), checked before any work.

    Another live training's folder is refused. A ``fresh`` run (nothing to resume) into a folder that
    holds another run is refused unless ``overwrite``, which then clears it, so no earlier file can be
    taken for this run's; a folder that is not a run's and not empty is never written into.
    """
    if not partial_state().is_main_process:
        yield
        return
    if out.exists() and not out.is_dir():
        raise LoraIqaError(f"{out}: output_dir exists and is not a directory")
    check_writable_dir(out)
    lock = out / LOCK
    others = sorted(p.name for p in out.iterdir() if p.name != LOCK)
    if fresh and others and not lock.exists() and not any(p in RUN_MARKERS for p in others):
        raise LoraIqaError(f"{out}: output_dir is not empty and holds no lora_iqa run "
                           f"({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); choose a new one")
    left_by_a_killed_run = lock.exists()
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise LoraIqaError(f"{out}: another training (pid {f.read().strip() or '?'}) is writing into this "
                               "output_dir; wait for it or choose another output_dir") from None
        others = sorted(p.name for p in out.iterdir() if p.name != LOCK)
        if fresh and others and not overwrite:
            if not left_by_a_killed_run:
                lock.unlink()
            raise LoraIqaError(f"{out}: output_dir holds another run ({', '.join(others[:4])}"
                               f"{', ...' if len(others) > 4 else ''}); set overwrite=true to replace it, "
                               "or resume=auto to continue it")
        for name in others if fresh else ():
            remove_path(out / name)
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        yield
        lock.unlink()  # done (still held: nobody else took it); a failed or killed run's stays, marking its folder
