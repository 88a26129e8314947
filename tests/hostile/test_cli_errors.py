"""Hostile: the CLI's one error path and its exit status (issue 14, classes 6 and 8).

Every expected failure is one ``lora-iqa: error:`` line naming the file or key, exit 1; a run in
which any item failed exits 3 after saying how many; a closed stdout pipe is not a traceback."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import one_error_line

from lora_iqa.cli.main import main


def _image(manifest: Path) -> Path:
    return sorted((manifest.parent / "images").glob("*_1.png"))[0]


def _exe() -> str:
    return shutil.which("lora-iqa") or str(Path(sys.executable).with_name("lora-iqa"))


@pytest.mark.parametrize("override", ["train.lr=[", "train.lr={", "data.window=[1, 2", "seed=: :"])
def test_bad_yaml_override_is_one_line(tmp_path, capsys, override):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("{}\n")
    assert main(["train", str(recipe), override]) == 1
    one_error_line(capsys, override.split("=")[0])


def test_os_error_at_the_end_is_one_line(adapter_dir, manifest, tmp_path, capsys, monkeypatch):
    """A disk that fills up while the result is written: one line naming the file, nothing left behind."""
    import lora_iqa.errors

    out = tmp_path / "eval.json"

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out))

    monkeypatch.setattr(lora_iqa.errors.os, "replace", full)
    assert main(["eval", "--adapter", str(adapter_dir), "--data", str(manifest), "--method", "logits",
                 "--out", str(out)]) == 1
    line = one_error_line(capsys, out)
    assert "No space left" in line
    assert list(tmp_path.iterdir()) == []


def test_every_item_failed_exits_non_zero(adapter_dir, manifest, tmp_path, llm, capsys):
    """An LLM scorer that never answers usably: every item fails; the file says so and the exit status too."""
    llm(answer=lambda body: "I cannot rate images.")
    out = tmp_path / "eval.json"
    code = main(["eval", "--adapter", str(adapter_dir), "--data", str(manifest), "--method", "caption",
                 "--scorer", "openai", "--set", "max_retries=0", "--out", str(out)])
    err = capsys.readouterr().err
    res = json.loads(out.read_text())
    assert all(it["status"] == "failed" for it in res["items"])
    assert code == 3 and f"{res['n']} of {res['n']} items failed" in err


def test_score_all_ok_exits_zero(adapter_dir, manifest, capsys):
    assert main(["score", str(_image(manifest)), "--adapter", str(adapter_dir), "--json"]) == 0


@pytest.mark.slow
def test_two_trainings_into_one_output_dir(base_dir, manifest, tmp_path, capsys):
    """A second training into the output_dir of a live one is refused in one line; the first goes on."""
    out = tmp_path / "run"
    recipe = tmp_path / "r.yaml"
    recipe.write_text("{}\n")
    args = [f"output_dir={out}", f"data.manifest={manifest}", f"base={base_dir}", "train.max_steps=100000",
            "train.batch_size=8", "train.eval_every=100000", "train.save_every=0"]
    first = subprocess.Popen([_exe(), "train", str(recipe), *args], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while "trainable params" not in first.stdout.readline():  # the first one is training
            assert first.poll() is None and time.monotonic() < deadline
        assert main(["train", str(recipe), *args[:-3], "train.max_steps=2", "train.batch_size=8"]) == 1
        line = one_error_line(capsys, out)
        assert "another training" in line and str(first.pid) in line
        assert first.poll() is None
    finally:
        first.kill()
        first.wait()


@pytest.mark.slow
def test_closed_stdout_pipe(adapter_dir, manifest):
    imgs = [str(p) for p in sorted((manifest.parent / "images").glob("*.png"))[:40]]
    proc = subprocess.Popen([_exe(), "score", *imgs, "--adapter", str(adapter_dir), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    proc.stdout.close()  # the reader went away (`| head -0`)
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert len(err.splitlines()) <= 1 and code not in (0, -signal.SIGSEGV)
