"""leukcore.book.performance: the benchmark records rendered as the performance page."""
from __future__ import annotations

import json
import re

import pytest

from leukcore.bench import cli, record, study, timing
from leukcore.book import performance


def test_markdown_of_a_full_record_and_cpu_run_times(tmp_path):
    rec_dir = tmp_path / "results" / "alnet_jawahar2022" / "cpu"
    rec_dir.mkdir(parents=True)
    (rec_dir / "e1.json").write_text(json.dumps({"experiment": "e1", "status": "complete", "wall_time_s": 90.5}))
    (rec_dir / "e1.abc.predictions.csv").write_text("id\n")
    cr = study.cpu_run_times(tmp_path / "results")
    assert cr["n"] == 1 and cr["runs"][0]["wall_time_s"] == 90.5 and cr["total_s"] == 90.5
    b = timing.summarize([1.0, 1.2], items=100)
    b.update(cpu_ms_per_image=5.0, device="cpu")
    rec = {"created": "2026-01-01T00:00:00+00:00", "command": "leukcore bench", "quick": False,
           "machine": {"cpu": "Test CPU", "cores": 2, "torch": "2.x", "torch_threads": 2},
           "load": {"note": "machine shared", "max_load1": 3.0},
           "data_path": {"n_images": 100, "note": "real", "image_size": 224, "batch_size": 32, "augment": "dscnet",
                         "naive_workers": 2, "leukcore": b, "naive": b, "ratio": 1.0, "ratio_range": [0.8, 1.2],
                         "cpu_ratio": 1.0, "warmup": {"first_decode_s": 2.0, "first_decode_images_per_s": 50,
                                                       "from_disk_cache_s": 0.5, "to_tensor_s": 0.1,
                                                       "tensor_mb": 14.0}},
           "train_step": {"cuda": {"batch_size": 32, "steps_per_rep": 6, "optimizer": "adam", "leukcore_mode": "bf16",
                                   "plain_mode": "fp32", "models": [{
                                       "model": "alnet", "image_size": 224, "leukcore": b, "plain": b, "ratio": 1.0,
                                       "train_flops_per_image": 2e9, "leukcore_tflops": 0.2, "plain_tflops": 0.2,
                                       "leukcore_peak_fraction": 0.1, "plain_peak_fraction": 0.05}]}},
           "study": {"reproduce": {"wall_s": 100.0, "ok": True, "notebooks": [{"paper": "p", "seconds": 3.0,
                                                                           "status": "executed"}]},
                     "book": {"seconds": 50.0, "ok": True}, "total_s": 150.0, "ok": True},
           "cpu_runs": cr}
    rec["study_threads1"] = {"threads": 1, "reproduce": {"wall_s": 400.0, "ok": True}, "book": {"seconds": 50.0,
                                                                                           "ok": True},
                             "total_s": 450.0, "ok": True}
    rec["targets"] = record.targets(rec)
    assert [t["met"] for t in rec["targets"]] == [False, False, True, False]
    assert rec["targets"][3]["name"] == "smoke reproduction + book build (1 intra-op thread)"
    md = re.sub(r" +", " ", performance.bench_markdown(rec))  # a markdown table's cell padding is not its content
    assert "Test CPU" in md and "10.0 %" in md and "| **total** (default threads; experiments on the smoke profile's 1) | **150** | ok |" in md
    assert "alnet_jawahar2022 | e1 | 90" in md or "| alnet_jawahar2022 | e1 | 90" in md
    assert "--quick" not in md
    text = cli.bench_table_text(rec)
    assert "study: total" in text and "study: total (1 intra-op thread)" in text and "NOT MET" in text
    assert "| **total** (1 intra-op thread) | **450** | ok |" in md


def test_performance_markdown_without_and_with_a_record(tmp_path):
    assert "leukcore bench" in performance.performance_markdown(tmp_path / "none.json")
    rec = {"created": "x", "machine": {"cpu": "Test CPU"}, "quick": True}
    (tmp_path / "r.json").write_text(json.dumps(rec))
    md = performance.performance_markdown(tmp_path / "r.json")
    assert "Test CPU" in md and "{warning}" in md and "Not measured" in md


def test_unknown_parts_refused_and_gpu_section_rendered(tmp_path):
    with pytest.raises(ValueError, match="unknown bench parts"):
        record.run_bench(parts=["data", "gpu"], out=tmp_path / "x.json")
    b = timing.summarize([1.0, 1.1], items=100)
    b.update(cpu_ms_per_image=1.0)
    cpu_rec = {"created": "x", "machine": {"cpu": "Test CPU"}, "quick": False}
    gpu_rec = {"created": "y", "machine": {"cpu": "Host CPU", "gpu": "NVIDIA H200"}, "quick": False,
               "data_path": {"n_images": 800, "image_size": 224, "batch_size": 32, "augment": "dscnet",
                             "naive_workers": 2, "ratio": 2.0, "ratio_range": [1.5, 2.5], "cpu_ratio": 1.0,
                             "note": "synthetic stand-in for taleqani-all: the real data were not found "
                                     "(looked at /home/someone/data)",
                             "leukcore": dict(b, device="cpu"), "naive": dict(b, device="cpu"),
                             "warmup": {"first_decode_s": 1.0, "first_decode_images_per_s": 800,
                                        "from_disk_cache_s": 0.1, "to_tensor_s": 0.1, "tensor_mb": 1.0}},
               "train_step": {"cuda_graphs": {"error": "RuntimeError: no graphs", "settings": {"compile": "x"}}},
               "cpu_runs": {"runs": [{"paper": "p", "experiment": "e", "wall_time_s": 1.0}], "n": 1, "total_s": 1.0}}
    gpu_rec["targets"] = record.targets(gpu_rec)
    assert any(t["measured"].startswith("failed: RuntimeError") and not t["met"] for t in gpu_rec["targets"])
    (tmp_path / "cpu.json").write_text(json.dumps(cpu_rec))
    (tmp_path / "gpu.json").write_text(json.dumps(gpu_rec))
    md = performance.performance_markdown(tmp_path / "cpu.json", tmp_path / "gpu.json")
    head, gpu = md.split("## On a GPU", 1)
    assert "Test CPU" in head and "NVIDIA H200" in gpu
    assert "### Data path" in gpu and "### Whole study" not in gpu and "cpu`-profile runs" not in gpu
    assert "/home/someone" not in md  # no machine paths from the record's note
    assert "leukcore (torch backend)" in gpu  # a record from before the OpenCV backend says which ran
    assert "failed, `RuntimeError: no graphs`" in gpu
    assert performance.performance_markdown(tmp_path / "cpu.json", tmp_path / "none.json").count("On a GPU") == 0


def test_grid_markdown():
    assert "Not measured yet" in performance.grid_markdown(None)
    md = performance.grid_markdown({"experiments": ["p/a seed 0", "p/b seed 0"], "profile": "paper", "epochs": 10,
                        "device": "NVIDIA H200", "workers": 4, "threads_per_worker": 4,
                        "sequential": {"wall_s": 100.0, "images_per_s": 520.0},
                        "concurrent": {"wall_s": 40.0, "images_per_s": 1300.0}, "speedup": 2.5,
                        "identical_keys": True, "max_abs_metric_diff": 0.0, "note": "n"})
    md = re.sub(r" +", " ", md)  # a markdown table's cell padding is not its content
    assert "| one at a time (1 process, every CPU core) | 100 | 520 |" in md
    assert "| 4 at once (4 CPU threads each, same GPU) | 40 | 1300 |" in md
    assert "**2.50x**" in md and "identical" in md
