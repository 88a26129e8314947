"""Hostile: numbers. A non-finite loss stops training with one line and saves nothing; a non-finite
score is a failed item, never printed as (invalid) JSON NaN; non-finite settings are refused
(issue 14, class 5)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from conftest import one_error_line
from safetensors.torch import load_file, save_file

from lora_iqa.cli.main import main
from lora_iqa.config import load_config
from lora_iqa.errors import LoraIqaError


def _image(manifest: Path) -> Path:
    return sorted((manifest.parent / "images").glob("*_1.png"))[0]


def _strict(line: str):
    """JSON as the standard defines it: NaN / Infinity are not JSON."""
    def bad(token):
        raise ValueError(f"invalid JSON constant {token}")
    return json.loads(line, parse_constant=bad)


@pytest.mark.parametrize("override", ["train.lr=inf", "train.lr=nan", "train.max_grad_norm=inf",
                                      "adapter.dropout=nan", "scorer.temperature=nan"])
def test_non_finite_settings_refused(override):
    with pytest.raises(LoraIqaError, match=override.split("=")[0]):
        load_config(None, [override])


@pytest.mark.slow
def test_nan_loss_stops_training_and_saves_nothing(base_dir, manifest, tmp_path):
    from lora_iqa.methods.blip.base import load_base
    from lora_iqa.training.run import run

    model, processor = load_base(str(base_dir))
    with torch.no_grad():  # a base whose output is NaN: every loss is NaN
        model.text_decoder.cls.predictions.decoder.bias.fill_(float("nan"))
    out = tmp_path / "run"
    cfg = load_config(None, [f"output_dir={out}", f"data.manifest={manifest}", f"base={base_dir}",
                             "train.max_steps=4", "train.batch_size=8", "train.eval_every=2", "train.save_every=0"])
    with pytest.raises(LoraIqaError, match=r"non-finite.*step 1"):
        run(cfg, base=(model, processor), progress=False)
    assert not (out / "lora_iqa.json").exists() and not list(out.glob("*.safetensors"))


@pytest.fixture
def nan_adapter(adapter_dir, tmp_path) -> Path:
    """The test LoRA adapter with its LoRA B matrices set to NaN: every output is NaN."""
    d = tmp_path / "nan_adapter"
    shutil.copytree(adapter_dir, d)
    weights = load_file(d / "adapter_model.safetensors")
    weights = {k: (torch.full_like(v, float("nan")) if "lora_B" in k else v) for k, v in weights.items()}
    save_file(weights, d / "adapter_model.safetensors")
    return d


@pytest.mark.parametrize("method", ["logits", "caption"])
def test_nan_scores_are_failed_items(nan_adapter, manifest, method, capsys):
    code = main(["score", str(_image(manifest)), "--adapter", str(nan_adapter), "--method", method, "--json"])
    out, err = capsys.readouterr()
    rec = _strict(out.strip().splitlines()[0])
    assert rec["status"] == "failed" and rec["reason"]
    assert all(v is None or math.isfinite(v) for v in rec["scores"].values())
    assert code != 0 and "1 of 1" in err


def test_nan_scores_fail_eval_items(nan_adapter, manifest, tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(["eval", "--adapter", str(nan_adapter), "--data", str(manifest), "--method", "logits",
                 "--out", str(out)])
    res = _strict(out.read_text())
    assert code != 0
    assert all(it["status"] == "failed" for it in res["items"])
    assert res["metrics"]["overall"]["missing"] == res["n"]


@pytest.mark.parametrize("window", [["nan", "400"], ["40", "0"], ["40", "-5"], ["inf", "400"]])
def test_bad_window_is_one_line(adapter_dir, manifest, window, capsys):
    assert main(["score", str(_image(manifest)), "--adapter", str(adapter_dir), "--window", *window]) == 1
    one_error_line(capsys, "--window")
