"""Run records: one JSON file per run under ``results/``, written atomically, with provenance.

Layout: ``<results>/<paper>/<profile>/<run>.json`` and, beside it, ``<run>.<sha12>.predictions.csv``,
where ``<run>`` is the experiment id for seed 0 and ``<experiment>.seed<k>`` for seed ``k`` (one
record per seed, so independent runs of an experiment sit side by side) (id, y_true, p_0 .. p_{C-1}; ``sha12`` the first 12 hex
digits of the file's SHA-256, also stored in the record).  A record is *complete* only when its
``status`` is ``"complete"``; the book renders nothing else as a result.

Provenance: ``commit`` (``<sha>`` or ``<sha>+dirty``) and ``code`` (commit, dirty, the SHA-256 of
the package source, protocol and ledger files, and, for a dirty tree, the name and SHA-256 of
``<run>.<sha12>.diff`` beside the record: ``git diff HEAD`` of the code plus its untracked package
files), read before training; see :func:`code_state` and :func:`check_code`.

Writes are atomic (temporary file, fsync, ``os.replace``): the new predictions file gets a new
name, then the record is replaced, then the previous predictions file is removed, so a crash at
any point leaves either the old record with its own predictions or the new record with its own.

Reading: a record that does not parse, has no ``status``, or whose stored metrics contradict its
own confusion matrix is never taken for an absent one: every reader stops with a
:class:`RecordError` naming the file and the fix (as for a missing predictions file). A run still
going on is told apart by its ``status`` (anything but ``"complete"``). ``leukcore records verify``
(:mod:`leukcore.verify`) checks the rest: predictions, intervals, hashes, data and commits.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import hashlib
import io
import json
import math
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..files import PROJECT_ROOT, atomic_write_text

RESULTS_DIR = PROJECT_ROOT / "results"
RECORD_VERSION = 1
#: The results folder of the audits (``<results>/audits/<profile>/...``): the "paper" of their records.
AUDITS_PAPER = "audits"


class RecordError(ValueError):
    """A record, or a file it names, that cannot be read as written or contradicts itself. The
    message names the file and what to do; readers stop on it instead of treating the record as absent."""


def rerun_hint(path: str | os.PathLike, restore: str | os.PathLike | None = None) -> str:
    """What to do about a damaged record at ``path`` (or a damaged file ``restore`` that it names):
    restore the committed file, or delete the record and rerun what writes it (an experiment, or an
    audit: its arms and summary), read from where the record lies."""
    path = Path(path)
    parts = path.parts
    if len(parts) >= 4 and parts[-4] == AUDITS_PAPER:  # <results>/audits/<profile>/<audit>/<arm>.seed<k>.json
        profile, audit = parts[-3], parts[-2]
    elif len(parts) >= 3 and parts[-3] == AUDITS_PAPER:  # <results>/audits/<profile>/<audit>.json
        profile, audit = parts[-2], path.name.split(".")[0]
    else:
        audit = None
    if audit is not None:
        again = f"rerun the audit (leukcore audits run --audit {audit} --profile {profile})"
    else:
        folder = path.parent.parent if path.parent.name == "folds" else path.parent
        again = f"rerun the experiment (leukcore reproduce --paper {folder.parent.name} --profile {folder.name})"
    record = "it" if restore is None else shown_path(path)
    return f"restore the committed file (git checkout -- {shown_path(restore or path)}) or delete {record} and {again}"


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as a reader types it: relative to the project when it lies inside it, else as given."""
    full = Path(path).resolve()
    return os.path.relpath(full, PROJECT_ROOT) if full.is_relative_to(PROJECT_ROOT) else str(path)


#: Every record and predictions file this process has read: resolved path -> SHA-256 of the bytes
#: read. A book build names them in its manifest (:func:`files_read`).
_READS: dict[str, str] = {}


def _note_read(path: Path, raw: bytes) -> None:
    _READS[str(path.resolve())] = hashlib.sha256(raw).hexdigest()


def files_read() -> dict[str, str]:
    """The records and predictions files read so far in this process, ``{absolute path: SHA-256 of
    the bytes read}`` (a reader caching records read them once: they stay listed)."""
    return dict(_READS)


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


