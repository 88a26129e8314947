"""Import public IQA datasets, in their published layouts, as a manifest (README: Data).

One small reader per format turns the dataset's own annotation files into :class:`Entry` rows with
scores already on the manifest's 0-4 scale (higher is better); :func:`import_dataset` then assigns
splits by content, checks the files, and writes ``manifest.csv`` plus ``manifest.json`` (format,
source files, score mapping, split rule, counts) next to it. ``FORMATS`` maps a format name to its
reader.

Everything a reader assumes about a dataset's layout (file names, column or variable names, score
ranges and directions, image folders) is in the constants just above the reader, so a wrong
assumption is fixed in one place. Score ranges are checked: a value outside the published range is
an error (not clipped), so a wrong assumed range shows up at import time.

Splits: contents are ordered by ``sha256(f"{seed}:{content}")`` and cut 70/10/20 (train/val/test,
by count of contents, rounded), so every image of a content lands in one split and the same seed
gives the same split.

Errors are one-line :class:`LoraIqaError`\\ s naming the file, and the row and column where
relevant; nothing is written unless the whole dataset was read and checked.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from lora_iqa.data.manifest import SPLITS, write_manifest
from lora_iqa.data.tables import (
    SPLIT_FRACTIONS,
    Entry,
    Imported,
    ScaleInfo,
    _col_letter,
    _find,
    _image_dir,
    _join,
    _mapped,
    _mat_numbers,
    _mat_strings,
    _one_photo_per_content,
    _read_csv,
    _read_xlsx,
    _rel,
    _scores,
    _table,
    assign_splits,
)
from lora_iqa.errors import LoraIqaError, atomic_write_text

# --- KonIQ-10k --------------------------------------------------------------------------------
# Hosu et al. 2020. ROOT holds koniq10k_scores_and_distributions.csv (image_name, c1..c5, c_total,
# MOS, SD, MOS_zscore) or koniq10k_distributions_sets.csv (same columns + set), and the images in
# 1024x768/ (or the 512x384/ release). MOS is the mean of ACR ratings 1 (bad) .. 5 (excellent).
# Each photo is its own content (10,073 different photos); the official 'set' split is not used.
KONIQ_FILES = ("koniq10k_scores_and_distributions.csv", "koniq10k_distributions_sets.csv")
KONIQ_IMAGE_DIRS = ("1024x768", "512x384")
KONIQ_NAME = "image_name"
KONIQ_SCALES = {"overall": ScaleInfo("MOS", 1.0, 5.0, True)}


def read_koniq10k(root: Path) -> Imported:
    """KonIQ-10k: ``koniq10k_scores_and_distributions.csv`` (image_name, MOS in 1-5) + ``1024x768/``."""
    path = _find(root, KONIQ_FILES, "KonIQ-10k score file")
    rows = _read_csv(path, (KONIQ_NAME, *(s.column for s in KONIQ_SCALES.values())))
    entries = _one_photo_per_content(root, path, rows, KONIQ_NAME, KONIQ_SCALES, KONIQ_IMAGE_DIRS)
    return Imported(entries, tuple(KONIQ_SCALES), KONIQ_SCALES, [_rel(path, root)],
                    "MOS 1-5 (ACR); each photo its own content")


# --- SPAQ -------------------------------------------------------------------------------------
# Fang et al. 2020 (smartphone photos). ROOT holds Annotations/MOS and Image attribute scores.xlsx
# (first sheet, header row: Image name, MOS, Brightness, Colorfulness, Contrast, Noisiness,
# Sharpness; all on a 0-100 slider) and the images in TestImage/ (00001.jpg ...).
# ASSUMPTION: every attribute score rates the attribute's quality (higher is better), also
# Noisiness (a high score = little visible noise); the paper reports positive correlations of all
# five attributes with MOS. Each photo is its own content.
SPAQ_FILES = ("Annotations/MOS and Image attribute scores.xlsx", "MOS and Image attribute scores.xlsx")
SPAQ_IMAGE_DIRS = ("TestImage",)
SPAQ_NAME = "Image name"
SPAQ_SCALES = {
    "sharpness": ScaleInfo("Sharpness", 0.0, 100.0, True),
    "noise": ScaleInfo("Noisiness", 0.0, 100.0, True),
    "colorfulness": ScaleInfo("Colorfulness", 0.0, 100.0, True),
    "brightness": ScaleInfo("Brightness", 0.0, 100.0, True),
    "contrast": ScaleInfo("Contrast", 0.0, 100.0, True),
    "overall": ScaleInfo("MOS", 0.0, 100.0, True),
}


def read_spaq(root: Path) -> Imported:
    """SPAQ: ``Annotations/MOS and Image attribute scores.xlsx`` (MOS + 5 attributes, 0-100) + ``TestImage/``."""
    path = _find(root, SPAQ_FILES, "SPAQ score sheet")
    rows = _table(path, _read_xlsx(path), (SPAQ_NAME, *(s.column for s in SPAQ_SCALES.values())))
    entries = _one_photo_per_content(root, path, rows, SPAQ_NAME, SPAQ_SCALES, SPAQ_IMAGE_DIRS)
    return Imported(entries, tuple(SPAQ_SCALES), SPAQ_SCALES, [_rel(path, root)],
                    "MOS and attributes 0-100, all higher-is-better (Noisiness too); each photo its own content")


# --- LIVE In the Wild Image Quality Challenge (CLIVE) -----------------------------------------
# Ghadiyaram & Bovik 2016. ROOT (ChallengeDB_release/) holds Data/AllImages_release.mat (cell
# array AllImages_release of 1169 file names) and Data/AllMOS_release.mat (AllMOS_release, 1169
# MOS on a 0-100 slider, higher is better), images in Images/; the first 7 names (t1.bmp ...
# t7.bmp, the raters' training images) live in Images/trainingImages/. They are imported too.
# Each photo is its own content.
LIVEC_NAMES = ("Data/AllImages_release.mat", "AllImages_release")  # (file, variable)
LIVEC_MOS = ("Data/AllMOS_release.mat", "AllMOS_release")
LIVEC_IMAGE_DIRS = ("Images", "Images/trainingImages")  # first folder holding the file wins
LIVEC_SCALES = {"overall": ScaleInfo("AllMOS_release", 0.0, 100.0, True)}


def read_livec(root: Path) -> Imported:
    """LIVE Challenge: ``Data/AllImages_release.mat`` + ``Data/AllMOS_release.mat`` (0-100) + ``Images/``."""
    names_path = _find(root, (LIVEC_NAMES[0],), "LIVE Challenge image list")
    mos_path = _find(root, (LIVEC_MOS[0],), "LIVE Challenge MOS file")
    names = _mat_strings(names_path, LIVEC_NAMES[1])
    mos = _mat_numbers(mos_path, LIVEC_MOS[1])
    if len(names) != len(mos):
        raise LoraIqaError(f"{mos_path}: variable '{LIVEC_MOS[1]}' has {len(mos)} values but "
                           f"{names_path} lists {len(names)} images (expected one MOS per image)")
    entries = []
    for i, (name, value) in enumerate(zip(names, mos), start=1):
        where = f"{mos_path}: variable '{LIVEC_MOS[1]}' entry {i}"
        folder = next((d for d in LIVEC_IMAGE_DIRS if (root / d / name).is_file()), LIVEC_IMAGE_DIRS[0])
        entries.append(Entry(f"{folder}/{name}", Path(name).stem,
                             {"overall": _mapped(value, LIVEC_SCALES["overall"], where)}, where))
    return Imported(entries, tuple(LIVEC_SCALES), LIVEC_SCALES, [_rel(names_path, root), _rel(mos_path, root)],
                    "MOS 0-100; training images t1-t7 included (Images/trainingImages/); each photo its own content")


# --- KADID-10k --------------------------------------------------------------------------------
# Lin, Hosu & Saupe 2019. ROOT (kadid10k/) holds dmos.csv (dist_img, ref_img, dmos, var) and
# images/ with the 10,125 distorted images (I01_01_01.png ...) and the 81 references (I01.png ...).
# Despite its name, 'dmos' is the mean of degradation-category ratings 1 (very annoying) ..
# 5 (imperceptible), so HIGHER IS BETTER (mild distortions score ~4.5, strong ones ~1.2); flip
# `higher_is_better` here if your copy differs. Content = the reference scene (I01 ...).
KADID_FILES = ("dmos.csv",)
KADID_IMAGE_DIRS = ("images",)
KADID_DIST, KADID_REF = "dist_img", "ref_img"
KADID_SCALES = {"overall": ScaleInfo("dmos", 1.0, 5.0, True)}


def read_kadid10k(root: Path) -> Imported:
    """KADID-10k: ``dmos.csv`` (dist_img, ref_img, dmos 1-5 DCR, higher is better) + ``images/``."""
    path = _find(root, KADID_FILES, "KADID-10k score file")
    rows = _read_csv(path, (KADID_DIST, KADID_REF, *(s.column for s in KADID_SCALES.values())))
    folder = KADID_IMAGE_DIRS[0]
    entries = []
    for line, row in rows:
        if not row[KADID_REF]:
            raise LoraIqaError(f"{path}:{line}: column '{KADID_REF}': empty")
        entries.append(Entry(f"{folder}/{row[KADID_DIST]}", Path(row[KADID_REF]).stem,
                             _scores(row, KADID_SCALES, path, line), f"{path}:{line}",
                             reference=f"{folder}/{row[KADID_REF]}"))
    return Imported(entries, tuple(KADID_SCALES), KADID_SCALES, [_rel(path, root)],
                    "dmos 1-5 is a DCR mean, higher is better; content = reference scene")


# --- AGIQA-3K ---------------------------------------------------------------------------------
# Li et al. 2023 (AI-generated images). ROOT holds data.csv (name, prompt, adj1, adj2, style,
# mos_quality, std_quality, mos_align, std_align) and the images, in AGIQA-3K/ (the name of the
# image archive), images/ or next to data.csv: the first folder holding the first image wins.
# ASSUMPTION: mos_quality and mos_align are on 0-5 (higher is better). Content = the prompt.
AGIQA3K_FILES = ("data.csv",)
AGIQA3K_IMAGE_DIRS = ("AGIQA-3K", "images", "image", ".")
AGIQA3K_NAME, AGIQA3K_PROMPT = "name", "prompt"
AGIQA3K_SCALES = {
    "alignment": ScaleInfo("mos_align", 0.0, 5.0, True),
    "overall": ScaleInfo("mos_quality", 0.0, 5.0, True),
}


def read_agiqa3k(root: Path) -> Imported:
    """AGIQA-3K: ``data.csv`` (name, prompt, mos_quality, mos_align on 0-5) + images; content = prompt."""
    path = _find(root, AGIQA3K_FILES, "AGIQA-3K score file")
    rows = _read_csv(path, (AGIQA3K_NAME, AGIQA3K_PROMPT, *(s.column for s in AGIQA3K_SCALES.values())))
    folder = _image_dir(root, AGIQA3K_IMAGE_DIRS, rows[0][1][AGIQA3K_NAME] if rows else "")
    entries = []
    for line, row in rows:
        prompt = row[AGIQA3K_PROMPT]
        if not prompt:
            raise LoraIqaError(f"{path}:{line}: column '{AGIQA3K_PROMPT}': empty")
        entries.append(Entry(_join(folder, row[AGIQA3K_NAME]), prompt, _scores(row, AGIQA3K_SCALES, path, line),
                             f"{path}:{line}", extra={"prompt": prompt}))
    return Imported(entries, tuple(AGIQA3K_SCALES), AGIQA3K_SCALES, [_rel(path, root)],
                    "mos_quality and mos_align on 0-5; content = prompt")


# --- AIGCIQA2023 ------------------------------------------------------------------------------
# Wang et al. 2023. ROOT holds DATA/MOS/mosz1.mat (quality), mosz2.mat (authenticity), mosz3.mat
# (correspondence), each a 2400x1 variable MOSz, the images Image/allimg/0.png .. 2399.png, and the
# prompt list AIGCIQA2023_Prompts.xlsx (100 prompts, one per row after a header row, text in
# column C, or in a column headed 'prompt').
# Image i was made by model i // 400 from prompt (i % 400) // 4 (6 models x 100 prompts x 4 images).
# ASSUMPTION: MOSz are z-scores rescaled to 0-100 (higher is better). Content = the prompt.
AIGC23_MOS = {  # dimension -> (file, variable)
    "authenticity": ("DATA/MOS/mosz2.mat", "MOSz"),
    "alignment": ("DATA/MOS/mosz3.mat", "MOSz"),
    "overall": ("DATA/MOS/mosz1.mat", "MOSz"),
}
AIGC23_PROMPTS = ("AIGCIQA2023_Prompts.xlsx", "DATA/AIGCIQA2023_Prompts.xlsx", "prompts.xlsx")
AIGC23_PROMPT_COLUMN = ("prompt", 2)  # header name (case-insensitive), else this 0-based column (C)
AIGC23_IMAGES = "Image/allimg/{i}.png"
AIGC23_PER_PROMPT = 4  # images per prompt and model
AIGC23_SCALES = {dim: ScaleInfo(f"{Path(f).name}:{var}", 0.0, 100.0, True) for dim, (f, var) in AIGC23_MOS.items()}


def read_aigciqa2023(root: Path) -> Imported:
    """AIGCIQA2023: ``DATA/MOS/mosz{1,2,3}.mat`` + ``AIGCIQA2023_Prompts.xlsx`` + ``Image/allimg/``."""
    mats = {dim: _find(root, (f,), f"AIGCIQA2023 MOS file ({dim})") for dim, (f, _) in AIGC23_MOS.items()}
    prompt_path = _find(root, AIGC23_PROMPTS, "AIGCIQA2023 prompt list")
    prompts = _aigc23_prompts(prompt_path)
    values = {dim: _mat_numbers(mats[dim], AIGC23_MOS[dim][1]) for dim in AIGC23_MOS}
    n = len(values["overall"])
    for dim, v in values.items():
        if len(v) != n:
            raise LoraIqaError(f"{mats[dim]}: {len(v)} values, but {mats['overall']} has {n} "
                               "(expected one score per image in every MOS file)")
    block = AIGC23_PER_PROMPT * len(prompts)
    if n % block:
        raise LoraIqaError(f"{mats['overall']}: {n} scores is not a multiple of {block} "
                           f"({len(prompts)} prompts in {prompt_path} x {AIGC23_PER_PROMPT} images per model)")
    entries = []
    for i in range(n):
        prompt = prompts[(i % block) // AIGC23_PER_PROMPT]
        scores = {dim: _mapped(values[dim][i], AIGC23_SCALES[dim],
                               f"{mats[dim]}: variable '{AIGC23_MOS[dim][1]}' entry {i + 1}") for dim in AIGC23_MOS}
        entries.append(Entry(AIGC23_IMAGES.format(i=i), prompt, scores, f"{mats['overall']}: entry {i + 1}",
                             extra={"prompt": prompt}))
    sources = [_rel(p, root) for p in mats.values()] + [_rel(prompt_path, root)]
    return Imported(entries, tuple(AIGC23_SCALES), AIGC23_SCALES, sources,
                    "MOSz 0-100; image i: prompt (i % 400) // 4; correspondence -> alignment; content = prompt")


def _aigc23_prompts(path: Path) -> list[str]:
    table = _read_xlsx(path)
    header = [c.strip().lower() for c in table[0]] if table else []
    name, index = AIGC23_PROMPT_COLUMN
    col = header.index(name) if name in header else index
    prompts = []
    for r, row in enumerate(table[1:], start=2):
        text = row[col].strip() if col < len(row) else ""
        if not text and not any(c.strip() for c in row):
            continue  # blank row
        if not text:
            raise LoraIqaError(f"{path}:{r}: column '{_col_letter(col)}': empty prompt")
        prompts.append(text)
    if not prompts:
        raise LoraIqaError(f"{path}: no prompts (expected a header row, then one prompt per row in column "
                           f"'{name}' or {_col_letter(index)})")
    return prompts


# --- LDCTIQAC-2023 ----------------------------------------------------------------------------
# MICCAI 2023 Low-dose CT Perceptual IQA Challenge (Lee et al.). ROOT (LDCTIQAG2023_train/) holds
# train.json, an object mapping image file names ("0000.tif" ...) to the radiologists' mean score
# on 0 (bad) .. 4 (excellent), and the images in image/. The release has no patient ids, so each
# slice is its own content (slices of one patient may then fall into different splits).
LDCT_FILES = ("train.json",)
LDCT_IMAGE_DIRS = ("image", "images")
LDCT_SCALES = {"overall": ScaleInfo("score", 0.0, 4.0, True)}


def read_ldctiqac2023(root: Path) -> Imported:
    """LDCTIQAC-2023: ``train.json`` ({"0000.tif": score 0-4, ...}) + ``image/``."""
    path = _find(root, LDCT_FILES, "LDCTIQAC-2023 score file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LoraIqaError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, dict) or not data:
        raise LoraIqaError(f"{path}: expected a JSON object mapping image file names to scores 0-4")
    folder = _image_dir(root, LDCT_IMAGE_DIRS, next(iter(data)))
    entries = []
    for name, value in data.items():
        where = f"{path}: key '{name}'"
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise LoraIqaError(f"{where}: not a number: {json.dumps(value)}")
        entries.append(Entry(f"{folder}/{name}", Path(name).stem,
                             {"overall": _mapped(value, LDCT_SCALES["overall"], where)}, where))
    return Imported(entries, tuple(LDCT_SCALES), LDCT_SCALES, [_rel(path, root)],
                    "radiologist score 0-4 (the manifest's own scale); each slice its own content")


Reader = Callable[[Path], Imported]
FORMATS: dict[str, Reader] = {
    "koniq10k": read_koniq10k,
    "spaq": read_spaq,
    "livec": read_livec,
    "kadid10k": read_kadid10k,
    "agiqa3k": read_agiqa3k,
    "aigciqa2023": read_aigciqa2023,
    "ldctiqac2023": read_ldctiqac2023,
}


@dataclass(frozen=True)
class ImportResult:
    path: Path  # manifest.csv
    meta_path: Path  # manifest.json
    dimensions: tuple[str, ...]
    counts: dict[str, int]  # images per split


def import_dataset(
    fmt: str, root: str | os.PathLike, out: str | os.PathLike, seed: int = 0, check_files: bool = True
) -> ImportResult:
    """Read dataset ``root`` in format ``fmt``; write the manifest ``out`` and its ``.json`` metadata.

    ``out`` must lie in ``root`` or a folder above it (manifest paths are relative to the manifest's
    folder and may not leave it); a folder or a name without ``.csv`` gets ``manifest.csv``.
    The returned dimensions are the ones to pass to ``read_manifest``.
    """
    if fmt not in FORMATS:
        raise LoraIqaError(f"unknown dataset format '{fmt}' (expected one of {', '.join(FORMATS)})")
    root = Path(root)
    if not root.is_dir():
        raise LoraIqaError(f"{root}: dataset folder not found (expected the {fmt} release folder)")
    out = Path(out)
    if out.is_dir() or out.suffix.lower() != ".csv":
        out = out / "manifest.csv"
    folder = out.parent.resolve()
    root_abs = root.resolve()
    if not root_abs.is_relative_to(folder):
        raise LoraIqaError(f"{out}: the manifest must be in {root} or a folder above it "
                           "(manifest paths are relative to its folder and may not leave it)")

    data = FORMATS[fmt](root)
    if not data.entries:
        raise LoraIqaError(f"{root}: no images listed in {', '.join(data.sources)}")
    meta_path = out.with_suffix(".json")
    for target in (out, meta_path):
        if target.exists() and any(target.resolve() == (root / s).resolve() for s in data.sources):
            raise LoraIqaError(f"{target}: is one of the dataset's own files: choose another --out")
    seen: dict[str, str] = {}
    for e in data.entries:
        if e.image in seen:
            raise LoraIqaError(f"{e.where}: duplicate image '{e.image}' (also at {seen[e.image]})")
        seen[e.image] = e.where
        if check_files:
            for what, rel in (("image", e.image), ("reference", e.reference)):
                if rel is not None and not (root / rel).is_file():
                    raise LoraIqaError(f"{root / rel}: {what} file not found (listed at {e.where}; "
                                       "--no-check-files to import anyway)")

    split_of = assign_splits([e.content for e in data.entries], seed)
    prefix = root_abs.relative_to(folder)

    def rel(p: str) -> str:
        return (prefix / p).as_posix() if prefix.parts else Path(p).as_posix()

    rows = []
    for e in data.entries:
        row: dict[str, object] = {"image": rel(e.image), "split": split_of[e.content], "content": e.content}
        if e.reference is not None:
            row["reference"] = rel(e.reference)
        row.update(e.scores)
        row.update(e.extra)
        rows.append(row)
    counts = {s: sum(1 for r in rows if r["split"] == s) for s in SPLITS}
    meta = {
        "format": fmt,
        "root": rel("."),
        "sources": [rel(s) for s in data.sources],
        "dimensions": list(data.dimensions),
        "mapping": {
            d: {**asdict(s), "formula": "4 * (x - low) / (high - low)" if s.higher_is_better
                else "4 * (high - x) / (high - low)"}
            for d, s in data.scales.items()
        },
        "assumptions": data.notes,
        "split": {"by": "content", "seed": seed, "fractions": dict(zip(SPLITS, SPLIT_FRACTIONS)),
                  "rule": "contents sorted by sha256(f'{seed}:{content}'), cut by count"},
        "counts": counts,
        "contents": len(set(split_of)),
    }
    atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    write_manifest(out, rows, data.dimensions)
    return ImportResult(out, meta_path, data.dimensions, counts)
