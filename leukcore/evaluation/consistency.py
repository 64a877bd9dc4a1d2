"""Arithmetic checks of the claims ledger: can the printed numbers all be true at once?

:func:`check_claims` runs every rule in :data:`RULES` over a claims table (by default the whole
ledger, :func:`leukcore.evaluation.claims.load_claims`) and returns one row per finding with the columns
``rule``, ``paper``, ``claim_ids`` (list), ``printed`` (the printed values, short), ``implication``
(one sentence), ``severity``, ``kind`` and ``label`` (a short noun phrase naming what was found,
e.g. "an F1 above what its precision and recall allow"; the same for every finding of one sort, so
that :func:`consistency_examples` can name examples). ``kind`` says what sort of contradiction it is
(:data:`KINDS`); each rule decides it from what it found, so one rule may give several kinds:

* ``impossible``: no reading makes the printed numbers all true (an F1 above what its precision
  and recall allow, an accuracy its own weighted recall rules out, a confusion matrix that
  reproduces none of the printed rates, a total that is not the sum of its parts, a split larger
  than the data it was drawn from);
* ``disagrees``: two places print different values for one quantity (text vs table, one sentence
  printed twice with two values): at most one of them is right, but nothing says which;
* ``mislabelled``: the paper names a number wrongly (the :func:`mislabelled` rule);
* ``typo``: a slip whose intended value is evident. Recognised by :func:`_slip`: the printed
  digits are those of the value the rule expects with one digit left out or two adjacent digits
  swapped, where the expected value is recomputed from the paper's other numbers (a minimum over
  classes, a difference, a sum, a mean over folds) or, for one quantity printed twice, is the
  other printing when the one is the other with a digit left out (a digit is lost, not invented:
  91.3 printed once for the 91.13 printed four times);
* ``implausible``: the numbers can all be true, but only under a reading the paper does not state
  (an averaging convention, a test-set class composition far from the printed one, rounded
  matrix cells, an 'error' or 'total' that is not what the word says) or by an unlikely
  coincidence (F-score equal to AUC in most rows).

``severity`` follows from the kind (:data:`KINDS`): ``error`` (the printed numbers cannot all be
right, whatever the unstated conventions) for every kind but ``implausible``, which is a
``warning``.

Rounding. A number printed with last digit in place ``u`` (``98.90`` -> ``u = 0.01``; see
:func:`leukcore.evaluation.claims.resolution_of`) stands for any true value within ``+- u/2``; counts and
parameter counts are taken as exact. Every check
is made on these intervals, so a finding is never an artefact of rounding. Rates are compared
as fractions (``value01``), so ``0.91`` and ``91%`` are the same number.

Which claims take part. Claims whose ``setting`` has ``bound`` (the paper prints an inequality)
are ignored; claims with a ``statistic`` (improvements, differences, min/max over classes) only
enter the rules written for them (:func:`difference_recompute`, :func:`per_class_consistency`,
:func:`text_vs_table`). "The same row" means the same paper, model, dataset and setting (the
setting compared without the annotation keys :data:`leukcore.evaluation.claims.ANNOTATION_KEYS`).

Mislabelled numbers. A claim with ``actual_metric`` is a number the paper prints under the
wrong name (a training accuracy in a column of test accuracies, a recall called accuracy). Only
:func:`mislabelled` sees it, and reports it as what it is; the other rules see the ledger without
it, so the same number is not also reported as a bad average or a conflicting printing.

Notation used in the docstrings: for a class ``c`` with ``TP_c, FP_c, FN_c, TN_c`` counted one
versus rest, recall ``R_c = TP_c/(TP_c+FN_c)``, precision ``P_c = TP_c/(TP_c+FP_c)``,
specificity ``S_c = TN_c/(TN_c+FP_c)``, ``F1_c = 2 P_c R_c/(P_c+R_c)``; ``N`` test images,
``n_c`` of class ``c``, ``pi_c = n_c/N``, ``E`` misclassified images, accuracy ``A = 1 - E/N``.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from itertools import product
from types import SimpleNamespace
from typing import Any, Callable

from .claims import ANNOTATION_KEYS, list_papers, load_claims, resolution_of

FINDING_COLUMNS = ("rule", "paper", "claim_ids", "printed", "implication", "severity", "kind", "label")
#: kind -> (severity, what it means); see the module docstring
KINDS: dict[str, tuple[str, str]] = {
    "impossible": ("error", "no reading makes the printed numbers all true"),
    "disagrees": ("error", "two places print different values for one quantity"),
    "mislabelled": ("error", "the paper names a number wrongly"),
    "typo": ("error", "a slip whose intended value is evident (a digit left out or two digits swapped)"),
    "implausible": ("warning", "true only under a reading the paper does not state, or by an unlikely coincidence"),
}
SEVERITIES = ("error", "warning")
RATE_METRICS = ("accuracy", "sensitivity", "specificity", "precision", "f1")
POSITIVE_CLASSES = frozenset({"all", "leukemia", "malignant", "cancer", "all-cancer"})
#: allowance for a test split whose class shares differ from the printed dataset composition
COMPOSITION_SLACK = 0.02
EPS = 1e-9

RULES: dict[str, Callable[[list], list[dict]]] = {}


def rule(name: str):
    """Register a rule function ``f(records) -> list of finding dicts`` under ``name``."""
    def deco(fn):
        RULES[name] = fn
        fn.rule_name = name
        return fn
    return deco


# --------------------------------------------------------------------------- helpers

def _none(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def _freeze(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple(sorted((str(k), _freeze(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    return v


def _skey(setting: dict, drop: tuple[str, ...] = ()) -> tuple:
    return _freeze({k: v for k, v in setting.items()
                    if k not in ANNOTATION_KEYS and k not in drop})


def _records(df) -> list[SimpleNamespace]:
    """Claims DataFrame -> list of records with rounding intervals (see module docstring)."""
    recs = []
    cols = set(df.columns)
    for i, row in enumerate(df.to_dict("records")):
        setting = row.get("setting")
        setting = dict(setting) if isinstance(setting, dict) else {}
        metric, unit, value = row["metric"], row["unit"], row["value"]
        is_cm = metric == "confusion_matrix"
        printed = _none(row.get("printed")) if "printed" in cols else None
        if printed is None and not is_cm:
            printed = repr(value)
        res = _none(row.get("resolution")) if "resolution" in cols else None
        if res is None and not is_cm:
            res = resolution_of(printed)
        # counts and parameter counts are exact integers, not rounded measurements
        half = 0.0 if unit in ("count", "params") else (0.5 * res if res is not None else float("nan"))
        if is_cm:
            v01 = h01 = float("nan")
        elif unit == "percent":
            v01, h01 = value / 100.0, half / 100.0
        elif unit == "fraction":
            v01, h01 = float(value), half
        else:
            v01 = h01 = float("nan")
        recs.append(SimpleNamespace(
            idx=i, paper=row["paper"], id=row["id"], model=_none(row.get("model")),
            experiment=_none(row.get("experiment")), dataset=_none(row.get("dataset")),
            setting=setting, metric=metric, value=value, unit=unit,
            averaging=_none(row.get("averaging")), cls=_none(row.get("class")),
            source=str(row.get("source") or ""), printed=printed, half=half,
            v01=v01, h01=h01, skey=_skey(setting),
            plain=("bound" not in setting and "statistic" not in setting),
            rate=(not is_cm and unit in ("percent", "fraction")),
            actual_metric=_none(row.get("actual_metric")), actual_of=_none(row.get("actual_of")),
        ))
    return recs


def _lo(r) -> float:
    return r.v01 - r.h01


def _hi(r) -> float:
    return r.v01 + r.h01


def _group(recs, keyf) -> dict:
    out: dict = {}
    for r in recs:
        out.setdefault(keyf(r), []).append(r)
    return out


_NAMES = {"sensitivity": "recall", "f1": "F1", "auc": "AUC", "time_s": "time",
          "error_rate": "error", "train_accuracy": "train acc", "val_accuracy": "val acc"}


def _show(r, with_source: bool = True) -> str:
    name = _NAMES.get(r.metric, r.metric)
    if r.cls is not None:
        name += f"[{r.cls}]"
    if r.setting.get("statistic"):
        name += f" {r.setting['statistic']}"
    if r.setting.get("bound"):
        name += f" {r.setting['bound']}"
    if r.metric == "confusion_matrix":
        text = f"{name} {r.value}"
    else:
        suffix = {"percent": "%", "seconds": " s"}.get(r.unit, "")
        text = f"{name} {r.printed}{suffix}"
    if with_source:
        text += f" ({r.source.split(';')[0].strip()})"
    return text


def _fmt(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}f}".rstrip("0").rstrip(".") if abs(x) < 1e6 else f"{x:.0f}"


def _finding(rule_name: str, recs, implication: str, kind: str, label: str,
             printed: str | None = None) -> dict:
    """One finding; its severity is the kind's (:data:`KINDS`)."""
    recs = list(recs)
    return {
        "rule": rule_name,
        "paper": recs[0].paper,
        "claim_ids": [r.id for r in recs],
        "printed": printed if printed is not None else "; ".join(_show(r) for r in recs),
        "implication": implication,
        "severity": KINDS[kind][0],
        "kind": kind,
        "label": label,
    }


