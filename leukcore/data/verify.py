"""``leukcore data verify`` (is a folder a usable copy of a dataset?) and ``leukcore data fetch``."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Callable

from .datasets import find_duplicates, layout_error, list_subdirs, load_dataset
from .errors import BadImageError, DataError, has_surrogates, show_path
from .images import read_image
from .registry import DATASETS, IMAGE_EXTENSIONS, dataset_info


# --------------------------------------------------------------------------------------------
# Verification (``leukcore data verify``)
# --------------------------------------------------------------------------------------------


def detect_dataset(root: str | os.PathLike) -> str:
    """Guess which dataset a folder holds from its layout; raise DataError listing the layouts."""
    root = Path(root)
    if (root / "Original").is_dir() or (root / "Segmented").is_dir():
        return "taleqani-all"
    if (root / "training_data").is_dir() or (root / "C-NMC_Leukemia").is_dir():
        return "cnmc-2019"
    if (root / "train").is_dir() and (root / "test").is_dir():
        return "leukemia-0.2"
    if any((c / "all_benign").is_dir() for c in (root, root / "ALL", root / "Multi Cancer" / "ALL",
                                                  root / "Multi Cancer" / "Multi Cancer" / "ALL")):
        return "multicancer-all"
    if (root / "Healthy").is_dir() or (root / "lymphocyte").is_dir():
        return "pbc-lymphocytes"
    for d in DATASETS:
        if (root / d).is_dir() and d != "synthetic":
            return d
    layouts = "; ".join(f"{k}: {v.layout}" for k, v in DATASETS.items() if k != "synthetic")
    raise DataError(f"{os.path.abspath(root)}: no known dataset layout. Known layouts: {layouts}. "
                    f"Folders found: {list_subdirs(root) or 'none'}")


_TALEQANI_NAME = re.compile(r"^WBC-(Benign|Malignant-(Early|Pre|Pro))-\d+\.jpe?g$", re.IGNORECASE)


def verify(root: str | os.PathLike, dataset: str | None = None) -> dict:
    """Check a dataset folder: counts per class, duplicate groups, and every bad or misplaced file.

    Returns ``{"dataset", "root", "parts": [{"name", "counts", "n", "duplicate_groups"}], "bad":
    [{"path", "reason"}], "ok"}``.  Bad: unreadable, empty, truncated, not an image, too large,
    non-UTF-8 name; misplaced: a file outside the class folders, a non-image file in a class
    folder, a Taleqani name whose class contradicts its folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{os.path.abspath(root)} does not exist or is not a folder")
    dataset = dataset or detect_dataset(root)
    dataset_info(dataset)
    if (root / dataset).is_dir():
        root = root / dataset
    bad: list[dict] = []
    parts = []
    if dataset == "taleqani-all":
        variants = [v for v in ("original", "segmented") if (root / v.capitalize()).is_dir()]
        if not variants:
            raise layout_error(dataset, root, "neither 'Original' nor 'Segmented' found")
        tables = [(v.capitalize(), load_dataset(dataset, root, variant=v, verbose=False)) for v in variants]
        class_dirs = [root / v.capitalize() / c for v in variants for c in DATASETS[dataset].classes]
        top_dirs = [root] + [root / v.capitalize() for v in variants]
    else:
        t = load_dataset(dataset, root, verbose=False)
        tables = [(p, g.reset_index(drop=True)) for p, g in t.groupby(t["split"].fillna("all"))] if t["split"].notna().any() \
            else [("all", t)]
        class_dirs = sorted({Path(p).parent for p in t["path"]})
        top_dirs = [root]
    for name, t in tables:
        dups = find_duplicates(t)
        for path, cls in zip(t["path"], t["class_name"]):
            try:
                read_image(path)
            except BadImageError as e:
                bad.append({"path": e.path, "reason": e.reason})
            if dataset == "taleqani-all":
                m = _TALEQANI_NAME.match(Path(path).name)
                named = None if m is None else (m.group(2) or "Benign")
                if named is not None and named.lower() != str(cls).lower():
                    bad.append({"path": path, "reason": f"misplaced: named {named} but in folder {cls}"})
        parts.append({"name": name, "n": int(len(t)),
                      "counts": {str(k): int(v) for k, v in t["class_name"].value_counts(sort=False).items()},
                      "duplicate_groups": len(dups), "duplicates": dups})
    for d in class_dirs:
        for p in sorted(d.iterdir(), key=lambda p: os.fsencode(p.name)) if d.is_dir() else []:
            if has_surrogates(str(p)):
                bad.append({"path": show_path(p), "reason": "file name is not valid UTF-8"})
            elif p.is_file() and p.suffix.lower() not in IMAGE_EXTENSIONS and p.name not in ("SHA256SUMS",):
                bad.append({"path": str(p), "reason": "misplaced: not an image file in a class folder"})
    for d in top_dirs:
        for p in d.iterdir():
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
                bad.append({"path": str(p), "reason": "misplaced: image outside the class folders"})
    return {"dataset": dataset, "root": os.path.abspath(root), "parts": parts, "bad": bad, "ok": not bad}


# --------------------------------------------------------------------------------------------
# Download (``leukcore data fetch``)
# --------------------------------------------------------------------------------------------


def _kaggle_credentials_present() -> bool:
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    if os.environ.get("KAGGLE_API_TOKEN"):
        return True
    cfg = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    return (cfg / "kaggle.json").is_file() or (cfg / "access_token").is_file()


def fetch_dataset(dataset_id: str, to: str | os.PathLike, *, downloader: Callable[[str], str] | None = None) -> Path:
    """Download ``dataset_id`` through kagglehub and place it at ``<to>/<dataset_id>``.

    Needs Kaggle credentials (``~/.kaggle/kaggle.json`` or ``KAGGLE_USERNAME``/``KAGGLE_KEY``) and
    internet.  Without them, or offline, raises :class:`DataError` saying how to download by
    hand.  Credentials are never printed or stored.  ``downloader`` replaces
    ``kagglehub.dataset_download`` (tests).
    """
    info = dataset_info(dataset_id)
    dest = Path(to) / dataset_id
    manual = (f"Download it by hand ({'Kaggle dataset ' + info.kaggle if info.kaggle else info.citation}), "
              f"unpack it so that {dest} follows the layout {info.layout}, then run with "
              f"LEUKCORE_DATA={Path(to)} (or --data-root {Path(to)}).")
    if info.kaggle is None:
        raise DataError(f"{dataset_id} is not on Kaggle. {manual}")
    if downloader is None:
        if not _kaggle_credentials_present():
            raise DataError(f"no Kaggle credentials found (~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY). "
                            f"Create an API token on kaggle.com, or: {manual}")
        try:
            import kagglehub
        except ImportError:
            raise DataError(f"kagglehub is not installed (pip install kagglehub). {manual}") from None
        downloader = kagglehub.dataset_download
    try:
        src = Path(downloader(info.kaggle))
    except Exception as e:  # network, auth, API errors: all mean "do it by hand"
        raise DataError(f"download of {info.kaggle} failed ({type(e).__name__}: {_redact(str(e))}). {manual}") from None
    if dest.exists():
        raise DataError(f"{dest} already exists; remove it or choose another --to")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dest)
    return dest


def _redact(text: str) -> str:
    for var in ("KAGGLE_KEY", "KAGGLE_USERNAME", "KAGGLE_API_TOKEN"):
        if os.environ.get(var):
            text = text.replace(os.environ[var], "***")
    return text[:300]
