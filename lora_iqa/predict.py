"""Predictions from a (possibly adapted) captioner: logit scores and generated captions, batched.

Logit scoring (Q-Align / Q-SiT style, no free generation): the caption is forced to the template;
at each dimension's rating position the softmax over the five level words gives a distribution
whose expected value (0..4) is the score. The level word with the highest probability fills that
position before the next dimension is read, so later dimensions see a well-formed caption.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from lora_iqa.model import check_level_words, pixel_values
from lora_iqa.template import LEVELS, Template


def _blip(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


@torch.no_grad()
def logit_scores(model, processor, images: Sequence[np.ndarray], template: Template,
                 batch_size: int = 64) -> list[dict]:
    """Per image: ``{"scores": {dim: expected level}, "probs": {dim: [p_bad..p_excellent]},
    "levels": {dim: most probable level}}``."""
    blip, tok = _blip(model), processor.tokenizer
    level_ids = torch.tensor(check_level_words(tok))
    values = torch.arange(len(LEVELS), dtype=torch.float32)
    bos = blip.config.text_config.bos_token_id
    device = next(blip.parameters()).device
    out: list[dict] = []
    for start in range(0, len(images), batch_size):
        pix = pixel_values(images[start:start + batch_size], processor).to(device)
        embeds = blip.vision_model(pixel_values=pix).last_hidden_state
        n = pix.shape[0]
        chosen: list[dict[str, int]] = [{} for _ in range(n)]
        results = [{"scores": {}, "probs": {}, "levels": chosen[i]} for i in range(n)]
        for dim in template.dimensions:
            texts = [template.prompt(chosen[i], dim) for i in range(n)]
            enc = tok(texts, add_special_tokens=False, padding=True, return_tensors="pt")
            ids = torch.cat([torch.full((n, 1), bos), enc.input_ids], 1).to(device)
            mask = torch.cat([torch.ones(n, 1, dtype=torch.long), enc.attention_mask], 1).to(device)
            logits = blip.text_decoder(input_ids=ids, attention_mask=mask, encoder_hidden_states=embeds,
                                       return_dict=True).logits
            last = mask.sum(1) - 1  # right padding: the rating position is each row's last real token
            probs = logits[torch.arange(n), last][:, level_ids.to(device)].float().softmax(-1).cpu()
            for i in range(n):
                results[i]["probs"][dim] = probs[i].tolist()
                results[i]["scores"][dim] = float(probs[i] @ values)
                chosen[i][dim] = int(probs[i].argmax())
        out.extend(results)
    return out


@torch.no_grad()
def generate_captions(model, processor, images: Sequence[np.ndarray], prompt: str = "", batch_size: int = 64,
                      max_new_tokens: int = 48) -> list[str]:
    """Greedy captions, decoded without special tokens.

    ``prompt`` (BLIP's conditional captioning, like "a picture of") starts every caption; the
    template's fixed first words ("noise is") are the natural prompt. The returned text includes it.
    """
    blip = _blip(model)
    device = next(blip.parameters()).device
    tok = processor.tokenizer
    out: list[str] = []
    for start in range(0, len(images), batch_size):
        pix = pixel_values(images[start:start + batch_size], processor).to(device)
        kwargs = {}
        if prompt:
            enc = tok([prompt] * pix.shape[0], return_tensors="pt")  # [CLS] prompt [SEP]; BLIP swaps in [DEC], drops [SEP]
            kwargs = {"input_ids": enc.input_ids.to(device), "attention_mask": enc.attention_mask.to(device)}
        ids = blip.generate(pixel_values=pix, max_new_tokens=max_new_tokens, num_beams=1, do_sample=False, **kwargs)
        out.extend(t.strip() for t in tok.batch_decode(ids, skip_special_tokens=True))
    return out
