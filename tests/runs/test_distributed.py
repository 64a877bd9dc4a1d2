"""leukcore.runs.distributed: the experiment grid on Ray equals the local run; killed workers; credentials.

The Ray run happens once per module, in a subprocess (its own local Ray instance with 2 CPUs,
shut down by :func:`run_on_ray`), with fake credentials in its environment and the test hook
that SIGKILLs the worker of ``darknet53`` when its training starts; the local run happens in
this process.  Every test then checks one property of those two results folders.
"""
from __future__ import annotations

import builtins
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from leukcore.runs import distributed as dist

pytestmark = pytest.mark.ray

PAPER = "dscnet_vijayalakshmi"
KILLED = "darknet53"
FAKE = {"KAGGLE_KEY": "kaggle-fake-key-5f1c9e2a7b", "RAY_AUTH_TOKEN": "ray-fake-token-8d3b61f0c4",
        "MY_SERVICE_PASSWORD": "hunter2-fake-pw-77a1"}

try:
    import ray  # noqa: F401

    HAVE_RAY = True
except ImportError:
    HAVE_RAY = False
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason='ray is not installed (pip install -e ".[ray]")')

#: What may differ between two runs of the same experiment: when and how long, and the commit
#: (others may commit between the two runs of a long test session).
VOLATILE = {"wall_time_s", "written_at", "_path", "commit", "code", "history"}

#: The Ray run (a subprocess): run_grid's pending list gains one experiment that does not exist
#: (patched in the driver only), so its task raises on the worker while the others must go on.
BOGUS = "no-such-experiment"
RAY_DRIVER = textwrap.dedent("""
    import json, sys, time
    import leukcore.runs.protocols as X
    import leukcore.runs.grid as G
    from leukcore.runs.grid import run_grid
    real_pending, real_get = G.pending, X.get_experiment
    G.pending = lambda *a, **kw: real_pending(*a, **kw) + [(sys.argv[1], "%s")]
    X.get_experiment = G.get_experiment = (  # the driver's only
        lambda p, e: X.Experiment(p, e, None) if e == "%s" else real_get(p, e))
    t0 = time.perf_counter()
    r = run_grid([sys.argv[1]], "smoke", executor="ray", device="cpu", seed=0, results_dir=sys.argv[2],
                 progress=True)
    import ray
    print(json.dumps({"records": sorted(f"{p}/{e}" for p, e in r.records), "failures": {f"{p}/{e}": v for (p, e), v in r.failures.items()},
                      "seconds": time.perf_counter() - t0, "ray_still_up": ray.is_initialized()}))
""" % (BOGUS, BOGUS))


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    """The smoke grid of PAPER run locally (here) and on a local 2-CPU Ray instance (a subprocess)."""
    if not HAVE_RAY:
        pytest.skip('ray is not installed (pip install -e ".[ray]")')
    from leukcore.runs.grid import run_grid

    base = tmp_path_factory.mktemp("grids")
    local_dir, ray_dir = base / "local", base / "ray"
    marker = base / "killed.json"
    local = run_grid([PAPER], "smoke", executor="local", device="cpu", seed=0, results_dir=local_dir, progress=False)
    assert local.ok, local.failures
    ray_tmp = tempfile.mkdtemp(prefix="lkray")  # short: Ray's socket paths must fit in 107 bytes
    env = {**os.environ, **FAKE, dist.NUM_CPUS_ENV: "2", dist.TEST_KILL_ENV: f"{marker}|{PAPER}/{KILLED}",
           "RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        proc = subprocess.run([sys.executable, "-c", RAY_DRIVER, PAPER, str(ray_dir)], env=env, capture_output=True,
                              text=True, timeout=600)
        logs = {p: p.read_text(errors="replace") for p in Path(ray_tmp).rglob("*") if p.is_file() and
                p.suffix in (".log", ".out", ".err", ".txt", ".json")}
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"local": local_dir, "ray": ray_dir, "marker": marker, "stdout": proc.stdout, "stderr": proc.stderr,
            "summary": summary, "ray_logs": logs, "n": len(local.records)}


def _records(root: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((root / PAPER / "smoke").glob("*.json"))}


def _stable(rec: dict) -> dict:
    out = {k: v for k, v in rec.items() if k not in VOLATILE}
    out["history"] = [[{k: v for k, v in ep.items() if k not in ("seconds", "images_per_s")} for ep in fold]
                      for fold in rec.get("history", [])]
    return out


