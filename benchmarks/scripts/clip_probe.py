"""How much quality information do a frozen CLIP's image features hold? A ridge probe (least squares with an
L2 penalty, per dimension, fitted on the train split) on the image embeddings, scored on the test split.

It is the ceiling any linear readout of the frozen features reaches, so it puts the antonym-prompt rows
of benchmarks/configs/natural.yaml in context (prompt learning reads the same features through CLIP's
text tower). Run after the natural bench, on its data:

    python benchmarks/scripts/clip_probe.py --data benchmarks/results/natural/data/manifest.csv --base embedded-clip \
        > benchmarks/results/natural/clip_probe.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from scipy import stats

from lora_iqa.data.io import load_image
from lora_iqa.data.manifest import read_manifest
from lora_iqa.data.pixels import pixel_values
from lora_iqa.methods.clip.base import load_clip
from lora_iqa.template import NATURAL_DIMENSIONS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--base", default="embedded-clip")
    ap.add_argument("--alpha", type=float, nargs="+", default=[0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0])
    args = ap.parse_args()
    clip, processor = load_clip(args.base)
    dims = list(NATURAL_DIMENSIONS)
    m = read_manifest(args.data, dims)

    def split(name: str) -> tuple[np.ndarray, np.ndarray]:
        items = m.split(name)
        with torch.no_grad():
            out = clip.get_image_features(pixel_values=pixel_values([load_image(i.image) for i in items], processor))
        x = getattr(out, "pooler_output", out).numpy()
        return np.c_[x, np.ones(len(x))], np.array([[i.scores[d] for d in dims] for i in items])

    (xtr, ytr), (xva, yva), (xte, yte) = split("train"), split("val"), split("test")

    def fit(alpha: float) -> np.ndarray:
        return np.linalg.solve(xtr.T @ xtr + alpha * np.eye(xtr.shape[1]), xtr.T @ ytr)

    def srcc(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        p = x @ w
        return {d: float(stats.spearmanr(p[:, j], y[:, j]).statistic) for j, d in enumerate(dims)}

    val = {a: np.mean(list(srcc(fit(a), xva, yva).values())) for a in args.alpha}
    best = max(val, key=val.get)  # the penalty is chosen on validation
    test = srcc(fit(best), xte, yte)
    print(json.dumps({"base": args.base, "alpha": best, "val_mean_srcc": val[best], "test_srcc": test,
                      "test_mean_srcc": float(np.mean(list(test.values()))), "n_test": len(yte)}, indent=1))


if __name__ == "__main__":
    main()
