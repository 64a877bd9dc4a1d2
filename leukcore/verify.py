"""``leukcore records verify``: every record checked against itself and its surroundings.

The records under ``results/`` are the study's ground truth, so each one is checked:

* it parses and has a ``status``; a record whose status is not ``"complete"`` (a run still going
  on, an audit not run) is counted and otherwise left alone;
* it agrees with itself: its stored metrics with its confusion matrices and per-image correctness
  (:func:`leukcore.runs.records.record_disagreements`, what every reader also checks);
* its predictions file exists, has the SHA-256 the record stores and gives the same confusion
  matrix and AUCs (recomputed with :func:`leukcore.metrics.compute_metrics`; the file
  keeps 6 significant digits, so an AUC may move by the pairs that rounding tied, and a prediction
  whose top probabilities rounding tied may change class), and each interval's point is its metric;
* every interval contains its point and lies in its quantity's range: a difference of two
  proportions (the audits' effects, a ``paired difference`` row) in [-1, 1], anything else (an
  accuracy, F1, AUROC, a fraction of images) in [0, 1];
* its ``settings_hash`` recomputes from its ``settings``;
* its dataset fingerprint is that of the dataset it names as it is on disk, when that dataset (or,
  for a synthetic stand-in, its absence) is here; a pooling record's is that of the records it pools;
* an audit's summary is what its arm records give (:func:`leukcore.audits.seeded.summarise_audit`);
* its commit is in this repository's history (an ancestor of ``HEAD``), and a record made from a
  dirty tree has its diff beside it, intact; without one it is a WARNING: it cannot be rerun exactly.

One line per problem, naming the file and what to do; the exit status is 1 on any ERROR.
"""
from __future__ import annotations

import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .files import PROJECT_ROOT
from .runs.records import (
    AUDITS_PAPER,
    RecordError,
    agrees,
    dicts_in,
    read_diff,
    read_predictions,
    read_record,
    record_disagreements,
    record_path,
    rerun_hint,
    results_dir,
    settings_hash,
    shown_path,
)

