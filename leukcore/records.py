"""Run records: one JSON file per run under ``results/``, written atomically, with provenance.

Layout: ``<results>/<paper>/<profile>/<run>.json`` and, beside it, ``<run>.<sha12>.predictions.csv``,
where ``<run>`` is the experiment id for seed 0 and ``<experiment>.seed<k>`` for seed ``k`` (one
record per seed, so independent runs of an experiment sit side by side) (id, y_true, p_0 .. p_{C-1}; ``sha12`` the first 12 hex
digits of the file's SHA-256, also stored in the record).  A record is *complete* only when its
``status`` is ``"complete"``; the book renders nothing else as a result.

Writes are atomic (temporary file, fsync, ``os.replace``): the new predictions file gets a new
name, then the record is replaced, then the previous predictions file is removed, so a crash at
any point leaves either the old record with its own predictions or the new record with its own.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .files import PROJECT_ROOT, atomic_write_text

RESULTS_DIR = PROJECT_ROOT / "results"
RECORD_VERSION = 1


def results_dir(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$LEUKCORE_RESULTS``, else ``<project>/results``."""
    return Path(path or os.environ.get("LEUKCORE_RESULTS") or RESULTS_DIR)


def run_name(experiment: str, seed: int = 0) -> str:
    """The file stem of one run: the experiment id for seed 0, ``<experiment>.seed<k>`` otherwise."""
    return experiment if not seed else f"{experiment}.seed{int(seed)}"


def record_path(paper: str, profile: str, experiment: str, root: str | os.PathLike | None = None,
                seed: int = 0) -> Path:
    """Where the record of one run (one experiment, one seed) lives."""
    return results_dir(root) / paper / profile / f"{run_name(experiment, seed)}.json"


def git_commit(cwd: Path = PROJECT_ROOT) -> str | None:
    """The checkout's commit (with ``+dirty`` when the work tree has changes), or None outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        if not sha:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions() -> dict[str, str]:
    """Versions of the libraries a result depends on (only those already imported or importable)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("leukcore", "torch", "torchvision", "timm", "numpy", "scikit-learn", "xgboost", "lightgbm",
                 "opencv-python-headless", "pillow", "pandas"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def device_description(device: str) -> str:
    """A human description of the device a run used (GPU name, or CPU model and core count)."""
    if device.startswith("cuda"):
        try:
            import torch

            return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
        except Exception:  # noqa: BLE001 - description only
            return device
    return f"CPU: {cpu_model()}, {os.cpu_count()} cores"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def settings_hash(settings: dict) -> str:
    """A short stable hash of an experiment's settings (part of a record's key)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def record_key(rec: dict) -> tuple:
    """What makes two runs the same run: paper, experiment, profile, data fingerprint, seed, settings."""
    return (rec["paper"], rec["experiment"], rec["profile"], rec["dataset"]["fingerprint"], rec["seed"],
            rec["settings_hash"])


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and not np.isfinite(o):
        return None
    if isinstance(o, Path):
        return o.as_posix()
    return o


def write_record(rec: dict, *, predictions: pd.DataFrame | None = None, root: str | os.PathLike | None = None) -> Path:
    """Write a record (and its predictions) atomically; return the record's path.

    Predictions are written first, under a name carrying their hash, so a record never points at
    a missing or foreign file; both go through a temporary file and ``os.replace``, and the
    previous predictions file is removed only once the new record is in place.
    """
    path = record_path(rec["paper"], rec["profile"], rec["experiment"], root, rec.get("seed") or 0)
    rec = {k: v for k, v in rec.items() if k != "_path"}  # where it was read from: this machine's path
    rec.setdefault("record_version", RECORD_VERSION)
    rec.setdefault("written_at", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    ppath = None
    if predictions is not None:
        text = predictions.to_csv(index=False, float_format="%.6g")
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        ppath = path.with_name(f"{path.stem}.{digest[:12]}.predictions.csv")
        atomic_write_text(ppath, text)
        rec["predictions"] = ppath.name
        rec["predictions_sha256"] = digest
    atomic_write_text(path, json.dumps(_jsonable(rec), indent=1, sort_keys=True, allow_nan=False) + "\n")
    keep = rec.get("predictions")  # the new file, or the one a rewritten record still points at
    mine = re.compile(re.escape(path.stem) + r"(\.[0-9a-f]{12})?\.predictions\.csv")
    for old in path.parent.glob(f"{path.stem}.*predictions.csv"):
        if mine.fullmatch(old.name) and old.name != keep:
            old.unlink(missing_ok=True)
    return path


def read_record(path: str | os.PathLike) -> dict:
    """Read one record; raises ValueError naming the file if it is not valid JSON."""
    path = Path(path)
    try:
        rec = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not a valid run record ({e})") from None
    rec["_path"] = str(path)
    return rec


def read_complete(path: str | os.PathLike, seed: int) -> dict | None:
    """The record at ``path`` if it exists, parses, is complete and used ``seed``; else None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        rec = read_record(path)
    except ValueError:
        return None
    return rec if rec.get("status") == "complete" and rec.get("seed") == seed else None


def read_predictions(rec: dict) -> pd.DataFrame:
    """The predictions table of a record (columns id, y_true, p_0 ...).

    Raises ValueError naming the file when it is missing or its SHA-256 differs from the one the
    record stores (a file edited or replaced by hand: rerun the experiment).
    """
    path = Path(rec["_path"]).with_name(rec["predictions"])
    if not path.is_file():
        raise ValueError(f"{path}: predictions of {rec['_path']} are missing; rerun the experiment")
    if rec.get("predictions_sha256"):
        raw = path.read_bytes()
        if hashlib.sha256(raw).hexdigest() != rec["predictions_sha256"]:
            raise ValueError(f"{path}: predictions do not match their record {rec['_path']} (SHA-256 differs); "
                             f"rerun the experiment")
    return pd.read_csv(path)


def load_records(paper: str | None = None, profile: str | None = None, *, root: str | os.PathLike | None = None,
                 complete_only: bool = True) -> list[dict]:
    """All records under the results folder, optionally for one paper / profile."""
    base = results_dir(root)
    pattern = f"{paper or '*'}/{profile or '*'}/*.json"
    out = []
    for p in sorted(base.glob(pattern)):
        try:
            rec = read_record(p)
        except ValueError:
            continue
        if complete_only and rec.get("status") != "complete":
            continue
        out.append(rec)
    return out


def provenance_label(rec: dict) -> str:
    """The short label shown beside every number: profile, dataset (and what it stands in for)."""
    ds = rec["dataset"]
    name = ds["id"]
    if ds.get("stands_in_for"):
        name += f" (stand-in for {ds['stands_in_for']})"
    return f"{rec['profile']} · {name}"