def _decimals(printed: str) -> int:
    """Digits after the decimal point of a printed number (``"7.41"`` -> 2, ``"10661"`` -> 0)."""
    text = str(printed).strip()
    return len(text.split(".", 1)[1]) if "." in text else 0


def _slip(printed: str, intended: str) -> str | None:
    """How ``printed`` is a slip of ``intended``, or None: ``"a digit left out"`` when removing one
    digit of ``intended`` gives ``printed`` (``"11.92"`` -> ``"11.2"``), ``"two digits swapped"``
    when swapping two adjacent, different digits does (``"98.25"`` -> ``"98.52"``).

    A single changed digit is not a slip: it cannot be told from a different number."""
    p, q = str(printed).strip(), str(intended).strip()
    for i, ch in enumerate(q):
        if ch.isdigit() and q[:i] + q[i + 1:] == p:
            return "a digit left out"
    for i in range(len(q) - 1):
        a, b = q[i], q[i + 1]
        if a.isdigit() and b.isdigit() and a != b and q[:i] + b + a + q[i + 2:] == p:
            return "two digits swapped"
    return None


def _recomputed_kind(printed: str, expected: float, decimals: int) -> tuple[str, str]:
    """``("typo", sentence)`` when the printed number is a slip of the value recomputed from the
    paper's other numbers (written with ``decimals`` digits after the point), else
    ``("impossible", "")``."""
    intended = f"{expected:.{decimals}f}"
    how = _slip(printed, intended)
    if how is None:
        return "impossible", ""
    return "typo", f" {printed} is evidently {intended} with {how} (a typo)."


def _sources(r) -> set[str]:
    """The table / section names of a claim's ``source`` (parenthetical details dropped)."""
    return {re.sub(r"\s*\(.*$", "", t.strip()) for t in r.source.split(";") if t.strip()}


def _share(*rs) -> bool:
    """True when the claims have a source (table or section) in common: one printed row."""
    common = _sources(rs[0])
    for r in rs[1:]:
        common &= _sources(r)
    return bool(common)


def _row_key(r) -> tuple:
    return (r.paper, r.model, r.dataset, r.skey)


def _pool_composition(recs) -> dict:
    """(paper, dataset) -> {class: count} from count claims marked ``eval_pool``."""
    out: dict = {}
    for r in recs:
        if r.metric == "count" and r.cls is not None and r.setting.get("eval_pool"):
            out.setdefault((r.paper, r.dataset), {})[r.cls] = float(r.value)
    return out


# --------------------------------------------------------------------------- rules

_LONG = {"sensitivity": "recall (sensitivity)", "f1": "F1", "auc": "AUC", "train_accuracy": "training accuracy",
         "val_accuracy": "validation accuracy", "train_loss": "training loss", "val_loss": "validation loss",
         "error_rate": "error rate", "time_s": "time"}


def _word(metric: str) -> str:
    """A metric's name in a label: ``recall`` for sensitivity, else as in :data:`_LONG`."""
    return "recall" if metric == "sensitivity" else _LONG.get(metric, metric)


@rule("mislabelled")
def mislabelled(recs) -> list[dict]:
    """A number printed under the wrong name (ledger field ``actual_metric``), checked against the
    claim that prints the same quantity under its right name (``actual_of``).

    The finding says what the number is and where the paper prints it correctly; when the two
    printings differ beyond rounding, the mislabelled one is also a misprint and the finding says
    so. Kind ``mislabelled`` (an error): a reader taking the label at its word compares the wrong quantity.
    """
    out = []
    by_id = {(r.paper, r.id): r for r in recs}
    for r in recs:
        if r.actual_metric is None:
            continue
        ref = by_id.get((r.paper, r.actual_of)) if r.actual_of else None
        said, actual = _LONG.get(r.metric, r.metric), _LONG.get(r.actual_metric, r.actual_metric)
        where = r.source.split(";")[0].strip()
        text = f"{where} calls {r.printed} {said}; it is {actual}"
        rows = [r]
        if ref is not None:
            rows.append(ref)
            text += f", printed as {_show(ref)}"
            if r.rate and ref.rate:
                apart = abs(r.v01 - ref.v01) > r.h01 + ref.h01 + EPS
            else:
                apart = abs(float(r.value) - float(ref.value)) > r.half + ref.half + EPS
            if apart:
                text += f", and misprinted ({r.printed} for {ref.printed})"
        text += (f". A mislabelled number, not a second measurement of {said}: compare it with "
                 f"the {actual} it is.")
        out.append(_finding("mislabelled", rows, text, "mislabelled",
                            f"a {_word(r.actual_metric)} printed as {_word(r.metric)}"))
    return out


