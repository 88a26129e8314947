"""Compare two results.json files value by value (e.g. the demo written by two versions of the code).

``python benchmarks/scripts/compare_results.py A.json B.json [--ignore KEY ...]``: prints IDENTICAL (every number
and every other value equal) or each path that differs; exit 1 on a difference. Timing keys are ignored
by default (they measure the machine, not the code).

``--cells``: A and B are bench results; every cell of A is compared with B's cell of the same name, protocol,
reference and seed (so a bench that reruns some cells of a committed one checks them), image paths and
the cells' measured costs (time, memory, throughput) ignored.
"""

from __future__ import annotations

import argparse
import json
import sys

TIMING = ("train_seconds", "samples_per_s", "seconds", "wall_s", "images_per_s", "dir")
CELL_COSTS = ("train_samples_per_s", "logits_images_per_s", "generate_images_per_s", "mllm_images_per_s",
              "peak_rss_mb", "wall_seconds", "images")  # measured on the machine, or where the data was written


def diff(a, b, path: str, ignore: set[str], out: list[str], counts: list[int]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in ignore:
                continue
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'B' if k not in a else 'A'}")
                continue
            diff(a[k], b[k], f"{path}.{k}", ignore, out, counts)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} vs {len(b)} entries")
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}[{i}]", ignore, out, counts)
    else:
        counts[0 if isinstance(a, (int, float)) and not isinstance(a, bool) else 1] += 1
        if a != b:
            out.append(f"{path}: {a!r} vs {b!r}")


def _cell_id(cell: dict) -> str:
    return f"{cell['name']}__{cell['protocol']}_{cell['reference']}__s{cell['seed']}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--ignore", nargs="*", default=list(TIMING))
    ap.add_argument("--cells", action="store_true", help="compare A's bench cells with B's cells of the same id")
    args = ap.parse_args()
    out, counts = [], [0, 0]
    with open(args.a) as fa, open(args.b) as fb:
        a, b = json.load(fa), json.load(fb)
    if not args.cells:
        diff(a, b, "$", set(args.ignore), out, counts)
    for cell in a["cells"] if args.cells else []:
        key = _cell_id(cell)
        match = [c for c in b["cells"] if _cell_id(c) == key]
        if not match:
            out.append(f"{key}: no such cell in B")
            continue
        diff(cell, match[0], key, set(args.ignore) | set(CELL_COSTS), out, counts)
        print(f"{key}: compared")
    print("\n".join(out[:50]) if out else f"IDENTICAL: {counts[0]} numbers and {counts[1]} other values")
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main())
