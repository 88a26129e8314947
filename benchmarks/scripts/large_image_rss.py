"""Peak memory of reading one large image: ``load_image`` with and without ``max_side``.

    python benchmarks/scripts/large_image_rss.py [--side 10000] [--max-side 2048]

Writes a SYNTHETIC SIDE x SIDE RGB PNG (a smooth pattern, fast to encode) to a temporary folder,
then loads it once per case, each in a fresh Python process, and prints that process's peak
resident set (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) after the imports and after
``load_image``: their difference is what reading the image cost. The temporary folder is removed.
The PNG is written by a child process too: Linux starts a new program's ``ru_maxrss`` at its
parent's, so this parent stays small (standard library only).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

# A side x side RGB PNG: ramps and their XOR, built in uint8 (no full-size int64 index grids).
WRITE = """
import sys
import numpy as np
from PIL import Image
side = int(sys.argv[2])
ramp = (np.arange(side) % 256).astype(np.uint8)
img = np.empty((side, side, 3), np.uint8)
img[:, :, 0] = ramp[None, :]
img[:, :, 1] = ramp[:, None]
img[:, :, 2] = ramp[None, :] ^ ramp[:, None]
Image.fromarray(img).save(sys.argv[1], compress_level=1)
"""

# Peak RSS (kB on Linux) once the imports are done, then after the load.
LOAD = """
import json, resource, sys
from lora_iqa.data.io import load_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
max_side = None if sys.argv[2] == "none" else int(sys.argv[2])
img = load_image(sys.argv[1], max_side=max_side)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"shape": list(img.shape), "imports_mb": before / 1024, "peak_mb": after / 1024}))
"""


def child(code: str, *argv: str) -> str:
    """Run ``code`` in a fresh interpreter; its stdout."""
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=10000, help="image side in px (default 10000)")
    ap.add_argument("--max-side", type=int, default=2048, help="max_side of the reduced case (default 2048)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"rgb_{args.side}.png"
        child(WRITE, str(path), str(args.side))
        print(f"SYNTHETIC {args.side}x{args.side} RGB PNG, {path.stat().st_size / 2**20:.1f} MiB on disk; "
              f"decoded uint8 {3 * args.side**2 / 2**20:.0f} MiB, as float32 {12 * args.side**2 / 2**20:.0f} MiB")
        for max_side in (None, args.max_side):
            r = json.loads(child(LOAD, str(path), str(max_side or "none")))
            print(f"max_side={max_side}: shape {tuple(r['shape'])}, peak RSS {r['peak_mb']:.0f} MiB "
                  f"(after imports {r['imports_mb']:.0f} MiB; the load added {r['peak_mb'] - r['imports_mb']:.0f} MiB)")


if __name__ == "__main__":
    main()