@rule("f1_outside_pr")
def f1_outside_pr(recs) -> list[dict]:
    """F1 inconsistent with precision P and recall R printed in the same row.

    Provable facts. (1) For one class, ``F1 = 2PR/(P+R)`` is the harmonic mean, so
    ``min(P, R) <= F1 <= (P+R)/2 <= max(P, R)``. (2) Any average that weights P, R and F1 of
    the classes with the same weights (macro: 1/C; weighted: n_c/N; micro, where P = R = F1 =
    accuracy) keeps the upper bound: ``sum w_c F1_c <= sum w_c (P_c+R_c)/2 = (P+R)/2``; so does
    the "F1 of the averaged P and R" convention. (3) The lower bound does NOT survive averaging:
    two classes with (P, R) = (1, 0.5) and (0.5, 1) have macro P = R = 0.75 but macro F1 = 0.667.

    Rule. ``F1 > (P+R)/2`` beyond rounding is ``impossible`` under any averaging, stated or not.
    ``F1 < min(P, R)`` is ``impossible`` for a single class (averaging ``binary`` or
    ``per-class``, or a claim with a class) and ``implausible`` otherwise (possible only for an
    average over classes whose P and R are unbalanced in opposite directions; for a binary task
    with unstated averaging, impossible if the numbers are the positive class's).
    """
    out = []
    sel = [r for r in recs if r.plain and r.rate and r.metric in ("precision", "sensitivity", "f1")]
    groups = _group(sel, lambda r: _row_key(r) + (r.cls, r.averaging))
    for key, rows in groups.items():
        ps = [r for r in rows if r.metric == "precision"]
        rs = [r for r in rows if r.metric == "sensitivity"]
        fs = [r for r in rows if r.metric == "f1"]
        for p, rc, f in product(ps, rs, fs):
            if not _share(p, rc, f):
                continue
            mean_hi = (_hi(p) + _hi(rc)) / 2
            show = f"P {p.printed}, R {rc.printed}, F1 {f.printed} ({f.source.split(';')[0].strip()})"
            if _lo(f) > mean_hi + EPS:
                out.append(_finding("f1_outside_pr", [p, rc, f],
                    f"F1 {f.printed} exceeds (P+R)/2 = {_fmt((p.value + rc.value) / 2, 3)}: impossible "
                    f"for a harmonic mean under any consistent averaging (per class, binary, macro, "
                    f"weighted or micro).", "impossible", "an F1 above what its precision and recall allow",
                    show))
            elif _hi(f) < min(_lo(p), _lo(rc)) - EPS:
                single = f.averaging in ("binary", "per-class") or f.cls is not None
                task = f.setting.get("task")
                if single:
                    out.append(_finding("f1_outside_pr", [p, rc, f],
                        f"F1 {f.printed} is below both P and R: impossible for a single class's "
                        f"harmonic mean.", "impossible", "an F1 below both its precision and recall",
                        show))
                else:
                    extra = (" (for a binary task: impossible if these are the positive class's "
                             "values, possible for a macro average over both classes)"
                             if task == "binary" else "")
                    out.append(_finding("f1_outside_pr", [p, rc, f],
                        f"F1 {f.printed} is below both P and R: impossible for one class, possible "
                        f"only as an average over classes with opposite precision/recall imbalance"
                        f"{extra}.", "implausible",
                        "an F1 below both its precision and recall, possible only for an average over classes",
                        show))
    return out


@rule("accuracy_vs_weighted_recall")
def accuracy_vs_weighted_recall(recs) -> list[dict]:
    """Accuracy must equal the support-weighted (and the micro) recall.

    ``sum_c (n_c/N) R_c = sum_c TP_c / N = A`` exactly, for any number of classes. A recall
    printed as weighted (or micro) that differs from an accuracy of the same model beyond
    rounding is ``impossible``. When the paper states a class-balanced evaluation set
    (``setting.balanced_eval``: equal ``n_c``), macro recall equals accuracy as well, so every
    averaged recall must match; a mismatch is then ``implausible`` (it rests on the stated balance).
    Accuracy claims pair with recall claims of the same model and dataset whose settings agree
    apart from ``split``, and whose splits agree or are unstated on one side
    (``val_accuracy`` counts as split ``validation``). One finding per recall claim.
    """
    out = []
    accs = [r for r in recs if r.plain and r.rate and r.cls is None
            and r.metric in ("accuracy", "val_accuracy")]
    for rc in recs:
        if not (rc.plain and rc.rate and rc.metric == "sensitivity" and rc.cls is None):
            continue
        exact = rc.averaging in ("weighted", "micro")
        balanced = bool(rc.setting.get("balanced_eval")) and rc.averaging in (None, "macro", "weighted", "micro")
        if not (exact or balanced):
            continue
        split_r = rc.setting.get("split")
        base_r = _skey(rc.setting, ("split",))
        bad = []
        for a in accs:
            if (a.paper, a.model, a.dataset) != (rc.paper, rc.model, rc.dataset):
                continue
            split_a = "validation" if a.metric == "val_accuracy" else a.setting.get("split")
            if _skey(a.setting, ("split",)) != base_r:
                continue
            if split_r is not None and split_a is not None and split_r != split_a:
                continue
            if abs(a.v01 - rc.v01) > a.h01 + rc.h01 + EPS:
                bad.append(a)
        if bad:
            why = ("support-weighted recall equals accuracy" if exact else
                   "on the class-balanced evaluation set the paper describes, every averaged recall "
                   "equals accuracy")
            out.append(_finding("accuracy_vs_weighted_recall", [rc] + bad,
                f"{why}, so recall {rc.printed}% cannot coexist with accuracy "
                f"{', '.join(b.printed for b in bad)}.",
                *(("impossible", "an accuracy that its own weighted recall rules out") if exact else
                  ("implausible", "an averaged recall other than the accuracy on a test set said to be balanced"))))
    return out


def _cm_conventions(m: list[list[float]], labels: list | None) -> dict[str, dict[str, float]]:
    """All standard readings of a confusion matrix (rows actual, columns predicted).

    Returns metric -> {convention: value}: per-class ``pos=<label>`` values, ``macro``,
    ``weighted`` (by actual support), ``micro`` (= accuracy for recall, precision and F1), and
    for F1 also ``harmonic of macro P,R``.
    """
    k = len(m)
    labels = list(labels) if labels and len(labels) == k else [str(i) for i in range(k)]
    n = float(sum(sum(r) for r in m))
    rows = [float(sum(r)) for r in m]
    cols = [float(sum(m[i][j] for i in range(k))) for j in range(k)]
    acc = sum(m[i][i] for i in range(k)) / n if n else float("nan")
    per: dict[str, dict[str, float]] = {"sensitivity": {}, "precision": {}, "specificity": {}, "f1": {}}
    for c in range(k):
        tp = float(m[c][c])
        fn, fp = rows[c] - tp, cols[c] - tp
        tn = n - tp - fn - fp
        vals = {
            "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "specificity": tn / (tn + fp) if tn + fp else float("nan"),
            "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan"),
        }
        for key, v in vals.items():
            per[key][f"pos={labels[c]}"] = v
    out: dict[str, dict[str, float]] = {"accuracy": {"accuracy": acc}}
    for key, d in per.items():
        vals = list(d.values())
        conv = dict(d)
        if all(not math.isnan(v) for v in vals):
            conv["macro"] = sum(vals) / k
            conv["weighted"] = sum(v * rows[i] / n for i, v in enumerate(vals))
        if key != "specificity":
            conv["micro"] = acc
        out[key] = conv
    if "macro" in out["precision"] and "macro" in out["sensitivity"]:
        p, r = out["precision"]["macro"], out["sensitivity"]["macro"]
        out["f1"]["harmonic of macro P,R"] = 2 * p * r / (p + r) if p + r else float("nan")
    return out


