"""A new method is one module plus one registry entry: a toy method, defined and registered here, trains
through ``lora-iqa train`` and scores through ``lora-iqa score`` / ``eval`` with no other change."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats

from lora_iqa import config
from lora_iqa.cli.main import main
from lora_iqa.errors import LoraIqaError
from lora_iqa.methods.interface import ImageScorer, Method
from lora_iqa.methods.registry import REGISTRY, get_method, register
from lora_iqa.template import CT_DIMENSIONS

FILE = "probe.safetensors"


class Probe(ImageScorer):
    """A linear probe on an image's mean and standard deviation: 0..4 per dimension."""

    def __init__(self, dims) -> None:
        super().__init__()
        self.dims = tuple(dims)
        self.linear = torch.nn.Linear(2, len(self.dims))

    def forward(self, pixel_values, labels=None):
        pred = 4 * torch.sigmoid(self.linear(pixel_values))
        loss = None if labels is None else torch.nn.functional.mse_loss(pred, labels)
        return SimpleNamespace(logits=pred, loss=loss)

    def scores(self, images, batch_size: int = 64) -> list[dict[str, float]]:
        with torch.no_grad():
            pred = self(_features(images)).logits
        return [dict(zip(self.dims, row.tolist())) for row in pred]


def _features(images) -> torch.Tensor:
    return torch.tensor([[float(np.mean(np.asarray(im))), float(np.std(np.asarray(im)))] for im in images])


class Trainer(torch.nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, **batch):
        return self.model(**batch)


class ProbeMethod(Method):
    """Everything the toy method is, in one class: what ``register`` needs."""

    name, title, tags, captions, scoring = "probe", "mean/std probe", "probe", False, "probe scoring"

    def load_base(self, cfg):
        base = torch.nn.Module()
        base.config = SimpleNamespace(_name_or_path="probe-base")
        return base, None

    def attach(self, cfg, model, processor, protocol):
        return Probe(cfg.data.dimensions)

    def trainer(self, model, protocol):
        return Trainer(model)

    def collate(self, cfg, processor, template, protocol, model, caption_fn=None):
        def collate(batch):
            labels = [[s.labels[d] for d in template.dimensions] for _, _, s in batch]
            return {"pixel_values": _features([s.images[0] for _, _, s in batch]),
                    "labels": torch.tensor(labels, dtype=torch.float32)}
        return collate

    def save(self, model, processor, out: Path, state_dict=None) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / FILE))

    def load(self, adapter_dir: Path, meta, base=None):
        from safetensors.torch import load_file

        model = Probe(meta.dimensions)
        model.load_state_dict(load_file(str(adapter_dir / FILE)))
        return model.eval(), None

    def check_saved(self, root: Path) -> None:
        if not (root / FILE).is_file():
            raise LoraIqaError(f"{root / FILE}: not found")


@pytest.fixture
def probe():
    register(ProbeMethod())
    yield
    REGISTRY.pop("probe")
    config.ADAPTER_METHODS.remove("probe")


@pytest.fixture
def brightness(tmp_path) -> Path:
    """SYNTHETIC: grey images whose brightness is their quality level (every dimension), one content each."""
    rng = np.random.default_rng(0)
    rows = ["image,split,content," + ",".join(CT_DIMENSIONS)]
    for i in range(90):
        level = int(rng.integers(0, 5))
        img = np.clip(40 + 40 * level + rng.normal(0, 8, (24, 24)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / f"b{i}.png")
        split = ("train", "val", "test")[i % 3]
        rows.append(f"b{i}.png,{split},c{i}," + ",".join([str(level)] * len(CT_DIMENSIONS)))
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "manifest.csv"


def test_unknown_method_is_one_line():
    with pytest.raises(LoraIqaError, match="key .adapter.method. must be one of lora, full, clip_prompt, regression, classification, got .zz."):
        get_method("zz")


def test_a_registered_toy_method_trains_and_scores_through_the_cli(probe, brightness, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "recipes/configs/ct_ss_lora.yaml", f"output_dir={out}", f"data.manifest={brightness}", "base=probe-base",
                 "adapter.method=probe", "train.max_steps=150", "train.batch_size=10", "train.lr=0.05",
                 "train.warmup_steps=5", "train.eval_every=50", "train.save_every=0", "train.augment=false"]) == 0
    meta = json.loads((out / "lora_iqa.json").read_text())
    assert meta["method"] == "probe" and (out / FILE).is_file() and "probe scoring" in (out / "README.md").read_text()
    capsys.readouterr()
    test = [line.split(",") for line in brightness.read_text().splitlines()[1:] if ",test," in line]
    paths = [str(brightness.parent / row[0]) for row in test]
    assert main(["score", *paths, "--adapter", str(out), "--json"]) == 0
    recs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["images"] for r in recs] == [[p] for p in paths] and {r["method"] for r in recs} == {"logits"}
    truth = [float(row[-1]) for row in test]
    srcc = stats.spearmanr([r["scores"]["overall"] for r in recs], truth).statistic
    assert srcc > 0.9  # held-out images (the test split): brightness is learned
    assert main(["eval", "--adapter", str(out), "--data", str(brightness), "--out", str(tmp_path / "eval.json")]) == 0
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert ev["n"] == len(test) and ev["metrics"]["overall"]["srcc"] > 0.9
    # the same numbers as score (which writes them rounded to 4 decimals), image by image
    assert [round(it["pred"]["overall"], 4) for it in ev["items"]] == [r["scores"]["overall"] for r in recs]
