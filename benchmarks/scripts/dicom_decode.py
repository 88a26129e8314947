"""Does ``load_image`` decode every bundled CT and MR DICOM test file of pydicom, in every transfer syntax?

Every pydicom test file on disk (nothing downloaded) with pixel data and Modality CT or MR, and the other pixel-bearing
ones in a compressed or deflated transfer syntax; writes ``OUT/results.md`` and prints the summary:

    python benchmarks/scripts/dicom_decode.py [--out benchmarks/results/dicom_decode]
"""

import argparse
import collections
import contextlib
import importlib.metadata
import sys
import warnings
from pathlib import Path

import pydicom  # pydicom 3 imports its .data, .pixels and .uid

from lora_iqa.data.io import load_image
from lora_iqa.errors import LoraIqaError, atomic_write_text

PACKAGES = ("pydicom", "python-gdcm", "pylibjpeg", "pylibjpeg-openjpeg", "pylibjpeg-libjpeg", "pillow", "numpy")
DATA_DIR = Path(pydicom.data.__file__).parent
# Why the failing files fail, from pydicom's test_files/README.txt and the files themselves
NOTES = {
    "MR_truncated.dcm": "truncated on purpose: its pixel data is 62 bytes short of 64×64×2",
    "JPEG-lossy.dcm": "a 12-bit JPEG with an invalid scan header; pydicom's README: `JPGExtended.dcm` is its fixed version (without "
    "the dicom-gpl extra, it fails first for being 12-bit JPEG, as that file does)",
    "JPGExtended.dcm": "12-bit JPEG Extended: only pylibjpeg-libjpeg (GPLv3: the `dicom-gpl` extra, not a core dependency) decodes "
    "it; GDCM and Pillow refuse 12-bit JPEG",
    "JPEG2000-embedded-sequence-delimiter.dcm": "pydicom's README: `JPEG2000.dcm` with 4 bytes of the codestream replaced by a "
    "Sequence Delimiter, 'almost certainly not a valid JPEG anymore'",
}


def describe(path: Path, ds: pydicom.Dataset) -> dict:
    """One table row: the header, and load_image's result (a multi-frame file gives its middle frame)."""
    ts = (getattr(ds, "file_meta", None) or {}).get("TransferSyntaxUID")
    frames, samples = _int(ds, "NumberOfFrames"), _int(ds, "SamplesPerPixel")
    bits = (f"{ds.get('BitsStored', '?')} of {ds.get('BitsAllocated', '?')}" + " signed" * (ds.get("PixelRepresentation") == 1)
            + (f" x{samples} ({ds.get('PhotometricInterpretation')})" if samples > 1 else ""))
    try:
        img = load_image(path)
        which = f", frame {frames // 2 + 1} of {frames}" if frames > 1 else ""
        result = f"decoded {'×'.join(map(str, img.shape))}{which}: min {img.min():.4f}, max {img.max():.4f}"
    except LoraIqaError as e:
        result = "FAILED: " + str(e).removeprefix(f"{path}: ")
    return {"file": path.relative_to(DATA_DIR).as_posix(), "modality": str(ds.get("Modality") or "-"),
            "syntax": f"{ts.name} ({ts})" if ts else "none in file meta", "size": f"{ds.get('Rows', '?')}×{ds.get('Columns', '?')}",
            "compressed": bool(ts) and (ts.is_compressed or ts.is_deflated), "frames": frames, "bits": bits, "result": result}


def table(rows: list[dict]) -> list[str]:
    return ["| file | modality | transfer syntax | rows×cols | frames | bits | result |", "|---|---|---|---|---|---|---|"] + [
        f"| `{r['file']}` | {r['modality']} | {r['syntax']} | {r['size']} | {r['frames']} | {r['bits']} | "
        + r["result"].replace("|", "\\|") + " |" for r in rows]


def summary(rows: list[dict]) -> list[str]:
    ok = [r for r in rows if r["result"].startswith("decoded")]
    return [f"{len(ok)} of {len(rows)} decoded, {len(rows) - len(ok)} failed",
            "decoded per transfer syntax: "
            + "; ".join(f"{s}: {n}" for s, n in sorted(collections.Counter(r["syntax"] for r in ok).items())),
            *[f"failed: {r['file']}: {r['result'].removeprefix('FAILED: ')}" for r in rows if r not in ok]]


def refusal(row: dict) -> str:
    """A load_image refusal that is no decoding failure, and whether pydicom decodes the pixels."""
    try:
        pixels = f"its pixels decode (pydicom: {'×'.join(map(str, pydicom.dcmread(DATA_DIR / row['file']).pixel_array.shape))})"
    except Exception as e:
        pixels = f"its pixels do not decode either ({type(e).__name__})"
    return f"load_image refuses it ({row['result'].removeprefix('FAILED: ')}); {pixels}"


