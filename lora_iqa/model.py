"""The base captioner (BLIP), its processor and tokenizer, and LoRA / full fine-tuning attachment.

* ``load_base(name_or_path)``: any ``BlipForConditionalGeneration`` checkpoint by hub name or local
  path; ``scratch_base(words)``: a tiny randomly initialised BLIP with an offline tokenizer (the
  starting point of the embedded base, see ``lora_iqa.embedded``).
* ``attach(model, adapter_cfg)``: peft LoRA on the ViT attention and/or the BERT cross-attention, or
  full fine-tuning, with every part switchable frozen / lora / full.
* Multi-image conditioning (ds, ms, and every full-reference protocol): each image of a sample is
  encoded by the ViT, a learned image-index embedding (``add_image_index``: one vector per position,
  unit-scale random at the start, trained and saved with the adapter through peft's ``modules_to_save``) is added
  to its tokens, and the text decoder cross-attends to all of them (``encode_images``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from transformers import (
    BertTokenizerFast,
    BlipConfig,
    BlipForConditionalGeneration,
    BlipProcessor,
)

from lora_iqa.config import ADAPTER_METHODS, PROTOCOLS, REFERENCES, AdapterConfig
from lora_iqa.errors import LoraIqaError, first_line
from lora_iqa.template import DOMAINS, LEVELS

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
# Weights are read from safetensors only: a .bin is a pickle, and unpickling can run code.
SAFE_WEIGHTS = "model.safetensors"  # a full model's (and a base's)
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # a peft adapter's

# peft target-module regexes (names inside BlipForConditionalGeneration)
VISION_QKV = r"vision_model\.encoder\.layers\.\d+\.self_attn\.qkv"
VISION_PROJ = r"vision_model\.encoder\.layers\.\d+\.self_attn\.projection"
CROSS_QKV = r"text_decoder\.bert\.encoder\.layer\.\d+\.crossattention\.self\.(query|key|value)"
CROSS_OUT = r"text_decoder\.bert\.encoder\.layer\.\d+\.crossattention\.output\.dense"
TEXT_SELF = r"text_decoder\.bert\.encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"


def build_tokenizer(words: Sequence[str]) -> BertTokenizerFast:
    """An offline WordPiece tokenizer: BLIP's special tokens, ``words`` whole, and letters/digits as pieces."""
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    punct = list(".,:;!?-()/'\"%+")
    vocab = list(dict.fromkeys(SPECIAL + punct + chars + [f"##{c}" for c in chars] + sorted(words)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vocab.txt"
        path.write_text("\n".join(vocab) + "\n")
        tok = BertTokenizerFast(str(path), do_lower_case=True, model_max_length=96)  # vocab file: positional in v4 and v5
    tok.add_special_tokens({"bos_token": "[DEC]"})
    return tok


def tiny_config(vocab_size: int, tokenizer: BertTokenizerFast, image_size: int = 96, patch: int = 8,
                hidden: int = 128, vision_layers: int = 4, text_layers: int = 3, heads: int = 4,
                mlp_ratio: int = 2) -> BlipConfig:
    """A small BLIP config of the real classes. initializer_range is 0.02 (BLIP's vision default,
    1e-10, gives a tower that never learns)."""
    ids = tokenizer.convert_tokens_to_ids
    return BlipConfig(
        vision_config=dict(hidden_size=hidden, intermediate_size=hidden * mlp_ratio, num_hidden_layers=vision_layers,
                           num_attention_heads=heads, image_size=image_size, patch_size=patch,
                           initializer_range=0.02),
        text_config=dict(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=hidden * mlp_ratio,
                         num_hidden_layers=text_layers, num_attention_heads=heads, encoder_hidden_size=hidden,
                         max_position_embeddings=96, bos_token_id=ids("[DEC]"), pad_token_id=ids("[PAD]"),
                         sep_token_id=ids("[SEP]"), eos_token_id=ids("[SEP]"), initializer_range=0.02),
        projection_dim=hidden,
    )


def scratch_base(words: Sequence[str], seed: int = 0, **geometry: int) -> tuple[BlipForConditionalGeneration, BlipProcessor]:
    """A tiny, randomly initialised BLIP captioner with an offline tokenizer covering ``words``."""
    from transformers import BlipImageProcessor

    tok = build_tokenizer(words)
    cfg = tiny_config(len(tok), tok, **geometry)
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(cfg)
    size = cfg.vision_config.image_size
    image_processor = BlipImageProcessor(size={"height": size, "width": size})
    return model, BlipProcessor(image_processor=image_processor, tokenizer=tok)


def load_base(name_or_path: str, quantize: str = "none") -> tuple[BlipForConditionalGeneration, BlipProcessor]:
    """Load a BLIP captioner and its processor by hub name or local path (offline when it is local).

    ``quantize`` (``4bit`` NF4 or ``8bit``) loads the linear layers through bitsandbytes for QLoRA; the
    vision patch embedding and the LM head stay unquantized.
    """
    kwargs = {}
    if quantize != "none":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=quantize == "4bit", load_in_8bit=quantize == "8bit", bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.float32, llm_int8_skip_modules=["decoder", "cls"])
    try:  # safetensors only: a pytorch_model.bin is a pickle, which can run code when it is loaded
        model = BlipForConditionalGeneration.from_pretrained(name_or_path, use_safetensors=True, **kwargs)
        processor = BlipProcessor.from_pretrained(name_or_path)
    except (OSError, ValueError, RuntimeError, SafetensorError) as e:
        raise load_error(name_or_path, "a BLIP captioner", e) from None
    check_level_words(processor.tokenizer)
    model.eval()
    return model, processor


def load_error(name_or_path: str, what: str, e: Exception) -> LoraIqaError:
    """One line for a checkpoint ``from_pretrained`` could not load; missing or corrupt weights are named as such."""
    local = Path(name_or_path)
    if local.is_dir() and not any(local.glob("*.safetensors")):
        return missing_weights(local / SAFE_WEIGHTS, "*.bin")
    why = first_line(e)
    if isinstance(e, SafetensorError):
        why = f"{SAFE_WEIGHTS}: corrupt or truncated safetensors ({why})"
    return LoraIqaError(f"{name_or_path}: cannot load {what} ({why})")


def missing_weights(weights: Path, pickles: str) -> LoraIqaError:
    """``weights`` (safetensors) is missing: one line, naming a pickle beside it (glob ``pickles``) if there
    is one, which is never loaded (unpickling can run code)."""
    found = sorted(p.name for p in weights.parent.glob(pickles))
    return LoraIqaError(f"{weights}: not found" + (f" (only {found[0]}, a pickle, which lora_iqa does not load: "
                                                   "convert it to safetensors)" if found else ""))


def check_level_words(tokenizer) -> list[int]:
    """Token ids of the level words; each must be one token for logit scoring."""
    ids = []
    for word in LEVELS:
        toks = tokenizer.tokenize(word)
        if len(toks) != 1:
            raise LoraIqaError(f"tokenizer: level word '{word}' is not a single token ({toks})")
        ids.append(tokenizer.convert_tokens_to_ids(toks[0]))
    return ids


def fingerprint(model: torch.nn.Module) -> str:
    """sha256 over the base weights (names, shapes, bytes): identifies the exact base an adapter needs."""
    h = hashlib.sha256()
    for name, t in sorted(_base_state(model).items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _base_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Base-weight tensors, with peft's wrapping, LoRA tensors and the image-index embedding (which
    belongs to each multi-image adapter) removed, and tied weights once."""
    state, seen = {}, set()
    for name, t in model.state_dict().items():
        if "lora_" in name or "modules_to_save" in name or "trainable_tokens" in name or IMAGE_INDEX in name:
            continue
        name = name.replace("base_model.model.", "").replace(".token_adapter", "").replace(".base_layer", "")
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        state[name] = t
    return state


def target_modules(adapter: AdapterConfig) -> str:
    """One peft ``target_modules`` regex for the parts set to ``lora``."""
    modes = adapter.part_modes()
    pats = []
    if modes["vision"] == "lora":
        pats += [VISION_QKV] + ([VISION_PROJ] if adapter.vision_projection else [])
    if modes["cross"] == "lora":
        pats += [CROSS_QKV] + ([CROSS_OUT] if adapter.cross_output else [])
    if modes["text"] == "lora":
        pats.append(TEXT_SELF)
    return rf"^(?:base_model\.model\.)?(?:{'|'.join(pats)})$"


IMAGE_INDEX = "image_index"  # the BLIP submodule holding the image-index embeddings
WORD_EMBEDDINGS = "word_embeddings"  # the text decoder's token embeddings (tied to its output layer)
MAX_IMAGES = 8  # image positions an index embedding has (ms k <= 6, plus the reference)
# Unit-scale like the ViT's layer-normed tokens. Measured (ds, embedded base, 300 steps): a zero start
# never learned to tell the images apart (pairwise accuracy 0.50); std 1 reached 0.80.
INDEX_STD = 1.0


def add_image_index(blip: BlipForConditionalGeneration) -> BlipForConditionalGeneration:
    """Give ``blip`` an image-index embedding (``MAX_IMAGES`` x hidden, N(0, INDEX_STD^2), seeded by the
    caller's torch seed) if it has none; returns it. A multi-image adapter trains its own copy (peft
    ``modules_to_save``), so one base serves adapters of every protocol; ss adapters never add it.
    """
    if not hasattr(blip, IMAGE_INDEX):
        emb = torch.nn.Embedding(MAX_IMAGES, blip.config.vision_config.hidden_size)
        torch.nn.init.normal_(emb.weight, std=INDEX_STD)
        emb.to(next(blip.parameters()).device)
        setattr(blip, IMAGE_INDEX, emb)
    return blip


def peft_names(model, adapter_names: Sequence[str] | None):
    """A context in which peft routes each batch row through its own adapter (a mixed batch);
    a no-op for ``None``. Uses the hook that ``PeftModel.forward(adapter_names=...)`` uses."""
    if adapter_names is None:
        return nullcontext()
    return model.base_model._enable_peft_forward_hooks(adapter_names=list(adapter_names))


def encode_images(model, pixels: torch.Tensor, index: bool, adapter_names: Sequence[str] | None = None) -> torch.Tensor:
    """(B, k, 3, S, S) pixels -> (B, k*N, D) tokens the text decoder cross-attends to.

    Every image goes through the ViT; with ``index`` the image-index embedding of its position is
    added to its tokens (so the decoder knows which image a token came from). ``adapter_names``: one
    adapter per row (a mixed batch).
    """
    blip = _unwrap(model)
    b, k = pixels.shape[:2]
    rows = None if adapter_names is None else [n for n in adapter_names for _ in range(k)]
    with peft_names(model, rows):
        tokens = blip.vision_model(pixel_values=pixels.flatten(0, 1)).last_hidden_state
    tokens = tokens.view(b, k, *tokens.shape[1:])
    if index:
        with peft_names(model, adapter_names):
            positions = torch.arange(k, device=pixels.device).expand(b, k)
            tokens = tokens + getattr(blip, IMAGE_INDEX)(positions).unsqueeze(2)
    return tokens.flatten(1, 2)


def _unwrap(model) -> BlipForConditionalGeneration:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class Captioner(torch.nn.Module):
    """The training forward for any number of images per sample (what Accelerate prepares and DDP wraps).

    4-D pixels (one image per sample, no index) go through BLIP's own forward; (B, k, 3, S, S) pixels
    through :func:`encode_images` and the text decoder, with the same caption loss.
    """

    def __init__(self, model, index: bool) -> None:
        super().__init__()
        self.model, self.index = model, index

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor):
        if pixel_values.dim() == 4:
            return self.model(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention_mask,
                              labels=labels)
        tokens = encode_images(self.model, pixel_values, self.index)
        return _unwrap(self.model).text_decoder(input_ids=input_ids, attention_mask=attention_mask,
                                                encoder_hidden_states=tokens, labels=labels, reduction="mean")


def attach(model: BlipForConditionalGeneration, adapter: AdapterConfig, name: str = "default",
           quantized: bool = False, tokens: Sequence[int] = ()):
    """Make the parts trainable as ``adapter`` says; returns a PeftModel for LoRA, the model for full.

    A model with an image-index embedding (:func:`add_image_index`) trains it too: as peft
    ``modules_to_save`` (saved in the adapter) for LoRA, as a plain weight for full fine-tuning.
    ``tokens``: token ids whose embeddings (and the tied output rows) LoRA also trains, through peft's
    ``trainable_token_indices``: a frozen decoder cannot put probability on tokens its base never learned
    to emit (the ds/ms answer words of a base pre-trained on quality captions only).

    (AdapterConfig refuses ``full`` parts with ``method=lora``: an adapter directory holds LoRA
    tensors only, so fully trained base weights would be lost on save.)
    """
    if adapter.method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    if quantized:
        from peft import prepare_model_for_kbit_training

        # Non-reentrant checkpointing needs no "inputs require grad" hook; that hook makes BLIP's text
        # embeddings output a leaf that its in-place position-embedding add then breaks in backward.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
        for module in model.modules():  # bitsandbytes repacks 4-bit CPU weights for inference at the first
            if hasattr(module, "support_avx512bf16_for_cpu"):  # eval and never unpacks them: training
                module.support_avx512bf16_for_cpu = False  # after a validation would take a no-grad path
    lcfg = LoraConfig(r=adapter.r, lora_alpha=adapter.alpha, lora_dropout=adapter.dropout,
                      target_modules=target_modules(adapter), use_rslora=adapter.use_rslora,
                      use_dora=adapter.use_dora, bias="none",
                      modules_to_save=[IMAGE_INDEX] if hasattr(model, IMAGE_INDEX) else None,
                      trainable_token_indices={WORD_EMBEDDINGS: sorted(set(tokens))} if tokens else None)
    return get_peft_model(model, lcfg, adapter_name=name)  # peft freezes every base weight


def count_params(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts, tied weights counted once."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if p.data_ptr() in seen:
            continue
        seen.add(p.data_ptr())
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


GRAY_STRETCH = (1.0, 4.0, 16.0)  # contrast gains of the three channels made from one grayscale image


def pixel_values(images: Sequence[np.ndarray], processor: BlipProcessor, gray: str = "windows") -> torch.Tensor:
    """Float [0,1] images (H,W) or (H,W,3) -> normalised (B,3,S,S) tensors at the processor's size/mean/std.

    Done in torch (bicubic, antialiased) rather than through PIL so 16-bit and HU-windowed data keep
    their full precision.
    """
    ip = processor.image_processor
    size = int(ip.size["height"]) if "height" in ip.size else int(ip.size["shortest_edge"])
    mean = torch.tensor(ip.image_mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(ip.image_std, dtype=torch.float32).view(1, 3, 1, 1)
    out = []
    for img in images:
        t = torch.as_tensor(np.asarray(img, dtype=np.float32))
        if t.ndim == 2:
            t = gray_channels(t) if gray == "windows" else t.unsqueeze(0).expand(3, -1, -1)
        else:
            t = t.permute(2, 0, 1)
        t = t.unsqueeze(0)
        if t.shape[-2:] != (size, size):
            t = F.interpolate(t, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
        out.append(t.clamp(0, 1))
    return (torch.cat(out) - mean) / std


def gray_channels(img: torch.Tensor) -> torch.Tensor:
    """One grayscale image -> 3 channels at contrast gains 1, 4, 16 about mid-grey.

    For CT windowed at W400/L40 these are the W400, W100 and W25 windows at L40: the multi-window
    stack CT models commonly use, which makes noise, streaks and low-contrast lesions visible to
    the ViT instead of wasting two of its three input channels on copies.
    """
    return torch.stack([((img - 0.5) * g + 0.5).clamp(0, 1) for g in GRAY_STRETCH])


REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")  # owner/name, as on the Hub


def resolve_adapter(path_or_id: str | Path) -> Path:
    """An adapter (or full fine-tune) directory: a local path as it is, or, when the argument is not an
    existing local path but looks like a Hub repo id (``owner/name``), its snapshot downloaded with
    ``huggingface_hub.snapshot_download`` (cached; offline it comes from the cache). The endpoint is
    ``HF_ENDPOINT``, read now; the token is whatever huggingface_hub finds (``HF_TOKEN``, a login).
    """
    path = Path(path_or_id)
    name = str(path_or_id)
    if path.exists() or not REPO_ID.match(name):
        return path
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(name, endpoint=os.environ.get("HF_ENDPOINT") or None))
    except (RepositoryNotFoundError, GatedRepoError):
        why = "not found on the Hub (no such model repo, or a private/gated one and no valid token in HF_TOKEN)"
    except LocalEntryNotFoundError:
        why = ("cannot be downloaded: " + ("HF_HUB_OFFLINE is set" if constants.is_offline_mode()
                                           else "the Hub cannot be reached") + " and it is not in the local Hub cache")
    except Exception as e:  # other HTTP or connection errors
        why = f"downloading it from the Hub failed ({type(e).__name__}: {' '.join(str(e).split())[:300]})"
    raise LoraIqaError(f"{name}: not a local directory, and {why}")


def read_meta(adapter_dir: str | Path) -> dict:
    """The validated ``lora_iqa.json`` of an adapter (or full fine-tune) directory or Hub repo id.

    Older adapters' defaults are filled in: protocol ``ss``, reference ``nr``, images 1, method from
    ``config.adapter.method`` (else ``lora``). Anything else wrong is one line naming the file and key.
    """
    root = resolve_adapter(adapter_dir)
    path = root / "lora_iqa.json"
    where = path if root == Path(adapter_dir) else f"{adapter_dir} (Hub): lora_iqa.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise LoraIqaError(f"{where}: not found (is {adapter_dir} a lora_iqa adapter directory?)") from None
    except (OSError, ValueError) as e:  # ValueError: not UTF-8 text, or not JSON
        raise LoraIqaError(f"{where}: unreadable ({e})") from None
    return check_meta(meta, where)


def check_meta(meta, where: str | Path) -> dict:
    """``meta`` (a parsed lora_iqa.json) with its keys and their types checked and the defaults filled in."""
    def bad(key: str, why: str) -> LoraIqaError:
        return LoraIqaError(f"{where}: key '{key}' {why}")

    def whole(v, least: int) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= least

    if not isinstance(meta, dict):
        raise LoraIqaError(f"{where}: not a JSON object (a JSON {type(meta).__name__})")
    for key in ("dimensions", "base", "config"):
        if key not in meta:
            raise bad(key, "is missing")
    config = meta["config"]
    if not isinstance(config, dict):
        raise bad("config", f"must be a mapping (the training config), not {config!r:.60}")
    for key in ("adapter", "data"):
        if not isinstance(config.get(key, {}), dict):
            raise bad(f"config.{key}", "must be a mapping")
    if "seed" in config and not whole(config["seed"], 0):
        raise bad("config.seed", f"must be a whole number >= 0, not {config['seed']!r:.60}")
    meta = {"method": config.get("adapter", {}).get("method", "lora"), "protocol": "ss", "reference": "nr",
            "images": 1, **meta}
    for key, allowed in (("method", ADAPTER_METHODS), ("protocol", PROTOCOLS), ("reference", REFERENCES)):
        if not isinstance(meta[key], str) or meta[key] not in allowed:
            raise bad(key, f"names an unknown {key} {meta[key]!r:.60} (expected one of {', '.join(allowed)})")
    if "domain" in meta and (not isinstance(meta["domain"], str) or meta["domain"] not in DOMAINS):
        raise bad("domain", f"names an unknown domain {meta['domain']!r:.60} (expected one of {', '.join(DOMAINS)})")
    if not whole(meta["images"], 1):
        raise bad("images", f"must be a whole number >= 1, not {meta['images']!r:.60}")
    dims = meta["dimensions"]
    if not isinstance(dims, list) or not dims or not all(isinstance(d, str) and d for d in dims):
        raise bad("dimensions", f"must be a non-empty list of dimension names, not {dims!r:.60}")
    base = meta["base"]
    if not isinstance(base, dict):
        raise bad("base", f"must be a mapping with name_or_path and fingerprint, not {base!r:.60}")
    for key in ("name_or_path", "fingerprint"):
        if not isinstance(base.get(key), str) or not base[key]:
            raise bad(f"base.{key}", "is missing" if key not in base
                      else f"must be a non-empty string, not {base[key]!r:.60}")
    if "step" in meta and not whole(meta["step"], 0):
        raise bad("step", f"must be a whole number >= 0, not {meta['step']!r:.60}")
    if "metrics" in meta and not isinstance(meta["metrics"], dict):
        raise bad("metrics", "must be a mapping")
    return meta


def require_adapter_weights(adapter_dir: str | Path) -> Path:
    """A peft adapter directory's ``adapter_model.safetensors``; refused in one line if it is missing
    (an ``adapter_model.bin`` is a pickle, which can run code when loaded: lora_iqa never reads one)."""
    weights = Path(adapter_dir) / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise missing_weights(weights, "adapter_model*.bin")
    return weights


def load_trained(adapter_dir: str | Path, base: str | None = None):
    """Load an adapter directory (or Hub repo id) onto its base (or a full fine-tune): (model, processor, meta).

    Weights are read from safetensors only. Refuses an adapter whose base fingerprint differs from the
    base it is loaded onto.
    """
    adapter_dir = resolve_adapter(adapter_dir)
    meta = read_meta(adapter_dir)
    if meta["method"] == "clip_prompt":  # prompt tensors on a CLIP base: the learner scores like a model
        from lora_iqa.clip_prompt import load_prompt_adapter

        learner, meta = load_prompt_adapter(adapter_dir, base)
        return learner, learner.processor, meta
    if (adapter_dir / "adapter_config.json").exists():
        from peft import PeftModel

        weights = require_adapter_weights(adapter_dir)
        base_name = base or meta["base"]["name_or_path"]
        model, processor = load_base(base_name)
        check_base(model, meta, adapter_dir, base_name)
        if multi_image(meta):
            add_image_index(model)
        try:
            model = PeftModel.from_pretrained(model, str(adapter_dir))
        except SafetensorError as e:
            raise LoraIqaError(f"{weights}: corrupt or truncated safetensors ({first_line(e)})") from None
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
            raise LoraIqaError(f"{adapter_dir}: cannot load the adapter ({type(e).__name__}: "
                               f"{first_line(e)})") from None
    else:
        model, processor = load_base(str(adapter_dir))
        if multi_image(meta):  # transformers does not know the extra module: read its weight from the file
            from safetensors import safe_open

            add_image_index(model)
            weights = adapter_dir / SAFE_WEIGHTS
            try:
                with safe_open(str(weights), "pt") as f:
                    getattr(model, IMAGE_INDEX).weight.data.copy_(f.get_tensor(f"{IMAGE_INDEX}.weight"))
            except (OSError, RuntimeError, SafetensorError) as e:
                raise LoraIqaError(f"{weights}: no usable '{IMAGE_INDEX}.weight' ({first_line(e)})") from None
    model.eval()
    return model, processor, meta


def multi_image(meta: dict) -> bool:
    """Whether an adapter (its ``lora_iqa.json``) shows the model more than one image per sample."""
    return int(meta.get("images", 1)) > 1


def check_base(model, meta: dict, adapter_dir, base_name: str) -> None:
    """Refuse (one line) an adapter whose recorded base fingerprint is not ``model``'s."""
    fp = fingerprint(model)
    if fp != meta["base"]["fingerprint"]:
        raise LoraIqaError(f"{adapter_dir}: adapter was trained on base {meta['base']['fingerprint']}, "
                           f"but {base_name} is {fp}")
