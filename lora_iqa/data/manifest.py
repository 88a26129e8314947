"""Read, validate and write ``manifest.csv``: one row per image, paths relative to the manifest's folder.

Columns: ``image``, ``split`` (train/val/test), ``content`` (scene/phantom/patient id; splits never
share a content), one column per quality dimension (scores on the 0-4 scale, higher is better),
optional ``reference`` (the clean image, for full-reference protocols). Any other column is kept,
as a string, in :attr:`Item.extra`.

Every problem is a one-line :class:`LoraIqaError` naming the file, and the line and column where
relevant: ``{path}:{line}: column '{col}': {problem}``. The first problem in file order is reported.
"""

from __future__ import annotations

import csv
import io
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from lora_iqa.errors import LoraIqaError, atomic_write_text, reason

RESERVED = ("image", "split", "content", "reference")
REQUIRED = ("image", "split", "content")
SPLITS = ("train", "val", "test")
SCORE_RANGE = (0.0, 4.0)

_Fail = Callable[[str, str], LoraIqaError]  # (column, problem) -> the error to raise


@dataclass(frozen=True)
class Item:
    """One manifest row."""

    image: Path  # absolute, resolved
    split: str
    content: str
    scores: dict[str, float]
    reference: Path | None
    line: int  # line number in the CSV (the header is line 1)
    extra: dict[str, str]


@dataclass(frozen=True)
class Manifest:
    """A validated manifest."""

    path: Path
    dimensions: tuple[str, ...]
    items: tuple[Item, ...]

    def split(self, name: str) -> list[Item]:
        """The items of split ``name`` (train, val or test), in file order."""
        if name not in SPLITS:
            raise ValueError(f"unknown split '{name}' (expected one of {', '.join(SPLITS)})")
        return [item for item in self.items if item.split == name]


def read_manifest(
    path: str | os.PathLike, dimensions: Sequence[str] | None = None, check_files: bool = True
) -> Manifest:
    """Read and validate a manifest; raise :class:`LoraIqaError` at the first problem.

    ``dimensions=None`` infers them: every non-reserved column whose non-empty values all parse as
    numbers (and that has at least one value) is a dimension; then an empty cell in it is an error.
    Numeric metadata (e.g. ``dose``, ``views``) is therefore taken for a dimension: pass
    ``dimensions`` explicitly when the manifest has such columns.
    ``check_files`` also checks that every image and reference file exists.
    """
    path = Path(path)
    header, records = _parse_csv(path)
    dims = _dimensions(path, header, records, dimensions)
    extras = [c for c in header if c not in RESERVED and c not in dims]
    root = path.parent.resolve()

    items: list[Item] = []
    seen_image: dict[Path, int] = {}
    content_split: dict[str, tuple[str, int]] = {}
    for line, fields in records:
        if len(fields) != len(header):
            raise LoraIqaError(f"{path}:{line}: expected {len(header)} fields, found {len(fields)}")
        row = dict(zip(header, (f.strip() for f in fields)))

        def fail(col: str, problem: str, line: int = line) -> LoraIqaError:
            return LoraIqaError(f"{path}:{line}: column '{col}': {problem}")

        image = _resolve(row["image"], "image", root, check_files, fail)
        split = row["split"]
        if split not in SPLITS:
            raise fail("split", f"unknown split '{split}' (expected one of {', '.join(SPLITS)})")
        content = row["content"]
        if not content:
            raise fail("content", "empty")
        scores = {d: _score(row[d], d, fail) for d in dims}
        ref_text = row.get("reference", "")
        reference = _resolve(ref_text, "reference", root, check_files, fail) if ref_text else None

        if image in seen_image:
            raise fail("image", f"duplicate image '{row['image']}' (also at line {seen_image[image]})")
        seen_image[image] = line
        other_split, other_line = content_split.setdefault(content, (split, line))
        if other_split != split:
            raise fail(
                "content",
                f"content '{content}' is in split '{split}' here and in split '{other_split}' "
                f"at line {other_line} (splits must not share a content)",
            )
        items.append(
            Item(image, split, content, scores, reference, line, {c: row[c] for c in extras})
        )
    return Manifest(path=path, dimensions=tuple(dims), items=tuple(items))


def write_manifest(
    path: str | os.PathLike, rows: Sequence[Mapping[str, object]], dimensions: Sequence[str]
) -> Path:
    """Write ``rows`` as a manifest, atomically; return its path.

    Columns: image, split, content, [reference if any row has one], dimensions..., then any other
    keys in first-seen order. Paths are written as given (relative paths stay relative); missing
    values are written empty.
    """
    path = Path(path)
    dims = list(dimensions)
    has_reference = any(row.get("reference") not in (None, "") for row in rows)
    columns = list(REQUIRED) + (["reference"] if has_reference else []) + dims
    for row in rows:
        columns += [k for k in row if k not in columns and k not in RESERVED]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        missing = [c for c in REQUIRED if row.get(c) in (None, "")]
        if missing:
            raise ValueError(f"write_manifest: row {row!r} has no {', '.join(missing)}")
        writer.writerow(["" if row.get(c) is None else str(row[c]) for c in columns])
    atomic_write_text(path, buf.getvalue())
    return path


