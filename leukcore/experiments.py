"""Protocol files -> experiments; one call that trains and evaluates one; executors over many.

A paper's protocol (``leukcore/protocols/<paper>.yaml``) is data: dataset, split rule, image
size, training recipe, the experiments (listed, or a ``grid`` that expands to them), and the
deviations we had to make.  :func:`list_experiments` expands it at a profile;
:func:`run_experiment` trains and evaluates one experiment and writes its run record;
:func:`get_or_run` returns an existing complete record with the same key instead of rerunning.
:func:`run_grid` runs many, in process (``executor="local"``, the default) or as Ray tasks.
"""
from __future__ import annotations

import copy
import itertools
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from . import data as D
from .profiles import Profile, get_profile
from .records import (device_description, git_commit, library_versions, read_predictions,
                      read_record, record_path, run_name, settings_hash, write_record)

PROTOCOL_DIR = Path(__file__).resolve().parent / "protocols"
#: Metric paths that get a bootstrap interval in every record.
CI_METRICS = ("accuracy", "sensitivity.macro", "sensitivity.weighted", "specificity.macro", "specificity.weighted",
              "precision.macro", "precision.weighted", "f1.macro", "f1.weighted", "auc")


# --------------------------------------------------------------------------------------------
# Protocols
# --------------------------------------------------------------------------------------------


def list_papers() -> list[str]:
    """Paper ids that have a protocol file."""
    return sorted(p.stem for p in PROTOCOL_DIR.glob("*.yaml"))


@lru_cache(maxsize=None)
def _read_protocol(paper: str) -> dict:
    path = PROTOCOL_DIR / f"{paper}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown paper {paper!r}; valid: {', '.join(list_papers())}")
    doc = yaml.safe_load(path.read_text())
    if doc.get("paper") != paper:
        raise ValueError(f"{path}: 'paper' field {doc.get('paper')!r} does not match the file name")
    from .engine import check_train_keys

    check_train_keys(doc.get("train", {}), f"{path.name} 'train'")
    return doc


def load_protocol(paper: str) -> dict:
    """The protocol of ``paper`` as a dict (a copy: callers may modify it)."""
    return copy.deepcopy(_read_protocol(paper))


@dataclass
class Experiment:
    """One unit of work: a model (or classifier) trained and evaluated once under a protocol."""

    paper: str
    id: str
    model: str | None
    route: str = "cnn"                     #: cnn | features | fusion | aggregate
    task: str | None = None                #: for papers with several tasks (LoGMH: binary, multiclass)
    loss: str | None = None
    augment: str | None = None
    fold: int | None = None
    classifier: str | None = None
    backbone: str | None = None
    model_kw: dict = field(default_factory=dict)
    of: list = field(default_factory=list)  #: aggregate: the experiments pooled
    min_image_size: int | None = None      #: the model's smallest input (ALNet 136, InceptionV3 75)
    note: str | None = None

    def spec(self) -> dict:
        """The experiment as plain data (stored in its record)."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, [], {})}


def _expand_grid(paper: str, grid: dict, extra: dict | None = None) -> list[Experiment]:
    keys = [k for k in grid if k not in ("id", "backbone")]
    values = [list(grid[k].items()) if isinstance(grid[k], dict) else [(v, v) for v in grid[k]] for k in keys]
    out = []
    for combo in itertools.product(*values):
        names = {k: name for k, (name, _) in zip(keys, combo)}
        vals = {k: val for k, (_, val) in zip(keys, combo)}
        exp = Experiment(paper=paper, id=grid["id"].format(**names), model=vals.get("model"),
                         task=vals.get("task"), loss=vals.get("loss"), augment=vals.get("aug"),
                         classifier=vals.get("classifier"), backbone=grid.get("backbone"), **(extra or {}))
        out.append(exp)
    return out


def list_experiments(paper: str, profile: str = "paper") -> list[Experiment]:
    """The experiments of ``paper`` (the same at every profile: a profile only caps their size)."""
    get_profile(profile)
    proto = _read_protocol(paper)
    exps: list[Experiment] = []
    if "grid" in proto:
        exps += _expand_grid(paper, proto["grid"])
    if "feature_grid" in proto:
        exps += _expand_grid(paper, proto["feature_grid"], {"route": "features"})
        for e in exps[-len(list(itertools.product(*[v for k, v in proto["feature_grid"].items()
                                                     if k not in ("id", "backbone")]))):]:
            e.model = f"{e.backbone}+{e.classifier}"
    for spec in proto.get("experiments", []):
        spec = dict(spec)
        exps.append(Experiment(paper=paper, id=spec.pop("id"), model=spec.pop("model", None), **spec))
    ids = [e.id for e in exps]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ValueError(f"{paper}: duplicate experiment ids {sorted(dup)}")
    return exps


def get_experiment(paper: str, experiment_id: str) -> Experiment:
    """One experiment of ``paper`` by id; unknown ids raise a ValueError listing the valid ones."""
    exps = {e.id: e for e in list_experiments(paper)}
    if experiment_id not in exps:
        raise ValueError(f"unknown experiment {experiment_id!r} of {paper}; valid: {', '.join(exps)}")
    return exps[experiment_id]


def _task_spec(proto: dict, exp: Experiment) -> dict:
    """Dataset, classes, positive class and synthetic layout of the experiment's task."""
    if "tasks" in proto:
        return dict(proto["tasks"][exp.task])
    return {k: proto.get(k) for k in ("dataset", "classes", "positive", "synthetic_layout", "substitute")}


