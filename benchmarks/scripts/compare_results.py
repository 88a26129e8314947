"""Compare two results.json files value by value (e.g. the demo written by two versions of the code).

``python benchmarks/scripts/compare_results.py A.json B.json [--ignore KEY ...]``: prints IDENTICAL (every number
and every other value equal) or each path that differs; exit 1 on a difference. Timing keys are ignored
by default (they measure the machine, not the code).
"""

from __future__ import annotations

import argparse
import json
import sys

TIMING = ("train_seconds", "samples_per_s", "seconds", "wall_s", "images_per_s", "dir")


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--ignore", nargs="*", default=list(TIMING))
    args = ap.parse_args()
    out, counts = [], [0, 0]
    with open(args.a) as fa, open(args.b) as fb:
        diff(json.load(fa), json.load(fb), "$", set(args.ignore), out, counts)
    print("\n".join(out[:50]) if out else f"IDENTICAL: {counts[0]} numbers and {counts[1]} other values")
    return 1 if out else 0


if __name__ == "__main__":
    sys.exit(main())
