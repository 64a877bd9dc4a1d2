"""Records a reader can verify: damaged or self-contradicting records stop every reader instead of
vanishing, and ``leukcore records verify`` checks each record against itself and its surroundings."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leukcore import verify as V
from leukcore.cli import main
from leukcore.metrics import bootstrap_ci, compute_metrics
from leukcore.runs.experiments import find_record
from leukcore.runs.inputs import experiment_data
from leukcore.runs.protocols import get_experiment
from leukcore.runs.profiles import get_profile
from leukcore.runs.records import (
    RecordError,
    load_records,
    read_complete,
    read_record,
    settings_hash,
    write_record,
)

ROOT = Path(__file__).resolve().parents[1]
PAPER, EXPERIMENT = "dscnet_vijayalakshmi", "dscnet"
NAMES = ["Benign", "Early", "Pre", "Pro"]
#: 8 test images: true labels and probabilities with few digits (the predictions file keeps 6)
Y = np.array([0, 0, 1, 1, 2, 2, 3, 3])
P = np.array([[.7, .1, .1, .1], [.1, .7, .1, .1], [.1, .7, .1, .1], [.1, .6, .2, .1],
              [.1, .1, .6, .2], [.2, .1, .5, .2], [.1, .1, .1, .7], [.1, .1, .2, .6]])


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture()
def repo(tmp_path) -> Path:
    """A git repository with one commit: the history the records' commits are checked against."""
    r = tmp_path / "repo"
    r.mkdir()
    (r / "a.txt").write_text("a\n")
    _git(r, "init", "-q")
    _git(r, "add", "-A")
    _git(r, "commit", "-qm", "init")
    return r


@pytest.fixture()
def world(tmp_path, repo):
    """A results folder with one complete, consistent record of a smoke run on the synthetic stand-in
    (no data here), made at the repository's commit; returns (results, data root, repo, record path)."""
    results, data = tmp_path / "results", tmp_path / "nodata"
    data.mkdir()
    ed = experiment_data(PAPER, get_experiment(PAPER, EXPERIMENT), get_profile("smoke"), str(data), seed=0)
    assert ed.dataset_id == "synthetic"
    settings = {"train": {"lr": 0.001}, "image_size": 64}
    head = _git(repo, "rev-parse", "HEAD").strip()
    rec = {"status": "complete", "paper": PAPER, "experiment": EXPERIMENT, "profile": "smoke", "seed": 0,
           "settings": settings, "settings_hash": settings_hash(settings), "dataset": ed.describe(),
           "class_names": NAMES, "metrics": compute_metrics(Y, P, class_names=NAMES),
           "intervals": {"accuracy": bootstrap_ci(Y, P, "accuracy", n=50, seed=0, class_names=NAMES)},
           "commit": head, "code": {"commit": head, "dirty": False, "source_sha256": "0" * 64}}
    preds = pd.DataFrame({"id": [f"img{i}" for i in range(len(Y))], "y_true": Y,
                          **{f"p_{k}": P[:, k] for k in range(4)}})
    path = write_record(rec, predictions=preds, root=results)
    return results, data, repo, path


def _verify(world, **kw) -> V.Report:
    results, data, repo, _ = world
    return V.verify_records(root=results, data_root=str(data), repo=repo, **kw)