# --------------------------------------------------------------------------------------------
# Data for one experiment
# --------------------------------------------------------------------------------------------

_SYNTH_LAYOUT_OF = {"taleqani-all": "taleqani", "cnmc-2019": "cnmc", "leukemia-0.2": "leukemia-0.2",
                    "multicancer-all": "multicancer", "pbc-lymphocytes": "pbc"}


@dataclass
class ExperimentData:
    """The table an experiment used and what it is: the paper's data, a real substitute, or synthetic."""

    table: pd.DataFrame
    dataset_id: str
    is_papers: bool
    stands_in_for: str | None
    note: str

    def describe(self) -> dict:
        return {"id": self.dataset_id, "is_papers": self.is_papers, "stands_in_for": self.stands_in_for,
                "note": self.note, "fingerprint": D.fingerprint(self.table), "n_images": int(len(self.table)),
                "root_source": self.table.attrs.get("root_source"),
                "counts": {str(k): int(v) for k, v in self.table["class_name"].value_counts().sort_index().items()}}


def experiment_data(paper: str, exp: Experiment, profile: Profile, data_root: str | None = None, *,
                    seed: int = 0, verbose: bool = False) -> ExperimentData:
    """Load the experiment's dataset; fall back to the protocol's real substitute, then to synthetic.

    The table is then capped at ``profile.max_per_class`` images per class (seeded, stratified).
    """
    proto = _read_protocol(paper)
    task = _task_spec(proto, exp)
    ds = task["dataset"]
    try:
        table = D.load_dataset(ds["id"], data_root, verbose=verbose, **ds.get("options", {}))
        out = ExperimentData(table, ds["id"], True, None, "the paper's dataset")
    except D.DataError as missing:
        sub = task.get("substitute")
        out = None
        if sub:
            try:
                table = D.load_dataset(sub["id"], data_root, verbose=verbose, **sub.get("options", {}))
                out = ExperimentData(table, sub["id"], False, ds["id"],
                                     f"real substitute for {ds['id']}: {' '.join(str(sub.get('why', '')).split())}")
            except D.DataError:
                out = None
        if out is None:
            layout = task.get("synthetic_layout") or _SYNTH_LAYOUT_OF[ds["id"]]
            size = max(profile.image_size or 64, 32)
            table = D.load_synthetic(layout=layout, n_per_class=profile.synthetic_per_class, size=min(size, 96),
                                     seed=seed, **ds.get("options", {}))
            out = ExperimentData(table, "synthetic", False, ds["id"],
                                 f"SYNTHETIC stand-in for {ds['id']} (absent: {str(missing).split(';')[0]})")
    t = out.table
    t = t[t["label"] >= 0].reset_index(drop=True) if (t["label"] < 0).any() else t
    if profile.max_per_class:
        rng = np.random.default_rng(seed)
        keep = []
        for _, g in t.groupby("label", sort=True):
            idx = g.index.to_numpy()
            keep += sorted(rng.permutation(idx)[: profile.max_per_class].tolist())
        attrs = dict(t.attrs)
        t = t.loc[sorted(keep)].reset_index(drop=True)
        t.attrs = attrs
    out.table = t
    return out


