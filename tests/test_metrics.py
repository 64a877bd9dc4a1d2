"""leukcore.metrics against scikit-learn / scipy and hand-computed cases."""
from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from leukcore.metrics import bootstrap_ci, compute_metrics, mcnemar, metric_at


def _random_case(seed: int, c: int, n: int = 300):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[y]  # informative but imperfect
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, prob


def _one_vs_rest_specificity(y, pred, c):
    return np.array([skm.recall_score(y != k, pred != k, zero_division=0) for k in range(c)])


@pytest.mark.parametrize("c", [2, 3, 4, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_sklearn_random(seed, c):
    y, prob = _random_case(seed, c)
    pred = prob.argmax(1)
    labels = list(range(c))
    m = compute_metrics(y, prob)
    assert m["n"] == len(y)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    cm = skm.confusion_matrix(y, pred, labels=labels)
    np.testing.assert_array_equal(m["confusion_matrix"], cm)
    assert m["support"] == {str(k): int((y == k).sum()) for k in labels}
    for avg in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y, pred, labels=labels, average=avg, zero_division=0
        )
        assert m["precision"][avg] == pytest.approx(p)
        assert m["sensitivity"][avg] == pytest.approx(r)
        assert m["f1"][avg] == pytest.approx(f)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    np.testing.assert_allclose(list(m["precision"]["per_class"].values()), p)
    np.testing.assert_allclose(list(m["sensitivity"]["per_class"].values()), r)
    np.testing.assert_allclose(list(m["f1"]["per_class"].values()), f)
    spec = _one_vs_rest_specificity(y, pred, c)
    np.testing.assert_allclose(list(m["specificity"]["per_class"].values()), spec)
    assert m["specificity"]["macro"] == pytest.approx(spec.mean())
    assert m["specificity"]["weighted"] == pytest.approx(np.average(spec, weights=s))
    assert m["sensitivity"]["weighted"] == pytest.approx(m["accuracy"])  # weighted recall = acc
    if c == 2:
        assert m["auc"] == pytest.approx(skm.roc_auc_score(y, prob[:, 1]))
        assert m["precision"]["binary"] == pytest.approx(skm.precision_score(y, pred))
        assert m["sensitivity"]["binary"] == pytest.approx(skm.recall_score(y, pred))
        assert m["specificity"]["binary"] == pytest.approx(skm.recall_score(1 - y, 1 - pred))
        assert m["f1"]["binary"] == pytest.approx(skm.f1_score(y, pred))
        assert m["positive"] == "1"
    else:
        assert "binary" not in m["f1"]
        assert m["auc"] == pytest.approx(
            skm.roc_auc_score(y, prob, multi_class="ovr", average="macro", labels=labels)
        )


def test_ties_in_auc_and_positive_class():
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    p1 = np.array([0.2, 0.5, 0.5, 0.9, 0.5, 0.1, 0.7, 0.5])
    prob = np.stack([1 - p1, p1], 1)
    m = compute_metrics(y, prob, class_names=["hem", "all"])
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, p1))
    assert m["positive"] == "all"
    pred = prob.argmax(1)
    flipped = compute_metrics(y, prob, class_names=["hem", "all"], positive="hem")
    assert flipped["sensitivity"]["binary"] == pytest.approx(skm.recall_score(y, pred, pos_label=0))
    assert flipped["auc"] == pytest.approx(skm.roc_auc_score(1 - y, 1 - p1))
    assert compute_metrics(y, p1)["accuracy"] == m["accuracy"]  # 1-D y_prob = P(class 1)


