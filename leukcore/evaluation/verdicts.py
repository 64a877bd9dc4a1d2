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
#: the verdicts a reason can force, strongest first: a row takes the strongest of its reasons
PRECEDENCE: tuple[str, ...] = (NOT_RUN, NOT_COMPARABLE, FAILED, INDICATIVE)

#: Verdicts and their meaning, in display order (the methods page prints this).
VERDICTS: dict[str, str] = {
    NOT_RUN: "no measurement of this claim (its reasons say why)",
    NOT_COMPARABLE: "our number is a different quantity from the paper's: another dataset stands in, ImageNet "
                    "weights the protocol needs are absent, a detector is measured as its backbone, or the count "
                    "is of another split, head or convention; both numbers are shown, no difference is computed",
    FAILED: "a run that otherwise follows the paper's protocol on the paper's data (paper profile, no stronger "
            "reason) did not learn: one predicted class for nearly every test image, or a balanced accuracy "
            "whose interval includes chance; its numbers are shown and it never counts as lower",
    INDICATIVE: "a measurement of the paper's quantity that cannot yet confirm or contradict the claim: a reduced "
                "profile, fewer than 3 runs, or averagings that disagree; shown for orientation",
    REPRODUCED: "the claimed value lies inside our 95 % interval (pooled over at least 3 runs of the paper's "
                "protocol on the paper's dataset), or an exact count, counted as the paper counted, equals ours",
    LOWER: "our whole 95 % interval lies below the claimed value (at least 3 runs, paper protocol and data)",
    HIGHER: "our whole 95 % interval lies above the claimed value (at least 3 runs, paper protocol and data)",
    DIFFERS: "an exact count (parameters, images), counted as the paper counted it, that is not the one we count; "
             "both numbers are shown",
}

# reasons, in a reader's words (grouped by the verdict they force; REASONS below fixes their order)
R_NO_DATA = "dataset not available here"
R_SYNTHETIC = "only a synthetic stand-in ran"
R_NOT_YET = "not run yet"
R_NO_EXPERIMENT = "no experiment produces this number"
R_NOT_MEASURED = "our runs do not measure this quantity"
R_NOT_ON_DISK = "the dataset on disk does not record it"
R_EPOCH = "our run has no record of that epoch"
R_SUBSTITUTE = "another dataset stands in"
R_IMAGENET = "ImageNet weights absent"
R_DETECTOR = "a detector measured as its backbone classifier"
R_OUR_SPLIT = "a split we chose, not the paper's"
R_OTHER_MODEL = "the paper counted another model"
R_TIMINGS = "timings on other hardware"
R_CM = "confusion-matrix counts depend on the test split"
R_COLLAPSED = "predictions collapsed to one class"
R_CHANCE = "balanced accuracy no better than chance"
R_REDUCED = "reduced profile"
R_FEW_RUNS = "fewer than 3 runs"
R_AVERAGING = "averaging not stated: macro and weighted disagree"
R_NO_INTERVAL = "no interval"
R_LOSS = "a loss value: shown, not compared"