def experiment_split(paper: str, exp: Experiment, table: pd.DataFrame, profile: Profile, *, seed: int = 0) -> list[dict]:
    """The protocol's split of ``table`` for this experiment: a list of ``{train, val?, test}`` parts.

    One element for a fixed split or a fold experiment; several for a cross-validated
    experiment (capped at ``profile.max_folds``; their test predictions are pooled).
    """
    split = _read_protocol(paper)["split"]
    kind = split["kind"]
    if kind == "fractions":
        return [D.split_fractions(table, split["fractions"], seed=seed, group_by=split.get("group_by"))]
    if kind == "kfold":
        folds = D.split_kfold(table, split["k"], seed=seed, group_by=split.get("group_by"))
        return folds[: profile.max_folds] if profile.max_folds else folds
    if kind == "published_folds":
        fold = exp.fold or 0
        if "fold" in table and table["fold"].notna().any():
            part = table[table["fold"] == fold] if fold in set(table["fold"]) else table
        else:
            part = table
        return [D.split_fractions(part.reset_index(drop=True), split["within_fold"], seed=seed + fold)]
    raise ValueError(f"{paper}: unknown split kind {kind!r}")


# --------------------------------------------------------------------------------------------
# Running one experiment
# --------------------------------------------------------------------------------------------


def _settings(paper: str, exp: Experiment, profile: Profile, overrides: dict | None = None) -> dict:
    """Everything that defines what an experiment computes (hashed into its record key).

    ``overrides`` (a notebook's knobs): ``{"train": {...}, "models": {model: {kw...}},
    "logmh": {"sigma", "alpha", "beta"}}``.  Settings hold effective values, so an override equal
    to the default gives the same key as no override.
    """
    overrides = overrides or {}
    unknown = set(overrides) - {"train", "models", "logmh"}
    if unknown:
        raise ValueError(f"unknown override keys {sorted(unknown)}; valid: train, models, logmh")
    proto = _read_protocol(paper)
    from .engine import check_train_keys

    check_train_keys(overrides.get("train", {}), "the 'train' overrides")
    train = {**proto.get("train", {}), **overrides.get("train", {})}
    if exp.loss:
        train["loss"] = exp.loss
    if exp.augment:
        train["augment"] = exp.augment
    if profile.epochs is not None:
        train["epochs"] = min(int(train.get("epochs", profile.epochs)), profile.epochs)
    if profile.batch_size is not None:
        train["batch_size"] = profile.batch_size
    size = profile.image_size or proto.get("image_size", 224)
    from .models import min_input_size

    model_min = min_input_size(exp.backbone if exp.route == "features" else exp.model) if exp.model else 0
    size = max(size, int(proto.get("min_image_size", 0)), int(exp.min_image_size or 0), profile.min_image_size,
               model_min)
    model_kw = {**exp.model_kw, **overrides.get("models", {}).get(exp.model or "", {})}
    out = {"experiment": exp.spec(), "train": train, "image_size": int(size), "model_kw": model_kw,
            "preprocess": proto.get("preprocess"), "center_crop": bool(proto.get("center_crop", False)),
            "split": proto["split"], "pretrained": bool(proto.get("pretrained", {}).get(
                (exp.backbone if exp.route == "features" else exp.model) or "", False)),
            "profile": profile.settings()}
    if out["preprocess"] == "logmh":
        from .filters import LOGMH_DEFAULTS

        out["logmh"] = {**LOGMH_DEFAULTS, **overrides.get("logmh", {})}
    return out


