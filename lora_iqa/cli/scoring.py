"""``lora-iqa score``/``eval``/``report`` helpers: the adapter's protocol check, the scorer, answers."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lora_iqa.cli.parser import EXIT_ITEMS_FAILED
from lora_iqa.errors import LoraIqaError
from lora_iqa.protocols import Protocol, get_protocol

if TYPE_CHECKING:
    from lora_iqa.artifact import AdapterMeta


def _items_failed(failed: int, total: int) -> int:
    """The exit status of a command that scored ``total`` items: say how many failed, if any."""
    if not failed:
        return 0
    print(f"lora-iqa: {failed} of {total} items failed (status failed; the reason is in each)", file=sys.stderr)
    return EXIT_ITEMS_FAILED


def _window(args) -> tuple[float, float] | None:
    """``--window LEVEL WIDTH``, checked: finite numbers, WIDTH > 0."""
    if not getattr(args, "window", None):
        return None
    level, width = args.window
    if not (math.isfinite(level) and math.isfinite(width) and width > 0):
        raise LoraIqaError(f"--window {level:g} {width:g}: LEVEL and WIDTH must be finite numbers (HU), WIDTH > 0")
    return level, width


def _scorer(args, meta: AdapterMeta | None):
    """The scorer the flags ask for, with its in-context examples from a train split."""
    from lora_iqa.config import load_config
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.scorers import make_scorer
    from lora_iqa.template import CT_DIMENSIONS, Template

    sets = [f"scorer.backend={args.scorer}"] + [f"scorer.{kv}" for kv in args.scorer_set]
    sets += [f"scorer.strategy={args.strategy}"] if args.strategy else []
    sets += [f"scorer.model={args.llm_model}"] if args.llm_model else []
    cfg = load_config(args.scorer_config, sets).scorer
    template = meta.template() if meta else Template(CT_DIMENSIONS)
    data = args.data or (meta.data_manifest if meta else None)
    train = []
    if cfg.backend == "openai" and cfg.strategy == "in_context":
        if not data:
            raise LoraIqaError("--strategy in_context needs --data MANIFEST (labelled train examples)")
        train = read_manifest(data, template.dimensions).split("train")
    window = getattr(args, "window", None) or (meta.data_settings()["window"] if meta else None)
    return make_scorer(cfg, template, train, window=tuple(window) if window else None), template


def _score(args) -> int:
    from lora_iqa.artifact import read_meta
    from lora_iqa.data.samples import ImageFile, Sample
    from lora_iqa.evaluation import predict
    from lora_iqa.methods.load import load_trained
    from lora_iqa.views import RESIZE

    if args.method != "mllm" and not args.adapter:
        raise LoraIqaError(f"--adapter is required with --method {args.method}")
    if args.method == "logits" and args.scorer != "template":
        raise LoraIqaError("--scorer reads captions: use --method caption (or mllm) with --scorer openai")
    if args.method == "mllm" and args.scorer != "openai":
        raise LoraIqaError("--method mllm sends the images to a vision LLM: add --scorer openai")
    meta = read_meta(args.adapter) if args.adapter else None
    if args.method == "mllm":
        if args.reference:
            raise LoraIqaError("--reference is for full-reference adapters: --method mllm sends the IMAGES only")
        protocol = get_protocol(args.protocol or "ss", k=len(args.images))
        why = protocol.count_error(len(args.images))
        if why:
            raise LoraIqaError(f"--protocol {why}")
    else:
        protocol = _check_protocol(args, meta)
    window, view = _window(args), (meta.make_view() if meta else RESIZE)
    images = [ImageFile(Path(p), window, view.spacing) for p in args.images]  # read when scored, a batch at a time
    ref = (ImageFile(Path(args.reference), window, view.spacing),) if args.reference else ()
    scorer, template = _scorer(args, meta)
    if args.method == "mllm":
        groups = [[im] for im in images] if protocol.per_image else [images]
        paths = [[p] for p in args.images] if protocol.per_image else [list(args.images)]
        results = scorer.score_images(groups, protocol)
        recs = [{"images": ps, "caption": None, **r.to_dict()} for ps, r in zip(paths, results)]
    else:
        model, processor, meta = load_trained(args.adapter)
        if protocol.per_image:
            paths = [[p] for p in args.images]
            samples = [Sample(images=(im,) + ref, labels={}, item=None) for im in images]
        else:  # one item of all IMAGES
            paths = [list(args.images)]
            samples = [Sample(images=tuple(images) + ref, labels={}, item=None)]
        preds = predict(model, processor, samples, template, args.method, scorer=scorer, protocol=protocol,
                        index=meta.multi_image, view=view)
        recs = [{"images": ps, **({"reference": args.reference} if args.reference else {}),
                 "caption": p["caption"], "status": p.get("status", "ok"),
                 **({"reason": p["reason"]} if "reason" in p else {}), **protocol.answer(p)}
                for ps, p in zip(paths, preds)]
    for rec in recs:
        rec = {"images": rec.pop("images"), "protocol": protocol.name, "method": args.method,
               "scorer": scorer.name, **rec}
        if args.json:
            print(json.dumps(rec, allow_nan=False))
            continue
        print(f"{' '.join(rec['images'])}: {rec['caption'] + '  ' if rec['caption'] else ''}{protocol.answer_text(rec)}"
              + (f"  FAILED: {rec['reason']}" if rec.get("status") == "failed" else ""))
    if scorer.name != "template":
        print(scorer.usage_line(), file=sys.stderr)
    return _items_failed(sum(r.get("status") == "failed" for r in recs), len(recs))


def _check_protocol(args, meta: AdapterMeta) -> Protocol:
    """The protocol an adapter scores: its own; --protocol, the image count and --reference must fit it."""
    protocol = meta.make_protocol()
    if args.protocol and args.protocol != protocol.name:
        raise LoraIqaError(f"{args.adapter}: a {protocol.name} adapter (lora_iqa.json protocol '{protocol.name}') "
                           f"cannot score --protocol {args.protocol}: use a {args.protocol} adapter")
    why = protocol.count_error(len(args.images))
    if why:
        raise LoraIqaError(f"--protocol {why} ({args.adapter}; data.k {protocol.k})")
    if protocol.full_reference and not args.reference:
        raise LoraIqaError(f"{args.adapter}: a full-reference ({protocol.key}) adapter needs --reference PATH "
                           "(the clean image of the stimuli's content)")
    if not protocol.full_reference and args.reference:
        raise LoraIqaError(f"{args.adapter}: a no-reference ({protocol.key}) adapter takes no --reference")
    return protocol
