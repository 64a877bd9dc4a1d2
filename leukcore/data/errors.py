"""The two errors of the data layer, and paths shown safely in their messages."""
from __future__ import annotations

import os
from pathlib import Path


class DataError(ValueError):
    """A data root, layout or file that cannot be used; the message names the path and the fix."""


class BadImageError(DataError):
    """One image file that cannot be decoded (empty, truncated, not an image, too large)."""

    def __init__(self, path: Path | str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{show_path(path)}: {reason}")


def show_path(path: Path | str) -> str:
    """A path as text, safe for names that are not valid UTF-8."""
    s = os.fsdecode(path) if not isinstance(path, str) else path
    return s.encode("utf-8", "backslashreplace").decode("utf-8") if has_surrogates(s) else s


def has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True