def _images(table: pd.DataFrame, settings: dict, on_bad: str) -> tuple[np.ndarray, pd.DataFrame]:
    x, kept = D.load_images(table, settings["image_size"], on_bad=on_bad)
    preprocess = settings.get("preprocess")
    if preprocess == "logmh":
        from .filters import logmh

        x = np.stack([(logmh(im, **settings["logmh"]) * 255.0 + 0.5).astype(np.uint8) for im in x])
    elif preprocess:
        raise ValueError(f"unknown preprocess {preprocess!r}; valid: logmh")
    return x, kept


def _index(table: pd.DataFrame, ids: list[str]) -> np.ndarray:
    pos = pd.Series(np.arange(len(table)), index=table["id"])
    return pos.loc[[i for i in ids if i in pos.index]].to_numpy()


def _metrics_block(y: np.ndarray, prob: np.ndarray, class_names: list[str], positive, n_boot: int, seed: int) -> dict:
    from .metrics import bootstrap_ci, compute_metrics

    pos = None
    if prob.shape[1] == 2 and positive:
        pos = int(positive[0])
    m = compute_metrics(y, prob, class_names=class_names, positive=pos)
    ci = {}
    for path in CI_METRICS:
        try:
            ci[path] = bootstrap_ci(y, prob, path, n=n_boot, seed=seed, class_names=class_names, positive=pos)
        except (ValueError, KeyError):
            continue
    if prob.shape[1] == 2:
        for path in ("sensitivity.binary", "specificity.binary", "precision.binary", "f1.binary"):
            try:
                ci[path] = bootstrap_ci(y, prob, path, n=n_boot, seed=seed, class_names=class_names, positive=pos)
            except (ValueError, KeyError):
                continue
    return {"metrics": m, "intervals": ci}


def _train_config(settings: dict, *, seed: int, device: str, progress: bool):
    """The run's training configuration: the settings' ``train`` block as it is (one set of defaults, TrainConfig's)."""
    from .engine import TrainConfig

    return TrainConfig.from_protocol(settings["train"], seed=seed, device=device, progress=progress)


def run_experiment(paper: str, experiment_id: str, profile: str = "smoke", *, data_root: str | None = None,
                   device: str = "auto", seed: int = 0, results_dir: str | os.PathLike | None = None,
                   progress: bool = False, on_bad: str = "raise", write: bool = True,
                   overrides: dict | None = None) -> dict:
    """Train and evaluate one experiment; write and return its run record.

    The record holds: paper, experiment, profile, dataset (id, fingerprint, counts, whether it
    is the paper's), split (ids per part), seed, settings and their hash, deviations, git
    commit, library versions, device, wall time, history, metrics with 95 % intervals and the
    saved predictions.  A run interrupted mid-way leaves a checkpoint but no complete record, and
    resumes from that checkpoint when called again.
    """
    from .engine import intra_op_threads

    with intra_op_threads(get_profile(profile).threads):
        return _run_experiment(paper, experiment_id, profile, data_root=data_root, device=device, seed=seed,
                               results_dir=results_dir, progress=progress, on_bad=on_bad, write=write,
                               overrides=overrides)