#: Every reason a row may carry, in the fixed order rows list them, with the verdict it forces and
#: when it applies (the methods page prints this).
REASONS: dict[str, tuple[str, str]] = {
    R_NO_DATA: (NOT_RUN, "the paper's dataset is not on this machine"),
    R_SYNTHETIC: (NOT_RUN, "the pipeline ran only on generated images standing in for the absent dataset; a "
                           "synthetic number is never shown as a measurement"),
    R_NOT_YET: (NOT_RUN, "the dataset is here but the experiment has no recorded run"),
    R_NO_EXPERIMENT: (NOT_RUN, "no experiment of the protocol produces the number (e.g. a figure of another method)"),
    R_NOT_MEASURED: (NOT_RUN, "our runs do not record the quantity (losses, subject counts ...)"),
    R_NOT_ON_DISK: (NOT_RUN, "the dataset on disk does not record what the claim counts (e.g. subjects)"),
    R_EPOCH: (NOT_RUN, "the claim is about a training epoch our run's history or predictions do not hold"),
    R_SUBSTITUTE: (NOT_COMPARABLE, "the runs used another dataset standing in for the paper's (column `dataset` "
                                   "beside `paper_dataset`)"),
    R_IMAGENET: (NOT_COMPARABLE, "the protocol starts this model from ImageNet weights (stated by the paper or "
                                 "chosen by us: see the protocol's sources); none are available offline, so it ran "
                                 "without them (its deviations say how: from scratch, or frozen random backbones)"),
    R_DETECTOR: (NOT_COMPARABLE, "the paper's model is an object detector; we measure its backbone as a classifier"),
    R_OUR_SPLIT: (NOT_COMPARABLE, "an image count of a split we chose where the paper's own is unclear; it "
                                  "measures our protocol, not the paper (its contradictions are consistency "
                                  "findings)"),
    R_OTHER_MODEL: (NOT_COMPARABLE, "counted as the paper counted (its head, its framework's convention), our "
                                    "model still differs from the one it counted (the `note` gives both numbers)"),
    R_TIMINGS: (NOT_COMPARABLE, "times depend on the hardware; ours ran on other machines"),
    R_CM: (NOT_COMPARABLE, "a confusion matrix counts images of one test split; ours has another size"),
    R_COLLAPSED: (FAILED, "at least one pooled paper-profile run predicts one class for 95 % or more of its test "
                          "images (at a reduced profile this is only counted in `collapsed`)"),
    R_CHANCE: (FAILED, "the interval of the balanced accuracy includes chance (1 / number of classes), at the "
                       "paper profile"),
    R_REDUCED: (INDICATIVE, "measured at a reduced profile (smoke / cpu: fewer epochs, images, folds, smaller input)"),
    R_FEW_RUNS: (INDICATIVE, "a firm verdict needs at least 3 runs (seeds, or folds of a cross-validated protocol)"),
    R_AVERAGING: (INDICATIVE, "the paper does not say how it averaged over classes, and macro and weighted "
                              "averages lead to different verdicts"),
    R_NO_INTERVAL: (INDICATIVE, "the measurement has no interval to compare with"),
    R_LOSS: (INDICATIVE, "a training or validation loss from our history, shown beside the paper's; it has no "
                         "interval and depends on how the loss is implemented"),
}
REASON_ORDER: tuple[str, ...] = tuple(REASONS)

MIN_RUNS = 3  #: runs behind a firm verdict (project standard)
COLLAPSE_SHARE = 0.95  #: one predicted class for at least this share of a run's test images: collapsed
N_BOOT = 1000
#: error rates are left out: XIncept's Table 5.3 calls its "Error" a training error, not 1 - accuracy
PREDICTION_METRICS = ("accuracy", "sensitivity", "specificity", "precision", "f1", "auc")
HISTORY_METRICS = ("train_accuracy", "val_accuracy")
LOSS_METRICS = ("train_loss", "val_loss")
EXACT_METRICS = ("params", "count")

