"""Hostile loading: planted pickles, pickle-format weights, corrupt files and bad lora_iqa.json.

Issue 14, classes 2 (a pickle in a checkpoint runs on resume), 3 (weights load through pickle) and the
loading items of 8 (tracebacks instead of one line). A planted pickle, when unpickled, creates a marker
file: it must never appear. Every refusal is one ``LoraIqaError`` line naming the file (and the key).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import free_port, one_error_line

from lora_iqa.cli.main import main
from lora_iqa.config import load_config
from lora_iqa.errors import LoraIqaError

# What accelerate's save_state wrote (and its load_state unpickled): the names a planted pickle takes.
PICKLE_NAMES = ("custom_checkpoint_0.pkl", "random_states_0.pkl", "optimizer.bin", "scheduler.bin",
                "pytorch_model.bin", "sampler.bin", "scaler.pt", "dl_state_dict.bin")


class Plant:
    """Unpickling this creates (opens for append) ``marker``: the evidence that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "a")


def plant(path: Path, marker: Path) -> None:
    torch.save({"state": Plant(marker)}, path)


def one_line(excinfo, *names) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    for n in names:
        assert str(n) in msg, (n, msg)
    return msg


def image_of(manifest: Path) -> Path:
    return sorted((manifest.parent / "images").glob("*_1.png"))[0]


# --- class 2: checkpoints -----------------------------------------------------------------------------

TINY_RUN = ["train.batch_size=8", "train.eval_batch_size=8", "train.lr=1e-2", "train.warmup_steps=1",
            "train.eval_every=2", "train.save_every=2"]


def recipe(tmp: Path, base_dir: Path, manifest: Path, max_steps: int = 4) -> Path:
    path = tmp / "tiny.yaml"
    path.write_text(f"base: {base_dir}\ndata:\n  manifest: {manifest}\ntrain:\n  max_steps: {max_steps}\n"
                    "  batch_size: 8\n  eval_batch_size: 8\n  lr: 1.0e-2\n  warmup_steps: 1\n  eval_every: 2\n"
                    "  save_every: 2\n")
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, base_dir, manifest) -> Path:
    """A genuine checkpoint (step 2 of a tiny 4-step LoRA run)."""
    from lora_iqa.training.run import run

    out = tmp_path_factory.mktemp("hostile_ckpt") / "run"
    run(load_config(recipe(out.parent, base_dir, manifest), [f"output_dir={out}"]), progress=False)
    return out / "checkpoints" / "step_0000002"


def copy_ckpt(ckpt: Path, out: Path) -> Path:
    dst = out / "checkpoints" / ckpt.name
    shutil.copytree(ckpt, dst)
    return dst


def resume(rec: Path, out: Path, resume_from: str, *extra: str) -> None:
    from lora_iqa.training.run import run

    run(load_config(rec, [f"output_dir={out}", f"resume={resume_from}", *extra]), progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["path", "auto"])