def _run_experiment(paper, experiment_id, profile, *, data_root, device, seed, results_dir, progress, on_bad, write,
                    overrides) -> dict:
    prof = get_profile(profile)
    exp = get_experiment(paper, experiment_id)
    proto = _read_protocol(paper)
    t0 = time.perf_counter()
    if exp.route == "aggregate":
        return _run_aggregate(paper, exp, prof, data_root=data_root, device=device, seed=seed,
                              results_dir=results_dir, progress=progress, on_bad=on_bad, write=write,
                              overrides=overrides)
    settings = _settings(paper, exp, prof, overrides)
    edata = experiment_data(paper, exp, prof, data_root, seed=seed)
    table = edata.table
    task = _task_spec(proto, exp)
    class_names = list(table.attrs.get("classes") or sorted(table["class_name"].unique()))
    n_classes = len(class_names)
    folds = experiment_split(paper, exp, table, prof, seed=seed)
    x_all, kept = _images(table, settings, on_bad)
    skipped = kept.attrs.get("skipped", [])
    table = kept
    y_all = table["label"].to_numpy()
    ckpt_root = record_path(paper, profile, experiment_id, results_dir).parent / "checkpoints" / run_name(experiment_id, seed)
    commit = git_commit()  # the code that runs, read before training (not after: the tree may change meanwhile)
    weights_dir = ckpt_root
    dev = _resolve_device(device)
    probs, ys, ids, history, deviations, params = [], [], [], [], list(proto.get("deviations", [])), None
    for k, part in enumerate(folds):
        tr, te = _index(table, part["train"]), _index(table, part["test"])
        va = _index(table, part["val"]) if "val" in part else None
        fold_seed = seed + k
        ckpt = ckpt_root / f"fold{k}" if prof.checkpoints else None
        if exp.route == "cnn":
            prob, hist, p, devs = _run_cnn(exp, settings, n_classes, x_all, y_all, tr, va, te, table,
                                           seed=fold_seed, device=dev, progress=progress, checkpoint_dir=ckpt,
                                           weights_path=weights_dir / f"fold{k}" / FINAL_WEIGHTS if k == 0 else None)
        elif exp.route == "features":
            prob, hist, p, devs = _run_features(exp, settings, n_classes, x_all, y_all, tr, va, te,
                                                seed=fold_seed, device=dev, progress=progress, checkpoint_dir=ckpt)
        elif exp.route == "fusion":
            prob, hist, p, devs = _run_fusion(exp, settings, n_classes, x_all, y_all, tr, va, te,
                                              seed=fold_seed, device=dev, progress=progress, checkpoint_dir=ckpt)
        else:
            raise ValueError(f"unknown route {exp.route!r} in {paper}/{exp.id}; valid: cnn, features, fusion, aggregate")
        probs.append(prob)
        ys.append(y_all[te])
        ids += list(table["id"].to_numpy()[te])
        history.append(hist)
        params = p
        deviations += [d for d in devs if d not in deviations]
    prob = np.concatenate(probs)
    y = np.concatenate(ys)
    block = _metrics_block(y, prob, class_names, task.get("positive"), prof.bootstrap, seed)
    preds = pd.DataFrame({"id": ids, "y_true": y, **{f"p_{c}": prob[:, c] for c in range(prob.shape[1])}})
    rec = {
        "status": "complete", "paper": paper, "experiment": experiment_id, "profile": profile, "seed": seed,
        "spec": exp.spec(), "settings": settings, "settings_hash": settings_hash(settings),
        "dataset": edata.describe(), "class_names": class_names, "positive": task.get("positive"),
        "split": {"folds": [{k: len(v) for k, v in f.items()} for f in folds],
                  "test_ids_hash": settings_hash({"ids": sorted(ids)})},
        "skipped": skipped, "deviations": deviations, "params_trainable": params,
        "history": history, "commit": commit, "versions": library_versions(),
        "device": device_description(str(dev)), "threads": _torch_threads(),
        "wall_time_s": round(time.perf_counter() - t0, 2),
        **block,
    }
    if write:
        path = write_record(rec, predictions=preds, root=results_dir)
        rec = read_record(path)  # what the book will read: with its predictions file name and hash
        for last in ckpt_root.glob("fold*/last.pt"):  # the run is complete: its resume point is no longer needed
            last.unlink()
    return rec


def _torch_threads() -> int:
    """torch's intra-op thread count now (recorded with each run: it changes the wall time)."""
    import torch

    return torch.get_num_threads()


def final_weights_path(rec: dict) -> Path:
    """Where a CNN record's trained weights are kept (fold 0; beside the record, not committed)."""
    return (Path(rec["_path"]).parent / "checkpoints" / run_name(rec["experiment"], rec.get("seed") or 0) / "fold0"
            / FINAL_WEIGHTS)


def _resolve_device(device: str) -> str:
    if device == "auto":
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            return "cpu"
    return device