#: The claims table's columns and what each holds (``leukcore claims --help`` and the summary page print this).
COLUMN_DICTIONARY: dict[str, str] = {
    "paper": "paper id",
    "claim": "claim id in the paper's ledger (leukcore/ledger/<paper>.yaml)",
    "model": "the model the claim is about",
    "experiment": "the protocol experiment that measures it (blank: none does)",
    "metric": "the quantity compared (what the number is)",
    "printed_metric": "what the paper calls the number; differs from `metric` only for a mislabelled number "
                      "(the `note` says so)",
    "averaging": "how a multi-class rate is averaged: overall (accuracy), macro (one-vs-rest AUC), macro / weighted "
                 "/ binary as the paper states, one-vs-rest (a per-class claim), 'unstated: macro (weighted in "
                 "measured_weighted)', or exact (a count)",
    "class": "the class of a per-class claim",
    "epoch": "the training epoch a claim is about",
    "unit": "the unit of claimed, measured, low, high and difference: fraction (0-1; percentages divided by "
            "100), count, params, seconds or unitless",
    "claimed": "the paper's number, in `unit`",
    "measured": "our number: the mean over the pooled runs, in `unit` (an exact count for counts)",
    "low": "lower end of our 95 % interval (two-level bootstrap over runs and test images); blank for exact counts",
    "high": "upper end of that interval",
    "difference": "measured - claimed, only for a firm verdict",
    "measured_weighted": "where the averaging is unstated: the weighted average (measured holds the macro one)",
    "low_weighted": "its interval",
    "high_weighted": "its interval",
    "runs": "independent runs pooled (seeds x folds)",
    "collapsed": "pooled runs whose predictions collapsed to one class, 'k of n' (a fact about those runs)",
    "same_as": "another experiment whose records predict exactly the same classes: one measurement shown again",
    "profile": "the profile of the pooled runs: paper (the paper's protocol) or a reduced one (cpu, smoke)",
    "dataset": "the dataset the runs used",
    "paper_dataset": "the dataset the paper used",
    "verdict": "the strongest of the reasons' verdicts (not run > not comparable > failed to train > indicative), "
               "else reproduced / lower / higher (differs / reproduced for exact counts)",
    "reasons": "every reason that limits the row, '; '-separated, in a fixed order; the first decides the verdict",
    "printed": "the paper's number exactly as printed, with its unit",
    "source": "where the paper prints it",
    "note": "what a reader needs to read the row (a mislabelled number, both counts of a model counted "
            "another way, the ledger's note)",
    "records": "the run records pooled, ';'-separated",
}
COLUMNS: tuple[str, ...] = tuple(COLUMN_DICTIONARY)


# ------------------------------------------------------------------------ the verdict
@dataclass
class Evidence:
    """What is known about one claim; :func:`decide` turns it into a verdict and its reasons."""

    claimed: float | None = None  #: as a fraction (percent / fraction units) or the exact count
    measured: float | None = None
    low: float | None = None
    high: float | None = None
    runs: int = 0
    exact: bool = False  #: an exact count: compared exactly
    profile: str | None = None
    second: tuple[float, float] | None = None  #: the weighted interval where averaging is unstated
    reasons: set = field(default_factory=set)  #: limits found while gathering (any of :data:`REASONS`)


def _firm(claimed: float, low: float, high: float) -> str:
    if claimed < low:
        return HIGHER
    if claimed > high:
        return LOWER
    return REPRODUCED