def _select_conventions(conv: dict[str, float], r) -> dict[str, float]:
    if r.metric == "accuracy":
        return conv
    if r.cls is not None:
        return {k: v for k, v in conv.items() if k == f"pos={r.cls}"}
    if r.averaging == "binary":
        pos = [k for k in conv if k.startswith("pos=") and k[4:] in POSITIVE_CLASSES]
        return {k: conv[k] for k in pos} or {k: v for k, v in conv.items() if k.startswith("pos=")}
    if r.averaging in ("macro", "weighted", "micro"):
        return {k: v for k, v in conv.items() if k == r.averaging or
                (r.averaging == "macro" and k == "harmonic of macro P,R")}
    return conv


@rule("confusion_matrix_recompute")
def confusion_matrix_recompute(recs) -> list[dict]:
    """Metrics recomputed from a printed confusion matrix vs the printed metrics.

    A confusion matrix (rows actual, columns predicted, ``setting.labels``) links to the rate
    claims (accuracy, recall, precision, specificity, F1) of the same model, dataset and setting
    with the same ``fold``. A claim with ``fold: mean`` links to all folds' matrices and is
    compared with both the pooled matrix and the mean over folds. Every standard reading is
    tried (each class as positive, macro, weighted, micro, and F1 as the harmonic mean of macro
    P and R); an ``impossible`` finding is reported for a row where a printed value matches no reading
    within rounding. One finding per printed row; the implication gives the closest reading and
    any single fold that reproduces the value. For ``fold: mean`` claims of a metric that is
    also printed per fold, only the per-fold claims are checked here (their mean is
    :func:`fold_mean`'s job, and averaging rounded per-fold values is legitimate).
    """
    out = []
    cms = [r for r in recs if r.metric == "confusion_matrix"]
    if not cms:
        return out
    cm_groups = _group(cms, lambda r: (r.paper, r.model, r.dataset, _skey(r.setting, ("fold",))))
    for gkey, group in cm_groups.items():
        by_fold = {c.setting.get("fold"): c for c in group}
        conv_by_fold = {f: _cm_conventions(c.value, c.setting.get("labels")) for f, c in by_fold.items()}
        claims = [r for r in recs if r.plain and r.rate and r.metric in RATE_METRICS
                  and (r.paper, r.model, r.dataset, _skey(r.setting, ("fold",))) == gkey]
        rows = _group(claims, lambda r: (r.setting.get("fold"), r.skey))
        for (fold, _), rclaims in rows.items():
            if fold in ("mean", "pooled"):
                folds = [f for f in by_fold if f not in (None, "mean", "pooled")]
                if len(folds) < 2:
                    continue
                k = len(by_fold[folds[0]].value)
                pooled = [[sum(by_fold[f].value[i][j] for f in folds) for j in range(k)] for i in range(k)]
                cands = {}
                pconv = _cm_conventions(pooled, by_fold[folds[0]].setting.get("labels"))
                for metric, conv in pconv.items():
                    for name, v in conv.items():
                        cands.setdefault(metric, {})[f"pooled, {name}"] = v
                        vals = [conv_by_fold[f].get(metric, {}).get(name, float("nan")) for f in folds]
                        if all(not math.isnan(x) for x in vals):
                            cands[metric][f"fold mean, {name}"] = sum(vals) / len(vals)
                used = [by_fold[f] for f in folds]
                hint_folds = folds
            elif fold in by_fold:
                cands = {m: dict(c) for m, c in conv_by_fold[fold].items()}
                used = [by_fold[fold]]
                hint_folds = []
            else:
                continue
            per_fold_metrics = {r.metric for r in claims
                                if r.setting.get("fold") not in (None, "mean", "pooled")}
            bad, notes = [], []
            for r in rclaims:
                if fold in ("mean", "pooled") and r.metric in per_fold_metrics:
                    continue  # the per-fold claims are checked; their mean is fold_mean's job
                conv = cands.get(r.metric, {})
                names = set(_select_conventions(
                    {n.split(", ", 1)[-1]: v for n, v in conv.items()}, r))
                sel = {n: v for n, v in conv.items() if n.split(", ", 1)[-1] in names}
                sel = {n: v for n, v in sel.items() if not math.isnan(v)}
                if not sel:
                    continue
                if any(abs(v - r.v01) <= r.h01 + EPS for v in sel.values()):
                    continue
                best = min(sel.items(), key=lambda kv: abs(kv[1] - r.v01))
                bad.append(r)
                msg = f"{_NAMES.get(r.metric, r.metric)} {r.printed} vs {_fmt(best[1], 3)} ({best[0]})"
                hits = []
                best_name = best[0].split(", ", 1)[-1]
                for f in hint_folds:
                    v = conv_by_fold[f].get(r.metric, {}).get(best_name, float("nan"))
                    if abs(v - r.v01) <= r.h01 + EPS:
                        hits.append(f"fold {f} alone ({_fmt(v, 3)}, {best_name})")
                if hits:
                    msg += f", but matches {hits[0]}"
                notes.append(msg)
            if bad:
                out.append(_finding("confusion_matrix_recompute", used + bad,
                    "No standard reading of the printed confusion matrix reproduces "
                    + "; ".join(notes) + ".", "impossible",
                    "a confusion matrix that reproduces none of the printed rates",
                    "; ".join(_show(r) for r in bad) + "; matrix " +
                    ", ".join(f"{c.value}" for c in used)))
    return out


@rule("confusion_matrix_total")
def confusion_matrix_total(recs) -> list[dict]:
    """A confusion matrix must sum to the size of the test set it is said to describe.

    Matrices with ``setting.total_ref`` (the id of a count claim) are summed and compared with
    that count. A mismatch is ``impossible``, or ``implausible`` when the matrix was printed with
    limited significant digits (``setting.rounded_display``) or may have been computed on a
    different (e.g. augmented) copy of the set.
    """
    out = []
    by_id = {(r.paper, r.id): r for r in recs}
    for c in recs:
        if c.metric != "confusion_matrix" or not c.setting.get("total_ref"):
            continue
        ref = by_id.get((c.paper, c.setting["total_ref"]))
        if ref is None:
            continue
        total = sum(sum(row) for row in c.value)
        if total != ref.value:
            rounded = bool(c.setting.get("rounded_display"))
            out.append(_finding("confusion_matrix_total", [c, ref],
                f"The matrix sums to {_fmt(total)} images, the stated test set has {ref.printed}"
                + (" (the matrix was printed with two significant digits, so the cells may be off)"
                   if rounded else "") + ".",
                *(("implausible", "a confusion matrix rounded for print, a few images off its test set")
                  if rounded else ("impossible", "a confusion matrix that does not sum to its test set")),
                f"matrix {c.value} (sum {_fmt(total)}); test images {ref.printed} ({ref.source})"))
    return out


