"""The embedded stand-in CLIP (``base: embedded-clip``), built offline and cached.

``embedded-clip``: no pretrained CLIP can be downloaded here, so the project builds a tiny one (the
real ``CLIPModel`` class, random init) and gives it a *stand-in pre-training*: contrastive
image-text training on scikit-image photos that the synthetic natural set never uses, each distorted
at random (the same distortions as :mod:`lora_iqa.data.synth.natural`) and captioned, like web
alt-text, by what was done to it ("a very blurry grainy photo", "a sharp clean photo"). It never sees a
rater's label, the overall word pair (good/bad), nor a synthetic-natural content. Cached under
``$LORA_IQA_CACHE_DIR`` like the embedded BLIP. Its numbers are a stand-in's, not CLIP's.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from lora_iqa.config import cache_dir
from lora_iqa.errors import atomic_path
from lora_iqa.methods.clip.base import ANTONYMS, PLACEHOLDER, ClipProcessor

EMBEDDED_CLIP = "embedded-clip"
VERSION = "v1"
# scikit-image's bundled photos that lora_iqa.data.synth.natural does NOT use (its contents stay unseen)
PRETRAIN_PHOTOS = ("hubble_deep_field", "immunohistochemistry", "retina", "camera", "brick", "grass",
                   "gravel", "coins", "moon")


def embedded_clip_path() -> Path:
    return cache_dir() / f"embedded-clip-{VERSION}"


# web-caption words for each distortion (what was done to the image, never a rating)
WORDS = ("sharp", "soft", "very", "blurry", "clean", "grainy", "noisy", "compressed", "blocky", "flat", "harsh",
         "grey", "dull", "vivid")


def distortion_caption(params: dict) -> str:
    """``"a very blurry grainy photo."``: the distortions applied (``synth_natural.sample_params``), as words."""
    def grade(x: float, cuts: tuple[float, float], words: tuple[str, str, str]) -> list[str]:
        return [words[0]] if x <= cuts[0] else [words[1]] if x <= cuts[1] else words[2].split()

    q = int(params.get("jpeg_quality", 0))
    words = grade(float(params.get("blur_sigma", 0)), (0.6, 1.5), ("sharp", "soft", "very blurry"))
    words += grade(float(params.get("noise_sigma", 0)), (3.0, 10.0), ("clean", "grainy", "very noisy"))
    words += grade(0 if q == 0 else 100 - q, (60, 85), ("", "compressed", "very blocky"))
    c, s = float(params.get("contrast_factor", 1)), float(params.get("saturation_factor", 1))
    words += ["flat"] if c < 0.6 else ["harsh"] if c > 1.6 else []
    words += ["grey"] if s < 0.1 else ["dull"] if s < 0.6 else ["vivid"] if s > 1.8 else []
    return f"a {' '.join(w for w in words if w)} photo."


def tiny_tokenizer(extra_words: Sequence[str] = ()):
    """A word-level CLIP-style tokenizer built offline: ``<bos> words <eos>``, lower-cased.

    ``<eos>`` has the highest id, so CLIPTextTransformer's pooling (argmax of the ids, or the first
    ``eos_token_id``) picks the end of the text. Unknown words map to ``<unk>``.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    split = pre_tokenizers.Whitespace().pre_tokenize_str
    words = {PLACEHOLDER, "a", "an", "the", "of", "photo", "image", ".", *WORDS}
    for w in [w for pair in ANTONYMS.values() for w in pair] + list(extra_words):
        words.update(t for t, _ in split(w.lower()))
    vocab = {"<pad>": 0, "<unk>": 1}
    for w in sorted(words):
        vocab[w] = len(vocab)
    vocab["<bos>"], vocab["<eos>"] = len(vocab), len(vocab) + 1
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>", padding_side="right", model_max_length=32)


