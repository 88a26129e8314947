"""Hostile: outputs. Nothing a user already has is replaced or deleted, an output_dir holding another
run is refused unless ``overwrite=true`` (then cleared), and every output location is checked before
the work starts (issue 14, classes 1, 4 and 7)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import one_error_line

from lora_iqa.cli.main import main
from lora_iqa.errors import LoraIqaError, atomic_write_text

TRAIN = ["train.max_steps=2", "train.batch_size=8", "train.eval_every=2", "train.save_every=0",
         "train.warmup_steps=0"]


def _image(manifest: Path) -> Path:
    return sorted((manifest.parent / "images").glob("*_1.png"))[0]


def _precious(tmp_path: Path) -> Path:
    d = tmp_path / "precious"
    d.mkdir()
    (d / "thesis.tex").write_text("years of work")
    return d


# --- class 1: --out onto an existing directory ------------------------------------------------------

def test_atomic_write_never_replaces_a_directory(tmp_path):
    d = _precious(tmp_path)
    with pytest.raises(LoraIqaError, match="is a directory"):
        atomic_write_text(d, "x")
    assert (d / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious"]  # no temporary left


def test_eval_out_onto_a_directory_is_refused(adapter_dir, manifest, tmp_path, capsys, monkeypatch):
    d = _precious(tmp_path)
    import lora_iqa.methods.load

    monkeypatch.setattr(lora_iqa.methods.load, "load_trained", _must_not_run)  # refused before any work
    assert main(["eval", "--adapter", str(adapter_dir), "--data", str(manifest), "--out", str(d)]) == 1
    one_error_line(capsys, d)
    assert (d / "thesis.tex").read_text() == "years of work"


def test_report_out_onto_a_directory_is_refused(adapter_dir, manifest, tmp_path, capsys):
    d = _precious(tmp_path)
    assert main(["report", str(_image(manifest)), "--adapter", str(adapter_dir), "--out", str(d)]) == 1
    one_error_line(capsys, d)
    assert (d / "thesis.tex").read_text() == "years of work"


# --- class 7: output locations checked before the work -----------------------------------------------

def _must_not_run(*a, **k):
    raise AssertionError("the work started before the output location was checked")


@pytest.mark.parametrize("where", ["parent_is_file", "out_is_file"])
def test_eval_out_unwritable_is_refused_first(adapter_dir, manifest, tmp_path, capsys, monkeypatch, where):
    f = tmp_path / "a_file"
    f.write_text("keep")
    out = f / "eval.json" if where == "parent_is_file" else f
    import lora_iqa.methods.load

    monkeypatch.setattr(lora_iqa.methods.load, "load_trained", _must_not_run)
    if where == "out_is_file":  # an existing *file* may be replaced: that is what --out means
        monkeypatch.undo()
        assert main(["eval", "--adapter", str(adapter_dir), "--data", str(manifest), "--method", "logits",
                     "--out", str(out)]) == 0
        assert json.loads(out.read_text())["n"] == 24
        return
    assert main(["eval", "--adapter", str(adapter_dir), "--data", str(manifest), "--out", str(out)]) == 1
    one_error_line(capsys, f)
    assert f.read_text() == "keep"


@pytest.mark.parametrize("where", ["out_is_file", "parent_is_file"])
def test_train_output_dir_on_a_file_refused_before_training(base_dir, manifest, tmp_path, capsys, monkeypatch, where):
    f = tmp_path / "a_file"
    f.write_text("keep")
    import lora_iqa.methods.blip.method

    monkeypatch.setattr(lora_iqa.methods.blip.method, "load_base", _must_not_run)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("{}\n")
    out = f if where == "out_is_file" else f / "run"
    assert main(["train", str(recipe), f"output_dir={out}", f"data.manifest={manifest}", f"base={base_dir}",
                 *TRAIN]) == 1
    one_error_line(capsys, f)
    assert f.read_text() == "keep"


# --- class 4: an old run's files ----------------------------------------------------------------------

@pytest.mark.slow
def test_train_over_another_run_refused_then_overwrite_clears_it(adapter_dir, base_dir, manifest, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(adapter_dir, out)  # a LoRA run's directory
    (out / "wandb").mkdir()
    (out / "wandb" / "debug.log").write_text("old run's logs")
    before = sorted(p.name for p in out.iterdir())
    recipe = tmp_path / "r.yaml"
    recipe.write_text("{}\n")
    args = ["train", str(recipe), f"output_dir={out}", f"data.manifest={manifest}", f"base={base_dir}",
            "adapter.method=full", *TRAIN]
    assert main(args) == 1
    line = one_error_line(capsys, out)
    assert "overwrite=true" in line
    assert sorted(p.name for p in out.iterdir()) == before  # untouched

    assert main([*args, "overwrite=true"]) == 0
    names = {p.name for p in out.iterdir()}
    assert "adapter_model.safetensors" not in names and "adapter_config.json" not in names and "wandb" not in names
    from lora_iqa.methods.load import load_trained

    model, _, meta = load_trained(out)
    assert meta.method == "full" and not hasattr(model, "peft_config")


def test_train_into_a_foreign_directory_refused_even_with_overwrite(base_dir, manifest, tmp_path, capsys):
    d = _precious(tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("{}\n")
    for extra in ([], ["overwrite=true"]):
        assert main(["train", str(recipe), f"output_dir={d}", f"data.manifest={manifest}", f"base={base_dir}",
                     *TRAIN, *extra]) == 1
        one_error_line(capsys, d)
        assert sorted(p.name for p in d.iterdir()) == ["thesis.tex"]


def test_push_skips_wandb_logs(adapter_dir, tmp_path):
    from lora_iqa.hub import upload_files

    d = tmp_path / "adapter"
    shutil.copytree(adapter_dir, d)
    (d / "wandb" / "run-1").mkdir(parents=True)
    (d / "wandb" / "run-1" / "output.log").write_text("logs")
    assert not any(f.startswith("wandb/") for f in upload_files(d))


def test_stale_temporaries_removed_only_for_dead_writers_of_this_output(tmp_path):
    """A killed writer's temporary of ``run`` goes; a live writer's, and a sibling output ``run.99999``'s, stay."""
    import os

    from lora_iqa.errors import remove_stale_temporaries

    dead, live, sibling = ".run.999999999.abcdefgh.tmp", f".run.{os.getpid()}.abcdefgh.tmp", ".run.99999.1.abcdefgh.tmp"
    for name in (dead, live, sibling):
        (tmp_path / name).mkdir()
    assert [p.name for p in remove_stale_temporaries(tmp_path / "run")] == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live, sibling])
