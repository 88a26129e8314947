"""The ``lora-iqa`` command. Errors: one line on stderr naming the file or key, exit status 1."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from pathlib import Path

from lora_iqa.errors import LoraIqaError, atomic_write_text, check_output_file, check_writable_dir


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lora-iqa", description="LoRA image-quality captioners: train, score, compare.",
                                 epilog=EXIT_STATUS)
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("demo", help="the one-command tour: synthesize CT, train LoRA and full FT, compare")
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--quick", action="store_true", help="a smaller, faster run (smoke test)")

    p = sub.add_parser("synth", help="synthesize image-quality data")
    synth = p.add_subparsers(dest="kind", required=True)
    p = synth.add_parser("ct", help="physics-based synthetic CT (SYNTHETIC labels from a rater model)")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=("png", "dcm"), default="png")
    p.add_argument("--jitter", type=float, default=0.0, help="rater jitter (std, score units)")
    p = synth.add_parser("natural", help="distorted natural photos (scikit-image's; SYNTHETIC labels from a rater)")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("train", help="train from a recipe (same code as `accelerate launch recipes/train.py`)")
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.lr=1e-4")

    p = sub.add_parser("eval", help="evaluate an adapter (or full fine-tune) on a manifest split")
    p.add_argument("--adapter", required=True)
    p.add_argument("--data", required=True, help="manifest.csv")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--method", default="both", choices=("logits", "caption", "both"))
    p.add_argument("--seed", type=int, help="ds/ms: the seed that draws the pairs / groups "
                                            "(default: the adapter's seed + 2, as train drew train +0, val +1)")
    p.add_argument("--out", help="write the result JSON here")
    _scorer_args(p, data=False)

    p = sub.add_parser("score", help="score images with an adapter (or, --method mllm, with a vision LLM)")
    p.add_argument("images", nargs="+")
    p.add_argument("--adapter", help="adapter or model dir (required except for --method mllm)")
    p.add_argument("--protocol", choices=("ss", "ds", "ms"),
                   help="ss: each IMAGE alone; ds: 2 IMAGES compared; ms: k IMAGES ranked (k: the adapter's "
                        "data.k). Must match the adapter's protocol (default: the adapter's; ss for --method mllm)")
    p.add_argument("--reference", metavar="PATH",
                   help="the clean reference image of the stimuli's content (full-reference adapters: required)")
    p.add_argument("--method", default="logits", choices=("logits", "caption", "mllm"),
                   help="logits: the model's probabilities (ss: level-word softmax; ds/ms: the likelihood of "
                        "every valid answer); caption: generate, then --scorer reads it; "
                        "mllm: send the images to a vision LLM (zero-shot baseline, --scorer openai)")
    _scorer_args(p)
    p.add_argument("--window", type=float, nargs=2, metavar=("LEVEL", "WIDTH"), help="DICOM window (HU)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = sub.add_parser("report", help="a radiology-style image-quality report (markdown) for one image")
    p.add_argument("image")
    p.add_argument("--adapter", required=True, help="an ss adapter (or full fine-tune) directory")
    p.add_argument("--reference", metavar="PATH", help="the clean reference image (full-reference adapters: required)")
    _scorer_args(p)
    p.add_argument("--window", type=float, nargs=2, metavar=("LEVEL", "WIDTH"), help="DICOM window (HU)")
    p.add_argument("--out", help="write the markdown here (default: print it)")

    p = sub.add_parser("push", help="upload an adapter (or full fine-tune) directory with its model card to the Hub",
                       description="The token comes from HF_TOKEN or `hf auth login` (never from the command "
                                   "line); HF_ENDPOINT selects another Hub. checkpoints/ and hidden files stay local.")
    p.add_argument("dir", metavar="DIR", help="adapter or full fine-tune directory (as written by train)")
    p.add_argument("--repo-id", required=True, help="OWNER/NAME on the Hub (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repo private")

    p = sub.add_parser("sweep", help="run a W&B sweep file's grid locally (no W&B server), then compare the runs",
                       description="Every grid point is validated first, then trained in-process with tracking=none "
                                   "into OUT/NAME/POINT; finished points are not rerun. Writes OUT/comparison.md, "
                                   ".json and .png. Run from the repository root (the command's paths are relative).")
    p.add_argument("sweep", help="W&B sweep YAML (method, metric, parameters, command), e.g. recipes/sweeps/lora_rank.yaml")
    p.add_argument("--out", default="runs/sweeps", help="output folder (default: runs/sweeps)")

    p = sub.add_parser("bench", help="run a bench: methods x protocols x seeds, quality and cost in one table",
                       description="Every cell (method, protocol, seed) runs in its own process with the same data, "
                                   "step budget and test evaluation, and writes OUT/cells/ID/cell.json; finished "
                                   "cells are not rerun. Writes OUT/results.json, .csv, .md and PNG plots. Each cell "
                                   "is a W&B run (offline unless configured) grouped by the bench's name.")
    p.add_argument("config", metavar="CONFIG.yaml", help="bench config, e.g. benchmarks/configs/lora_vs_full.yaml")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")

    from lora_iqa.data.datasets import FORMATS  # stdlib-only at import

    p = sub.add_parser("data", help="dataset tools")
    data = p.add_subparsers(dest="action", required=True)
    p = data.add_parser("import", help="turn a public IQA dataset's published layout into a manifest",
                        description="Reads the dataset's own annotation files under ROOT, maps its scores "
                                    "linearly onto 0-4 (higher is better), splits 70/10/20 by content and writes "
                                    "MANIFEST (.csv) plus its .json metadata (format, sources, score mapping).")
    p.add_argument("format", metavar="FORMAT", choices=list(FORMATS), help=", ".join(FORMATS))
    p.add_argument("root", metavar="ROOT", help="the dataset's release folder")
    p.add_argument("--out", required=True, metavar="MANIFEST",
                   help="manifest.csv to write, in ROOT or a folder above it (a folder gets manifest.csv)")
    p.add_argument("--seed", type=int, default=0, help="split seed (default: 0)")
    p.add_argument("--check-files", action=argparse.BooleanOptionalAction, default=True,
                   help="check every listed image exists (default: on)")
    return ap


def _scorer_args(p: argparse.ArgumentParser, data: bool = True) -> None:
    p.add_argument("--scorer", default="template", choices=("template", "openai"),
                   help="who reads captions: the offline template (exact) or an LLM via the openai client "
                        "(OPENAI_API_KEY, OPENAI_BASE_URL from the environment)")
    p.add_argument("--strategy", choices=("standard", "in_context", "cot"), help="LLM prompting strategy")
    p.add_argument("--model", dest="llm_model", help="LLM model name (scorer.model)")
    p.add_argument("--scorer-config", help="YAML with a 'scorer:' section (see ScorerConfig)")
    p.add_argument("--set", dest="scorer_set", action="append", default=[], metavar="KEY=VALUE",
                   help="scorer setting, e.g. --set concurrency=16 --set price_input=0.15")
    if data:
        p.add_argument("--data", help="manifest whose train split gives in-context examples "
                                       "(default: the adapter's training manifest)")


EXIT_ERROR = 1  # nothing (more) was done: one line on stderr says why
EXIT_ITEMS_FAILED = 3  # the command ran, but some items failed (their rows say why)
EXIT_STATUS = (f"exit status: 0 all done; {EXIT_ERROR} error (one line on stderr names the file or key); "
               f"2 bad arguments; {EXIT_ITEMS_FAILED} finished, but some items failed (status failed, with a reason)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lora-iqa`` console script. Every expected failure ends here as one line."""
    args = _parser().parse_args(argv)
    if not args.debug:
        _quiet()
    try:
        return _COMMANDS[args.cmd](args) or 0
    except KeyboardInterrupt:
        print("lora-iqa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout went away (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as e:
        message = _one_line(e)
        if args.debug or message is None:
            raise
        print(f"lora-iqa: error: {message}", file=sys.stderr)
        return EXIT_ERROR


def _one_line(e: Exception) -> str | None:
    """The one-line message of an expected failure (ours, the OS's, a file format's); None for a bug."""
    if isinstance(e, LoraIqaError):
        return str(e)
    if isinstance(e, OSError):  # disk full, permissions, a path too long...: name the file
        where = e.filename or "?"
        return " ".join(f"{where}: {e.strerror or type(e).__name__}".split())
    import yaml
    from safetensors import SafetensorError

    if isinstance(e, (yaml.YAMLError, SafetensorError)):
        return " ".join(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".split())
    return None


def _quiet() -> None:
    """Keep stderr for our own one-line errors: no library warnings, log records or loading bars."""
    import logging

    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' "Loading weights" bar
    for name in ("bitsandbytes", "peft", "transformers", "accelerate"):  # e.g. bitsandbytes' CPU-kernel notice
        logging.getLogger(name).setLevel(logging.ERROR)
    if "transformers" in sys.modules:  # already imported (in-process use): its bar flag is read at import
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def _demo(args) -> None:
    from lora_iqa.demo import run_demo

    run_demo(check_writable_dir(args.out), quick=args.quick)


def _synth(args) -> None:
    if args.kind == "natural":
        from lora_iqa.data.synth_natural import SynthNaturalConfig, synth_natural

        path = synth_natural(Path(args.out), SynthNaturalConfig(n=args.n, size=args.size, seed=args.seed))
        print(f"wrote {path} (SYNTHETIC distortions and labels)")
        return
    from lora_iqa.data.synth_ct import SynthCTConfig, synth_ct

    cfg = SynthCTConfig(n=args.n, size=args.size, seed=args.seed, format=args.format, jitter=args.jitter)
    path = synth_ct(Path(args.out), cfg)
    print(f"wrote {path} (SYNTHETIC images and labels)")


def _train(args) -> None:
    from lora_iqa.config import load_config
    from lora_iqa.clip_base import EMBEDDED_CLIP
    from lora_iqa.embedded import EMBEDDED, built, resolve_base
    from lora_iqa.train import partial_state, run

    cfg = load_config(args.recipe, args.overrides)
    state = partial_state()
    if cfg.base in (EMBEDDED, EMBEDDED_CLIP) and state.num_processes > 1 and not built(cfg.base):
        module = "lora_iqa.embedded" if cfg.base == EMBEDDED else "lora_iqa.clip_base"
        raise LoraIqaError(f"base '{cfg.base}' is not built yet: build it once with one process "
                           f"(python -m {module}), then launch the processes")
    cfg.base = resolve_base(cfg.base)
    res = run(cfg)
    if state.is_main_process:
        print(f"saved {res.dir} (best step {res.best_step}, val overall SRCC "
              f"{res.metrics.get(cfg.data.dimensions[-1], {}).get('srcc')})")


def _eval(args) -> int:
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.data.protocols import protocol_samples
    from lora_iqa.evaluation import evaluate
    from lora_iqa.model import load_trained, multi_image, read_meta
    from lora_iqa.template import Template

    if args.out:
        check_output_file(args.out)  # before any work
    meta = read_meta(args.adapter)  # inputs are checked before the model is loaded
    template = Template(tuple(meta["dimensions"]), domain=meta.get("domain", "ct"))
    protocol, reference = _protocol_of(meta)
    d = _data_settings(meta)
    seed = args.seed if args.seed is not None else int(meta.get("config", {}).get("seed", 0)) + 2
    manifest = read_manifest(args.data, template.dimensions)
    rows = manifest.split(args.split)
    samples = protocol_samples(rows, protocol, reference, template.dimensions, seed, d["k"], d["per_image"],
                               d["same_content"], d["similar_below"], d["window"])
    if not samples:
        raise LoraIqaError(f"{args.data}: no rows in split '{args.split}'" if not rows or protocol == "ss" else
                           f"{args.data}: split '{args.split}' ({len(rows)} rows) gives no {protocol} samples")
    model, processor, meta = load_trained(args.adapter)
    both = ("logits",) if meta.get("method") == "clip_prompt" else ("logits", "caption")  # CLIP writes no captions
    methods = both if args.method == "both" else (args.method,)
    scorer, _ = _scorer(args, meta)
    results = {m: evaluate(model, processor, samples, template, args.split, m, scorer=scorer, protocol=protocol,
                           index=multi_image(meta)) for m in methods}
    out = dict(results[methods[0]])
    out["adapter"] = str(args.adapter)
    if protocol != "ss" or reference != "nr":
        out["reference"] = reference
    if protocol != "ss":
        out["seed"] = seed
    for m in methods[1:]:
        out[m] = results[m]
    for m, r in results.items():
        print(f"{m:8s} " + _metrics_line(r["metrics"], protocol, template.overall))
    if scorer.name != "template":
        print(scorer.usage_line(), file=sys.stderr)
    if args.out:
        atomic_write_text(args.out, json.dumps(out, indent=1, allow_nan=False))
        print(f"wrote {args.out}")
    items = [it for r in results.values() for it in r["items"]]
    return _items_failed(sum(it.get("status") == "failed" for it in items), len(items))


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
    from lora_iqa.data.protocols import ImageFile, Sample
    from lora_iqa.evaluation import predict
    from lora_iqa.model import load_trained, multi_image, read_meta

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


def _report(args) -> None:
    from lora_iqa.data.io import load_image
    from lora_iqa.data.protocols import MAX_SIDE, Sample
    from lora_iqa.evaluation import predict
    from lora_iqa.model import load_trained, multi_image, read_meta

    if args.out:
        check_output_file(args.out)  # before any work
    meta = read_meta(args.adapter)
    args.protocol, args.images = "ss", [args.image]
    _check_protocol(args, meta)  # an ss adapter; --reference exactly for fr
    window = _window(args)
    image = load_image(args.image, window=window, max_side=MAX_SIDE)
    ref = (load_image(args.reference, window=window, max_side=MAX_SIDE),) if args.reference else ()
    scorer, template = _scorer(args, meta)
    model, processor, meta = load_trained(args.adapter)
    pred = predict(model, processor, [Sample(images=(image,) + ref, labels={}, item=None)], template, "caption",
                   scorer=scorer, index=multi_image(meta))[0]
    text = scorer.report(pred["caption"], pred["scores"], image=args.image)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}")
    else:
        print(text)
    if scorer.name != "template":
        print(scorer.usage_line(), file=sys.stderr)


def _push(args) -> None:
    from lora_iqa.hub import push

    print(push(args.dir, args.repo_id, private=args.private))


def _sweep(args) -> None:
    from lora_iqa.sweep import run_sweep

    run_sweep(args.sweep, Path(args.out))


def _bench(args) -> None:
    from lora_iqa.bench import run_bench
    from lora_iqa.config import load_bench

    bench = load_bench(args.config)
    run_bench(bench, check_writable_dir(args.out))


def _data(args) -> None:
    from lora_iqa.data.datasets import import_dataset

    res = import_dataset(args.format, args.root, args.out, seed=args.seed, check_files=args.check_files)
    print(f"wrote {res.path} and {res.meta_path.name} ({args.format}; dimensions {', '.join(res.dimensions)}): "
          + ", ".join(f"{s} {n}" for s, n in res.counts.items()))


_COMMANDS = {"demo": _demo, "synth": _synth, "train": _train, "eval": _eval, "score": _score, "report": _report,
             "push": _push, "sweep": _sweep, "bench": _bench,
             "data": _data}

if __name__ == "__main__":
    sys.exit(main())