def _new_model(name: str, n_classes: int, settings: dict, **kw):
    """Build a model for the run; models whose head depends on the input (ALNet's flatten) get its size."""
    import inspect

    from . import models
    from .models import create_model

    ctor = getattr(models, name, None)
    if ctor is not None and "input_size" in inspect.signature(ctor).parameters:
        kw.setdefault("input_size", settings["image_size"])
    pretrained = "if-available" if settings["pretrained"] else False
    model = create_model(name, num_classes=n_classes, pretrained=pretrained, **kw)
    devs = list(getattr(model, "leukcore_deviations", []) or [])
    return model, devs


def _n_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


#: Final weights of a CNN's first fold (kept for Grad-CAM when the model is small enough).
FINAL_WEIGHTS = "final.pt"
MAX_SAVED_PARAMS = 30_000_000


def _run_cnn(exp, settings, n_classes, x, y, tr, va, te, table, *, seed, device, progress, checkpoint_dir,
             weights_path=None):
    import torch

    from .engine import fit

    torch.manual_seed(seed)
    model, devs = _new_model(exp.model, n_classes, settings, **settings["model_kw"])
    cfg = _train_config(settings, seed=seed, device=device, progress=progress)
    res = fit(model, (x[tr], y[tr]), (x[va], y[va]) if va is not None and len(va) else None,
              (x[te], y[te], list(table["id"].to_numpy()[te])), config=cfg, checkpoint_dir=checkpoint_dir,
              resume=checkpoint_dir is not None)
    n = _n_params(model)
    if weights_path is not None and sum(p.numel() for p in model.parameters()) <= MAX_SAVED_PARAMS:
        from .engine import save_atomic

        save_atomic({k: v.detach().cpu() for k, v in model.state_dict().items()}, Path(weights_path))
    return res.test_prob, res.history, n, devs


def _run_features(exp, settings, n_classes, x, y, tr, va, te, *, seed, device, progress, checkpoint_dir):
    """LoGMH's feature route: a backbone (trained on the training part when no ImageNet weights) -> features -> classifier."""
    import torch

    from .engine import extract_features, make_classifier
    from .engine import fit

    torch.manual_seed(seed)
    backbone, devs = _new_model(exp.backbone, n_classes, settings)
    if any("from scratch" in d for d in devs):
        # Random-weight features would be meaningless: train the backbone on the training part first.
        cfg = _train_config(settings, seed=seed, device=device, progress=progress)
        fit(backbone, (x[tr], y[tr]), (x[va], y[va]) if va is not None and len(va) else None, None,
            config=cfg, checkpoint_dir=checkpoint_dir, resume=checkpoint_dir is not None)
        devs = devs + [f"{exp.backbone} feature extractor trained on the training split (no ImageNet weights)"]
    f_tr = extract_features(backbone, x[tr], device=device)
    f_te = extract_features(backbone, x[te], device=device)
    clf = make_classifier(exp.classifier, seed=seed)
    clf.fit(f_tr, y[tr])
    prob = _full_proba(clf, f_te, n_classes)
    return prob, [], None, devs


def _full_proba(clf, f, n_classes: int) -> np.ndarray:
    p = clf.predict_proba(f)
    classes = getattr(clf, "classes_", np.arange(p.shape[1]))
    out = np.zeros((len(f), n_classes))
    out[:, np.asarray(classes, dtype=int)] = p
    return out


def _run_fusion(exp, settings, n_classes, x, y, tr, va, te, *, seed, device, progress, checkpoint_dir):
    """XIncept: train the fusion head, then a boosted-tree classifier on the fused features."""
    import torch

    from .engine import extract_features, make_classifier
    from .engine import fit

    torch.manual_seed(seed)
    model, devs = _new_model(exp.model, n_classes, settings)
    cfg = _train_config(settings, seed=seed, device=device, progress=progress)
    res = fit(model, (x[tr], y[tr]), (x[va], y[va]) if va is not None and len(va) else None, None,
              config=cfg, checkpoint_dir=checkpoint_dir, resume=checkpoint_dir is not None)
    f_tr = extract_features(model, x[tr], device=device)
    f_te = extract_features(model, x[te], device=device)
    clf = make_classifier(exp.classifier or "xgboost", seed=seed)
    clf.fit(f_tr, y[tr])
    return _full_proba(clf, f_te, n_classes), res.history, _n_params(model), devs


