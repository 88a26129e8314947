"""adapter.method=clip_prompt: CLIP multimodal prompt learning through the one training loop.

The base is a tiny CLIPModel (the real class) with a short stand-in pre-training
(:func:`lora_iqa.bases.clip_standin.pretrain_stand_in`), saved to a local directory and loaded by path, as a
user's checkpoint would be. The data are SYNTHETIC natural images, split by content.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import free_port
from scipy import stats

from lora_iqa.bases.clip_standin import distortion_caption, tiny_tokenizer
from lora_iqa.config import AdapterConfig, load_config
from lora_iqa.data.io import load_image
from lora_iqa.data.manifest import read_manifest
from lora_iqa.errors import LoraIqaError
from lora_iqa.methods.clip.base import ANTONYMS, load_clip
from lora_iqa.methods.clip.prompt import WEIGHTS_NAME, ClipPromptLearner
from lora_iqa.methods.common import fingerprint
from lora_iqa.methods.load import load_trained
from lora_iqa.template import NATURAL_DIMENSIONS

DIMS = list(NATURAL_DIMENSIONS)


def _recipe(tmp_path, clip_dir, manifest, *extra):
    return load_config(None, [f"output_dir={tmp_path / 'run'}", f"base={clip_dir}", f"data.manifest={manifest}",
                              f"data.dimensions={DIMS}", "data.domain=natural", "adapter.method=clip_prompt",
                              "adapter.n_ctx=2", "adapter.ctx_per_dim=false", "adapter.n_vis=1", "train.max_steps=150", "train.lr=1e-2",
                              "train.warmup_steps=15", "train.eval_every=50", "train.save_every=0", *extra])


def _test_srcc(scores, items):
    return {d: float(stats.spearmanr([s[d] for s in scores], [it.scores[d] for it in items]).statistic) for d in DIMS}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, clip_dir, natural):
    from lora_iqa.training.run import run

    tmp = tmp_path_factory.mktemp("clip_run")
    cfg = _recipe(tmp, clip_dir, natural)
    before = fingerprint(load_clip(str(clip_dir))[0])
    res = run(cfg, progress=False)
    return res, before


def test_prompt_learning_beats_zero_shot_on_held_out_content(trained, natural, clip_dir):
    res, _ = trained
    learner, _, meta = load_trained(res.dir)
    items = read_manifest(natural, DIMS).split("test")
    images = [load_image(it.image) for it in items]
    zero = _test_srcc(learner.scores(images, zero_shot=True), items)
    learned = _test_srcc(learner.scores(images), items)
    zero_rmse = np.sqrt(np.mean([(s["overall"] - it.scores["overall"]) ** 2
                                 for s, it in zip(learner.scores(images, zero_shot=True), items)]))
    learned_rmse = np.sqrt(np.mean([(s["overall"] - it.scores["overall"]) ** 2
                                    for s, it in zip(learner.scores(images), items)]))
    print("\nheld-out SRCC zero-shot / learned:", {d: (round(zero[d], 3), round(learned[d], 3)) for d in DIMS},
          f"overall RMSE {zero_rmse:.3f} / {learned_rmse:.3f}", f"params {res.trainable_params} / {res.total_params}")
    assert res.trainable_params <= 0.001 * res.total_params  # <= 0.1 % of CLIP
    # "good"/"bad" were never in the stand-in's captions: zero-shot cannot rate overall quality, the prompts learn it
    assert learned["overall"] > 0.25 and learned["overall"] > zero["overall"] + 0.1
    assert learned_rmse < 0.85 * zero_rmse  # and they calibrate the scores to the rater's scale
    assert meta.method == "clip_prompt" and meta.domain == "natural"


def test_adapter_directory_and_frozen_base(trained, clip_dir):
    res, before = trained
    files = sorted(p.name for p in res.dir.iterdir() if not p.name.startswith("."))
    assert files == ["README.md", "lora_iqa.json", WEIGHTS_NAME]
    meta = json.loads((res.dir / "lora_iqa.json").read_text())
    assert meta["base"]["fingerprint"] == before  # trained on exactly this base, which training left unchanged
    assert meta["config"]["adapter"]["method"] == "clip_prompt" and meta["template_version"] == "clip-antonym-v1"
    assert (res.dir / WEIGHTS_NAME).stat().st_size < 20_000
    assert "CLIP prompt learner" in (res.dir / "README.md").read_text()
    learner, _, _ = load_trained(res.dir)
    assert fingerprint(learner.clip) == before
    assert learner.ctx.abs().sum() > 0 and not any(p.requires_grad for p in learner.clip.parameters())


def test_saved_prompts_reload_exactly(trained, natural):
    res, _ = trained
    a, _, _ = load_trained(res.dir)
    b, _, _ = load_trained(res.dir)
    images = [load_image(it.image) for it in read_manifest(natural, DIMS).split("test")[:8]]
    assert a.scores(images) == b.scores(images)
    fresh = ClipPromptLearner(a.clip, a.processor, AdapterConfig(method="clip_prompt", n_ctx=2, ctx_per_dim=False, n_vis=1),
                              DIMS, seed=0)
    assert fresh.scores(images) != a.scores(images)  # the saved prompts are what changes the scores


def test_corrupt_or_mismatched_prompt_file_is_one_line(trained, tmp_path):
    import shutil

    res, _ = trained
    bad = tmp_path / "bad"
    shutil.copytree(res.dir, bad)
    (bad / WEIGHTS_NAME).write_bytes(b"\x00garbage")
    with pytest.raises(LoraIqaError, match=r"prompt_model\.safetensors: cannot read prompt weights") as e:
        load_trained(bad)
    assert "\n" not in str(e.value)
    meta = json.loads((res.dir / "lora_iqa.json").read_text())
    meta["config"]["adapter"]["n_ctx"] = 3
    shutil.copy(res.dir / WEIGHTS_NAME, bad / WEIGHTS_NAME)
    (bad / "lora_iqa.json").write_text(json.dumps(meta))
    with pytest.raises(LoraIqaError, match=r"tensor 'ctx' is \(1, 2, 64\), expected shape \(1, 3, 64\)"):
        load_trained(bad)
    meta["config"]["adapter"]["n_ctx"] = 2
    (bad / "lora_iqa.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "dimensions"}))
    with pytest.raises(LoraIqaError, match=r"lora_iqa.json: key 'dimensions' is missing"):
        load_trained(bad)
    meta["base"]["fingerprint"] = "0" * 16
    (bad / "lora_iqa.json").write_text(json.dumps(meta))
    with pytest.raises(LoraIqaError, match="0000000000000000"):
        load_trained(bad)


def test_prompts_reach_both_towers(clip_dir):
    clip, processor = load_clip(str(clip_dir))
    adapter = AdapterConfig(method="clip_prompt", n_ctx=2, n_vis=3, prompt_depth=2)
    learner = ClipPromptLearner(clip, processor, adapter, DIMS, seed=0)
    assert learner.ctx.shape == (6, 2, 64) and learner.vis.shape == (2, 3, 64)
    x = torch.randn(2, 3, 48, 48)
    out = learner(x, labels=torch.full((2, 6), 2.0))
    out.loss.backward()
    assert learner.ctx.grad.abs().sum() > 0 and learner.vis.grad[0].abs().sum() > 0 and learner.vis.grad[1].abs().sum() > 0
    assert all(p.grad is None for p in clip.parameters())
    # zero-shot runs plain CLIP: no hook left behind, prompts ignored
    zs = learner.text_features(zero_shot=True)
    with torch.no_grad():
        learner.ctx.add_(1.0)
        learner.vis.add_(1.0)
    assert torch.equal(zs, learner.text_features(zero_shot=True))
    assert not clip.text_model.embeddings.token_embedding._forward_hooks
    assert not any(layer._forward_pre_hooks for layer in clip.vision_model.encoder.layers)


def test_alignment_loss_uses_generation_prompts(clip_dir):
    clip, processor = load_clip(str(clip_dir))
    adapter = AdapterConfig(method="clip_prompt", n_ctx=2, n_vis=2, align_weight=0.5)
    learner = ClipPromptLearner(clip, processor, adapter, ["sharpness", "alignment", "overall"], seed=0)
    x, labels = torch.randn(3, 3, 48, 48), torch.full((3, 3), 2.0)
    tok = processor.tokenizer(["a sharp photo.", "a very noisy photo.", "a dull photo."], padding=True, return_tensors="pt")
    base = learner(x, labels=labels).loss
    aligned = learner(x, labels=labels, prompt_ids=tok.input_ids, prompt_mask=tok.attention_mask).loss
    assert aligned > base  # the contrastive term is added (positive)


def test_clip_prompt_config_errors(clip_dir):
    with pytest.raises(LoraIqaError, match="key 'protocol' must be ss with reference nr for adapter.method=clip_prompt"):
        load_config(None, ["adapter.method=clip_prompt", "protocol=ds"])
    with pytest.raises(LoraIqaError, match="key 'adapter.method' must be one of"):
        load_config(None, ["adapter.method=prompt"])
    clip, processor = load_clip(str(clip_dir))
    with pytest.raises(LoraIqaError, match=r"key 'data.dimensions': no antonym prompts for \['lesion'\]"):
        ClipPromptLearner(clip, processor, AdapterConfig(method="clip_prompt"), ["lesion"])
    with pytest.raises(LoraIqaError, match=r"key 'adapter.prompt_depth' \(5\) exceeds"):
        ClipPromptLearner(clip, processor, AdapterConfig(method="clip_prompt", prompt_depth=5), DIMS)
    with pytest.raises(LoraIqaError, match="cannot load a CLIP model"):
        load_clip(str(clip_dir / "missing"))


def test_antonyms_and_captions_are_single_tokens():
    tok = tiny_tokenizer()
    for good, bad in ANTONYMS.values():
        assert "<unk>" not in tok.tokenize(good) + tok.tokenize(bad)
    cap = distortion_caption({"blur_sigma": 2.0, "noise_sigma": 0.0, "jpeg_quality": 5, "saturation_factor": 0.0})
    assert cap == "a very blurry clean very blocky grey photo."
    assert "<unk>" not in tok.tokenize(cap)


def test_cli_eval_and_score_read_a_prompt_directory(trained, natural, tmp_path, capsys):
    from lora_iqa.cli.main import main

    res, _ = trained
    out = tmp_path / "eval.json"
    assert main(["eval", "--adapter", str(res.dir), "--data", str(natural), "--split", "test", "--out", str(out)]) == 0
    ev = json.loads(out.read_text())
    items = read_manifest(natural, DIMS).split("test")
    learner, _, _ = load_trained(res.dir)
    want = _test_srcc(learner.scores([load_image(it.image) for it in items]), items)
    assert ev["n"] == len(items) and ev["method"] == "logits"
    assert all(abs(ev["metrics"][d]["srcc"] - want[d]) < 1e-12 for d in DIMS)
    capsys.readouterr()
    assert main(["score", str(items[0].image), "--adapter", str(res.dir), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rec["scores"].keys() == set(DIMS) and all(0 <= v <= 4 for v in rec["scores"].values())
    assert main(["score", str(items[0].image), "--adapter", str(res.dir), "--method", "caption"]) == 1
    assert "ClipPromptLearner scores single images (no captions)" in capsys.readouterr().err


def test_alignment_task_trains_from_the_prompt_column(tmp_path, clip_dir, natural):
    """AI-generated images: the manifest's prompt column feeds the alignment loss; without it, one line."""
    import csv

    from lora_iqa.training.run import run

    rows = list(csv.DictReader(natural.open()))
    with_prompt = natural.parent / "with_prompts.csv"  # beside the images: manifest paths are relative
    with with_prompt.open("w", newline="") as f:
        w = csv.DictWriter(f, [*rows[0], "prompt"])
        w.writeheader()
        w.writerows({**r, "prompt": f"a photo of the {r['source']}"} for r in rows)
    cfg = _recipe(tmp_path / "a", clip_dir, with_prompt, "adapter.align_weight=0.5", "train.max_steps=4",
                  "train.eval_every=4")
    res = run(cfg, progress=False)
    assert all(np.isfinite(res.losses)) and (res.dir / WEIGHTS_NAME).exists()
    cfg = _recipe(tmp_path / "b", clip_dir, natural, "adapter.align_weight=0.5", "train.max_steps=4")
    with pytest.raises(LoraIqaError, match=r"no 'prompt' column value in the manifest") as e:
        run(cfg, progress=False)
    assert "\n" not in str(e.value) and not (tmp_path / "b" / "run" / WEIGHTS_NAME).exists()