@rule("text_vs_table")
def text_vs_table(recs) -> list[dict]:
    """The same quantity printed twice (text vs table, two sections) with incompatible values.

    Claims are the same quantity when paper, model, dataset, setting, metric, class and
    averaging all agree. Two printings are incompatible when their rounding intervals do not
    overlap (rates compared as fractions, so 0.91 and 91% agree). At most one of them can be
    right: kind ``disagrees``, or ``typo`` when every conflict is one printing against others
    that it repeats with a digit left out (:func:`_slip`; the digit is lost, not invented, so the
    longer printing is the intended one). One finding per quantity, listing all its printings.
    """
    out = []
    sel = [r for r in recs if r.metric != "confusion_matrix" and "bound" not in r.setting]
    groups = _group(sel, lambda r: _row_key(r) + (r.metric, r.cls, r.averaging))
    for rows in groups.values():
        if len(rows) < 2:
            continue
        conflicts = []
        for a, b in ((a, b) for i, a in enumerate(rows) for b in rows[i + 1:]):
            if a.rate and b.rate:
                apart = abs(a.v01 - b.v01) > a.h01 + b.h01 + EPS
            elif a.unit == b.unit:
                apart = abs(float(a.value) - float(b.value)) > a.half + b.half + EPS
            else:
                apart = False
            if apart:
                conflicts.append((a, b))
        if conflicts:
            pairs = ", ".join(f"{a.printed} vs {b.printed}" for a, b in conflicts[:4])
            r0 = rows[0]
            text = (f"The same {_NAMES.get(r0.metric, r0.metric)} of {r0.model or r0.dataset} is printed "
                    f"with incompatible values ({pairs}); at most one can be right.")
            slip = _dropped_digit(conflicts)
            if slip is not None:
                short, long = slip
                out.append(_finding("text_vs_table", rows,
                    text[:-1] + f": {short.printed} ({_table_of(short.source)}) is evidently {long.printed} "
                    f"with a digit left out (a typo).", "typo", "a number printed again with a digit left out"))
                continue
            tables = {"Table" in _table_of(r.source) for pair in conflicts for r in pair}
            label = ("a table and the text printing different values for one number" if tables == {True, False}
                     else "one number printed twice with two values")
            out.append(_finding("text_vs_table", rows, text, "disagrees", label))
    return out


def _dropped_digit(conflicts: list[tuple]) -> tuple | None:
    """``(short, long)`` when one printing takes part in every conflicting pair and is each
    partner's printing with a digit left out (:func:`_slip`), else None."""
    for short in conflicts[0]:
        partners = [b if a is short else a for a, b in conflicts if short is a or short is b]
        if len(partners) == len(conflicts) and all(
                _slip(short.printed, p.printed) == "a digit left out" for p in partners):
            return short, partners[0]
    return None


def _table_of(source: str) -> str:
    first = source.split(";")[0].strip()
    return re.sub(r"\s*\(.*$", "", first)


@rule("fscore_equals_auc")
def fscore_equals_auc(recs) -> list[dict]:
    """F-score equal to AUC in most rows of one table.

    F1 (from thresholded predictions) and ROC AUC (from scores over all thresholds) are
    different quantities; equality to 0.01 percentage point in at least 75% of at least four
    rows of one table (claims grouped by their first source) suggests that one was copied or
    derived from the other. ``implausible`` (not impossible, but not independent measurements).
    """
    out = []
    sel = [r for r in recs if r.plain and r.rate and r.metric in ("f1", "auc")]
    for (paper, table), rows in _group(sel, lambda r: (r.paper, _table_of(r.source))).items():
        by_row = _group(rows, lambda r: (r.model, r.dataset, r.skey, r.cls, r.averaging))
        n_rows, equal, ids = 0, 0, []
        for rr in by_row.values():
            fs = [r for r in rr if r.metric == "f1"]
            auc = [r for r in rr if r.metric == "auc"]
            if not fs or not auc:
                continue
            n_rows += 1
            if any(abs(f.v01 - a.v01) <= 1e-4 + EPS for f in fs for a in auc):
                equal += 1
                ids += fs + auc
        if n_rows >= 4 and equal / n_rows >= 0.75:
            out.append(_finding("fscore_equals_auc", ids,
                f"F-score equals AUC within 0.01 pp in {equal} of {n_rows} rows of {table}: two "
                f"different quantities that cannot be expected to coincide, so they were probably "
                f"not computed independently.", "implausible", "F-scores equal to the AUCs in most rows of a table",
                f"{equal}/{n_rows} rows of {table} with F = AUC, e.g. " +
                "; ".join(_show(r, False) for r in ids[:2])))
    return out


def _prevalence_interval(a, se, sp) -> tuple[float, float] | None:
    """Range of the positive-class share pi solving A = pi*Se + (1-pi)*Sp over rounding boxes."""
    if min(_hi(se), _hi(sp)) >= max(_lo(se), _lo(sp)):
        return None  # Se and Sp indistinguishable: pi undetermined
    vals = []
    for av, sev, spv in product((_lo(a), _hi(a)), (_lo(se), _hi(se)), (_lo(sp), _hi(sp))):
        vals.append((av - spv) / (sev - spv))
    return max(0.0, min(vals)), min(1.0, max(vals))


@rule("binary_accuracy_bounds")
def binary_accuracy_bounds(recs) -> list[dict]:
    """Binary task: accuracy is the prevalence-weighted mean of sensitivity and specificity.

    ``A = pi*Se + (1-pi)*Sp`` with ``pi`` the positive share of the test set, hence
    ``min(Se, Sp) <= A <= max(Se, Sp)``: outside is ``impossible``. Sensitivity and specificity
    come from class-free claims, or from per-class recalls (recall of the negative class is the
    specificity). Inside, ``pi = (A - Sp)/(Se - Sp)`` is determined; when the paper prints the
    class counts of the pool the evaluation was drawn from (count claims with ``eval_pool``),
    an implied ``pi`` incompatible with that composition (allowing
    :data:`COMPOSITION_SLACK`) is ``implausible`` (the test set's exact composition is not
    printed). With the positive class unstated both orientations are tried.
    """
    out = []
    pools = _pool_composition(recs)
    sel = [r for r in recs if r.plain and r.rate and r.setting.get("task") == "binary"]
    for key, rows in _group(sel, _row_key).items():
        accs = [r for r in rows if r.metric == "accuracy" and r.cls is None]
        pairs = []
        free_se = [r for r in rows if r.metric == "sensitivity" and r.cls is None
                   and r.averaging in (None, "binary")]
        free_sp = [r for r in rows if r.metric == "specificity" and r.cls is None
                   and r.averaging in (None, "binary")]
        for se, sp in product(free_se, free_sp):
            pairs.append((se, sp, se.setting.get("positive")))
        pc = [r for r in rows if r.metric == "sensitivity" and r.cls is not None]
        for se, sp in product(pc, pc):
            if se.cls in POSITIVE_CLASSES and sp.cls not in POSITIVE_CLASSES:
                pairs.append((se, sp, se.cls))
        for a, (se, sp, pos) in product(accs, pairs):
            if not _share(a, se, sp):
                continue
            lo, hi = min(_lo(se), _lo(sp)), max(_hi(se), _hi(sp))
            show = f"accuracy {a.printed}, sensitivity {se.printed}, specificity {sp.printed}"
            if _hi(a) < lo - EPS or _lo(a) > hi + EPS:
                out.append(_finding("binary_accuracy_bounds", [a, se, sp],
                    f"Accuracy {a.printed} lies outside [specificity, sensitivity]; for two classes "
                    f"accuracy = pi*Se + (1-pi)*Sp cannot.", "impossible",
                    "an accuracy outside the range of its sensitivity and specificity", show))
                continue
            pool = pools.get((a.paper, a.dataset))
            iv = _prevalence_interval(a, se, sp)
            if not pool or len(pool) != 2 or iv is None:
                continue
            total = sum(pool.values())
            shares = {c: n / total for c, n in pool.items()}
            if pos in shares:
                options = [(pos, shares[pos])]
            else:
                options = list(shares.items())
            if not any(iv[0] - COMPOSITION_SLACK <= s <= iv[1] + COMPOSITION_SLACK for _, s in options):
                cls_txt = ", ".join(f"{c} {s:.2f}" for c, s in shares.items())
                out.append(_finding("binary_accuracy_bounds", [a, se, sp],
                    f"These values need the positive class to make up {iv[0]:.2f}-{iv[1]:.2f} of the "
                    f"test set, but the data it was drawn from has {cls_txt}.", "implausible",
                    "a sensitivity, specificity and accuracy that need a class balance unlike the data's", show))
    return out