def test_a_planted_pickle_in_a_checkpoint_never_runs(tmp_path, ckpt, base_dir, manifest, how):
    """A genuine checkpoint with pickles planted under accelerate's names: resuming never unpickles them."""
    out, marker = tmp_path / "out", tmp_path / "PWNED"
    dst = copy_ckpt(ckpt, out)
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl"):
        plant(dst / name, marker)
    err = None
    try:
        resume(recipe(tmp_path, base_dir, manifest), out, str(dst) if how == "path" else "auto")
    except Exception as e:  # noqa: BLE001 - the marker is checked first: it is the point of the test
        err = e
    assert not marker.exists(), "the planted pickle was unpickled (code ran)"
    assert err is None, repr(err)
    assert (out / "lora_iqa.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["path", "auto"])
def test_a_folder_of_pickles_is_not_a_checkpoint(tmp_path, base_dir, manifest, capsys, how):
    """Only planted pickles (accelerate's whole file set): refused in one line, nothing unpickled."""
    out, marker = tmp_path / "out", tmp_path / "PWNED"
    dst = out / "checkpoints" / "step_0000002"
    dst.mkdir(parents=True)
    for name in PICKLE_NAMES:
        plant(dst / name, marker)
    rec = recipe(tmp_path, base_dir, manifest)
    code = main(["train", str(rec), f"output_dir={out}", f"resume={dst if how == 'path' else 'auto'}"])
    assert not marker.exists(), "the planted pickle was unpickled (code ran)"
    assert code == 1
    one_error_line(capsys, dst)


@pytest.mark.slow
def test_a_truncated_checkpoint_is_one_line_naming_the_file(tmp_path, ckpt, base_dir, manifest):
    """Each file of the checkpoint in turn cut to half its size: one line naming that file."""
    rec = recipe(tmp_path, base_dir, manifest)
    for f in sorted(p.name for p in ckpt.iterdir()):
        out = tmp_path / f"cut_{f}"
        dst = copy_ckpt(ckpt, out)
        data = (dst / f).read_bytes()
        (dst / f).write_bytes(data[: len(data) // 2])
        with pytest.raises(LoraIqaError) as e:
            resume(rec, out, str(dst))
        one_line(e, dst / f)


@pytest.mark.slow
def test_a_corrupt_checkpoint_through_the_cli_is_one_line(tmp_path, ckpt, base_dir, manifest, capsys):
    out = tmp_path / "out"
    dst = copy_ckpt(ckpt, out)
    for f in dst.iterdir():
        f.write_bytes(b"\x00\xffnot a checkpoint file" * 3)
    assert main(["train", str(recipe(tmp_path, base_dir, manifest)), f"output_dir={out}", "resume=auto"]) == 1
    one_error_line(capsys, dst)


@pytest.mark.slow
@pytest.mark.parametrize("key,value", [("format", "accelerate"), ("num_processes", "1"), ("progress.step", "x"),
                                       ("progress", None), ("scheduler", []), ("optimizer.param_groups", [])])
def test_a_hand_edited_trainer_state_is_one_line(tmp_path, ckpt, base_dir, manifest, key, value):
    """Valid JSON with a wrong key or type in the checkpoint's loop state: one line naming the file."""
    out = tmp_path / "out"
    dst = copy_ckpt(ckpt, out)
    state_file = dst / "trainer_state.json"
    state = json.loads(state_file.read_text())
    *parents, last = key.split(".")
    node = state
    for p in parents:
        node = node[p]
    node[last] = value
    state_file.write_text(json.dumps(state))
    with pytest.raises(LoraIqaError) as e:
        resume(recipe(tmp_path, base_dir, manifest), out, str(dst))
    one_line(e, state_file)


@pytest.mark.slow
@pytest.mark.parametrize("change", ["adapter.r=4", "adapter.method=full", "adapter.targets=[vision]"])
def test_a_mismatched_checkpoint_is_one_line(tmp_path, ckpt, base_dir, manifest, change):
    """A checkpoint of other adapter settings / another model: one line naming the checkpoint."""
    out = tmp_path / "out"
    dst = copy_ckpt(ckpt, out)
    with pytest.raises(LoraIqaError) as e:
        resume(recipe(tmp_path, base_dir, manifest), out, str(dst), change)
    one_line(e, dst)


@pytest.mark.slow
def test_a_checkpoint_of_another_world_size_is_one_line(tmp_path, base_dir, manifest):
    """A 2-process (gloo DDP) checkpoint resumed by one process: one line, not a silent inexact resume."""
    script = Path(__file__).resolve().parents[2] / "recipes" / "train.py"
    rec = recipe(tmp_path, base_dir, manifest, max_steps=2)
    two = tmp_path / "two"
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--main_process_port", str(free_port()), str(script), str(rec), f"output_dir={two}"],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "one"
    dst = copy_ckpt(two / "checkpoints" / "step_0000002", out)
    with pytest.raises(LoraIqaError) as e:
        resume(recipe(tmp_path, base_dir, manifest, max_steps=4), out, "auto")
    assert "2 processes" in one_line(e, dst)


# --- class 3: safetensors only ------------------------------------------------------------------------

def to_bin(st: Path, bin_name: str, marker: Path | None = None) -> Path:
    """Replace the safetensors file ``st`` by a torch-pickle ``bin_name`` beside it, holding the same
    tensors (and, with ``marker``, a planted pickle)."""
    from safetensors.torch import load_file

    state = load_file(str(st))
    if marker is not None:
        state["planted"] = Plant(marker)
    torch.save(state, st.with_name(bin_name))
    st.unlink()
    return st.with_name(bin_name)


@pytest.fixture
def full_dir(tmp_path, base_dir, adapter_dir) -> Path:
    """A full fine-tune directory: a complete BLIP (the tiny base) with a lora_iqa.json saying ``full``."""
    d = tmp_path / "full"
    shutil.copytree(base_dir, d)
    meta = json.loads((adapter_dir / "lora_iqa.json").read_text())
    meta["method"] = meta["config"]["adapter"]["method"] = "full"
    (d / "lora_iqa.json").write_text(json.dumps(meta))
    return d


@pytest.mark.parametrize("planted", [False, True])
def test_an_adapter_with_only_a_bin_is_refused(tmp_path, adapter_dir, manifest, capsys, planted):
    from lora_iqa.methods.load import load_trained

    d, marker = tmp_path / "adapter", tmp_path / "PWNED"
    shutil.copytree(adapter_dir, d)
    to_bin(d / "adapter_model.safetensors", "adapter_model.bin", marker if planted else None)
    with pytest.raises(LoraIqaError) as e:
        load_trained(d)
    one_line(e, d / "adapter_model.safetensors")
    assert main(["score", str(image_of(manifest)), "--adapter", str(d), "--json"]) == 1
    one_error_line(capsys, d)
    assert not marker.exists()


@pytest.mark.parametrize("planted", [False, True])
def test_a_full_fine_tune_with_only_pytorch_model_bin_is_refused(tmp_path, full_dir, manifest, capsys, planted):
    from lora_iqa.methods.load import load_trained

    marker = tmp_path / "PWNED"
    to_bin(full_dir / "model.safetensors", "pytorch_model.bin", marker if planted else None)
    with pytest.raises(LoraIqaError) as e:
        load_trained(full_dir)
    one_line(e, full_dir / "model.safetensors")
    assert main(["score", str(image_of(manifest)), "--adapter", str(full_dir), "--json"]) == 1
    one_error_line(capsys, full_dir)
    assert not marker.exists()


def test_a_base_with_only_pytorch_model_bin_is_refused(tmp_path, base_dir):
    from lora_iqa.methods.blip.base import load_base

    d = tmp_path / "base"
    shutil.copytree(base_dir, d)
    to_bin(d / "model.safetensors", "pytorch_model.bin")
    with pytest.raises(LoraIqaError) as e:
        load_base(str(d))
    one_line(e, d, "model.safetensors")


@pytest.fixture
def clip_base(tmp_path) -> Path:
    """A tiny random CLIP saved as a checkpoint directory (no pre-training: loading is what is tested)."""
    from lora_iqa.bases.clip_standin import tiny_clip, tiny_tokenizer

    d = tmp_path / "clip"
    model, processor = tiny_clip(tiny_tokenizer(), hidden=32, layers=1, image_size=32, patch=8, heads=2)
    model.save_pretrained(str(d))
    processor.save_pretrained(d)
    return d


def test_a_clip_base_with_only_pytorch_model_bin_is_refused(clip_base):
    from lora_iqa.methods.clip.base import load_clip

    to_bin(clip_base / "model.safetensors", "pytorch_model.bin")
    with pytest.raises(LoraIqaError) as e:
        load_clip(str(clip_base))
    one_line(e, clip_base, "model.safetensors")


# --- class 8: corrupt safetensors ---------------------------------------------------------------------

CORRUPTIONS = {"garbage": lambda b: b"\x00\xffnot safetensors at all" * 4,
               "truncated": lambda b: b[: len(b) // 2],
               "empty": lambda b: b""}


def corrupt(path: Path, how: str) -> None:
    path.write_bytes(CORRUPTIONS[how](path.read_bytes()))


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_a_corrupt_adapter_safetensors_is_one_line(tmp_path, adapter_dir, manifest, capsys, how):
    from lora_iqa.methods.load import load_trained

    d = tmp_path / "adapter"
    shutil.copytree(adapter_dir, d)
    corrupt(d / "adapter_model.safetensors", how)
    with pytest.raises(LoraIqaError) as e:
        load_trained(d)
    one_line(e, d / "adapter_model.safetensors")
    assert main(["score", str(image_of(manifest)), "--adapter", str(d), "--json"]) == 1
    one_error_line(capsys, d / "adapter_model.safetensors")


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_a_corrupt_full_model_safetensors_is_one_line(full_dir, manifest, capsys, how):
    from lora_iqa.methods.load import load_trained

    corrupt(full_dir / "model.safetensors", how)
    with pytest.raises(LoraIqaError) as e:
        load_trained(full_dir)
    one_line(e, full_dir, "model.safetensors")
    assert main(["score", str(image_of(manifest)), "--adapter", str(full_dir), "--json"]) == 1
    one_error_line(capsys, full_dir, "model.safetensors")


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_a_corrupt_clip_base_is_one_line(clip_base, how):
    from lora_iqa.methods.clip.base import load_clip

    corrupt(clip_base / "model.safetensors", how)
    with pytest.raises(LoraIqaError) as e:
        load_clip(str(clip_base))
    one_line(e, clip_base, "model.safetensors")


@pytest.fixture
def prompt_dir(tmp_path, clip_base) -> Path:
    """A clip_prompt adapter directory on ``clip_base`` (untrained prompts: loading is what is tested)."""
    from lora_iqa.methods.clip.base import load_clip
    from lora_iqa.methods.clip.prompt import TEMPLATE_VERSION, ClipPromptLearner
    from lora_iqa.methods.common import fingerprint

    cfg = load_config(None, ["adapter.method=clip_prompt", "adapter.n_ctx=2", "adapter.n_vis=2", f"base={clip_base}",
                             "data.dimensions=[sharpness,overall]", "data.domain=natural"])
    clip, processor = load_clip(str(clip_base))
    d = tmp_path / "prompts"
    d.mkdir()
    ClipPromptLearner(clip, processor, cfg.adapter, cfg.data.dimensions).save_pretrained(d)
    meta = {"method": "clip_prompt", "protocol": "ss", "reference": "nr", "images": 1,
            "dimensions": list(cfg.data.dimensions), "domain": "natural", "template_version": TEMPLATE_VERSION,
            "base": {"name_or_path": str(clip_base), "fingerprint": fingerprint(clip)}, "config": cfg.to_dict()}
    (d / "lora_iqa.json").write_text(json.dumps(meta))
    return d


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_corrupt_prompt_tensors_are_one_line(prompt_dir, how):
    from lora_iqa.methods.clip.prompt import WEIGHTS_NAME
    from lora_iqa.methods.load import load_trained

    load_trained(prompt_dir)  # the intact directory loads
    corrupt(prompt_dir / WEIGHTS_NAME, how)
    with pytest.raises(LoraIqaError) as e:
        load_trained(prompt_dir)
    one_line(e, prompt_dir / WEIGHTS_NAME)


# --- class 8: lora_iqa.json ---------------------------------------------------------------------------

def _set(meta: dict, key: str, value) -> dict:
    """``meta`` with dotted ``key`` set to ``value`` (``DELETE``: removed)."""
    *parents, last = key.split(".")
    node = meta
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return meta


DELETE = object()
BAD_META = [  # (key, value): the key the one line must name
    ("dimensions", DELETE), ("dimensions", "overall"), ("dimensions", []), ("dimensions", [1, 2]),
    ("base", DELETE), ("base", "tiny-blip"), ("base.fingerprint", DELETE), ("base.fingerprint", 7),
    ("base.name_or_path", DELETE), ("base.name_or_path", ["a"]), ("config", DELETE), ("config", [1]),
    ("method", "qlora"), ("method", 3), ("protocol", "zz"), ("protocol", None), ("reference", "xx"),
    ("images", "2"), ("images", 0), ("images", True), ("domain", 5), ("domain", "mars"),
]


def _meta_case(tmp_path: Path, adapter_dir: Path, key: str, value) -> tuple[Path, Path]:
    d = tmp_path / "adapter"
    shutil.copytree(adapter_dir, d)
    meta = _set(json.loads((d / "lora_iqa.json").read_text()), key, value)
    (d / "lora_iqa.json").write_text(json.dumps(meta))
    return d, d / "lora_iqa.json"


@pytest.mark.parametrize("key,value", BAD_META, ids=[f"{k}={'DELETE' if v is DELETE else v!r}" for k, v in BAD_META])
def test_a_bad_lora_iqa_json_is_one_line_naming_the_file_and_key(tmp_path, adapter_dir, manifest, capsys, key, value):
    from lora_iqa.artifact import read_meta
    from lora_iqa.methods.load import load_trained

    d, path = _meta_case(tmp_path, adapter_dir, key, value)
    for load in (read_meta, load_trained):
        with pytest.raises(LoraIqaError) as e:
            load(d)
        one_line(e, path, f"'{key}'")
    assert main(["score", str(image_of(manifest)), "--adapter", str(d), "--json"]) == 1
    one_error_line(capsys, path, f"'{key}'")


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary", b"[1, 2, 3]", b'"a string"', b"{", b""],
                         ids=["binary", "list", "string", "truncated", "empty"])
def test_a_lora_iqa_json_that_is_not_an_object_is_one_line(tmp_path, adapter_dir, manifest, capsys, content):
    from lora_iqa.artifact import read_meta

    d = tmp_path / "adapter"
    shutil.copytree(adapter_dir, d)
    (d / "lora_iqa.json").write_bytes(content)
    with pytest.raises(LoraIqaError) as e:
        read_meta(d)
    one_line(e, d / "lora_iqa.json")
    assert main(["score", str(image_of(manifest)), "--adapter", str(d), "--json"]) == 1
    one_error_line(capsys, d / "lora_iqa.json")


def test_protocol_zz_fails_eval_instead_of_exit_0(tmp_path, adapter_dir, manifest, capsys):
    d, path = _meta_case(tmp_path, adapter_dir, "protocol", "zz")
    out = tmp_path / "eval.json"
    assert main(["eval", "--adapter", str(d), "--data", str(manifest), "--out", str(out)]) == 1
    one_error_line(capsys, path, "'protocol'")
    assert not out.exists()


def test_an_older_adapter_without_the_defaulted_keys_still_scores(tmp_path, adapter_dir, manifest, capsys):
    """Adapters from before protocols / references / multi-image / methods: ss, nr, 1 image, config's method."""
    from lora_iqa.artifact import read_meta

    d = tmp_path / "adapter"
    shutil.copytree(adapter_dir, d)
    meta = json.loads((d / "lora_iqa.json").read_text())
    for key in ("meta_version", "protocol", "reference", "images", "method", "domain", "num_processes"):
        del meta[key]
    (d / "lora_iqa.json").write_text(json.dumps(meta))
    got = read_meta(d)
    assert (got.protocol, got.reference, got.images, got.method, got.domain) == ("ss", "nr", 1, "lora", "ct")
    assert (got.meta_version, got.num_processes) == (0, 1)
    assert main(["score", str(image_of(manifest)), "--adapter", str(d), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)