# --- internals -------------------------------------------------------------------------------


def _parse_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The stripped header and the non-blank records with their (first) line numbers."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise LoraIqaError(f"{path}: manifest is not a file")
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise LoraIqaError(f"{_shown(str(path), None)}: manifest not found") from None
    except (OSError, ValueError) as e:  # no permission, a link loop, a name too long, a NUL byte...
        raise LoraIqaError(f"{_shown(str(path), None)}: cannot read manifest ({_reason(e)})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LoraIqaError(f"{path}: not UTF-8 text (bad byte at offset {e.start})") from e
    if not text.strip():
        raise LoraIqaError(f"{path}: empty file (no header)")

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                if header is None:
                    header = [f.strip() for f in fields]
                    header_line = start
                else:
                    records.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as e:
        raise LoraIqaError(f"{path}:{reader.line_num}: malformed CSV ({e})") from e
    if header is None:
        raise LoraIqaError(f"{path}: no header (every line is blank or holds only commas)")
    if header_line != 1:  # keep "the header is line 1" true: no leading blank lines
        raise LoraIqaError(f"{path}: no header on line 1 (the first line is blank)")

    for i, name in enumerate(header):
        if not name:
            raise LoraIqaError(f"{path}:1: column {i + 1}: empty column name")
        if name in header[:i]:
            raise LoraIqaError(f"{path}:1: column '{name}': duplicate column")
    for name in REQUIRED:
        if name not in header:
            raise LoraIqaError(
                f"{path}:1: column '{name}': missing required column (expected image, split, "
                f"content, one column per quality dimension, optional reference; found {', '.join(header)})"
            )
    if not records:
        raise LoraIqaError(f"{path}: no rows (only a header)")
    return header, records


def _dimensions(
    path: Path, header: list[str], records: list[tuple[int, list[str]]], given: Sequence[str] | None
) -> list[str]:
    if given is not None:
        for d in given:
            if d in RESERVED:
                raise LoraIqaError(f"{path}:1: column '{d}': reserved, cannot be a quality dimension")
            if d not in header:
                raise LoraIqaError(
                    f"{path}:1: column '{d}': missing quality-dimension column (found {', '.join(header)})"
                )
        return list(given)
    dims, first_text = [], None
    for i, name in enumerate(header):
        if name in RESERVED:
            continue
        cells = [(line, f[i].strip()) for line, f in records if i < len(f) and f[i].strip()]
        text = next(((line, v) for line, v in cells if not _is_number(v)), None)
        if cells and text is None:
            dims.append(name)
        elif text and first_text is None:
            first_text = (text[0], name, text[1])
    if not dims and first_text:
        line, name, value = first_text
        raise LoraIqaError(
            f"{path}:{line}: column '{name}': not a number: '{value}' "
            "(no column holds only numbers, so no quality dimension could be inferred)"
        )
    if not dims:
        raise LoraIqaError(f"{path}:1: no quality-dimension column (expected one column of 0-4 scores)")
    return dims


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _score(text: str, col: str, fail: _Fail) -> float:
    """Parse a score on the 0-4 scale."""
    if not text:
        raise fail(col, "empty score")
    try:
        value = float(text)
    except ValueError:
        raise fail(col, f"not a number: '{text}'") from None
    if not math.isfinite(value):
        raise fail(col, f"score must be finite, got '{text}'")
    lo, hi = SCORE_RANGE
    if not lo <= value <= hi:
        raise fail(col, f"score {text} is outside [{lo:g}, {hi:g}]")
    return value


def _resolve(text: str, col: str, root: Path, check_files: bool, fail: _Fail) -> Path:
    """Resolve a manifest path under ``root``; symlinks are followed before the containment check."""
    if not text:
        raise fail(col, "empty")
    if Path(text).is_absolute():
        raise fail(col, f"absolute path '{text}' (paths are relative to the manifest's folder)")
    try:  # every way the OS can refuse a path (NUL byte, link loop, name too long) is one line
        resolved = (root / text).resolve()
        inside = resolved.is_relative_to(root)
        found = not check_files or resolved.is_file()
    except (OSError, ValueError, RuntimeError) as e:
        raise fail(col, f"cannot use path '{_shown(text)}' ({_reason(e)})") from None
    if not inside:
        raise fail(col, f"path '{text}' leaves the manifest's folder")
    if not found:
        raise fail(col, f"file not found: '{text}'")
    return resolved


def _shown(text: str, limit: int | None = 160) -> str:
    """``text`` for a one-line message: unprintable characters escaped; the middle cut beyond ``limit``."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if limit is None or len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 4:]}"


def _reason(e: BaseException) -> str:
    """Why the OS refused a path, without repeating the path."""
    if isinstance(e, RuntimeError):  # Path.resolve's symlink loop before Python 3.13
        return "symbolic link loop"
    return reason(e)
