"""Classification metrics, bootstrap intervals (one run, or several runs: two levels) and McNemar's test.

A run ends by computing its metrics, so they sit below :mod:`leukcore.runs` (they import nothing of
the package); verdicts, which read them, live in :mod:`leukcore.evaluation.verdicts`.

Conventions (the study's, stated once here and in the book's methods page):

* ``y_true``: ``(N,)`` integer labels in ``0..C-1``; ``y_prob``: ``(N, C)`` probabilities;
  the prediction is ``argmax_c y_prob[i, c]`` (ties -> lowest index).
* Confusion matrix ``M[t, p]`` = number of items of true class ``t`` predicted ``p``
  (rows true, columns predicted).
* Per class ``c``, one-vs-rest: ``TP = M[c, c]``, ``FN = sum_p M[c, p] - TP``,
  ``FP = sum_t M[t, c] - TP``, ``TN = N - TP - FN - FP``;
  sensitivity (recall) ``= TP / (TP + FN)``, specificity ``= TN / (TN + FP)``,
  precision ``= TP / (TP + FP)``, ``F1 = 2 TP / (2 TP + FP + FN)`` (``= 2PR / (P + R)``).
  A zero denominator gives 0.0 (scikit-learn's ``zero_division=0``).
* ``macro`` = unweighted mean over all ``C`` classes (absent ones included);
  ``weighted`` = mean weighted by true support ``n_c / N`` (so weighted sensitivity equals
  accuracy). ``binary`` (two-class tasks only) = the value for the positive class, the
  leukemia class: label 1 unless ``positive=`` says otherwise; binary specificity is then the
  negative class' recall.
* ``accuracy = trace(M) / N``.
* AUC: ROC AUC (Mann-Whitney form, ties counted 1/2). Binary: of the positive class'
  probability. Multi-class: one-vs-rest per class on ``y_prob[:, c]``, macro mean. NaN (with a
  warning) when a class has no items in ``y_true``.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

__all__ = [
    "AVERAGED_METRICS",
    "compute_metrics",
    "confusion_metrics",
    "metric_at",
    "bootstrap_ci",
    "bootstrap_runs_ci",
    "wilson_interval",
    "mcnemar",
]

#: Metrics reported per class with ``macro`` / ``weighted`` (and ``binary``) averages.
AVERAGED_METRICS: tuple[str, ...] = ("sensitivity", "specificity", "precision", "f1")

# ----------------------------------------------------------------------- helpers
def _check_inputs(y_true: Any, y_prob: Any) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true)
    p = np.asarray(y_prob, dtype=np.float64)
    if p.ndim == 1:  # probability of class 1
        p = np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"y_prob must be (N, C) with C >= 2, got shape {p.shape}")
    if t.ndim != 1 or t.shape[0] != p.shape[0]:
        raise ValueError(f"y_true must be (N,) matching y_prob {p.shape}, got {t.shape}")
    if t.size == 0:
        raise ValueError("no items")
    if not np.issubdtype(t.dtype, np.integer):
        if not np.all(np.equal(np.mod(t, 1), 0)):
            raise ValueError("y_true must hold integer labels")
    t = t.astype(np.int64)
    if t.min() < 0 or t.max() >= p.shape[1]:
        raise ValueError(f"labels must lie in 0..{p.shape[1] - 1}")
    return t, p


def _class_names(class_names: Sequence[str] | None, c: int) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(c)]
    names = [str(x) for x in class_names]
    if len(names) != c:
        raise ValueError(f"{len(names)} class names for {c} classes")
    return names


def _positive(positive: int | str | None, names: list[str]) -> int:
    if positive is None:
        return 1
    if isinstance(positive, str):
        if positive not in names:
            raise ValueError(f"positive class {positive!r} not in {names}")
        return names.index(positive)
    if not 0 <= int(positive) < len(names):
        raise ValueError(f"positive index {positive} out of range 0..{len(names) - 1}")
    return int(positive)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` elementwise with 0.0 where ``b == 0``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


def _confusion_stack(codes: np.ndarray, idx: np.ndarray, c: int) -> np.ndarray:
    """Confusion matrices ``(B, C, C)`` of the resamples ``idx`` ``(B, N)``; codes = t*C + p."""
    b = idx.shape[0]
    flat = codes[idx] + (np.arange(b, dtype=np.int64) * c * c)[:, None]
    return np.bincount(flat.ravel(), minlength=b * c * c).reshape(b, c, c)


def _per_class(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class one-vs-rest metrics ``(..., C)`` and support from confusion matrices."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support = cm.sum(axis=-1)
    predicted = cm.sum(axis=-2)
    n = support.sum(axis=-1, keepdims=True)
    fn = support - tp
    fp = predicted - tp
    tn = n - tp - fn - fp
    return {
        "sensitivity": _div(tp, tp + fn),
        "specificity": _div(tn, tn + fp),
        "precision": _div(tp, tp + fp),
        "f1": _div(2 * tp, 2 * tp + fp + fn),
        "support": support,
        "accuracy": _div(tp.sum(axis=-1), n[..., 0]),
    }


def _average(values: np.ndarray, support: np.ndarray, how: str, positive: int) -> np.ndarray:
    if how == "macro":
        return values.mean(axis=-1)
    if how == "weighted":
        return _div((values * support).sum(axis=-1), support.sum(axis=-1))
    if how == "binary":
        if values.shape[-1] != 2:
            raise ValueError("'binary' averages exist only for two-class tasks")
        return values[..., positive]
    raise ValueError(f"unknown average {how!r}; valid: macro, weighted, binary, per_class.<name>")


def _resample_counts(idx: np.ndarray, n: int) -> np.ndarray:
    """How often each of the ``n`` items occurs in each resample: ``(B, N)`` -> ``(B, n)``."""
    b = idx.shape[0]
    flat = idx + (np.arange(b, dtype=np.int64) * n)[:, None]
    return np.bincount(flat.ravel(), minlength=b * n).reshape(b, n)


def _auc_weighted(counts: np.ndarray, is_pos: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC of item-weighted samples, one per row of ``counts`` ``(B, N)``; NaN if undefined.

    Mann-Whitney form: ``AUC = sum_{i pos, j neg} w_i w_j [s_i > s_j] + 1/2 [s_i = s_j]``
    divided by ``(sum_pos w)(sum_neg w)``; items are sorted by score once and tied scores
    grouped, so a resample costs ``O(N)``.
    """
    order = np.argsort(score, kind="stable")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    w = counts[:, order].astype(np.float64)
    pos_w = w * is_pos[order]
    if starts.size == s.size:  # no tied scores
        pos, neg = pos_w, w - pos_w
    else:
        pos = np.add.reduceat(pos_w, starts, axis=1)
        neg = np.add.reduceat(w - pos_w, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    u = (pos * (below + 0.5 * neg)).sum(axis=1)
    n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = u / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _auc_per_class(t: np.ndarray, p: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """One-vs-rest AUC of each class ``(B, C)`` for resample counts ``(B, N)``."""
    return np.stack([_auc_weighted(counts, t == k, p[:, k]) for k in range(p.shape[1])], axis=-1)


def _auc_summary(per_class: np.ndarray, positive: int) -> np.ndarray:
    """Binary: the positive class' AUC; multi-class: macro mean (NaN if a class is absent)."""
    return per_class[..., positive] if per_class.shape[-1] == 2 else per_class.mean(axis=-1)


# ------------------------------------------------------------------ compute_metrics
def compute_metrics(
    y_true: Any,
    y_prob: Any,
    class_names: Sequence[str] | None = None,
    positive: int | str | None = None,
) -> dict[str, Any]:
    """All study metrics of one prediction set (conventions: module docstring).

    Args:
        y_true: ``(N,)`` integer labels ``0..C-1``.
        y_prob: ``(N, C)`` class probabilities (a 1-D array is read as P(class 1) of a
            binary task); prediction = argmax.
        class_names: names for the ``C`` classes (default ``"0"``, ``"1"``, ...).
        positive: binary tasks only: index or name of the positive (leukemia) class;
            default label 1.

    Returns:
        ``{"n", "accuracy", "sensitivity", "specificity", "precision", "f1", "auc",
        "auc_per_class", "confusion_matrix", "support", "class_names"}`` where each of
        sensitivity/specificity/precision/f1 is ``{"per_class": {name: v}, "macro": v,
        "weighted": v}`` (+ ``"binary": v`` for two classes, also ``"positive"`` at top
        level); ``confusion_matrix`` is a list of lists (rows true, columns predicted);
        ``support`` maps class name to its count in ``y_true``. Values are Python floats.
    """
    t, p = _check_inputs(y_true, y_prob)
    c = p.shape[1]
    names = _class_names(class_names, c)
    pred = p.argmax(axis=1)
    cm = np.bincount(t * c + pred, minlength=c * c).reshape(c, c)
    out = confusion_metrics(cm, names, positive)
    binary = c == 2
    pos = names.index(out["positive"]) if binary else 0
    per_auc = [float(v) for v in _auc_per_class(t, p, np.ones((1, t.size)))[0]]
    absent = [names[k] for k in range(c) if not np.any(t == k)]
    if absent:
        warnings.warn(
            f"AUC undefined: class(es) {absent} absent from y_true", RuntimeWarning, stacklevel=2
        )
    out["auc"] = float(_auc_summary(np.array(per_auc), pos))
    out["auc_per_class"] = dict(zip(names, per_auc))
    return {k: out[k] for k in ("n", "accuracy", *AVERAGED_METRICS, "auc", "auc_per_class", "confusion_matrix",
                                "support", "class_names", *(("positive",) if binary else ()))}


def confusion_metrics(
    confusion_matrix: Any,
    class_names: Sequence[str] | None = None,
    positive: int | str | None = None,
) -> dict[str, Any]:
    """Every metric of :func:`compute_metrics` that the confusion matrix alone fixes (all but the AUC).

    ``confusion_matrix``: ``(C, C)`` counts, rows true, columns predicted. Returns ``{"n",
    "accuracy", "sensitivity", "specificity", "precision", "f1", "confusion_matrix", "support",
    "class_names"}`` (+ ``"positive"`` for two classes), each value as :func:`compute_metrics`
    gives it, so a record's stored metrics can be checked against its own confusion matrix.
    """
    cm = np.asarray(confusion_matrix, dtype=np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] < 2 or (cm < 0).any():
        raise ValueError(f"a confusion matrix is C x C non-negative counts with C >= 2, got shape {cm.shape}")
    c = cm.shape[0]
    names = _class_names(class_names, c)
    binary = c == 2
    pos = _positive(positive, names) if binary else None
    if not binary and positive is not None:
        raise ValueError("positive= applies to two-class tasks only")
    per = _per_class(cm)
    out: dict[str, Any] = {"n": int(cm.sum()), "accuracy": float(per["accuracy"])}
    for name in AVERAGED_METRICS:
        values = per[name]
        entry: dict[str, Any] = {
            "per_class": {k: float(v) for k, v in zip(names, values)},
            "macro": float(_average(values, per["support"], "macro", 0)),
            "weighted": float(_average(values, per["support"], "weighted", 0)),
        }
        if binary:
            entry["binary"] = float(values[pos])
        out[name] = entry
    out["confusion_matrix"] = cm.tolist()
    out["support"] = {k: int(v) for k, v in zip(names, per["support"])}
    out["class_names"] = names
    if binary:
        out["positive"] = names[pos]
    return out


def metric_at(metrics: dict[str, Any], path: str) -> float:
    """Look up a dotted path in a :func:`compute_metrics` result, e.g. ``"f1.macro"``."""
    node: Any = metrics
    for part in _split_path(path):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"no metric {path!r}")
        node = node[part]
    return float(node)


def _split_path(path: str) -> list[str]:
    parts = path.split(".")
    if len(parts) > 2 and parts[1] == "per_class":  # class names may contain dots
        parts = parts[:2] + [".".join(parts[2:])]
    return parts


# --------------------------------------------------------------------- bootstrap
def _stack_metric(
    path: str, t: np.ndarray, p: np.ndarray, names: list[str], positive: int
) -> Callable[[np.ndarray], np.ndarray]:
    """Vectorised metric: resample indices ``(B, N)`` -> values ``(B,)``."""
    c = p.shape[1]
    parts = _split_path(path)
    head, rest = parts[0], parts[1:]
    if head == "auc" and not rest:
        if c == 2:  # only the positive class' score matters
            is_pos, score = t == positive, p[:, positive]
            return lambda idx: _auc_weighted(_resample_counts(idx, t.size), is_pos, score)
        return lambda idx: _auc_summary(_auc_per_class(t, p, _resample_counts(idx, t.size)), 0)
    if head == "auc" and len(rest) == 2 and rest[0] == "per_class" and rest[1] in names:
        k = names.index(rest[1])  # one-vs-rest AUC of one class
        is_k, score_k = t == k, p[:, k]
        return lambda idx: _auc_weighted(_resample_counts(idx, t.size), is_k, score_k)
    codes = t * c + p.argmax(axis=1)
    if head == "accuracy" and len(rest) == 2 and rest[0] == "per_class" and rest[1] in names:
        k = names.index(rest[1])  # one-vs-rest accuracy of one class: (TP + TN) / N
        hit = ((codes // c == k) == (codes % c == k)).astype(np.float64)
        return lambda idx: hit[idx].mean(axis=1)
    if head == "accuracy" and not rest:
        correct = (codes // c == codes % c).astype(np.float64)
        return lambda idx: correct[idx].mean(axis=1)
    if head in AVERAGED_METRICS and rest:
        if rest[0] == "per_class" and len(rest) == 2 and rest[1] in names:
            k = names.index(rest[1])
            return lambda idx: _per_class(_confusion_stack(codes, idx, c))[head][:, k]
        if len(rest) == 1:
            how = rest[0]
            _average(np.zeros((1, c)), np.ones((1, c)), how, positive)  # validate early

            def averaged(idx: np.ndarray) -> np.ndarray:
                per = _per_class(_confusion_stack(codes, idx, c))
                return _average(per[head], per["support"], how, positive)

            return averaged
    raise ValueError(
        f"unknown metric path {path!r}; valid: accuracy, auc, accuracy.per_class.<name>, auc.per_class.<name>, "
        f"<{'|'.join(AVERAGED_METRICS)}>.<macro|weighted|binary|per_class.<class name>>"
    )


def bootstrap_ci(
    y_true: Any,
    y_prob: Any,
    metric: str | Callable[[np.ndarray, np.ndarray], float],
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    *,
    class_names: Sequence[str] | None = None,
    positive: int | str | None = None,
) -> dict[str, Any]:
    """Percentile bootstrap interval of a metric over the test items.

    ``n`` resamples of the ``N`` items with replacement (``numpy.random.default_rng(seed)``);
    the metric ``m_b`` is computed on each; the interval is
    ``[q_{(1-level)/2}, q_{(1+level)/2}]`` of the ``m_b`` (``np.percentile``, linear).
    Resamples where the metric is undefined (NaN, e.g. AUC with a class missing) are dropped;
    ``n_boot`` counts the ones kept.

    Args:
        metric: a dotted path into :func:`compute_metrics` -- ``"accuracy"``, ``"auc"``,
            ``"f1.macro"``, ``"sensitivity.weighted"``, ``"precision.binary"``,
            ``"f1.per_class.<name>"`` -- computed vectorised (confusion counts of all
            resamples by one ``np.bincount``; AUC from per-item resample counts over the
            score order); or a callable ``metric(y_true, y_prob) -> float`` (called once per
            resample).
        class_names, positive: as in :func:`compute_metrics`.

    Returns:
        ``{"point", "low", "high", "n_boot", "level"}``; ``point`` is the metric on all items.
    """
    t, p = _check_inputs(y_true, y_prob)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    size = t.size
    rng = np.random.default_rng(seed)
    idx_all = rng.integers(0, size, size=(n, size))
    if callable(metric):
        point = float(metric(t, p))
        values = np.array([float(metric(t[i], p[i])) for i in idx_all])
    else:
        names = _class_names(class_names, p.shape[1])
        if p.shape[1] != 2 and positive is not None:
            raise ValueError("positive= applies to two-class tasks only")
        pos = _positive(positive, names) if p.shape[1] == 2 else 0
        fn = _stack_metric(metric, t, p, names, pos)
        point = float(fn(np.arange(size)[None, :])[0])
        chunk = max(1, 2_000_000 // size)
        values = np.concatenate([fn(idx_all[i : i + chunk]) for i in range(0, n, chunk)])
    values = values[np.isfinite(values)]
    if values.size:
        low, high = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    else:
        low = high = math.nan
    return {
        "point": point,
        "low": float(low),
        "high": float(high),
        "n_boot": int(values.size),
        "level": float(level),
    }


def bootstrap_runs_ci(
    runs: Sequence[tuple[Any, Any]],
    metric: str,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    *,
    class_names: Sequence[str] | None = None,
    positive: int | str | None = None,
    shared_items: bool = False,
) -> dict[str, Any]:
    """Two-level percentile bootstrap of a metric measured over several runs (seeds or folds).

    Each of the ``n`` resamples draws ``R`` runs with replacement from the ``R`` runs, then,
    for each drawn run, a resample of its test items; the resample's value is the mean of the
    drawn runs' metric values. The interval therefore holds both the run-to-run spread and the
    test-set sampling error. ``point`` is the mean over runs of each run's metric.

    Args:
        runs: ``[(y_true, y_prob), ...]``, one pair per run.
        metric: a dotted path as in :func:`bootstrap_ci`.
        shared_items: the runs were tested on the same items in the same order (seeds or folds
            evaluated on one held-out set): one item resample is applied to every run of a
            bootstrap draw, so identical runs give the one-level interval. Otherwise (folds with
            disjoint test parts, seeds with their own splits) each drawn run gets its own.

    Returns:
        ``{"point", "low", "high", "n_boot", "level", "runs", "per_run"}``.
    """
    if not runs:
        raise ValueError("no runs")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    data = [_check_inputs(t, p) for t, p in runs]
    c = data[0][1].shape[1]
    if any(p.shape[1] != c for _, p in data):
        raise ValueError("runs differ in their number of classes")
    if shared_items and len({t.size for t, _ in data}) != 1:
        raise ValueError("shared_items needs runs of the same size")
    names = _class_names(class_names, c)
    pos = _positive(positive, names) if c == 2 else 0
    fns = [_stack_metric(metric, t, p, names, pos) for t, p in data]
    per_run = np.array([float(fn(np.arange(t.size)[None, :])[0]) for fn, (t, _) in zip(fns, data)])
    r = len(data)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, r, size=(n, r))  # which runs each draw takes
    slots = 1 if shared_items else r  # independent item resamples per drawn slot
    vals = np.empty((r, n, slots))
    if shared_items:
        size = data[0][0].size
        idx_all = rng.integers(0, size, size=(n, size))
    for j, (fn, (t, _)) in enumerate(zip(fns, data)):
        if not shared_items:
            idx_all = rng.integers(0, t.size, size=(n * slots, t.size))
        chunk = max(1, 2_000_000 // t.size)
        v = np.concatenate([fn(idx_all[i : i + chunk]) for i in range(0, idx_all.shape[0], chunk)])
        vals[j] = v.reshape(n, slots)
    slot = np.zeros((n, r), dtype=np.int64) if shared_items else np.broadcast_to(np.arange(r), (n, r))
    draws = vals[pick, np.arange(n)[:, None], slot].mean(axis=1)
    draws = draws[np.isfinite(draws)]
    if draws.size:
        low, high = np.percentile(draws, [50 * (1 - level), 50 * (1 + level)])
    else:
        low = high = math.nan
    return {"point": float(np.mean(per_run)), "low": float(low), "high": float(high), "n_boot": int(draws.size),
            "level": float(level), "runs": r, "per_run": [float(x) for x in per_run]}


def wilson_interval(p: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed on ``n`` items (e.g. an accuracy
    that a training history reports without its predictions, so it cannot be bootstrapped)."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


# ---------------------------------------------------------------------- McNemar
def mcnemar(
    y_true: Any, pred_a: Any, pred_b: Any, *, exact: bool | None = None
) -> dict[str, Any]:
    """McNemar's test for two classifiers evaluated on the same items.

    ``b`` = items A gets right and B gets wrong, ``c`` = items A gets wrong and B right.
    Under H0 (equal error rates) ``b ~ Binomial(b + c, 1/2)``:

    * exact (default when ``b + c < 25``): ``p = min(1, 2 * P[X <= min(b, c)])``,
      ``X ~ Bin(b + c, 1/2)``; ``statistic = min(b, c)``.
    * chi-square with continuity correction (``b + c >= 25``):
      ``statistic = (|b - c| - 1)^2 / (b + c)``, ``p = P[chi2_1 >= statistic]``.

    ``b + c = 0`` gives ``p = 1``. Predictions may be labels ``(N,)`` or probabilities
    ``(N, C)`` (argmax is taken).

    Returns:
        ``{"b", "c", "statistic", "p_value", "method"}`` with method ``"exact"`` or
        ``"chi2_cc"``.
    """
    t = np.asarray(y_true)
    a = np.asarray(pred_a)
    bb = np.asarray(pred_b)
    a = a.argmax(axis=1) if a.ndim == 2 else a
    bb = bb.argmax(axis=1) if bb.ndim == 2 else bb
    if not (t.shape == a.shape == bb.shape) or t.ndim != 1:
        raise ValueError(f"shapes differ: {t.shape}, {a.shape}, {bb.shape}")
    ok_a, ok_b = a == t, bb == t
    b = int(np.sum(ok_a & ~ok_b))
    c = int(np.sum(~ok_a & ok_b))
    m = b + c
    use_exact = m < 25 if exact is None else exact
    if use_exact:
        stat = float(min(b, c))
        p_value = 1.0 if m == 0 else min(1.0, 2.0 * float(stats.binom.cdf(min(b, c), m, 0.5)))
        method = "exact"
    else:
        stat = 0.0 if m == 0 else (abs(b - c) - 1) ** 2 / m
        p_value = 1.0 if m == 0 else float(stats.chi2.sf(stat, 1))
        method = "chi2_cc"
    return {"b": b, "c": c, "statistic": float(stat), "p_value": p_value, "method": method}

#: Metric paths that get a bootstrap interval in every run record (two-class tasks add the
#: ``*.binary`` paths of :data:`BINARY_INTERVAL_METRICS`).
INTERVAL_METRICS = ("accuracy", "sensitivity.macro", "sensitivity.weighted", "specificity.macro",
                    "specificity.weighted", "precision.macro", "precision.weighted", "f1.macro", "f1.weighted", "auc")
BINARY_INTERVAL_METRICS = ("sensitivity.binary", "specificity.binary", "precision.binary", "f1.binary")


def metrics_and_intervals(y: np.ndarray, prob: np.ndarray, class_names: list[str], positive, n_boot: int,
                          seed: int) -> dict:
    """What a run record holds of its predictions: ``{"metrics": compute_metrics(...), "intervals":
    {path: bootstrap_ci(...)}}`` for :data:`INTERVAL_METRICS` (and, with two classes,
    :data:`BINARY_INTERVAL_METRICS`); a path that cannot be computed (a class absent) is left out.
    ``positive``: the task's positive labels (the first is used with two classes)."""
    pos = int(positive[0]) if prob.shape[1] == 2 and positive else None
    paths = INTERVAL_METRICS + (BINARY_INTERVAL_METRICS if prob.shape[1] == 2 else ())
    ci = {}
    for path in paths:
        try:
            ci[path] = bootstrap_ci(y, prob, path, n=n_boot, seed=seed, class_names=class_names, positive=pos)
        except (ValueError, KeyError):
            continue
    return {"metrics": compute_metrics(y, prob, class_names=class_names, positive=pos), "intervals": ci}
