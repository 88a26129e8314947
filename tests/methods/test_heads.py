"""The bench's image-only baselines: multi-task heads on the captioner's ViT, and the classical estimate."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from lora_iqa.config import load_config
from lora_iqa.methods.classical import classical_scores, fit_classical
from lora_iqa.methods.heads import HEADS, HeadModel, head_scores
from lora_iqa.template import CT_DIMENSIONS, Template
from lora_iqa.training.heads import train_head
from tests.conftest import tiny_base


def _srcc(preds, samples, dim: str) -> float:
    return stats.spearmanr([p[dim] for p in preds], [s.labels[dim] for s in samples]).statistic


@pytest.mark.parametrize("kind", HEADS)
def test_head_outputs_and_loss(kind):
    model, _ = tiny_base()
    head = HeadModel(model.vision_model, len(CT_DIMENSIONS), kind, 5)
    pix = torch.randn(3, 3, 32, 32)
    labels = torch.tensor([[0, 1, 2, 3, 4], [4, 4, 4, 4, 4], [0, 0, 0, 0, 0]])
    scores, loss = head(pix, labels)
    assert scores.shape == (3, 5) and torch.isfinite(loss)
    if kind == "classification":  # the expected level: always inside the scale
        assert ((scores >= 0) & (scores <= 4)).all()
    loss.backward()
    assert head.vision.embeddings.patch_embedding.weight.grad is not None  # the ViT trains too


def test_classical_baseline_tracks_noise(samples):
    """scikit-image's noise sigma, blur effect and grey spread, fitted on train, rank held-out noise."""
    coef = fit_classical(samples["train"], CT_DIMENSIONS)
    assert coef.shape == (4, len(CT_DIMENSIONS))
    preds = classical_scores(coef, [s.images[0] for s in samples["test"]], CT_DIMENSIONS)
    assert _srcc(preds, samples["test"], "noise") > 0.6


@pytest.mark.slow
@pytest.mark.parametrize("kind", HEADS)
def test_head_learns_on_held_out_phantoms(kind, samples, tmp_path):
    model, processor = tiny_base(seed=0)
    cfg = load_config(None, [f"output_dir={tmp_path / kind}", "train.max_steps=120", "train.batch_size=16",
                             "train.lr=5e-3", "train.warmup_steps=6", "train.eval_every=40"])
    head, res = train_head(cfg, kind, model.vision_model, processor, samples["train"], samples["val"], Template(),
                           progress=False)
    preds = head_scores(head, processor, [s.images[0] for s in samples["test"]], CT_DIMENSIONS)
    assert _srcc(preds, samples["test"], "overall") > 0.6
    assert res.trainable_params == res.total_params > sum(p.numel() for p in head.head.parameters())
    assert res.best_step in (40, 80, 120) and (tmp_path / kind / "model.safetensors").stat().st_size > 0
    assert model.vision_model.embeddings.patch_embedding.weight.grad is None  # the base itself is untouched
