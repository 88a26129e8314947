"""Experiment configuration: nested dataclasses, the single source of truth.

A recipe YAML fills them; ``key=value`` overrides use dotted keys (``train.lr=1e-4``). Every value
is validated on creation, and the resolved config is saved beside every adapter and result.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import yaml

from lora_iqa.errors import LoraIqaError
from lora_iqa.protocols import PROTOCOLS, REFERENCES, Protocol, get_protocol
from lora_iqa.template import CT_DIMENSIONS, DOMAINS, Template
from lora_iqa.views import DEFAULT_SPACING, View, make_view
PARTS = ("vision", "cross", "text")
PART_MODES = ("frozen", "lora", "full")
QUANTIZE = ("none", "4bit", "8bit")


@dataclass
class DataConfig:
    """Where the samples come from and how images are read."""

    manifest: str | None = None
    dimensions: tuple[str, ...] = CT_DIMENSIONS
    window: tuple[float, float] | None = None  # (level, width) HU; None: the file's, else W400/L40
    k: int = 4  # ms: images per ranking
    per_image: int = 4  # ds pairs / ms groups drawn per image of a split (ss: every image once)
    same_content: float = 0.5  # ds (nr): fraction of pairs comparing two degradations of one content
    similar_below: float = 0.5  # ds: |overall difference| below this is "similar"
    domain: str = "ct"  # ct | natural | aigc: how the template phrases the overall sentence
    view: str = "auto"  # crop | resize | auto (crop for ct): what the model sees of an image (lora_iqa.views)
    spacing: float | None = DEFAULT_SPACING  # mm/px that images stating their spacing are resampled to
    grid: int = 3  # evaluation: grid x grid crops per image, answers averaged

    def __post_init__(self) -> None:
        self.dimensions = tuple(self.dimensions)
        _check(self.domain in DOMAINS, "data.domain", f"must be one of {DOMAINS}", self.domain)
        _check(2 <= self.k <= 6, "data.k", "must be 2..6 (ms logit scoring enumerates the k! rankings)", self.k)
        _check(self.per_image >= 1, "data.per_image", "must be >= 1", self.per_image)
        _check(0 <= self.same_content <= 1, "data.same_content", "must be in [0, 1]", self.same_content)
        _check(self.similar_below >= 0, "data.similar_below", "must be >= 0", self.similar_below)
        _check(len(self.dimensions) > 0, "data.dimensions", "must list at least one dimension", self.dimensions)
        self.make_view()
        if self.window is not None:
            self.window = tuple(float(v) for v in self.window)
            _check(len(self.window) == 2 and all(map(math.isfinite, self.window)) and self.window[1] > 0,
                   "data.window", "must be [level, width>0], finite", self.window)

    def make_view(self) -> View:
        """What the model sees of an image (:mod:`lora_iqa.views`)."""
        return make_view(self.view, self.spacing, self.grid, self.domain)


ADAPTER_METHODS = ["lora", "full", "clip_prompt", "regression", "classification"]  # methods.registry.register adds
IMAGE_SCORERS = ("clip_prompt", "regression", "classification")  # methods that score single images (ss, nr)


@dataclass
class AdapterConfig:
    """Which parts train and how: ``method=lora`` puts LoRA on ``targets``; ``method=full`` trains all;
    ``method=clip_prompt`` learns text context and visual prompt tokens around a frozen CLIP base."""

    method: str = "lora"
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    targets: tuple[str, ...] = ("vision", "cross")
    vision_projection: bool = False  # also adapt the ViT attention output projection
    cross_output: bool = False  # also adapt crossattention.output.dense
    text: str = "frozen"  # the text decoder's own self-attention/FFN: frozen | lora | full
    use_rslora: bool = False
    use_dora: bool = False
    # clip_prompt (lora_iqa.methods.clip.prompt): prompt tokens and the AI-generated-image alignment task
    n_ctx: int = 4  # learnable text context tokens before each antonym word
    ctx_per_dim: bool = True  # one context per dimension (else one shared by every dimension)
    n_vis: int = 4  # learnable visual prompt tokens per prompted vision layer (0: text prompts only)
    prompt_depth: int = 1  # vision layers that get fresh visual prompts (1: the input only)
    align_weight: float = 0.0  # > 0: add the image-vs-generation-prompt contrastive loss (needs a prompt column)

    def __post_init__(self) -> None:
        self.targets = tuple(self.targets)
        _check(self.method in ADAPTER_METHODS, "adapter.method", f"must be one of {ADAPTER_METHODS}", self.method)
        for key, lo in (("n_ctx", 1), ("n_vis", 0), ("prompt_depth", 1), ("align_weight", 0), ("r", 1)):
            _check(getattr(self, key) >= lo, f"adapter.{key}", f"must be >= {lo}", getattr(self, key))
        _check(self.alpha > 0, "adapter.alpha", "must be > 0", self.alpha)
        _check(0 <= self.dropout < 1, "adapter.dropout", "must be in [0, 1)", self.dropout)
        bad = [t for t in self.targets if t not in ("vision", "cross")]
        _check(not bad, "adapter.targets", "must be a subset of [vision, cross]", list(self.targets))
        _check(self.text in PART_MODES, "adapter.text", f"must be one of {PART_MODES}", self.text)
        if self.method == "lora":
            _check(bool(self.targets) or self.text == "lora", "adapter.targets", "LoRA needs a target", [])
            # an adapter directory holds LoRA tensors only: fully trained base weights would be lost
            _check(self.text != "full", "adapter.text", "cannot be 'full' with adapter.method=lora (use method=full)", self.text)

    def part_modes(self) -> dict[str, str]:
        """Mode of each part: frozen, lora or full. Full fine-tuning is every part ``full``."""
        if self.method == "full":
            return {p: "full" for p in PARTS}
        modes = {p: ("lora" if p in self.targets else "frozen") for p in ("vision", "cross")}
        modes["text"] = self.text
        return modes


@dataclass
class TrainConfig:
    """The Accelerate loop: schedule, clipping, accumulation, precision, validation, checkpoints."""

    max_steps: int = 300
    batch_size: int = 32
    lr: float = 3e-4
    grad_accum: int = 1
    warmup_steps: int = 30
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"  # no | bf16 | fp16
    eval_every: int = 50
    save_every: int = 100  # checkpoints (lora_iqa.training.checkpoint) every N steps; 0 disables
    eval_batch_size: int = 64
    augment: bool = True  # random flips / 90-degree rotations of the training images
    select_best: bool = True  # keep the step with the best validation mean SRCC (else the last step)

    def __post_init__(self) -> None:
        for key, lo in (("max_steps", 1), ("batch_size", 1), ("grad_accum", 1), ("eval_batch_size", 1), ("eval_every", 1),
                        ("save_every", 0), ("warmup_steps", 0)):
            _check(getattr(self, key) >= lo, f"train.{key}", f"must be >= {lo}", getattr(self, key))
        _check(self.lr > 0, "train.lr", "must be > 0", self.lr)
        _check(self.max_grad_norm > 0, "train.max_grad_norm", "must be > 0", self.max_grad_norm)
        _check(self.mixed_precision in ("no", "bf16", "fp16"), "train.mixed_precision", "must be no, bf16 or fp16", self.mixed_precision)


SCORER_BACKENDS = ("template", "openai")
STRATEGIES = ("standard", "in_context", "cot")
RESPONSE_FORMATS = ("json_schema", "json_object", "text")


@dataclass
class ScorerConfig:
    """Caption(s) -> numbers and reports. ``openai`` reads OPENAI_API_KEY / OPENAI_BASE_URL from the
    environment only (never from here); ``model`` and everything else come from this section."""

    backend: str = "template"
    model: str = "gpt-4o-mini"
    strategy: str = "standard"  # standard | in_context (``shots`` labelled train examples) | cot
    shots: int = 3
    response_format: str = "json_schema"  # json_schema | json_object | text (free text, parsed tolerantly)
    temperature: float = 0.0
    max_tokens: int = 600
    concurrency: int = 8  # requests in flight
    timeout: float = 60.0  # seconds per request
    max_retries: int = 5  # per item: transport faults (429/5xx/timeouts) and broken or invalid replies
    cache: bool = True  # persistent reply cache under $LORA_IQA_CACHE_DIR/llm
    price_input: float | None = None  # USD per 1M prompt tokens, for the cost line
    price_output: float | None = None  # USD per 1M completion tokens
    seed: int = 0  # which train examples the in-context strategy draws

    def __post_init__(self) -> None:
        _check(self.backend in SCORER_BACKENDS, "scorer.backend", f"must be one of {SCORER_BACKENDS}", self.backend)
        _check(self.strategy in STRATEGIES, "scorer.strategy", f"must be one of {STRATEGIES}", self.strategy)
        _check(self.response_format in RESPONSE_FORMATS, "scorer.response_format",
               f"must be one of {RESPONSE_FORMATS}", self.response_format)
        _check(bool(self.model), "scorer.model", "must not be empty", self.model)
        for key in ("shots", "max_retries"):
            _check(getattr(self, key) >= 0, f"scorer.{key}", "must be >= 0", getattr(self, key))
        for key in ("concurrency", "max_tokens"):
            _check(getattr(self, key) >= 1, f"scorer.{key}", "must be >= 1", getattr(self, key))
        _check(self.timeout > 0, "scorer.timeout", "must be > 0", self.timeout)
        for key in ("price_input", "price_output"):
            v = getattr(self, key)
            _check(v is None or v >= 0, f"scorer.{key}", "must be >= 0", v)


@dataclass
class Config:
    """One experiment. ``base`` is a BLIP checkpoint name/path, or ``embedded`` for the project's own."""

    output_dir: str = "runs/ct_ss_lora"
    seed: int = 0
    protocol: str = "ss"
    reference: str = "nr"  # nr | fr: fr also shows the model the clean reference of the stimuli's content
    base: str = "embedded"
    resume: str = "none"  # none | auto | PATH of a checkpoints/step_* folder
    tracking: str = "none"  # none | wandb | tensorboard ... (anything Accelerate's log_with accepts)
    quantize: str = "none"  # none | 4bit | 8bit: load the base through bitsandbytes and train LoRA on it (QLoRA)
    overwrite: bool = False  # a fresh run may replace (clear) an output_dir that holds another run
    data: DataConfig = field(default_factory=DataConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    scorer: ScorerConfig = field(default_factory=ScorerConfig)

    def __post_init__(self) -> None:
        _check(self.protocol in PROTOCOLS, "protocol", f"must be one of {PROTOCOLS}", self.protocol)
        _check(self.reference in REFERENCES, "reference", f"must be one of {REFERENCES}", self.reference)
        _check(self.resume in ("none", "auto") or bool(self.resume), "resume", "must be none, auto or a path", self.resume)
        _check(bool(str(self.output_dir)), "output_dir", "must not be empty", self.output_dir)
        _check(self.quantize in QUANTIZE, "quantize", f"must be one of {QUANTIZE}", self.quantize)
        _check(self.quantize == "none" or self.adapter.method == "lora", "quantize",
               "needs adapter.method=lora (quantized base weights cannot be trained)", self.quantize)
        _check(self.adapter.method not in IMAGE_SCORERS or self.make_protocol().single_image, "protocol",
               f"must be ss with reference nr for adapter.method={self.adapter.method} (it scores single images)",
               f"{self.protocol}_{self.reference}")

    def template(self) -> Template:
        """The score <-> caption template of this experiment's dimensions and domain."""
        return Template(tuple(self.data.dimensions), domain=self.data.domain)

    def make_protocol(self) -> Protocol:
        """The protocol object of ``protocol``, ``reference`` and ``data.k``."""
        return get_protocol(self.protocol, self.reference, self.data.k)

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML/JSON-safe dict of every resolved value."""
        return _plain(dataclasses.asdict(self))


BENCH_METHODS = ("zero_shot", "lora", "full", "regression", "classification", "classical", "mllm", "clip_zero_shot",
                 "clip_prompt")
DETERMINISTIC = ("zero_shot", "classical", "mllm", "clip_zero_shot")  # no training seed: run once per protocol
CLIP_METHODS = ("clip_zero_shot", "clip_prompt")  # rows on the bench's CLIP base (clip_base)
SYNTH_KINDS = ("ct", "natural")


@dataclass
class BenchMethod:
    """One row of a bench: a training method (``lora`` / ``full``), an image-only head on the same ViT
    (``regression`` / ``classification``), an untrained scorer (``zero_shot`` base, ``classical``
    noise/blur estimate, ``mllm`` vision LLM through the openai scorer), or CLIP on the bench's
    ``clip_base``: ``clip_zero_shot`` antonym prompts (CLIP-IQA) and ``clip_prompt`` prompt learning."""

    name: str
    method: str
    targets: tuple[str, ...] = ("vision", "cross")
    r: int = 8
    use_rslora: bool = False
    use_dora: bool = False
    overrides: tuple[str, ...] = ()  # recipe key=value for this method only (e.g. its own train.lr)

    def __post_init__(self) -> None:
        self.targets, self.overrides = tuple(self.targets), tuple(self.overrides)
        _check(bool(re.fullmatch(r"[\w.-]+", self.name or "")), "methods.name", "must be a plain name", self.name)
        _check(self.method in BENCH_METHODS, f"methods.{self.name}.method", f"must be one of {BENCH_METHODS}", self.method)

    def recipe_overrides(self) -> list[str]:
        """The recipe keys this row sets: adapter method, targets, rank and flags, then its own overrides."""
        scorer = "clip_prompt" if self.method in CLIP_METHODS else self.method
        if scorer in IMAGE_SCORERS:  # they train (or are built) on single images; the cell judges ds / ms from them
            return [f"adapter.method={scorer}", "protocol=ss", "reference=nr", *self.overrides]
        if self.method != "lora":  # full fine-tuning; the untrained rows read only the train keys
            return ["adapter.method=full", *self.overrides]
        return ["adapter.method=lora", f"adapter.targets={list(self.targets)}", f"adapter.r={self.r}",
                f"adapter.use_rslora={self.use_rslora}", f"adapter.use_dora={self.use_dora}", *self.overrides]


@dataclass
class BenchConfig:
    """A bench: methods x protocols x seeds on one dataset, one step budget and one evaluation."""

    name: str
    methods: tuple[BenchMethod, ...]
    base: str = "embedded"
    manifest: str | None = None  # None: SYNTHETIC data of ``synth_kind`` from ``synth`` into OUT/data
    synth_kind: str = "ct"  # ct (SynthCTConfig keys in ``synth``) | natural (SynthNaturalConfig keys)
    synth: dict = field(default_factory=lambda: {"n": 960, "size": 96, "seed": 0, "per_content": 8})
    clip_base: str = "embedded-clip"  # the CLIP the clip_* rows use (a CLIPModel name or path)
    protocols: tuple[str, ...] = ("ss",)
    reference: str = "nr"
    seeds: tuple[int, ...] = (0, 1, 2)
    recipes: dict = field(default_factory=dict)  # protocol -> recipe YAML every trained cell starts from
    overrides: tuple[str, ...] = ()  # the shared budget: key=value applied to every trained cell
    test_per_image: int = 4  # ds pairs / ms groups drawn per test image
    eval_seed: int = 12345  # draws the test pairs / groups: the same for every cell
    captions: bool = True  # also generate captions: caption metrics and template-scorer agreement
    tracking: str = "wandb"  # none | wandb (offline unless WANDB_MODE / WANDB_API_KEY say otherwise)

    def __post_init__(self) -> None:
        _check(bool(re.fullmatch(r"[\w.-]+", str(self.name))), "name", "must be a plain name", self.name)
        _check(len(self.methods) > 0, "methods", "must list at least one method", [])
        names = [m.name for m in self.methods]
        _check(len(set(names)) == len(names), "methods", "names must be unique", names)
        self.protocols, self.seeds, self.overrides = tuple(self.protocols), tuple(self.seeds), tuple(self.overrides)
        bad = [p for p in self.protocols if p not in PROTOCOLS]
        _check(bool(self.protocols) and not bad, "protocols", f"must be a non-empty subset of {PROTOCOLS}", list(self.protocols))
        _check(self.reference in REFERENCES, "reference", f"must be one of {REFERENCES}", self.reference)
        _check(len(self.seeds) > 0, "seeds", "must list at least one seed", [])
        _check(self.test_per_image >= 1, "test_per_image", "must be >= 1", self.test_per_image)
        _check(self.tracking in ("none", "wandb"), "tracking", "must be none or wandb", self.tracking)
        _check(self.synth_kind in SYNTH_KINDS, "synth_kind", f"must be one of {SYNTH_KINDS}", self.synth_kind)
        bad = [p for p in self.recipes if p not in PROTOCOLS]
        _check(not bad, "recipes", f"keys must be protocols {PROTOCOLS}", bad)

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML/JSON-safe dict of every resolved value."""
        return _plain(dataclasses.asdict(self))


def load_bench(path: str | Path) -> BenchConfig:
    """Read and validate a bench YAML; errors are one line naming the file and the key."""
    raw = read_yaml_mapping(path, "bench config")
    try:
        methods = raw.pop("methods", None)
        if not isinstance(methods, list) or not all(isinstance(m, dict) for m in methods):
            raise LoraIqaError("key 'methods' must be a list of mappings (name, method, ...)")
        rows = tuple(_build(BenchMethod, m, "methods.") for m in methods)
        for key in ("synth", "recipes"):
            if key in raw and not isinstance(raw[key], dict):
                raise LoraIqaError(f"key '{key}' must be a mapping")
        return _build(BenchConfig, {**raw, "methods": rows}, "")
    except LoraIqaError as e:
        raise LoraIqaError(f"{path}: {e}") from None


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Build a Config from a recipe YAML (optional) and ``key=value`` overrides, validated."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw = read_yaml_mapping(path, "recipe")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LoraIqaError(f"override '{item}': expected key=value")
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as e:
            raise LoraIqaError(f"override '{item}': the value of key '{key.strip()}' is not valid YAML "
                               f"({str(e).splitlines()[0]})") from None
        _set_dotted(raw, key.strip(), parsed)
    try:
        return _build(Config, raw, "")
    except LoraIqaError as e:
        raise LoraIqaError(f"{path}: {e}" if path else str(e)) from None


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping; every failure is one line naming the file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise LoraIqaError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise LoraIqaError(f"{path}: cannot read {what} ({e})") from None
    except yaml.YAMLError as e:
        raise LoraIqaError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise LoraIqaError(f"{path}: a {what} must be a mapping of keys to values")
    return raw


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Rebuild a Config from ``Config.to_dict()`` output (e.g. the one saved in lora_iqa.json)."""
    return _build(Config, raw, "")


def _build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    for key in raw:
        if key not in known:
            raise LoraIqaError(f"unknown key '{prefix}{key}' (known: {', '.join(known)})")
    kwargs = {}
    for name, f in known.items():
        if name not in raw:
            continue
        value = raw[name]
        sub = _SECTIONS.get(name) if not prefix else None
        if sub is not None:
            if not isinstance(value, dict):
                raise LoraIqaError(f"key '{name}' must be a mapping")
            value = _build(sub, value, f"{name}.")
        else:
            value = _coerce(value, f.type, f"{prefix}{name}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except LoraIqaError:
        raise
    except (TypeError, ValueError) as e:
        raise LoraIqaError(f"{prefix.rstrip('.') or 'config'}: {e}") from None


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    ann = str(annotation)
    try:
        if value is None:
            if "None" in ann:
                return None
            raise ValueError("must not be empty")
        if ann.startswith("tuple"):
            return tuple(value) if isinstance(value, (list, tuple)) else tuple(str(value).split(","))
        if ann.startswith("bool"):
            if isinstance(value, bool):
                return value
            raise ValueError(f"must be true or false, got {value!r}")
        if ann.startswith("int"):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError(f"must be an integer, got {value!r}")
            return int(float(value))
        if ann.startswith("float"):
            if isinstance(value, bool) or not math.isfinite(float(value)):
                raise ValueError(f"must be a finite number, got {value!r}")
            return float(value)
        if ann.startswith("str"):
            return str(value)
    except (TypeError, ValueError) as e:
        msg = str(e) if "must" in str(e) else f"has the wrong type ({value!r})"
        raise LoraIqaError(f"key '{key}' {msg}") from None
    return value


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise LoraIqaError(f"override '{key}': '{p}' is not a section")
    node[leaf] = value


def _check(ok: bool, key: str, what: str, value: Any) -> None:
    if not ok:
        raise LoraIqaError(f"key '{key}' {what}, got {value!r}")


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def cache_dir() -> Path:
    """``$LORA_IQA_CACHE_DIR`` or the user cache dir (embedded base, LLM replies)."""
    import platformdirs

    return Path(os.environ.get("LORA_IQA_CACHE_DIR") or platformdirs.user_cache_dir("lora_iqa"))


_SECTIONS = {"data": DataConfig, "adapter": AdapterConfig, "train": TrainConfig, "scorer": ScorerConfig}
