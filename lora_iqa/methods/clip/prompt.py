"""``adapter.method=clip_prompt``: CLIP-AGIQA-style multimodal prompt learning on a frozen ``CLIPModel``.

Scoring (CLIP-IQA's antonym prompts, so no user text is needed): for dimension d,
``p_d = softmax(s cos(img, text(good_d)), s cos(img, text(bad_d)))[good]`` with ``s`` CLIP's own
temperature, and the score is ``4 p_d`` on the manifests' 0..4 scale.

* **Zero-shot** (CLIP-IQA): ``"a sharp photo."`` vs ``"a blurry photo."``.
* **Prompt learning** (CoOp + VPT, as CLIP-AGIQA / MaPLe): ``n_ctx`` learnable context vectors take the
  place of the word embeddings of ``"x x x x sharp photo."`` (one context per dimension, or one shared),
  and ``n_vis`` learnable visual tokens join the ViT's token sequence after the patch embedding,
  replaced by fresh ones before each of the first ``prompt_depth`` encoder layers. The antonym words
  stay fixed. Loss: binary cross-entropy of ``p_d`` against ``label_d / 4``.
* **AI-generated images** (``align_weight > 0``): CLIP's contrastive loss between the prompted image
  features and the images' generation prompts (the manifest's ``prompt`` column, as the AGIQA-3K and
  AIGCIQA2023 readers write it) is added, so the prompts keep text-image alignment.

The prompts enter through forward hooks on CLIP's own modules (token embedding, vision embeddings,
encoder layers), registered only during a prompted forward; CLIP's parameters never train.

Saved form (the adapter-directory convention): ``prompt_model.safetensors`` (the prompt tensors) plus
``lora_iqa.json`` and a model card, written by :func:`lora_iqa.training.card.save_trained`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lora_iqa.config import AdapterConfig
from lora_iqa.errors import LoraIqaError
from lora_iqa.methods.interface import ImageScorer
from lora_iqa.methods.clip.base import ANTONYMS, PLACEHOLDER, PROMPT, ZERO_SHOT_CTX

TEMPLATE_VERSION = "clip-antonym-v1"
WEIGHTS_NAME = "prompt_model.safetensors"


def _unit(out) -> torch.Tensor:
    """CLIP's projected features (a tensor, or the output object transformers 5 returns), L2-normalised."""
    return F.normalize(getattr(out, "pooler_output", out), dim=-1)


