"""The prepared GPU lease (leukcore.gpu_lease) and what it drives (the dataset carried in parts,
runs fold by fold), tested on the CPU at the smoke profile."""
from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from leukcore import data as D
from leukcore import gpu_lease as G
from leukcore.data import transport
from leukcore.runs.experiments import find_record, run_experiment
from leukcore.runs.folds import fold_record_path, pool_folds, run_fold
from leukcore.runs.protocols import list_experiments, n_folds
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
    m = transport.pack_dataset(tmp_path / "src", tmp_path / "pack", part_mib=0.02)
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
    r = transport.unpack_parts(carry1, dest)
    assert r == {"have": [first], "missing": rest}
    with pytest.raises(D.DataError, match=rest[-1]):
        transport.check_dataset(dest)
    # call 2 carries the other parts: the assembled dataset is the packed one
    carry2 = tmp_path / "carry2"
    carry2.mkdir()
    for f in rest:
        (carry2 / f).write_bytes((tmp_path / "pack" / f).read_bytes())
    assert transport.unpack_parts(carry2, dest)["missing"] == []
    ok = transport.check_dataset(dest)
    assert ok["fingerprint"] == m["fingerprint"] and ok["n_images"] == 12
    # one changed image: refused, naming its part
    victim = next(f for f in m["files"] if f["path"].endswith(".jpg"))
    p = dest / victim["path"]
    p.write_bytes(p.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(D.DataError, match=victim["part"]):
        transport.check_dataset(dest)
    assert ds.is_dir()


def test_fold_records_pool_into_the_whole_runs_record(tmp_path):
    """Folds run one at a time and pooled give the record run_experiment writes (CPU: bit-identical)."""
    paper, exp = "xincept_khan2024", "cnn_lstm"
    res = tmp_path / "folds"
    assert n_folds(paper, exp, "smoke") == 2
    f0 = run_fold(paper, exp, "smoke", 0, device="cpu", results_dir=res)
    assert f0["fold"] == 0 and Path(f0["_path"]) == fold_record_path(paper, "smoke", exp, 0, res)
    part = pool_folds(paper, exp, "smoke", results_dir=res)
    assert part["status"] == "partial" and part["folds_done"] == 1 and "/folds/" in part["_path"]
    assert find_record(paper, exp, "smoke", results_dir=res) is None  # a partial pool is no result
    run_fold(paper, exp, "smoke", 1, device="cpu", results_dir=res)
    pooled = pool_folds(paper, exp, "smoke", results_dir=res)
    assert pooled["status"] == "complete" and pooled["pooled_from_folds"] == [0, 1]
    assert not list((res / paper / "smoke" / "folds").glob("*.partial*"))
    whole = run_experiment(paper, exp, "smoke", device="cpu", results_dir=tmp_path / "whole")
    assert record_key(pooled) == record_key(whole)
    assert read_predictions(pooled).equals(read_predictions(whole))
    assert pooled["metrics"] == whole["metrics"] and pooled["intervals"] == whole["intervals"]
    assert pooled["split"] == whole["split"]
    assert find_record(paper, exp, "smoke", results_dir=res)["_path"] == pooled["_path"]
    with pytest.raises(ValueError, match="valid 0..1"):
        run_fold(paper, exp, "smoke", 2, device="cpu", results_dir=res)


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
                    seeds=(0, 1), data_root=str(tmp_path / "none"), figures_dir=tmp_path / "figures")
    status = [(r["experiment"], r["seed"], r["status"]) for r in s["items"]]
    assert status == [("dscnet", 0, "done"), ("dscnet", 1, "done"), ("vgg16", 0, "skipped")]
    assert "10000" in s["items"][2]["why"] or "12500" in s["items"][2]["why"]
    assert sorted(p.name for p in out.iterdir()) == ["lease.json", "vijayalakshmi.tar.gz"]
    assert json.loads((out / "lease.json").read_text())["environment"]["device"].startswith("CPU")
    with tarfile.open(out / "vijayalakshmi.tar.gz") as t:
        names = t.getnames()
    assert "dscnet_vijayalakshmi/smoke/dscnet.json" in names and "dscnet_vijayalakshmi/smoke/dscnet.seed1.json" in names
    assert not any("checkpoints" in n for n in names)
    back = G.collect(out, tmp_path / "scratch", tmp_path / "figures-home")
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
    res, fig = tmp_path / "r", tmp_path / "fig"
    (res / "p").mkdir(parents=True)
    (fig / "p").mkdir(parents=True)
    (res / "p" / "a.json").write_text('{"status": "running"}')
    import numpy as np

    (fig / "p" / "a.png").write_bytes(np.random.default_rng(0).bytes(50_000))  # incompressible
    packer = G.Packer(tmp_path / "out", res, fig)
    with tarfile.open(packer.add("s", [res / "p" / "a.json", fig / "p" / "a.png"])) as t:
        assert t.getnames() == ["p/a.json", "figures/p/a.png"]  # records by results path, images under figures/
    back = G.collect(tmp_path / "out", tmp_path / "home-r", tmp_path / "home-fig")
    assert (tmp_path / "home-fig" / "p" / "a.png").read_bytes() == (fig / "p" / "a.png").read_bytes()
    assert (tmp_path / "home-r" / "p" / "a.json").is_file() and not (tmp_path / "home-r" / "figures").exists()
    assert back["bad"] == ["p/a.json: status 'running'"]  # collect checks what it unpacked
    monkeypatch.setattr(G, "MAX_RETURN_BYTES", 20_000)
    with tarfile.open(packer.write("s")) as t:
        assert t.getnames() == ["p/a.json"]
    with pytest.raises(ValueError, match="neither under"):
        packer.add("s", [tmp_path / "elsewhere.json"])


def test_cuda_device_description_names_the_driver(monkeypatch):
    import torch

    from leukcore.runs import records

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA H200")
    monkeypatch.setattr(records, "nvidia_driver", lambda: "580.95.05")
    assert records.device_description("cuda") == f"NVIDIA H200 (CUDA {torch.version.cuda}, driver 580.95.05)"
    monkeypatch.setattr(records, "nvidia_driver", lambda: None)
    assert records.device_description("cuda") == f"NVIDIA H200 (CUDA {torch.version.cuda})"