def test_perfect_and_all_wrong():
    y = np.array([0, 1, 2, 2, 1, 0, 2])
    perfect = compute_metrics(y, np.eye(3)[y], class_names=["a", "b", "c"])
    assert perfect["accuracy"] == 1.0 and perfect["auc"] == 1.0
    for name in ("sensitivity", "specificity", "precision", "f1"):
        assert perfect[name]["macro"] == perfect[name]["weighted"] == 1.0
        assert perfect[name]["per_class"] == {"a": 1.0, "b": 1.0, "c": 1.0}
    assert perfect["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 0, 3]]

    wrong_prob = np.eye(3)[(y + 1) % 3]
    wrong = compute_metrics(y, wrong_prob)
    assert wrong["accuracy"] == 0.0
    # one-vs-rest: a class' items score 0 like the rest's unpredicted items (ties count 1/2)
    assert wrong["auc"] == pytest.approx(skm.roc_auc_score(y, wrong_prob, multi_class="ovr"))
    assert wrong["auc"] < 0.5
    assert wrong["sensitivity"]["macro"] == wrong["precision"]["macro"] == wrong["f1"]["macro"] == 0
    # class 0 (support 2): predicted for the 3 items of class 2 -> FP 3, TN 2
    assert wrong["specificity"]["per_class"]["0"] == pytest.approx(2 / 5)
    assert wrong["confusion_matrix"] == [[0, 2, 0], [0, 0, 2], [3, 0, 0]]

    yb = np.array([1, 1, 0, 0, 1])
    wb = compute_metrics(yb, np.eye(2)[1 - yb])
    assert wb["accuracy"] == 0 and wb["specificity"]["binary"] == 0 and wb["auc"] == 0


def test_class_absent_from_predictions_and_truth():
    # class 2 is never predicted: its precision and F1 are 0 (zero division), like sklearn
    y = np.array([0, 0, 1, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 1, 0, 1, 0])
    m = compute_metrics(y, np.eye(3)[pred])
    assert m["precision"]["per_class"]["2"] == 0.0 and m["f1"]["per_class"]["2"] == 0.0
    assert m["sensitivity"]["per_class"]["2"] == 0.0
    assert m["specificity"]["per_class"]["2"] == 1.0  # TN 4, FP 0
    p, r, f, _ = skm.precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    assert (m["precision"]["macro"], m["sensitivity"]["macro"], m["f1"]["macro"]) == pytest.approx(
        (p, r, f)
    )
    # hand: class 0: TP1 FP2 FN1 -> P 1/3 R 1/2; class 1: TP2 FP2 FN0 -> P 1/2 R 1
    assert m["precision"]["per_class"]["0"] == pytest.approx(1 / 3)
    assert m["f1"]["per_class"]["1"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 0))

    # class 2 absent from y_true: AUC undefined -> NaN + warning; macro still over 3 classes
    y2 = np.array([0, 1, 1, 0, 1])
    prob = np.full((5, 3), 0.2)
    prob[np.arange(5), y2] = 0.6
    with pytest.warns(RuntimeWarning, match="absent"):
        m2 = compute_metrics(y2, prob)
    assert math.isnan(m2["auc"])
    assert m2["f1"]["per_class"]["2"] == 0.0 and m2["f1"]["macro"] == pytest.approx(2 / 3)
    assert m2["f1"]["weighted"] == 1.0 and m2["support"]["2"] == 0


def test_input_validation():
    with pytest.raises(ValueError):
        compute_metrics([0, 3], np.eye(3)[[0, 1]])
    with pytest.raises(ValueError):
        compute_metrics([0, 1], np.eye(2), class_names=["a"])
    with pytest.raises(ValueError):
        compute_metrics([0, 1, 2], np.eye(3), positive=1)


def test_metric_at():
    y, prob = _random_case(3, 4)
    m = compute_metrics(y, prob)
    assert metric_at(m, "f1.macro") == m["f1"]["macro"]
    assert metric_at(m, "precision.per_class.2") == m["precision"]["per_class"]["2"]
    with pytest.raises(ValueError):
        metric_at(m, "f1.median")


# ---------------------------------------------------------------------- bootstrap
@pytest.mark.parametrize(
    "path", ["accuracy", "f1.macro", "sensitivity.weighted", "specificity.macro",
             "precision.per_class.1", "auc"]
)
def test_bootstrap_vectorised_equals_loop(path):
    y, prob = _random_case(4, 3, n=120)
    fast = bootstrap_ci(y, prob, path, n=200, seed=7)
    slow = bootstrap_ci(y, prob, lambda t, p: metric_at(compute_metrics(t, p), path), n=200, seed=7)
    assert fast["point"] == pytest.approx(metric_at(compute_metrics(y, prob), path))
    for key in ("point", "low", "high"):
        assert fast[key] == pytest.approx(slow[key], abs=1e-12)
    assert fast["n_boot"] == slow["n_boot"] == 200
    assert fast["low"] <= fast["point"] <= fast["high"]


