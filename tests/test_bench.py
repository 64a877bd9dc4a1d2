"""leukcore.bench: the fast data path gives the naive pipeline's pixels and labels, a tiny benchmark
runs end to end (record, table), and the experiment grid gives the same records at once as one at a time."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from leukcore.bench import data_path, grid, record, study, timing, train_step
from leukcore.book import performance
from leukcore.data import ImageCache, load_dataset, load_images, load_synthetic
from leukcore.runs.records import read_record

MEAN = (0.485, 0.456, 0.406)  # a non-trivial normalisation (ImageNet's)
STD = (0.229, 0.224, 0.225)


def _compare(table, *, shuffle: bool, seed: int, batch_size: int, num_workers: int = 0) -> int:
    """Fast path (augment 'none') vs naive DataLoader (no augmentation): same ids, labels and
    normalised pixels, batch by batch, in the same order. Returns the number of images compared."""
    images, kept = load_images(table, 224, cache=ImageCache(disk=False))
    x = images if shuffle else data_path.to_uint8_tensor(images)  # fit takes numpy NHWC or torch NCHW
    y = kept["label"].to_numpy()
    ids = kept["id"].tolist()
    fast = list(data_path.leukcore_batches(x, y, batch_size=batch_size, augment="none", mean=MEAN, std=STD,
                                       seed=seed, shuffle=shuffle))
    naive = list(data_path.naive_loader(kept["path"].tolist(), y.tolist(), batch_size=batch_size, augment=False,
                                    mean=MEAN, std=STD, seed=seed, shuffle=shuffle, num_workers=num_workers))
    assert len(fast) == len(naive)
    n = 0
    order = []
    for (xf, yf, idx), (xn, yn) in zip(fast, naive):
        assert xf.dtype == torch.float32 and xf.shape == xn.shape == (len(yn), 3, 224, 224)
        assert torch.equal(yf, yn.long())
        torch.testing.assert_close(xf, xn, rtol=0, atol=1e-5)
        order += [ids[i] for i in idx.tolist()]
        n += len(yn)
    assert n == len(kept) and sorted(order) == sorted(ids)
    if shuffle:
        assert order != ids  # a real permutation (same on both sides, checked above)
    else:
        assert order == ids
    # the pixels are the decoded file (no resize at the native 224), scaled by the formula
    i0 = ids.index(order[0])
    ref = (torch.from_numpy(images[i0]).permute(2, 0, 1).float() / 255 - torch.tensor(MEAN).view(3, 1, 1)) \
        / torch.tensor(STD).view(3, 1, 1)
    torch.testing.assert_close(fast[0][0][0], ref, rtol=0, atol=1e-5)
    return n


def test_fast_path_equals_naive_on_synthetic_images(tmp_path):
    table = load_synthetic(root=tmp_path / "syn", layout="taleqani", n_per_class=3, size=224, seed=5)
    assert len(table) == 12
    assert _compare(table, shuffle=False, seed=0, batch_size=5) == 12
    assert _compare(table, shuffle=True, seed=7, batch_size=5) == 12


def test_fast_path_equals_naive_with_worker_processes(tmp_path):
    table = load_synthetic(root=tmp_path / "syn", layout="taleqani", n_per_class=2, size=224, seed=1)
    assert _compare(table, shuffle=True, seed=3, batch_size=3, num_workers=2) == 8


def test_fast_path_equals_naive_on_real_images(shared_data):
    table = load_dataset("taleqani-all", shared_data, verbose=False)
    table = table.groupby("label", sort=True).head(2).reset_index(drop=True)  # 8 real images, 2 per class
    assert _compare(table, shuffle=False, seed=0, batch_size=3) == 8
    assert _compare(table, shuffle=True, seed=11, batch_size=3) == 8


def test_same_seed_same_augmented_batches_and_labels_follow_images():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = np.arange(10) % 4
    a = list(data_path.leukcore_batches(x, y, batch_size=4, augment="dscnet", seed=2))
    b = list(data_path.leukcore_batches(x, y, batch_size=4, augment="dscnet", seed=2))
    for (xa, ya, ia), (xb, yb, ib) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and torch.equal(ia, ib)
        assert torch.equal(ya, torch.as_tensor(y)[ia])
        assert xa.min() >= 0 and xa.max() <= 1  # unit scaling: augmented values stay in [0, 1]
    assert sum(len(t[1]) for t in a) == 10


def test_naive_transform_applies_the_preset_operations():
    names = [type(t).__name__ for t in data_path.naive_transform().transforms]
    assert names == ["RandomResizedCrop", "RandomHorizontalFlip", "RandomVerticalFlip", "RandomRotation",
                     "ColorJitter", "ToTensor", "Normalize"]
    from leukcore.transforms import PRESETS

    p = PRESETS[data_path.AUGMENT_PRESET]
    for k in ("hflip", "vflip", "rotation", "crop_scale", "brightness", "contrast", "saturation", "hue"):
        assert tuple(np.atleast_1d(data_path.NAIVE_AUGMENT[k])) == tuple(np.atleast_1d(p[k])), k


def test_summarize_median_spread_and_rate():
    s = timing.summarize([2.0, 1.0, 4.0], items=8)
    assert s["median_s"] == 2.0 and s["min_s"] == 1.0 and s["max_s"] == 4.0
    assert s["q1_s"] == 1.5 and s["q3_s"] == 3.0
    assert s["images_per_s"] == 4.0 and s["images_per_s_min"] == 2.0 and s["images_per_s_max"] == 8.0


def test_flop_count_of_a_linear_model():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 5, bias=False))
    # forward 2*48*5, backward: grad wrt weight only (input needs no grad) 2*48*5
    assert train_step.train_flops_per_image(model, 4, 5) == pytest.approx(2 * (2 * 48 * 5))


def test_gpu_peak_lookup():
    assert timing.gpu_peak_bf16("NVIDIA H100 80GB HBM3") == pytest.approx(989.4e12)
    assert timing.gpu_peak_bf16("NVIDIA H100 PCIe") == pytest.approx(756e12)
    assert timing.gpu_peak_bf16("Some GPU") is None


def test_quick_bench_runs_and_writes_record(tmp_path, monkeypatch, capsys):
    """The tiny benchmark (`leukcore bench --quick`): a record with every block, a table, markdown."""
    from leukcore.cli import main

    prev = torch.get_num_threads()
    torch.set_num_threads(1)  # a plumbing test: one thread keeps it fast on a shared CI machine
    monkeypatch.setenv("LEUKCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LEUKCORE_RESULTS", str(tmp_path / "results"))
    out = tmp_path / "bench.json"
    try:
        assert main(["bench", "--quick", "--out", str(out), "--reps", "1", "--device", "cpu"]) == 0
    finally:
        torch.set_num_threads(prev)
    rec = json.loads(out.read_text())
    assert rec["format"] == record.BENCH_FORMAT and rec["quick"] is True
    for k in ("cpu", "cores", "torch", "device"):
        assert rec["machine"][k]
    dp = rec["data_path"]
    assert dp["n_images"] > 0 and dp["leukcore"]["images_per_s"] > 0 and dp["naive"]["images_per_s"] > 0
    assert dp["ratio"] == pytest.approx(dp["leukcore"]["images_per_s"] / dp["naive"]["images_per_s"])
    assert dp["warmup"]["first_decode_s"] > 0
    rows = rec["train_step"]["cpu"]["models"]
    assert [r["model"] for r in rows] == ["alnet", "dscnet"]
    for r in rows:
        assert r["leukcore"]["images_per_s"] > 0 and r["plain"]["images_per_s"] > 0
        assert r["ratio"] == pytest.approx(r["leukcore"]["images_per_s"] / r["plain"]["images_per_s"])
        assert r["train_flops_per_image"] > 0
    assert rec["study"]["skipped"] is True
    assert rec["load"]["cores"] >= 1 and isinstance(rec["load"]["shared"], bool)
    assert {t["name"] for t in rec["targets"]} >= {"data path vs naive (CPU)"}
    printed = capsys.readouterr().out
    assert "data path: ratio" in printed and str(out) in printed
    md = performance.bench_markdown(rec)
    assert "## Data path" in md and "## Training step" in md and rec["machine"]["cpu"] in md
    assert "leukcore bench --quick" in md


def test_study_timing_runs_in_a_temporary_copy(monkeypatch):
    """bench_study: reproduce into <tmp>/results and <tmp>/book/runs, pages and jupyter-book on the copy."""
    calls = []

    def fake_run(cmd, *, env, cwd, timeout):
        calls.append((cmd, env["LEUKCORE_RESULTS"], str(cwd)))
        if "-c" in cmd and "reproduce(" in cmd[cmd.index("-c") + 1]:
            assert cmd[-1] in env["LEUKCORE_RESULTS"]
            return 0, 12.0, 'noise\nLEUKCORE_BENCH_JSON {"ok": true, "experiments": 3, "failures": {}, "notebooks": []}'
        return 0, 3.0, ""

    monkeypatch.setattr(study, "_run", fake_run)
    st = study.bench_study(log=lambda s: None)
    assert st["reproduce"]["wall_s"] == 12.0 and st["reproduce"]["experiments"] == 3
    assert st["book"]["seconds"] == 6.0 and st["total_s"] == 18.0 and st["ok"] is True
    tmp = calls[0][1].rsplit("/results", 1)[0]
    assert calls[1][0][-1] == tmp + "/book/_generated"  # build_pages into the copy
    assert calls[2][0][1:3] == ["build", tmp] and calls[2][2] == tmp  # jupyter-book on the copy
    assert not __import__("os").path.exists(tmp)  # removed afterwards


@pytest.mark.slow
def test_concurrent_grid_gives_the_sequential_records(tmp_path):
    """Two experiments in two processes at once: same keys, same metrics as one at a time (CPU)."""
    tasks = [("dscnet_vijayalakshmi", "dscnet", 0), ("dscnet_kaur2023", "dscnet-kl-noaug", 0)]
    block = grid.grid_bench(tasks, "smoke", workers=2, scratch=tmp_path, device="cpu",
                         data_root=str(tmp_path / "none"))
    assert block["identical_keys"] is True and block["max_abs_metric_diff"] == 0.0
    seq = [read_record(p) for p in sorted((tmp_path / "sequential").rglob("*.json"))]
    assert block["train_images"] == sum(grid.train_images(r) for r in seq) > 0
    assert block["sequential"]["images_per_s"] == pytest.approx(block["train_images"] / block["sequential"]["wall_s"],
                                                                rel=0.01)
    path = grid.write_grid_block(block, tmp_path / "gpu.json")
    assert json.loads(path.read_text())["grid"]["workers"] == 2


def test_audit_run_times_sums_each_audit(tmp_path):
    base = tmp_path / "audits" / "audit"
    (base / "choices").mkdir(parents=True)
    for arm, seed, secs in (("alexnet_keras", 0, 100.0), ("alexnet_none", 0, 50.5), ("alexnet_none", 1, 20.0)):
        (base / "choices" / f"{arm}.seed{seed}.json").write_text(json.dumps(
            {"experiment": "choices", "arm": arm, "seed": seed, "status": "complete", "wall_time_s": secs,
             "device": "CPU"}))
    (base / "choices.json").write_text(json.dumps({"experiment": "choices", "status": "complete", "arm_records": ["x"],
                                                   "wall_time_s": 170.5}))
    (base / "shortcut_colour.json").write_text(json.dumps(
        {"experiment": "shortcut_colour", "seed": 0, "status": "complete", "wall_time_s": 9.5, "device": "CPU"}))
    t = study.audit_run_times(tmp_path)
    assert t["n"] == 4 and t["total_s"] == 180.0 and t["by_device"] == {"CPU": 180.0}
    assert t["by_audit"] == {"choices": {"n": 3, "total_s": 170.5, "seeds": [0, 1]},
                             "shortcut_colour": {"n": 1, "total_s": 9.5, "seeds": [0]}}