def decide(ev: Evidence) -> tuple[str, list[str]]:
    """(verdict, reasons) of one claim.

    Reasons: those gathered (``ev.reasons``), plus what the measurement itself says (no measurement,
    no interval, a reduced profile, fewer than :data:`MIN_RUNS` runs, averagings that disagree);
    a collapse or chance counts only at the paper profile. They are listed in the order of
    :data:`REASONS`; the verdict is the one the first forces (:data:`PRECEDENCE`), else firm:
    reproduced / lower / higher by whether the claimed value lies in ``[low, high]``, or, for an
    exact count, reproduced / differs.
    """
    reasons = set(ev.reasons)
    unknown = reasons - set(REASONS)
    if unknown:
        raise ValueError(f"unknown reason(s) {sorted(unknown)}; valid: {', '.join(REASONS)}")
    if ev.profile != "paper":
        reasons -= {R_COLLAPSED, R_CHANCE}
    explained = any(REASONS[r][0] in (NOT_RUN, NOT_COMPARABLE) for r in reasons)
    if ev.measured is None or (ev.exact and ev.claimed is None):
        if not explained:  # no number and nothing says why
            reasons.add(R_NOT_MEASURED)
    elif not ev.exact:
        if (ev.claimed is None or not _finite(ev.low) or not _finite(ev.high)) and R_LOSS not in reasons:
            reasons.add(R_NO_INTERVAL)
        if ev.profile != "paper":
            reasons.add(R_REDUCED)
        if ev.runs < MIN_RUNS:
            reasons.add(R_FEW_RUNS)
        if ev.second is not None and ev.claimed is not None and _finite(ev.low) and _finite(ev.high) \
                and _firm(float(ev.claimed), float(ev.low), float(ev.high)) != _firm(float(ev.claimed), *ev.second):
            reasons.add(R_AVERAGING)
    ordered = [r for r in REASON_ORDER if r in reasons]
    if ordered:
        return REASONS[ordered[0]][0], ordered
    if ev.exact:
        return (REPRODUCED if float(ev.measured) == float(ev.claimed) else DIFFERS), []
    return _firm(float(ev.claimed), float(ev.low), float(ev.high)), []


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

    def collapsed(self) -> int:
        """How many pooled runs predict one class for :data:`COLLAPSE_SHARE` of their test images."""
        return sum(1 for _, _, p in self.runs if _collapsed(p))

    def failed(self) -> set[str]:
        """The reasons the runs did not learn (a collapse, a balanced accuracy no better than chance)."""
        out = {R_COLLAPSED} if self.collapsed() else set()
        ba = self.ci("sensitivity.macro")  # balanced accuracy = macro recall
        chance = 1.0 / len(self.names)
        if _finite(ba["low"]) and ba["low"] <= chance <= ba["high"]:
            out.add(R_CHANCE)
        return out

    def signature(self) -> tuple:
        """The predicted class of every test image in every run (to tell repeated measurements apart)."""
        return tuple((tuple(i), tuple(p.argmax(axis=1))) for i, _, p in self.runs)


def _not_comparable(rec: dict, proto: dict, metric: str) -> set[str]:
    """Every reason the record's number is another quantity than the paper's (empty: none)."""
    from ..runs.protocols import get_experiment

    out = set()
    if metric == "time_s":
        out.add(R_TIMINGS)
    try:
        exp = get_experiment(rec["paper"], rec["experiment"])
        models = {m for m in (exp.model, exp.backbone, exp.classifier) if m}
    except Exception:  # noqa: BLE001 - an experiment the protocol no longer has: use the record's spec
        spec = rec.get("spec", {})
        models = {spec.get(k) for k in ("model", "backbone", "classifier") if spec.get(k)}
    comp = proto.get("comparability") or {}
    if any(m in comp for m in models):
        out.add(R_DETECTOR)
    ds = rec.get("dataset", {})
    if not ds.get("is_papers") and ds.get("stands_in_for"):
        out.add(R_SUBSTITUTE)
    wanted = proto.get("pretrained") or {}
    if rec.get("settings", {}).get("pretrained") and any(wanted.get(m) for m in models):
        devs = " ".join(rec.get("deviations", []))
        if "ImageNet weights unavailable" in devs or "ImageNet weights are unavailable" in devs \
                or "no ImageNet weights" in devs:
            out.add(R_IMAGENET)
    return out


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
#: how a paper counted parameters (ledger ``setting.convention``)
CONVENTIONS: dict[str, str] = {
    "trainable": "trainable parameters (PyTorch's count; Keras' 'trainable params')",
    "keras": "Keras applications' total: every weight, batch-norm moving statistics included, with convolutions "
             "built with biases as keras.applications builds them",
}


def count_params(net, convention: str = "trainable") -> int:
    """Parameters of ``net`` counted by one of :data:`CONVENTIONS`."""
    import torch.nn as nn

    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
    n = sum(p.numel() for p in net.parameters())
    if convention == "keras":
        for mod in net.modules():
            n += sum(b.numel() for name, b in mod.named_buffers(recurse=False) if name.startswith("running_"))
            if isinstance(mod, nn.Conv2d) and mod.bias is None:
                n += mod.out_channels
    return int(n)


