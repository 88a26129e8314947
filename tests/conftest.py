"""Shared fixtures: offline environment, a synthetic CT set, a tiny saved base, a tiny trained LoRA adapter.

Everything is built once per session under pytest's tmp dir; nothing touches the user cache or the Hub.
"""

from __future__ import annotations

import os

# Before torch/transformers are imported by any test module.
os.environ["WANDB_MODE"] = "offline"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# The models are tiny: one thread is as fast as two and avoids OpenMP spin-contention (measured: a
# 2-thread step of the tiny model takes ~2 s instead of ~10 ms when another process holds a core).
os.environ.setdefault("OMP_NUM_THREADS", os.environ.get("LORA_IQA_TEST_THREADS", "1"))

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# One geometry for every test model: 32 px input, 16 patches, hidden 32, 2+2 layers.
TINY = dict(image_size=32, patch=8, hidden=32, vision_layers=2, text_layers=2, heads=2)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """``LORA_IQA_CACHE_DIR`` points into the session tmp dir (the embedded base is never built here)."""
    old = os.environ.get("LORA_IQA_CACHE_DIR")
    os.environ["LORA_IQA_CACHE_DIR"] = str(tmp_path_factory.mktemp("lora_iqa_cache"))
    yield
    if old is None:
        os.environ.pop("LORA_IQA_CACHE_DIR", None)
    else:
        os.environ["LORA_IQA_CACHE_DIR"] = old


def tiny_base(seed: int = 0):
    """A fresh tiny random BLIP captioner (model, processor) covering the template's words."""
    from lora_iqa.methods.blip.base import scratch_base
    from lora_iqa.template import vocabulary

    return scratch_base(vocabulary(), seed=seed, **TINY)


@pytest.fixture(scope="session")
def manifest(tmp_path_factory) -> Path:
    """SYNTHETIC CT: 160 images of 64 px, 20 contents -> 112 train / 24 val / 24 test."""
    from lora_iqa.data.synth.ct import SynthCTConfig, synth_ct

    out = tmp_path_factory.mktemp("data") / "ct"
    return synth_ct(out, SynthCTConfig(n=160, size=64, seed=0, per_content=8), progress=False)


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory) -> Path:
    """The tiny base saved with ``save_pretrained`` (model + processor)."""
    model, processor = tiny_base(seed=0)
    out = tmp_path_factory.mktemp("base") / "tiny-blip"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def samples(manifest):
    """Loaded protocol samples per split."""
    from lora_iqa.config import DataConfig
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.data.samples import ss_samples
    from lora_iqa.template import CT_DIMENSIONS

    m = read_manifest(manifest, CT_DIMENSIONS)
    spacing = DataConfig().make_view().spacing  # read as training reads them: at the view's mm/px
    return {s: ss_samples(m.split(s), CT_DIMENSIONS, spacing=spacing) for s in ("train", "val", "test")}


def noise_levels(root: Path, contents: int = 48, size: int = 32, seed: int = 0) -> Path:
    """A SYNTHETIC set the tiny model can see at 32 px: smooth random gratings (one per content) with
    Gaussian noise whose std falls with the quality level 0..4 (every dimension = the level).
    Contents 0-31 train, 32-39 val, 40-47 test. The learning tests' task: its answer is known, and a
    2-layer ViT of 32 px learns it in seconds (the anatomy set's texture is beyond that model)."""
    from PIL import Image

    from lora_iqa.template import CT_DIMENSIONS

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    lines = ["image,split,content," + ",".join(CT_DIMENSIONS)]
    yy, xx = np.mgrid[0:size, 0:size] / size
    for c in range(contents):
        split = "train" if c < 32 else "val" if c < 40 else "test"
        grating = 0.5 + 0.25 * np.sin(2 * np.pi * (2 * rng.random() * xx + 2 * rng.random() * yy + rng.random()))
        for level in range(5):
            img = np.clip(grating + rng.normal(0, 0.04 * (4 - level) ** 1.5, grating.shape), 0, 1)
            Image.fromarray((img * 255).astype(np.uint8)).save(root / f"images/c{c}_{level}.png")
            lines.append(f"images/c{c}_{level}.png,{split},c{c}," + ",".join([str(level)] * len(CT_DIMENSIONS)))
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root / "manifest.csv"


