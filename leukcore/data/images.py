"""Decoding image files (refusing broken ones) and the decoded-image cache keyed by file hash."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import BadImageError, DataError, show_path

#: Images above this many pixels are refused before decoding (about 50 MP: a 7000x7000 RGB
#: image is 147 MB as uint8; microscope tiles of the studied datasets are < 1 MP).
MAX_PIXELS = 50_000_000


def cache_dir() -> Path:
    """``$LEUKCORE_CACHE``, else ``~/.cache/leukcore``."""
    return Path(os.environ.get("LEUKCORE_CACHE") or Path.home() / ".cache" / "leukcore")


def read_image(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, list[str]]:
    """Decode one image file to RGB uint8 ``(H, W, 3)``; return it with notes on any conversion.

    Refuses (``BadImageError``): an empty file, a file that is not an image, a truncated image,
    an image over ``max_pixels`` (checked from the header, before decoding).  Converts, and says
    so in the notes: grey-scale and palette to RGB, RGBA / LA to RGB (alpha discarded), 16-bit
    grey to 8-bit (``round(v / 257)``), 16-bit per channel RGB(A) to 8-bit (PIL keeps the high
    byte, ``v // 256``).  Headers above PIL's own decompression-bomb limit are refused the same way.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as e:
        raise BadImageError(p, f"cannot read ({e.strerror})") from None
    if size == 0:
        raise BadImageError(p, "empty file (0 bytes)")
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            # PIL warns above ~89 MP and raises above ~179 MP; our own limit below is lower and clearer
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(p)
        with im:
            w, h = im.size
            if w * h > max_pixels:
                raise BadImageError(p, f"{w}x{h} pixels exceeds the limit of {max_pixels:,} "
                                       f"(refused before decoding; resize it or raise max_pixels)")
            mode = im.mode
            raw16 = any(";16" in _rawmode(t) for t in (im.tile or ()))
            im.load()
            if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
                arr = np.asarray(im, dtype=np.float64)
                scale = 257.0 if mode != "I" or arr.max() > 255 else 1.0
                arr = np.clip(np.rint(arr / scale), 0, 255).astype(np.uint8)
                notes.append(f"{'16-bit' if scale > 1 else '32-bit integer'} {mode} converted to 8-bit grey"
                             f"{' (/257)' if scale > 1 else ' (values already 0..255)'} then RGB")
                return np.repeat(arr[..., None], 3, axis=2), notes
            if raw16:
                notes.append(f"16-bit per channel {mode} converted to 8 bits (high byte, about /257)")
            if mode != "RGB":
                notes.append(f"{mode} converted to RGB" + (" (alpha discarded)" if "A" in mode else ""))
                im = im.convert("RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except BadImageError:
        raise
    except Image.DecompressionBombError as e:
        raise BadImageError(p, f"header claims more pixels than the limit of {max_pixels:,} ({e}); refused "
                               f"before decoding; resize it") from None
    except UnidentifiedImageError:
        raise BadImageError(p, "not an image (unrecognised format) despite its extension") from None
    except (OSError, SyntaxError, ValueError) as e:
        msg = str(e)
        reason = "truncated image" if "truncat" in msg.lower() else f"cannot decode ({msg})"
        raise BadImageError(p, reason) from None
    return np.ascontiguousarray(arr), notes


def _rawmode(tile) -> str:
    """The raw mode of one PIL tile descriptor (``'RGB;16B'`` for a 48-bit PNG), or ``''``."""
    args = tile[3] if len(tile) > 3 else None
    if isinstance(args, tuple):
        args = args[0] if args else None
    return args if isinstance(args, str) else ""


def _resize(img: np.ndarray, size: int | None) -> np.ndarray:
    import cv2

    if size is None or img.shape[:2] == (size, size):
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


class ImageCache:
    """Decoded images kept as uint8 ``(size, size, 3)``, in memory and on disk.

    Keys are ``(sha256, size)``: each file is decoded once, ever, per size.  On disk each image is
    ``<cache_dir>/decoded/<size>/<sha[:2]>/<sha>.npy``.  ``disk=False`` keeps memory only.
    """

    def __init__(self, root: str | os.PathLike | None = None, *, disk: bool = True):
        self.root = Path(root) if root is not None else cache_dir()
        self.disk = disk
        self._mem: dict[tuple[str, int | None], np.ndarray] = {}

    def _file(self, sha: str, size: int | None) -> Path:
        return self.root / "decoded" / str(size or "native") / sha[:2] / f"{sha}.npy"

    def get(self, path: str | os.PathLike, sha: str, size: int | None) -> np.ndarray:
        """The decoded, resized image of ``path`` (content ``sha``), from memory, disk or the file."""
        key = (sha, size)
        if key in self._mem:
            return self._mem[key]
        f = self._file(sha, size)
        img = None
        if self.disk and f.is_file():
            try:
                img = np.load(f, allow_pickle=False)
            except (OSError, ValueError):
                img = None
        if img is None:
            img, notes = read_image(path)
            if notes:
                warnings.warn(f"{show_path(path)}: " + "; ".join(notes), stacklevel=3)
            img = _resize(img, size)
            if self.disk:
                f.parent.mkdir(parents=True, exist_ok=True)
                tmp = f.with_name(f".{f.name}.{os.getpid()}.tmp.npy")
                np.save(tmp, img, allow_pickle=False)
                os.replace(tmp, f)
        self._mem[key] = img
        return img


_DEFAULT_CACHE: ImageCache | None = None


def default_cache() -> ImageCache:
    """The process-wide :class:`ImageCache` (memory + ``cache_dir()`` on disk)."""
    global _DEFAULT_CACHE
    if _DEFAULT_CACHE is None or _DEFAULT_CACHE.root != cache_dir():
        _DEFAULT_CACHE = ImageCache()
    return _DEFAULT_CACHE


def load_images(table: pd.DataFrame, size: int | None = 224, *, cache: ImageCache | None = None,
                on_bad: str = "raise") -> tuple[np.ndarray, pd.DataFrame]:
    """Decoded images of ``table`` as one uint8 array ``(N, size, size, 3)``, through the cache.

    ``on_bad="raise"`` (default) stops at the first bad file with a message naming it;
    ``on_bad="skip"`` leaves it out.  Returns ``(images, kept)`` where ``kept`` is the table of
    the images returned and ``kept.attrs['skipped']`` lists ``{"id", "reason"}`` of every file
    left out (record it in the run).
    """
    if on_bad not in ("raise", "skip"):
        raise ValueError(f"unknown on_bad {on_bad!r}; valid: 'raise', 'skip'")
    cache = cache or default_cache()
    imgs, keep, skipped = [], [], []
    for i, (path, sha, id_) in enumerate(zip(table["path"], table["sha256"], table["id"])):
        try:
            imgs.append(cache.get(path, sha, size))
            keep.append(i)
        except BadImageError as e:
            if on_bad == "raise":
                raise BadImageError(e.path, e.reason + "; fix or remove the file, or pass on_bad='skip' "
                                                       "to leave it out (it is then listed in the run record)") from None
            skipped.append({"id": id_, "reason": e.reason})
    kept = table.iloc[keep].reset_index(drop=True)
    kept.attrs = dict(table.attrs)
    kept.attrs["skipped"] = skipped
    if size is None and len({im.shape for im in imgs}) > 1:
        raise DataError("images differ in size; pass size=N to resize them to one size")
    arr = np.stack(imgs) if imgs else np.zeros((0, size or 0, size or 0, 3), np.uint8)
    return arr, kept
