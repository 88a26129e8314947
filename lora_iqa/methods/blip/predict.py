"""Predictions from a (possibly adapted) captioner: logit scores and generated captions, batched.

Logit scoring (Q-Align / Q-SiT style, no free generation): the caption is forced to the template;
at each dimension's rating position the softmax over the five level words gives a distribution
whose expected value (0..4) is the score. The level word with the highest probability fills that
position before the next dimension is read, so later dimensions see a well-formed caption.

ds and ms answers are scored the same way over whole captions: the model's probability of every
valid answer ("the first image is better." ..., or each of the k! rankings) from its logits.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import torch

from lora_iqa.data.pixels import input_size, pixel_values
from lora_iqa.methods.blip.base import check_level_words
from lora_iqa.methods.blip.multi_image import encode_images, peft_names
from lora_iqa.protocols import DoubleStimulus, MultipleStimulus, Protocol, SingleStimulus
from lora_iqa.template import (
    LEVELS,
    PREFERENCE_VALUE,
    PREFERENCES,
    Template,
    render_preference,
    render_ranking,
)
from lora_iqa.views import RESIZE, View


def _blip(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


Images = Sequence["np.ndarray | tuple[np.ndarray, ...]"]  # per sample: one image, or the images it shows


def _pixels(images: Images, processor, device, view: View = RESIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample images -> (B * V, k, 3, S, S) pixels of each sample's V views (:mod:`lora_iqa.views`) in
    turn, sample-major, and the views' (B, V) weights; every sample must show the same number of images."""
    sets = [im if isinstance(im, tuple) else (im,) for im in images]
    k = len(sets[0])
    if any(len(s) != k for s in sets):
        raise ValueError("every sample of a batch must show the same number of images")
    size = input_size(processor)
    views, weights = zip(*(view.evaluation_views(s, size) for s in sets))
    flat = [v for vs in views for v in vs]
    pix = pixel_values([im for v in flat for im in v], processor)
    w = torch.tensor(np.stack(weights), dtype=torch.float32, device=device)
    return pix.view(len(flat), k, *pix.shape[1:]).to(device), w


