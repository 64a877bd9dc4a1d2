"""The prepared GPU lease (leukcore.gpu_lease), tested on the CPU at the smoke profile."""
from __future__ import annotations

import re

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from leukcore import data as D
from leukcore import gpu_lease as G
from leukcore.bench import grid_markdown
from leukcore.runs.experiments import find_record, fold_record_path, list_experiments, run_experiment
from leukcore.runs.records import read_predictions, read_record, record_key, record_path


@pytest.fixture(autouse=True)
def no_data(monkeypatch, tmp_path):
    """Every experiment here runs on the synthetic stand-in (the shared data are not looked up)."""
    monkeypatch.setenv("LEUKCORE_DATA", str(tmp_path / "no-data"))


def _fake_taleqani(root: Path) -> Path:
    """A synthetic taleqani-all under ``root`` with a SHA256SUMS like the real one's."""
    ds = D.write_synthetic(root, layout="taleqani", n_per_class=3, size=48)
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  ./{p.relative_to(ds).as_posix()}"
             for p in sorted(ds.rglob("*.jpg"))]
    (ds / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return ds


def test_data_parts_assemble_only_when_complete(tmp_path):
    ds = _fake_taleqani(tmp_path / "src")
    m = G.pack_dataset(tmp_path / "src", tmp_path / "pack", part_mib=0.02)
    table = D.load_dataset("taleqani-all", tmp_path / "src", variant="original", verbose=False)
    assert m["fingerprint"] == D.fingerprint(table) and m["n_images"] == len(table) == 12
    assert len(m["parts"]) >= 2 and {f["part"] for f in m["files"]} == set(m["parts"])
    assert sum(f["path"].endswith(".jpg") for f in m["files"]) == 12  # Original only, not Segmented
    first, rest = m["parts"][0], m["parts"][1:]
    # call 1 carries the first part only: the check refuses and names what is missing
    carry1 = tmp_path / "carry1"
    carry1.mkdir()
    for f in ("manifest.json", first):
        (carry1 / f).write_bytes((tmp_path / "pack" / f).read_bytes())
    dest = tmp_path / "device"
    r = G.unpack_parts(carry1, dest)
    assert r == {"have": [first], "missing": rest}
    with pytest.raises(D.DataError, match=rest[-1]):
        G.check_dataset(dest)
    # call 2 carries the other parts: the assembled dataset is the packed one
    carry2 = tmp_path / "carry2"
    carry2.mkdir()
    for f in rest:
        (carry2 / f).write_bytes((tmp_path / "pack" / f).read_bytes())
    assert G.unpack_parts(carry2, dest)["missing"] == []
    ok = G.check_dataset(dest)
    assert ok["fingerprint"] == m["fingerprint"] and ok["n_images"] == 12
    # one changed image: refused, naming its part
    victim = next(f for f in m["files"] if f["path"].endswith(".jpg"))
    p = dest / victim["path"]
    p.write_bytes(p.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(D.DataError, match=victim["part"]):
        G.check_dataset(dest)
    assert ds.is_dir()


def test_fold_records_pool_into_the_whole_runs_record(tmp_path):
    """Folds run one at a time and pooled give the record run_experiment writes (CPU: bit-identical)."""
    paper, exp = "xincept_khan2024", "cnn_lstm"
    res = tmp_path / "folds"
    assert G.n_folds(paper, exp, "smoke") == 2
    f0 = G.run_fold(paper, exp, "smoke", 0, device="cpu", results_dir=res)
    assert f0["fold"] == 0 and Path(f0["_path"]) == fold_record_path(paper, "smoke", exp, 0, res)
    part = G.pool_folds(paper, exp, "smoke", results_dir=res)
    assert part["status"] == "partial" and part["folds_done"] == 1 and "/folds/" in part["_path"]
    assert find_record(paper, exp, "smoke", results_dir=res) is None  # a partial pool is no result
    G.run_fold(paper, exp, "smoke", 1, device="cpu", results_dir=res)
    pooled = G.pool_folds(paper, exp, "smoke", results_dir=res)
    assert pooled["status"] == "complete" and pooled["pooled_from_folds"] == [0, 1]
    assert not list((res / paper / "smoke" / "folds").glob("*.partial*"))
    whole = run_experiment(paper, exp, "smoke", device="cpu", results_dir=tmp_path / "whole")
    assert record_key(pooled) == record_key(whole)
    assert read_predictions(pooled).equals(read_predictions(whole))
    assert pooled["metrics"] == whole["metrics"] and pooled["intervals"] == whole["intervals"]
    assert pooled["split"] == whole["split"]
    assert find_record(paper, exp, "smoke", results_dir=res)["_path"] == pooled["_path"]
    with pytest.raises(ValueError, match="valid 0..1"):
        G.run_fold(paper, exp, "smoke", 2, device="cpu", results_dir=res)


def test_plan_orders_stages_and_folds(tmp_path):
    items, notes = G.plan("smoke", stages=("vijayalakshmi", "xincept"), seeds=(0, 1), results_dir=tmp_path,
                          data_root=str(tmp_path / "none"))
    vij = [(i.experiment, i.seed) for i in items if i.stage == "vijayalakshmi"]
    models = [e.id for e in list_experiments("dscnet_vijayalakshmi", "smoke")]
    assert sorted(models) == ["darknet53", "dscnet", "vgg16"]
    assert vij == [(m, 0) for m in models] + [(m, 1) for m in models]  # seed 0 of every model first
    xin = [(i.fold, i.experiment) for i in items if i.stage == "xincept"]
    assert [f for f, _ in xin] == [0] * (len(xin) // 2) + [1] * (len(xin) // 2)  # fold 0 of every model first
    assert [e for f, e in xin if f == 0][1:] == ["cnn_lstm", "resnet50", "googlenet", "vgg16", "inception_v3", "xception"]
    assert all(i.estimate_s == G.DEFAULT_ITEM_S["smoke"] for i in items)  # no earlier runs, no benchmark
    with pytest.raises(ValueError, match="unknown stage"):
        G.plan("smoke", stages=("nope",))


def test_lease_refuses_a_dirty_tree_and_missing_data(tmp_path, monkeypatch):
    monkeypatch.setattr(G, "tree_changes", lambda cwd=None: " M leukcore/models.py\n")
    with pytest.raises(RuntimeError, match="commit them"):
        G.run_lease(60, tmp_path / "out", profile="smoke", results_dir=tmp_path / "r")
    monkeypatch.setattr(G, "tree_changes", lambda cwd=None: "")
    with pytest.raises(D.DataError, match="manifest"):
        G.run_lease(60, tmp_path / "out", profile="paper", data_root=tmp_path / "nothing", results_dir=tmp_path / "r")


def test_lease_within_budget_packs_complete_records(tmp_path, monkeypatch):
    """A tiny smoke lease: runs what fits, skips what does not, and the packed files unpack into
    complete records; a second lease finds nothing pending."""
    monkeypatch.setattr(G, "tree_changes", lambda cwd=None: "")
    res, out = tmp_path / "results", tmp_path / "out"
    real_plan = G.plan

    def small_plan(*a, **kw):  # Vijayalakshmi's dscnet seeds 0 and 1, and one model that will not fit
        items, notes = real_plan(*a, **kw)
        keep = [i for i in items if i.experiment == "dscnet"]
        big = [i for i in items if i.experiment == "vgg16"][:1]
        for i in big:
            i.estimate_s = 10_000.0
        return keep + big, notes

    monkeypatch.setattr(G, "plan", small_plan)
    s = G.run_lease(600, out, profile="smoke", device="cpu", results_dir=res, stages=("vijayalakshmi",),
                    seeds=(0, 1), data_root=str(tmp_path / "none"))
    status = [(r["experiment"], r["seed"], r["status"]) for r in s["items"]]
    assert status == [("dscnet", 0, "done"), ("dscnet", 1, "done"), ("vgg16", 0, "skipped")]
    assert "10000" in s["items"][2]["why"] or "12500" in s["items"][2]["why"]
    assert sorted(p.name for p in out.iterdir()) == ["lease.json", "vijayalakshmi.tar.gz"]
    assert json.loads((out / "lease.json").read_text())["environment"]["device"].startswith("CPU")
    with tarfile.open(out / "vijayalakshmi.tar.gz") as t:
        names = t.getnames()
    assert "dscnet_vijayalakshmi/smoke/dscnet.json" in names and "dscnet_vijayalakshmi/smoke/dscnet.seed1.json" in names
    assert not any("checkpoints" in n for n in names)
    back = G.collect(out, tmp_path / "scratch")
    assert back["bad"] == [] and sorted(back["records"]) == ["dscnet_vijayalakshmi/smoke/dscnet.json",
                                                             "dscnet_vijayalakshmi/smoke/dscnet.seed1.json"]
    for seed in (0, 1):
        a = read_record(record_path("dscnet_vijayalakshmi", "smoke", "dscnet", tmp_path / "scratch", seed))
        b = read_record(record_path("dscnet_vijayalakshmi", "smoke", "dscnet", res, seed))
        assert a["status"] == "complete" and a["metrics"] == b["metrics"]
        assert read_predictions(a).equals(read_predictions(b))
    again, _ = real_plan("smoke", stages=("vijayalakshmi",), seeds=(0, 1), results_dir=res,
                         data_root=str(tmp_path / "none"))
    others = [e.id for e in list_experiments("dscnet_vijayalakshmi", "smoke") if e.id != "dscnet"]
    assert [i.experiment for i in again] == others + others


def test_packer_drops_images_before_records_over_the_limit(tmp_path, monkeypatch):
    res = tmp_path / "r"
    (res / "p").mkdir(parents=True)
    (res / "p" / "a.json").write_text("{}")
    import numpy as np

    (res / "p" / "a.png").write_bytes(np.random.default_rng(0).bytes(50_000))  # incompressible
    monkeypatch.setattr(G, "MAX_RETURN_BYTES", 20_000)
    path = G.Packer(tmp_path / "out", res).add("s", [res / "p" / "a.json", res / "p" / "a.png"])
    with tarfile.open(path) as t:
        assert t.getnames() == ["p/a.json"]


def test_grid_markdown():
    assert "Not measured yet" in grid_markdown(None)
    md = grid_markdown({"experiments": ["p/a seed 0", "p/b seed 0"], "profile": "paper", "epochs": 10,
                        "device": "NVIDIA H200", "workers": 4, "threads_per_worker": 4,
                        "sequential": {"wall_s": 100.0, "images_per_s": 520.0},
                        "concurrent": {"wall_s": 40.0, "images_per_s": 1300.0}, "speedup": 2.5,
                        "identical_keys": True, "max_abs_metric_diff": 0.0, "note": "n"})
    md = re.sub(r" +", " ", md)  # a markdown table's cell padding is not its content
    assert "| one at a time (1 process, every CPU core) | 100 | 520 |" in md
    assert "| 4 at once (4 CPU threads each, same GPU) | 40 | 1300 |" in md
    assert "**2.50x**" in md and "identical" in md


@pytest.mark.slow
def test_concurrent_grid_gives_the_sequential_records(tmp_path):
    """Two experiments in two processes at once: same keys, same metrics as one at a time (CPU)."""
    tasks = [("dscnet_vijayalakshmi", "dscnet", 0), ("dscnet_kaur2023", "dscnet-kl-noaug", 0)]
    block = G.grid_bench(tasks, "smoke", workers=2, scratch=tmp_path, device="cpu",
                         data_root=str(tmp_path / "none"))
    assert block["identical_keys"] is True and block["max_abs_metric_diff"] == 0.0
    seq = [read_record(p) for p in sorted((tmp_path / "sequential").rglob("*.json"))]
    assert block["train_images"] == sum(G._train_images(r) for r in seq) > 0
    assert block["sequential"]["images_per_s"] == pytest.approx(block["train_images"] / block["sequential"]["wall_s"],
                                                                rel=0.01)
    path = G.write_grid_block(block, tmp_path / "gpu.json")
    assert json.loads(path.read_text())["grid"]["workers"] == 2


def test_cuda_device_description_names_the_driver(monkeypatch):
    import torch

    from leukcore.runs import records

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA H200")
    monkeypatch.setattr(records, "nvidia_driver", lambda: "580.95.05")
    assert records.device_description("cuda") == f"NVIDIA H200 (CUDA {torch.version.cuda}, driver 580.95.05)"
    monkeypatch.setattr(records, "nvidia_driver", lambda: None)
    assert records.device_description("cuda") == f"NVIDIA H200 (CUDA {torch.version.cuda})"