@pytest.fixture(scope="session")
def levels(tmp_path_factory) -> dict:
    """:func:`noise_levels` as a manifest path and its samples per split."""
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.data.samples import ss_samples
    from lora_iqa.template import CT_DIMENSIONS

    path = noise_levels(tmp_path_factory.mktemp("levels"))
    m = read_manifest(path, CT_DIMENSIONS)
    return {"manifest": path, **{s: ss_samples(m.split(s), CT_DIMENSIONS) for s in ("train", "val", "test")}}


@dataclass
class LoraRun:
    dir: Path
    model: torch.nn.Module  # the base object handed to train.run (LoRA layers injected in place)
    result: object


@pytest.fixture(scope="session")
def lora_run(tmp_path_factory, base_dir, manifest) -> LoraRun:
    """A LoRA adapter trained for a few steps on the tiny base loaded from ``base_dir``."""
    from lora_iqa.config import load_config
    from lora_iqa.methods.blip.base import load_base
    from lora_iqa.training.run import run

    out = tmp_path_factory.mktemp("runs") / "lora"
    cfg = load_config(None, [f"output_dir={out}", f"data.manifest={manifest}", f"base={base_dir}",
                             "adapter.method=lora", "train.max_steps=12", "train.batch_size=16", "train.lr=1e-2",
                             "train.warmup_steps=2", "train.eval_every=6", "train.save_every=0"])
    model, processor = load_base(str(base_dir))
    res = run(cfg, base=(model, processor), progress=False)
    return LoraRun(dir=Path(res.dir), model=model, result=res)


@pytest.fixture(scope="session")
def adapter_dir(lora_run) -> Path:
    return lora_run.dir


SECRET = "sk-test-NEVER-WRITE-ME-4f1c"


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    """A tiny stand-in CLIP saved as a checkpoint directory (hidden 64, 2 + 2 layers, 48 px)."""
    import numpy as np

    from lora_iqa.bases.clip_standin import pretrain_stand_in, tiny_clip, tiny_tokenizer

    out = tmp_path_factory.mktemp("clip") / "base"
    model, processor = tiny_clip(tiny_tokenizer(), hidden=64, layers=2, image_size=48, patch=8, seed=0)
    losses = pretrain_stand_in(model, processor, n=1024, steps=250, seed=0, progress=False)
    assert np.mean(losses[-20:]) < losses[0] - 0.5  # the contrastive pre-training learned
    model.save_pretrained(str(out))
    processor.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def natural(tmp_path_factory) -> Path:
    """SYNTHETIC natural images, 48 px, 22 contents split 50/20/30 by content."""
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.data.synth.natural import SynthNaturalConfig, synth_natural
    from lora_iqa.template import NATURAL_DIMENSIONS

    path = synth_natural(tmp_path_factory.mktemp("nat") / "data",
                         SynthNaturalConfig(n=440, size=48, seed=0, splits=(0.5, 0.2, 0.3)), progress=False)

    m = read_manifest(path, NATURAL_DIMENSIONS)
    contents = {s: {it.content for it in m.split(s)} for s in ("train", "val", "test")}
    assert not contents["train"] & contents["test"] and not contents["val"] & contents["test"]
    return path


@pytest.fixture
def llm(monkeypatch, tmp_path):
    """Start ``ChatServer(**kw)``; OPENAI_* point at it; a private reply cache under ``tmp_path``."""
    from lora_iqa.testing.chat_server import ChatServer

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("LORA_IQA_CACHE_DIR", str(tmp_path / "cache"))
    servers = []

    def start(**kw) -> ChatServer:
        server = ChatServer(**kw).__enter__()
        servers.append(server)
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        return server

    yield start
    for s in servers:
        s.__exit__(None, None, None)


def captions(n: int, seed: int = 0) -> list[str]:
    """``n`` CT template captions of random score vectors."""
    import random

    from lora_iqa.template import Template

    rng, t = random.Random(seed), Template()
    return [t.render({d: rng.randint(0, 4) for d in t.dimensions}) for _ in range(n)]


def free_port() -> int:
    """A free loopback port: each DDP launch gets its own, so tests can run side by side (pytest -n 2)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_error_line(capsys, *names: str) -> str:
    """Assert stderr is exactly one ``lora-iqa: error:`` line (no traceback) naming each of ``names``."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lora-iqa: error: ") and "Traceback" not in err
    for n in names:
        assert str(n) in lines[0], (n, lines[0])
    return lines[0]


def manifest_rows(manifest) -> list[dict]:
    """The manifest CSV's rows as dicts of strings."""
    import csv

    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def file_tree(root) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes): for byte-identical reproducibility checks."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