_SPEC_LABEL = "a specificity too low for its accuracy and the printed class composition"


@rule("multiclass_specificity_bound")
def multiclass_specificity_bound(recs) -> list[dict]:
    """Multi-class task: accuracy bounds the one-vs-rest specificity from below.

    Every error is a false positive of exactly one class, so ``sum_c FP_c = E`` and
    ``S_c = 1 - FP_c/(N - n_c)``. With ``pi_max`` the largest class share:

    * any single class: ``S_c >= 1 - (1-A)/(1-pi_max)``;
    * macro average: ``>= 1 - (1-A)/(C (1-pi_max))``; support-weighted:
      ``>= 1 - (1-A) pi_max/(1-pi_max)``; micro: ``= 1 - (1-A)/(C-1)``.

    The class shares are those the paper prints for the data the evaluation was drawn from
    (count claims with ``eval_pool``), with :data:`COMPOSITION_SLACK` added to ``pi_max``. A
    printed specificity below the single-class bound, or below all three averaged bounds, is a
    ``implausible``: impossible for a test set with (about) the printed class composition; the
    implication states how large the largest class would have to be.
    """
    out = []
    pools = _pool_composition(recs)
    sel = [r for r in recs if r.plain and r.rate and r.cls is None and r.setting.get("task") == "multiclass"]
    for key, rows in _group(sel, _row_key).items():
        pool = pools.get((key[0], key[2]))
        if not pool or len(pool) < 3:
            continue
        total = sum(pool.values())
        c = len(pool)
        pmax = min(1.0, max(pool.values()) / total + COMPOSITION_SLACK)
        accs = [r for r in rows if r.metric == "accuracy"]
        specs = [r for r in rows if r.metric == "specificity"]
        for a, s in product(accs, specs):
            if not _share(a, s):
                continue
            e = 1 - _lo(a)
            s_hi = _hi(s)
            single = 1 - e / (1 - pmax)
            averaged = min(1 - e / (c * (1 - pmax)), 1 - e * pmax / (1 - pmax), 1 - e / (c - 1))
            show = f"accuracy {a.printed}, specificity {s.printed} ({s.source.split(';')[0].strip()})"
            if s_hi < single - EPS:
                need = 1 - e / (1 - s_hi)
                out.append(_finding("multiclass_specificity_bound", [a, s],
                    f"With accuracy {a.printed} even a single class's specificity is at least "
                    f"{single:.4f} unless one class makes up {need:.0%} or more of the test set "
                    f"(largest class in the printed data: {max(pool.values()) / total:.0%}).",
                    "implausible", _SPEC_LABEL, show))
            elif s_hi < averaged - EPS:
                out.append(_finding("multiclass_specificity_bound", [a, s],
                    f"With accuracy {a.printed} and the printed class composition, a macro-, "
                    f"weighted- or micro-averaged specificity is at least {averaged:.4f}; "
                    f"{s.printed} fits only a single class's specificity.", "implausible", _SPEC_LABEL, show))
    return out


@rule("per_class_consistency")
def per_class_consistency(recs) -> list[dict]:
    """Averages and per-class values of the same row must agree.

    When a row prints a metric for every class (class-level claims; a row is taken to list all
    its classes): (1) an average of that metric (unstated, macro or weighted: a convex
    combination) must lie within [min, max] of the per-class values, and a ``macro`` average
    must equal their mean; (2) overall accuracy is a convex combination of the per-class
    recalls (weights n_c/N) and of the per-class precisions (weights = predicted shares), so
    it must lie within the range of either, and of ``1 - error`` when the paper prints
    per-class error rates (defined as 1 - recall or 1 - precision); (3) claims with statistic
    ``min_over_classes`` / ``max_over_classes`` must equal the min / max of the per-class
    values. Violations are ``impossible``; a min / max that is a slip (:func:`_slip`) of the
    per-class value it should be is a ``typo``.
    """
    out = []
    sel = [r for r in recs if r.rate and "bound" not in r.setting]
    groups = _group(sel, lambda r: (r.paper, r.model, r.dataset, _skey(r.setting, ("statistic",))))
    for key, rows in groups.items():
        per: dict[str, list] = {}
        for r in rows:
            if r.plain and r.cls is not None:
                per.setdefault(r.metric, []).append(r)
        if not per:
            continue

        def rng(items, flip=False):
            if flip:
                return min(1 - _hi(r) for r in items), max(1 - _lo(r) for r in items)
            return min(_lo(r) for r in items), max(_hi(r) for r in items)

        for r in rows:
            if r.cls is not None:
                continue
            stat = r.setting.get("statistic")
            items = [i for i in per.get(r.metric, []) if _share(r, i)]
            if stat in ("min_over_classes", "max_over_classes") and len(items) >= 2:
                vals = [i.v01 for i in items]
                target = min(vals) if stat.startswith("min") else max(vals)
                tol = r.h01 + max(i.h01 for i in items)
                if abs(r.v01 - target) > tol + EPS:
                    which = stat.split('_')[0]
                    hit = next(i for i in items if i.v01 == target)
                    how = _slip(r.printed, hit.printed)
                    kind, label, slip = (("typo", f"a {which}imum over classes printed with {how}",
                                          f" {r.printed} is evidently {hit.printed} with {how} (a typo).")
                                         if how else ("impossible", f"a {which}imum over classes that is no "
                                                      f"class's value", ""))
                    out.append(_finding("per_class_consistency", [r] + items,
                        f"The printed {which} over classes {r.printed} differs from the "
                        f"{which} of the per-class values ({_fmt(target * 100, 2)}%).{slip}",
                        kind, label, f"{_show(r)}; per class " +
                        ", ".join(f"{i.cls} {i.printed}" for i in items)))
                continue
            if not r.plain:
                continue
            if len(items) >= 2 and r.averaging in (None, "macro", "weighted"):
                lo, hi = rng(items)
                if _hi(r) < lo - EPS or _lo(r) > hi + EPS:
                    out.append(_finding("per_class_consistency", [r] + items,
                        f"The averaged {_NAMES.get(r.metric, r.metric)} {r.printed} lies outside the "
                        f"range of its per-class values, which no average can.", "impossible",
                        "an average outside the range of its per-class values"))
                elif r.averaging == "macro":
                    mlo = sum(_lo(i) for i in items) / len(items)
                    mhi = sum(_hi(i) for i in items) / len(items)
                    if _hi(r) < mlo - EPS or _lo(r) > mhi + EPS:
                        out.append(_finding("per_class_consistency", [r] + items,
                            f"The macro average {r.printed} is not the mean of its per-class values "
                            f"({_fmt((mlo + mhi) / 2, 4)}).", "impossible",
                            "a macro average that is not the mean of its per-class values"))
            if r.metric == "accuracy" and r.averaging is None:
                for metric, flip in (("sensitivity", False), ("precision", False), ("error_rate", True)):
                    items = [i for i in per.get(metric, []) if _share(r, i)]
                    if len(items) < 2:
                        continue
                    lo, hi = rng(items, flip)
                    if _hi(r) < lo - EPS or _lo(r) > hi + EPS:
                        what = ("1 - per-class error (per-class recall or precision)" if flip
                                else f"per-class {_NAMES.get(metric, metric)}")
                        out.append(_finding("per_class_consistency", [r] + items,
                            f"Accuracy {r.printed} lies outside the range of {what} "
                            f"[{_fmt(lo * 100, 3)}%, {_fmt(hi * 100, 3)}%], of which it is a weighted "
                            f"mean.", "impossible", "an accuracy outside the range of the per-class values it averages"))
    return out


