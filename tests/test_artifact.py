"""AdapterMeta: the one typed form of ``lora_iqa.json`` (round trip, files from older versions, newer ones)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lora_iqa.artifact import META_VERSION, AdapterMeta, BaseRef, read_meta, write_meta
from lora_iqa.config import Config, DataConfig
from lora_iqa.errors import LoraIqaError
from lora_iqa.template import Template

# The keys the training run wrote before meta_version existed: other tools read these names.
WRITTEN_KEYS = {"method", "protocol", "reference", "images", "dimensions", "domain", "template_version", "base",
                "config", "num_processes", "step", "metrics", "lora_iqa_version"}


def full_meta(**changes) -> AdapterMeta:
    cfg = Config()
    cfg.protocol, cfg.reference, cfg.seed, cfg.data.k = "ms", "fr", 7, 3
    fields = dict(method="lora", protocol="ms", reference="fr", images=4, dimensions=("noise", "overall"),
                  domain="natural", template_version="ct-v1", base=BaseRef("some/base", "0123456789abcdef"),
                  config=cfg.to_dict(), num_processes=2, step=12,
                  metrics={"overall": {"srcc": 0.5, "plcc": 0.4, "krcc": 0.3, "rmse": None}},
                  lora_iqa_version="0.1.0")
    return AdapterMeta(**{**fields, **changes})


def test_round_trip():
    meta = full_meta()
    raw = meta.to_dict()
    assert set(raw) == WRITTEN_KEYS | {"meta_version"} and raw["meta_version"] == META_VERSION
    assert raw["base"] == {"name_or_path": "some/base", "fingerprint": "0123456789abcdef"}
    assert raw["dimensions"] == ["noise", "overall"]
    assert AdapterMeta.from_dict(json.loads(json.dumps(raw)), "x") == meta


def test_write_then_read(tmp_path):
    meta = full_meta()
    write_meta(meta, tmp_path)
    assert read_meta(tmp_path) == meta
    assert json.loads((tmp_path / "lora_iqa.json").read_text()) == meta.to_dict()
    assert [p.name for p in tmp_path.iterdir()] == ["lora_iqa.json"]  # no temporary file left


def test_write_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        write_meta(full_meta(metrics={"overall": {"srcc": math.nan}}), tmp_path)
    assert not (tmp_path / "lora_iqa.json").exists()


def test_the_helpers():
    meta = full_meta()
    assert meta.multi_image and meta.adapter_name == "ms_fr" and meta.seed == 7
    assert meta.template() == Template(("noise", "overall"), domain="natural")
    assert meta.data_settings() == {"k": 3, "per_image": 4, "same_content": 0.5, "similar_below": 0.5, "window": None}
    cfg = meta.training_config()
    assert (cfg.protocol, cfg.reference, cfg.seed, cfg.data.k) == ("ms", "fr", 7, 3)
    assert not full_meta(images=1).multi_image


def test_unknown_keys_are_kept():
    raw = {**full_meta().to_dict(), "prompt_layout": {"n_ctx": 2}}
    meta = AdapterMeta.from_dict(raw, "x")
    assert meta.extra == {"prompt_layout": {"n_ctx": 2}} and meta.to_dict() == raw


def test_an_old_style_file_loads_with_the_defaults(tmp_path: Path):
    """What lora_iqa wrote before meta_version, domain, images, reference and num_processes existed."""
    old = {"dimensions": ["noise", "overall"], "base": {"name_or_path": "tiny-blip", "fingerprint": "abcd"},
           "config": {"seed": 3, "adapter": {"r": 8}, "data": {"manifest": "data/manifest.csv", "per_image": 2}},
           "protocol": "ss", "template_version": "ct-v1", "step": 5, "metrics": {"overall": {"srcc": 0.7}}}
    (tmp_path / "lora_iqa.json").write_text(json.dumps(old))
    meta = read_meta(tmp_path)
    assert meta.meta_version == 0
    assert (meta.method, meta.protocol, meta.reference, meta.images, meta.domain) == ("lora", "ss", "nr", 1, "ct")
    assert (meta.num_processes, meta.step, meta.lora_iqa_version, meta.extra) == (1, 5, "", {})
    assert meta.dimensions == ("noise", "overall") and meta.base == BaseRef("tiny-blip", "abcd")
    assert meta.metrics == {"overall": {"srcc": 0.7}} and meta.seed == 3
    assert meta.data_manifest == "data/manifest.csv"
    d = DataConfig()
    assert meta.data_settings() == {"k": d.k, "per_image": 2, "same_content": d.same_content,
                                    "similar_below": d.similar_below, "window": None}
    assert not meta.multi_image and meta.template() == Template(("noise", "overall"))


def test_the_method_defaults_to_the_configs():
    raw = {"dimensions": ["overall"], "base": {"name_or_path": "b", "fingerprint": "f"},
           "config": {"adapter": {"method": "full"}}}
    meta = AdapterMeta.from_dict(raw, "x")
    assert (meta.method, meta.seed, meta.template_version, meta.metrics) == ("full", 0, "", {})


@pytest.mark.parametrize("version,why", [(META_VERSION + 1, "newer than"), ("1", "whole number"), (-1, "whole number"),
                                         (True, "whole number")])
def test_a_newer_or_bad_meta_version_is_refused_in_one_line(tmp_path, version, why):
    (tmp_path / "lora_iqa.json").write_text(json.dumps({**full_meta().to_dict(), "meta_version": version}))
    with pytest.raises(LoraIqaError) as e:
        read_meta(tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "lora_iqa.json") in msg and "'meta_version'" in msg and why in msg, msg


@pytest.mark.parametrize("key,value", [("num_processes", 0), ("step", -1), ("template_version", 3),
                                       ("lora_iqa_version", None), ("metrics", [1])])
def test_a_bad_value_names_its_key(key, value):
    with pytest.raises(LoraIqaError, match=rf"^where: key '{key}' "):
        AdapterMeta.from_dict({**full_meta().to_dict(), key: value}, "where")
