"""leukcore.evaluation.verdicts: hand-computed verdicts, reasons and matching on tiny records written to tmp_path."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from leukcore.evaluation import verdicts as V
from leukcore.metrics import bootstrap_ci, bootstrap_runs_ci
from leukcore.runs.records import load_records, write_record

TALEQANI = ["Benign", "Early", "Pre", "Pro"]


def _probs(pred, c):
    p = np.full((len(pred), c), 0.02)
    p[np.arange(len(pred)), pred] = 0.94
    return p / p.sum(1, keepdims=True)


def _write(root, paper, experiment, y, prob, *, seed=0, profile="paper", classes=TALEQANI, dataset="taleqani-all",
           is_papers=True, stands_in_for=None, history=None, folds=None, settings=None, deviations=(),
           positive=None, extra_cols=None, ids=None):
    y = np.asarray(y)
    df = pd.DataFrame({"id": ids if ids is not None else [f"img{i}" for i in range(len(y))], "y_true": y})
    for k in range(prob.shape[1]):
        df[f"p_{k}"] = prob[:, k]
    for k, v in (extra_cols or {}).items():
        df[k] = v
    rec = {"paper": paper, "experiment": experiment, "profile": profile, "status": "complete", "seed": seed,
           "dataset": {"id": dataset, "is_papers": is_papers, "stands_in_for": stands_in_for, "fingerprint": "f"},
           "class_names": list(classes), "metrics": {"positive": positive} if positive else {},
           "settings": settings or {"pretrained": False}, "settings_hash": "h",
           "deviations": list(deviations), "history": history or [[{"epoch": 1, "train_accuracy": 0.5}]],
           "split": {"folds": folds or [{"train": 100, "val": 10, "test": len(y)}]}}
    write_record(rec, predictions=df, root=root)


def _table(root, paper, ids, monkeypatch=None):
    return V.claims_table(paper, records=load_records(paper, root=root), claim_ids=ids).set_index("claim")


# 4 classes, 10 copies of y = [0,0,1,1,2,2,3,3], pred = [0,1,1,1,2,0,3,3]:
# one-vs-rest per class (TP, FN, FP, TN of 8): 0: (1,1,1,5)  1: (2,0,1,5)  2: (1,1,0,6)  3: (2,0,0,6)
Y8 = np.tile([0, 0, 1, 1, 2, 2, 3, 3], 10)
P8 = np.tile([0, 1, 1, 1, 2, 0, 3, 3], 10)
HAND = {"Benign": dict(accuracy=6 / 8, sensitivity=1 / 2, specificity=5 / 6),
        "Early": dict(accuracy=7 / 8, sensitivity=1.0, specificity=5 / 6),
        "Pre": dict(accuracy=7 / 8, sensitivity=1 / 2, specificity=1.0),
        "Pro": dict(accuracy=1.0, sensitivity=1.0, specificity=1.0)}


# ----------------------------------------------------------------------- decide(): every verdict
E = V.Evidence


@pytest.mark.parametrize("ev,expected", [
    (E(claimed=0.9, reasons={V.R_NO_DATA}), (V.NOT_RUN, [V.R_NO_DATA])),
    (E(claimed=0.9, reasons={V.R_SYNTHETIC, V.R_NO_DATA}), (V.NOT_RUN, [V.R_NO_DATA, V.R_SYNTHETIC])),
    (E(claimed=0.9), (V.NOT_RUN, [V.R_NOT_MEASURED])),
    (E(claimed=535010, measured=535010, exact=True), (V.REPRODUCED, [])),
    (E(claimed=20000, measured=3256, exact=True), (V.DIFFERS, [])),
    # a 2-class head against a 1000-class count: counted the paper's way it still differs -> not comparable
    (E(claimed=62378344, measured=61100840, exact=True, reasons={V.R_OTHER_MODEL}),
     (V.NOT_COMPARABLE, [V.R_OTHER_MODEL])),
    (E(claimed=6875, measured=1627, exact=True, reasons={V.R_OUR_SPLIT}), (V.NOT_COMPARABLE, [V.R_OUR_SPLIT])),
    # a paper-profile collapse on the paper's data, nothing stronger: failed to train
    (E(claimed=0.9, measured=0.3, low=0.28, high=0.32, runs=3, profile="paper", reasons={V.R_COLLAPSED}),
     (V.FAILED, [V.R_COLLAPSED])),
    # ... but without the ImageNet weights the protocol needs it is not comparable, the collapse still listed
    (E(claimed=0.9, measured=0.3, low=0.28, high=0.32, runs=3, profile="paper",
       reasons={V.R_COLLAPSED, V.R_IMAGENET}), (V.NOT_COMPARABLE, [V.R_IMAGENET, V.R_COLLAPSED])),
    # a collapsed cpu run on stand-in data: not comparable; the collapse is not a reason at a reduced profile
    (E(claimed=0.99, measured=0.30, low=0.27, high=0.33, runs=1, profile="cpu",
       reasons={V.R_SUBSTITUTE, V.R_IMAGENET, V.R_COLLAPSED, V.R_CHANCE}),
     (V.NOT_COMPARABLE, [V.R_SUBSTITUTE, V.R_IMAGENET, V.R_REDUCED, V.R_FEW_RUNS])),
    # a collapsed cpu run on the paper's own data: indicative, never failed to train
    (E(claimed=0.99, measured=0.30, low=0.27, high=0.33, runs=1, profile="cpu", reasons={V.R_COLLAPSED}),
     (V.INDICATIVE, [V.R_REDUCED, V.R_FEW_RUNS])),
    (E(claimed=0.9, measured=0.99, low=0.98, high=1.0, runs=3, profile="paper", reasons={V.R_DETECTOR}),
     (V.NOT_COMPARABLE, [V.R_DETECTOR])),
    (E(claimed=0.9, measured=0.5, low=0.4, high=0.6, runs=3, profile="cpu"), (V.INDICATIVE, [V.R_REDUCED])),
    (E(claimed=0.9, measured=0.5, low=0.4, high=0.6, runs=2, profile="paper"), (V.INDICATIVE, [V.R_FEW_RUNS])),
    (E(claimed=0.95, measured=0.95, low=0.93, high=0.97, runs=3, profile="paper"), (V.REPRODUCED, [])),
    (E(claimed=0.93, measured=0.95, low=0.93, high=0.97, runs=3, profile="paper"), (V.REPRODUCED, [])),
    (E(claimed=0.99, measured=0.95, low=0.93, high=0.97, runs=5, profile="paper"), (V.LOWER, [])),
    (E(claimed=0.90, measured=0.95, low=0.93, high=0.97, runs=3, profile="paper"), (V.HIGHER, [])),
    # macro says reproduced, weighted says lower: indicative, with that reason
    (E(claimed=0.95, measured=0.95, low=0.93, high=0.97, runs=3, profile="paper", second=(0.90, 0.94)),
     (V.INDICATIVE, [V.R_AVERAGING])),
    (E(claimed=0.99, measured=0.95, low=0.93, high=0.97, runs=3, profile="paper", second=(0.90, 0.94)),
     (V.LOWER, [])),
])
def test_decide_hand_cases(ev, expected):
    assert V.decide(ev) == expected


def test_an_unknown_reason_is_refused():
    with pytest.raises(ValueError, match="unknown reason"):
        V.decide(E(claimed=0.9, measured=0.9, reasons={"bad luck"}))


def test_vocabulary_is_stated_and_every_reason_listed():
    assert list(V.VERDICTS) == ["not run", "not comparable", "failed to train", "indicative", "reproduced", "lower",
                                "higher", "differs"]
    text = V.vocabulary_markdown()
    for k in list(V.VERDICTS) + list(V.REASONS):
        assert k in text
    reasons = {getattr(V, n) for n in dir(V) if n.startswith("R_")}
    assert reasons == set(V.REASONS)
    # the fixed order follows the precedence: every reason of a stronger verdict comes first
    ranks = [V.PRECEDENCE.index(V.REASONS[r][0]) for r in V.REASON_ORDER]
    assert ranks == sorted(ranks)


def test_every_column_is_explained():
    assert set(V.COLUMNS) == set(V.COLUMN_DICTIONARY)
    text = V.columns_markdown()
    assert all(f"`{c}`" in text for c in V.COLUMNS)


# ----------------------------------------------------------------------- two-level bootstrap
def _case(seed, n=300, acc=0.8):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < acc, y, (y + 1) % 3)
    return y, _probs(pred, 3)


def test_two_level_bootstrap_identical_runs_equal_one_level():
    y, p = _case(0)
    one = bootstrap_ci(y, p, "accuracy", n=1000, seed=0)
    three = bootstrap_runs_ci([(y, p)] * 3, "accuracy", n=1000, seed=0, shared_items=True)
    assert three["point"] == pytest.approx(one["point"])
    assert three["runs"] == 3
    assert three["low"] == pytest.approx(one["low"], abs=0.01) and three["high"] == pytest.approx(one["high"], abs=0.01)


def test_two_level_bootstrap_widens_with_run_to_run_spread():
    runs = [_case(s, n=400, acc=a) for s, a in ((1, 0.6), (2, 0.75), (3, 0.9))]
    pooled = bootstrap_runs_ci(runs, "accuracy", n=1000, seed=0)
    assert pooled["point"] == pytest.approx(np.mean([(r[1].argmax(1) == r[0]).mean() for r in runs]))
    for y, p in runs:
        one = bootstrap_ci(y, p, "accuracy", n=1000, seed=0)
        assert pooled["high"] - pooled["low"] > one["high"] - one["low"]
    # the spread of the run means (0.6 .. 0.9) is inside the interval's reach
    assert pooled["low"] < 0.7 and pooled["high"] > 0.8


def test_per_class_paths_match_hand_values():
    prob = _probs(P8, 4)
    for k, name in enumerate(TALEQANI):
        acc = bootstrap_ci(Y8, prob, f"accuracy.per_class.{name}", class_names=TALEQANI, n=50)
        assert acc["point"] == pytest.approx(HAND[name]["accuracy"])
        auc = bootstrap_ci(Y8, prob, f"auc.per_class.{name}", class_names=TALEQANI, n=50)
        assert auc["point"] == pytest.approx(skm.roc_auc_score(Y8 == k, prob[:, k]))


# ----------------------------------------------------------------------- matching on written records
def test_per_class_claims_use_their_class_case_insensitively(tmp_path):
    _write(tmp_path, "xincept_khan2024", "xincept-xgboost", Y8, _probs(P8, 4))
    ids = [f"exp1-{c}-{m}" for c in ("benign", "early", "pre", "pro") for m in ("accuracy", "sensitivity",
                                                                                  "specificity")]
    df = _table(tmp_path, "xincept_khan2024", ids)
    for c, name in zip(("benign", "early", "pre", "pro"), TALEQANI):
        for m in ("accuracy", "sensitivity", "specificity"):
            row = df.loc[f"exp1-{c}-{m}"]
            assert row["measured"] == pytest.approx(HAND[name][m]), (c, m)
            assert row["low"] <= row["measured"] <= row["high"]
            assert row["runs"] == 1 and row["verdict"] == V.INDICATIVE and V.reasons_of(row) == [V.R_FEW_RUNS]
            assert math.isnan(row["difference"])
    assert df.loc[[f"exp1-{c}-accuracy" for c in ("benign", "early", "pro")], "measured"].nunique() == 3


def test_epoch_claims_read_that_epoch_not_the_last(tmp_path):
    hist = [[{"epoch": e, "train_accuracy": 0.5 if e == 10 else 0.99} for e in range(1, 13)]]
    _write(tmp_path, "xincept_khan2024", "xincept-xgboost", Y8, _probs(P8, 4), history=hist,
           folds=[{"train": 200, "val": 0, "test": 80}])
    df = _table(tmp_path, "xincept_khan2024", ["xincept-train_accuracy-epoch10", "xincept-f1-epoch20"])
    row = df.loc["xincept-train_accuracy-epoch10"]
    assert row["epoch"] == 10 and row["measured"] == pytest.approx(0.5)
    from leukcore.metrics import wilson_interval

    assert (row["low"], row["high"]) == pytest.approx(wilson_interval(0.5, 200))
    # the predictions are of epoch 12, not 20
    assert df.loc["xincept-f1-epoch20", "verdict"] == V.NOT_RUN
    assert V.reasons_of(df.loc["xincept-f1-epoch20"]) == [V.R_EPOCH]


def test_epoch_missing_from_the_history_is_not_run(tmp_path):
    hist = [[{"epoch": e, "train_accuracy": 0.9} for e in range(1, 6)]]
    _write(tmp_path, "xincept_khan2024", "xincept-xgboost", Y8, _probs(P8, 4), history=hist)
    row = _table(tmp_path, "xincept_khan2024", ["xincept-train_accuracy-epoch10"]).loc["xincept-train_accuracy-epoch10"]
    assert row["verdict"] == V.NOT_RUN and V.reasons_of(row) == [V.R_EPOCH] and math.isnan(row["measured"])


def test_unstated_averaging_reports_macro_and_weighted(tmp_path):
    rng = np.random.default_rng(3)
    y = rng.choice(4, 400, p=[0.1, 0.2, 0.3, 0.4])
    pred = np.where(rng.random(400) < np.array([0.5, 0.7, 0.9, 0.95])[y], y, (y + 1) % 4)
    _write(tmp_path, "dscnet_vijayalakshmi", "dscnet", y, _probs(pred, 4))
    df = _table(tmp_path, "dscnet_vijayalakshmi", ["dscnet-f1", "dscnet-weighted-f1"])
    row = df.loc["dscnet-f1"]
    assert row["measured"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert row["measured_weighted"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    stated = df.loc["dscnet-weighted-f1"]
    assert stated["measured"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert math.isnan(stated["measured_weighted"])


def test_binary_claim_without_averaging_uses_the_positive_class(tmp_path):
    y = np.tile([0, 0, 0, 1, 1, 1, 1, 1], 10)
    pred = np.tile([0, 0, 1, 1, 1, 1, 0, 1], 10)
    _write(tmp_path, "logmh_haque2024", "binary-inception_resnet_v2", y, _probs(pred, 2), classes=["hem", "all"],
           dataset="cnmc-2019", positive="all")
    df = _table(tmp_path, "logmh_haque2024", ["binary-inception_resnet_v2-precision",
                                                "binary-inception_resnet_v2-sensitivity-hem"])
    # positive class 'all' (label 1): TP 4, FP 1 per 8 -> precision 4/5
    assert df.loc["binary-inception_resnet_v2-precision", "measured"] == pytest.approx(0.8)
    assert math.isnan(df.loc["binary-inception_resnet_v2-precision", "measured_weighted"])
    # class 'hem' (label 0): 2 of 3 recalled
    assert df.loc["binary-inception_resnet_v2-sensitivity-hem", "measured"] == pytest.approx(2 / 3)


def test_folds_in_one_record_are_runs(tmp_path):
    # Haque: each fold's model is tested on the same held-out images; a `fold` column tells them apart
    y = np.tile([0, 1, 1, 0, 1], 8)
    preds = [np.where(np.arange(40) % 7 == k, 1 - y, y) for k in range(3)]
    prob = np.vstack([_probs(p, 2) for p in preds])
    ids = [f"img{i}" for i in range(40)] * 3
    _write(tmp_path, "logmh_haque2024", "binary-inception_resnet_v2", np.tile(y, 3), prob, classes=["hem", "all"],
           dataset="cnmc-2019", positive="all", ids=ids, extra_cols={"fold": np.repeat([0, 1, 2], 40)},
           folds=[{"train": 80, "val": 10, "test": 40}] * 3)
    row = _table(tmp_path, "logmh_haque2024", ["binary-inception_resnet_v2-accuracy"]).loc[
        "binary-inception_resnet_v2-accuracy"]
    assert row["runs"] == 3
    assert row["measured"] == pytest.approx(np.mean([(p == y).mean() for p in preds]))
    assert row["verdict"] in V.FIRM  # 3 runs, paper profile, the paper's dataset
    assert row["reasons"] == ""


def test_out_of_fold_predictions_split_by_fold_sizes(tmp_path):
    # XIncept: one record, predictions of 2 folds concatenated in fold order (sizes in split.folds)
    y = np.tile([0, 1, 2, 3], 20)
    pred = y.copy()
    pred[40:60] = (y[40:60] + 1) % 4  # the second fold gets half wrong
    _write(tmp_path, "xincept_khan2024", "xincept-xgboost", y, _probs(pred, 4),
           folds=[{"train": 40, "test": 40}, {"train": 40, "test": 40}])
    row = _table(tmp_path, "xincept_khan2024", ["xincept-xgboost-accuracy"]).loc["xincept-xgboost-accuracy"]
    assert row["runs"] == 2 and row["measured"] == pytest.approx((1.0 + 0.5) / 2)
    assert row["verdict"] == V.INDICATIVE and V.reasons_of(row) == [V.R_FEW_RUNS]


def test_seeds_pool_and_three_make_a_firm_verdict(tmp_path):
    y = np.tile([0, 1, 2, 3], 100)
    for seed, wrong in enumerate((0, 4, 8)):
        pred = np.where(np.arange(400) % 100 < wrong, (y + 1) % 4, y)
        _write(tmp_path, "dscnet_vijayalakshmi", "dscnet", y, _probs(pred, 4), seed=seed)
    row = _table(tmp_path, "dscnet_vijayalakshmi", ["dscnet-accuracy"]).loc["dscnet-accuracy"]
    assert row["runs"] == 3
    assert row["measured"] == pytest.approx(np.mean([1.0, 0.96, 0.92]))
    assert row["records"].count(";") == 2
    assert row["verdict"] in V.FIRM
    expected = "reproduced" if row["low"] <= 0.9985 <= row["high"] else "lower" if row["high"] < 0.9985 else "higher"
    assert row["verdict"] == expected
    assert row["difference"] == pytest.approx(row["measured"] - 0.9985)


def test_collapsed_run_failed_to_train_with_no_difference(tmp_path):
    y = np.tile([0, 1, 2, 3], 50)
    for seed in range(3):
        _write(tmp_path, "dscnet_vijayalakshmi", "vgg16", y, _probs(np.ones_like(y), 4), seed=seed)
    df = _table(tmp_path, "dscnet_vijayalakshmi", ["vgg16-accuracy", "vgg16-f1"])
    for cid in ("vgg16-accuracy", "vgg16-f1"):
        row = df.loc[cid]
        assert row["verdict"] == V.FAILED and V.reasons_of(row)[0] == V.R_COLLAPSED
        assert row["collapsed"] == "3 of 3"
        assert math.isnan(row["difference"])
    assert df.loc["vgg16-accuracy", "measured"] == pytest.approx(0.25)  # the numbers are still shown


def test_chance_balanced_accuracy_failed_to_train(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    pred = rng.integers(0, 4, 200)  # guesses: no class dominates, balanced accuracy ~ 1/4
    for seed in range(3):
        _write(tmp_path, "dscnet_vijayalakshmi", "dscnet", y, _probs(pred, 4), seed=seed)
    row = _table(tmp_path, "dscnet_vijayalakshmi", ["dscnet-accuracy"]).loc["dscnet-accuracy"]
    assert row["verdict"] == V.FAILED and V.reasons_of(row) == [V.R_CHANCE]


def test_not_comparable_reasons(tmp_path):
    y = np.tile([0, 1, 2, 3], 25)
    good = _probs(y, 4)
    # no ImageNet weights for a model the protocol wants fine-tuned
    _write(tmp_path, "dscnet_vijayalakshmi", "vgg16", y, good, settings={"pretrained": True},
           deviations=["ImageNet weights unavailable: trained from scratch"])
    # a detector measured as a classifier (protocol `comparability:`)
    _write(tmp_path, "dscnet_vijayalakshmi", "darknet53", y, good, settings={"pretrained": False})
    # a substitute dataset
    _write(tmp_path / "k", "dscnet_kaur2023", "dscnet-kl-aug", y, good, is_papers=False,
           stands_in_for="multicancer-all")
    df = _table(tmp_path, "dscnet_vijayalakshmi", ["vgg16-accuracy", "darknet53-accuracy"])
    assert df.loc["vgg16-accuracy", "verdict"] == V.NOT_COMPARABLE
    assert V.reasons_of(df.loc["vgg16-accuracy"]) == [V.R_IMAGENET, V.R_FEW_RUNS]
    assert V.reasons_of(df.loc["darknet53-accuracy"]) == [V.R_DETECTOR, V.R_FEW_RUNS]
    k = _table(tmp_path / "k", "dscnet_kaur2023", ["dscnet-kl-aug-accuracy"]).loc["dscnet-kl-aug-accuracy"]
    assert (k["verdict"], V.reasons_of(k)) == (V.NOT_COMPARABLE, [V.R_SUBSTITUTE, V.R_FEW_RUNS])
    # the dataset the runs used, beside the paper's
    assert (k["dataset"], k["paper_dataset"]) == ("taleqani-all", "multicancer-all")
    assert k["measured"] == pytest.approx(1.0) and math.isnan(k["difference"])


def test_reduced_profile_and_not_run_reasons(tmp_path, monkeypatch):
    y = np.tile([0, 1, 2, 3], 25)
    _write(tmp_path, "dscnet_vijayalakshmi", "dscnet", y, _probs(y, 4), profile="cpu")
    row = _table(tmp_path, "dscnet_vijayalakshmi", ["dscnet-accuracy"]).loc["dscnet-accuracy"]
    assert (row["verdict"], V.reasons_of(row), row["profile"]) == (V.INDICATIVE, [V.R_REDUCED, V.R_FEW_RUNS], "cpu")
    monkeypatch.setattr(V, "_dataset_here", lambda ds: False)
    _write(tmp_path, "alnet_jawahar2022", "alexnet", np.tile([0, 1], 10), _probs(np.tile([0, 1], 10), 2),
           classes=["hem", "all"], dataset="synthetic", is_papers=False, stands_in_for="cnmc-2019")
    df = _table(tmp_path, "alnet_jawahar2022", ["alexnet-accuracy", "vgg16-accuracy", "alnet-cv-accuracy"])
    assert (df.loc["alexnet-accuracy", "verdict"], V.reasons_of(df.loc["alexnet-accuracy"])) == \
        (V.NOT_RUN, [V.R_NO_DATA, V.R_SYNTHETIC])
    assert df.loc["alexnet-accuracy", "dataset"] == "synthetic"
    assert (df.loc["vgg16-accuracy", "verdict"], V.reasons_of(df.loc["vgg16-accuracy"])) == (V.NOT_RUN, [V.R_NO_DATA])
    monkeypatch.setattr(V, "_dataset_here", lambda ds: True)
    df = _table(tmp_path, "alnet_jawahar2022", ["vgg16-accuracy"])
    assert V.reasons_of(df.loc["vgg16-accuracy"]) == [V.R_NOT_YET]


# ----------------------------------------------------------------------- exact claims
def test_alnet_parameter_count_is_reproduced_exactly():
    df = V.claims_table("alnet_jawahar2022", records=[], claim_ids=["alnet-params", "alnet-params-batchnorm",
                                                                    "alnet-params-dense_1"]).set_index("claim")
    assert df.loc["alnet-params", "measured"] == 535010 and df.loc["alnet-params", "verdict"] == V.REPRODUCED
    assert df.loc["alnet-params-batchnorm", "measured"] == 128  # Keras counts the moving statistics
    assert df.loc["alnet-params-dense_1", "verdict"] == V.REPRODUCED


def test_taleqani_image_counts_are_reproduced(shared_data, monkeypatch):
    monkeypatch.setenv("LEUKCORE_DATA", str(shared_data))
    V._dataset_here.cache_clear()
    V._dataset_table.cache_clear()
    ids = ["count-images-benign", "count-images-early", "count-images-pre", "count-images-pro",
           "count-images-total", "count-images-total-setup", "count-subjects-total"]
    df = V.claims_table("dscnet_vijayalakshmi", records=[], claim_ids=ids).set_index("claim")
    for cid, n in zip(ids[:5], (504, 985, 963, 804, 3256)):
        assert df.loc[cid, "measured"] == n and df.loc[cid, "verdict"] == V.REPRODUCED
    # the setup's 20,000 images are not what is on disk: both numbers shown
    assert (df.loc["count-images-total-setup", "measured"], df.loc["count-images-total-setup", "claimed"]) == (3256, 20000)
    assert df.loc["count-images-total-setup", "verdict"] == V.DIFFERS
    assert (df.loc["count-subjects-total", "verdict"], V.reasons_of(df.loc["count-subjects-total"])) == \
        (V.NOT_RUN, [V.R_NOT_ON_DISK])
    # exact counts carry no interval
    assert df.loc[ids[:5], "low"].isna().all() and df.loc[ids[:5], "high"].isna().all()


def test_absent_dataset_counts_are_not_run(monkeypatch):
    monkeypatch.setattr(V, "_dataset_here", lambda ds: False)
    row = V.claims_table("dscnet_kaur2023", records=[], claim_ids=["count-images-benign"]).iloc[0]
    assert (row["verdict"], V.reasons_of(row)) == (V.NOT_RUN, [V.R_NO_DATA])


def test_every_claim_has_a_row_and_non_firm_rows_a_reason():
    df = V.claims_table("all", records=[])
    from leukcore.evaluation.claims import load_claims

    assert len(df) == len(load_claims())
    assert set(V.COLUMNS) <= set(df.columns)
    firm = df["verdict"].isin(V.FIRM + (V.DIFFERS,))
    assert (df.loc[~firm, "reasons"].str.len() > 0).all()
    assert (df.loc[firm, "reasons"] == "").all()
    for _, row in df.iterrows():
        reasons = V.reasons_of(row)
        assert set(reasons) <= set(V.REASONS)
        assert reasons == [r for r in V.REASON_ORDER if r in reasons]  # the fixed order
        if reasons:
            assert row["verdict"] == V.REASONS[reasons[0]][0]  # the strongest decides
    assert df["averaging"].notna().all() and (df["averaging"].str.len() > 0).all()  # always written
    assert set(df["unit"]) <= {"fraction", "count", "params", "seconds", "unitless"}


# ----------------------------------------------------------------------- CLI




def test_mislabelled_claim_is_compared_with_what_it_is(tmp_path):
    # Section V's "specificity" 96.65 is Table 2's recall (ledger actual_metric): measured as sensitivity
    rng = np.random.default_rng(5)
    y = rng.choice(4, 400, p=[0.1, 0.2, 0.3, 0.4])
    pred = np.where(rng.random(400) < np.array([0.5, 0.7, 0.9, 0.95])[y], y, (y + 1) % 4)
    _write(tmp_path, "dscnet_vijayalakshmi", "dscnet", y, _probs(pred, 4))
    row = _table(tmp_path, "dscnet_vijayalakshmi", ["conclusion-specificity"]).loc["conclusion-specificity"]
    assert (row["metric"], row["printed_metric"]) == ("sensitivity", "specificity")
    assert row["measured"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert row["measured_weighted"] == pytest.approx(skm.recall_score(y, pred, average="weighted"))


def test_no_reason_says_a_dataset_that_is_here_is_absent(monkeypatch):
    monkeypatch.setattr(V, "_dataset_here", lambda ds: ds == "taleqani-all")
    ids = ["dscnet-accuracy", "vgg16-f1", "darknet53-accuracy"]
    df = V.claims_table("dscnet_vijayalakshmi", records=[], claim_ids=ids)
    assert set(df["reasons"]) == {V.R_NOT_YET}
    df = V.claims_table("alnet_jawahar2022", records=[], claim_ids=["alnet-cv-accuracy"])
    assert set(df["reasons"]) == {V.R_NO_DATA}


def test_aggregate_pools_its_fold_experiments_as_runs(tmp_path):
    # ALNet's 3-fold mean (experiment alnet-cv) pools the records of alnet-fold0..2
    y = np.tile([0, 1, 1, 0], 25)
    accs = []
    for k in range(3):
        pred = np.where(np.arange(100) < 10 * k, 1 - y, y)
        accs.append((pred == y).mean())
        _write(tmp_path, "alnet_jawahar2022", f"alnet-fold{k}", y, _probs(pred, 2), classes=["hem", "all"],
               dataset="cnmc-2019", positive="all")
    _write(tmp_path, "alnet_jawahar2022", "alnet-cv", np.tile(y, 3), _probs(np.tile(y, 3), 2),
           classes=["hem", "all"], dataset="cnmc-2019", positive="all", ids=[f"i{i}" for i in range(300)])
    import json

    path = tmp_path / "alnet_jawahar2022" / "paper" / "alnet-cv.json"
    rec = json.loads(path.read_text())
    rec["spec"] = {"id": "alnet-cv", "route": "aggregate", "of": ["alnet-fold0", "alnet-fold1", "alnet-fold2"]}
    path.write_text(json.dumps(rec))
    row = _table(tmp_path, "alnet_jawahar2022", ["alnet-cv-accuracy"]).loc["alnet-cv-accuracy"]
    assert row["runs"] == 3 and row["measured"] == pytest.approx(np.mean(accs))


def test_baseline_parameter_counts_are_compared_as_the_paper_counted_them():
    # ALNet's Table 8 prints 1000-class ImageNet counts; ResNet-50's 25,636,712 is the Keras application's total
    # (batch-norm moving statistics and convolution biases included): counted that way it is reproduced exactly
    ids = ["resnet50-params", "alexnet-params"]
    df = V.claims_table("alnet_jawahar2022", records=[], claim_ids=ids).set_index("claim")
    assert df.loc["resnet50-params", "measured"] == 25_636_712 and df.loc["resnet50-params", "verdict"] == V.REPRODUCED
    # torchvision's one-tower AlexNet at 1000 classes has 61,100,840 weights: another model than the one the paper
    # counted, so not comparable, and both numbers are in the note (ours as trained: 2 classes, 57,012,034)
    a = df.loc["alexnet-params"]
    assert (a["measured"], a["verdict"], V.reasons_of(a)) == (61_100_840, V.NOT_COMPARABLE, [V.R_OTHER_MODEL])
    assert "61,100,840" in a["note"] and "57,012,034" in a["note"]
    assert math.isnan(a["difference"]) and math.isnan(a["low"])


def test_count_params_conventions_by_hand():
    import torch.nn as nn

    net = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.Linear(8, 2))
    # trainable: conv 3*8*9 = 216, BN 2*8 = 16, linear 8*2 + 2 = 18 -> 250
    assert V.count_params(net) == 250
    # keras: + BN moving mean and variance (16) + a bias for the bias-free convolution (8) -> 274
    assert V.count_params(net, "keras") == 274
    with pytest.raises(ValueError, match="valid"):
        V.count_params(net, "matlab")


def test_identical_predictions_are_one_measurement_shown_again(tmp_path):
    y = np.tile([0, 1, 2, 3], 25)
    pred = np.where(np.arange(100) < 10, (y + 1) % 4, y)
    for loss in ("kl", "mce", "sparse_ce"):
        _write(tmp_path, "dscnet_kaur2023", f"dscnet-{loss}-aug", y, _probs(pred, 4), is_papers=False,
               stands_in_for="multicancer-all")
    other = np.where(np.arange(100) < 20, (y + 1) % 4, y)
    _write(tmp_path, "dscnet_kaur2023", "alexnet-kl-aug", y, _probs(other, 4), is_papers=False,
           stands_in_for="multicancer-all")
    ids = ["dscnet-kl-aug-accuracy", "dscnet-mce-aug-accuracy", "dscnet-sparse_ce-aug-accuracy",
           "alexnet-kl-aug-accuracy"]
    df = _table(tmp_path, "dscnet_kaur2023", ids)
    same = df["same_as"].fillna("").to_dict()
    # the first of the three is the measurement; the others repeat it; AlexNet predicts otherwise
    assert sorted(v for v in same.values() if v) == ["dscnet-kl-aug", "dscnet-kl-aug"] or \
        sorted(v for v in same.values() if v) == ["dscnet-mce-aug", "dscnet-mce-aug"]
    assert same["alexnet-kl-aug-accuracy"] == ""


def test_no_interval_outside_its_quantitys_range_over_the_committed_records():
    df = V.claims_table("all")
    frac = df[df["unit"] == "fraction"]
    for col in ("measured", "low", "high", "low_weighted", "high_weighted"):
        v = frac[col].dropna()
        assert ((v >= 0) & (v <= 1)).all(), col
    both = frac.dropna(subset=["low", "high"])
    assert (both["low"] <= both["measured"] + 1e-12).all() and (both["measured"] <= both["high"] + 1e-12).all()
    exact = df[df["metric"].isin(V.EXACT_METRICS)]
    assert exact["low"].isna().all() and exact["high"].isna().all()  # no interval on an exact count
