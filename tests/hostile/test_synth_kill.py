"""Hostile: kill -9 of a synthetic-data run (issue 14, class 11).

The generator's worker processes die with it, and a re-run removes the temporary folder the killed
run left beside ``--out`` (temporaries named ``.{name}.{pid}.{random}.tmp``; one whose writer still
runs is left alone).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lora_iqa.cli.main import main

pytestmark = pytest.mark.slow

DEAD_PID = 99999999  # above Linux's pid_max (4194304): never a running process


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(ppid, state, start time) of a process from /proc, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": the comm may hold spaces
    return int(fields[1]), fields[0], fields[19]


def _children(parent: int) -> dict[int, str]:
    """pid -> start time of every process whose parent is ``parent``."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            st = _stat(int(d.name))
            if st and st[0] == parent:
                out[int(d.name)] = st[2]
    return out


def _running(pid: int, start: str) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == start and st[1] not in "ZX"  # the same process, not a zombie


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_takes_the_workers_along_and_a_rerun_cleans_up(tmp_path):
    out = tmp_path / "D"
    # The generator as `lora-iqa synth ct --out D --n 128 --size 64` runs it, with 2 workers on any machine.
    cmd = [sys.executable, "-c", "import sys; from lora_iqa.data.synth.ct import SynthCTConfig, synth_ct; "
           "synth_ct(sys.argv[1], SynthCTConfig(n=128, size=64, workers=2), progress=False)", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".D.*.tmp/images/*.png")):
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
            time.sleep(0.02)
        workers = _children(proc.pid)
        assert len(workers) >= 2, workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list(tmp_path.glob(".D.*.tmp"))  # what the killed run left

    deadline = time.monotonic() + 5
    while any(_running(p, s) for p, s in workers.items()) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [p for p, s in workers.items() if _running(p, s)]
    for p in left:  # do not leave them behind for the rest of the session
        os.kill(p, signal.SIGKILL)
    assert not left, f"workers {left} outlived the killed run"

    subprocess.run(cmd, check=True, timeout=300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert (out / "manifest.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D"]  # no .D.*.tmp left beside it


def _temps(parent: Path, name: str) -> dict[str, Path]:
    """A killed writer's temporary, a live writer's, one without a pid, and another output's."""
    made = {"dead": parent / f".{name}.{DEAD_PID}.abc_1234.tmp", "live": parent / f".{name}.{os.getpid()}.k2x9_q1z.tmp",
            "no pid": parent / f".{name}.abc12345.tmp", "other": parent / f".{name}x.{DEAD_PID}.abc_1234.tmp",
            "dead file": parent / f".{name}.{DEAD_PID}.zz9abcde.tmp"}
    for key, p in made.items():
        if key == "dead file":
            p.write_text("half a manifest")
        else:
            (p / "images").mkdir(parents=True)
            (p / "images" / "x.png").write_bytes(b"partial")
    return made


@pytest.mark.parametrize("kind", ["ct", "natural"])
def test_rerun_removes_only_dead_writers_temporaries(tmp_path, capsys, kind):
    out = tmp_path / "D"
    made = _temps(tmp_path, "D")
    assert main(["synth", kind, "--out", str(out), "--n", "24", "--size", "64" if kind == "ct" else "48"]) == 0
    assert (out / "manifest.csv").is_file()
    assert not made["dead"].exists() and not made["dead file"].exists()
    assert made["live"].exists() and made["no pid"].exists() and made["other"].exists()
