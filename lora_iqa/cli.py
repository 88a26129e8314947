"""The ``lora-iqa`` command. Errors: one line on stderr naming the file or key, exit status 1."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from lora_iqa.errors import LoraIqaError, atomic_write_text


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lora-iqa", description="LoRA image-quality captioners: train, score, compare.")
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
    p.add_argument("--out", help="write the result JSON here")
    _scorer_args(p, data=False)

    p = sub.add_parser("score", help="score images with an adapter (or, --method mllm, with a vision LLM)")
    p.add_argument("images", nargs="+")
    p.add_argument("--adapter", help="adapter or model dir (required except for --method mllm)")
    p.add_argument("--protocol", default="ss", choices=("ss", "ds", "ms"),
                   help="ds/ms: all IMAGES form one item (mllm only until protocol adapters exist)")
    p.add_argument("--method", default="logits", choices=("logits", "caption", "mllm"),
                   help="logits: level-word softmax; caption: generate, then --scorer reads it; "
                        "mllm: send the images to a vision LLM (zero-shot baseline, --scorer openai)")
    _scorer_args(p)
    p.add_argument("--window", type=float, nargs=2, metavar=("LEVEL", "WIDTH"), help="DICOM window (HU)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = sub.add_parser("report", help="a radiology-style image-quality report (markdown) for one image")
    p.add_argument("image")
    p.add_argument("--adapter", required=True)
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lora-iqa`` console script."""
    args = _parser().parse_args(argv)
    if not args.debug:
        _quiet()
    try:
        return _COMMANDS[args.cmd](args) or 0
    except LoraIqaError as e:
        if args.debug:
            raise
        print(f"lora-iqa: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lora-iqa: interrupted", file=sys.stderr)
        return 130


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

    run_demo(Path(args.out), quick=args.quick)


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
    from lora_iqa.embedded import EMBEDDED, embedded_path, resolve_base
    from lora_iqa.train import partial_state, run

    cfg = load_config(args.recipe, args.overrides)
    state = partial_state()
    if cfg.base == EMBEDDED and state.num_processes > 1 and not (embedded_path() / "lora_iqa.json").exists():
        raise LoraIqaError(f"base 'embedded' is not built yet at {embedded_path()}: build it once with one process "
                           "(python -m lora_iqa.embedded), then launch the processes")
    cfg.base = resolve_base(cfg.base)
    res = run(cfg)
    if state.is_main_process:
        print(f"saved {res.dir} (best step {res.best_step}, val overall SRCC "
              f"{res.metrics.get(cfg.data.dimensions[-1], {}).get('srcc')})")


def _eval(args) -> None:
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.data.protocols import ss_samples
    from lora_iqa.evaluation import evaluate
    from lora_iqa.metrics import fmt
    from lora_iqa.model import load_trained, read_meta
    from lora_iqa.template import Template

    meta = read_meta(args.adapter)  # inputs are checked before the model is loaded
    template = Template(tuple(meta["dimensions"]))
    manifest = read_manifest(args.data, template.dimensions)
    samples = ss_samples(manifest.split(args.split), template.dimensions, meta["config"]["data"]["window"], progress=True)
    if not samples:
        raise LoraIqaError(f"{args.data}: no rows in split '{args.split}'")
    model, processor, meta = load_trained(args.adapter)
    methods = ("logits", "caption") if args.method == "both" else (args.method,)
    scorer, _ = _scorer(args, meta)
    results = {m: evaluate(model, processor, samples, template, args.split, m, scorer=scorer) for m in methods}
    out = dict(results[methods[0]])
    out["adapter"] = str(args.adapter)
    for m in methods[1:]:
        out[m] = results[m]
    for m, r in results.items():
        print(f"{m:8s} " + "  ".join(f"{d} SRCC {fmt(v['srcc'])}" for d, v in r["metrics"].items()))
    if scorer.name != "template":
        print(scorer.usage_line(), file=sys.stderr)
    if args.out:
        atomic_write_text(args.out, json.dumps(out, indent=1))
        print(f"wrote {args.out}")


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
    template = Template(tuple(meta["dimensions"]) if meta else CT_DIMENSIONS)
    data = args.data or (meta or {}).get("config", {}).get("data", {}).get("manifest")
    train = []
    if cfg.backend == "openai" and cfg.strategy == "in_context":
        if not data:
            raise LoraIqaError("--strategy in_context needs --data MANIFEST (labelled train examples)")
        train = read_manifest(data, template.dimensions).split("train")
    window = getattr(args, "window", None) or (meta or {}).get("config", {}).get("data", {}).get("window")
    return make_scorer(cfg, template, train, window=tuple(window) if window else None), template