@needs_ray
def test_ray_records_equal_local(grids):
    """Same seed, CPU, same thread count: every field but the timings is equal, predictions bit-equal."""
    assert not grids["summary"]["ray_still_up"]  # run_on_ray shut down the instance it started
    assert sorted(grids["summary"]["records"]) == [f"{PAPER}/{e}" for e in ("darknet53", "dscnet", "vgg16")]
    local, remote = _records(grids["local"]), _records(grids["ray"])
    assert sorted(local) == sorted(remote) == ["darknet53", "dscnet", "vgg16"]
    for exp in local:
        a, b = _stable(local[exp]), _stable(remote[exp])
        assert a == b, {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
        assert a["metrics"]["accuracy"] == b["metrics"]["accuracy"]
        pa = (grids["local"] / PAPER / "smoke" / local[exp]["predictions"]).read_text()
        pb = (grids["ray"] / PAPER / "smoke" / remote[exp]["predictions"]).read_text()
        assert pa == pb
        assert len(pd.read_csv(grids["ray"] / PAPER / "smoke" / remote[exp]["predictions"])) == \
            local[exp]["split"]["folds"][0]["test"]


@needs_ray
def test_ray_returns_final_weights(grids):
    """The weights kept for Grad-CAM come back from the worker and equal the local ones."""
    import torch

    rel = Path(PAPER) / "smoke" / "checkpoints" / "dscnet" / "fold0" / "final.pt"
    a = torch.load(grids["local"] / rel, weights_only=True)
    b = torch.load(grids["ray"] / rel, weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list((grids["ray"]).rglob("last.pt")) and not list((grids["ray"]).rglob(".*.tmp*"))


@needs_ray
def test_failed_task_is_reported_and_others_go_on(grids):
    """An experiment that raises on its worker is a failure "Type: message" (not retried); the rest completed."""
    fail = grids["summary"]["failures"]
    assert list(fail) == [f"{PAPER}/{BOGUS}"]
    assert fail[f"{PAPER}/{BOGUS}"].startswith(f"ValueError: unknown experiment '{BOGUS}' of {PAPER}; valid: dscnet")
    assert not (grids["ray"] / PAPER / "smoke" / f"{BOGUS}.json").exists()


@needs_ray
def test_killed_worker_is_retried(grids):
    """The darknet53 worker SIGKILLed itself at the start of training; the retry wrote the same record."""
    info = json.loads(grids["marker"].read_text())
    assert info["experiment"] == KILLED and info["paper"] == PAPER
    assert f"{PAPER}/{KILLED}" in grids["summary"]["records"]
    assert _stable(_records(grids["ray"])[KILLED]) == _stable(_records(grids["local"])[KILLED])


@needs_ray
def test_no_credentials_in_records_or_logs(grids):
    """No fake credential (set in the Ray driver's and workers' environment) reaches a file or log we write."""
    # The fakes, and Ray's own token if it keeps one in a file (never printed by these assertions).
    secrets = {**FAKE, **{f"ray auth token file #{i}": v for i, v in enumerate(dist.ray_token_secrets())}}
    written = [p for p in grids["ray"].rglob("*") if p.is_file()]
    assert len(written) >= 2 * grids["n"]
    for p in written:
        blob = p.read_bytes()
        for name, value in secrets.items():
            assert value.encode() not in blob, f"{name} leaked into {p}"
    for rec in _records(grids["ray"]).values():
        assert dist.credential_findings(rec, list(secrets.values())) == [], "credential-like content in a record"
    for stream in ("stdout", "stderr"):
        for name, value in secrets.items():
            assert value not in grids[stream], f"{name} leaked into the driver's {stream}"
    assert grids["ray_logs"], "the Ray session logs of the run were not found"
    for p, text in grids["ray_logs"].items():  # Ray's own session logs of this run
        for name, value in secrets.items():
            assert value not in text, f"{name} appears in Ray's log {p.name}"


def test_scrub_redacts_env_secrets():
    env = {"KAGGLE_KEY": "abcdefgh12345", "RAY_AUTH_TOKEN": "tok-0123456789", "HOME": "/root", "SHORT_TOKEN": "x"}
    secrets = dist.env_secrets(env)
    assert secrets == ["tok-0123456789", "abcdefgh12345"]
    rec = {"note": "key abcdefgh12345 here", "RAY_ADDRESS": "x", "nested": [{"api_token": "y", "ok": 1}]}
    clean = dist.scrub_record(rec, secrets)
    assert clean == {"note": "key <redacted> here", "nested": [{"ok": 1}]}
    assert dist.credential_findings(clean, secrets) == []
    assert dist.credential_findings(rec, secrets) == ["/note: secret value", "/RAY_ADDRESS: key",
                                                      "/nested[0]/api_token: key"]


def test_import_leukcore_does_not_import_ray():
    code = ("import sys, leukcore, leukcore.runs.experiments, leukcore.runs.distributed, leukcore.book.runner, leukcore.cli\n"
            "leukcore.runs.distributed.planning_table({})\n"
            "print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_executor_ray_without_ray_says_how_to_install(monkeypatch, tmp_path, capsys):
    from leukcore.cli import main
    from leukcore.runs.grid import run_grid

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(dist.RayNotInstalled, match=r'pip install -e "\.\[ray\]"'):
        run_grid([PAPER], "smoke", executor="ray", results_dir=tmp_path, progress=False)
    rc = main(["reproduce", "--paper", PAPER, "--profile", "smoke", "--executor", "ray", "--results-dir",
               str(tmp_path), "--no-progress"])
    assert rc != 0
    assert 'pip install -e ".[ray]"' in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.json"))


def test_import_ray_hint_when_the_import_fails(monkeypatch):
    """Also when ray's import fails deep inside (a broken install), the hint is given."""
    real = builtins.__import__

    def fake(name, *a, **kw):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError("No module named 'ray'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake)
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    with pytest.raises(ValueError, match="pip install"):
        dist.import_ray()


def test_task_resources():
    assert dist.task_resources("cpu") == {"num_cpus": 1}
    assert dist.task_resources("cuda") == {"num_gpus": 1.0, "num_cpus": 1}
    assert dist.task_resources("cuda:0", 0.25) == {"num_gpus": 0.25, "num_cpus": 1}
    with pytest.raises(ValueError):
        dist.task_resources("cuda", 1.5)


def test_local_num_cpus(monkeypatch):
    monkeypatch.setenv(dist.NUM_CPUS_ENV, "2")
    assert dist.local_num_cpus() == 2
    monkeypatch.delenv(dist.NUM_CPUS_ENV)
    assert dist.local_num_cpus() == (os.cpu_count() or 1)


def test_planning_table_counts():
    from leukcore.runs.protocols import list_experiments, list_papers

    df = dist.planning_table({}).set_index("paper")
    for p in list_papers():
        assert df.loc[p, "experiments"] == len(list_experiments(p, "paper"))
    # XIncept: 7 experiments x 10-fold CV at paper, capped at the profile's max_folds elsewhere.
    from leukcore.runs.profiles import get_profile

    for prof in ("smoke", "cpu"):
        assert df.loc["xincept_khan2024", f"trainings_{prof}"] == 7 * min(10, get_profile(prof).max_folds or 10)
    assert df.loc["xincept_khan2024", "trainings_paper"] == 70
    # ALNet: 7 trainings (three folds + four baselines); alnet-cv pools the folds' records.
    assert df.loc["alnet_jawahar2022", "experiments"] == 8 and df.loc["alnet_jawahar2022", "trainings_paper"] == 7
    assert df.loc["dscnet_kaur2023", "trainings_paper"] == 24
    # Haque: 10 transfer-learning experiments x 5-fold CV at paper (2 at smoke, 1 at cpu) + 10 feature-route ones
    assert df.loc["logmh_haque2024", "trainings_paper"] == 10 * 5 + 10
    assert df.loc["logmh_haque2024", "trainings_smoke"] == 10 * 2 + 10
    assert df.loc["total", "experiments"] == sum(len(list_experiments(p)) for p in list_papers())
    assert (df["gpu_hours_h100_paper"] > 0).all() and set(df["throughput"]) == {"assumed"}


def test_planning_estimate_formula():
    """One hand-computed experiment: dscnet_vijayalakshmi/vgg16, 3256 images 45/5/50, 20 epochs, 224 px."""
    from leukcore.runs.protocols import get_experiment

    exp = get_experiment(PAPER, "vgg16")
    rate = dist.H100_TRAIN_IMAGES_PER_S_224["vgg16"]
    n = 3256
    want = (20 * (0.45 * n + 0.05 * n / 3) + 0.5 * n / 3) / rate + dist.OVERHEAD_S
    got, src = dist.experiment_gpu_seconds(PAPER, exp)
    assert src == "assumed" and got == pytest.approx(want)
    bench = {"device": "NVIDIA H100 80GB HBM3", "models": {"vgg16": {"images_per_s": rate / 2, "image_size": 224}}}
    got2, src2 = dist.experiment_gpu_seconds(PAPER, exp, bench)
    assert src2 == "benchmark" and got2 - dist.OVERHEAD_S == pytest.approx(2 * (want - dist.OVERHEAD_S))
    row = dist.planning_table(bench).set_index("paper").loc[PAPER]
    assert row["throughput"] == "assumed/benchmark (NVIDIA H100 80GB HBM3)"

