"""The benchmark record: the measurements named in ``parts`` run in order, written atomically after
each (``results/bench/latest.json``; ``gpu.json`` from a lent GPU), with the targets it is held to.
Rendering it is the book's (:mod:`leukcore.book.performance`)."""
from __future__ import annotations

import datetime as _dt
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..files import atomic_write_text
from .data_path import bench_data_path
from .study import audit_run_times, bench_study, cpu_run_times
from .timing import LoadMonitor, machine_info
from .train_step import bench_train_step

BENCH_FORMAT = "leukcore.bench/1"
#: targets of issue 7
TARGET_DATA_RATIO = 10.0
TARGET_TRAIN_RATIO_CPU = 1.0
TARGET_TRAIN_RATIO_GPU = 3.0
TARGET_STUDY_S = 300.0
#: The audit profile's budget (issue 18): all audits, 3 seeds, on the 2-core CPU / on one H200.
TARGET_AUDIT_CPU_S = 2 * 3600.0
TARGET_AUDIT_GPU_S = 5 * 60.0


def default_out(quick: bool = False) -> Path:
    """``<results>/bench/latest.json`` (``quick.json`` for ``--quick``, so a CI run never
    replaces the record the book shows)."""
    from ..runs.records import results_dir

    return results_dir() / "bench" / ("quick.json" if quick else "latest.json")


def default_gpu_out() -> Path:
    """``<results>/bench/gpu.json``: the record of ``leukcore bench --device cuda`` made on a lent GPU
    machine (``tools/gpu_check.sh``), shown beside the CPU record."""
    from ..runs.records import results_dir

    return results_dir() / "bench" / "gpu.json"


#: the CUDA variants of the training step: record key -> fit settings (``compile`` ones only on request)
CUDA_VARIANTS = (("cuda", {}),
                 ("cuda_nondeterministic", {"deterministic": False}),
                 ("cuda_compile", {"compile": True, "deterministic": False}),
                 ("cuda_graphs", {"compile": "reduce-overhead", "deterministic": False}))
PARTS = ("data", "train", "study")