def _edit(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_a_consistent_record_passes_every_check(world):
    rep = _verify(world)
    assert rep.problems == [] and rep.records == 1 and rep.data_checked == 1
    assert rep.summary().startswith("records verify: 1 records (0 not complete), 0 errors, 0 warnings")


def test_a_truncated_record_stops_the_readers_and_fails_verify(world):
    results, _, _, path = world
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(RecordError, match=r"dscnet\.json: not a valid run record .*delete it and rerun the "
                                          r"experiment \(leukcore reproduce --paper dscnet_vijayalakshmi"):
        load_records(PAPER, root=results)
    with pytest.raises(RecordError, match="not a valid run record"):
        read_complete(path, 0)  # a rerun does not take it for a missing run either
    from leukcore.evaluation.verdicts import claims_table

    with pytest.raises(RecordError, match="not a valid run record"):
        claims_table(PAPER, root=results)
    rep = _verify(world)
    assert [p.level for p in rep.problems] == ["ERROR"] and "not a valid run record" in rep.problems[0].what
    assert rep.problems[0].path.endswith("dscnet.json")


def test_an_edited_metric_contradicts_the_confusion_matrix(world):
    results, _, _, path = world
    _edit(path, lambda d: d["metrics"].update(accuracy=0.999))
    with pytest.raises(RecordError, match=r"contradicts itself: metrics\.accuracy: stored 0\.999, its confusion "
                                          r"matrix gives 0\.875"):
        load_records(PAPER, root=results)
    what = [p.what for p in _verify(world).errors]
    assert any(w.startswith("contradicts itself: metrics.accuracy: stored 0.999") for w in what)
    # the interval's point no longer is the stored metric either (7 of 8 right: 0.875)
    assert any("intervals.accuracy.point: 0.875, the stored metric is 0.999" in w for w in what)


def test_an_edited_auc_disagrees_with_the_predictions_file(world):
    _, _, _, path = world
    _edit(path, lambda d: d["metrics"].update(auc=0.5))
    what = [p.what for p in _verify(world).errors]
    assert len(what) == 1 and "metrics.auc: stored 0.5, its predictions file gives" in what[0]


def test_a_missing_predictions_file(world):
    results, _, _, path = world
    pred = path.with_name(json.loads(path.read_text())["predictions"])
    pred.unlink()
    rep = _verify(world)
    assert len(rep.errors) == 1 and f"{pred.name}: predictions of" in rep.errors[0].what
    assert "are missing; restore the committed file" in rep.errors[0].what


def test_a_stale_settings_hash(world):
    _, _, _, path = world
    _edit(path, lambda d: d["settings"]["train"].update(lr=0.01))
    (err,) = _verify(world).errors
    assert err.what.startswith("settings_hash ") and "does not recompute from its settings" in err.what


def test_another_datasets_fingerprint(world):
    _, _, _, path = world
    _edit(path, lambda d: d["dataset"].update(fingerprint="0123456789abcdef"))
    (err,) = _verify(world).errors
    assert "dataset fingerprint 0123456789abcdef is not that of synthetic" in err.what


def test_an_unknown_commit_and_a_dirty_tree(world):
    results, data, repo, path = world
    _edit(path, lambda d: d.update(commit="0" * 40))
    (err,) = _verify(world).errors
    assert err.what.startswith("commit 000000000000 is not in this repository's history")
    # a dirty tree with no diff stored: a warning, and verify still succeeds
    head = _git(repo, "rev-parse", "HEAD").strip()
    _edit(path, lambda d: d.update(commit=head + "+dirty", code={"commit": head, "dirty": True}))
    rep = _verify(world)
    assert rep.errors == [] and len(rep.warnings) == 1 and "cannot be rerun exactly" in rep.warnings[0].what
    # ... and with its diff stored beside it, nothing; an altered diff is an error
    rec = {k: v for k, v in read_record(path).items() if k != "_path"}
    write_record({**rec, "_diff": "diff --git a/x b/x\n"}, path=path)
    assert _verify(world).problems == []
    diff = path.with_name(json.loads(path.read_text())["code"]["diff"])
    diff.write_text("edited\n")
    (err,) = _verify(world).errors
    assert "does not match its record" in err.what


def test_a_record_in_progress_is_not_an_error_and_resume_still_runs(world):
    results, _, _, path = world
    _edit(path, lambda d: d.update(status="partial", metrics={"accuracy": 0.999}))  # half-done: nothing agrees yet
    assert load_records(PAPER, root=results) == []
    assert [r["status"] for r in load_records(PAPER, root=results, complete_only=False)] == ["partial"]
    assert read_complete(path, 0) is None  # what a rerun looks at: no complete record, so it runs (and resumes)
    assert find_record(PAPER, EXPERIMENT, "smoke", results_dir=results, seed=0) is None
    rep = _verify(world)
    assert rep.problems == [] and rep.not_complete == 1


def test_intervals_contain_their_point_within_the_quantitys_range():
    rec = {"intervals": {"accuracy": {"point": 0.5, "low": 0.6, "high": 0.7}},
           "results": {"effects": {"grey": {"mean": -0.5, "low": -0.9, "high": -0.1}},
                       "arms": {"grey": {"mean": 0.5, "low": -0.1, "high": 1.1}}},
           "rows": [{"metric": "paired difference", "point": -0.5, "low": -1.2, "high": 0.2},
                    {"metric": "max |loss difference|", "point": 3.0, "low": None, "high": None}]}
    assert V.interval_problems(rec) == [
        "intervals.accuracy: the interval [0.6, 0.7] does not contain its point 0.5",
        "results.arms.grey: the interval [-0.1, 1.1] leaves the range [0, 1] of its quantity",
        "rows[0]: the interval [-1.2, 0.2] leaves the range [-1, 1] of its quantity"]


def test_rounding_slack_of_an_auc_is_half_the_tied_pairs():
    # 2 positives x 2 negatives; one (positive, negative) pair tied at 0.5: slack 1 / (2 * 4)
    y = np.array([1, 0, 1, 0])
    assert V._tie_slack(y, np.array([0.5, 0.5, 0.9, 0.1]), y == 1) == pytest.approx(0.125)
    assert V._tie_slack(y, np.array([0.4, 0.3, 0.9, 0.1]), y == 1) == 0.0


def test_cli_exit_status_and_summary(world, capsys):
    results, data, _, path = world
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    _edit(path, lambda d: d.update(commit=head + "+dirty", code={"commit": head, "dirty": True}))
    args = ["records", "verify", "--results-dir", str(results), "--data-root", str(data)]
    assert main(args) == 0  # warnings alone
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("WARNING: ") and "cannot be rerun exactly" in out[0]
    assert out[-1].startswith("records verify: 1 records (0 not complete), 0 errors, 1 warnings")
    _edit(path, lambda d: d["metrics"].update(accuracy=0.999))
    assert main(args) == 1
    assert "ERROR: " in capsys.readouterr().out


@pytest.fixture()
def audit_copy(tmp_path):
    """The committed records of one seeded audit (its arms and summary) in a results folder of their own."""
    src = ROOT / "results" / "audits" / "audit"
    if not (src / "leakage_duplicates.json").is_file():
        pytest.skip("no committed leakage_duplicates records")
    dst = tmp_path / "results" / "audits" / "audit"
    shutil.copytree(src / "leakage_duplicates", dst / "leakage_duplicates")
    shutil.copy(src / "leakage_duplicates.json", dst)
    return tmp_path / "results"


def test_an_audit_summary_is_what_its_arm_records_give(audit_copy):
    from leukcore.audits.seeded import summarise_audit

    summary = audit_copy / "audits" / "audit" / "leakage_duplicates.json"
    assert not [p for p in V.verify_records("audits", root=audit_copy).errors if p.path.endswith(summary.name)]
    was = json.loads(summary.read_text())["results"]["effects"]["random"]["mean"]
    _edit(summary, lambda d: d["results"]["effects"]["random"].update(mean=0.0))  # inside its interval
    errs = [p.what for p in V.verify_records("audits", root=audit_copy).errors if p.path.endswith(summary.name)]
    assert len(errs) == 1 and errs[0].startswith("does not agree with its arm records: results.effects.random.mean: "
                                                 f"stored 0.0, its arm records give {was!r}")
    assert "leukcore audits summarise --profile audit" in errs[0]
    # a damaged arm record stops the summary instead of dropping its seed
    arm = audit_copy / "audits" / "audit" / "leakage_duplicates" / "random.seed1.json"
    arm.write_bytes(arm.read_bytes()[:300])
    with pytest.raises(RecordError, match=r"random\.seed1\.json: not a valid run record .*rerun the audit "
                                          r"\(leukcore audits run --audit leakage_duplicates --profile audit\)"):
        summarise_audit("leakage_duplicates", "audit", results_dir=audit_copy, write=False)