def coverage(ct_mr: list[dict], other: list[dict]) -> list[str]:
    """One row per transfer syntax pydicom has a decoder for: the plugins available here, files decoded."""
    decoded = [collections.Counter(r["syntax"] for r in rows if r["result"].startswith("decoded")) for rows in (ct_mr, other)]
    decoders = {}
    for uid in pydicom.uid.AllTransferSyntaxes:
        with contextlib.suppress(NotImplementedError):
            decoders[uid] = pydicom.pixels.get_decoder(uid)
    rows = ["| transfer syntax | decoders available here, in pydicom's order | CT/MR files decoded | other files decoded |",
            "|---|---|---|---|"]
    for uid, d in decoders.items():
        plugins = ((", ".join(d.available_plugins) or "pydicom (no codec)") if d.is_available
                   else "NOTHING: " + "; ".join(d.missing_dependencies))
        syntax = f"{uid.name} ({uid})"
        rows.append(f"| {syntax} | {plugins} | {decoded[0][syntax]} | {decoded[1][syntax]} |")
    return rows + [
        "", "No bundled file uses JPEG Lossless Process 14 (.4.57; `tests/data/test_io_dicom_codecs.py` decodes the .4.70 file "
        "relabelled .4.57, a valid Process 14 stream, and `CT_small.dcm` re-encoded by GDCM in .4.57, .4.70 and .4.80, every "
        "HU exact) or HTJ2K (.4.201-.4.203: pylibjpeg-openjpeg is present but not exercised: no sample file, and no HTJ2K "
        f"encoder here). pydicom has no decoder for the other {len(pydicom.uid.AllTransferSyntaxes) - len(decoders)} transfer "
        "syntaxes it knows (MPEG-2, H.264, HEVC and SMPTE 2110 video, JPEG 2000 Part 2 multi-component, JPIP).",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/dicom_decode"), help="results folder")
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # pydicom warns about the test files' deliberately invalid values
    paths, found = sorted(Path(p) for p in pydicom.data.get_testdata_files()), []
    for path in paths:
        if path.is_file() and path.resolve().is_relative_to(DATA_DIR.resolve()):
            try:  # defer_size: the pixel bytes stay on disk (stop_before_pixels cannot say whether they follow)
                ds = pydicom.dcmread(path, force=True, defer_size=1024)
            except Exception:  # READMEs, JSON, dumps, gzip: not DICOM
                continue
            if any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
                found.append(describe(path, ds))
    ct_mr = [r for r in found if r["modality"] in ("CT", "MR")]
    other = [r for r in found if r["modality"] not in ("CT", "MR") and r["compressed"]]
    md = [
        "# Decoding pydicom's bundled CT and MR test files with load_image", "", "`python benchmarks/scripts/dicom_decode.py`",
        "", f"Python {sys.version.split()[0]}; {', '.join(f'{p} {_version(p)}' for p in PACKAGES)}. "
        f"`pydicom.data.get_testdata_files()` lists {len(paths)} paths, all in the pydicom package's `data/test_files/` "
        "(nothing downloaded; the files pydicom would fetch from pydicom-data are not here); "
        f"{len(found)} of them are DICOM files with pixel data. Each is read by `load_image(path)` with its defaults (the "
        "file's window, else W 400 / L 40); the result is the returned image's shape, min and max, or load_image's one-line "
        "error (the file's path cut from its front). A multi-frame file is read as its middle frame (`load_image` takes "
        "frame `frames // 2`, from 0); no bundled CT/MR file has more than one frame. Decoders: the core dependencies' "
        "(GDCM, pylibjpeg-openjpeg, Pillow, pydicom's own RLE and deflate)"
        + (" and the dicom-gpl extra's pylibjpeg-libjpeg (GPLv3)." if _version("pylibjpeg-libjpeg") != "not installed"
           else "; the dicom-gpl extra (pylibjpeg-libjpeg, GPLv3, the only 12-bit JPEG decoder) is not installed."),
        "", "## Summary", "", f"- CT and MR files with pixel data: {summary(ct_mr)[0]}.",
        f"- Other modalities, compressed or deflated: {summary(other)[0]}.",
        *[f"- `{r['file']}` failed: {NOTES.get(Path(r['file']).name) or refusal(r)}."
          for r in ct_mr + other if not r["result"].startswith("decoded")],
        "", "## Transfer syntaxes", "", *coverage(ct_mr, other), "",
        f"## CT and MR files with pixel data ({len(ct_mr)})", "", *table(ct_mr), "",
        f"## Other modalities, compressed or deflated ({len(other)})", "", "Every other bundled file with pixel data in a "
        "compressed or deflated transfer syntax: they cover the syntaxes no bundled CT/MR file uses (JPEG baseline and "
        "extended, JPEG lossless, JPEG-LS near-lossless, deflate).", "", *table(other), "",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "results.md", "\n".join(md))
    for title, rows in (("CT/MR with pixel data", ct_mr), ("other modalities, compressed or deflated", other)):
        print("\n  ".join([f"{title}: {len(rows)} files", *summary(rows)]))
    print(f"wrote {args.out / 'results.md'}")


def _int(ds: pydicom.Dataset, keyword: str) -> int:
    """An integer element, 1 when absent or invalid (a bundled file has NumberOfFrames '1A')."""
    return int(v) if str(v := ds.get(keyword) or 1).strip().isdigit() else 1


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