def _exact(c: pd.Series, records: list[dict]) -> tuple[float | None, set, dict]:
    """(our exact count, the reasons that limit it, extras) for a parameter or image-count claim.

    Parameters: the registry's model at the protocol's image size, with the head and the counting
    convention the claim's ``setting`` names (``num_classes``, ``convention``; default: the paper's
    class count, trainable parameters, per layer Keras-style). A count that still differs when
    counted the paper's way is of another model: not comparable, both numbers in ``note``.
    Images: the dataset on disk (per class, total, or per class when all classes are equal). Split
    sizes: our paper-profile split (training = train + validation images), a split we chose."""
    from ..runs.protocols import load_protocol

    s = c.get("setting") or {}
    s = s if isinstance(s, dict) else {}
    if c["metric"] == "params":
        from ..data import dataset_info
        from ..models import create_model, list_models

        model = c.get("model")
        if not isinstance(model, str) or model not in list_models():
            return None, {R_NO_EXPERIMENT}, {}
        proto = load_protocol(c["paper"])
        ds = (proto.get("dataset") or {}).get("id")
        n_classes = len(dataset_info(ds).classes) if ds else 2
        size = int(proto.get("image_size") or 224)
        kw = {"input_size": size} if model == "alnet" else {}
        layer = s.get("layer")
        if layer:
            return _layer_params(create_model(model, n_classes, **kw), str(layer)), set(), {}
        head = int(s.get("num_classes") or n_classes)
        conv = str(s.get("convention") or "trainable")
        ours = float(count_params(create_model(model, head, **kw), conv))
        if head == n_classes and conv == "trainable":
            return ours, set(), {}
        trained = count_params(create_model(model, n_classes, **kw), "trainable")
        note = (f"counted as the paper did ({head} classes, {CONVENTIONS[conv].split(':')[0]}): {ours:,.0f}; "
                f"our {n_classes}-class model as trained: {trained:,} trainable")
        reasons = set() if ours == float(c["value"]) else {R_OTHER_MODEL}
        return ours, reasons, {"note": note}
    ds = c.get("dataset")
    q = s.get("quantity")
    if not isinstance(ds, str) or not ds:
        return None, {R_NO_EXPERIMENT}, {}
    if not _dataset_here(ds):
        return None, {R_NO_DATA}, {}
    if q not in ("images", "images_per_class") or s.get("augmented"):
        return None, {R_NOT_ON_DISK if q == "subjects" else R_NOT_MEASURED}, {}
    split = s.get("split", "all")
    if split in ("train", "test") and s.get("fold") is None:
        recs = [r for r in records if r["paper"] == c["paper"] and _real(r) and r["profile"] == "paper"
                and r["dataset"].get("id") == ds and (r.get("seed") or 0) == 0 and r.get("split", {}).get("folds")]
        if not recs:
            return None, {R_NOT_YET}, {}
        f = recs[0]["split"]["folds"][0]
        n = int(f.get("test") or 0) if split == "test" else int(f.get("train") or 0) + int(f.get("val") or 0)
        return float(n), {R_OUR_SPLIT}, {"record": recs[0], "note": f"our {split} part of the paper-profile split "
                                                                     f"(see the protocol's split source)"}
    if split != "all":
        return None, {R_NOT_MEASURED}, {}
    variants = ["original", "segmented"] if s.get("variant") == "original+segmented" else ["original"]
    tables = [_dataset_table(ds, v) for v in variants]
    cls = c.get("class")
    counts = pd.concat([t["class_name"] for t in tables]).str.lower().value_counts()
    if q == "images_per_class":
        if counts.nunique() == 1:
            return float(counts.iloc[0]), set(), {}
        return None, set(), {"per_class": {k: int(v) for k, v in counts.items()}}
    if isinstance(cls, str) and cls:
        return float(counts.get(cls.lower(), 0)), set(), {}
    return float(counts.sum()), set(), {}


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


