"""One fold at a time: a lent GPU grows a cross-validated experiment fold by fold.

:func:`run_fold` trains exactly the fold :func:`leukcore.runs.experiments.execute` trains (split,
seed ``seed + k``, checkpoints, fold 0's final weights) and writes it as a fold record,
``<paper>/<profile>/folds/<run>.fold<k>.json`` (keyed like a whole run: settings hash, dataset
fingerprint, seed); :func:`pool_folds` builds the usual record from all ``k`` fold records, the
record a whole run writes (out-of-fold predictions in fold order, metrics and intervals
recomputed), and, while folds are missing, a ``status: "partial"`` record of the folds done.
"""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from .. import data as D
from ..metrics import metrics_and_intervals
from .experiments import fit_fold, pooled_record, prepare, resolve_run
from .inputs import experiment_data
from .profiles import get_profile
from .protocols import n_folds
from .records import (
    check_code,
    code_state,
    read_complete,
    read_predictions,
    read_record,
    record_path,
    run_name,
    settings_hash,
    write_record,
)


def fold_record_path(paper: str, profile: str, experiment_id: str, k: int, root=None, seed: int = 0) -> Path:
    """``<results>/<paper>/<profile>/folds/<run>.fold<k>.json`` (below where :func:`load_records` looks)."""
    return (record_path(paper, profile, experiment_id, root).parent / "folds"
            / f"{run_name(experiment_id, seed)}.fold{int(k)}.json")


def run_fold(paper: str, experiment_id: str, profile: str, k: int, *, data_root=None, device: str = "auto",
             seed: int = 0, results_dir=None, progress: bool = False, overrides: dict | None = None,
             allow_dirty: bool | None = None) -> dict:
    """Train and evaluate fold ``k`` of a cross-validated experiment; write and return its fold record.

    The fold is exactly the one :func:`leukcore.runs.experiments.run_experiment` trains, so
    :func:`pool_folds` over all folds gives its record.
    """
    from ..engine import intra_op_threads

    run = resolve_run(paper, experiment_id, profile, seed=seed, device=device, data_root=data_root,
                      results_dir=results_dir, overrides=overrides, progress=progress)
    total = n_folds(paper, experiment_id, profile)
    if not run.route.trains or not 0 <= k < total:
        raise ValueError(f"fold {k} of {paper}/{experiment_id}: valid 0..{total - 1} at profile {profile}")
    t0 = time.perf_counter()
    code = code_state()
    check_code(code, run.profile.name, allow_dirty)
    with intra_op_threads(run.profile.threads):
        prepared = prepare(run)
        out = fit_fold(prepared, k)
        rec, preds = pooled_record(prepared, [out], code=code, wall_time_s=time.perf_counter() - t0)
    rec.update(fold=int(k), n_folds=int(total))
    if total > 1:
        preds["fold"] = k
    path = write_record(rec, predictions=preds, path=fold_record_path(paper, profile, experiment_id, k, results_dir, seed))
    (run.checkpoints / f"fold{k}" / "last.pt").unlink(missing_ok=True)
    return read_record(path)


def find_fold_record(paper: str, experiment_id: str, profile: str, k: int, *, seed: int = 0, results_dir=None,
                     data_root=None, overrides=None) -> dict | None:
    """The complete fold record with the current key (settings hash, dataset fingerprint, seed), else None."""
    rec = read_complete(fold_record_path(paper, profile, experiment_id, k, results_dir, seed), seed)
    if rec is None or rec.get("skipped"):
        return None
    run = resolve_run(paper, experiment_id, profile, seed=seed, data_root=data_root, results_dir=results_dir,
                      overrides=overrides)
    if rec.get("settings_hash") != settings_hash(run.settings):
        return None
    edata = experiment_data(paper, run.experiment, run.profile, data_root, seed=seed)
    return rec if rec["dataset"]["fingerprint"] == D.fingerprint(edata.table) else None


def pool_folds(paper: str, experiment_id: str, profile: str, *, seed: int = 0, results_dir=None, data_root=None,
               overrides: dict | None = None) -> dict | None:
    """The record of a cross-validated experiment pooled from its fold records.

    All folds done: the record a whole run writes (same key, predictions in fold order, metrics on
    the pooled predictions) at the usual path. Some: a ``status: "partial"`` record with
    ``folds_done`` at ``folds/<run>.partial.json``, which the book never reads as a result.
    None when no fold is done.
    """
    total = n_folds(paper, experiment_id, profile)
    done = [r for r in (find_fold_record(paper, experiment_id, profile, k, seed=seed, results_dir=results_dir,
                                         data_root=data_root, overrides=overrides) for k in range(total)) if r]
    if not done:
        return None
    preds = pd.concat([read_predictions(r) for r in done], ignore_index=True)
    y = preds["y_true"].to_numpy()
    prob = preds[[c for c in preds.columns if c.startswith("p_")]].to_numpy()
    first = done[0]
    block = metrics_and_intervals(y, prob, first["class_names"], first.get("positive"), get_profile(profile).bootstrap,
                                  seed)
    rec = {k: v for k, v in first.items() if k not in ("fold", "n_folds", "_path", "predictions", "predictions_sha256",
                                                        "written_at", "metrics", "intervals")}
    rec.update(status="complete" if len(done) == total else "partial",
               split={"folds": [f for r in done for f in r["split"]["folds"]],
                      "test_ids_hash": settings_hash({"ids": sorted(preds["id"])})},
               deviations=list(dict.fromkeys(d for r in done for d in r.get("deviations", []))),
               history=[h for r in done for h in r["history"]], params_trainable=done[-1].get("params_trainable"),
               wall_time_s=round(sum(r["wall_time_s"] for r in done), 2), pooled_from_folds=[r["fold"] for r in done],
               **block)
    if len({r.get("commit") for r in done}) > 1:
        rec["fold_commits"] = {str(r["fold"]): r.get("commit") for r in done}
    partial = fold_record_path(paper, profile, experiment_id, 0, results_dir, seed).with_name(
        f"{run_name(experiment_id, seed)}.partial.json")
    if rec["status"] == "complete":
        out = read_record(write_record(rec, predictions=preds, root=results_dir))
        for stale in partial.parent.glob(f"{partial.stem}.*"):
            stale.unlink(missing_ok=True)
        return out
    rec["folds_done"] = len(done)
    return read_record(write_record(rec, predictions=preds, path=partial))
