"""The embedded default base: a tiny BLIP captioner the project pre-trains itself, cached offline.

``resolve_base("embedded")`` returns the path of the cached ``save_pretrained`` directory, building
it on first use: synthesize a pre-training corpus (its own seed), build a tiny BLIP from a config
with an offline tokenizer, and train it with the project's own loop and recipe
(``resources/embedded_base.yaml``) on content/acquisition captions.
"""

from __future__ import annotations

import argparse
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

from lora_iqa.config import cache_dir, load_config
from lora_iqa.data.manifest import read_manifest
from lora_iqa.data.synth.ct import SynthCTConfig, synth_ct
from lora_iqa.errors import atomic_path
from lora_iqa.methods.blip.base import scratch_base
from lora_iqa.template import LEVELS, Template, vocabulary
from lora_iqa.training import run as train

EMBEDDED = "embedded"
VERSION = "v3"  # part of the cache folder name: a new version builds anew
CORPUS = SynthCTConfig(n=480, seed=90210, per_content=8)
NUMERIC = ("views", "dose", "blur", "lesion_hu")
PRETRAIN_ATTRIBUTES = ("dose", "views", "kernel", "blur", "lesion")
KERNEL_SHARPNESS = ("hann", "hamming", "cosine", "shepp-logan", "ramp")  # smoothest .. sharpest
WORDS = list(PRETRAIN_ATTRIBUTES)


def embedded_path() -> Path:
    """Where the embedded base lives (built or not)."""
    return cache_dir() / f"embedded-base-{VERSION}"


def resolve_base(name: str, progress: bool = True) -> str:
    """``embedded`` (BLIP) or ``embedded-clip`` -> the cached base's path (built on first use); anything
    else unchanged."""
    from lora_iqa.bases.clip_standin import EMBEDDED_CLIP, ensure_embedded_clip

    if name == EMBEDDED_CLIP:
        return str(ensure_embedded_clip(progress))
    return str(ensure_embedded(progress=progress)) if name == EMBEDDED else name


def built(name: str) -> bool:
    """Whether the embedded base ``name`` (``embedded`` or ``embedded-clip``) is already in the cache."""
    from lora_iqa.bases.clip_standin import EMBEDDED_CLIP, embedded_clip_path

    return ((embedded_clip_path() if name == EMBEDDED_CLIP else embedded_path()) / "lora_iqa.json").exists()


def ensure_embedded(progress: bool = True, rebuild: bool = False) -> Path:
    """The cached embedded base directory, pre-training it first if it is missing."""
    path = embedded_path()
    if (path / "lora_iqa.json").exists() and not rebuild:
        return path
    with tempfile.TemporaryDirectory(prefix="lora_iqa_pretrain_") as tmp:
        manifest = synth_ct(Path(tmp) / "corpus", CORPUS, progress=progress)
        with atomic_path(path, replace_dir=True) as out:  # the cache's own folder
            cfg = load_config(resources.files("lora_iqa") / "resources" / "embedded_base.yaml",
                              [f"output_dir={out}", f"data.manifest={manifest}"])
            base = scratch_base(vocabulary(cfg.data.dimensions) + WORDS, seed=cfg.seed)
            train.run(cfg, base=base, caption_fn=pretrain_captioner(manifest), progress=progress)
    return path


def pretrain_captioner(manifest_path: Path):
    """Caption function for pre-training: the acquisition protocol in the template's own grammar.

    ``dose is good. views is fair. kernel is excellent. blur is poor. lesion is bad.`` -- each
    attribute's level is its quintile in the corpus, oriented so that higher means a better image
    (more dose, more views, a sharper kernel, less blur, more lesion contrast). The base thus learns
    to answer "<attribute> is <level>" about an image; the quality dimensions, the rater and its
    overall rule are never shown.
    """
    m = read_manifest(manifest_path, Template().dimensions)
    edges = {k: np.quantile([float(it.extra[k]) for it in m.items], [0.2, 0.4, 0.6, 0.8]) for k in NUMERIC}
    template = Template(PRETRAIN_ATTRIBUTES)

    def level(key: str, value: str) -> int:
        q = int(np.searchsorted(edges[key], float(value), side="right"))
        return len(LEVELS) - 1 - q if key == "blur" else q

    def caption(sample, rng: np.random.Generator) -> str:
        x = sample.item.extra
        levels = {"dose": level("dose", x["dose"]), "views": level("views", x["views"]),
                  "kernel": KERNEL_SHARPNESS.index(x["kernel"]), "blur": level("blur", x["blur"]),
                  "lesion": level("lesion_hu", x["lesion_hu"])}
        return template.render(levels)

    return caption


def main() -> None:
    """``python -m lora_iqa.bases.embedded [--rebuild]``: build (or rebuild) the cached embedded base."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--rebuild", action="store_true")
    print(ensure_embedded(rebuild=ap.parse_args().rebuild))


if __name__ == "__main__":
    main()
