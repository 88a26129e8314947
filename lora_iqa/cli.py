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

    p = sub.add_parser("train", help="train from a recipe (same code as `accelerate launch recipes/train.py`)")
    p.add_argument("recipe")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.lr=1e-4")

    p = sub.add_parser("eval", help="evaluate an adapter (or full fine-tune) on a manifest split")
    p.add_argument("--adapter", required=True)
    p.add_argument("--data", required=True, help="manifest.csv")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--method", default="both", choices=("logits", "caption", "both"))
    p.add_argument("--out", help="write the result JSON here")

    p = sub.add_parser("score", help="score images with an adapter")
    p.add_argument("images", nargs="+")
    p.add_argument("--adapter", required=True)
    p.add_argument("--protocol", default="ss", choices=("ss",))
    p.add_argument("--method", default="logits", choices=("logits", "caption"))
    p.add_argument("--scorer", default="template", choices=("template",))
    p.add_argument("--window", type=float, nargs=2, metavar=("LEVEL", "WIDTH"), help="DICOM window (HU)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    return ap


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
    from lora_iqa.data.synth_ct import SynthCTConfig, synth_ct

    cfg = SynthCTConfig(n=args.n, size=args.size, seed=args.seed, format=args.format, jitter=args.jitter)
    path = synth_ct(Path(args.out), cfg)
    print(f"wrote {path} (SYNTHETIC images and labels)")


def _train(args) -> None:
    from lora_iqa.config import load_config
    from lora_iqa.embedded import resolve_base
    from lora_iqa.train import run

    cfg = load_config(args.recipe, args.overrides)
    cfg.base = resolve_base(cfg.base)
    res = run(cfg)
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
    results = {m: evaluate(model, processor, samples, template, args.split, m) for m in methods}
    out = dict(results[methods[0]])
    out["adapter"] = str(args.adapter)
    for m in methods[1:]:
        out[m] = results[m]
    for m, r in results.items():
        print(f"{m:8s} " + "  ".join(f"{d} SRCC {fmt(v['srcc'])}" for d, v in r["metrics"].items()))
    if args.out:
        atomic_write_text(args.out, json.dumps(out, indent=1))
        print(f"wrote {args.out}")


def _score(args) -> None:
    from lora_iqa.data.io import load_image
    from lora_iqa.evaluation import predict
    from lora_iqa.data.protocols import Sample
    from lora_iqa.metrics import fmt
    from lora_iqa.model import load_trained
    from lora_iqa.template import Template

    images = [load_image(p, window=tuple(args.window) if args.window else None) for p in args.images]
    model, processor, meta = load_trained(args.adapter)
    template = Template(tuple(meta["dimensions"]))
    samples = [Sample(images=(im,), labels={}, item=None) for im in images]
    for path, p in zip(args.images, predict(model, processor, samples, template, args.method)):
        rec = {"images": [path], "protocol": args.protocol, "method": args.method, "caption": p["caption"],
               "scores": {d: (None if v is None else round(v, 4)) for d, v in p["scores"].items()}}
        print(json.dumps(rec) if args.json else f"{path}: {p['caption']}  " +
              " ".join(f"{d}={fmt(v)}" for d, v in rec["scores"].items()))


_COMMANDS = {"demo": _demo, "synth": _synth, "train": _train, "eval": _eval, "score": _score}

if __name__ == "__main__":
    sys.exit(main())
