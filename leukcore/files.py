"""Where the project lives, and writing files atomically (records, pages, checkpoints)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically; see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, blob: bytes) -> None:
    """Write ``blob`` to ``path`` atomically; see :func:`atomic_write_with`."""
    atomic_write_with(path, lambda f: f.write(blob))


def atomic_write_with(path: str | os.PathLike, write: Callable) -> None:
    """Call ``write(binary_file)`` on a temporary file in ``path``'s folder, fsync, then ``os.replace``.

    A crash or error before the rename leaves the previous file untouched and removes the
    temporary file; readers see the old content or the new, never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
