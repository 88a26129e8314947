"""Does ``load_image`` decode every bundled CT and MR DICOM test file of pydicom, in every transfer syntax?

    python benchmarks/scripts/dicom_decode.py [--out benchmarks/results/dicom_decode]

Lists every file of ``pydicom.data.get_testdata_files()`` that lies on disk in the pydicom package
(nothing is downloaded: files that pydicom would fetch from pydicom-data do not count), reads each
header without its pixels (``defer_size``: ``stop_before_pixels`` cannot say whether pixel data
follows), keeps the files with PixelData (or Float/DoubleFloatPixelData) and Modality CT or MR, and
calls ``lora_iqa.data.io.load_image(path)`` (default window: the file's, else soft tissue) on each.
A second table does the same for the other bundled pixel-bearing files in a compressed or deflated
transfer syntax (any other modality), which cover the syntaxes that no bundled CT/MR file uses.
Decodes with whatever pydicom finds installed: the core dependencies (GDCM, pylibjpeg-openjpeg, Pillow,
pydicom's own RLE and deflate) and, where installed, the ``dicom-gpl`` extra (pylibjpeg-libjpeg, GPLv3,
the only 12-bit JPEG decoder); the header says which.
Writes ``OUT/results.md`` (a summary saying why each failing file fails; one row per transfer
syntax pydicom has a decoder for, with the plugins installed for it and the files decoded; one row
per file: modality, transfer syntax, rows x cols, frames, bits, and "decoded" with the returned
image's shape, min and max, or load_image's one-line reason) and prints the summary. Runs in a second. A multi-frame file is read as its middle frame (``load_image`` takes frame
``frames // 2``, counted from 0); the row says which.
"""

from __future__ import annotations

import argparse
import collections
import importlib.metadata
import sys
import warnings
from pathlib import Path

import pydicom
import pydicom.data
import pydicom.pixels
import pydicom.uid

from lora_iqa.data.io import load_image
from lora_iqa.errors import LoraIqaError, atomic_write_text

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
PACKAGES = ("pydicom", "python-gdcm", "pylibjpeg", "pylibjpeg-openjpeg", "pylibjpeg-libjpeg", "pillow", "numpy")
DATA_DIR = Path(pydicom.data.__file__).parent


