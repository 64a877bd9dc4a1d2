"""How the experiment grid runs: one at a time against several at once on one GPU (processes that
share it, each with its share of the CPU cores; the grid block of the GPU benchmark record), and
the local executor against a local Ray instance."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from .. import data as D
from ..files import atomic_write_text


def train_images(rec: dict) -> int:
    """Training images a record's run went through: sum over folds of epochs run x training images."""
    epochs = int(rec["settings"]["train"].get("epochs", 1))
    hist = rec.get("history") or []
    total = 0
    for i, f in enumerate(rec["split"].get("folds") or []):
        h = hist[i] if i < len(hist) else None
        total += (len(h) if isinstance(h, list) and h else epochs) * int(f.get("train", 0))
    return total


def worker_pool(workers: int):
    """``workers`` spawned processes (at least one) sharing the machine's GPU, each with
    ``cpu_count // workers`` torch and OpenCV threads (:func:`leukcore.engine.set_threads`)."""
    import concurrent.futures as cf
    import multiprocessing as mp

    from ..engine import set_threads

    workers = max(workers, 1)
    return cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=set_threads,
                                  initargs=(max(1, (os.cpu_count() or 1) // workers),))


def _grid_task(task: tuple, profile: str, kw: dict) -> str:
    from ..runs.experiments import run_experiment

    paper, exp, seed = task
    return run_experiment(paper, exp, profile, seed=seed, **kw)["_path"]


def run_concurrent(tasks: list[tuple[str, str, int]], profile: str, *, workers: int, results_dir, data_root=None,
                   device: str = "auto", overrides: dict | None = None) -> tuple[list[dict], float]:
    """Run ``(paper, experiment, seed)`` tasks in ``workers`` spawned processes (1: one at a time, one
    process with every core); return their records (in task order) and the wall time."""
    from ..runs.records import read_record

    kw = dict(results_dir=str(results_dir), data_root=data_root, device=device, overrides=overrides)
    t0 = time.perf_counter()
    with worker_pool(workers) as pool:
        paths = list(pool.map(_grid_task, tasks, [profile] * len(tasks), [kw] * len(tasks)))
    wall = time.perf_counter() - t0
    return [read_record(p) for p in paths], wall


def metric_diff(a: dict, b: dict) -> float:
    """Largest absolute difference between two records' scalar metrics (nested dicts flattened)."""
    def flat(d, pre=""):
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{pre}{k}."))
            elif isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None:
                out[pre + k] = float(v)
        return out
    fa, fb = flat(a["metrics"]), flat(b["metrics"])
    if set(fa) != set(fb):
        return float("inf")
    return max((abs(fa[k] - fb[k]) for k in fa), default=0.0)


def warm_image_cache(tasks, profile: str, data_root, overrides) -> None:
    """Decode each task's images once into the on-disk image cache before anything is timed."""
    from ..runs.inputs import experiment_data, experiment_images
    from ..runs.protocols import experiment_settings, get_experiment
    from ..runs.profiles import get_profile

    seen = set()
    for paper, exp_id, seed in tasks:
        exp, prof = get_experiment(paper, exp_id), get_profile(profile)
        st = experiment_settings(paper, exp, prof, overrides)
        ed = experiment_data(paper, exp, prof, data_root, seed=seed)
        key = (D.fingerprint(ed.table), st["image_size"], str(st.get("preprocess")))
        if key not in seen:
            seen.add(key)
            experiment_images(ed.table, st, "raise")


def grid_bench(tasks: list[tuple[str, str, int]], profile: str, *, workers: int, scratch, data_root=None,
               device: str = "auto", epochs: int | None = None) -> dict:
    """Images/s of a grid run one at a time and ``workers`` at once, and whether the records agree.

    Both runs write into scratch folders (``epochs`` overrides the protocol's, so their keys are
    not the study's). Returns the ``grid`` block of the GPU benchmark record.
    """
    from ..runs.records import record_key

    overrides = {"train": {"epochs": int(epochs)}} if epochs else None
    scratch = Path(scratch)
    warm_image_cache(tasks, profile, data_root, overrides)  # neither timing pays the first decode
    seq, t_seq = run_concurrent(tasks, profile, workers=1, results_dir=scratch / "sequential", data_root=data_root,
                                device=device, overrides=overrides)
    con, t_con = run_concurrent(tasks, profile, workers=workers, results_dir=scratch / "concurrent",
                                data_root=data_root, device=device, overrides=overrides)
    images = sum(train_images(r) for r in seq)
    same_keys = [record_key(a) == record_key(b) for a, b in zip(seq, con)]
    diffs = [metric_diff(a, b) for a, b in zip(seq, con)]
    from ..engine import resolve_device
    from ..runs.records import device_description, nvidia_driver

    dev = str(resolve_device(device))
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device": device_description(dev),
            "driver": nvidia_driver() if dev.startswith("cuda") else None, "profile": profile,
            "epochs": epochs, "experiments": [f"{p}/{e} seed {s}" for p, e, s in tasks], "workers": workers,
            "threads_per_worker": max(1, (os.cpu_count() or 1) // workers), "train_images": images,
            "sequential": {"wall_s": round(t_seq, 2), "images_per_s": round(images / t_seq, 1)},
            "concurrent": {"wall_s": round(t_con, 2), "images_per_s": round(images / t_con, 1)},
            "speedup": round(t_seq / t_con, 3), "identical_keys": all(same_keys),
            "max_abs_metric_diff": max(diffs, default=0.0),
            "data": "each process loads its own copy of the images (decoded-image cache on disk shared)",
            "note": ("wall time includes process start and data loading; on CUDA, cuDNN's non-deterministic "
                     "kernels can make metrics differ slightly between the two runs")}


def write_grid_block(block: dict, bench_path: str | os.PathLike) -> Path:
    """Put ``block`` as ``grid`` into the GPU benchmark record at ``bench_path`` (created if absent)."""
    p = Path(bench_path)
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        rec = {}
    rec["grid"] = block
    atomic_write_text(p, json.dumps(rec, indent=1, default=str) + "\n")
    return p


def bench_ray_vs_local(paper: str = "dscnet_vijayalakshmi", profile: str = "smoke", *, num_cpus: int = 2,
                       out=None, keep_dir=None) -> dict:
    """Wall time of one paper's grid with ``executor="local"`` and ``"ray"`` (a local instance of ``num_cpus``).

    One run of each, local first, in fresh temporary results folders (``keep_dir`` keeps them).
    The Ray time includes starting and stopping the local instance.  Written as JSON to ``out``
    (default ``<results>/bench/ray_vs_local.json``) with ``local_s``, ``ray_s``, ``ratio`` =
    ``ray_s / local_s``, ``experiments``, ``machine``, and whether the two runs' records were equal.
    """
    import platform

    from ..runs.distributed import NUM_CPUS_ENV, driver_threads
    from ..runs.grid import run_grid
    from ..runs.records import device_description, load_records, results_dir

    base = Path(keep_dir) if keep_dir else Path(tempfile.mkdtemp(prefix="leukcore-bench-ray-"))
    prev = os.environ.get(NUM_CPUS_ENV)
    os.environ[NUM_CPUS_ENV] = str(num_cpus)
    try:
        load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        t0 = time.perf_counter()
        loc = run_grid([paper], profile, executor="local", device="cpu", results_dir=base / "local", progress=False)
        local_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ray_res = run_grid([paper], profile, executor="ray", device="cpu", results_dir=base / "ray", progress=False)
        ray_s = time.perf_counter() - t0
        load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

        def stable(r):
            return {k: v for k, v in r.items() if k not in ("wall_time_s", "written_at", "_path", "history", "commit")}

        a = {r["experiment"]: stable(r) for r in load_records(paper, profile, root=base / "local")}
        b = {r["experiment"]: stable(r) for r in load_records(paper, profile, root=base / "ray")}
    finally:
        if prev is None:
            os.environ.pop(NUM_CPUS_ENV, None)
        else:
            os.environ[NUM_CPUS_ENV] = prev
        if not keep_dir:
            shutil.rmtree(base, ignore_errors=True)
    rec = {"paper": paper, "profile": profile, "experiments": len(loc.records) + len(loc.failures),
           "local_s": round(local_s, 2), "ray_s": round(ray_s, 2), "ratio": round(ray_s / local_s, 3),
           "ray_workers": num_cpus, "records_equal": a == b and bool(a), "failures": len(loc.failures) + len(ray_res.failures),
           "torch_threads_per_task": driver_threads(),
           "machine": f"{device_description('cpu')}; {platform.platform()}",
           "load_average_1min": [None if load0 is None else round(load0, 2), None if load1 is None else round(load1, 2)],
           "note": "one run each, local then ray; ray_s includes starting and stopping the local Ray instance"}
    dest = Path(out) if out else results_dir() / "bench" / "ray_vs_local.json"
    atomic_write_text(dest, json.dumps(rec, indent=1) + "\n")
    return rec