def averaging_text(metric: str, paths: list[str] | None, stated: Any = None) -> str:
    """How the row's number is averaged, in words (never blank)."""
    if metric in EXACT_METRICS:
        return "exact"
    if metric in HISTORY_METRICS:
        return "overall"
    if metric in LOSS_METRICS or metric in ("time_s", "confusion_matrix"):
        return "none"
    if paths:
        if len(paths) == 2:
            return "unstated: macro (weighted in measured_weighted)"
        p = paths[0]
        if ".per_class." in p:
            return "one-vs-rest"
        if p in ("accuracy",):
            return "overall"
        if p == "auc":
            return "macro (one-vs-rest)"
        return p.rsplit(".", 1)[-1]
    if isinstance(stated, str) and stated:
        return stated
    return "overall" if metric in ("accuracy", "error_rate") else "macro (one-vs-rest)" if metric == "auc" \
        else "unstated"


def _printed_text(printed: Any, unit: str) -> str:
    return f"{printed} %" if unit == "percent" else str(printed)


def _claim_row(c: pd.Series, records: list[dict], pools: dict, protos: dict) -> dict:
    from ..runs.protocols import load_protocol

    unit = c["unit"]
    actual = c.get("actual_metric")
    # a number the paper names wrongly is compared with the quantity it is (ledger `actual_metric`)
    metric = actual if isinstance(actual, str) and actual else c["metric"]
    printed_metric = c["metric"]
    notes = []
    if metric != printed_metric:
        c = c.copy()
        c["metric"] = metric
        notes.append(f"the paper calls this number {printed_metric}; it is its {metric}, and is compared as such")
    if isinstance(c.get("note"), str) and c["note"]:
        notes.append(c["note"])
    frac = unit in ("percent", "fraction")
    claimed = round(float(c["value01"]), 12) if frac and _finite(c["value01"]) else c["value"]
    epoch = _claim_epoch(c)
    row = {k: None for k in COLUMNS}
    row.update({"paper": c["paper"], "claim": c["id"], "model": c["model"], "experiment": c["experiment"],
                "metric": metric, "printed_metric": printed_metric, "class": c.get("class"), "epoch": epoch,
                "unit": "fraction" if frac else unit, "claimed": claimed, "runs": 0, "collapsed": "", "same_as": "",
                "paper_dataset": c["dataset"], "dataset": "", "printed": _printed_text(c["printed"], unit),
                "source": c["source"], "records": ""})
    ev = Evidence(claimed=float(claimed) if _finite(claimed) else None)
    paths = None
    exp = c["experiment"] if isinstance(c["experiment"], str) and c["experiment"] else None
    if metric in EXACT_METRICS:
        ev.exact = True
        v, reasons, extra = _exact(c, records)
        ev.measured, ev.reasons = (v if _finite(v) else None), set(reasons)
        if "per_class" in extra:  # "N per class" where the classes on disk hold different counts
            notes.append("per class on disk: " + ", ".join(f"{k} {n:,}" for k, n in extra["per_class"].items()))
            same = all(n == float(c["value"]) for n in extra["per_class"].values())
            row.update(verdict=REPRODUCED if same else DIFFERS, reasons="", averaging=averaging_text(metric, None),
                       dataset=c["dataset"], note=" | ".join(notes))
            return row
        if "note" in extra:
            notes.append(extra["note"])
        if "record" in extra:
            row["records"] = _rel(extra["record"]["_path"])
            row["profile"] = extra["record"]["profile"]
            ev.profile = extra["record"]["profile"]
        if ev.measured is not None and metric == "count":
            row["dataset"] = extra["record"]["dataset"]["id"] if "record" in extra else c["dataset"]
        verdict, reasons = decide(ev)
        row.update(measured=ev.measured, verdict=verdict, reasons="; ".join(reasons),
                   difference=(ev.measured - float(claimed)) if verdict in FIRM else None,
                   averaging=averaging_text(metric, None), note=" | ".join(notes) or None)
        return row
    if exp is None:
        ev.reasons.add(R_NO_EXPERIMENT)
    else:
        recs_all = [r for r in records if r["paper"] == c["paper"] and r["experiment"] == exp
                    and r.get("status") == "complete"]
        recs = pooled_records(records, c["paper"], exp)
        ds = c["dataset"] if isinstance(c["dataset"], str) and c["dataset"] else None
        if not recs:
            if ds and not _dataset_here(ds):
                ev.reasons.add(R_NO_DATA)
                if recs_all:
                    ev.reasons.add(R_SYNTHETIC)
                    row["dataset"] = "synthetic"
            else:
                ev.reasons.add(R_NOT_YET)
        else:
            rec0 = recs[0]
            parts = _components(records, rec0)
            if parts:  # an aggregate (ALNet's 3-fold mean): its runs are the fold experiments' records
                recs = parts
            row["profile"] = rec0["profile"]
            row["dataset"] = rec0["dataset"]["id"]
            row["records"] = ";".join(_rel(r["_path"]) for r in recs)
            ev.profile = rec0["profile"]
            proto = protos.setdefault(c["paper"], load_protocol(c["paper"]))
            key = (c["paper"], exp)
            if metric in PREDICTION_METRICS:
                if key not in pools:
                    pools[key] = _Pool(recs)
                pool = pools[key]
                paths, why = _paths(c, pool.names)
                last = {h[-1].get("epoch") for r in recs for h in (r.get("history") or []) if h}
                if epoch is not None and last != {epoch}:
                    why = R_EPOCH  # the predictions are of another epoch
                if why:
                    ev.reasons.add(why)
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
                    ev.reasons |= _not_comparable(rec0, proto, metric) | pool.failed()
                    row["collapsed"] = f"{pool.collapsed()} of {len(pool.runs)}"
            elif metric in HISTORY_METRICS:
                vals, ivs, why = _history_value(recs, metric, epoch)
                if why:
                    ev.reasons.add(why)
                else:
                    ev.measured = float(np.mean(vals))
                    ev.low, ev.high = min(i[0] for i in ivs), max(i[1] for i in ivs)
                    ev.runs = len(vals)
                    ev.reasons |= _not_comparable(rec0, proto, metric)
                    if rec0.get("predictions"):
                        if key not in pools:
                            pools[key] = _Pool(recs)
                        ev.reasons |= pools[key].failed()
                        row["collapsed"] = f"{pools[key].collapsed()} of {len(pools[key].runs)}"
            elif metric in LOSS_METRICS:
                vals = [float(h[-1][metric]) if epoch is None else next(
                    (float(e[metric]) for e in h if e.get("epoch") == epoch and e.get(metric) is not None), math.nan)
                        for r in recs for h in (r.get("history") or []) if h and h[-1].get(metric) is not None]
                vals = [v for v in vals if math.isfinite(v)]
                if not vals:
                    ev.reasons.add(R_EPOCH if epoch is not None else R_NOT_MEASURED)
                else:
                    ev.measured, ev.runs = float(np.mean(vals)), len(vals)
                    ev.reasons |= _not_comparable(rec0, proto, metric) | {R_LOSS}
            elif metric == "confusion_matrix":
                ev.reasons |= {R_CM} | _not_comparable(rec0, proto, metric)
                ev.measured = None
            elif metric == "time_s":
                ev.reasons |= _not_comparable(rec0, proto, metric)
            else:
                ev.reasons.add(R_NOT_MEASURED)
    if ev.runs:
        row["runs"] = ev.runs
    verdict, reasons = decide(ev)
    row.update(measured=ev.measured, low=ev.low, high=ev.high, verdict=verdict, reasons="; ".join(reasons),
               averaging=averaging_text(metric, paths, c.get("averaging")), note=" | ".join(notes) or None)
    if verdict in FIRM and frac and ev.measured is not None:
        row["difference"] = ev.measured - float(claimed)
    return row


