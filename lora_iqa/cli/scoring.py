"""``lora-iqa score``/``eval``/``report`` helpers: the adapter's protocol and data settings, the scorer, answers."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from lora_iqa.cli.parser import EXIT_ITEMS_FAILED
from lora_iqa.errors import LoraIqaError


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


def _metrics_line(metrics: dict, protocol: str, overall: str) -> str:
    """One row of the eval table: SRCC per dimension (ss); pairwise accuracy (ds) or mean Kendall tau (ms)
    with the correlations of the Thurstone scale fitted to those judgements."""
    from lora_iqa.metrics import fmt

    if protocol == "ss":
        return "  ".join(f"{d} SRCC {fmt(v['srcc'])}" for d, v in metrics.items())
    head, key = ("pairwise", "accuracy") if protocol == "ds" else ("ranking", "kendall")
    m, scale = metrics[head], metrics[overall]
    what = "pairwise accuracy" if protocol == "ds" else "mean Kendall tau"
    missing = f"  ({scale['missing']} unreadable)" if scale.get("missing") else ""
    return (f"{what} {fmt(m[key])} (n {m['n']})  Thurstone scale {overall} SRCC {fmt(scale['srcc'])} "
            f"PLCC {fmt(scale['plcc'])} KRCC {fmt(scale['krcc'])}{missing}")


def _protocol_of(meta: dict) -> tuple[str, str]:
    """The (protocol, reference) an adapter was trained for (adapters from before protocols: ss, nr)."""
    return str(meta.get("protocol", "ss")), str(meta.get("reference", "nr"))


def _data_settings(meta: dict) -> dict:
    """The sample-drawing settings (data.k, per_image, same_content, similar_below, window) saved with an
    adapter; the defaults where an older adapter's config lacks a key."""
    from lora_iqa.config import DataConfig

    saved, defaults = meta.get("config", {}).get("data", {}), DataConfig()
    d = {key: saved.get(key, getattr(defaults, key))
         for key in ("k", "per_image", "same_content", "similar_below", "window")}
    d["window"] = tuple(d["window"]) if d["window"] else None
    return d


def _scorer(args, meta: dict | None):
    """The scorer the flags ask for, with its in-context examples from a train split."""
    from lora_iqa.config import load_config
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.scorers import make_scorer
    from lora_iqa.template import CT_DIMENSIONS, Template

    sets = [f"scorer.backend={args.scorer}"] + [f"scorer.{kv}" for kv in args.scorer_set]
    sets += [f"scorer.strategy={args.strategy}"] if args.strategy else []
    sets += [f"scorer.model={args.llm_model}"] if args.llm_model else []
    cfg = load_config(args.scorer_config, sets).scorer
    template = Template(tuple(meta["dimensions"]), domain=meta.get("domain", "ct")) if meta else Template(CT_DIMENSIONS)
    data = args.data or (meta or {}).get("config", {}).get("data", {}).get("manifest")
    train = []
    if cfg.backend == "openai" and cfg.strategy == "in_context":
        if not data:
            raise LoraIqaError("--strategy in_context needs --data MANIFEST (labelled train examples)")
        train = read_manifest(data, template.dimensions).split("train")
    window = getattr(args, "window", None) or (meta or {}).get("config", {}).get("data", {}).get("window")
    return make_scorer(cfg, template, train, window=tuple(window) if window else None), template