def _pooled(probs: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(B * V, C) per-view probabilities -> (B, C): their weighted mean over each sample's views."""
    return (probs.view(*w.shape, -1) * w[..., None]).sum(1)


def _per_view(items: Sequence | None, v: int) -> list | None:
    return None if items is None else [x for x in items for _ in range(v)]


def _decode(blip, model, ids, mask, tokens, adapter_names):
    with peft_names(model, adapter_names):
        return blip.text_decoder(input_ids=ids, attention_mask=mask, encoder_hidden_states=tokens,
                                 return_dict=True).logits


@torch.no_grad()
def logit_scores(model, processor, images: Images, template: Template, batch_size: int = 64,
                 index: bool = False, adapter_names: Sequence[str] | None = None, view: View = RESIZE) -> list[dict]:
    """Per sample: ``{"scores": {dim: expected level}, "probs": {dim: [p_bad..p_excellent]},
    "levels": {dim: most probable level}}``. A sample is one image or a tuple of images (full-reference:
    the image and its reference; ``index`` adds the image-index embeddings). ``adapter_names``: one
    adapter per sample (a mixed batch on an adapter set). With ``view`` crops, each dimension's level
    probabilities are averaged over the sample's windows, and the level that continues every window's
    caption is the most probable of that (weighted) average; ``batch_size`` counts windows."""
    blip, tok = _blip(model), processor.tokenizer
    level_ids = torch.tensor(check_level_words(tok))
    values = torch.arange(len(LEVELS), dtype=torch.float32)
    bos = blip.config.text_config.bos_token_id
    device = next(blip.parameters()).device
    out: list[dict] = []
    step = max(1, batch_size // len(view.positions()))
    for start in range(0, len(images), step):
        names = None if adapter_names is None else adapter_names[start:start + step]
        pix, w = _pixels(images[start:start + step], processor, device, view)
        n, v = w.shape
        names = _per_view(names, v)
        embeds = encode_images(model, pix, index, names)
        chosen: list[dict[str, int]] = [{} for _ in range(n)]
        results = [{"scores": {}, "probs": {}, "levels": chosen[i]} for i in range(n)]
        for dim in template.dimensions:
            texts = _per_view([template.prompt(chosen[i], dim) for i in range(n)], v)
            enc = tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")
            ids = torch.cat([torch.full((n * v, 1), bos), enc.input_ids], 1).to(device)
            mask = torch.cat([torch.ones(n * v, 1, dtype=torch.long), enc.attention_mask], 1).to(device)
            logits = _decode(blip, model, ids, mask, embeds, names)
            last = mask.sum(1) - 1  # right padding: the rating position is each row's last real token
            probs = logits[torch.arange(n * v), last][:, level_ids.to(device)].float().softmax(-1)
            probs = _pooled(probs, w).cpu()
            for i in range(n):
                results[i]["probs"][dim] = probs[i].tolist()
                results[i]["scores"][dim] = float(probs[i] @ values)
                chosen[i][dim] = int(probs[i].argmax())
        out.extend(results)
    return out


@torch.no_grad()
def choice_probs(model, processor, images: Images, captions: Sequence[str], index: bool = True,
                 adapter_names: Sequence[str] | None = None, max_rows: int = 256, view: View = RESIZE) -> torch.Tensor:
    """(B, C) probabilities of the C candidate ``captions`` per sample: each caption's exact
    log-likelihood under the model (teacher-forced, every token to its end), softmaxed over the
    candidates. The distribution the model puts on its valid answers, with no generation; with
    ``view`` crops, the mean of the windows' distributions."""
    blip, tok = _blip(model), processor.tokenizer
    device = next(blip.parameters()).device
    enc = tok(list(captions), padding=True, return_tensors="pt")
    ids = enc.input_ids.clone()
    ids[:, 0] = blip.config.text_config.bos_token_id  # [CLS] -> [DEC], as in training
    ids, mask = ids.to(device), enc.attention_mask.to(device)
    c = len(captions)
    per = max(1, max_rows // (c * len(view.positions())))  # samples per forward
    out = []
    for start in range(0, len(images), per):
        pix, w = _pixels(images[start:start + per], processor, device, view)
        names = _per_view(None if adapter_names is None else adapter_names[start:start + per], w.shape[1])
        tokens = encode_images(model, pix, index, names)
        b = tokens.shape[0]
        logits = _decode(blip, model, ids.repeat(b, 1), mask.repeat(b, 1), tokens.repeat_interleave(c, 0),
                         _per_view(names, c))
        logp = logits[:, :-1].float().log_softmax(-1).gather(-1, ids.repeat(b, 1)[:, 1:, None])[..., 0]
        ll = (logp * mask.repeat(b, 1)[:, 1:]).sum(1).view(b, c)
        out.append(_pooled(ll.softmax(-1), w).cpu())
    return torch.cat(out) if out else torch.zeros(0, c)


def preference_scores(model, processor, pairs: Images, index: bool = True,
                      adapter_names: Sequence[str] | None = None, both_orders: bool = True, view: View = RESIZE) -> list[dict]:
    """ds by logits, per pair: ``preference`` (0 first better, 1 second, 0.5 similar: the most probable
    answer), its ``probability``, and ``probs`` of first / second / similar.

    ``both_orders`` (the default) asks the model about (A, B) and (B, A) and averages the two answers
    (first <-> second swapped): the usual cure for position bias in pairwise judges, and it makes
    swapping the two images swap the answer exactly. A full-reference pair keeps its reference last.
    """
    captions = [render_preference(c) for c in PREFERENCES]
    probs = choice_probs(model, processor, pairs, captions, index, adapter_names, view=view)
    if both_orders:
        swapped = [(p[1], p[0], *p[2:]) for p in pairs]
        probs = (probs + choice_probs(model, processor, swapped, captions, index, adapter_names, view=view)[:, [1, 0, 2]]) / 2
    out = []
    for p in probs.tolist():
        best = int(np.argmax(p))
        out.append({"preference": PREFERENCE_VALUE[PREFERENCES[best]], "probability": p[best],
                    "probs": dict(zip(PREFERENCES, p))})
    return out


def ranking_scores(model, processor, groups: Images, k: int, index: bool = True,
                   adapter_names: Sequence[str] | None = None, view: View = RESIZE) -> list[dict]:
    """ms by logits, per group of ``k`` stimuli: the probability of each of the k! rankings gives each
    image's ``expected_ranks`` (1 best .. k); ``ranking`` orders the images by it (image numbers, best
    first), ``probability`` is that ranking's own probability."""
    perms = list(itertools.permutations(range(1, k + 1)))
    probs = choice_probs(model, processor, groups, [render_ranking(p) for p in perms], index, adapter_names,
                         view=view).numpy()
    position = np.array([[p.index(i + 1) + 1 for i in range(k)] for p in perms], dtype=np.float64)  # (k!, k)
    out = []
    for row in probs:
        expected = row @ position
        ranking = [int(i) + 1 for i in np.argsort(expected, kind="stable")]
        out.append({"ranking": ranking, "expected_ranks": expected.tolist(),
                    "probability": float(row[perms.index(tuple(ranking))])})
    return out


def protocol_logits(model, processor, images: Images, protocol: Protocol, template: Template, batch_size: int = 64,
                    index: bool = False, adapter_names: Sequence[str] | None = None, view: View = RESIZE) -> list[dict]:
    """The protocol's answer from the logits, per sample: ss ``scores`` (with ``probs`` and ``levels``), ds
    ``preference`` (:func:`preference_scores`), ms ``ranking`` of ``protocol.k`` (:func:`ranking_scores`)."""
    by_logits = {
        SingleStimulus: lambda: logit_scores(model, processor, images, template, batch_size=batch_size, index=index,
                                             adapter_names=adapter_names, view=view),
        DoubleStimulus: lambda: preference_scores(model, processor, images, index, adapter_names, view=view),
        MultipleStimulus: lambda: ranking_scores(model, processor, images, protocol.k, index, adapter_names, view=view),
    }
    return by_logits[type(protocol)]()


@torch.no_grad()
def generate_captions(model, processor, images: Images, prompt: str = "", batch_size: int = 64,
                      max_new_tokens: int = 48, index: bool = False, view: View = RESIZE) -> list[str]:
    """Greedy captions, decoded without special tokens.

    ``prompt`` (BLIP's conditional captioning, like "a picture of") starts every caption; the
    template's fixed first words ("noise is") are the natural prompt. The returned text includes it.
    A sample may be a tuple of images (ds, ms, full-reference): the decoder sees all of them. With
    ``view`` crops, the caption describes the central window of every image.
    """
    blip = _blip(model)
    device = next(blip.parameters()).device
    tok = processor.tokenizer
    cfg = blip.config.text_config
    size = input_size(processor)
    out: list[str] = []
    for start in range(0, len(images), batch_size):
        chunk = [view.central(im if isinstance(im, tuple) else (im,), size) for im in images[start:start + batch_size]]
        tokens = encode_images(model, _pixels(chunk, processor, device)[0], index)
        n = tokens.shape[0]
        enc = tok([prompt] * n, return_tensors="pt")  # [CLS] prompt [SEP]: [CLS] -> [DEC], [SEP] dropped
        ids = enc.input_ids[:, :-1].clone().to(device)
        ids[:, 0] = cfg.bos_token_id
        ids = blip.text_decoder.generate(
            input_ids=ids, attention_mask=enc.attention_mask[:, :-1].to(device), encoder_hidden_states=tokens,
            encoder_attention_mask=torch.ones(tokens.shape[:2], dtype=torch.long, device=device),
            eos_token_id=cfg.sep_token_id, pad_token_id=cfg.pad_token_id, max_new_tokens=max_new_tokens,
            num_beams=1, do_sample=False)
        out.extend(t.strip() for t in tok.batch_decode(ids, skip_special_tokens=True))
    return out