def _mark_repeated_measurements(df: pd.DataFrame, pools: dict) -> None:
    """``same_as``: a row whose experiment's runs predict exactly the classes another experiment's
    runs predict (Kaur's three losses) names the first such experiment: one measurement, shown again."""
    first: dict[tuple, str] = {}
    same: dict[tuple, str] = {}
    for (paper, exp), pool in pools.items():
        sig = (paper, pool.signature())
        if sig in first and first[sig] != exp:
            same[(paper, exp)] = first[sig]
        else:
            first.setdefault(sig, exp)
    for i, r in df.iterrows():
        key = (r["paper"], r["experiment"])
        if key in same and r["runs"]:
            df.at[i, "same_as"] = same[key]


def claims_table(paper: str | None = "all", *, records: list[dict] | None = None,
                 root: str | os.PathLike | None = None, claim_ids: list[str] | None = None) -> pd.DataFrame:
    """One row per ledger claim (of ``paper``, or all): the claim, our measurement pooled over its
    runs, the interval, the number of runs, the verdict and every reason that limits it
    (columns :data:`COLUMNS`, explained in :data:`COLUMN_DICTIONARY`). ``records`` defaults to
    every record under ``root`` (the project's ``results/``); ``claim_ids`` keeps only those claims."""
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
    _mark_repeated_measurements(df, pools)
    return df