def bundled_headers() -> tuple[list[tuple[Path, pydicom.Dataset]], int]:
    """(path, header) of every bundled DICOM file that holds pixel data, and the number of paths seen."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = sorted(Path(p) for p in pydicom.data.get_testdata_files())
        found = []
        for path in paths:
            if not path.is_file() or not path.resolve().is_relative_to(DATA_DIR.resolve()):
                continue
            try:
                ds = pydicom.dcmread(path, force=True, defer_size=1024)  # pixel bytes stay on disk
            except Exception:  # READMEs, JSON, dumps, gzip: not DICOM
                continue
            if any(k in ds for k in PIXEL_KEYWORDS):
                found.append((path, ds))
    return found, len(paths)


def describe(path: Path, ds: pydicom.Dataset) -> dict:
    ts = (getattr(ds, "file_meta", None) or {}).get("TransferSyntaxUID")
    frames = _int(ds, "NumberOfFrames")
    bits = f"{ds.get('BitsStored', '?')} of {ds.get('BitsAllocated', '?')}"
    if ds.get("PixelRepresentation") == 1:
        bits += " signed"
    if _int(ds, "SamplesPerPixel") > 1:
        bits += f" x{ds.SamplesPerPixel} ({ds.get('PhotometricInterpretation')})"
    return {
        "file": path.relative_to(DATA_DIR).as_posix(),
        "modality": str(ds.get("Modality") or "-"),
        "syntax": f"{ts.name} ({ts})" if ts else "none in file meta",
        "compressed": bool(ts) and (ts.is_compressed or ts.is_deflated),
        "size": f"{ds.get('Rows', '?')}×{ds.get('Columns', '?')}",
        "frames": frames,
        "bits": bits,
        "result": try_load(path, frames),
    }


def try_load(path: Path, frames: int) -> str:
    try:
        img = load_image(path)
    except LoraIqaError as e:
        message = str(e)
        return "FAILED: " + (message[len(str(path)) + 2:] if message.startswith(f"{path}: ") else message)
    which = f", frame {frames // 2 + 1} of {frames}" if frames > 1 else ""
    shape = "×".join(str(n) for n in img.shape)
    return f"decoded {shape}{which}: min {img.min():.4f}, max {img.max():.4f}"


def table(rows: list[dict]) -> list[str]:
    out = ["| file | modality | transfer syntax | rows×cols | frames | bits | result |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        result = r["result"].replace("|", "\\|")
        out.append(f"| `{r['file']}` | {r['modality']} | {r['syntax']} | {r['size']} | {r['frames']} | {r['bits']} | {result} |")
    return out


def summary(rows: list[dict]) -> list[str]:
    ok = [r for r in rows if r["result"].startswith("decoded")]
    lines = [f"{len(ok)} of {len(rows)} decoded, {len(rows) - len(ok)} failed"]
    syntaxes = collections.Counter(r["syntax"] for r in ok)
    lines.append("decoded per transfer syntax: " + "; ".join(f"{s}: {n}" for s, n in sorted(syntaxes.items())))
    lines += [f"failed: {r['file']}: {r['result'][len('FAILED: '):]}" for r in rows if r not in ok]
    return lines


# Why the failing files fail, from pydicom's test_files/README.txt and the files themselves
NOTES = {
    "MR_truncated.dcm": "truncated on purpose: its pixel data is 62 bytes short of 64×64×2",
    "JPEG-lossy.dcm": "a 12-bit JPEG with an invalid scan header; pydicom's README: `JPGExtended.dcm` is its fixed version "
    "(without the dicom-gpl extra, it fails first for being 12-bit JPEG, as that file does)",
    "JPGExtended.dcm": "12-bit JPEG Extended: only pylibjpeg-libjpeg (GPLv3: the `dicom-gpl` extra, not a core dependency) "
    "decodes it; GDCM and Pillow refuse 12-bit JPEG",
    "JPEG2000-embedded-sequence-delimiter.dcm": "pydicom's README: `JPEG2000.dcm` with 4 bytes of the codestream replaced by "
    "a Sequence Delimiter, 'almost certainly not a valid JPEG anymore'",
}


def refusal(row: dict) -> str:
    """A load_image refusal that is no decoding failure, and whether pydicom decodes the pixels."""
    try:
        shape = pydicom.dcmread(DATA_DIR / row["file"]).pixel_array.shape
        pixels = f"its pixels decode (pydicom: {'×'.join(map(str, shape))})"
    except Exception as e:
        pixels = f"its pixels do not decode either ({type(e).__name__})"
    return f"load_image refuses it ({row['result'][len('FAILED: '):]}); {pixels}"


def coverage(ct_mr: list[dict], other: list[dict]) -> list[str]:
    """One row per transfer syntax pydicom has a decoder for: the plugins available here, files decoded."""
    decoded = collections.Counter(r["syntax"] for r in ct_mr if r["result"].startswith("decoded"))
    decoded_other = collections.Counter(r["syntax"] for r in other if r["result"].startswith("decoded"))
    rows = ["| transfer syntax | decoders available here, in pydicom's order | CT/MR files decoded | other files decoded |",
            "|---|---|---|---|"]
    unsupported = []
    for uid in pydicom.uid.AllTransferSyntaxes:
        try:
            decoder = pydicom.pixels.get_decoder(uid)
        except NotImplementedError:
            unsupported.append(uid)
            continue
        plugins = ", ".join(decoder.available_plugins) or "pydicom (no codec)"
        if not decoder.is_available:
            plugins = "NOTHING: " + "; ".join(decoder.missing_dependencies)
        syntax = f"{uid.name} ({uid})"
        rows.append(f"| {syntax} | {plugins} | {decoded[syntax]} | {decoded_other[syntax]} |")
    return rows + [
        "",
        "No bundled file uses JPEG Lossless Process 14 (.4.57; `tests/data/test_io_dicom_codecs.py` decodes the .4.70 file "
        "relabelled .4.57, a valid Process 14 stream, and `CT_small.dcm` re-encoded by GDCM in .4.57, .4.70 and .4.80, "
        "every HU exact) or HTJ2K (.4.201-.4.203: pylibjpeg-openjpeg is present but not "
        f"exercised: no sample file, and no HTJ2K encoder here). pydicom has no decoder for the other {len(unsupported)} "
        "transfer syntaxes it knows (MPEG-2, H.264, HEVC and SMPTE 2110 video, JPEG 2000 Part 2 multi-component, JPIP).",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/dicom_decode"), help="results folder")
    args = ap.parse_args()
    found, seen = bundled_headers()
    described = [describe(path, ds) for path, ds in found]
    ct_mr = [r for r in described if r["modality"] in ("CT", "MR")]
    other = [r for r in described if r["modality"] not in ("CT", "MR") and r["compressed"]]
    versions = ", ".join(f"{p} {_version(p)}" for p in PACKAGES)
    failed = [r for r in ct_mr + other if not r["result"].startswith("decoded")]
    md = [
        "# Decoding pydicom's bundled CT and MR test files with load_image",
        "",
        "`python benchmarks/scripts/dicom_decode.py`",
        "",
        f"Python {sys.version.split()[0]}; {versions}. `pydicom.data.get_testdata_files()` lists {seen} paths, "
        "all in the pydicom package's `data/test_files/` (nothing downloaded; the files pydicom would fetch from "
        f"pydicom-data are not here); {len(found)} of them are DICOM files with pixel data. Each is read by "
        "`load_image(path)` with its defaults (the file's window, else W 400 / L 40); the result is the returned "
        "image's shape, min and max, or load_image's one-line error (the file's path cut from its front). A "
        "multi-frame file is read as its middle frame (`load_image` takes frame `frames // 2`, from 0); no bundled "
        "CT/MR file has more than one frame. Decoders: the core dependencies' (GDCM, pylibjpeg-openjpeg, Pillow, "
        "pydicom's own RLE and deflate)"
        + (" and the dicom-gpl extra's pylibjpeg-libjpeg (GPLv3)." if _version("pylibjpeg-libjpeg") != "not installed"
           else "; the dicom-gpl extra (pylibjpeg-libjpeg, GPLv3, the only 12-bit JPEG decoder) is not installed."),
        "",
        "## Summary",
        "",
        f"- CT and MR files with pixel data: {summary(ct_mr)[0]}.",
        f"- Other modalities, compressed or deflated: {summary(other)[0]}.",
        *[f"- `{r['file']}` failed: {NOTES.get(Path(r['file']).name) or refusal(r)}." for r in failed],
        "",
        "## Transfer syntaxes",
        "",
        *coverage(ct_mr, other),
        "",
        f"## CT and MR files with pixel data ({len(ct_mr)})",
        "",
        *table(ct_mr),
        "",
        f"## Other modalities, compressed or deflated ({len(other)})",
        "",
        "Every other bundled file with pixel data in a compressed or deflated transfer syntax: they cover the "
        "syntaxes no bundled CT/MR file uses (JPEG baseline and extended, JPEG lossless, JPEG-LS near-lossless, "
        "deflate).",
        "",
        *table(other),
        "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "results.md", "\n".join(md))
    print(f"CT/MR with pixel data: {len(ct_mr)} files")
    print("\n".join("  " + line for line in summary(ct_mr)))
    print(f"other modalities, compressed or deflated: {len(other)} files")
    print("\n".join("  " + line for line in summary(other)))
    print(f"wrote {args.out / 'results.md'}")


def _int(ds: pydicom.Dataset, keyword: str) -> int:
    """An integer element, 1 when absent or invalid (a bundled file has NumberOfFrames '1A')."""
    try:
        return int(ds.get(keyword) or 1)
    except (TypeError, ValueError):
        return 1


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    with warnings.catch_warnings():  # pydicom warns about the test files' deliberately invalid values
        warnings.simplefilter("ignore")
        main()