class ClipPromptLearner(ImageScorer):
    """Learnable text context + visual prompt tokens around a frozen ``CLIPModel``.

    ``forward(pixel_values, labels=None, ...)`` returns ``.logits`` ``s (cos_good - cos_bad)`` (N, D)
    and, with labels, ``.loss``; :meth:`scores` gives ``4 sigmoid(logits)``.
    """

    def __init__(self, clip, processor, adapter: AdapterConfig, dimensions: Sequence[str], seed: int = 0):
        super().__init__()
        self.clip, self.processor, self.adapter, self.dimensions = clip, processor, adapter, tuple(dimensions)
        clip.requires_grad_(False)
        clip.eval()
        unknown = [d for d in self.dimensions if d not in ANTONYMS]
        if unknown:
            raise LoraIqaError(f"key 'data.dimensions': no antonym prompts for {unknown} (known: {', '.join(ANTONYMS)})")
        n_layers = clip.config.vision_config.num_hidden_layers
        if adapter.n_vis and adapter.prompt_depth > n_layers:
            raise LoraIqaError(f"key 'adapter.prompt_depth' ({adapter.prompt_depth}) exceeds the CLIP vision "
                               f"encoder's {n_layers} layers")
        tw, vw = clip.config.text_config.hidden_size, clip.config.vision_config.hidden_size
        g = torch.Generator().manual_seed(seed)
        groups = len(self.dimensions) if adapter.ctx_per_dim else 1
        depth = adapter.prompt_depth if adapter.n_vis else 0
        self.ctx = torch.nn.Parameter(0.02 * torch.randn(groups, adapter.n_ctx, tw, generator=g))
        # without visual prompts this is empty and frozen (DDP would wait for its gradient forever)
        self.vis = torch.nn.Parameter(0.02 * torch.randn(depth, adapter.n_vis, vw, generator=g), requires_grad=depth > 0)
        tok = processor.tokenizer
        ph = tok(PLACEHOLDER, add_special_tokens=False)["input_ids"]
        if len(ph) != 1:
            raise LoraIqaError(f"tokenizer: the placeholder '{PLACEHOLDER}' is not a single token ({ph})")
        ctx = " ".join([PLACEHOLDER] * adapter.n_ctx)
        words = [w for d in self.dimensions for w in ANTONYMS[d]]
        self._tokens = {"learned": tok([PROMPT.format(ctx=ctx, word=w) for w in words], padding=True, return_tensors="pt"),
                        "zero_shot": tok([PROMPT.format(ctx=ZERO_SHOT_CTX, word=w) for w in words], padding=True,
                                         return_tensors="pt")}
        rows, cols = (self._tokens["learned"]["input_ids"] == ph[0]).nonzero(as_tuple=True)
        if len(rows) != len(words) * adapter.n_ctx:
            raise LoraIqaError(f"tokenizer: the prompts do not hold exactly {adapter.n_ctx} placeholder tokens each")
        self._ctx_rows, self._ctx_cols = rows, cols  # row r is dimension r // 2 (good, bad)
        self._ctx_group = rows // 2 if adapter.ctx_per_dim else torch.zeros_like(rows)
        self._ctx_slot = torch.arange(len(rows)) % adapter.n_ctx

    def train(self, mode: bool = True):
        """Only the prompts train: CLIP stays in eval mode (no dropout) whatever the loop asks."""
        super().train(mode)
        self.clip.eval()
        return self

    @contextlib.contextmanager
    def _prompted(self, text: bool, vision: bool) -> Iterator[None]:
        handles = []
        if text:
            def text_hook(_mod, _inp, out):
                out = out.clone()
                out[self._ctx_rows, self._ctx_cols] = self.ctx[self._ctx_group, self._ctx_slot].to(out.dtype)
                return out

            handles.append(self.clip.text_model.embeddings.token_embedding.register_forward_hook(text_hook))
        if vision and self.vis.shape[0]:
            n = self.vis.shape[1]

            def with_prompts(h: torch.Tensor, i: int, replace: bool) -> torch.Tensor:
                p = self.vis[i].to(h.dtype).expand(h.shape[0], -1, -1)
                return torch.cat([h[:, :-n] if replace else h, p], dim=1)

            handles.append(self.clip.vision_model.embeddings.register_forward_hook(
                lambda _m, _i, out: with_prompts(out, 0, False)))
            for i in range(1, self.vis.shape[0]):
                def deep_hook(_mod, args, kwargs, i=i):
                    if args:
                        return (with_prompts(args[0], i, True), *args[1:]), kwargs
                    return args, {**kwargs, "hidden_states": with_prompts(kwargs["hidden_states"], i, True)}

                handles.append(self.clip.vision_model.encoder.layers[i].register_forward_pre_hook(deep_hook, with_kwargs=True))
        try:
            yield
        finally:
            for h in handles:
                h.remove()

    def text_features(self, zero_shot: bool = False) -> torch.Tensor:
        """Normalised text features (2D, E): (good, bad) per dimension in order."""
        t = self._tokens["zero_shot" if zero_shot else "learned"]
        with self._prompted(text=not zero_shot, vision=False):
            out = self.clip.get_text_features(input_ids=t["input_ids"], attention_mask=t["attention_mask"])
        return _unit(out)

    def image_features(self, pixel_values: torch.Tensor, zero_shot: bool = False) -> torch.Tensor:
        with self._prompted(text=False, vision=not zero_shot):
            out = self.clip.get_image_features(pixel_values=pixel_values)
        return _unit(out)

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None,
                prompt_ids: torch.Tensor | None = None, prompt_mask: torch.Tensor | None = None,
                zero_shot: bool = False, text_feats: torch.Tensor | None = None) -> SimpleNamespace:
        """Logits (N, D); with ``labels`` (N, D on 0..4) the BCE loss, plus the alignment loss when the
        images' generation prompts are given (``prompt_ids`` / ``prompt_mask``)."""
        t = self.text_features(zero_shot) if text_feats is None else text_feats
        img = self.image_features(pixel_values, zero_shot)
        scale = self.clip.logit_scale.exp()
        sims = (scale * img @ t.T).view(len(img), -1, 2)
        logits = sims[..., 0] - sims[..., 1]
        loss = None
        if labels is not None:
            loss = F.binary_cross_entropy_with_logits(logits, (labels / 4).clamp(0, 1))
            if prompt_ids is not None and self.adapter.align_weight > 0:
                out = self.clip.get_text_features(input_ids=prompt_ids, attention_mask=prompt_mask)
                g = _unit(out)
                pair = scale * img @ g.T
                target = torch.arange(len(img), device=pair.device)
                loss = loss + self.adapter.align_weight * 0.5 * (F.cross_entropy(pair, target) + F.cross_entropy(pair.T, target))
        return SimpleNamespace(loss=loss, logits=logits)

    @torch.no_grad()
    def scores(self, images: Sequence[np.ndarray], zero_shot: bool = False, batch_size: int = 64) -> list[dict[str, float]]:
        """Per-image scores on 0..4 for each dimension (``zero_shot``: the CLIP-IQA antonym prompts alone)."""
        return self.pooled(lambda crops: self.view_scores(crops, zero_shot), images, batch_size)

    @torch.no_grad()
    def view_scores(self, crops: list, zero_shot: bool = False) -> list[dict[str, float]]:
        """Per-crop scores on 0..4 for each dimension."""
        from lora_iqa.data.pixels import pixel_values

        logits = self(pixel_values(crops, self.processor), zero_shot=zero_shot, text_feats=self.text_features(zero_shot)).logits
        return [dict(zip(self.dimensions, (4 * torch.sigmoid(row)).tolist())) for row in logits]

    def save_pretrained(self, path: str | Path, **_) -> None:
        """Write the prompt tensors (``prompt_model.safetensors``) into ``path``."""
        from safetensors.torch import save_file

        save_file({"ctx": self.ctx.detach().contiguous(), "vis": self.vis.detach().contiguous()},
                  str(Path(path) / WEIGHTS_NAME), metadata={"format": "pt", "method": "clip_prompt"})

    def load_prompts(self, path: str | Path) -> None:
        """Load ``prompt_model.safetensors`` of an adapter directory; a bad file is a one-line error."""
        from safetensors.torch import load_file

        f = Path(path) / WEIGHTS_NAME
        try:
            tensors = load_file(str(f))
        except FileNotFoundError:
            raise LoraIqaError(f"{f}: file not found") from None
        except Exception as e:  # safetensors raises several types for truncated or corrupt files
            raise LoraIqaError(f"{f}: cannot read prompt weights ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
        want = {"ctx": self.ctx, "vis": self.vis}
        for k, p in want.items():
            if k not in tensors or tuple(tensors[k].shape) != tuple(p.shape):
                got = tuple(tensors[k].shape) if k in tensors else "missing"
                raise LoraIqaError(f"{f}: tensor '{k}' is {got}, expected shape {tuple(p.shape)}")
        with torch.no_grad():
            for k, p in want.items():
                p.copy_(tensors[k])


def generation_prompt(item) -> str:
    """An AI-generated image's text prompt (the manifest's ``prompt`` column), for the alignment loss."""
    prompt = (item.extra or {}).get("prompt")
    if not prompt:
        raise LoraIqaError(f"{item.image}: no 'prompt' column value in the manifest (adapter.align_weight > 0 "
                           "needs each image's generation prompt)")
    return prompt
