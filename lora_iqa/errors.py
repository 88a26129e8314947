"""The one error type users see: a single line naming the file, row or key at fault."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator


class LoraIqaError(Exception):
    """A user-facing error. Its message is one line that names the file, row/column or key at fault."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, replace_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds.

    Works for files and directories: whatever the block writes at the temporary path replaces
    ``path`` in one rename, so readers never see a half-written result. An existing directory at
    ``path`` is never replaced (one line naming it) unless ``replace_dir``: only callers that checked
    it holds their own earlier output pass that. The temporary's name carries the writer's pid
    (``.NAME.PID.XXXX.tmp``), so a later run can tell a killed writer's leftovers (see
    :func:`remove_stale_temporaries`).
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink() and not replace_dir:
        raise LoraIqaError(f"{path}: is a directory; refusing to replace it (give a file name)")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name[:150]}.{os.getpid()}.", suffix=".tmp", dir=path.parent))
    os.rmdir(tmp)  # callers create a file or a directory at this name
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            if not tmp.is_dir():
                raise LoraIqaError(f"{path}: is a directory; refusing to replace it with a file")
            old = path.with_name(f".{path.name[:150]}.{os.getpid()}.old.tmp")
            os.replace(path, old)
            os.replace(tmp, path)
            remove_path(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise


def check_writable_dir(folder: str | os.PathLike) -> Path:
    """Create ``folder`` (and its parents) if needed and prove a file can be written in it; one line
    naming the folder otherwise. Called before long work, so it fails first, not last."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        where = e.filename if e.filename and str(e.filename) != str(folder) else folder
        raise LoraIqaError(f"{where}: cannot write here ({e.strerror or e})") from None
    return folder


def check_output_file(path: str | os.PathLike) -> Path:
    """An output file that may be written: not a directory, its folder writable (checked now)."""
    path = Path(path)
    if path.is_dir():
        raise LoraIqaError(f"{path}: is a directory; refusing to replace it (give a file name)")
    check_writable_dir(path.parent)
    return path


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries that :func:`atomic_path` writers of ``path`` left when they were killed
    (their pid is no longer alive); a live writer's are kept. Returns what was removed."""
    path = Path(path)
    name = path.name[:150]
    # exactly atomic_path's names: mkdtemp's 8-character random part, or the replaced folder's ".old"
    ours = re.compile(rf"\.{re.escape(name)}\.(\d+)\.(?:[a-z0-9_]{{8}}|old)\.tmp")
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(name)}.*.tmp"):
        m = ours.fullmatch(tmp.name)
        if m and not _alive(int(m.group(1))):
            remove_path(tmp)
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def first_line(e: BaseException) -> str:
    """An exception's first non-blank line (its type name when it has no message)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__


def reason(e: BaseException) -> str:
    """A short one-line description of an exception from the OS or a third-party reader (an OS error
    without its path, which the caller's message names already)."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip().splitlines()
    first = text[0] if text else ""
    first = first if len(first) <= 200 else first[:197] + "..."
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_fig(fig, path: str | os.PathLike) -> None:
    """Save a matplotlib figure as PNG through a temporary name, then close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def remove_path(p: Path) -> None:
    """Remove a file, link or whole directory tree, if there."""
    import shutil

    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink()