@rule("fold_mean")
def fold_mean(recs) -> list[dict]:
    """A printed mean over folds must equal the mean of the printed per-fold values.

    Claims with ``fold: mean`` are compared with the claims of the same row and metric for
    integer folds (at least two), within the rounding of all of them. Kind ``impossible``, or
    ``typo`` when the printed mean is a slip (:func:`_slip`) of the folds' mean written with as
    many decimals as the folds.
    """
    out = []
    sel = [r for r in recs if r.plain and r.metric not in ("confusion_matrix",)]
    groups = _group(sel, lambda r: (r.paper, r.model, r.dataset, _skey(r.setting, ("fold",)),
                                    r.metric, r.cls, r.averaging))
    for rows in groups.values():
        folds = [r for r in rows if isinstance(r.setting.get("fold"), int)
                 and not isinstance(r.setting.get("fold"), bool)]
        means = [r for r in rows if r.setting.get("fold") == "mean"]
        if len(folds) < 2 or not means:
            continue
        for m in means:
            if m.rate and all(f.rate for f in folds):
                mean = sum(f.v01 for f in folds) / len(folds)
                tol = m.h01 + sum(f.h01 for f in folds) / len(folds)
                diff = abs(m.v01 - mean)
                shown = f"{_fmt(mean * 100, 3)}%"
            elif all(f.unit == m.unit for f in folds):
                mean = sum(float(f.value) for f in folds) / len(folds)
                tol = m.half + sum(f.half for f in folds) / len(folds)
                diff = abs(float(m.value) - mean)
                shown = _fmt(mean, 3)
            else:
                continue
            if diff > tol + EPS:
                scale = 100.0 if m.unit == "percent" and m.rate else 1.0
                intended = mean * scale if m.rate else mean
                kind, slip = _recomputed_kind(m.printed, intended, max(_decimals(f.printed) for f in folds))
                out.append(_finding("fold_mean", [m] + folds,
                    f"The printed mean {m.printed} is not the mean of the per-fold values "
                    f"({shown}).{slip}", kind,
                    "a mean printed with a slip of a digit" if kind == "typo"
                    else "a mean that is not the mean of its folds"))
    return out


@rule("sum_check")
def sum_check(recs) -> list[dict]:
    """A total must equal the sum of its printed parts (``setting.sum_of``).

    Counts and parameter counts must match exactly (kind ``impossible``, or ``typo`` when the
    printed total is a slip of the sum, :func:`_slip`). Other quantities (times) within
    rounding: a total smaller than one of its own parts is ``impossible``, any other mismatch
    ``implausible`` (the paper may not define the total as the sum).
    """
    out = []
    by_id = {(r.paper, r.id): r for r in recs}
    for r in recs:
        ids = r.setting.get("sum_of")
        if not ids or r.metric == "confusion_matrix":
            continue
        parts = [by_id.get((r.paper, i)) for i in ids]
        if any(p is None for p in parts):
            continue
        total = sum(float(p.value) for p in parts)
        if r.unit in ("count", "params"):
            if float(r.value) != total:
                kind, slip = _recomputed_kind(r.printed, total, 0)
                out.append(_finding("sum_check", [r] + parts,
                    f"The total {r.printed} differs from the sum of its parts ({_fmt(total)}).{slip}",
                    kind, "a total printed with a slip of a digit" if kind == "typo"
                    else "a total that is not the sum of its parts"))
            continue
        tol = r.half + sum(p.half for p in parts)
        biggest = max(parts, key=lambda p: float(p.value))
        if float(r.value) + r.half + biggest.half < float(biggest.value) - EPS:
            out.append(_finding("sum_check", [r] + parts,
                f"The total {r.printed} is smaller than one of its own parts ({biggest.printed}, "
                f"{biggest.setting.get('stage', biggest.id)}); the parts sum to {_fmt(total)}.",
                "impossible", "a total smaller than one of its own parts"))
        elif abs(float(r.value) - total) > tol + EPS:
            out.append(_finding("sum_check", [r] + parts,
                f"The total {r.printed} differs from the sum of its parts ({_fmt(total)}).",
                "implausible", "a total time other than the sum of its stages"))
    return out


@rule("split_exceeds_dataset")
def split_exceeds_dataset(recs) -> list[dict]:
    """The parts of a split cannot hold more images than the data they were drawn from.

    A count claim with ``setting.drawn_from`` (the id, or a list of ids, of the count claims in
    which the paper states the size of the data the split was taken from) is one part of a
    split; the parts are the claims with the same ``drawn_from`` and the same setting apart
    from ``split`` (so the folds of a cross-validation stay apart, while a fold's train and test
    parts add up), one per split (the smallest printing, should a part be printed twice). Their
    sum is compared with the largest of the named counts, the most generous reading: more is
    ``impossible`` (a part may be smaller than its share, never larger than the whole).
    """
    out = []
    by_id = {(r.paper, r.id): r for r in recs}
    parts = [r for r in recs if r.metric == "count" and r.setting.get("drawn_from")]
    for (paper, pool_ids, _), rows in _group(parts, lambda r: (
            r.paper, _freeze(r.setting["drawn_from"]), _skey(r.setting, ("split",)))).items():
        pools = [by_id.get((paper, i)) for i in ([pool_ids] if isinstance(pool_ids, str) else pool_ids)]
        if not pools or any(p is None for p in pools):
            continue
        pool = max(pools, key=lambda p: float(p.value))
        smallest = {}
        for r in rows:
            split = r.setting.get("split")
            if split not in smallest or float(r.value) < float(smallest[split].value):
                smallest[split] = r
        split_parts = list(smallest.values())
        total = sum(float(r.value) for r in split_parts)
        if total > float(pool.value):
            terms = " + ".join(f"{r.setting.get('split', r.id)} {r.printed}" for r in split_parts)
            where = "; ".join(sorted({_table_of(r.source) for r in split_parts}))
            out.append(_finding("split_exceeds_dataset", split_parts + [pool],
                f"The split of {where} ({terms} = {_fmt(total)} images) holds more images than the "
                f"{pool.printed} the paper says the data it was drawn from has ({_table_of(pool.source)}).",
                "impossible", "a split with more images than the data it was drawn from"))
    return out