def _prompts(d) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(d / WEIGHTS_NAME))


def test_resume_and_two_process_ddp_match_one_uninterrupted_run(tmp_path, clip_dir, natural):
    """The prompts checkpoint and resume exactly (train.save_every / resume=auto), and `accelerate launch
    --multi_gpu --num_processes 2` (gloo DDP on CPU, batch split across ranks) ends on the same prompts."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from lora_iqa.training.run import run

    extra = ("adapter.n_vis=2", "adapter.prompt_depth=2", "train.max_steps=6", "train.batch_size=16",
             "train.eval_every=3", "train.save_every=3", "train.warmup_steps=1")
    one = run(_recipe(tmp_path / "one", clip_dir, natural, *extra), progress=False).dir
    resumed = tmp_path / "resumed" / "run"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copytree(one / "checkpoints" / "step_0000003", resumed / "checkpoints" / "step_0000003")
    run(_recipe(tmp_path / "resumed", clip_dir, natural, *extra, "resume=auto"), progress=False)
    want, got = _prompts(one), _prompts(resumed)
    assert all(torch.equal(want[k], got[k]) for k in want)

    recipe = tmp_path / "ddp.yaml"
    cfg = _recipe(tmp_path / "ddp", clip_dir, natural, *extra)
    import yaml

    recipe.write_text(yaml.safe_dump(cfg.to_dict()))
    script = Path(__file__).resolve().parents[3] / "recipes" / "train.py"
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--main_process_port", str(free_port()), str(script), str(recipe)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = Path(cfg.output_dir)
    assert json.loads((two / "lora_iqa.json").read_text())["num_processes"] == 2
    got = _prompts(two)
    assert max(float((got[k] - want[k]).abs().max()) for k in want) <= 1e-5
