"""Peak memory of reading one large image: ``load_image`` with and without ``max_side``; with
``--adapter``, of *scoring* images of growing size (``lora-iqa score``'s path: read, resample to the
adapter's view, its evaluation windows, logits).

    python benchmarks/scripts/large_image_rss.py [--side 10000] [--max-side 2048]
    python benchmarks/scripts/large_image_rss.py --adapter DIR [--sizes 3000x2000 6000x4000 12000x8000]

Writes a SYNTHETIC SIDE x SIDE RGB PNG (a smooth pattern, fast to encode) to a temporary folder,
then loads it once per case, each in a fresh Python process, and prints that process's peak
resident set (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) after the imports and after
``load_image``: their difference is what reading the image cost. The temporary folder is removed.
With ``--adapter``: pydicom's 512 x 512 head CT slice (``J2K_pixelrep_mismatch.dcm``, JPEG 2000), then
one SYNTHETIC RGB JPEG and PNG per size (WIDTHxHEIGHT); the model is loaded before the first
measurement, so the difference is what scoring the image cost. JPEG decodes straight at 1/2..1/8 scale
(bounded); PNG has no reduced decode, so Pillow holds its 8-bit pixels once before the reduction.
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


# Peak RSS once the model is loaded, then after scoring the image through its view.
SCORE = """
import json, resource, sys
from pathlib import Path
from lora_iqa.data.samples import ImageFile, Sample
from lora_iqa.evaluation import predict
from lora_iqa.methods.load import load_trained
model, processor, meta = load_trained(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
view = meta.make_view()
s = Sample(images=(ImageFile(Path(sys.argv[1]), None, view.spacing),), labels={}, item=None)
p = predict(model, processor, [s], meta.template(), "logits", protocol=meta.make_protocol(), view=view)[0]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"overall": p["scores"][meta.template().overall], "model_mb": before / 1024, "peak_mb": after / 1024}))
"""

WRITE_RGB = """
import sys
import numpy as np
from PIL import Image
w, h = int(sys.argv[2]), int(sys.argv[3])
x = (np.arange(w) % 256).astype(np.uint8)
y = (np.arange(h) % 256).astype(np.uint8)
img = np.empty((h, w, 3), np.uint8)
img[:, :, 0] = x[None, :]
img[:, :, 1] = y[:, None]
img[:, :, 2] = x[None, :] ^ y[:, None]
Image.fromarray(img).save(sys.argv[1], quality=90) if sys.argv[1].endswith(".jpg") else \
    Image.fromarray(img).save(sys.argv[1], compress_level=1)
"""


def score_sizes(adapter: str, sizes: list[str]) -> None:
    """Peak RSS of scoring the real 512-px slice, then one image per size, each in a fresh process."""
    from pydicom.data import get_testdata_file

    cases = [("512x512 real head CT slice (JPEG 2000 DICOM)", get_testdata_file("J2K_pixelrep_mismatch.dcm"))]
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            w, h = (int(v) for v in size.lower().split("x"))
            for ext in ("jpg", "png"):
                path = Path(tmp) / f"{size}.{ext}"
                child(WRITE_RGB, str(path), str(w), str(h))
                cases.append((f"{size} SYNTHETIC RGB {ext.upper()} ({w * h / 1e6:.1f} Mpx)", str(path)))
        for label, path in cases:
            r = json.loads(child(SCORE, path, adapter))
            print(f"{label}: peak RSS {r['peak_mb']:.0f} MiB, scoring added {r['peak_mb'] - r['model_mb']:.0f} MiB "
                  f"(model loaded: {r['model_mb']:.0f} MiB); overall {r['overall']:.3f}")


def child(code: str, *argv: str) -> str:
    """Run ``code`` in a fresh interpreter; its stdout."""
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=10000, help="image side in px (default 10000)")
    ap.add_argument("--max-side", type=int, default=2048, help="max_side of the reduced case (default 2048)")
    ap.add_argument("--adapter", help="score images of --sizes with this adapter instead")
    ap.add_argument("--sizes", nargs="+", default=["3000x2000", "6000x4000", "12000x8000"])
    args = ap.parse_args()
    if args.adapter:
        score_sizes(args.adapter, args.sizes)
        return
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