@rule("difference_recompute")
def difference_recompute(recs) -> list[dict]:
    """A printed difference must equal the difference of the printed values it names.

    Claims with ``setting.difference_of: [a, b]`` are compared with ``a - b`` within the
    rounding of all three. Kind ``impossible``, or ``typo`` when the printed difference is a
    slip (:func:`_slip`) of ``a - b`` written with as many decimals as ``a`` and ``b``.
    """
    out = []
    by_id = {(r.paper, r.id): r for r in recs}
    for r in recs:
        ids = r.setting.get("difference_of")
        if not ids or len(ids) != 2:
            continue
        a, b = by_id.get((r.paper, ids[0])), by_id.get((r.paper, ids[1]))
        if a is None or b is None:
            continue
        expected = float(a.value) - float(b.value)
        tol = r.half + a.half + b.half
        if abs(float(r.value) - expected) > tol + EPS:
            kind, slip = _recomputed_kind(r.printed, expected, max(_decimals(a.printed), _decimals(b.printed)))
            out.append(_finding("difference_recompute", [r, a, b],
                f"The printed difference {r.printed} does not equal {a.printed} - {b.printed} = "
                f"{_fmt(expected, 2)}.{slip}", kind,
                "a difference printed with a slip of a digit" if kind == "typo"
                else "a difference that is not the difference of the numbers it names"))
    return out


@rule("error_vs_accuracy")
def error_vs_accuracy(recs) -> list[dict]:
    """An 'error' column next to an accuracy column should equal 1 - accuracy.

    Error-rate and accuracy claims of the same row, class and averaging are compared within
    rounding. Kind ``implausible`` (a warning): papers rarely define 'error' (it may be a loss),
    but a value other than 1 - accuracy is then not the classification error.
    """
    out = []
    sel = [r for r in recs if r.plain and r.rate and r.metric in ("error_rate", "accuracy")]
    for key, rows in _group(sel, _row_key).items():
        bad = []
        for e in (r for r in rows if r.metric == "error_rate"):
            for a in (r for r in rows if r.metric == "accuracy"):
                if (a.cls, a.averaging) != (e.cls, e.averaging) or not _share(a, e):
                    continue
                if abs(e.v01 - (1 - a.v01)) > e.h01 + a.h01 + EPS:
                    bad += [e, a]
        if bad:
            out.append(_finding("error_vs_accuracy", bad,
                "The 'error' values are not 1 - accuracy (e.g. "
                f"{bad[0].printed} vs 1 - {bad[1].printed}); the column is not the classification "
                "error.", "implausible", "an 'error' column that is not 1 - accuracy"))
    return out


# --------------------------------------------------------------------------- entry point

def check_claims(claims_df=None, rules: list[str] | None = None):
    """Run the consistency rules over a claims table and return the findings as a DataFrame.

    ``claims_df``: a DataFrame in the format of :func:`leukcore.evaluation.claims.load_claims` (the columns
    ``printed``, ``resolution`` and ``value01`` are derived when absent); default: the whole
    ledger. ``rules``: names from :data:`RULES` (default: all; unknown names raise
    ``ValueError`` listing the valid ones). Columns: :data:`FINDING_COLUMNS`, one row per
    finding, by paper, then in the order of :data:`KINDS` (errors first), then by rule.
    """
    import pandas as pd

    if claims_df is None:
        claims_df = load_claims()
    names = list(RULES) if rules is None else list(rules)
    unknown = [n for n in names if n not in RULES]
    if unknown:
        raise ValueError(f"unknown consistency rule(s) {unknown}; valid: {', '.join(RULES)}")
    recs = _records(claims_df)
    named_right = [r for r in recs if r.actual_metric is None]  # mislabelled numbers: their own rule only
    findings = []
    for n in names:
        findings.extend(RULES[n](recs if n == "mislabelled" else named_right))
    df = pd.DataFrame(findings, columns=list(FINDING_COLUMNS))
    if len(df):
        order = {k: i for i, k in enumerate(KINDS)}
        df = (df.assign(_k=df["kind"].map(order))
                .sort_values(["paper", "_k", "rule"], kind="stable")
                .drop(columns="_k").reset_index(drop=True))
    return df


CONSISTENCY_COLUMNS = ("rule", "paper", "claims", "printed", "implication", "severity", "kind", "label")


@lru_cache(maxsize=1)
def _ledger_findings():
    """The findings over the whole ledger, computed once per process (the ledger is package data)."""
    return check_claims()


def _select(kind: str | None, severity: str | None, paper: str | None, rule_name: str | None):
    """The ledger's findings with these values (None: any); unknown values raise ValueError."""
    for name, value, valid in (("kind", kind, KINDS), ("severity", severity, SEVERITIES),
                               ("paper", paper, list_papers()), ("rule", rule_name, RULES)):
        if value is not None and value not in valid:
            raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    f = _ledger_findings()
    for col, value in (("kind", kind), ("severity", severity), ("paper", paper), ("rule", rule_name)):
        if value is not None:
            f = f[f[col] == value]
    return f


def consistency_counts(kind: str | None = None, severity: str | None = None, paper: str | None = None,
                       rule: str | None = None) -> int:
    """How many of the ledger's consistency findings have this kind (:data:`KINDS`), severity,
    paper and rule (None: any). ``consistency_counts("impossible")`` is the number of places
    where the printed numbers cannot all be true; unknown names raise ``ValueError``."""
    return int(len(_select(kind, severity, paper, rule)))


def consistency_examples(kind: str, n: int = 3, paper: str | None = None) -> list[str]:
    """Up to ``n`` different labels (short noun phrases, e.g. "an F1 above what its precision and
    recall allow") of the ledger's findings of this kind, the most frequent first (ties: in the
    order of :func:`check_claims`), so that a headline's examples are real findings."""
    labels = _select(kind, None, paper, None)["label"]
    counts = labels.value_counts(sort=False)
    first = {lab: i for i, lab in reversed(list(enumerate(labels)))}
    return sorted(counts.index, key=lambda lab: (-counts[lab], first[lab]))[:n]


def consistency_findings(paper: str | None = None):
    """The ledger's consistency findings for one paper (or all): a DataFrame with the columns
    :data:`CONSISTENCY_COLUMNS` (``claims``: the claim ids, comma-separated), errors first.

    What ``leukcore claims --consistency`` prints; unknown paper ids raise ValueError.
    """
    df = check_claims(load_claims(paper))
    df = df.rename(columns={"claim_ids": "claims"})
    df["claims"] = [", ".join(ids) for ids in df["claims"]]
    return df[list(CONSISTENCY_COLUMNS)].reset_index(drop=True)
