"""The claims table: every ledger claim beside what we measured, its interval, runs, verdict and reason.

One function, :func:`decide`, gives every verdict; :func:`claims_table` gathers the evidence for
each claim (the runs of its experiment, the quantity the claim names, exact counts from the model
registry and the dataset on disk) and hands it to :func:`decide`. The book, the CLI
(``leukcore claims``) and :mod:`leukcore.book.findings` all read this one table.

Matching by what the claim says: its class (case-insensitive, one-vs-rest), the epoch of a
training history, and its averaging. An unstated averaging on a multi-class task is measured
both ways (macro and weighted); the verdict is firm only when both agree. A two-class task with
no averaging stated is measured on the positive (leukemia) class.

Runs: the records of the claim's experiment at the best profile on real data with one settings
hash are pooled: one run per seed, and one per fold of a cross-validated record. ``measured`` is
the mean over runs of each run's value; its interval is the two-level bootstrap
:func:`leukcore.metrics.bootstrap_runs_ci` (runs, then test images). History metrics (train /
validation accuracy at an epoch) have no predictions: a Wilson interval per run, pooled as the
widest span.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from ..files import PROJECT_ROOT

# ------------------------------------------------------------------------ vocabulary
REPRODUCED, LOWER, HIGHER = "reproduced", "lower", "higher"
DIFFERS = "differs"
INDICATIVE = "indicative"
FAILED = "failed to train"
NOT_COMPARABLE = "not comparable"
NOT_RUN = "not run"
FIRM: tuple[str, ...] = (REPRODUCED, LOWER, HIGHER)

#: Verdicts and their meaning, in display order (the methods page prints this).
VERDICTS: dict[str, str] = {
    REPRODUCED: "the claimed value lies inside our 95 % interval (pooled over at least 3 runs of the paper's "
                "protocol on the paper's dataset), or an exact count equals ours",
    LOWER: "our whole 95 % interval lies below the claimed value (at least 3 runs, paper protocol and data)",
    HIGHER: "our whole 95 % interval lies above the claimed value (at least 3 runs, paper protocol and data)",
    DIFFERS: "an exact count (parameters, images) that is not the one we count; both numbers are shown",
    INDICATIVE: "a measurement that cannot confirm or contradict the claim (the reason says why); "
                "shown for orientation",
    FAILED: "the model did not learn: one predicted class for nearly every test image, or a balanced accuracy "
            "whose interval includes chance; its numbers are shown, no difference is computed and it never "
            "counts as lower",
    NOT_COMPARABLE: "a material deviation makes our number a different quantity from the paper's",
    NOT_RUN: "no measurement of this claim (the reason says why)",
}

# reasons, in a reader's words
R_NO_DATA = "dataset not available here"
R_SYNTHETIC = "only a synthetic stand-in ran"
R_NOT_YET = "not run yet"
R_NO_EXPERIMENT = "no experiment produces this number"
R_NOT_MEASURED = "our runs do not measure this quantity"
R_NOT_ON_DISK = "the dataset on disk does not record it"
R_EPOCH = "our run has no record of that epoch"
R_REDUCED = "reduced profile: no paper-profile run yet"
R_FEW_RUNS = "fewer than 3 runs"
R_AVERAGING = "averaging not stated: macro and weighted disagree"
R_IMAGENET = "needs ImageNet weights"
R_SUBSTITUTE = "substitute dataset"
R_DETECTOR = "a detector measured as its backbone classifier"
R_TIMINGS = "timings on other hardware"
R_COLLAPSED = "predictions collapsed to one class"
R_CHANCE = "balanced accuracy no better than chance"
R_DIFFERS = "checked exactly: the numbers differ"
R_LOSS = "a loss value: shown, not compared"
R_CM = "confusion-matrix counts depend on the test split"

#: Every reason a row may carry, with when it applies (the methods page prints this).
REASONS: dict[str, str] = {
    R_NO_DATA: "the paper's dataset is not on this machine",
    R_SYNTHETIC: "the pipeline ran only on generated images standing in for the absent dataset",
    R_NOT_YET: "the dataset is here but the experiment has no recorded run",
    R_NO_EXPERIMENT: "no experiment of the protocol produces the number (e.g. a figure of another method)",
    R_NOT_MEASURED: "our runs do not record the quantity (confusion-matrix counts, losses, subject counts ...)",
    R_NOT_ON_DISK: "the dataset on disk does not record what the claim counts (e.g. subjects)",
    R_EPOCH: "the claim is about a training epoch our run's history or predictions do not hold",
    R_REDUCED: "measured at a reduced profile (smoke / cpu: fewer epochs, images or folds)",
    R_FEW_RUNS: "a firm verdict needs at least 3 runs (seeds, or folds of a cross-validated protocol)",
    R_AVERAGING: "the paper does not say how it averaged over classes, and macro and weighted averages lead to "
                 "different verdicts",
    R_IMAGENET: "the paper fine-tuned ImageNet weights; none are available here, so the model trained from scratch",
    R_SUBSTITUTE: "the run used another dataset standing in for the paper's",
    R_DETECTOR: "the paper's model is an object detector; we measure its backbone as a classifier",
    R_TIMINGS: "times depend on the hardware; ours ran on other machines",
    R_COLLAPSED: "at least one pooled run predicts one class for 95 % or more of its test images",
    R_CHANCE: "the interval of the balanced accuracy includes chance (1 / number of classes)",
    R_DIFFERS: "an exact count compared exactly; both numbers are shown",
    R_LOSS: "a training or validation loss from our history, shown beside the paper's; it has no interval and "
            "depends on how the loss is implemented",
    R_CM: "a confusion matrix counts images of one test split; ours has another size",
}

MIN_RUNS = 3  #: runs behind a firm verdict (project standard)
COLLAPSE_SHARE = 0.95  #: one predicted class for at least this share of a run's test images: failed to train
N_BOOT = 1000
#: error rates are left out: XIncept's Table 5.3 calls its "Error" a training error, not 1 - accuracy
PREDICTION_METRICS = ("accuracy", "sensitivity", "specificity", "precision", "f1", "auc")
HISTORY_METRICS = ("train_accuracy", "val_accuracy")
LOSS_METRICS = ("train_loss", "val_loss")
COLUMNS = ("paper", "claim", "model", "experiment", "metric", "averaging", "class", "epoch", "claimed", "measured",
           "low", "high", "runs", "profile", "dataset", "verdict", "reason", "unit", "printed", "source",
           "difference", "measured_weighted", "low_weighted", "high_weighted", "records", "printed_metric")


# ------------------------------------------------------------------------ the verdict
@dataclass
class Evidence:
    """What is known about one claim; :func:`decide` turns it into a verdict and a reason."""

    claimed: float | None = None  #: as a fraction (percent / fraction units) or the exact count
    measured: float | None = None
    low: float | None = None
    high: float | None = None
    runs: int = 0
    not_run: str | None = None  #: the reason there is no measurement
    exact: bool = False  #: an exact count: compared exactly
    not_comparable: str | None = None  #: the reason our number is another quantity
    failed: str | None = None  #: the reason the run counts as not trained
    profile: str | None = None
    second: tuple[float, float] | None = None  #: the weighted interval where averaging is unstated
    extra: dict = field(default_factory=dict)


def _firm(claimed: float, low: float, high: float) -> str:
    if claimed < low:
        return HIGHER
    if claimed > high:
        return LOWER
    return REPRODUCED


def decide(ev: Evidence) -> tuple[str, str]:
    """(verdict, reason) of one claim. Precedence: not run -> exact -> failed to train -> not
    comparable -> indicative (reduced profile, fewer than 3 runs, averagings disagree) -> firm by whether
    the claimed value lies in ``[low, high]``. Firm verdicts carry an empty reason."""
    if ev.not_run is not None or ev.measured is None and not ev.exact:
        return NOT_RUN, ev.not_run or R_NOT_MEASURED
    if ev.exact:
        if ev.measured is None or ev.claimed is None:
            return NOT_RUN, ev.not_run or R_NOT_MEASURED
        return (REPRODUCED, "") if float(ev.measured) == float(ev.claimed) else (DIFFERS, R_DIFFERS)
    if ev.failed:
        return FAILED, ev.failed
    if ev.not_comparable:
        return NOT_COMPARABLE, ev.not_comparable
    if ev.claimed is None or not _finite(ev.low) or not _finite(ev.high):
        return INDICATIVE, R_NOT_MEASURED
    if ev.profile != "paper":
        return INDICATIVE, R_REDUCED
    if ev.runs < MIN_RUNS:
        return INDICATIVE, R_FEW_RUNS
    v = _firm(float(ev.claimed), float(ev.low), float(ev.high))
    if ev.second is not None and _firm(float(ev.claimed), *ev.second) != v:
        return INDICATIVE, R_AVERAGING
    return v, ""


def _finite(v: Any) -> bool:
    return v is not None and isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(float(v))


# ------------------------------------------------------------------------ helpers
@lru_cache(maxsize=None)
def _dataset_here(dataset_id: str) -> bool:
    from ..data import resolve_root

    try:
        resolve_root(dataset_id, verbose=False)
    except Exception:  # noqa: BLE001 - absent data is an answer, not an error
        return False
    return True


@lru_cache(maxsize=None)
def _dataset_table(dataset_id: str, variant: str = "original") -> pd.DataFrame:
    from ..data import load_dataset

    kw = {"variant": variant} if dataset_id == "taleqani-all" else {}
    return load_dataset(dataset_id, verbose=False, **kw)


def _claim_epoch(c: pd.Series) -> int | None:
    s = c.get("setting") or {}
    if isinstance(s, dict) and s.get("epoch") is not None:
        return int(s["epoch"])
    m = re.search(r"-epoch(\d+)$", str(c["id"]))
    return int(m.group(1)) if m else None


def _real(r: dict) -> bool:
    return r.get("status") == "complete" and r.get("dataset", {}).get("id") != "synthetic"


def pooled_records(records: list[dict], paper: str, experiment: str) -> list[dict]:
    """The records one claim pools: real data, best profile (paper's dataset first), the settings
    hash of the lowest seed there, one record per seed."""
    from ..runs.profiles import PROFILE_RANK

    recs = [r for r in records if r["paper"] == paper and r["experiment"] == experiment and _real(r)]
    if not recs:
        return []
    rank = lambda r: (PROFILE_RANK.get(r["profile"], -1), bool(r["dataset"].get("is_papers")))  # noqa: E731
    top = max(rank(r) for r in recs)
    recs = sorted((r for r in recs if rank(r) == top), key=lambda r: r.get("seed") or 0)
    h = recs[0].get("settings_hash")
    out, seen = [], set()
    for r in recs:
        if r.get("settings_hash") == h and (r.get("seed") or 0) not in seen:
            seen.add(r.get("seed") or 0)
            out.append(r)
    return out


def _components(records: list[dict], rec: dict) -> list[dict]:
    """The records an aggregate record pools (``spec.of``), at its profile; [] for other records."""
    from ..runs.routes import get_route

    spec = rec.get("spec") or {}
    if get_route(spec.get("route")).trains:
        return []
    out = []
    for e in spec.get("of") or []:
        out += [r for r in pooled_records(records, rec["paper"], e) if r["profile"] == rec["profile"]]
    return out


def record_runs(rec: dict) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The runs inside one record as ``(ids, y_true, y_prob)``: one per fold (a ``fold`` column,
    or out-of-fold predictions concatenated in fold order with sizes in ``split.folds``), else one."""
    from ..runs.records import read_predictions

    df = read_predictions(rec)
    pcols = sorted((c for c in df.columns if re.fullmatch(r"p_\d+", c)), key=lambda c: int(c[2:]))
    folds = rec.get("split", {}).get("folds", []) or []
    if "fold" in df.columns:
        parts = [g for _, g in df.groupby("fold", sort=True)]
    elif len(folds) > 1 and sum(int(f.get("test") or 0) for f in folds) == len(df):
        parts, start = [], 0
        for f in folds:
            parts.append(df.iloc[start:start + int(f["test"])])
            start += int(f["test"])
    else:
        parts = [df]
    return [(g["id"].astype(str).to_numpy(), g["y_true"].to_numpy(np.int64), g[pcols].to_numpy(np.float64))
            for g in parts if len(g)]


def _class_index(names: list[str], cls: str) -> int | None:
    low = [n.lower() for n in names]
    return low.index(cls.lower()) if cls.lower() in low else None


def _paths(c: pd.Series, names: list[str]) -> tuple[list[str], str | None]:
    """The metric path(s) the claim names (two when averaging is unstated on a multi-class task),
    and the reason when it names none."""
    metric, cls, av = c["metric"], c.get("class"), c.get("averaging")
    cls = cls if isinstance(cls, str) and cls else None
    av = av if isinstance(av, str) and av else None
    base = "accuracy" if metric == "error_rate" else metric
    if cls is not None:
        k = _class_index(names, cls)
        if k is None:
            return [], R_NOT_MEASURED
        return [f"{base}.per_class.{names[k]}"], None
    if base in ("accuracy", "auc"):
        return [base], None
    if av in ("macro", "weighted", "binary"):
        if av == "binary" and len(names) != 2:
            return [], R_NOT_MEASURED
        return [f"{base}.{av}"], None
    if av == "micro":
        return (["accuracy"], None) if base in ("sensitivity", "precision", "f1") else ([], R_NOT_MEASURED)
    if len(names) == 2:
        return [f"{base}.binary"], None
    return [f"{base}.macro", f"{base}.weighted"], None


def _positive_of(rec: dict) -> int | None:
    names = rec["class_names"]
    if len(names) != 2:
        return None
    pos = rec.get("metrics", {}).get("positive")
    return names.index(pos) if isinstance(pos, str) and pos in names else None


def _collapsed(y_prob: np.ndarray) -> bool:
    pred = y_prob.argmax(axis=1)
    return np.bincount(pred, minlength=y_prob.shape[1]).max() >= COLLAPSE_SHARE * len(pred)


class _Pool:
    """The runs of one experiment, their bootstrap intervals cached per metric path."""

    def __init__(self, recs: list[dict]):
        self.recs = recs
        self.names = list(recs[0]["class_names"])
        self.positive = _positive_of(recs[0])
        self.runs = [run for r in recs for run in record_runs(r)]
        ids = [tuple(i) for i, _, _ in self.runs]
        self.shared = len(set(ids)) == 1
        if not self.shared and all(set(i) == set(ids[0]) for i in ids):  # same items, other order: align
            order = {k: j for j, k in enumerate(ids[0])}
            aligned = []
            for i, t, p in self.runs:
                o = np.argsort([order[k] for k in i])
                aligned.append((i[o], t[o], p[o]))
            self.runs, self.shared = aligned, True
        self._cache: dict[str, dict] = {}

    def ci(self, path: str) -> dict:
        from ..metrics import bootstrap_runs_ci

        if path not in self._cache:
            self._cache[path] = bootstrap_runs_ci([(t, p) for _, t, p in self.runs], path, n=N_BOOT, seed=0,
                                                  class_names=self.names, positive=self.positive,
                                                  shared_items=self.shared)
        return self._cache[path]

    def failed(self) -> str | None:
        if any(_collapsed(p) for _, _, p in self.runs):
            return R_COLLAPSED
        ba = self.ci("sensitivity.macro")  # balanced accuracy = macro recall
        chance = 1.0 / len(self.names)
        if _finite(ba["low"]) and ba["low"] <= chance <= ba["high"]:
            return R_CHANCE
        return None


def _not_comparable(rec: dict, proto: dict, metric: str) -> str | None:
    from ..runs.protocols import get_experiment

    if metric == "time_s":
        return R_TIMINGS
    try:
        exp = get_experiment(rec["paper"], rec["experiment"])
        models = {m for m in (exp.model, exp.backbone, exp.classifier) if m}
    except Exception:  # noqa: BLE001 - an experiment the protocol no longer has: use the record's spec
        spec = rec.get("spec", {})
        models = {spec.get(k) for k in ("model", "backbone", "classifier") if spec.get(k)}
    comp = proto.get("comparability") or {}
    if any(m in comp for m in models):
        return R_DETECTOR
    ds = rec.get("dataset", {})
    if not ds.get("is_papers") and ds.get("stands_in_for"):
        return R_SUBSTITUTE
    wanted = proto.get("pretrained") or {}
    if rec.get("settings", {}).get("pretrained") and any(wanted.get(m) for m in models):
        devs = " ".join(rec.get("deviations", []))
        if "ImageNet weights unavailable" in devs or "ImageNet weights are unavailable" in devs \
                or "no ImageNet weights" in devs:
            return R_IMAGENET
    return None


def _history_value(recs: list[dict], metric: str, epoch: int | None) -> tuple[list[float], list[tuple], str | None]:
    """Per run (fold of a record), the history's value at ``epoch`` (last when None) and its Wilson interval."""
    from ..metrics import wilson_interval

    part = "val" if metric == "val_accuracy" else "train"
    vals, ivs = [], []
    for r in recs:
        folds = r.get("split", {}).get("folds", []) or []
        for k, hist in enumerate(r.get("history", []) or []):
            if not hist:
                continue
            h = next((e for e in hist if e.get("epoch") == epoch), None) if epoch is not None else hist[-1]
            if h is None or h.get(metric) is None:
                continue
            v = float(h[metric])
            n = int((folds[k] if k < len(folds) else {}).get(part) or 0)
            vals.append(v)
            ivs.append(wilson_interval(min(max(v, 0.0), 1.0), n) if n else (v, v))
    if not vals:
        return [], [], R_EPOCH if epoch is not None else R_NOT_MEASURED
    return vals, ivs, None


# ------------------------------------------------------------------------ exact claims
def _exact(c: pd.Series, records: list[dict]) -> tuple[float | None, str | None, dict]:
    """(our exact count, reason when there is none, extras) for a parameter or image-count claim.

    Parameters: the registry's model with the paper's class count at the protocol's image size
    (per layer, Keras-style). Images: the dataset on disk (per class, total, or per class when all
    classes are equal). Split sizes: our paper-profile split (training = train + validation
    images, which the paper's training part also holds)."""
    from ..runs.protocols import load_protocol

    s = c.get("setting") or {}
    s = s if isinstance(s, dict) else {}
    if c["metric"] == "params":
        from ..data import dataset_info
        from ..models import create_model, list_models

        model = c.get("model")
        if not isinstance(model, str) or model not in list_models():
            return None, R_NO_EXPERIMENT, {}
        proto = load_protocol(c["paper"])
        ds = (proto.get("dataset") or {}).get("id")
        n_classes = len(dataset_info(ds).classes) if ds else 2
        size = int(proto.get("image_size") or 224)
        kw = {"input_size": size} if model == "alnet" else {}
        net = create_model(model, n_classes, **kw)
        layer = s.get("layer")
        if not layer:
            return float(sum(p.numel() for p in net.parameters())), None, {"size": size}
        return _layer_params(net, str(layer)), None, {"size": size}
    ds = c.get("dataset")
    q = s.get("quantity")
    if not isinstance(ds, str) or not ds:
        return None, R_NO_EXPERIMENT, {}
    if not _dataset_here(ds):
        return None, R_NO_DATA, {}
    if q not in ("images", "images_per_class") or s.get("augmented"):
        return None, (R_NOT_ON_DISK if q == "subjects" else R_NOT_MEASURED), {}
    split = s.get("split", "all")
    if split in ("train", "test") and s.get("fold") is None:
        recs = [r for r in records if r["paper"] == c["paper"] and _real(r) and r["profile"] == "paper"
                and r["dataset"].get("id") == ds and (r.get("seed") or 0) == 0 and r.get("split", {}).get("folds")]
        if not recs:
            return None, R_NOT_YET, {}
        f = recs[0]["split"]["folds"][0]
        n = int(f.get("test") or 0) if split == "test" else int(f.get("train") or 0) + int(f.get("val") or 0)
        return float(n), None, {"record": recs[0]}
    if split != "all":
        return None, R_NOT_MEASURED, {}
    variants = ["original", "segmented"] if s.get("variant") == "original+segmented" else ["original"]
    tables = [_dataset_table(ds, v) for v in variants]
    cls = c.get("class")
    counts = pd.concat([t["class_name"] for t in tables]).str.lower().value_counts()
    if q == "images_per_class":
        if counts.nunique() == 1:
            return float(counts.iloc[0]), None, {}
        return float("nan"), None, {"low": float(counts.min()), "high": float(counts.max())}
    if isinstance(cls, str) and cls:
        return float(counts.get(cls.lower(), 0)), None, {}
    return float(counts.sum()), None, {}


def _layer_params(net, layer: str) -> float | None:
    """Keras-style count of one layer (``conv2d_1``: the second convolution; BatchNorm with its
    moving statistics, as Keras counts them)."""
    import torch.nn as nn

    m = re.fullmatch(r"(conv2d|batchnorm|dense)(?:_(\d+))?", layer)
    if not m:
        return None
    kind = {"conv2d": nn.Conv2d, "batchnorm": nn.BatchNorm2d, "dense": nn.Linear}[m.group(1)]
    mods = [x for x in net.modules() if isinstance(x, kind)]
    k = int(m.group(2) or 0)
    if k >= len(mods):
        return None
    mod = mods[k]
    n = sum(p.numel() for p in mod.parameters())
    n += sum(b.numel() for name, b in mod.named_buffers() if name.startswith("running_"))
    return float(n)


# ------------------------------------------------------------------------ the table
def _rel(path: str) -> str:
    try:
        return os.path.relpath(path, PROJECT_ROOT)
    except ValueError:
        return path


def _claim_row(c: pd.Series, records: list[dict], pools: dict, protos: dict) -> dict:
    from ..runs.protocols import load_protocol

    unit = c["unit"]
    actual = c.get("actual_metric")
    # a number the paper names wrongly is compared with the quantity it is (ledger `actual_metric`)
    metric = actual if isinstance(actual, str) and actual else c["metric"]
    printed_metric = c["metric"]
    if metric != printed_metric:
        c = c.copy()
        c["metric"] = metric
    frac = unit in ("percent", "fraction")
    claimed = round(float(c["value01"]), 12) if frac and _finite(c["value01"]) else c["value"]
    epoch = _claim_epoch(c)
    row = {"paper": c["paper"], "claim": c["id"], "model": c["model"], "experiment": c["experiment"],
           "metric": metric, "averaging": c.get("averaging"), "class": c.get("class"), "epoch": epoch,
           "claimed": claimed, "measured": None, "low": None, "high": None, "runs": 0, "profile": None,
           "dataset": c["dataset"], "verdict": NOT_RUN, "reason": "", "unit": unit, "printed": c["printed"],
           "source": c["source"], "difference": None, "measured_weighted": None, "low_weighted": None,
           "high_weighted": None, "records": "", "printed_metric": printed_metric}
    ev = Evidence(claimed=float(claimed) if _finite(claimed) else None)
    exp = c["experiment"] if isinstance(c["experiment"], str) and c["experiment"] else None
    if metric in ("params", "count"):
        ev.exact = True
        v, why, extra = _exact(c, records)
        ev.measured, ev.not_run = (v if _finite(v) else None), why
        if why is None and not _finite(v):  # per-class counts that are not all equal: show the range
            ev.measured = None
            row["low"], row["high"] = extra.get("low"), extra.get("high")
            ev.not_run = None
            verdict, reason = DIFFERS, R_DIFFERS
        else:
            verdict, reason = decide(ev)
        if "record" in extra:
            row["records"] = _rel(extra["record"]["_path"])
            row["profile"] = extra["record"]["profile"]
        row.update(measured=ev.measured, verdict=verdict, reason=reason,
                   difference=(ev.measured - float(claimed)) if verdict in FIRM else None)
        if ev.measured is not None and verdict != NOT_RUN:
            row["low"] = row["high"] = ev.measured
        return row
    if exp is None:
        ev.not_run = R_NO_EXPERIMENT
    else:
        recs_all = [r for r in records if r["paper"] == c["paper"] and r["experiment"] == exp
                    and r.get("status") == "complete"]
        recs = pooled_records(records, c["paper"], exp)
        ds = c["dataset"] if isinstance(c["dataset"], str) and c["dataset"] else None
        if not recs:
            if ds and not _dataset_here(ds):
                ev.not_run = R_SYNTHETIC if recs_all else R_NO_DATA
            else:
                ev.not_run = R_NOT_YET
        else:
            rec0 = recs[0]
            parts = _components(records, rec0)
            if parts:  # an aggregate (ALNet's 3-fold mean): its runs are the fold experiments' records
                recs = parts
            row["profile"] = rec0["profile"]
            row["records"] = ";".join(_rel(r["_path"]) for r in recs)
            ev.profile = rec0["profile"]
            proto = protos.setdefault(c["paper"], load_protocol(c["paper"]))
            if metric in PREDICTION_METRICS:
                key = (c["paper"], exp)
                if key not in pools:
                    pools[key] = _Pool(recs)
                pool = pools[key]
                paths, why = _paths(c, pool.names)
                last = {h[-1].get("epoch") for r in recs for h in (r.get("history") or []) if h}
                if epoch is not None and last != {epoch}:
                    why = R_EPOCH  # the predictions are of another epoch
                if why:
                    ev.not_run = why
                else:
                    cis = [pool.ci(p) for p in paths]
                    if metric == "error_rate":  # 1 - accuracy (overall or one-vs-rest)
                        cis = [{**d, "point": 1 - d["point"], "low": 1 - d["high"], "high": 1 - d["low"]} for d in cis]
                    ev.measured, ev.low, ev.high = cis[0]["point"], cis[0]["low"], cis[0]["high"]
                    ev.runs = len(pool.runs)
                    if len(cis) == 2:
                        ev.second = (cis[1]["low"], cis[1]["high"])
                        row.update(measured_weighted=cis[1]["point"], low_weighted=cis[1]["low"],
                                   high_weighted=cis[1]["high"])
                    ev.not_comparable = _not_comparable(rec0, proto, metric)
                    ev.failed = pool.failed()
            elif metric in HISTORY_METRICS:
                vals, ivs, why = _history_value(recs, metric, epoch)
                if why:
                    ev.not_run = why
                else:
                    ev.measured = float(np.mean(vals))
                    ev.low, ev.high = min(i[0] for i in ivs), max(i[1] for i in ivs)
                    ev.runs = len(vals)
                    ev.not_comparable = _not_comparable(rec0, proto, metric)
                    key = (c["paper"], exp)
                    if rec0.get("predictions"):
                        if key not in pools:
                            pools[key] = _Pool(recs)
                        ev.failed = pools[key].failed()
            elif metric in LOSS_METRICS:
                vals = [float(h[-1][metric]) if epoch is None else next(
                    (float(e[metric]) for e in h if e.get("epoch") == epoch and e.get(metric) is not None), math.nan)
                        for r in recs for h in (r.get("history") or []) if h and h[-1].get(metric) is not None]
                vals = [v for v in vals if math.isfinite(v)]
                if not vals:
                    ev.not_run = R_EPOCH if epoch is not None else R_NOT_MEASURED
                else:
                    row.update(measured=float(np.mean(vals)), runs=len(vals), verdict=INDICATIVE, reason=R_LOSS)
                    return row
            elif metric == "confusion_matrix":
                row.update(verdict=NOT_COMPARABLE, reason=R_CM)
                return row
            elif metric == "time_s":
                ev.not_comparable = R_TIMINGS
                ev.measured = float("nan")
                ev.not_run = None
                row.update(verdict=NOT_COMPARABLE, reason=R_TIMINGS)
                return row
            else:
                ev.not_run = R_NOT_MEASURED
    if ev.runs:
        row["runs"] = ev.runs
    verdict, reason = decide(ev)
    row.update(measured=ev.measured, low=ev.low, high=ev.high, verdict=verdict, reason=reason)
    if verdict in FIRM and frac and ev.measured is not None:
        row["difference"] = ev.measured - float(claimed)
    return row


def claims_table(paper: str | None = "all", *, records: list[dict] | None = None,
                 root: str | os.PathLike | None = None, claim_ids: list[str] | None = None) -> pd.DataFrame:
    """One row per ledger claim (of ``paper``, or all): the claim, our measurement pooled over its
    runs, the interval, the number of runs, the verdict and, for every row that is not firm, the
    reason (columns :data:`COLUMNS`). ``records`` defaults to every record under ``root``
    (the project's ``results/``); ``claim_ids`` keeps only those claims."""
    from .claims import load_claims
    from ..runs.records import load_records

    which = None if paper in (None, "all") else paper
    claims = load_claims(which)
    if claim_ids is not None:
        claims = claims[claims["id"].isin(claim_ids)]
    if records is None:
        records = load_records(which, root=root)
    pools: dict = {}
    protos: dict = {}
    rows = [_claim_row(c, records, pools, protos) for _, c in claims.iterrows()]
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in ("measured", "low", "high", "difference", "measured_weighted", "low_weighted", "high_weighted"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    df["runs"] = df["runs"].astype(int)
    return df


def vocabulary_markdown() -> str:
    """The verdicts and reasons as the methods page states them (a generated include)."""
    lines = ["One function, `leukcore.evaluation.verdicts.decide`, gives every verdict in this book, in this order of "
             "precedence: not run, exact counts, failed to train, not comparable, indicative, then firm.\n"]
    lines += [f"- **{k}**: {v}" for k, v in VERDICTS.items()]
    lines += ["", f"A firm verdict needs at least {MIN_RUNS} runs. Every row that is not firm says why, "
                  "with one of these reasons:", ""]
    lines += [f"- *{k}*: {v}" for k, v in REASONS.items()]
    return "\n".join(lines) + "\n"