@pytest.mark.parametrize("c", [2, 4])
def test_bootstrap_auc_with_ties_matches_sklearn(c):
    y, prob = _random_case(6, c, n=150)
    prob = np.round(prob, 1)  # many tied scores
    prob = prob / prob.sum(1, keepdims=True)

    def sk_auc(t, p):
        if len(np.unique(t)) < c:
            return math.nan
        return skm.roc_auc_score(t, p[:, 1]) if c == 2 else skm.roc_auc_score(
            t, p, multi_class="ovr", labels=list(range(c)))

    fast = bootstrap_ci(y, prob, "auc", n=100, seed=1)
    slow = bootstrap_ci(y, prob, sk_auc, n=100, seed=1)
    for key in ("point", "low", "high", "n_boot"):
        assert fast[key] == pytest.approx(slow[key], abs=1e-12)


def test_bootstrap_reproducible_fast_and_sane():
    y, prob = _random_case(5, 2, n=1000)
    start = time.perf_counter()
    a = bootstrap_ci(y, prob, "accuracy", n=1000, seed=3)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    assert a == bootstrap_ci(y, prob, "accuracy", n=1000, seed=3)
    assert a != bootstrap_ci(y, prob, "accuracy", n=1000, seed=4)
    assert a["low"] < a["point"] < a["high"] and a["n_boot"] == 1000 and a["level"] == 0.95
    # width close to the normal approximation 2 * 1.96 * sqrt(p (1 - p) / n)
    se = math.sqrt(a["point"] * (1 - a["point"]) / 1000)
    assert a["high"] - a["low"] == pytest.approx(2 * 1.96 * se, rel=0.15)
    narrow = bootstrap_ci(y, prob, "accuracy", n=1000, seed=3, level=0.5)
    assert a["low"] < narrow["low"] < narrow["high"] < a["high"]
    b = bootstrap_ci(y, prob, "f1.binary", n=1000, seed=3, class_names=["hem", "all"])
    assert b["point"] == pytest.approx(skm.f1_score(y, prob.argmax(1)))
    with pytest.raises(ValueError):
        bootstrap_ci(y, prob, "f1.median")


def test_bootstrap_drops_undefined_resamples():
    y = np.array([0] * 29 + [1])  # many resamples miss the single positive
    prob = np.stack([np.linspace(1, 0, 30), np.linspace(0, 1, 30)], 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning per resample
        r = bootstrap_ci(y, prob, "auc", n=300, seed=0)
    assert 0 < r["n_boot"] < 300 and r["point"] == 1.0


# ----------------------------------------------------------------------- McNemar
def test_mcnemar_exact_and_chi2():
    y = np.zeros(40, int)
    a = np.zeros(40, int)
    b = np.zeros(40, int)
    a[:3] = 1  # A wrong, B right: c = 3
    b[3:11] = 1  # A right, B wrong: b = 8
    r = mcnemar(y, a, b)
    assert (r["b"], r["c"], r["method"]) == (8, 3, "exact")
    assert r["p_value"] == pytest.approx(stats.binomtest(3, 11, 0.5).pvalue)
    assert r["statistic"] == 3

    y = np.zeros(200, int)
    a = np.zeros(200, int)
    b = np.zeros(200, int)
    a[:10] = 1  # c = 10
    b[10:40] = 1  # b = 30
    r = mcnemar(y, a, b)
    assert (r["b"], r["c"], r["method"]) == (30, 10, "chi2_cc")
    assert r["statistic"] == pytest.approx((20 - 1) ** 2 / 40)
    assert r["p_value"] == pytest.approx(stats.chi2.sf((20 - 1) ** 2 / 40, 1))
    forced = mcnemar(y, a, b, exact=True)
    assert forced["p_value"] == pytest.approx(stats.binomtest(10, 40, 0.5).pvalue)
    same = mcnemar(y, a, a)
    assert (same["b"], same["c"], same["p_value"]) == (0, 0, 1.0)
    probs = np.eye(2)[a]
    assert mcnemar(y, probs, b) == mcnemar(y, a, b)


def test_wilson_interval_matches_scipy_and_validates():
    from scipy.stats import binomtest

    from leukcore.metrics import wilson_interval

    for k, n in [(90, 100), (0, 20), (20, 20), (1465, 1500), (3, 7)]:
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        low, high = wilson_interval(k / n, n)
        assert low == pytest.approx(ref.low, abs=1e-9) and high == pytest.approx(ref.high, abs=1e-9)
    with pytest.raises(ValueError):
        wilson_interval(0.5, 0)
    with pytest.raises(ValueError):
        wilson_interval(1.5, 10)
