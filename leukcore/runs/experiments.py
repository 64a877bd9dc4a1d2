"""One run of one experiment, resolved once at the entry, and its record.

:func:`resolve_run` turns (paper, experiment, profile, seed, device, data root, results folder,
overrides) into one :class:`Run`: the experiment, its route (:mod:`leukcore.runs.routes`), the
profile, the settings hashed into its key, the seed and the resolved device. :func:`execute` runs
it: reads the code state, sets the profile's threads, then either trains and evaluates every fold
(seeded once per fold, ``seed + k``, before the route builds its model) and writes the pooled
record, or, for a route that trains nothing, pools its parts' records (found, or executed as runs
of their own). :func:`run_experiment` is both in one call; :func:`find_record` returns an existing
complete record with the same key, :func:`get_or_run` that or a new run, :func:`run_paper` every
experiment of a paper. Cross-validated experiments can also run fold by fold (:mod:`.folds`).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .. import data as D
from ..metrics import metrics_and_intervals
from .deviations import deviation_lines
from .inputs import ExperimentData, experiment_data, experiment_images, experiment_split, row_positions
from .profiles import Profile, get_profile
from .protocols import Experiment, experiment_settings, get_experiment, list_experiments, read_protocol, task_spec
from .records import (
    check_code,
    code_block,
    code_state,
    device_description,
    git_commit,
    library_versions,
    read_complete,
    read_record,
    record_path,
    run_name,
    settings_hash,
    write_record,
)
from .routes import FINAL_WEIGHTS, FoldInputs, Route, get_route


@dataclass(frozen=True)
class Run:
    """One run, resolved once: what it computes (paper, experiment, route, profile, settings) and
    how and where (seed, device, data root, results folder, what to do with an unreadable file)."""

    paper: str
    experiment: Experiment
    route: Route
    profile: Profile
    settings: dict | None      #: what it computes, hashed into its key (None for a route that trains nothing)
    seed: int = 0
    device: str = "cpu"         #: resolved: ``cpu`` or ``cuda``
    data_root: str | None = None
    results_dir: str | os.PathLike | None = None
    overrides: dict | None = None
    on_bad: str = "raise"
    progress: bool = False

    @property
    def path(self) -> Path:
        """Where its record is written."""
        return record_path(self.paper, self.profile.name, self.experiment.id, self.results_dir, self.seed)

    @property
    def checkpoints(self) -> Path:
        """Its checkpoint folder (``fold<k>/last.pt`` while training, fold 0's final weights)."""
        return self.path.parent / "checkpoints" / run_name(self.experiment.id, self.seed)

    def part(self, experiment_id: str) -> "Run":
        """The same run (profile, seed, device, folders) of another experiment of the paper (a
        pooling route's parts)."""
        exp = get_experiment(self.paper, experiment_id)
        return replace(self, experiment=exp, route=get_route(exp.route),
                       settings=_settings(self.paper, exp, self.profile, self.overrides))


def _settings(paper: str, exp: Experiment, profile: Profile, overrides: dict | None) -> dict | None:
    return experiment_settings(paper, exp, profile, overrides) if get_route(exp.route).trains else None


def resolve_run(paper: str, experiment_id: str, profile: str = "smoke", *, seed: int = 0, device: str = "auto",
                data_root: str | None = None, results_dir=None, overrides: dict | None = None, on_bad: str = "raise",
                progress: bool = False) -> Run:
    """The :class:`Run` of one experiment: profile, experiment, route, settings and device resolved
    here, once (unknown names raise a ValueError listing the valid ones; ``cuda`` without a GPU too)."""
    from ..engine import resolve_device

    prof, exp = get_profile(profile), get_experiment(paper, experiment_id)
    return Run(paper, exp, get_route(exp.route), prof, _settings(paper, exp, prof, overrides), seed=int(seed),
               device=str(resolve_device(device)), data_root=data_root, results_dir=results_dir,
               overrides=overrides, on_bad=on_bad, progress=progress)


def run_experiment(paper: str, experiment_id: str, profile: str = "smoke", *, data_root: str | None = None,
                   device: str = "auto", seed: int = 0, results_dir: str | os.PathLike | None = None,
                   progress: bool = False, on_bad: str = "raise", write: bool = True,
                   overrides: dict | None = None, allow_dirty: bool | None = None) -> dict:
    """Train and evaluate one experiment; write and return its run record (:func:`resolve_run`,
    then :func:`execute`).

    The record holds: paper, experiment, profile, dataset (id, fingerprint, counts, whether it
    is the paper's), split (ids per part), seed, settings and their hash, deviations, git
    commit, library versions, device, wall time, history, metrics with 95 % intervals and the
    saved predictions.  A run interrupted mid-way leaves a checkpoint but no complete record, and
    resumes from that checkpoint when called again.

    Provenance: the code is read before training (:func:`leukcore.runs.records.code_state`); a dirty
    tree's diff is stored beside the record.  At the ``paper`` profile a dirty tree is refused
    (:class:`leukcore.runs.records.DirtyTreeError`) unless ``allow_dirty`` (default:
    ``$LEUKCORE_ALLOW_DIRTY``).
    """
    run = resolve_run(paper, experiment_id, profile, seed=seed, device=device, data_root=data_root,
                      results_dir=results_dir, overrides=overrides, on_bad=on_bad, progress=progress)
    return execute(run, write=write, allow_dirty=allow_dirty)


def execute(run: Run, *, write: bool = True, allow_dirty: bool | None = None, code: dict | None = None) -> dict:
    """Run a resolved run and return its record (written unless ``write`` is False).

    ``code``: the code state read before it started (read now when absent; a pooling route
    passes its own to the parts it runs, so that all of them name the same code)."""
    from ..engine import intra_op_threads

    t0 = time.perf_counter()
    code = code if code is not None else code_state()  # read before training: the tree may change meanwhile
    check_code(code, run.profile.name, allow_dirty)
    with intra_op_threads(run.profile.threads):
        if not run.route.trains:
            parts = [find_run(p) or execute(p, write=write, allow_dirty=allow_dirty, code=code)
                     for p in map(run.part, run.route.parts(run.experiment))]
            rec, preds = run.route.pooled_record(run, parts, code=code, wall_time_s=time.perf_counter() - t0)
            return read_record(write_record(rec, predictions=preds, root=run.results_dir)) if write else rec
        fitted = prepare(run)
        outs = [fit_fold(fitted, k) for k in range(len(fitted.folds))]
        rec, preds = pooled_record(fitted, outs, code=code, wall_time_s=time.perf_counter() - t0)
    if write:
        rec = read_record(write_record(rec, predictions=preds, root=run.results_dir))  # what the book reads
        for last in run.checkpoints.glob("fold*/last.pt"):  # complete: its resume point is no longer needed
            last.unlink()
    return rec


@dataclass
class Prepared:
    """A training run with its data: the table, its split into folds, the decoded images."""

    run: Run
    edata: ExperimentData
    table: pd.DataFrame       #: the rows whose images decoded
    task: dict
    class_names: list
    folds: list
    x: np.ndarray
    y: np.ndarray
    skipped: list


def prepare(run: Run) -> Prepared:
    """Load the run's data, split it and decode its images (what every fold shares)."""
    edata = experiment_data(run.paper, run.experiment, run.profile, run.data_root, seed=run.seed)
    table = edata.table
    class_names = list(table.attrs.get("classes") or sorted(table["class_name"].unique()))
    folds = experiment_split(run.paper, run.experiment, table, run.profile, seed=run.seed)
    x, kept = experiment_images(table, run.settings, run.on_bad)
    return Prepared(run, edata, kept, task_spec(read_protocol(run.paper), run.experiment), class_names, folds, x,
                    kept["label"].to_numpy(), kept.attrs.get("skipped", []))


def fit_fold(p: Prepared, k: int) -> dict:
    """Train and evaluate fold ``k``: the seed ``seed + k`` is set here, once, before the route
    builds its model (``fit`` seeds its own shuffling and augmentation from the same number)."""
    import torch

    run, part, table = p.run, p.folds[k], p.table
    tr, te = row_positions(table, part["train"]), row_positions(table, part["test"])
    va = row_positions(table, part["val"]) if "val" in part else None
    torch.manual_seed(run.seed + k)
    out = run.route.fit_fold(run.experiment, FoldInputs(
        run.settings, len(p.class_names), p.x, p.y, tr, va, te, list(table["id"].to_numpy()[te]), seed=run.seed + k,
        device=run.device, progress=run.progress,
        checkpoint_dir=run.checkpoints / f"fold{k}" if run.profile.checkpoints else None,
        weights_path=run.checkpoints / "fold0" / FINAL_WEIGHTS if k == 0 else None))
    return {"fold": k, "prob": out.prob, "y": p.y[te], "ids": list(table["id"].to_numpy()[te]),
            "history": out.history, "params": out.params, "model_lines": out.model_lines,
            "sizes": {kk: len(v) for kk, v in part.items()}}


def pooled_record(p: Prepared, outs: list[dict], *, code: dict, wall_time_s: float) -> tuple[dict, pd.DataFrame]:
    """The run record and predictions of the folds in ``outs`` (all of a run's folds: its record)."""
    run = p.run
    model_lines = list(dict.fromkeys(d for o in outs for d in o["model_lines"]))
    prob = np.concatenate([o["prob"] for o in outs])
    y = np.concatenate([o["y"] for o in outs])
    ids = [i for o in outs for i in o["ids"]]
    block = metrics_and_intervals(y, prob, p.class_names, p.task.get("positive"), run.profile.bootstrap, run.seed)
    preds = pd.DataFrame({"id": ids, "y_true": y, **{f"p_{c}": prob[:, c] for c in range(prob.shape[1])}})
    if len(p.folds) > 1:  # cross-validated: which fold's model made each prediction (ids repeat under a held-out test)
        preds["fold"] = [o["fold"] for o in outs for _ in o["ids"]]
    rec = {
        "status": "complete", "paper": run.paper, "experiment": run.experiment.id, "profile": run.profile.name,
        "seed": run.seed, "spec": run.experiment.spec(), "settings": run.settings,
        "settings_hash": settings_hash(run.settings), "dataset": p.edata.describe(), "class_names": p.class_names,
        "positive": p.task.get("positive"),
        "split": {"folds": [o["sizes"] for o in outs], "test_ids_hash": settings_hash({"ids": sorted(ids)})},
        "skipped": p.skipped,
        "deviations": deviation_lines(run.paper, run.experiment, run.settings, seed=run.seed, model_lines=model_lines,
                                      n_folds=len(p.folds)),
        "params_trainable": outs[-1]["params"], "history": [o["history"] for o in outs],
        "commit": git_commit(state=code), "versions": library_versions(),
        "device": device_description(run.device), "threads": _torch_threads(),
        "wall_time_s": round(wall_time_s, 2), **block,
    }
    rec["code"], rec["_diff"] = code_block(code)
    return rec, preds


def _torch_threads() -> int:
    """torch's intra-op thread count now (recorded with each run: it changes the wall time)."""
    import torch

    return torch.get_num_threads()


# --------------------------------------------------------------------------------------------
# Records: reuse before rerun
# --------------------------------------------------------------------------------------------


def find_run(run: Run) -> dict | None:
    """The existing complete record of a resolved run with the same key (data fingerprint, seed,
    settings; a pooling route's: its parts' records), else None.

    A record that left bad files out (non-empty ``skipped``) is reused only under
    ``on_bad="skip"``: with the default ``"raise"`` the experiment reruns and stops at the bad file.
    """
    rec = read_complete(run.path, run.seed)
    if rec is None or (rec.get("skipped") and run.on_bad != "skip"):
        return None
    if not run.route.trains:
        parts = [find_run(run.part(e)) for e in run.route.parts(run.experiment)]
        return rec if all(parts) and run.route.matches(rec, parts) else None
    if rec.get("settings_hash") != settings_hash(run.settings):
        return None
    edata = experiment_data(run.paper, run.experiment, run.profile, run.data_root, seed=run.seed)
    return rec if rec["dataset"]["fingerprint"] == D.fingerprint(edata.table) else None


def find_record(paper: str, experiment_id: str, profile: str, *, results_dir=None, seed: int = 0,
                data_root: str | None = None, overrides: dict | None = None, on_bad: str = "raise") -> dict | None:
    """The existing complete record with the same key (paper, experiment, profile, data, seed,
    settings), else None (:func:`find_run` of the resolved run)."""
    return find_run(resolve_run(paper, experiment_id, profile, seed=seed, data_root=data_root,
                                results_dir=results_dir, overrides=overrides, on_bad=on_bad))


def get_or_run(paper: str, experiment_id: str, profile: str = "smoke", *, force: bool = False, **kw) -> dict:
    """An existing complete record with the same key, else :func:`run_experiment` (``kw``: its
    options); ``force`` retrains."""
    found = {k: kw[k] for k in ("results_dir", "seed", "data_root", "overrides", "on_bad") if k in kw}
    rec = None if force else find_record(paper, experiment_id, profile, **found)
    return rec if rec is not None else run_experiment(paper, experiment_id, profile, **kw)


def run_paper(paper: str, profile: str = "smoke", *, data_root=None, device: str = "auto", seed: int = 0,
              results_dir=None, force: bool = False, progress: bool = True, overrides: dict | None = None,
              train_missing: bool = True, seeds: list[int] | None = None) -> list[dict]:
    """Every experiment of one paper, reusing complete records (what a notebook calls).

    ``seeds`` (e.g. ``[0, 1, 2]``): every experiment once per seed, each recorded on its own;
    the records of all seeds are returned (default: ``seed`` alone).

    ``train_missing=False`` only collects existing records: an experiment without one is left
    out (and shows as *not run* in the claims table) instead of being trained.
    """
    out = []
    for k in ([seed] if seeds is None else seeds):
        for e in list_experiments(paper, profile):
            where = dict(results_dir=results_dir, seed=int(k), data_root=data_root, overrides=overrides)
            rec = None if force else find_record(paper, e.id, profile, **where)
            if rec is None and (train_missing or force):
                rec = run_experiment(paper, e.id, profile, device=device, progress=progress, **where)
            if rec is not None:
                out.append(rec)
    return out