def pooled_measure(records: list[dict], paper: str, experiment: str, path: str = "accuracy") -> dict:
    """One quantity of an experiment pooled as the claims table pools it: the mean over its runs at
    the best profile (:func:`pooled_records`), the two-level bootstrap interval, the runs, the
    profile and the records. Empty when the experiment has no real-data record."""
    recs = pooled_records(records, paper, experiment)
    if not recs:
        return {}
    parts = _components(records, recs[0])
    pool = _Pool(parts or recs)
    ci = pool.ci(path)
    return {"point": ci["point"], "low": ci["low"], "high": ci["high"], "runs": len(pool.runs),
            "profile": recs[0]["profile"], "records": [_rel(r["_path"]) for r in pool.recs]}


def prediction_signature(records: list[dict], paper: str, experiment: str) -> tuple:
    """The class each pooled run of an experiment predicts for each test image, run by run (empty when it
    has no real-data record): two experiments with one signature are one measurement."""
    recs = pooled_records(records, paper, experiment)
    return _Pool(recs).signature() if recs else ()


def reasons_of(row: Any) -> list[str]:
    """A row's reasons as a list (the ``reasons`` column is '; '-separated)."""
    text = row["reasons"] if not isinstance(row, str) else row
    return [r for r in str(text or "").split("; ") if r]


def vocabulary_markdown() -> str:
    """The verdicts, the precedence and the reasons as the methods page states them (a generated include)."""
    lines = ["Each row of the claims table lists every reason that limits it, in a fixed order, and its verdict is "
             "the strongest of them: " + " > ".join(PRECEDENCE) + " > a firm verdict (reproduced, lower or higher; "
             "reproduced or differs for an exact count). One function, `leukcore.evaluation.verdicts.decide`, "
             "applies this rule to every row. A collapse of a run at a reduced profile is a fact about that run "
             "(the `collapsed` column), never the row's verdict; `failed to train` is kept for runs that otherwise "
             "follow the paper's protocol on the paper's data.\n"]
    lines += [f"- **{k}**: {v}" for k, v in VERDICTS.items()]
    lines += ["", f"A firm verdict needs at least {MIN_RUNS} runs at the paper's profile on its dataset. The "
                  "reasons, in the order rows list them, with the verdict each forces:", ""]
    lines += [f"- *{k}* ({v[0]}): {v[1]}" for k, v in REASONS.items()]
    return "\n".join(lines) + "\n"


def columns_markdown() -> str:
    """The claims table's column dictionary (the summary page and ``leukcore claims --help``)."""
    return "\n".join(f"- `{k}`: {v}" for k, v in COLUMN_DICTIONARY.items()) + "\n"
