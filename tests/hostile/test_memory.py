"""Hostile: memory. Samples name their images and read them when a batch needs them, so eval and
train do not hold every decoded image (issue 14, class 10). The peak-RSS figures for 100 vs 1,000
images of 1024 px come from ``benchmarks/scripts/eval_rss.py``."""

from __future__ import annotations

import numpy as np
import pytest

import lora_iqa.data.io as io
from lora_iqa.data.manifest import read_manifest
from lora_iqa.data.samples import protocol_samples
from lora_iqa.protocols import SS, get_protocol
from lora_iqa.evaluation import predict
from lora_iqa.template import CT_DIMENSIONS, Template


class Counter:
    def __init__(self, monkeypatch):
        self.live, self.peak, self.calls = 0, 0, 0
        real = io.load_image
        counter = self

        class Tracked(np.ndarray):  # counts decoded arrays alive
            def __del__(self):
                counter.live -= 1

        def load(*a, **k):
            arr = real(*a, **k).view(Tracked)
            counter.calls += 1
            counter.live += 1
            counter.peak = max(counter.peak, counter.live)
            return arr

        monkeypatch.setattr(io, "load_image", load)
        import lora_iqa.data.samples as protocols

        if hasattr(protocols, "load_image"):
            monkeypatch.setattr(protocols, "load_image", load)


@pytest.mark.parametrize("protocol", ["ss", "ds"])
def test_samples_hold_no_decoded_images(manifest, monkeypatch, protocol):
    m = read_manifest(manifest, CT_DIMENSIONS)
    counter = Counter(monkeypatch)
    assert protocol_samples(m.split("test"), get_protocol(protocol), CT_DIMENSIONS, seed=0)  # samples were made
    assert counter.live == 0  # nothing decoded is kept by the samples


def test_predict_decodes_per_batch(manifest, adapter_dir, monkeypatch):
    from lora_iqa.methods.load import load_trained

    model, processor, _ = load_trained(adapter_dir)
    m = read_manifest(manifest, CT_DIMENSIONS)
    samples = protocol_samples(m.split("train"), SS, CT_DIMENSIONS, seed=0)  # 112 images
    counter = Counter(monkeypatch)
    preds = predict(model, processor, samples, Template(), "logits", batch_size=16)
    assert len(preds) == 112 and counter.calls >= 112
    assert counter.peak <= 16  # at most one batch of decoded images alive at a time


def test_training_keeps_decoded_images_only_up_to_its_budget(manifest, monkeypatch):
    import lora_iqa.data.samples as protocols

    m = read_manifest(manifest, CT_DIMENSIONS)
    one = protocols.ImageFile(m.split("train")[0].image).load().nbytes
    monkeypatch.setattr(protocols, "KEEP_BYTES", 3 * one)  # room for three of the train split's images
    samples = protocol_samples(m.split("train"), SS, CT_DIMENSIONS, seed=0, check=True)
    kinds = [type(s.images[0]) for s in samples]
    assert len(samples) == 112 and kinds.count(np.ndarray) == 3 and kinds.count(protocols.ImageFile) == 109
