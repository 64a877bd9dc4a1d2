"""leukcore.runs.records provenance: the code a record names, the diff beside it, the dirty-tree rule,
library versions, and the settings hashes of the committed records."""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from leukcore.runs import experiments
from leukcore.runs.deviations import record_deviations
from leukcore.runs.experiments import run_experiment
from leukcore.runs.protocols import experiment_settings, get_experiment, list_papers
from leukcore.runs.routes import get_route
from leukcore.runs import records as R
from leukcore.runs.profiles import get_profile

ROOT = Path(__file__).resolve().parents[2]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture()
def repo(tmp_path) -> Path:
    """A tiny project: a package file, a protocol, pyproject.toml and a results file, committed."""
    (tmp_path / "leukcore" / "protocols").mkdir(parents=True)
    (tmp_path / "leukcore" / "a.py").write_text("x = 1\n")
    (tmp_path / "leukcore" / "protocols" / "p.yaml").write_text("lr: 0.1\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nversion = "0.0.1"\n')
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text("{}\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "init")
    return tmp_path


def test_source_hash_is_path_and_content_of_the_code(repo):
    h = hashlib.sha256()
    for rel, text in (("leukcore/a.py", "x = 1\n"), ("leukcore/protocols/p.yaml", "lr: 0.1\n"),
                      ("pyproject.toml", '[project]\nversion = "0.0.1"\n')):
        h.update(rel.encode() + b"\0" + text.encode() + b"\0")
    assert R.source_hash(repo) == h.hexdigest()
    (repo / "results" / "r.json").write_text('{"a": 1}\n')  # not code
    assert R.source_hash(repo) == h.hexdigest()
    (repo / "leukcore" / "protocols" / "p.yaml").write_text("lr: 0.2\n")
    assert R.source_hash(repo) != h.hexdigest()


def test_code_state_clean_then_dirty(repo):
    head = _git(repo, "rev-parse", "HEAD").strip()
    clean = R.code_state(repo)
    assert clean["commit"] == head and clean["dirty"] is False and clean["diff"] is None
    assert R.git_commit(state=clean) == head
    # a record written by a run is not code: the next run's tree stays clean
    (repo / "results" / "r.json").write_text('{"run": 2}\n')
    assert R.code_state(repo)["dirty"] is False
    # a changed protocol and a new, untracked package file are
    (repo / "leukcore" / "protocols" / "p.yaml").write_text("lr: 0.2\n")
    (repo / "leukcore" / "new.py").write_text("y = 2\n")
    dirty = R.code_state(repo)
    assert dirty["dirty"] is True and R.git_commit(state=dirty) == head + "+dirty"
    assert "-lr: 0.1" in dirty["diff"] and "+lr: 0.2" in dirty["diff"]
    assert "leukcore/new.py" in dirty["diff"] and "+y = 2" in dirty["diff"]
    assert "r.json" not in dirty["diff"]
    # the diff applies: the committed tree plus the diff is the tree that ran
    _git(repo, "stash", "-u", "-q")
    (repo / "d.patch").write_text(dirty["diff"])
    _git(repo, "apply", "d.patch")
    assert (repo / "leukcore" / "new.py").read_text() == "y = 2\n"
    assert (repo / "leukcore" / "protocols" / "p.yaml").read_text() == "lr: 0.2\n"


def test_code_state_outside_git(tmp_path):
    (tmp_path / "leukcore").mkdir()
    (tmp_path / "leukcore" / "a.py").write_text("x = 1\n")
    s = R.code_state(tmp_path)
    assert s["commit"] is None and R.git_commit(state=s) is None and len(s["source_sha256"]) == 64


def test_diff_is_stored_beside_the_record_and_checked(tmp_path):
    rec = {"paper": "p", "profile": "smoke", "experiment": "e", "status": "complete", "seed": 0,
           "code": {"commit": "abc", "dirty": True, "source_sha256": "0" * 64}, "_diff": "diff --git a/x b/x\n+1\n"}
    path = R.write_record(rec, predictions=pd.DataFrame({"id": ["a"], "p_0": [1.0]}), root=tmp_path)
    doc = json.loads(path.read_text())
    digest = hashlib.sha256(b"diff --git a/x b/x\n+1\n").hexdigest()
    assert doc["code"]["diff"] == f"e.{digest[:12]}.diff" and doc["code"]["diff_sha256"] == digest
    assert "_diff" not in doc
    assert (tmp_path / "p" / "smoke" / doc["code"]["diff"]).read_text() == "diff --git a/x b/x\n+1\n"
    assert R.read_diff(R.read_record(path)) == "diff --git a/x b/x\n+1\n"
    (tmp_path / "p" / "smoke" / doc["code"]["diff"]).write_text("edited\n")
    with pytest.raises(ValueError, match="SHA-256 differs"):
        R.read_diff(R.read_record(path))
    # rewritten from a clean tree: no diff named, the old one removed; another run's diff is kept
    other = tmp_path / "p" / "smoke" / "e2.0123456789ab.diff"
    other.write_text("x")
    clean = {k: v for k, v in rec.items() if k != "_diff"}
    clean["code"] = {"commit": "abd", "dirty": False, "source_sha256": "1" * 64}
    path = R.write_record(clean, root=tmp_path)
    assert R.read_diff(R.read_record(path)) is None
    assert sorted(p.name for p in (tmp_path / "p" / "smoke").glob("*.diff")) == [other.name]


def test_paper_profile_refuses_a_dirty_tree(monkeypatch):
    dirty = {"commit": "a" * 40, "dirty": True, "source_sha256": "0" * 64, "diff": "d"}
    monkeypatch.delenv(R.ALLOW_DIRTY_ENV, raising=False)
    with pytest.raises(R.DirtyTreeError, match="allow_dirty=True") as e:
        R.check_code(dirty, "paper")
    assert "--allow-dirty" in str(e.value) and "aaaaaaaaaaaa" in str(e.value)
    R.check_code(dirty, "paper", allow_dirty=True)
    R.check_code(dirty, "smoke")  # reduced profiles run, with the diff recorded
    R.check_code({**dirty, "dirty": False, "diff": None}, "paper")
    monkeypatch.setenv(R.ALLOW_DIRTY_ENV, "1")
    R.check_code(dirty, "paper")


def test_run_experiment_refuses_before_loading_anything(monkeypatch, tmp_path):
    monkeypatch.delenv(R.ALLOW_DIRTY_ENV, raising=False)
    monkeypatch.setattr(experiments, "code_state", lambda: {"commit": "b" * 40, "dirty": True, "source_sha256": "0" * 64,
                                                  "diff": "diff --git a/leukcore/x.py b/leukcore/x.py\n"})

    def no_data(*a, **k):
        raise AssertionError("data loaded before the dirty-tree check")

    monkeypatch.setattr(experiments, "experiment_data", no_data)
    with pytest.raises(R.DirtyTreeError):
        run_experiment("dscnet_vijayalakshmi", "dscnet", "paper", results_dir=tmp_path, data_root=str(tmp_path))
    with pytest.raises(R.DirtyTreeError):
        run_experiment("alnet_jawahar2022", "alnet-cv", "paper", results_dir=tmp_path, data_root=str(tmp_path))


def test_smoke_run_on_a_dirty_tree_records_its_diff(monkeypatch, tmp_path):
    diff = "diff --git a/leukcore/x.py b/leukcore/x.py\n+changed\n"
    monkeypatch.setattr(experiments, "code_state", lambda: {"commit": "c" * 40, "dirty": True, "source_sha256": "f" * 64,
                                                  "diff": diff})
    (tmp_path / "nodata").mkdir()
    rec = run_experiment("alnet_jawahar2022", "alnet-fold0", "smoke", results_dir=tmp_path / "res",
                           data_root=str(tmp_path / "nodata"), device="cpu")
    assert rec["commit"] == "c" * 40 + "+dirty"
    assert rec["code"]["source_sha256"] == "f" * 64 and rec["code"]["dirty"] is True
    assert R.read_diff(rec) == diff
    assert rec["versions"]["leukcore"] and rec["versions"]["xgboost"]


def test_library_versions_always_name_leukcore_and_xgboost(monkeypatch):
    from importlib import metadata

    v = R.library_versions()
    assert v["xgboost"] == metadata.version("xgboost")
    assert v["leukcore"]
    real = metadata.version

    def missing(name):
        if name in ("leukcore", "xgboost"):
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "version", missing)
    v = R.library_versions()
    assert v["xgboost"] == "not installed"
    assert v["leukcore"] == "0.1.0"  # from pyproject.toml


def _committed_records():
    return [r for p in list_papers() for r in R.load_records(p, root=ROOT / "results", complete_only=False)]


def test_committed_records_keep_their_settings_hash():
    """Every committed record's key is unchanged: its stored settings hash to its ``settings_hash``,
    and the settings the code computes today for the same experiment and profile are the same."""
    recs = _committed_records()
    assert len(recs) >= 100
    by_key = {(r["paper"], r["profile"], r["experiment"], r.get("seed") or 0): r for r in recs}
    for r in recs:
        assert R.settings_hash(r["settings"]) == r["settings_hash"], r["_path"]
        exp = get_experiment(r["paper"], r["experiment"])
        route = get_route(exp.route)
        if not route.trains:
            parts = {e: by_key[(r["paper"], r["profile"], e, r.get("seed") or 0)]["settings_hash"]
                     for e in route.parts(exp)}
            assert r["settings"]["aggregate_of"] == parts, r["_path"]
            continue
        now = experiment_settings(r["paper"], exp, get_profile(r["profile"]))
        assert R.settings_hash(now) == r["settings_hash"], r["_path"]


def test_audits_read_the_code_before_running(monkeypatch):
    from leukcore import audits as A

    states = iter([{"commit": "d" * 40, "dirty": True, "source_sha256": "0" * 64, "diff": "x"}])
    monkeypatch.setattr(R, "code_state", lambda *a: next(states))
    monkeypatch.delenv(R.ALLOW_DIRTY_ENV, raising=False)
    with pytest.raises(R.DirtyTreeError):
        A.run_audit("shortcut_colour", "paper")
    # inside a snapshot, the state read at the start is what a record names, however the tree changes
    states = iter([{"commit": "e" * 40, "dirty": False, "source_sha256": "1" * 64, "diff": None},
                   {"commit": "f" * 40, "dirty": True, "source_sha256": "2" * 64, "diff": "later"}])
    with R.code_snapshot("paper"):
        assert R.current_code_state()["commit"] == "e" * 40
        assert R.current_code_state()["commit"] == "e" * 40
    assert R.current_code_state()["commit"] == "f" * 40  # outside: read now


def test_old_records_deviations_regenerate_from_their_settings():
    """Vijayalakshmi's DSCNet record (written with fixed text) says dropout 0.3 / 0.2 but trained with
    0.1; regenerated from its settings, its lines agree with them."""
    path = ROOT / "results" / "dscnet_vijayalakshmi" / "paper" / "dscnet.json"
    rec = R.read_record(path)
    assert rec["settings"]["model_kw"]["dropout"] == [0.1, 0.1]
    lines = record_deviations(rec)
    assert not any("0.3 / 0.2" in d for d in lines)
    assert any("dropout 0.1 / 0.1" in d for d in lines)
    assert any(d.startswith("interpretation: conv blocks") for d in lines)  # the model's other lines stay
