"""Reading dataset releases' label files (CSV, XLSX, MAT) and mapping their scores onto 0-4."""

from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from lora_iqa.errors import LoraIqaError

SPLIT_FRACTIONS = (0.7, 0.1, 0.2)  # train, val, test: by number of contents


@dataclass(frozen=True)
class ScaleInfo:
    """Where a score comes from and its published range and direction; maps it linearly onto 0-4."""

    column: str  # source column (CSV/XLSX header, MAT variable or JSON field)
    low: float
    high: float
    higher_is_better: bool = True

    def to_score(self, value: float) -> float:
        """``value`` (in [low, high]) on the manifest's 0-4 scale, higher is better."""
        t = (value - self.low) / (self.high - self.low)
        return round(4.0 * (t if self.higher_is_better else 1.0 - t), 6)


@dataclass
class Entry:
    """One image of a dataset, with its scores already on the 0-4 scale."""

    image: str  # relative to the dataset root, POSIX separators
    content: str
    scores: dict[str, float]
    where: str  # "file:row" (for messages)
    reference: str | None = None  # relative to the dataset root
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Imported:
    """What a reader returns: the entries, the dimension tuple and how each dimension was mapped."""

    entries: list[Entry]
    dimensions: tuple[str, ...]
    scales: dict[str, ScaleInfo]
    sources: list[str]  # annotation files read, relative to the root
    notes: str = ""  # the reader's main assumptions (written to manifest.json)


def assign_splits(contents: Sequence[str], seed: int = 0) -> dict[str, str]:
    """Each distinct content -> train/val/test: sorted by a seeded hash, then cut 70/10/20 by count.

    With 3 or more contents every split gets at least one.
    """
    unique = sorted(set(contents), key=lambda c: hashlib.sha256(f"{seed}:{c}".encode()).hexdigest())
    n = len(unique)
    least = 1 if n >= 3 else 0
    n_val = max(least, round(SPLIT_FRACTIONS[1] * n))
    n_train = n - n_val - max(least, round(SPLIT_FRACTIONS[2] * n))
    return {c: "train" if i < n_train else "val" if i < n_train + n_val else "test" for i, c in enumerate(unique)}


def _find(root: Path, candidates: Sequence[str], what: str) -> Path:
    for c in candidates:
        if (root / c).is_file():
            return root / c
    raise LoraIqaError(f"{root / candidates[0]}: missing {what} (expected "
                       f"{' or '.join(repr(c) for c in candidates)} in {root})")


def _one_photo_per_content(root: Path, path: Path, rows: list, name: str, scales: dict, image_dirs: Sequence[str]) -> list:
    """Entries of a score table with one row per photo, each photo its own content (KonIQ, SPAQ)."""
    folder = _image_dir(root, image_dirs, rows[0][1][name] if rows else "")
    return [Entry(f"{folder}/{row[name]}", Path(row[name]).stem, _scores(row, scales, path, line), f"{path}:{line}")
            for line, row in rows]


def _image_dir(root: Path, candidates: Sequence[str], probe: str) -> str:
    """The first candidate folder holding ``probe``, else the first existing one, else the first."""
    for c in candidates:
        if probe and (root / c / probe).is_file():
            return c
    return next((c for c in candidates if (root / c).is_dir()), candidates[0])