def run_bench(*, quick: bool = False, reps: int | None = None, skip_study: bool = False, device: str = "auto",
              compile: bool = False, study_threads: Sequence[int | None] | int | None = None,
              out: str | os.PathLike | None = None, parts: Sequence[str] = PARTS, cpu_train: bool = True,
              log: Callable[[str], None] = print) -> dict:
    """Run the measurements named in ``parts`` (``data``, ``train``, ``study``), write the record
    atomically to ``out`` (after each part, so a run stopped early keeps what it measured) and
    return it.

    ``study_threads``: the intra-op thread settings to time the study with (``None`` = torch's
    default); the first is ``record["study"]``, each further one ``record["study_threads<N>"]``.
    On CUDA the training step is timed with fit's defaults (``cuda``), without deterministic
    algorithms (``cuda_nondeterministic``) and, with ``compile``, under ``torch.compile``
    (``cuda_compile``) and its CUDA-graph mode (``cuda_graphs``); a variant that fails is recorded
    with its error and the others go on. ``cpu_train=False`` skips the CPU training step (on a
    GPU machine, whose CPU is not the one the study's CPU figures are about).
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown bench parts {sorted(unknown)}; valid: {', '.join(PARTS)}")
    if not isinstance(study_threads, (list, tuple)):
        study_threads = [study_threads]
    study_threads = list(study_threads) or [None]
    reps = reps or (2 if quick else 3)
    t_all = time.perf_counter()
    from ..engine import resolve_device

    dev = resolve_device(device)
    load = LoadMonitor()
    rec: dict[str, Any] = {
        "format": BENCH_FORMAT, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick, "reps": reps, "command": "leukcore bench" + (" --quick" if quick else "")
        + (" --skip-study" if skip_study else "") + f" --reps {reps}" + (f" --device {device}" if device != "auto" else "")
        + (" --compile" if compile else "")
        + (f" --parts {','.join(parts)}" if tuple(parts) != PARTS else "")
        + ("" if cpu_train else " --no-cpu-train")
        + (" --study-threads " + ",".join(str(t or "default") for t in study_threads) if study_threads != [None] else ""),
        "machine": machine_info(str(dev)),
    }
    try:
        from ..runs.records import git_commit

        rec["commit"] = git_commit()
    except Exception:  # noqa: BLE001
        rec["commit"] = None
    out = Path(out) if out is not None else default_out(quick)

    def save():
        load.sample("save")
        rec["cpu_runs"] = cpu_run_times()
        rec["audit_runs"] = audit_run_times()
        rec["load"] = load.summary()
        rec["targets"] = targets(rec)
        rec["seconds"] = time.perf_counter() - t_all
        atomic_write_text(out, json.dumps(rec, indent=1, default=_json_default) + "\n")

    devices = ["cpu"] + (["cuda"] if dev.type == "cuda" else [])
    if "data" in parts:
        rec["data_path"] = bench_data_path(quick=quick, reps=reps, devices=devices, load=load, log=log)
        save()
    if "train" in parts:
        rec["train_step"] = {}
        if cpu_train or dev.type != "cuda":
            rec["train_step"]["cpu"] = bench_train_step(quick=quick, reps=reps, device="cpu", load=load, log=log)
            save()
        if dev.type == "cuda":
            measured = rec["machine"].get("gpu_bf16_matmul_flops_measured")
            for key, kw in CUDA_VARIANTS:
                if kw.get("compile") and not compile:
                    continue
                log(f"training step, {key}")
                try:
                    blk = bench_train_step(quick=quick, reps=reps, device=str(dev), load=load, log=log, **kw)
                except Exception as e:  # noqa: BLE001 - recorded; the other variants go on
                    import traceback

                    traceback.print_exc()
                    rec["train_step"][key] = {"error": f"{type(e).__name__}: {str(e)[:2000]}", "settings": kw}
                    save()
                    continue
                if measured:
                    blk["gpu_bf16_matmul_flops_measured"] = measured
                    for row in blk["models"]:
                        if row.get("leukcore_tflops") is not None:
                            row["leukcore_matmul_fraction"] = row["leukcore_tflops"] * 1e12 / measured
                            row["plain_matmul_fraction"] = row["plain_tflops"] * 1e12 / measured
                rec["train_step"][key] = blk
                save()
    if "study" not in parts or skip_study or quick:
        rec["study"] = {"skipped": True, "reason": "--quick" if quick else
                        ("--skip-study" if skip_study else "not in --parts")}
    else:
        for i, th in enumerate(study_threads):
            rec["study" if i == 0 else f"study_threads{th or 'default'}"] = bench_study(threads=th, log=log)
            save()
    save()
    rec["_path"] = str(out)
    return rec


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def targets(rec: dict) -> list[dict]:
    """The targets of issue 7 against the record: ``{name, target, measured, met}``."""
    out = []
    dp = rec.get("data_path") or {}
    if "ratio" in dp:
        out.append({"name": "data path vs naive (CPU)", "target": f">= {TARGET_DATA_RATIO:g}x",
                    "measured": f"{dp['ratio']:.1f}x (CPU time {dp['cpu_ratio']:.1f}x"
                    + (f"; on 1 intra-op thread {dp['ratio_1thread']:.1f}x" if dp.get("ratio_1thread") else "")
                    + (f"; on the GPU {dp['ratio_cuda']:.1f}x" if dp.get("ratio_cuda") else "") + ")",
                    "met": dp["ratio"] >= TARGET_DATA_RATIO})
    for dev, blk in (rec.get("train_step") or {}).items():
        goal = TARGET_TRAIN_RATIO_CPU if dev == "cpu" else TARGET_TRAIN_RATIO_GPU
        if "error" in blk:
            out.append({"name": f"trainer vs plain loop ({dev})", "target": f">= {goal:g}x",
                        "measured": "failed: " + blk["error"][:200], "met": False})
        for row in blk.get("models", []):
            out.append({"name": f"trainer vs plain loop, {row['model']}@{row['image_size']} ({dev})",
                        "target": f">= {goal:g}x", "measured": f"{row['ratio']:.2f}x",
                        "met": row["ratio"] >= goal})
    au = rec.get("audit_runs") or {}
    for dev, secs in (au.get("by_device") or {}).items():
        gpu = "CUDA" in dev or "NVIDIA" in dev
        goal = TARGET_AUDIT_GPU_S if gpu else TARGET_AUDIT_CPU_S
        out.append({"name": f"audit profile, all audits, seeds {','.join(map(str, au.get('seeds', [])))} ({dev})",
                    "target": f"< {goal / 60:g} min", "measured": f"{secs / 60:.0f} min (sum of the records' wall_time_s)",
                    "met": secs < goal})
    for key, st in study_blocks(rec):
        out.append({"name": "smoke reproduction + book build" + study_label(st), "target": f"< {TARGET_STUDY_S:g} s",
                    "measured": f"{st['total_s']:.0f} s" + ("" if st.get("ok") else " (with failures)"),
                    "met": st["total_s"] < TARGET_STUDY_S and bool(st.get("ok"))})
    return out


def study_blocks(rec: dict) -> list[tuple[str, dict]]:
    """``(key, block)`` of every measured study in the record (``study``, ``study_threads<N>``)."""
    return [(k, v) for k, v in rec.items() if k.startswith("study") and isinstance(v, dict) and "total_s" in v]


def study_label(st: dict) -> str:
    th = st.get("threads", "default")
    return "" if th in (None, "default") else f" ({th} intra-op thread{'s' if th != 1 else ''})"
