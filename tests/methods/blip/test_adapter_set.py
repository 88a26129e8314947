"""lora_iqa.adapters: several tiny adapters (two ss, one ds) on one shared base, trained once per module.

Mixed batches must equal each adapter run alone (through ``load_trained``), switching must be exact and
reversible, and a set refuses adapters it cannot hold with one line naming the directory.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from lora_iqa.data.pixels import pixel_values
from lora_iqa.errors import LoraIqaError
from lora_iqa.methods.blip.adapter_set import AdapterSet
from lora_iqa.methods.blip.multi_image import encode_images
from lora_iqa.methods.blip.predict import logit_scores, preference_scores
from lora_iqa.methods.load import load_trained
from lora_iqa.template import CT_DIMENSIONS, Template

TOL = 1e-5


@dataclass
class Trained:
    ss_a: Path
    ss_b: Path
    ds: Path
    images: list  # 8 SYNTHETIC CT test images, float [0, 1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, manifest, base_dir) -> Trained:
    """Two ss nr adapters (seeds 0 and 1) and a ds nr adapter, 6 steps each on the tiny base."""
    from lora_iqa.config import load_config
    from lora_iqa.data.io import load_image
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.methods.blip.base import load_base
    from lora_iqa.training.run import run

    root = tmp_path_factory.mktemp("adapter_set")

    def train(name: str, *overrides: str) -> Path:
        cfg = load_config(None, [f"output_dir={root / name}", f"data.manifest={manifest}", f"base={base_dir}",
                                 "adapter.method=lora", "train.max_steps=6", "train.batch_size=16", "train.lr=1e-2",
                                 "train.warmup_steps=2", "train.eval_every=6", "train.save_every=0", *overrides])
        return Path(run(cfg, base=load_base(str(base_dir)), progress=False).dir)

    # a larger step size for b: 6 steps at 1e-2 leave two seeds' scores only ~1e-3 apart
    out = Trained(ss_a=train("ss_a", "seed=0"), ss_b=train("ss_b", "seed=1", "train.lr=5e-2"),
                  ds=train("ds", "seed=0", "protocol=ds", "data.per_image=1"), images=[])
    m = read_manifest(manifest, CT_DIMENSIONS)
    out.images = [load_image(it.image) for it in m.split("test")[:8]]
    return out


@pytest.fixture(scope="module")
def aset(trained) -> AdapterSet:
    """The three adapters in one set; the ds adapter last, so the ss adapter stays active."""
    s = AdapterSet()
    assert [s.load(trained.ss_a, "a"), s.load(trained.ss_b, "b"), s.load(trained.ds)] == ["a", "b", "ds_nr"]
    return s


def alone(adapter_dir: Path, images) -> list[dict[str, float]]:
    """ss logit scores of one adapter loaded by itself (the single-adapter path)."""
    model, processor, meta = load_trained(adapter_dir)
    return [r["scores"] for r in logit_scores(model, processor, images, Template(CT_DIMENSIONS), view=meta.make_view())]


def max_diff(xs: list[dict[str, float]], ys: list[dict[str, float]]) -> float:
    assert len(xs) == len(ys) and all(x.keys() == y.keys() for x, y in zip(xs, ys))
    return max(abs(x[d] - y[d]) for x, y in zip(xs, ys) for d in x)


@torch.no_grad()
def decoder_logits(model, processor, images, text: str = "noise is good. the first image is better.") -> torch.Tensor:
    """Full-vocabulary decoder logits of a plain forward (the active adapter) for a fixed caption."""
    blip = model.get_base_model()
    tokens = encode_images(model, pixel_values(images, processor).unsqueeze(1), index=False)
    enc = processor.tokenizer([text] * len(images), return_tensors="pt")
    return blip.text_decoder(input_ids=enc.input_ids, attention_mask=enc.attention_mask,
                             encoder_hidden_states=tokens, return_dict=True).logits


def test_mixed_batch_equals_each_adapter_alone(aset, trained):
    imgs = trained.images
    ref_a, ref_b = alone(trained.ss_a, imgs), alone(trained.ss_b, imgs)
    assert max_diff(ref_a, ref_b) > 1e-2  # the two adapters really differ on these images
    names = ["a" if i % 2 == 0 else "b" for i in range(len(imgs))]
    out = aset.predict([(n, (im,)) for n, im in zip(names, imgs)])
    assert [o["adapter"] for o in out] == names and {o["protocol"] for o in out} == {"ss"}
    want = [(ref_a if n == "a" else ref_b)[i] for i, n in enumerate(names)]
    assert max_diff([o["scores"] for o in out], want) < TOL
    # one adapter through the set (base with an image index it never reads) is the single-adapter path
    assert max_diff([o["scores"] for o in aset.predict([("b", (im,)) for im in imgs])], ref_b) < 1e-6


def test_use_switches_and_restores_exactly(aset, trained):
    imgs = trained.images[:4]
    model_a, processor, _ = load_trained(trained.ss_a)
    want_a = decoder_logits(model_a, processor, imgs)
    aset.use("a")
    first = decoder_logits(aset.model, aset.processor, imgs)
    # full vocabulary, ds answer words included: the loaded ds adapter's tokens must not leak into "a"
    assert (first - want_a).abs().max().item() < 1e-6
    aset.use("b")
    assert aset.active == "b"
    other = decoder_logits(aset.model, aset.processor, imgs)
    assert (other - first).abs().max().item() > 1e-3
    aset.use("a")
    assert torch.equal(decoder_logits(aset.model, aset.processor, imgs), first)
    with pytest.raises(LoraIqaError, match="adapter 'nope' is not loaded") as e:
        aset.use("nope")
    assert "\n" not in str(e.value) and aset.active == "a"


def test_ds_adapter_in_set_equals_load_trained(aset, trained):
    imgs = trained.images
    pairs = [(imgs[i], imgs[(i + 3) % len(imgs)]) for i in range(len(imgs))]
    model, processor, meta = load_trained(trained.ds)
    assert meta.images == 2 and aset.meta("ds_nr") == meta and aset.directory("ds_nr") == Path(trained.ds)
    want = preference_scores(model, processor, pairs, index=True, view=meta.make_view())
    aset.use("a")  # an ss adapter is active: the ds rows still go through the ds adapter
    requests = [r for i, p in enumerate(pairs) for r in (("ds_nr", p), ("b", (imgs[i],)))]
    out = aset.predict(requests)
    got = [o for o in out if o["adapter"] == "ds_nr"]
    assert [o["protocol"] for o in got] == ["ds"] * len(pairs)
    assert max(abs(g["probs"][c] - w["probs"][c]) for g, w in zip(got, want) for c in w["probs"]) < TOL
    assert [g["preference"] for g in got] == [w["preference"] for w in want]
    # the probabilities are not the same for every pair (the checks above compare real values): the
    # tiny adapter mostly answers its prior, so look at the small "similar" probability, relatively
    sim_got, sim_want = (np.log([x["probs"]["similar"] for x in xs]) for xs in (got, want))
    assert np.ptp(sim_want) > 1e-3 and np.max(np.abs(sim_got - sim_want)) < 1e-4
    assert max_diff([o["scores"] for o in out if o["adapter"] == "b"], alone(trained.ss_b, imgs)) < TOL
    assert aset.active == "a"


def test_wrong_image_count_refused(aset, trained):
    with pytest.raises(LoraIqaError, match=r"request 1: adapter 'ds_nr' \(ds_nr\) takes 2 images") as e:
        aset.predict([("a", (trained.images[0],)), ("ds_nr", (trained.images[0],))])
    assert "\n" not in str(e.value)


def copy_with(src: Path, dst: Path, **changes) -> Path:
    """A copy of an adapter dir whose lora_iqa.json has ``changes`` (``base_fingerprint`` edits the base's)."""
    shutil.copytree(src, dst)
    meta = json.loads((dst / "lora_iqa.json").read_text())
    if "base_fingerprint" in changes:
        meta["base"]["fingerprint"] = changes.pop("base_fingerprint")
    meta.update(changes)
    (dst / "lora_iqa.json").write_text(json.dumps(meta))
    return dst


def refused(aset: AdapterSet, adapter_dir: Path, match: str, name: str | None = None) -> str:
    """Loading ``adapter_dir`` fails with one line naming it; the set keeps its adapters."""
    before = aset.names
    with pytest.raises(LoraIqaError, match=match) as e:
        aset.load(adapter_dir, name)
    msg = str(e.value)
    assert "\n" not in msg and str(adapter_dir) in msg, msg
    assert aset.names == before
    return msg


def test_base_mismatch_refused(aset, trained, tmp_path):
    bad = copy_with(trained.ss_a, tmp_path / "other_base", base_fingerprint="0123456789abcdef")
    msg = refused(aset, bad, "trained on base 0123456789abcdef", name="c")
    assert aset.meta("a").base.fingerprint in msg  # the set's own base is named too
    # and on the first load, where the base itself is loaded and fingerprinted (check_base)
    refused(AdapterSet(), bad, "trained on base 0123456789abcdef")


@pytest.mark.parametrize("case,match", [
    ("protocol", "unknown protocol 'xs'"),
    ("full", "no adapter_config.json"),
    ("duplicate", "an adapter named 'a' is already loaded"),
])
def test_load_refusals(aset, trained, tmp_path, case, match):
    if case == "protocol":
        refused(aset, copy_with(trained.ss_a, tmp_path / "xs", protocol="xs"), match, name="c")
        refused(AdapterSet(), tmp_path / "xs", match)
    elif case == "full":
        full = copy_with(trained.ss_a, tmp_path / "full")
        (full / "adapter_config.json").unlink()
        refused(aset, full, match, name="c")
    else:
        refused(aset, trained.ss_a, match, name="a")


def test_failed_mixed_batch_leaves_no_routing_behind(aset, trained, monkeypatch):
    """peft's adapter_names hooks stay on every layer when a forward raises inside them; the set drops
    them, so later plain forwards and mixed batches are unaffected."""
    imgs = trained.images[:4]
    aset.use("a")
    before = decoder_logits(aset.model, aset.processor, imgs)
    n_hooks = sum(len(m._forward_pre_hooks) for m in aset.model.modules())

    def boom(*args, **kwargs):
        raise RuntimeError("simulated failure inside the forward")

    monkeypatch.setattr(aset.model.get_base_model().vision_model.post_layernorm, "forward", boom)
    with pytest.raises(RuntimeError, match="simulated"):
        aset.predict([("b", (im,)) for im in trained.images])  # 8 rows: a stale hook would break 4-row calls
    monkeypatch.undo()
    assert sum(len(m._forward_pre_hooks) for m in aset.model.modules()) == n_hooks
    assert torch.equal(decoder_logits(aset.model, aset.processor, imgs), before)
    out = aset.predict([("b", (im,)) for im in imgs])
    assert max_diff([o["scores"] for o in out], alone(trained.ss_b, imgs)) < TOL


def adapter_state(model) -> list:
    """Every module's active adapters and every parameter's requires_grad: what a switch sets."""
    return ([(n, list(getattr(m, "active_adapters", []) or [])) for n, m in model.named_modules()
             if hasattr(m, "_active_adapter")]
            + [(n, p.requires_grad) for n, p in model.named_parameters()]
            + [model.active_adapter, model.base_model.active_adapter])


@pytest.mark.parametrize("name", ["a", "b", "ds_nr"])
def test_use_sets_what_peft_set_adapter_sets(aset, name):
    aset.use("b" if name == "a" else "a")
    aset.use(name)
    ours = adapter_state(aset.model)
    aset.use("b" if name == "a" else "a")
    aset.model.set_adapter(name, inference_mode=True)
    assert adapter_state(aset.model) == ours
    assert aset.active == name and not any(p.requires_grad for p in aset.model.parameters())
