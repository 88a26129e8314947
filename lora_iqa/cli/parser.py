"""The ``lora-iqa`` argument parser (every command has --help) and its exit statuses."""

from __future__ import annotations

import argparse

from lora_iqa.protocols import PROTOCOLS


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="lora-iqa", description="LoRA image-quality captioners: train, score, compare.",
                                 epilog=EXIT_STATUS)
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = ap.add_subparsers(dest="cmd", required=True)
    _training_commands(sub)
    _scoring_commands(sub)
    _tool_commands(sub)
    return ap


def _training_commands(sub) -> None:
    """demo, synth, train, eval."""
    p = sub.add_parser("demo", help="the one-command tour: synthesize CT, train LoRA and full FT, compare")
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--quick", action="store_true", help="a smaller, faster run (smoke test)")

    p = sub.add_parser("synth", help="synthesize image-quality data")
    synth = p.add_subparsers(dest="kind", required=True)
    p = synth.add_parser("ct", help="physics-based synthetic CT on synthetic anatomy (SYNTHETIC labels from a rater model)")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, help="images in total (default 400)")
    p.add_argument("--size", type=int, help="pixels per side (default 256)")
    p.add_argument("--spacing", type=float, nargs=2, metavar=("MIN", "MAX"), help="mm/px range (default 0.5 1.0)")
    p.add_argument("--seed", type=int)
    p.add_argument("--format", choices=("png", "dcm"))
    p.add_argument("--jitter", type=float, help="rater jitter (std, score units; default 0)")
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


def _scoring_commands(sub) -> None:
    """score, report."""
    p = sub.add_parser("score", help="score images with an adapter (or, --method mllm, with a vision LLM)")
    p.add_argument("images", nargs="+")
    p.add_argument("--adapter", help="adapter or model dir (required except for --method mllm)")
    p.add_argument("--protocol", choices=PROTOCOLS,
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


def _tool_commands(sub) -> None:
    """push, sweep, bench, data import."""
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

    from lora_iqa.data.datasets import FORMATS

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
