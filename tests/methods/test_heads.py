"""The bench's image-only baselines: multi-task heads on the captioner's ViT, and the classical estimate."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from lora_iqa.config import load_config
from lora_iqa.methods.classical import classical_scores, fit_classical
from lora_iqa.methods.heads import HEADS, HeadModel
from lora_iqa.methods.load import load_trained
from lora_iqa.template import CT_DIMENSIONS
from lora_iqa.training.run import run
from tests.conftest import tiny_base


def _srcc(preds, samples, dim: str) -> float:
    return stats.spearmanr([p[dim] for p in preds], [s.labels[dim] for s in samples]).statistic


@pytest.mark.parametrize("kind", HEADS)
def test_head_outputs_and_loss(kind):
    model, _ = tiny_base()
    head = HeadModel(model.vision_model, CT_DIMENSIONS, kind)
    pix = torch.randn(3, 3, 32, 32)
    labels = torch.tensor([[0, 1, 2, 3, 4], [4, 4, 4, 4, 4], [0, 0, 0, 0, 0]])
    out = head(pix, labels)
    scores, loss = out.logits, out.loss
    assert scores.shape == (3, 5) and torch.isfinite(loss)
    if kind == "classification":  # the expected level: always inside the scale
        assert ((scores >= 0) & (scores <= 4)).all()
    loss.backward()
    assert head.vision.embeddings.patch_embedding.weight.grad is not None  # the ViT trains too


def test_classical_baseline_tracks_noise(levels):
    """scikit-image's noise sigma, blur effect and grey spread, fitted on train, rank held-out noise."""
    coef = fit_classical(levels["train"], CT_DIMENSIONS)
    assert coef.shape == (4, len(CT_DIMENSIONS))
    preds = classical_scores(coef, [s.images[0] for s in levels["test"]], CT_DIMENSIONS)
    assert _srcc(preds, levels["test"], "noise") > 0.6


@pytest.mark.slow
@pytest.mark.parametrize("kind", HEADS)
def test_head_learns_on_held_out_contents(kind, levels, base_dir, tmp_path):
    """adapter.method=regression|classification trains through the one loop, saves, loads on its base
    (fingerprint checked) and ranks held-out phantoms."""
    cfg = load_config(None, [f"output_dir={tmp_path / kind}", f"data.manifest={levels['manifest']}", f"base={base_dir}",
                             f"adapter.method={kind}", "train.max_steps=120", "train.batch_size=16", "train.lr=5e-3",
                             "train.warmup_steps=6", "train.eval_every=40", "train.save_every=0"])
    res = run(cfg, progress=False)
    head, _, meta = load_trained(res.dir)
    preds = head.scores([s.images[0] for s in levels["test"]])
    assert _srcc(preds, levels["test"], "overall") > 0.6
    assert res.trainable_params == res.total_params > sum(p.numel() for p in head.head.parameters())
    assert res.best_step in (40, 80, 120) and meta.method == kind and meta.step == res.best_step
    assert [p.name for p in sorted(res.dir.glob("*.safetensors"))] == ["model.safetensors"]
