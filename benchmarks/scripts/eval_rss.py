"""Peak RSS of `lora-iqa eval` on 100 vs 1,000 images of 1024 x 1024 px (RGB PNG): memory must not grow
with the data (issue 14: at most 1.5x).

    python benchmarks/scripts/eval_rss.py               # writes benchmarks/results/eval_rss/results.{json,md}
    git worktree add /tmp/before 949f2cc   # the code before issue 14's fix, measured the same way:
    python benchmarks/scripts/eval_rss.py --n 100 400 --pythonpath /tmp/before --label "before the fix (949f2cc)"

What it does (seed 0): writes 1,000 smooth random RGB images of 1024 px (low-frequency noise, PNG) and
two manifests (the first 100, all 1,000, every row in the test split) under benchmarks/results/eval_rss/data/;
trains a tiny LoRA adapter (the test geometry: 32 px ViT, hidden 32; 2 steps on 48 SYNTHETIC CT images)
so that eval has something to load; then runs `python -m lora_iqa.cli eval --method logits --out ...`
once per manifest, each in a fresh wrapper process that reports its child's peak RSS (ru_maxrss). The
model is tiny on purpose: what is measured is how memory grows with the number of images.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

RESULTS = Path(__file__).resolve().parents[1] / "results"  # benchmarks/results/
WRAP = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)")


def write_images(data: Path, n: int, size: int, seed: int) -> None:
    """``n`` smooth random RGB PNGs (bilinear-upsampled 16 x 16 noise; image i from seed (seed, i))."""
    from tqdm import tqdm

    (data / "images").mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(n), desc="write images", unit="img"):
        path = data / "images" / f"{i:04d}.png"
        if not path.exists():
            coarse = np.random.default_rng([seed, i]).integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(coarse).resize((size, size), Image.BILINEAR).save(path, compress_level=1)


def write_manifest(data: Path, n: int, seed: int) -> Path:
    from lora_iqa.data.manifest import write_manifest as write
    from lora_iqa.template import CT_DIMENSIONS

    rng = np.random.default_rng([seed, n])
    rows = [{"image": f"images/{i:04d}.png", "split": "test", "content": f"c{i}",
             **{d: int(rng.integers(0, 5)) for d in CT_DIMENSIONS}} for i in range(n)]
    return write(data / f"manifest_{n}.csv", rows, CT_DIMENSIONS)


def tiny_adapter(work: Path) -> Path:
    """A tiny LoRA adapter on a tiny scratch base (2 training steps): something eval can load."""
    from lora_iqa.config import load_config
    from lora_iqa.data.synth.ct import SynthCTConfig, synth_ct
    from lora_iqa.methods.blip.base import scratch_base
    from lora_iqa.template import vocabulary
    from lora_iqa.training.run import run

    out = work / "adapter"
    if (out / "lora_iqa.json").exists():
        return out
    manifest = synth_ct(work / "ct", SynthCTConfig(n=48, size=64, seed=0, per_content=8), progress=False)
    model, processor = scratch_base(vocabulary(), seed=0, image_size=32, patch=8, hidden=32, vision_layers=2,
                                    text_layers=2, heads=2)
    base = work / "base"
    model.save_pretrained(base)
    processor.save_pretrained(base)
    cfg = load_config(None, [f"output_dir={out}", f"data.manifest={manifest}", f"base={base}", "train.max_steps=2",
                             "train.batch_size=8", "train.eval_every=2", "train.save_every=0", "overwrite=true"])
    run(cfg, progress=False)
    return out


def peak_rss_mb(python: str, env: dict, args: list[str], cwd: str | None) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of ``python -m lora_iqa.cli ARGS`` in a fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAP, python, "-m", "lora_iqa.cli", *args], env=env, cwd=cwd,
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"eval failed (exit {proc.returncode}): {proc.stdout}")
    return int(proc.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs=2, default=(100, 1000), metavar=("SMALL", "LARGE"))
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--python", default=sys.executable, help="the interpreter whose lora_iqa is measured")
    ap.add_argument("--pythonpath", help="a checkout to import lora_iqa from (another version)")
    ap.add_argument("--label", default="this checkout")
    ap.add_argument("--out", type=Path, default=RESULTS / "eval_rss")
    args = ap.parse_args()

    data = args.out / "data"
    write_images(data, max(args.n), args.size, args.seed)
    manifests = {n: write_manifest(data, n, args.seed) for n in args.n}
    adapter = tiny_adapter(data)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if args.pythonpath:  # run from there, so that its lora_iqa is imported before an installed one
        env["PYTHONPATH"] = args.pythonpath
    rows = []
    for n, manifest in manifests.items():
        rss, secs = peak_rss_mb(args.python, env, ["eval", "--adapter", str(adapter), "--data", str(manifest),
                                                   "--method", "logits", "--out", str(data / f"eval_{n}.json")],
                                 args.pythonpath)
        rows.append({"images": n, "peak_rss_mb": round(rss, 1), "seconds": round(secs, 1)})
        print(f"{args.label}: eval on {n} images of {args.size} px: peak RSS {rss:.0f} MB ({secs:.0f} s)", flush=True)
    ratio = rows[1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    result = {"label": args.label, "size": args.size, "seed": args.seed, "rows": rows, "ratio": round(ratio, 3),
              "command": " ".join(["python benchmarks/scripts/eval_rss.py", *map(shlex.quote, sys.argv[1:])])}
    print(f"{args.label}: peak RSS ratio {rows[1]['images']} / {rows[0]['images']} images: {ratio:.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    name = "results" if not args.pythonpath else "results_other"
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    md = [f"# eval peak RSS vs number of images ({args.label})", "",
          f"`{result['command']}` (seed {args.seed}; RGB PNG {args.size} px; tiny test-geometry LoRA, logits)", "",
          "| images | peak RSS (MB) | wall s |", "|---|---|---|"]
    md += [f"| {r['images']} | {r['peak_rss_mb']} | {r['seconds']} |" for r in rows]
    md += ["", f"ratio {rows[1]['images']} / {rows[0]['images']}: **{ratio:.2f}** (target: at most 1.5)", ""]
    (args.out / f"{name}.md").write_text("\n".join(md))


if __name__ == "__main__":
    main()