ERROR, WARNING = "ERROR", "WARNING"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file: its level (ERROR or WARNING), the file, what and what to do."""

    level: str
    path: str
    what: str

    def line(self) -> str:
        return f"{self.level}: {self.path}: {self.what}"


@dataclass
class Report:
    """What :func:`verify_records` found: the problems, and how many records it read and checked."""

    problems: list[Problem] = field(default_factory=list)
    records: int = 0
    not_complete: int = 0
    data_checked: int = 0
    data_not_checked: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == WARNING]

    def summary(self) -> str:
        return (f"records verify: {self.records} records ({self.not_complete} not complete), "
                f"{len(self.errors)} errors, {len(self.warnings)} warnings; dataset fingerprints checked "
                f"for {self.data_checked}, not checked for {self.data_not_checked} (dataset not here)")


def record_files(paper: str | None = None, root=None) -> list[Path]:
    """Every record under the results folder (of one paper, or ``audits``): ``<paper>/<profile>/*.json``,
    their fold records ``<paper>/<profile>/folds/*.json`` and the audits' arm records
    ``audits/<profile>/<audit>/*.json``. The benchmark's files (``results/bench``) are not run records."""
    base = results_dir(root)
    p = paper or "*"
    files = set(base.glob(f"{p}/*/*.json")) | set(base.glob(f"{p}/*/folds/*.json"))
    if paper in (None, AUDITS_PAPER):
        files |= set(base.glob(f"{AUDITS_PAPER}/*/*/*.json"))
    return sorted(files)


# ----------------------------------------------------------------------------------- intervals


def quantity_range(where: str, interval: dict) -> tuple[float, float]:
    """The range of the quantity an interval is of: [-1, 1] for a difference of two proportions (under
    an audit's ``effects``, or a row whose metric is ``paired difference``), else [0, 1]."""
    if interval.get("metric") == "paired difference" or "effects" in where.split("."):
        return -1.0, 1.0
    return 0.0, 1.0


def interval_problems(rec: dict) -> list[str]:
    """Intervals that do not contain their point (``point`` or ``mean``) or leave their quantity's range."""
    out = []
    tol = 1e-9
    for where, iv in dicts_in(rec, lambda d: "low" in d and "high" in d):  # every interval
        low, high = iv.get("low"), iv.get("high")
        point = iv.get("point", iv.get("mean"))
        if low is None or high is None:
            continue
        if point is not None and not low - tol <= point <= high + tol:
            out.append(f"{where}: the interval [{low:.6g}, {high:.6g}] does not contain its point {point:.6g}")
        lo, hi = quantity_range(where, iv)
        if low < lo - tol or high > hi + tol:
            out.append(f"{where}: the interval [{low:.6g}, {high:.6g}] leaves the range [{lo:g}, {hi:g}] of its "
                       f"quantity")
    return out


# --------------------------------------------------------------------------------- predictions


def _tie_slack(y: np.ndarray, score: np.ndarray, positive: np.ndarray) -> float:
    """How far rounding may have moved an AUC: half the (positive, negative) pairs with equal scores over all pairs.

    Rounding keeps the order of scores that stay distinct; a pair that it tied counted 0 or 1 and now
    counts 1/2. ``positive``: which items are of the class."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return 0.0
    _, inv = np.unique(score, return_inverse=True)
    pos_at = np.bincount(inv, weights=positive.astype(float))
    neg_at = np.bincount(inv, weights=(~positive).astype(float))
    return float((pos_at * neg_at).sum()) / (2.0 * n_pos * n_neg)


def prediction_problems(rec: dict) -> list[str]:
    """Where a record's metrics differ from its predictions file (see the module docstring);
    a missing or altered file raises :class:`RecordError`."""
    from .metrics import compute_metrics, metric_at

    df = read_predictions(rec)
    m = rec.get("metrics") or {}
    pcols = sorted((c for c in df.columns if c.startswith("p_") and c[2:].isdigit()), key=lambda c: int(c[2:]))
    y = df["y_true"].to_numpy(np.int64)
    prob = df[pcols].to_numpy(np.float64)
    names = m.get("class_names") or rec.get("class_names")
    pos = m.get("positive") if len(pcols) == 2 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = compute_metrics(y, prob, class_names=names, positive=pos)
    out = []
    stored_cm = np.asarray(m.get("confusion_matrix") or [], dtype=np.int64)
    cm = np.asarray(got["confusion_matrix"])
    if stored_cm.shape != cm.shape:
        out.append(f"metrics.confusion_matrix: stored {stored_cm.tolist()}, its predictions file gives {cm.tolist()}")
    elif (stored_cm != cm).any():
        tied = int(((prob == prob.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
        moved = int(np.abs(stored_cm - cm).sum()) // 2
        if moved > tied:
            out.append(f"metrics.confusion_matrix: stored {stored_cm.tolist()}, its predictions file gives "
                       f"{cm.tolist()} ({moved} predictions moved, {tied} could by rounding)")
    for k in range(len(pcols)):
        slack = _tie_slack(y, prob[:, k], y == k)
        name = got["class_names"][k]
        stored = (m.get("auc_per_class") or {}).get(name)
        have = got["auc_per_class"][name]
        if "auc_per_class" in m and not agrees(stored, have, slack):
            out.append(f"metrics.auc_per_class.{name}: stored {stored!r}, its predictions file gives {have!r} "
                       f"(rounding allows {slack:.2g})")
    if "auc" in m:
        if len(pcols) == 2:
            k = got["class_names"].index(got["positive"])
            slack = _tie_slack(y, prob[:, k], y == k)
        else:
            slack = float(np.mean([_tie_slack(y, prob[:, k], y == k) for k in range(len(pcols))]))
        if not agrees(m["auc"], got["auc"], slack):
            out.append(f"metrics.auc: stored {m['auc']!r}, its predictions file gives {got['auc']!r} "
                       f"(rounding allows {slack:.2g})")
    for path, iv in (rec.get("intervals") or {}).items():
        try:
            want = metric_at(m, path)
        except ValueError:
            out.append(f"intervals.{path}: an interval of a metric the record does not store")
            continue
        except TypeError:  # stored as None: NaN
            want = None
        if not agrees(iv.get("point"), want):
            out.append(f"intervals.{path}.point: {iv.get('point')!r}, the stored metric is {want!r}")
    return out


# ------------------------------------------------------------------------------------- data


class _Data:
    """Dataset fingerprints as they are on disk now, computed once per (paper, experiment, profile, seed)."""

    def __init__(self, data_root=None, root=None):
        self.data_root, self.root = data_root, root
        self.cache: dict[tuple, tuple[str | None, str | None]] = {}

    def experiment(self, rec: dict) -> tuple[str | None, str | None]:
        """``(dataset id, fingerprint)`` the experiment's data have now (id None: cannot tell)."""
        from . import data as D
        from .runs.inputs import experiment_data
        from .runs.profiles import get_profile
        from .runs.protocols import get_experiment
        from .runs.routes import get_route

        seed = int(rec.get("seed") or 0)
        key = (rec["paper"], rec["experiment"], rec["profile"], seed)
        if key not in self.cache:
            exp = get_experiment(rec["paper"], rec["experiment"])
            route = get_route(exp.route)
            if not route.trains:
                parts = [read_record(record_path(rec["paper"], rec["profile"], e, self.root, seed))
                         for e in route.parts(exp)]
                self.cache[key] = (rec["dataset"]["id"], route.pooled_fingerprint(p["dataset"]["fingerprint"]
                                                                                     for p in parts))
            else:
                ed = experiment_data(rec["paper"], exp, get_profile(rec["profile"]), self.data_root, seed=seed)
                self.cache[key] = (ed.dataset_id, D.fingerprint(ed.table))
        return self.cache[key]

    def audit(self, rec: dict) -> tuple[str | None, str | None]:
        """``(dataset id, fingerprint)`` the audit's data have now (id None: they differ in kind from the
        record's, real against synthetic, so the fingerprint says nothing)."""
        from .audits.base import audit_data, audit_profile
        from .audits.seeded import audit_fingerprint

        seed = int(rec.get("seed") or 0)
        key = (AUDITS_PAPER, rec["experiment"], rec["profile"], seed)
        if key not in self.cache:
            prof = audit_profile(rec["profile"])
            for ds in (rec.get("dataset"), rec.get("external_dataset")):
                if not ds:
                    continue
                named = (ds.get("stands_in_for") or ds["id"]) if ds["id"] == "synthetic" else ds["id"]
                now = audit_data(named, prof, self.data_root, seed=seed, cap=False).dataset_id
                if now != ds["id"]:
                    self.cache[key] = (None, None)
                    break
            else:
                self.cache[key] = (rec["dataset"]["id"],
                                   audit_fingerprint(rec["experiment"], rec["profile"], self.data_root, seed))
        return self.cache[key]


# ------------------------------------------------------------------------------------- git


class _Git:
    """Which commits are in this repository's history (ancestors of ``HEAD``), asked once each."""

    def __init__(self, cwd: Path = PROJECT_ROOT):
        self.cwd = cwd
        self.known: dict[str, bool] = {}
        out = self._run("rev-parse", "--is-shallow-repository")
        self.available = out is not None
        self.shallow = (out or "").strip() == "true"

    def _run(self, *args: str) -> str | None:
        try:
            r = subprocess.run(["git", *args], cwd=self.cwd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout if r.returncode == 0 else None

    def in_history(self, sha: str) -> bool:
        if sha not in self.known:
            self.known[sha] = self._run("merge-base", "--is-ancestor", sha, "HEAD") is not None
        return self.known[sha]


def provenance_problems(rec: dict, git: _Git) -> list[tuple[str, str]]:
    """``(level, what)``: the commit not in the history (ERROR), a dirty tree without its diff
    (WARNING: cannot be rerun exactly) or with a missing or altered one (ERROR)."""
    out = []
    commit = rec.get("commit")
    code = rec.get("code") or {}
    if not commit:
        return [(WARNING, "names no commit (made outside git): the code that made it cannot be traced")]
    sha = commit.removesuffix("+dirty")
    if not git.available:
        out.append((WARNING, f"commit {sha[:12]} not checked: git is not available here"))
    elif not git.in_history(sha):
        if git.shallow:
            out.append((WARNING, f"commit {sha[:12]} not checked: this clone is shallow (git fetch --unshallow)"))
        else:
            out.append((ERROR, f"commit {sha[:12]} is not in this repository's history (not an ancestor of HEAD): "
                               f"the code that made it cannot be found; rerun it from a committed tree"))
    if "arm_records" in rec:  # a summary: its provenance is its arm records', each checked on its own
        return out
    dirty = commit.endswith("+dirty") or code.get("dirty") is True
    if dirty and code.get("diff"):
        try:
            read_diff(rec)
        except RecordError as e:
            out.append((ERROR, str(e)))
    elif dirty:
        out.append((WARNING, f"made from uncommitted code ({commit[:12]}+dirty) and no diff of it is stored: "
                             f"it cannot be rerun exactly; rerun it from a committed tree to replace it"))
    elif "code" in rec and code.get("dirty") is None:
        out.append((WARNING, "whether its code was committed is unknown (code.dirty is null): it may not rerun "
                             "exactly"))
    return out


# ------------------------------------------------------------------------------- audit summaries


def _differences(a, b, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{where}.{k}: {'only stored' if k in a else 'not stored'}")
            else:
                _differences(a[k], b[k], f"{where}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            _differences(x, y, f"{where}[{i}]", out)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if not agrees(a, b):
            out.append(f"{where}: stored {a!r}, its arm records give {b!r}")
    elif a != b:
        out.append(f"{where}: stored {str(a)[:60]!r}, its arm records give {str(b)[:60]!r}")


def summary_problems(rec: dict, root=None) -> list[str]:
    """Where an audit's summary differs from what its arm records on disk give now."""
    import json

    from .audits.seeded import summarise_audit

    again = summarise_audit(rec["experiment"], rec["profile"], results_dir=root, write=False)
    if again is None:
        return ["its arm records are not all here (no seed has every arm)"]
    again = json.loads(json.dumps({k: v for k, v in again.items() if k != "_path"}, default=str))
    out: list[str] = []
    for k in ("seeds", "results", "rows", "headline", "arm_records", "settings_hash"):
        _differences(rec.get(k), again.get(k), k, out)
    return out


# ------------------------------------------------------------------------------------- verify


def remedy(rec: dict) -> str:
    """What to do about a record with a wrong number: an audit's summary is rewritten from its arm
    records; any other record is restored or rerun (:func:`leukcore.runs.records.rerun_hint`)."""
    if "arm_records" in rec:
        return f"rewrite it from its arm records (leukcore audits summarise --profile {rec.get('profile')})"
    return rerun_hint(rec["_path"])


def verify_records(paper: str | None = None, *, root=None, data_root=None, repo: Path = PROJECT_ROOT) -> Report:
    """Check every record (of ``paper``, or ``audits``) under the results folder ``root`` against the
    data under ``data_root`` and the git history of ``repo``; see the module docstring."""
    from .audits.base import SEEDED_AUDITS

    rep = Report()
    data, git = _Data(data_root, root), _Git(repo)
    for path in record_files(paper, root):
        rel = shown_path(path)
        rep.records += 1

        def add(level: str, what: str) -> None:
            rep.problems.append(Problem(level, rel, what))

        try:
            rec = read_record(path)
        except (RecordError, OSError) as e:
            add(ERROR, str(e).removeprefix(f"{path}: "))
            continue
        if rec["status"] != "complete":
            rep.not_complete += 1
            continue
        hint = remedy(rec)
        for d in record_disagreements(rec):
            add(ERROR, f"contradicts itself: {d}; {hint}")
        is_audit = rec.get("paper") == AUDITS_PAPER
        if "predictions" in rec:
            try:
                for d in prediction_problems(rec):
                    add(ERROR, f"disagrees with its predictions: {d}; {hint}")
            except RecordError as e:
                add(ERROR, str(e))
        elif not is_audit:
            add(ERROR, f"names no predictions file; {hint}")
        for d in interval_problems(rec):
            add(ERROR, f"{d}; {hint}")
        if "settings" not in rec or "settings_hash" not in rec:
            add(ERROR, f"stores no settings or settings_hash; {hint}")
        elif settings_hash(rec["settings"]) != rec["settings_hash"]:
            add(ERROR, f"settings_hash {rec['settings_hash']} does not recompute from its settings "
                       f"({settings_hash(rec['settings'])}): the settings were changed after the run; {hint}")
        _check_data(rec, data, rep, add, hint, is_audit)
        if is_audit and "arm_records" in rec and rec.get("experiment") in SEEDED_AUDITS:
            try:
                bad = summary_problems(rec, root)
            except RecordError:
                bad = []  # a damaged arm record: reported on its own line
            except ValueError as e:
                bad = [str(e)]
            if bad:  # one problem: the summary is stale; its first difference shows how
                more = f" (and {len(bad) - 1} more differences)" if len(bad) > 1 else ""
                add(ERROR, f"does not agree with its arm records: {bad[0]}{more}; {hint}")
        for level, what in provenance_problems(rec, git):
            add(level, what)
    return rep


def _check_data(rec: dict, data: _Data, rep: Report, add, hint: str, is_audit: bool) -> None:
    """The record's dataset fingerprint against the data on disk now (counted as not checked when they are absent)."""
    ds = rec.get("dataset") or {}
    try:
        named, fp = (data.audit if is_audit else data.experiment)(rec)
    except (RecordError, OSError) as e:
        add(ERROR, f"pools a record that cannot be read: {e}")
        return
    except ValueError as e:  # an experiment or audit no longer defined
        add(WARNING, f"dataset fingerprint not checked: {e}")
        return
    if named is None or named != ds.get("id") or fp is None:
        rep.data_not_checked += 1
        return
    rep.data_checked += 1
    if fp != ds.get("fingerprint"):
        what = "the data on disk now" if ds.get("id") != "synthetic" else "the synthetic stand-in generated now"
        add(ERROR, f"dataset fingerprint {ds.get('fingerprint')} is not that of {ds.get('id')} ({what}: {fp}): "
                   f"it was made on other data; {hint}")