#: What "the code that made a record" is: the package (its source, protocol and ledger files) and
#: its build file. Records, the book and notebooks are not code: a run that writes a record must not
#: make the next run's tree dirty.
CODE_PATHS = ("leukcore", "pyproject.toml")
#: Set to 1 (``leukcore reproduce --allow-dirty``) to let a paper-profile run use a dirty tree.
ALLOW_DIRTY_ENV = "LEUKCORE_ALLOW_DIRTY"


def _git(args: list[str], cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=True).stdout


def source_files(root: Path = PROJECT_ROOT) -> list[Path]:
    """The files hashed into ``code.source_sha256``: the package's .py / .yaml files and pyproject.toml."""
    pkg = root / "leukcore"
    files = [f for f in pkg.rglob("*") if f.is_file() and f.suffix in (".py", ".yaml", ".yml")
             and "__pycache__" not in f.parts]
    if (root / "pyproject.toml").is_file():
        files.append(root / "pyproject.toml")
    return sorted(files, key=lambda f: f.relative_to(root).as_posix())


def source_hash(root: Path = PROJECT_ROOT) -> str:
    """SHA-256 of the package source, protocol and ledger files as they are on disk (path + content)."""
    h = hashlib.sha256()
    for f in source_files(root):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def code_state(cwd: Path = PROJECT_ROOT) -> dict:
    """The code a run is about to use: ``commit`` (HEAD, None outside git), ``dirty``, ``source_sha256``
    and ``diff`` (``git diff HEAD`` of the tracked code plus the untracked package files, as text;
    None when clean). Read it *before* training: the tree may change while a run goes on."""
    out = {"commit": None, "dirty": False, "source_sha256": source_hash(cwd), "diff": None}
    try:
        sha = _git(["rev-parse", "HEAD"], cwd).strip()
    except (OSError, subprocess.SubprocessError):
        return out
    if not sha:
        return out
    out["commit"] = sha
    try:
        diff = _git(["diff", "HEAD", "--binary", "--", *CODE_PATHS], cwd)
        untracked = [f for f in _git(["ls-files", "--others", "--exclude-standard", "-z", "--", *CODE_PATHS],
                                     cwd).split("\0") if f]
        for f in sorted(untracked):
            # git diff --no-index exits 1 when the files differ (always, against /dev/null)
            diff += subprocess.run(["git", "diff", "--no-index", "--binary", "--", "/dev/null", f], cwd=cwd,
                                   capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        diff = None
        out["dirty"] = None  # unknown
        return out
    if diff:
        out["dirty"], out["diff"] = True, diff
    return out


def git_commit(cwd: Path = PROJECT_ROOT, state: dict | None = None) -> str | None:
    """The checkout's commit (with ``+dirty`` when the code differs from it), or None outside git."""
    state = state if state is not None else code_state(cwd)
    if state["commit"] is None:
        return None
    return state["commit"] + ("+dirty" if state["dirty"] else "")


class DirtyTreeError(RuntimeError):
    """A paper-profile run was asked for on code that differs from its commit."""


def allow_dirty_default() -> bool:
    """``$LEUKCORE_ALLOW_DIRTY`` set to 1 / true / yes."""
    return os.environ.get(ALLOW_DIRTY_ENV, "").strip().lower() in ("1", "true", "yes")


def check_code(state: dict, profile, allow_dirty: bool | None = None) -> None:
    """Refuse a ``paper``-profile run on a dirty tree unless ``allow_dirty`` (then its diff is recorded).

    Reduced profiles always run; their records carry the diff when the tree is dirty.
    """
    if allow_dirty is None:
        allow_dirty = allow_dirty_default()
    profile = getattr(profile, "name", profile)  # a Profile or its name
    if profile == "paper" and state.get("dirty") and not allow_dirty:
        raise DirtyTreeError(
            f"refusing a paper-profile run: the code ({', '.join(CODE_PATHS)}) differs from commit "
            f"{(state.get('commit') or '?')[:12]}. Commit your changes, or pass allow_dirty=True "
            f"(leukcore reproduce --allow-dirty, or {ALLOW_DIRTY_ENV}=1) to run anyway with the diff "
            f"stored beside the record.")


_SNAPSHOT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("leukcore_code_snapshot", default=None)


@contextlib.contextmanager
def code_snapshot(profile: str | None = None, allow_dirty: bool | None = None):
    """Read the code state once, at the start of a run (refusing a dirty paper-profile run, see
    :func:`check_code`); :func:`current_code_state` inside the block returns it, so a record
    written at the end names the code that started, even if the tree changed meanwhile."""
    state = code_state()
    if profile is not None:
        check_code(state, profile, allow_dirty)
    token = _SNAPSHOT.set(state)
    try:
        yield state
    finally:
        _SNAPSHOT.reset(token)


def current_code_state() -> dict:
    """The state read by the enclosing :func:`code_snapshot`, else the code as it is now."""
    return _SNAPSHOT.get() or code_state()


def code_block(state: dict) -> tuple[dict, str | None]:
    """(the record's ``code`` entry, the diff text to store beside it) from :func:`code_state`."""
    block = {"commit": state["commit"], "dirty": state["dirty"], "source_sha256": state["source_sha256"]}
    return block, state.get("diff")


#: Libraries every record names, installed or not ("not installed" then).
ALWAYS_VERSIONS = ("leukcore", "xgboost")


def library_versions() -> dict[str, str]:
    """Versions of the libraries a result depends on; ``leukcore`` and ``xgboost`` always appear
    (``"not installed"`` when absent; leukcore from its pyproject.toml when not installed as a
    distribution, e.g. a fresh clone on ``PYTHONPATH``)."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("leukcore", "torch", "torchvision", "timm", "numpy", "scikit-learn", "xgboost", "lightgbm",
                 "opencv-python-headless", "pillow", "pandas"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    if "leukcore" not in out:
        m = re.search(r'(?m)^version\s*=\s*"([^"]+)"', (PROJECT_ROOT / "pyproject.toml").read_text()) \
            if (PROJECT_ROOT / "pyproject.toml").is_file() else None
        if m:
            out["leukcore"] = m.group(1)
    for name in ALWAYS_VERSIONS:
        out.setdefault(name, "not installed")
    return out


def device_description(device: str) -> str:
    """A human description of the device a run used (GPU name, or CPU model and core count)."""
    if device.startswith("cuda"):
        try:
            import torch

            driver = nvidia_driver()
            return (f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}"
                    + (f", driver {driver})" if driver else ")"))
        except Exception:  # noqa: BLE001 - description only
            return device
    return f"CPU: {cpu_model()}, {os.cpu_count()} cores"


def nvidia_driver() -> str | None:
    """The NVIDIA driver version (``nvidia-smi``, else NVML), or None where it cannot be read."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        line = out.stdout.strip().splitlines()
        if out.returncode == 0 and line:
            return line[0].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import pynvml

        pynvml.nvmlInit()
        v = pynvml.nvmlSystemGetDriverVersion()
        return v.decode() if isinstance(v, bytes) else str(v)
    except Exception:  # noqa: BLE001 - optional
        return None


def tree_changes(cwd: Path = PROJECT_ROOT) -> str | None:
    """``git status --porcelain`` of the checkout ("" when clean), or None outside git."""
    try:
        r = subprocess.run(["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def machine_environment(device: str) -> dict:
    """What ran a batch of runs (a GPU lease): commit, tree state, device (GPU, driver), library
    versions, CPU count."""
    return {"commit": git_commit(), "tree_changes": tree_changes(), "device": device_description(device),
            "driver": nvidia_driver() if device.startswith("cuda") else None,
            "versions": library_versions(), "cpu_count": os.cpu_count()}


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


def write_record(rec: dict, *, predictions: pd.DataFrame | None = None, root: str | os.PathLike | None = None,
                 path: str | os.PathLike | None = None) -> Path:
    """Write a record (and its predictions) atomically; return the record's path.

    ``path``: where, when not the run's usual :func:`record_path` (e.g. one fold's record).
    Predictions are written first, under a name carrying their hash, so a record never points at
    a missing or foreign file; both go through a temporary file and ``os.replace``, and the
    previous predictions file is removed only once the new record is in place.
    """
    path = Path(path) if path is not None else record_path(rec["paper"], rec["profile"], rec["experiment"], root,
                                                           rec.get("seed") or 0)
    diff = rec.get("_diff")
    rec = {k: v for k, v in rec.items() if k not in ("_path", "_diff")}  # _path: this machine's; _diff: stored beside
    dpath = None
    if diff:
        # the code that made the record differs from its commit: keep the difference beside it
        ddigest = hashlib.sha256(diff.encode("utf-8")).hexdigest()
        dpath = path.with_name(f"{path.stem}.{ddigest[:12]}.diff")
        atomic_write_text(dpath, diff)
        rec["code"] = {**rec.get("code", {}), "diff": dpath.name, "diff_sha256": ddigest}
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
    mydiff = re.compile(re.escape(path.stem) + r"\.[0-9a-f]{12}\.diff")
    for old in path.parent.glob(f"{path.stem}.*.diff"):
        if mydiff.fullmatch(old.name) and (dpath is None or old.name != dpath.name):
            old.unlink(missing_ok=True)
    return path


def read_diff(rec: dict) -> str | None:
    """The diff a record's code carried (None for a clean commit); :class:`RecordError` if missing or altered."""
    name = (rec.get("code") or {}).get("diff")
    if not name:
        return None
    path = Path(rec["_path"]).with_name(name)
    if not path.is_file():
        raise RecordError(f"{path}: the code diff of {rec['_path']} is missing; {rerun_hint(rec['_path'], path)}")
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != rec["code"].get("diff_sha256"):
        raise RecordError(f"{path}: does not match its record {rec['_path']} (SHA-256 differs); "
                          f"{rerun_hint(rec['_path'], path)}")
    return raw.decode("utf-8")


def read_record(path: str | os.PathLike) -> dict:
    """Read one record; raises :class:`RecordError` naming the file and the fix when it is not a JSON
    object with a ``status`` (a damaged record: writes are atomic, so never one still being written)."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        rec = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RecordError(f"{path}: not a valid run record ({e}); {rerun_hint(path)}") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("status"), str):
        what = "has no status" if isinstance(rec, dict) else "is not a JSON object"
        raise RecordError(f"{path}: not a valid run record (it {what}); {rerun_hint(path)}")
    _note_read(path, raw)
    rec["_path"] = str(path)
    return rec


def agrees(stored, value, slack: float = 0.0) -> bool:
    """A stored number equals ``value`` up to float rounding (1e-9 relative, at least 1e-9) and ``slack``;
    a stored None (how a record stores NaN) equals None or NaN only."""
    nan = value is None or (isinstance(value, float) and math.isnan(value))
    if stored is None or nan:
        return stored is None and nan
    return abs(float(stored) - float(value)) <= slack + 1e-9 * max(1.0, abs(float(value)))


def _point(v):
    """A stored value: a number, or the point of an interval."""
    return v.get("point") if isinstance(v, dict) else v


def dicts_in(o: Any, keep, where: str = ""):
    """``(dotted path, dict)`` of every dict inside ``o`` (a record: its ``_path`` left out) for which
    ``keep(dict)`` holds, e.g. ``("results.eval", {...})``; lists are entered when they hold containers."""
    if isinstance(o, dict):
        if keep(o):
            yield where, o
        for k, v in o.items():
            if k != "_path":
                yield from dicts_in(v, keep, f"{where}.{k}" if where else str(k))
    elif isinstance(o, list) and o and isinstance(o[0], (dict, list)):
        for i, v in enumerate(o):
            yield from dicts_in(v, keep, f"{where}[{i}]")


def _per_class_disagrees(stored: dict, derived: dict, names_known: bool) -> bool:
    """Per-class values by class name when the record names its classes, else as a multiset."""
    if names_known:
        return set(stored) != set(derived) or any(not agrees(stored[k], derived[k]) for k in derived)
    a, b = sorted(v for v in stored.values() if v is not None), sorted(derived.values())
    return len(a) != len(b) or any(not agrees(x, y) for x, y in zip(a, b))


def record_disagreements(rec: dict) -> list[str]:
    """Where a record contradicts itself: every stored metric that its own confusion matrix fixes
    (accuracy, counts, per-class and averaged sensitivity / specificity / precision / F1, support),
    recomputed with :func:`leukcore.metrics.confusion_metrics`, and every accuracy against
    its per-image correctness. One line per disagreement, e.g. ``metrics.accuracy: stored 0.999, its
    confusion matrix gives 0.94``; [] when it agrees (or stores neither)."""
    from ..metrics import AVERAGED_METRICS, confusion_metrics

    out = []

    def differ(where: str, key: str, stored, derived, source: str) -> None:
        out.append(f"{where + '.' if where else ''}{key}: stored {stored!r}, its {source} gives {derived!r}")

    for where, b in dicts_in(rec, lambda d: "confusion_matrix" in d or isinstance(d.get("correct"), str)):
        cm = b.get("confusion_matrix")
        if cm:
            names = b.get("class_names") or rec.get("class_names")
            try:
                d = confusion_metrics(cm, names, b.get("positive") if len(cm) == 2 else None)
            except ValueError as e:
                out.append(f"{where}.confusion_matrix: {e}")
                continue
            src = "confusion matrix"
            trace = int(np.trace(np.asarray(cm)))
            for key, want in (("n", d["n"]), ("accuracy", d["accuracy"]), ("f1_macro", d["f1"]["macro"])):
                if key in b and not agrees(_point(b[key]), want):
                    differ(where, key, _point(b[key]), want, src)
            acc = b.get("accuracy")
            if isinstance(acc, dict):
                for key, want in (("k", trace), ("n", d["n"])):
                    if key in acc and acc[key] != want:
                        differ(where, f"accuracy.{key}", acc[key], want, src)
            for name in AVERAGED_METRICS:
                if isinstance(b.get(name), dict):
                    for avg, want in d[name].items():
                        got = b[name].get(avg)
                        bad = (_per_class_disagrees(got or {}, want, bool(names)) if avg == "per_class"
                               else avg in b[name] and not agrees(got, want))
                        if bad:
                            differ(where, f"{name}.{avg}", got, want, src)
            for key, want in (("support", d["support"]), ("recall_per_class", d["sensitivity"]["per_class"])):
                if isinstance(b.get(key), dict) and _per_class_disagrees(b[key], want, bool(names)):
                    differ(where, key, b[key], want, src)
        bits = b.get("correct")
        if isinstance(bits, str) and bits:
            k, n = bits.count("1"), len(bits)
            if "accuracy" in b and not agrees(_point(b["accuracy"]), k / n):
                differ(where, "accuracy", _point(b["accuracy"]), k / n, "per-image correctness")
            if "n" in b and b["n"] != n:
                differ(where, "n", b["n"], n, "per-image correctness")
    return out


def check_record(rec: dict) -> dict:
    """``rec`` when it agrees with itself (:func:`record_disagreements`), else :class:`RecordError`
    naming the file, the first disagreement and the fix. Cheap (the record alone): every reader runs it."""
    bad = record_disagreements(rec)
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise RecordError(f"{rec.get('_path', 'a record')}: contradicts itself: {bad[0]}{more}; "
                          f"{rerun_hint(rec.get('_path', ''))}")
    return rec


def read_complete(path: str | os.PathLike, seed: int) -> dict | None:
    """The record at ``path`` if it exists, is complete and used ``seed``; else None (a run still
    going on is not complete). A damaged record raises :class:`RecordError`: it is not absent."""
    path = Path(path)
    if not path.is_file():
        return None
    rec = read_record(path)
    return check_record(rec) if rec.get("status") == "complete" and rec.get("seed") == seed else None


def read_predictions(rec: dict) -> pd.DataFrame:
    """The predictions table of a record (columns id, y_true, p_0 ...).

    Raises :class:`RecordError` naming the file when it is missing or its SHA-256 differs from the
    one the record stores (a file edited or replaced by hand: rerun the experiment).
    """
    path = Path(rec["_path"]).with_name(rec["predictions"])
    if not path.is_file():
        raise RecordError(f"{path}: predictions of {rec['_path']} are missing; {rerun_hint(rec['_path'], path)}")
    raw = path.read_bytes()
    if rec.get("predictions_sha256") and hashlib.sha256(raw).hexdigest() != rec["predictions_sha256"]:
        raise RecordError(f"{path}: predictions do not match their record {rec['_path']} (SHA-256 differs); "
                          f"{rerun_hint(rec['_path'], path)}")
    _note_read(path, raw)
    return pd.read_csv(io.BytesIO(raw))


def load_records(paper: str | None = None, profile: str | None = None, *, root: str | os.PathLike | None = None,
                 complete_only: bool = True) -> list[dict]:
    """All records under the results folder, optionally for one paper / profile.

    A damaged record (:func:`read_record`) or a complete one that contradicts itself
    (:func:`check_record`) raises :class:`RecordError`; ``complete_only`` leaves out the records
    whose ``status`` is not ``"complete"`` (runs still going on, audits not run).
    """
    base = results_dir(root)
    pattern = f"{paper or '*'}/{profile or '*'}/*.json"
    out = []
    for p in sorted(base.glob(pattern)):
        rec = read_record(p)
        if rec["status"] == "complete":
            check_record(rec)
        elif complete_only:
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
