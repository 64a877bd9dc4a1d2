"""leukcore.runs.experiments: one run resolved once, executed, its record reused."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leukcore.runs import experiments, records


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LEUKCORE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))

def test_run_record_reuse_and_force(tmp_path, shared_data):
    """A complete record with the same key is reused; a different seed or --force reruns."""
    kw = dict(data_root=str(shared_data), results_dir=tmp_path, device="cpu")
    rec = experiments.run_experiment("dscnet_vijayalakshmi", "dscnet", "smoke", **kw)
    assert rec["status"] == "complete" and rec["dataset"]["is_papers"]
    path = records.record_path("dscnet_vijayalakshmi", "smoke", "dscnet", tmp_path)
    doc = json.loads(path.read_text())
    for key in ("paper", "experiment", "profile", "dataset", "split", "seed", "settings", "deviations", "commit",
                "versions", "device", "wall_time_s", "metrics", "intervals", "predictions", "history"):
        assert key in doc, key
    assert doc["threads"] == 1  # the smoke profile's setting, recorded beside the device
    preds = records.read_predictions(records.read_record(path))
    assert len(preds) == doc["metrics"]["n"] and np.allclose(preds.filter(like="p_").sum(axis=1), 1, atol=1e-5)
    assert doc["intervals"]["accuracy"]["low"] <= doc["metrics"]["accuracy"] <= doc["intervals"]["accuracy"]["high"]
    again = experiments.get_or_run("dscnet_vijayalakshmi", "dscnet", "smoke", **kw)
    assert again["written_at"] == doc["written_at"]  # reused, not rerun
    assert experiments.find_record("dscnet_vijayalakshmi", "dscnet", "smoke", seed=1, **{k: v for k, v in kw.items()
                                                                             if k != "device"}) is None
    # another seed is another run: its own record beside seed 0's, which it leaves untouched
    one = experiments.get_or_run("dscnet_vijayalakshmi", "dscnet", "smoke", seed=1, **kw)
    assert Path(one["_path"]).name == "dscnet.seed1.json" and one["seed"] == 1
    assert json.loads(path.read_text())["written_at"] == doc["written_at"]
    assert experiments.find_record("dscnet_vijayalakshmi", "dscnet", "smoke", seed=1, **{k: v for k, v in kw.items()
                                                                             if k != "device"})["seed"] == 1
    assert sorted(r["seed"] for r in records.load_records("dscnet_vijayalakshmi", root=tmp_path)) == [0, 1]
    # an incomplete record is never taken as a result
    doc["status"] = "running"
    path.write_text(json.dumps(doc))
    assert [r["seed"] for r in records.load_records("dscnet_vijayalakshmi", root=tmp_path)] == [1]
    assert experiments.find_record("dscnet_vijayalakshmi", "dscnet", "smoke", data_root=str(shared_data),
                         results_dir=tmp_path) is None

def test_aggregate_pools_fold_predictions(tmp_path):
    kw = dict(data_root=str(tmp_path / "nodata"), results_dir=tmp_path / "res", device="cpu")
    (tmp_path / "nodata").mkdir()
    rec = experiments.get_or_run("alnet_jawahar2022", "alnet-cv", "smoke", **kw)
    parts = [records.read_record(records.record_path("alnet_jawahar2022", "smoke", f"alnet-fold{k}", tmp_path / "res"))
             for k in range(3)]
    assert rec["metrics"]["n"] == sum(p["metrics"]["n"] for p in parts)
    assert rec["dataset"]["id"] == "synthetic"

def test_pending_lists_only_missing(tmp_path, shared_data):
    from leukcore.runs import grid as G

    kw = dict(data_root=str(shared_data), results_dir=tmp_path)
    assert G.pending(["dscnet_vijayalakshmi"], "smoke", **kw) == [("dscnet_vijayalakshmi", e)
                                                                 for e in ("dscnet", "vgg16", "darknet53")]
    experiments.run_experiment("dscnet_vijayalakshmi", "dscnet", "smoke", device="cpu", **kw)
    assert ("dscnet_vijayalakshmi", "dscnet") not in G.pending(["dscnet_vijayalakshmi"], "smoke", **kw)

def test_records_write_atomically(tmp_path, monkeypatch):
    rec = {"paper": "p", "profile": "smoke", "experiment": "e", "status": "complete", "x": np.float32(1.5),
           "arr": np.arange(3)}
    path = records.write_record(rec, predictions=pd.DataFrame({"id": ["a"], "p_0": [1.0]}), root=tmp_path)
    assert json.loads(path.read_text())["arr"] == [0, 1, 2]
    import os

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        records.write_record({**rec, "x": 2.0}, root=tmp_path)
    assert json.loads(path.read_text())["x"] == 1.5  # the old record is intact

def test_run_paper_without_training_renders_only_existing_records(tmp_path, shared_data):
    kw = dict(data_root=str(shared_data), results_dir=tmp_path)
    assert experiments.run_paper("dscnet_vijayalakshmi", "smoke", train_missing=False, **kw) == []
    experiments.run_experiment("dscnet_vijayalakshmi", "dscnet", "smoke", device="cpu", **kw)
    recs = experiments.run_paper("dscnet_vijayalakshmi", "smoke", train_missing=False, **kw)
    assert [r["experiment"] for r in recs] == ["dscnet"]


def test_run_paper_records_each_seed(monkeypatch):
    """Every experiment once per seed, seed-major; a missing record is run, never re-entered."""
    from leukcore.runs.protocols import list_experiments

    calls = []
    monkeypatch.setattr(experiments, "find_record", lambda *a, **kw: None)
    monkeypatch.setattr(experiments, "run_experiment", lambda paper, e, profile, **kw: calls.append((e, kw["seed"])) or
                        {"experiment": e, "seed": kw["seed"]})
    recs = experiments.run_paper("dscnet_vijayalakshmi", "smoke", seeds=[0, 1, 2], progress=False)
    exps = [e.id for e in list_experiments("dscnet_vijayalakshmi", "smoke")]
    assert calls == [(e, k) for k in (0, 1, 2) for e in exps]
    assert len(recs) == 3 * len(exps)


def test_a_run_is_resolved_once_at_the_entry(tmp_path, monkeypatch):
    """Profile, experiment, route, settings, seed and device in one object; an aggregate runs its
    parts as runs of the same object, reading the code and the profile once, never re-entering."""
    from leukcore.runs.profiles import get_profile
    from leukcore.runs.protocols import experiment_settings, get_experiment
    from leukcore.runs.routes import get_route

    run = experiments.resolve_run("logmh_haque2024", "binary-rf", "cpu", seed=2, device="cpu")
    assert (run.profile, run.route, run.seed, run.device) == (get_profile("cpu"), get_route("features"), 2, "cpu")
    assert run.settings == experiment_settings("logmh_haque2024", get_experiment("logmh_haque2024", "binary-rf"),
                                               get_profile("cpu"))
    assert run.path == records.record_path("logmh_haque2024", "cpu", "binary-rf", None, 2)
    with pytest.raises(ValueError, match="valid: smoke, cpu, audit, paper"):
        experiments.resolve_run("logmh_haque2024", "binary-rf", "huge")
    counts = {"profile": 0, "code": 0, "resolve": 0}
    real_profile, real_code, real_resolve = experiments.get_profile, experiments.code_state, experiments.resolve_run

    def count(key, fn):
        def wrapped(*a, **k):
            counts[key] += 1
            return fn(*a, **k)
        return wrapped

    monkeypatch.setattr(experiments, "get_profile", count("profile", real_profile))
    monkeypatch.setattr(experiments, "code_state", count("code", real_code))
    monkeypatch.setattr(experiments, "resolve_run", count("resolve", real_resolve))
    (tmp_path / "nodata").mkdir()
    rec = experiments.run_experiment("alnet_jawahar2022", "alnet-cv", "smoke", device="cpu",
                                     data_root=str(tmp_path / "nodata"), results_dir=tmp_path / "res")
    assert counts == {"profile": 1, "code": 1, "resolve": 1}
    assert rec["settings"]["aggregate_of"].keys() == {"alnet-fold0", "alnet-fold1", "alnet-fold2"}
    assert len({records.read_record(records.record_path("alnet_jawahar2022", "smoke", f"alnet-fold{k}", tmp_path / "res"))
                ["commit"] for k in range(3)} | {rec["commit"]}) == 1  # every part names the code read once