def _run_aggregate(paper, exp, prof, *, data_root, device, seed, results_dir, progress, on_bad, write, overrides):
    """Pool the test predictions of other experiments (ALNet's three folds) into one record."""
    t0 = time.perf_counter()
    parts = [get_or_run(paper, e, prof.name, data_root=data_root, device=device, seed=seed,
                        results_dir=results_dir, progress=progress, on_bad=on_bad, overrides=overrides)
             for e in exp.of]
    preds = pd.concat([read_predictions(r) for r in parts], ignore_index=True)
    y = preds["y_true"].to_numpy()
    prob = preds[[c for c in preds.columns if c.startswith("p_")]].to_numpy()
    first = parts[0]
    block = _metrics_block(y, prob, first["class_names"], first.get("positive"), prof.bootstrap, seed)
    settings = {"aggregate_of": {r["experiment"]: r["settings_hash"] for r in parts}, "profile": prof.settings()}
    ds = dict(first["dataset"])
    ds["fingerprint"] = settings_hash({"fps": sorted(r["dataset"]["fingerprint"] for r in parts)})[:16]
    rec = {"status": "complete", "paper": paper, "experiment": exp.id, "profile": prof.name, "seed": seed,
           "spec": exp.spec(), "settings": settings, "settings_hash": settings_hash(settings), "dataset": ds,
           "class_names": first["class_names"], "positive": first.get("positive"),
           "split": {"pooled_from": list(exp.of)}, "skipped": sum((r.get("skipped", []) for r in parts), []),
           "deviations": first.get("deviations", []), "params_trainable": first.get("params_trainable"),
           "history": [], "commit": git_commit(), "versions": library_versions(), "device": first.get("device"),
           "wall_time_s": round(sum(r["wall_time_s"] for r in parts) + time.perf_counter() - t0, 2), **block}
    if write:
        rec = read_record(write_record(rec, predictions=preds, root=results_dir))
    return rec


# --------------------------------------------------------------------------------------------
# Records: reuse before rerun
# --------------------------------------------------------------------------------------------


def find_record(paper: str, experiment_id: str, profile: str, *, results_dir=None, seed: int = 0,
                data_root: str | None = None, overrides: dict | None = None, on_bad: str = "raise") -> dict | None:
    """The existing complete record with the same key (paper, experiment, profile, data, seed, settings).

    A record that left bad files out (non-empty ``skipped``) is reused only under
    ``on_bad="skip"``: with the default ``"raise"`` the experiment reruns and stops at the bad file.
    """
    prof = get_profile(profile)
    exp = get_experiment(paper, experiment_id)
    from .records import read_complete

    rec = read_complete(record_path(paper, profile, experiment_id, results_dir, seed), seed)
    if rec is None:
        return None
    if rec.get("skipped") and on_bad != "skip":
        return None
    if exp.route == "aggregate":
        parts = [find_record(paper, e, profile, results_dir=results_dir, seed=seed, data_root=data_root,
                             overrides=overrides, on_bad=on_bad) for e in exp.of]
        if any(p is None for p in parts):
            return None
        return rec if rec["settings"].get("aggregate_of") == {p["experiment"]: p["settings_hash"] for p in parts} else None
    if rec.get("settings_hash") != settings_hash(_settings(paper, exp, prof, overrides)):
        return None
    edata = experiment_data(paper, exp, prof, data_root, seed=seed)
    if rec["dataset"]["fingerprint"] != D.fingerprint(edata.table):
        return None
    return rec


def get_or_run(paper: str, experiment_id: str, profile: str = "smoke", *, force: bool = False, **kw) -> dict:
    """An existing complete record with the same key, else :func:`run_experiment`; ``force`` retrains."""
    if not force:
        rec = find_record(paper, experiment_id, profile, results_dir=kw.get("results_dir"), seed=kw.get("seed", 0),
                          data_root=kw.get("data_root"), overrides=kw.get("overrides"),
                          on_bad=kw.get("on_bad", "raise"))
        if rec is not None:
            return rec
    return run_experiment(paper, experiment_id, profile, **kw)