def _score(args) -> int:
    from lora_iqa.artifact import multi_image, read_meta
    from lora_iqa.data.samples import ImageFile, Sample
    from lora_iqa.evaluation import predict
    from lora_iqa.methods.load import load_trained

    if args.method != "mllm" and not args.adapter:
        raise LoraIqaError(f"--adapter is required with --method {args.method}")
    if args.method == "logits" and args.scorer != "template":
        raise LoraIqaError("--scorer reads captions: use --method caption (or mllm) with --scorer openai")
    if args.method == "mllm" and args.scorer != "openai":
        raise LoraIqaError("--method mllm sends the images to a vision LLM: add --scorer openai")
    meta = read_meta(args.adapter) if args.adapter else None
    if args.method == "mllm":
        protocol = args.protocol or "ss"
        if args.reference:
            raise LoraIqaError("--reference is for full-reference adapters: --method mllm sends the IMAGES only")
        if protocol == "ds" and len(args.images) != 2:
            raise LoraIqaError(f"--protocol ds compares exactly 2 images, got {len(args.images)}")
        if protocol == "ms" and len(args.images) < 2:
            raise LoraIqaError("--protocol ms ranks 2 or more images")
    else:
        protocol = _check_protocol(args, meta)
    window = _window(args)
    images = [ImageFile(Path(p), window) for p in args.images]  # read when scored, one batch at a time
    ref = (ImageFile(Path(args.reference), window),) if args.reference else ()
    scorer, template = _scorer(args, meta)
    if args.method == "mllm":
        groups = [[im] for im in images] if protocol == "ss" else [images]
        paths = [[p] for p in args.images] if protocol == "ss" else [list(args.images)]
        results = scorer.score_images(groups, protocol)
        recs = [{"images": ps, "caption": None, **r.to_dict()} for ps, r in zip(paths, results)]
    else:
        model, processor, meta = load_trained(args.adapter)
        if protocol == "ss":
            paths = [[p] for p in args.images]
            samples = [Sample(images=(im,) + ref, labels={}, item=None) for im in images]
        else:  # one item of all IMAGES
            paths = [list(args.images)]
            samples = [Sample(images=tuple(images) + ref, labels={}, item=None)]
        preds = predict(model, processor, samples, template, args.method, scorer=scorer, protocol=protocol,
                        index=multi_image(meta), k=len(args.images))
        recs = [{"images": ps, **({"reference": args.reference} if args.reference else {}),
                 "caption": p["caption"], "status": p.get("status", "ok"),
                 **({"reason": p["reason"]} if "reason" in p else {}), **_answer(p, protocol)}
                for ps, p in zip(paths, preds)]
    for rec in recs:
        rec = {"images": rec.pop("images"), "protocol": protocol, "method": args.method,
               "scorer": scorer.name, **rec}
        if args.json:
            print(json.dumps(rec, allow_nan=False))
            continue
        print(f"{' '.join(rec['images'])}: {rec['caption'] + '  ' if rec['caption'] else ''}{_answer_text(rec)}"
              + (f"  FAILED: {rec['reason']}" if rec.get("status") == "failed" else ""))
    if scorer.name != "template":
        print(scorer.usage_line(), file=sys.stderr)
    return _items_failed(sum(r.get("status") == "failed" for r in recs), len(recs))


def _check_protocol(args, meta: dict) -> str:
    """The protocol an adapter scores: its own; --protocol, the image count and --reference must fit it."""
    protocol, reference = _protocol_of(meta)
    if args.protocol and args.protocol != protocol:
        raise LoraIqaError(f"{args.adapter}: a {protocol} adapter (lora_iqa.json protocol '{protocol}') cannot "
                           f"score --protocol {args.protocol}: use a {args.protocol} adapter")
    n = len(args.images)
    if protocol == "ds" and n != 2:
        raise LoraIqaError(f"--protocol ds compares exactly 2 images, got {n} ({args.adapter})")
    k = int(_data_settings(meta)["k"])
    if protocol == "ms" and n != k:
        raise LoraIqaError(f"--protocol ms: {args.adapter} ranks exactly {k} images (its data.k), got {n}")
    if reference == "fr" and not args.reference:
        raise LoraIqaError(f"{args.adapter}: a full-reference ({protocol}_fr) adapter needs --reference PATH "
                           "(the clean image of the stimuli's content)")
    if reference != "fr" and args.reference:
        raise LoraIqaError(f"{args.adapter}: a no-reference ({protocol}_{reference}) adapter takes no --reference")
    return protocol


def _answer(pred: dict, protocol: str) -> dict:
    """The protocol's answer fields of a prediction, for score --json."""
    if protocol == "ss":
        return {"scores": {d: (None if v is None else round(v, 4)) for d, v in pred["scores"].items()}}
    keys = ("preference", "probability", "probs") if protocol == "ds" else ("ranking", "expected_ranks", "probability")
    return {key: pred[key] for key in keys if key in pred}


_PREFERENCE_WORDS = {0.0: "first better", 1.0: "second better", 0.5: "similar"}


def _answer_text(rec: dict) -> str:
    from lora_iqa.metrics import fmt

    p = rec.get("probability")
    prob = f" (p {fmt(p)})" if p is not None else ""
    if rec.get("scores"):
        return " ".join(f"{d}={fmt(v)}" for d, v in rec["scores"].items())
    if rec.get("preference") is not None:
        return f"preference={_PREFERENCE_WORDS.get(rec['preference'], rec['preference'])}{prob}"
    if rec.get("ranking") is not None:
        return f"ranking={' > '.join(str(i) for i in rec['ranking'])} (image numbers, best first){prob}"
    return ""