def _join(folder: str, name: str) -> str:
    return name if folder == "." else f"{folder}/{name}"


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _read_csv(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """Rows of a CSV with a header line, as (line number, {column: stripped text})."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_bytes().decode("latin-1")
    reader = csv.reader(io.StringIO(text, newline=""))
    table, lines = [], []
    try:
        start = 1
        for fields in reader:
            table.append(fields)
            lines.append(start)
            start = reader.line_num + 1
    except csv.Error as e:
        raise LoraIqaError(f"{path}:{reader.line_num}: malformed CSV ({e})") from e
    return _table(path, table, required, lines)


def _table(
    path: Path, table: list[list[str]], required: Sequence[str], lines: Sequence[int] | None = None
) -> list[tuple[int, dict[str, str]]]:
    """Header row + rows -> [(line, {column: text})]; checks the required columns are there."""
    lines = list(lines) if lines is not None else list(range(1, len(table) + 1))
    first = next((i for i, r in enumerate(table) if any(c.strip() for c in r)), None)
    if first is None:
        raise LoraIqaError(f"{path}: empty file (expected a header with {', '.join(required)})")
    header = [c.strip() for c in table[first]]
    missing = [c for c in required if c not in header]
    if missing:
        raise LoraIqaError(f"{path}:{lines[first]}: missing column(s) {', '.join(repr(c) for c in missing)} "
                           f"(expected {', '.join(required)}; found {', '.join(h for h in header if h)})")
    rows = []
    for line, fields in zip(lines[first + 1:], table[first + 1:]):
        if not any(f.strip() for f in fields):
            continue
        row = {h: (fields[i].strip() if i < len(fields) else "") for i, h in enumerate(header) if h}
        for c in required[:1]:  # the image name
            if not row[c]:
                raise LoraIqaError(f"{path}:{line}: column '{c}': empty")
        rows.append((line, row))
    if not rows:
        raise LoraIqaError(f"{path}: no rows (only a header)")
    return rows


def _scores(row: dict[str, str], scales: dict[str, ScaleInfo], path: Path, line: int) -> dict[str, float]:
    return {d: _mapped(row[s.column], s, f"{path}:{line}: column '{s.column}'") for d, s in scales.items()}


def _mapped(value: object, scale: ScaleInfo, where: str) -> float:
    """Parse ``value`` and map it onto 0-4; ``where`` names the file, row and column for errors."""
    text = str(value).strip()
    try:
        x = float(text)
    except ValueError:
        raise LoraIqaError(f"{where}: not a number: '{text}'") from None
    if not math.isfinite(x):
        raise LoraIqaError(f"{where}: not a finite number: '{text}'")
    if not scale.low - 1e-9 <= x <= scale.high + 1e-9:
        raise LoraIqaError(f"{where}: {text} is outside the published range [{scale.low:g}, {scale.high:g}] "
                           "(see ScaleInfo in lora_iqa/data/datasets.py)")
    return min(4.0, max(0.0, scale.to_score(x)))


def _load_mat(path: Path, var: str):
    import numpy as np
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as e:  # scipy raises many types for non-MAT or v7.3 files
        raise LoraIqaError(f"{path}: cannot read as a MATLAB .mat file ({e})") from e
    if var not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__")) or "none"
        raise LoraIqaError(f"{path}: missing variable '{var}' (found {found})")
    return np.asarray(mat[var])


def _mat_strings(path: Path, var: str) -> list[str]:
    import numpy as np

    arr = _load_mat(path, var)
    out = []
    for i, cell in enumerate(arr.ravel(order="F"), start=1):
        cell = np.asarray(cell)
        if cell.dtype.kind not in "US" or cell.size != 1:
            raise LoraIqaError(f"{path}: variable '{var}' entry {i}: expected a file name, got {cell!r}")
        out.append(str(cell.item()).strip())
    return out


def _mat_numbers(path: Path, var: str) -> list[object]:
    """The entries of a vector variable (values unchecked: :func:`_mapped` parses them)."""
    import numpy as np

    arr = _load_mat(path, var)
    out = []
    for cell in arr.ravel(order="F"):
        cell = np.asarray(cell)
        out.append(cell.item() if cell.size == 1 else repr(cell))
    return out


def _read_xlsx(path: Path) -> list[list[str]]:
    """The first worksheet of an .xlsx as rows of cell texts (openpyxl, read-only, cached values)."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            rows = [["" if v is None else (f"{v:g}" if isinstance(v, float) else str(v)) for v in row]
                    for row in book.worksheets[0].iter_rows(values_only=True)]
        finally:
            book.close()
    except Exception as e:  # zip, XML and openpyxl's own errors: one line naming the file
        raise LoraIqaError(f"{path}: cannot read as an .xlsx workbook ({type(e).__name__}: {e})") from e
    width = max((len(r) for r in rows), default=0)
    return [r + [""] * (width - len(r)) for r in rows]


def _col_letter(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s