def tiny_clip(tokenizer, hidden: int = 128, layers: int = 4, image_size: int = 96, patch: int = 12, heads: int = 4,
              seed: int = 0):
    """A randomly initialised ``CLIPModel`` (the real class), and its ``ClipProcessor``.

    hidden 128, 4 + 4 layers: ~1.7 M parameters, so 0.1 % is ~1.7 k prompt parameters.
    """
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    common = dict(hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
                  num_attention_heads=heads, initializer_range=0.02)
    text = dict(common, vocab_size=len(tokenizer), max_position_embeddings=32, pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    vision = dict(common, image_size=image_size, patch_size=patch, num_channels=3)
    cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=hidden, initializer_range=0.02)
    torch.manual_seed(seed)
    model = CLIPModel(cfg)
    ip = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    return model, ClipProcessor(ip, tokenizer)


def _pretrain_images(n: int, size: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    """``n`` random crops of PRETRAIN_PHOTOS, distorted at random, and their distortion captions."""
    import skimage.data
    from PIL import Image

    from lora_iqa.data.synth.natural import distort, sample_params

    photos = []
    for name in PRETRAIN_PHOTOS:
        a = np.asarray(getattr(skimage.data, name)())
        photos.append(np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a[..., :3])
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    imgs, caps = [], []
    for k in range(n):
        photo = photos[k % len(photos)]
        h, w = photo.shape[:2]
        side = int(rng.integers(min(h, w) // 4, min(h, w) // 2 + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        ref = np.asarray(Image.fromarray(np.ascontiguousarray(photo[top:top + side, left:left + side]).astype(np.uint8))
                         .resize((size, size), Image.Resampling.LANCZOS))
        params = sample_params(rng)
        final, _ = distort(ref, params, rng)
        imgs.append(final.astype(np.float32) / 255.0)
        caps.append(distortion_caption(params))
    return imgs, caps


def pretrain_stand_in(model, processor, n: int = 2048, steps: int = 800, batch_size: int = 64, lr: float = 1e-3,
                      seed: int = 0, progress: bool = True) -> list[float]:
    """Contrastive (CLIP) training of the whole tiny model on distortion-captioned photos; returns the losses."""
    from transformers import get_cosine_schedule_with_warmup

    from lora_iqa.data.pixels import pixel_values

    imgs, caps = _pretrain_images(n, int(processor.image_processor.crop_size["height"]), seed)
    x = pixel_values(imgs, processor)
    tok = processor.tokenizer(caps, padding=True, return_tensors="pt")
    model.requires_grad_(True)
    model.train()
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = get_cosine_schedule_with_warmup(opt, max(1, steps // 10), steps)
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in tqdm(range(steps), desc="pre-train embedded CLIP (stand-in)", unit="step", disable=not progress):
        idx = torch.randperm(n, generator=g)[:batch_size]
        loss = model(input_ids=tok["input_ids"][idx], attention_mask=tok["attention_mask"][idx], pixel_values=x[idx],
                     return_loss=True).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(float(loss.detach()))
    model.requires_grad_(False)
    model.eval()
    return losses


def ensure_embedded_clip(progress: bool = True, rebuild: bool = False) -> Path:
    """The cached stand-in CLIP directory, building it first if it is missing (about a minute)."""
    path = embedded_clip_path()
    if (path / "lora_iqa.json").exists() and not rebuild:
        return path
    t0 = time.perf_counter()
    torch.manual_seed(0)
    model, processor = tiny_clip(tiny_tokenizer(), seed=0)
    losses = pretrain_stand_in(model, processor, progress=progress)
    with atomic_path(path, replace_dir=True) as tmp:  # the cache's own folder
        model.save_pretrained(str(tmp))
        processor.save_pretrained(tmp)
        (tmp / "lora_iqa.json").write_text(json.dumps({
            "what": "embedded stand-in CLIP: tiny CLIPModel, contrastive pre-training on distortion captions of "
                    f"scikit-image photos {list(PRETRAIN_PHOTOS)} (none of them in the synthetic natural set)",
            "version": VERSION, "loss_first_last": [losses[0], float(np.mean(losses[-20:]))],
            "seconds": round(time.perf_counter() - t0, 1)}, indent=2))
    return path


def main() -> None:
    """``python -m lora_iqa.bases.clip_standin [--rebuild]``: build (or rebuild) the cached embedded stand-in CLIP."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--rebuild", action="store_true")
    print(ensure_embedded_clip(rebuild=ap.parse_args().rebuild))


if __name__ == "__main__":
    main()