def _score(args) -> None:
    from lora_iqa.data.io import load_image
    from lora_iqa.data.protocols import Sample
    from lora_iqa.evaluation import predict
    from lora_iqa.metrics import fmt
    from lora_iqa.model import load_trained, read_meta

    if args.method != "mllm" and not args.adapter:
        raise LoraIqaError(f"--adapter is required with --method {args.method}")
    if args.method == "logits" and args.scorer != "template":
        raise LoraIqaError("--scorer reads captions: use --method caption (or mllm) with --scorer openai")
    if args.method == "mllm" and args.scorer != "openai":
        raise LoraIqaError("--method mllm sends the images to a vision LLM: add --scorer openai")
    if args.method != "mllm" and args.protocol != "ss":
        raise LoraIqaError(f"--protocol {args.protocol} with an adapter needs protocol adapters (issue 3); "
                           "use --method mllm for the zero-shot LLM baseline")
    if args.protocol == "ds" and len(args.images) != 2:
        raise LoraIqaError(f"--protocol ds compares exactly 2 images, got {len(args.images)}")
    if args.protocol == "ms" and len(args.images) < 2:
        raise LoraIqaError("--protocol ms ranks 2 or more images")
    window = tuple(args.window) if args.window else None
    images = [load_image(p, window=window) for p in args.images]
    meta = read_meta(args.adapter) if args.adapter else None
    scorer, template = _scorer(args, meta)
    if args.method == "mllm":
        groups = [[im] for im in images] if args.protocol == "ss" else [images]
        paths = [[p] for p in args.images] if args.protocol == "ss" else [list(args.images)]
        results = scorer.score_images(groups, args.protocol)
        recs = [{"images": ps, "caption": None, **r.to_dict()} for ps, r in zip(paths, results)]
    else:
        model, processor, meta = load_trained(args.adapter)
        samples = [Sample(images=(im,), labels={}, item=None) for im in images]
        preds = predict(model, processor, samples, template, args.method, scorer=scorer)
        recs = [{"images": [path], "caption": p["caption"], "status": p.get("status", "ok"),
                 **({"reason": p["reason"]} if "reason" in p else {}),
                 "scores": {d: (None if v is None else round(v, 4)) for d, v in p["scores"].items()}}
                for path, p in zip(args.images, preds)]
    for rec in recs:
        rec = {"images": rec.pop("images"), "protocol": args.protocol, "method": args.method,
               "scorer": scorer.name, **rec}
        if args.json:
            print(json.dumps(rec))
            continue
        answer = (" ".join(f"{d}={fmt(v)}" for d, v in rec["scores"].items()) if rec.get("scores")
                  else f"preference={rec['preference']}" if "preference" in rec
                  else f"ranking={rec['ranking']}" if "ranking" in rec else "")
        print(f"{' '.join(rec['images'])}: {rec['caption'] or ''}  {answer}"
              + (f"  FAILED: {rec['reason']}" if rec.get("status") == "failed" else ""))
    if scorer.name != "template":
        print(scorer.usage_line(), file=sys.stderr)


def _report(args) -> None:
    from lora_iqa.data.io import load_image
    from lora_iqa.data.protocols import Sample
    from lora_iqa.evaluation import predict
    from lora_iqa.model import load_trained, read_meta

    image = load_image(args.image, window=tuple(args.window) if args.window else None)
    scorer, template = _scorer(args, read_meta(args.adapter))
    model, processor, _ = load_trained(args.adapter)
    pred = predict(model, processor, [Sample(images=(image,), labels={}, item=None)], template, "caption",
                   scorer=scorer)[0]
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


def _data(args) -> None:
    from lora_iqa.data.datasets import import_dataset

    res = import_dataset(args.format, args.root, args.out, seed=args.seed, check_files=args.check_files)
    print(f"wrote {res.path} and {res.meta_path.name} ({args.format}; dimensions {', '.join(res.dimensions)}): "
          + ", ".join(f"{s} {n}" for s, n in res.counts.items()))


_COMMANDS = {"demo": _demo, "synth": _synth, "train": _train, "eval": _eval, "score": _score, "report": _report,
             "push": _push, "sweep": _sweep, "data": _data}

if __name__ == "__main__":
    sys.exit(main())