# --------------------------------------------------------------------------------------------
# Executors
# --------------------------------------------------------------------------------------------


@dataclass
class GridResult:
    """What :func:`run_grid` did: records by (paper, experiment), failures with their error."""

    records: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)
    wall_time_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def pending(papers: list[str], profile: str, *, results_dir=None, seed: int = 0, data_root=None,
            force: bool = False) -> list[tuple[str, str]]:
    """(paper, experiment) pairs that have no complete record with the same key (all with ``force``)."""
    out = []
    for p in papers:
        for e in list_experiments(p, profile):
            if force or find_record(p, e.id, profile, results_dir=results_dir, seed=seed, data_root=data_root) is None:
                out.append((p, e.id))
    return out


def run_grid(papers: list[str], profile: str = "smoke", *, executor: str = "local", address: str | None = None,
             data_root: str | None = None, device: str = "auto", seed: int = 0, results_dir=None,
             force: bool = False, progress: bool = True, gpu_fraction: float | None = None,
             max_retries: int = 2) -> GridResult:
    """Run every pending experiment of ``papers``; one failure does not stop the others.

    ``executor="local"`` runs them one at a time in this process.  ``executor="ray"`` submits each
    as a Ray task (see :mod:`leukcore.distributed`); the driver writes the returned records.
    Aggregates run last, locally, from the records of their parts.
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    todo = pending(papers, profile, results_dir=results_dir, seed=seed, data_root=data_root, force=force)
    agg = [(p, e) for p, e in todo if get_experiment(p, e).route == "aggregate"]
    todo = [t for t in todo if t not in agg]
    result = GridResult()
    kw = dict(data_root=data_root, device=device, seed=seed, results_dir=results_dir)
    if executor == "local":
        bar = tqdm(total=len(todo), desc=f"experiments ({profile})", disable=not progress)
        for p, e in todo:
            bar.set_postfix_str(f"{p}/{e}")
            try:
                result.records[(p, e)] = run_experiment(p, e, profile, **kw)
            except Exception as err:  # noqa: BLE001 - reported in the summary, others go on
                result.failures[(p, e)] = f"{type(err).__name__}: {err}"
                traceback.print_exc(file=sys.stderr)
            bar.update(1)
        bar.close()
    elif executor == "ray":
        from .distributed import run_on_ray

        run_on_ray(todo, profile, result, address=address, gpu_fraction=gpu_fraction, max_retries=max_retries,
                   progress=progress, **kw)
    else:
        raise ValueError(f"unknown executor {executor!r}; valid: local, ray")
    for p, e in agg:
        try:
            result.records[(p, e)] = get_or_run(p, e, profile, force=force, **kw)
        except Exception as err:  # noqa: BLE001
            result.failures[(p, e)] = f"{type(err).__name__}: {err}"
    result.wall_time_s = time.perf_counter() - t0
    return result


def run_paper(paper: str, profile: str = "smoke", *, data_root=None, device: str = "auto", seed: int = 0,
              results_dir=None, force: bool = False, progress: bool = True, overrides: dict | None = None,
              train_missing: bool = True) -> list[dict]:
    """Every experiment of one paper, reusing complete records (what a notebook calls).

    ``train_missing=False`` only collects existing records: an experiment without one is left
    out (and shows as *not run* in the claims table) instead of being trained.
    """
    out = []
    for e in list_experiments(paper, profile):
        if not train_missing and not force:
            rec = find_record(paper, e.id, profile, results_dir=results_dir, seed=seed, data_root=data_root,
                              overrides=overrides)
            if rec is not None:
                out.append(rec)
            continue
        out.append(get_or_run(paper, e.id, profile, force=force, data_root=data_root, device=device, seed=seed,
                              results_dir=results_dir, progress=progress, overrides=overrides))
    return out
