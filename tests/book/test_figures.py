"""leukcore.book.figures: the figures show the tables' numbers (forest plot, ROC area, calibration)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from leukcore.book import figures as F
from leukcore.metrics import compute_metrics


def _claims_frame() -> pd.DataFrame:
    rows = [  # claimed, measured, low, high, verdict, profile
        ("a", 0.95, 0.90, 0.88, 0.92, "indicative", "cpu"),
        ("b", 0.99, 0.97, 0.96, 0.98, "lower", "paper"),
        ("c", 0.90, 0.25, 0.20, 0.30, "failed to train", "paper"),
        ("d", 0.80, 0.81, 0.78, 0.84, "reproduced", "paper"),
        ("e", 0.70, None, None, None, "not run", None),
        ("f", 0.85, 0.60, 0.55, 0.65, "indicative", "smoke"),
    ]
    df = pd.DataFrame(rows, columns=["claim", "claimed", "measured", "low", "high", "verdict", "profile"])
    df["paper"] = "p"
    df["model"] = "m"
    df["unit"] = "percent"
    return df


def test_sort_claims_puts_firm_paper_rows_first():
    order = list(F.sort_claims(_claims_frame())["claim"])
    assert order == ["d", "b", "a", "f", "c", "e"]


def test_forest_plot_shows_the_tables_numbers():
    df = _claims_frame()
    fig = F.plot_forest(df)
    ax = fig.axes[0]
    d = F.forest_data(df)
    assert list(d["claim"]) == ["d", "b", "a", "f", "c"]  # the unmeasured claim is left out
    y = np.arange(len(d))[::-1]
    by_gid = {c.get_gid(): c for c in ax.collections}
    claimed = by_gid["claimed"].get_offsets()
    np.testing.assert_allclose(claimed[:, 0], d["claimed"])
    np.testing.assert_allclose(claimed[:, 1], y)
    segs = by_gid["interval"].get_segments()
    np.testing.assert_allclose([s[0][0] for s in segs], d["low"])
    np.testing.assert_allclose([s[1][0] for s in segs], d["high"])
    # firm, indicative and failed runs are separate artists (filled, hollow, crosses)
    firm = by_gid["measured-firm"].get_offsets()
    np.testing.assert_allclose(firm[:, 0], [0.81, 0.97])
    hollow = by_gid["measured-indicative"]
    np.testing.assert_allclose(hollow.get_offsets()[:, 0], [0.90, 0.60])
    assert np.allclose(hollow.get_facecolors()[:, :3], 1.0)  # white inside
    np.testing.assert_allclose(by_gid["measured-failed to train"].get_offsets()[:, 0], [0.25])
    # zoomed to the data, not 0..1
    lo, hi = ax.get_xlim()
    assert 0.15 < lo < 0.20 and hi <= 1.02
    plt.close(fig)


def test_summary_axes_are_zoomed_to_the_data():
    df = _claims_frame()
    fig = F.plot_summary(df)
    ax = fig.axes[0]
    x0, x1 = ax.get_xlim()
    assert x0 > 0.6 and x1 < 1.02  # claimed values span 0.80..0.99
    plt.close(fig)


def test_macro_roc_area_is_the_macro_one_vs_rest_auc():
    rng = np.random.default_rng(3)
    n, c = 120, 4
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[y]
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    prob = np.round(prob, 2)  # tied scores: vertical and diagonal steps
    prob = prob / prob.sum(1, keepdims=True)
    fpr, tpr, area, per = F.macro_roc(y, prob)
    want = roc_auc_score(y, prob, multi_class="ovr", average="macro")
    assert area == pytest.approx(want, abs=1e-12)
    assert area == pytest.approx(compute_metrics(y, prob)["auc"], abs=1e-12)
    assert np.all(np.diff(fpr) >= 0) and tpr[0] == 0 and tpr[-1] == 1
    for k, (_, _, a) in enumerate(per):
        assert a == pytest.approx(roc_auc_score(y == k, prob[:, k]), abs=1e-12)


def _record(tmp_path, y, prob, names, cm=None, experiment="dscnet", paper="dscnet_vijayalakshmi", positive=None):
    cols = {f"p_{k}": prob[:, k] for k in range(prob.shape[1])}
    pd.DataFrame({"id": [f"img{i}.jpg" for i in range(len(y))], "y_true": y, **cols}).to_csv(
        tmp_path / "r.predictions.csv", index=False)
    m = compute_metrics(y, prob, names, positive=positive)
    if cm is not None:
        m["confusion_matrix"] = cm
    return {"paper": paper, "experiment": experiment, "profile": "cpu", "seed": 0, "class_names": names,
            "metrics": m, "predictions": "r.predictions.csv", "_path": str(tmp_path / "r.json"),
            "dataset": {"id": "taleqani-all"}, "device": "cpu"}


def test_binary_roc_is_the_positive_class_curve_of_the_table(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    p1 = np.clip(0.35 * y + rng.uniform(0, 0.65, 80), 0, 1)
    prob = np.column_stack([1 - p1, p1])
    rec = _record(tmp_path, y, prob, ["hem", "all"], positive="hem", paper="alnet_jawahar2022", experiment="alnet")
    c = F.roc_for_record(rec)
    assert c["area"] == pytest.approx(rec["metrics"]["auc"], abs=1e-12)
    assert c["area"] == pytest.approx(roc_auc_score(y == 0, prob[:, 0]), abs=1e-12)
    assert "hem vs rest" in c["label"]
    fig = F.plot_roc([rec])
    assert "AUC of the table" in fig.axes[0].get_legend().get_title().get_text()
    plt.close(fig)


def test_ece_of_a_hand_made_example():
    y = np.array([0, 1, 0, 1])
    prob = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    # bin (0.8, 0.9]: confidence 0.9, accuracy 1/2 -> |0.4| * 2/4; bin (0.5, 0.6]: 0.6 vs 1 -> 0.4 * 2/4
    assert F.expected_calibration_error(y, prob, n_bins=10) == pytest.approx(0.4)
    b = F.calibration_bins(y, prob, 10)
    assert list(b["n"]) == [2, 2] and list(b["accuracy"]) == [1.0, 0.5]
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert F.expected_calibration_error(np.array([0, 1]), perfect) == pytest.approx(0.0)


def test_collapsed_record_is_skipped_by_gradcam_and_reliability(tmp_path, capsys):
    y = np.array([0, 0, 1, 1, 2, 3])
    prob = np.tile([0.7, 0.1, 0.1, 0.1], (6, 1))  # one class for every image
    rec = _record(tmp_path, y, prob, ["Benign", "Early", "Pre", "Pro"])
    assert not F.trained(rec)
    assert F.plot_grad_cam(rec) is None
    assert "did not train" in capsys.readouterr().out
    assert F.plot_reliability([rec]) is None
    assert F.best_trained_record([rec]) is None
    good = dict(rec, metrics={**rec["metrics"], "confusion_matrix": [[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0],
                                                                     [0, 0, 0, 1]]})
    assert F.trained(good)


def test_confusion_matrix_and_learning_curve_axes_are_labelled(tmp_path):
    y = np.array([0, 1, 2, 3, 0, 1])
    prob = np.eye(4)[[0, 1, 2, 2, 0, 1]] * 0.9 + 0.025
    rec = _record(tmp_path, y, prob, ["Benign", "Early", "Pre", "Pro"])
    rec["history"] = [[{"epoch": 1, "train_loss": 1.2, "val_loss": 1.3, "train_accuracy": 0.4, "val_accuracy": 0.3},
                       {"epoch": 2, "train_loss": 0.8, "val_loss": 0.9, "train_accuracy": 0.6, "val_accuracy": 0.5}]]
    fig = F.plot_confusion_matrices([rec])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Benign", "Early", "Pre", "Pro"]
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    plt.close(fig)
    fig = F.plot_learning_curves([rec])
    assert fig.axes[0].get_xlabel() == "epoch" and fig.axes[0].get_ylabel() == "loss"
    assert any(a.get_ylabel() == "accuracy" for a in fig.axes)
    plt.close(fig)


def test_claims_accessor_has_the_verdict_columns():
    df = F.claims_frame("dscnet_vijayalakshmi")
    from leukcore.evaluation.verdicts import COLUMNS

    assert list(df.columns[: len(COLUMNS)]) == list(COLUMNS)
    firm = df["verdict"].isin(F.FIRM)
    assert df.loc[~firm, "difference"].isna().all()  # blank unless firm
    pct = df["unit"].eq("percent") & df["claimed"].notna()
    assert (df.loc[pct, "claimed"] <= 1.0).all()  # on the measurements' fraction scale


def test_claims_html_escapes_and_puts_the_verdict_first():
    from leukcore.book import tables as T

    df = _claims_frame()
    for col in ("experiment", "metric", "averaging", "class", "dataset", "reason", "printed", "source"):
        df[col] = ""
    df["metric"] = "accuracy"
    df["runs"] = 3
    df["difference"] = df["measured"] - df["claimed"]
    df.loc[0, "model"] = "<script>alert(1)</script>"
    df.loc[0, "verdict"] = "indicative"
    h = T.claims_html("p", df=df)
    assert "<script>" not in h and "&lt;script&gt;alert(1)&lt;/script&gt;" in h
    assert h.count('class="verdict verdict-') == len(df)
    disp = T.claims_display(df)
    assert disp.columns[0] == "verdict"
    by = disp.set_index("claim")
    assert by.loc["d", "difference"] == "+1.00 pp" and by.loc["b", "difference"] == "-2.00 pp"
    assert (by.loc[["a", "c", "e", "f"], "difference"] == "").all()  # blank unless firm
    assert by.loc["b", "measured [95 % interval]"] == "97.00 [96.00, 98.00] %"


def test_injected_parameters_cell_is_folded():
    from leukcore.book.runner import fold_injected_parameters

    nb = {"cells": [{"metadata": {"tags": ["parameters", "hide-cell"]}},
                    {"metadata": {"tags": ["injected-parameters"]}}, {"metadata": {}}]}
    out = fold_injected_parameters(nb)
    assert out["cells"][1]["metadata"]["tags"] == ["injected-parameters", "hide-cell"]
    assert out["cells"][0]["metadata"]["tags"] == ["parameters", "hide-cell"] and out["cells"][2]["metadata"] == {}


@pytest.mark.slow
def test_gradcam_png_from_a_records_weights(tmp_path, shared_data):
    """The ``leukcore figures gradcam`` path end to end: a paper-profile DSCNet record with
    weights beside it (here freshly initialised: the test checks the plumbing, not the model)
    gives panels titled with the record's true and predicted classes, saved as a small PNG."""
    import json
    import shutil

    import torch

    from leukcore.files import PROJECT_ROOT
    from leukcore.runs.protocols import get_experiment
    from leukcore.runs.routes import final_weights_path, new_model
    from leukcore.runs.records import read_record

    src = PROJECT_ROOT / "results" / "dscnet_vijayalakshmi" / "paper" / "dscnet.json"
    if not src.is_file():
        pytest.skip("no committed paper-profile DSCNet record")
    rec = json.loads(src.read_text())
    shutil.copy(src, tmp_path / "dscnet.json")
    shutil.copy(src.with_name(rec["predictions"]), tmp_path / rec["predictions"])
    rec = read_record(tmp_path / "dscnet.json")
    exp = get_experiment(rec["paper"], rec["experiment"])
    torch.manual_seed(0)
    model, _ = new_model(exp.model, len(rec["class_names"]), {**rec["settings"], "pretrained": False},
                          **rec["settings"].get("model_kw", {}))
    final_weights_path(rec).parent.mkdir(parents=True)
    torch.save(model.state_dict(), final_weights_path(rec))
    fig = F.plot_grad_cam(rec, n=4, data_root=shared_data)
    titles = [ax.get_title() for ax in fig.axes[:4]]
    preds = pd.read_csv(tmp_path / rec["predictions"]).set_index("id")
    names = rec["class_names"]
    expect = {f"true {names[int(r.y_true)]}\npred {names[int(np.argmax(r[[c for c in r.index if c.startswith('p_')]]))]}"
              for _, r in preds.iterrows()}
    assert all(t in expect for t in titles), titles  # each panel: the record's true and predicted class
    plt.close(fig)
    out = F.gradcam_png(tmp_path / "dscnet.json", tmp_path / "gc.png", data_root=shared_data, n=4)
    assert out is not None and out.stat().st_size < 150_000
    from PIL import Image

    with Image.open(out) as im:
        assert im.mode == "P" and im.size[0] > 200


def test_forest_never_plots_a_collapsed_reduced_run():
    import pandas as pd

    base = {"paper": "p", "model": "m", "unit": "fraction", "claimed": 0.9, "measured": 0.3, "low": 0.28,
            "high": 0.32, "verdict": "indicative", "runs": 1}
    df = pd.DataFrame([{**base, "claim": "cpu-collapsed", "profile": "cpu", "collapsed": "1 of 1"},
                       {**base, "claim": "cpu-fine", "profile": "cpu", "collapsed": "0 of 1"},
                       {**base, "claim": "paper-collapsed", "profile": "paper", "collapsed": "1 of 3",
                        "verdict": "failed to train"}])
    kept = set(F.forest_data(df)["claim"])
    assert kept == {"cpu-fine", "paper-collapsed"}
