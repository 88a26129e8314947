"""Tests for lora_iqa.model: LoRA targets, part switches, parameter counts, fingerprint, loading, pixels."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import TINY, tiny_base
from peft.tuners.lora import LoraLayer

from lora_iqa.config import AdapterConfig
from lora_iqa.data.pixels import GRAY_STRETCH, gray_channels, pixel_values
from lora_iqa.errors import LoraIqaError
from lora_iqa.methods.blip.base import load_base
from lora_iqa.methods.blip.lora import attach
from lora_iqa.methods.common import count_params, fingerprint

NV, NT = TINY["vision_layers"], TINY["text_layers"]
VISION_QKV = {f"vision_model.encoder.layers.{i}.self_attn.qkv" for i in range(NV)}
VISION_PROJ = {f"vision_model.encoder.layers.{i}.self_attn.projection" for i in range(NV)}
CROSS_QKV = {f"text_decoder.bert.encoder.layer.{i}.crossattention.self.{w}" for i in range(NT)
             for w in ("query", "key", "value")}
CROSS_OUT = {f"text_decoder.bert.encoder.layer.{i}.crossattention.output.dense" for i in range(NT)}


def _lora_modules(model) -> set[str]:
    return {re.sub(r"^base_model\.model\.", "", n) for n, m in model.named_modules() if isinstance(m, LoraLayer)}


@pytest.mark.parametrize("kwargs, expected", [
    ({}, VISION_QKV | CROSS_QKV),
    ({"vision_projection": True}, VISION_QKV | VISION_PROJ | CROSS_QKV),
    ({"cross_output": True}, VISION_QKV | CROSS_QKV | CROSS_OUT),
    ({"vision_projection": True, "cross_output": True}, VISION_QKV | VISION_PROJ | CROSS_QKV | CROSS_OUT),
    ({"targets": ["vision"]}, VISION_QKV),
    ({"targets": ["cross"]}, CROSS_QKV),
], ids=["default", "vision_projection", "cross_output", "both_extra", "vision_only", "cross_only"])
def test_lora_targets(kwargs, expected):
    model, _ = tiny_base()
    peft_model = attach(model, AdapterConfig(**kwargs))
    found = _lora_modules(peft_model)
    assert found == expected
    if not kwargs:
        assert len(found) == NV + 3 * NT  # one qkv per ViT layer, q/k/v per cross-attention layer
    # only LoRA tensors train; each LoRA module has its A and B
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert len(trainable) == 2 * len(expected)


def test_text_lora_adapts_the_text_decoder_and_text_full_needs_method_full():
    model, _ = tiny_base()
    peft_model = attach(model, AdapterConfig(text="lora"))
    names = [n for n, _ in peft_model.named_modules() if n.endswith("lora_A")]
    text = [n for n in names if "text_decoder" in n and "crossattention" not in n]
    assert any("attention.self.query" in n for n in text) and any("intermediate.dense" in n for n in text)
    # no base weight trains: an adapter directory holds LoRA tensors only
    assert not any(p.requires_grad for n, p in peft_model.named_parameters() if "lora_" not in n)
    with pytest.raises(LoraIqaError, match="adapter.text"):
        AdapterConfig(text="full")


def test_full_method_trains_everything():
    model, _ = tiny_base()
    for p in model.parameters():
        p.requires_grad_(False)
    out = attach(model, AdapterConfig(method="full"))
    trainable, total = count_params(out)
    assert trainable == total > 0
    assert all(p.requires_grad for p in out.parameters())


@pytest.mark.parametrize("r", [2, 8])
def test_count_params_lora_fraction(r):
    model, _ = tiny_base()
    _, total_before = count_params(model)
    peft_model = attach(model, AdapterConfig(r=r))
    trainable, total = count_params(peft_model)
    lora = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
    assert trainable == lora > 0
    assert total == total_before + lora
    h = TINY["hidden"]
    # A (r x in) + B (out x r): vision qkv is h -> 3h, each cross q/k/v is h -> h
    assert lora == NV * r * (h + 3 * h) + 3 * NT * r * (h + h)
    if r == 2:  # at hidden 32, r=8 is a quarter of the width (8%); r=2 is the comparable ratio
        assert trainable / total < 0.05


def test_count_params_counts_tied_weights_once():
    model, _ = tiny_base()
    distinct = {p.data_ptr(): p.numel() for p in model.parameters()}
    assert count_params(model)[1] == sum(distinct.values())


def test_fingerprint_stable_across_save_load(tmp_path):
    model, processor = tiny_base(seed=3)
    fp = fingerprint(model)
    assert re.fullmatch(r"[0-9a-f]{16}", fp)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, _ = load_base(str(tmp_path))
    assert fingerprint(loaded) == fp
    # attaching LoRA does not change the base fingerprint
    assert fingerprint(attach(loaded, AdapterConfig())) == fp


def test_fingerprint_changes_with_a_base_weight():
    model, _ = tiny_base(seed=3)
    fp = fingerprint(model)
    with torch.no_grad():
        model.text_decoder.bert.encoder.layer[0].crossattention.self.query.weight[0, 0] += 1e-3
    assert fingerprint(model) != fp
    assert fingerprint(tiny_base(seed=4)[0]) != fingerprint(tiny_base(seed=3)[0])


def test_load_base_missing_path(tmp_path):
    missing = tmp_path / "no-such-base"
    with pytest.raises(LoraIqaError) as e:
        load_base(str(missing))
    msg = str(e.value)
    assert str(missing) in msg and "\n" not in msg


# --- pixels -------------------------------------------------------------------------------------

def _unnormalise(pv: torch.Tensor, processor) -> torch.Tensor:
    ip = processor.image_processor
    mean = torch.tensor(ip.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(ip.image_std).view(1, 3, 1, 1)
    return pv * std + mean


def test_gray_channels():
    img = torch.linspace(0, 1, 64).view(8, 8)
    out = gray_channels(img)
    assert out.shape == (3, 8, 8)
    assert out.min() >= 0 and out.max() <= 1
    for c, g in enumerate(GRAY_STRETCH):
        assert torch.allclose(out[c], ((img - 0.5) * g + 0.5).clamp(0, 1))
    assert torch.allclose(out[0], img, atol=1e-6)  # gain 1: the image itself
    mid = gray_channels(torch.full((4, 4), 0.5))
    assert torch.allclose(mid, torch.full((3, 4, 4), 0.5))  # mid-grey stays mid-grey in every channel


def test_pixel_values_grayscale_and_rgb():
    _, processor = tiny_base()
    size = TINY["image_size"]
    rng = np.random.default_rng(0)
    gray = rng.random((64, 64), dtype=np.float32)
    rgb = rng.random((40, 48, 3), dtype=np.float32)
    same = rng.random((size, size), dtype=np.float32)
    pv = pixel_values([gray, rgb, same], processor)
    assert pv.shape == (3, 3, size, size) and pv.dtype == torch.float32
    raw = _unnormalise(pv, processor)
    assert raw.min() >= -1e-5 and raw.max() <= 1 + 1e-5
    # an image already at the processor's size is not resampled: channel 0 is the image, 1-2 stretched
    assert torch.allclose(raw[2], gray_channels(torch.from_numpy(same)), atol=1e-5)
    # the plain-gray mode copies the image into all three channels
    pv_copy = _unnormalise(pixel_values([same], processor, gray="copy"), processor)[0]
    for c in range(3):
        assert torch.allclose(pv_copy[c], torch.from_numpy(same), atol=1e-5)
    # constant images map to constants (no ringing from the antialiased resize)
    const = _unnormalise(pixel_values([np.full((64, 64), 0.25, np.float32),
                                       np.full((50, 50, 3), [0.1, 0.5, 0.9], np.float32)], processor), processor)
    assert torch.allclose(const[0, 0], torch.tensor(0.25), atol=1e-5)
    for c, v in enumerate((0.1, 0.5, 0.9)):
        assert torch.allclose(const[1, c], torch.tensor(v), atol=1e-5)


def _pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((32, 32)).astype(np.float32), (rng.random((32, 32)) ** 3).astype(np.float32)


def test_image_index_makes_the_decoder_order_sensitive():
    """Cross-attention is blind to the order of its keys: without the index embedding (A, B) and (B, A)
    give the decoder exactly the same logits; with it they do not."""
    from lora_iqa.methods.blip.multi_image import add_image_index, encode_images
    from lora_iqa.methods.blip.predict import _pixels

    model, processor = tiny_base(seed=0)
    torch.manual_seed(0)
    add_image_index(model).eval()
    a, b = _pair()
    ids = processor.tokenizer(["the first image is better."], return_tensors="pt").input_ids
    gaps = []
    for index in (False, True):
        with torch.no_grad():
            ab, ba = (model.text_decoder(input_ids=ids, encoder_hidden_states=encode_images(
                model, _pixels([imgs], processor, "cpu")[0], index)).logits for imgs in ((a, b), (b, a)))
        gap = float((ab - ba).abs().max())
        gaps.append(gap)
    assert gaps[0] < 1e-6 and gaps[1] > 1000 * max(gaps[0], 1e-9), gaps  # the base barely reads its images: relative


def test_image_index_is_not_part_of_the_base_fingerprint_and_is_trained_per_adapter():
    from lora_iqa.methods.blip.multi_image import add_image_index
    from lora_iqa.methods.common import IMAGE_INDEX

    model, _ = tiny_base(seed=0)
    before = fingerprint(model)
    add_image_index(model)
    assert fingerprint(model) == before
    peft_model = attach(model, AdapterConfig(), name="ds_nr", tokens=[10, 11])
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any(IMAGE_INDEX in n and "modules_to_save.ds_nr" in n for n in trainable)
    assert any("trainable_tokens_delta.ds_nr" in n for n in trainable)
    assert fingerprint(peft_model) == before
