"""The whole study: the smoke reproduction and the book build in a subprocess on temporary copies,
and the recorded wall times of the ``cpu``-profile runs and of the audit profile."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from ..files import PROJECT_ROOT

_STUDY_CODE = r"""
import json, sys, time
from pathlib import Path
from leukcore.runs.protocols import list_papers
from leukcore.book.runner import reproduce
tmp = Path(sys.argv[1])
t0 = time.perf_counter()
s = reproduce(list_papers(), "smoke", results_dir=str(tmp / "results"), runs_dir=tmp / "book" / "runs",
              progress=False, force=True)
out = {"seconds": time.perf_counter() - t0, "experiments_s": s.grid.wall_time_s,
       "experiments": len(s.grid.records), "failures": {f"{p}/{e}": str(v)[-500:] for (p, e), v in s.grid.failures.items()},
       "notebooks": [{"paper": r.paper, "status": r.status, "seconds": r.seconds, "error": (r.error or "")[-800:] or None}
                     for r in s.runs], "ok": bool(s.ok)}
print("LEUKCORE_BENCH_JSON " + json.dumps(out))
"""
_PAGES_CODE = r"""
import sys
from pathlib import Path
from leukcore.book.pages import build_pages
build_pages(Path(sys.argv[1]))
"""


def _run(cmd: list[str], *, env: dict, cwd: Path, timeout: float) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out = -9, f"timed out after {timeout:.0f} s: {(e.stdout or '')[-2000:]}"
    return rc, time.perf_counter() - t0, out


def bench_study(*, timeout: float = 3600.0, keep: bool = False, threads: int | None = None,
                log: Callable[[str], None] = print) -> dict:
    """Wall time of the smoke reproduction of every paper plus the book build, in a temporary copy.

    1. ``leukcore.book.runner.reproduce(all papers, "smoke", force=True)`` in a subprocess, with run
       records in ``<tmp>/results`` and executed pages in ``<tmp>/book/runs`` (the ``reproduce``
       command writes pages into the checkout's ``book/runs``; the same function with ``runs_dir``
       keeps the checkout untouched; ``force`` so that every notebook runs even where the copied
       page is of a higher profile);
    2. the book build of ``make book`` on a copy (``book/``, ``_config.yml``, ``_toc.yml``,
       ``notebooks/``): ``leukcore.book.pages.build_pages`` into ``<tmp>/book/_generated`` with
       ``LEUKCORE_RESULTS=<tmp>/results``, then ``jupyter-book build <tmp> --warningiserror
       --keep-going``.
    ``threads``: torch intra-op threads of the subprocesses (``OMP_NUM_THREADS`` and
    ``MKL_NUM_THREADS``, inherited by the notebook kernels); ``None`` leaves torch's default (one
    per core). Returns seconds of each part, the total, and what failed.
    """
    tmp = Path(tempfile.mkdtemp(prefix="leukcore-bench-study-"))
    env = dict(os.environ, LEUKCORE_RESULTS=str(tmp / "results"), PYTHONUNBUFFERED="1")
    if threads:
        env.update(OMP_NUM_THREADS=str(int(threads)), MKL_NUM_THREADS=str(int(threads)))
    out: dict[str, Any] = {"tmp": None if not keep else str(tmp), "threads": int(threads) if threads else "default",
                           "command": "leukcore.book.runner.reproduce(list_papers(), 'smoke', results_dir=<tmp>/results, "
                                      "runs_dir=<tmp>/book/runs, force=True) + build_pages + jupyter-book build"}
    try:
        # the committed run pages come along (pages no notebook makes stay); reproduce(force=True)
        # executes every notebook anew over them, whatever the profile of the committed page
        ign = shutil.ignore_patterns("_generated", "_build", ".ipynb_checkpoints")
        shutil.copytree(PROJECT_ROOT / "book", tmp / "book", ignore=ign)
        for f in ("_config.yml", "_toc.yml"):
            if (PROJECT_ROOT / f).is_file():
                shutil.copy2(PROJECT_ROOT / f, tmp / f)
        if (PROJECT_ROOT / "notebooks").is_dir():
            shutil.copytree(PROJECT_ROOT / "notebooks", tmp / "notebooks",
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        log("study: smoke reproduction of all papers (subprocess) ...")
        rc, secs, text = _run([sys.executable, "-c", _STUDY_CODE, str(tmp)], env=env, cwd=PROJECT_ROOT,
                              timeout=timeout)
        rep = {"rc": rc, "seconds": secs}
        for line in text.splitlines():
            if line.startswith("LEUKCORE_BENCH_JSON "):
                rep.update(json.loads(line.split(" ", 1)[1]))
        if rc != 0 and "ok" not in rep:
            rep["error"] = text[-1500:]
        rep["wall_s"] = secs
        out["reproduce"] = rep
        log(f"  reproduce: {secs:.1f} s (rc {rc})")
        rc, s_pages, text = _run([sys.executable, "-c", _PAGES_CODE, str(tmp / "book" / "_generated")], env=env,
                                 cwd=PROJECT_ROOT, timeout=timeout)
        pages = {"rc": rc, "seconds": s_pages}
        if rc != 0:
            pages["error"] = text[-1500:]
        jb = Path(sys.executable).with_name("jupyter-book")
        jb_cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(tmp), "--warningiserror", "--keep-going"]
        rc, s_jb, text = _run(jb_cmd, env=env, cwd=tmp, timeout=timeout)
        jbr = {"rc": rc, "seconds": s_jb, "warnings": _warnings(text, tmp)}
        if rc != 0:
            jbr["error"] = text[-1500:]
        out["book"] = {"build_pages": pages, "jupyter_book": jbr, "seconds": s_pages + s_jb,
                       "ok": pages["rc"] == 0 and jbr["rc"] == 0}
        log(f"  book build: {s_pages + s_jb:.1f} s (pages rc {pages['rc']}, jupyter-book rc {jbr['rc']})")
        out["total_s"] = out["reproduce"]["wall_s"] + out["book"]["seconds"]
        out["ok"] = bool(out["reproduce"].get("ok")) and out["book"]["ok"]
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _warnings(text: str, tmp: Path) -> list[str]:
    """The distinct Sphinx ``WARNING`` / ``ERROR`` lines of a build log, colour codes and the
    temporary folder removed."""
    import re

    out = []
    for line in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines():
        if "WARNING:" in line or "ERROR:" in line:
            line = line.replace(str(tmp) + "/", "").strip()
            if line not in out:
                out.append(line)
    return out[:20]


def cpu_run_times(root: str | os.PathLike | None = None) -> dict:
    """``wall_time_s`` of every ``cpu``-profile run record (``<results>/<paper>/cpu/*.json``)."""
    from ..runs.records import read_record, results_dir

    base = results_dir(root)
    runs = []
    for p in sorted(base.glob("*/cpu/*.json")):
        rec = read_record(p)  # a damaged record raises RecordError: its time is not left out in silence
        if "wall_time_s" not in rec:
            continue
        runs.append({"paper": p.parent.parent.name, "experiment": rec.get("experiment", p.stem),
                     "status": rec.get("status"), "wall_time_s": rec.get("wall_time_s"),
                     "device": rec.get("device")})
    total = sum(float(r["wall_time_s"] or 0) for r in runs)
    return {"results_dir": os.path.relpath(base, PROJECT_ROOT) if str(base).startswith(str(PROJECT_ROOT)) else str(base),
            "runs": runs, "n": len(runs), "total_s": total}


def audit_run_times(root: str | os.PathLike | None = None, profile: str = "audit") -> dict:
    """The audit profile's cost from its records: ``wall_time_s`` of every arm record
    (``<results>/audits/<profile>/<audit>/<arm>.seed<k>.json``) and of every single-record audit
    (``<results>/audits/<profile>/<audit>.json`` that pools no arm records), summed per device and per audit."""
    from ..runs.records import read_record, results_dir

    base = results_dir(root) / "audits" / profile
    runs = []
    for p in sorted(base.glob("*/*.seed*.json")) + sorted(base.glob("*.json")):
        rec = read_record(p)  # a damaged record raises RecordError: its time is not left out in silence
        if rec.get("arm_records") is not None or "wall_time_s" not in rec:
            continue  # a summary: its time is its arms'
        runs.append({"audit": rec.get("experiment"), "arm": rec.get("arm"), "seed": rec.get("seed"),
                     "status": rec.get("status"), "wall_time_s": float(rec.get("wall_time_s") or 0),
                     "device": rec.get("device")})
    by_device: dict[str, float] = {}
    by_audit: dict[str, dict] = {}
    for r in runs:
        by_device[str(r["device"])] = by_device.get(str(r["device"]), 0.0) + r["wall_time_s"]
        a = by_audit.setdefault(str(r["audit"]), {"n": 0, "total_s": 0.0, "seeds": set()})
        a["n"] += 1
        a["total_s"] += r["wall_time_s"]
        if r["seed"] is not None:
            a["seeds"].add(int(r["seed"]))
    by_audit = {k: {**v, "seeds": sorted(v["seeds"])} for k, v in sorted(by_audit.items())}
    return {"profile": profile, "n": len(runs), "total_s": sum(r["wall_time_s"] for r in runs),
            "by_device": by_device, "by_audit": by_audit,
            "seeds": sorted({r["seed"] for r in runs if r["seed"] is not None}), "runs": runs}
