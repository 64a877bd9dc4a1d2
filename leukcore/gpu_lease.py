"""One lease of a lent GPU, turned into as many complete, provenanced records as it allows.

A lent GPU machine comes for about 15 minutes, start included, at most 10 minutes a command, with
a 64 MiB working tree going there and at most 8 files of 16 MiB coming back.  This module plans
and executes that one prepared command (``leukcore gpu ...``, driven by ``tools/gpu_lease.sh``);
what it drives lives where it belongs: the dataset travels in parts (:mod:`leukcore.data.transport`),
the runs are the study's (:mod:`leukcore.runs`, fold by fold for cross-validated experiments,
:mod:`leukcore.runs.folds`), provenance is the records' (:func:`leukcore.runs.records.machine_environment`),
the grid throughput is the benchmark's (:mod:`leukcore.bench.grid`) and the Grad-CAM images are the
book's (:func:`leukcore.book.figures.gradcam_png`, written where the paper pages read them).

* ``pack`` / ``unpack`` / ``check-data``: the Taleqani originals as numbered parts with a manifest;
  the device accumulates parts in a fixed folder outside the repository across back-to-back calls,
  and nothing trains until the assembled folder matches the manifest.
* ``run``: within a time budget, the pending work in a fixed order -- (a) Vijayalakshmi's three
  models for seeds 0, 1, 2; (b) the audits at the ``audit`` profile, 3 seeds; (c) XIncept's seven
  experiments fold by fold (fold 0 of all seven, then fold 1, ...); (d) Kaur's remaining
  experiments, seed 0 -- skipping what already has a complete record and what would not finish in
  the time left, and packing records, predictions and Grad-CAM images into one ``tar.gz`` per stage
  after every finished run (rewritten atomically, so a run stopped at any point keeps all finished
  results).
* ``grid``: the grid block of the GPU benchmark record (:func:`leukcore.bench.grid.grid_bench`).
* ``pool``: the records of cross-validated experiments pooled from their fold records.
* ``collect``: unpack what came back into ``results/`` (and the Grad-CAM images into
  ``book/figures/``) and check every record.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from . import data as D
from .data.transport import check_dataset, manifest_path, pack_dataset, safe_members, unpack_parts
from .files import PROJECT_ROOT, atomic_write_bytes, atomic_write_text
from .runs.folds import find_fold_record, pool_folds, run_fold
from .runs.protocols import n_folds
from .runs.records import machine_environment, tree_changes
from .runs.routes import get_route

#: Where the device assembles the carried dataset (outside the repository copy, which is re-sent).
DEVICE_DATA = "/tmp/leukcore-data"
#: The pack folder (ignored by git; named in the device call's ``carry``).
PACK_DIR = ".gpu-pack"
#: What one returned file may weigh (the device returns files of at most 16 MiB).
MAX_RETURN_BYTES = 16 * 2**20 - 256 * 2**10
#: The stages of a lease, in order.
STAGES = ("vijayalakshmi", "audits", "xincept", "kaur")
STAGE_PAPERS = {"vijayalakshmi": "dscnet_vijayalakshmi", "xincept": "xincept_khan2024", "kaur": "dscnet_kaur2023"}
#: Seconds assumed for one item when no record or benchmark says better.
DEFAULT_ITEM_S = {"smoke": 15.0, "cpu": 300.0, "paper": 120.0, "audit": 120.0}
#: Estimates are multiplied by this before they are compared with the time left.
SAFETY = 1.25
#: Where a packed stage keeps the Grad-CAM images (``collect`` puts them in the book's figures folder).
FIGURES_ARC = "figures"


def _log(msg: str) -> None:
    print(msg, flush=True)


# ============================================================================ what a call carries


def travel_sizes(pack: Path, manifest: dict, root: Path = PROJECT_ROOT) -> list[tuple[str, float]]:
    """MiB each lease call would carry: the working tree that travels (tracked and untracked,
    not ignored) plus the manifest and one part (and ``.whl/`` with the last part)."""
    r = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                       capture_output=True, text=True)
    tree = sum((root / f).stat().st_size for f in r.stdout.split("\0") if f and (root / f).is_file())
    whl = sum(p.stat().st_size for p in (root / ".whl").glob("*.whl")) if (root / ".whl").is_dir() else 0
    man = manifest_path(pack).stat().st_size
    out = []
    for i, name in enumerate(manifest["parts"], 1):
        extra = whl if i == len(manifest["parts"]) else 0
        out.append((f"call {i} ({name}{' + .whl' if extra else ''})",
                    (tree + man + (pack / name).stat().st_size + extra) / 2**20))
    return out


# ============================================================================ work items


@dataclass
class Item:
    """One unit of a lease: an experiment (one seed), one fold of one, or one audit (one seed)."""

    stage: str
    kind: str                 #: experiment | fold | audit
    paper: str
    experiment: str
    seed: int = 0
    fold: int | None = None
    estimate_s: float = 0.0

    @property
    def label(self) -> str:
        s = f"{self.paper}/{self.experiment} seed {self.seed}"
        return s + (f" fold {self.fold}" if self.fold is not None else "")


def _prior_seconds(paper: str, experiment: str, profile: str, results_dir) -> float | None:
    """Wall time of an earlier run of the same experiment at the same profile (any seed; per fold for CV)."""
    from .runs.records import record_path

    base = record_path(paper, profile, experiment, results_dir).parent
    times = []
    for p in list(base.glob(f"{experiment}.json")) + list(base.glob(f"{experiment}.seed*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            r = json.loads(p.read_text())
            times.append(float(r["wall_time_s"]) / max(len(r.get("split", {}).get("folds") or [1]), 1))
    for p in (base / "folds").glob(f"{experiment}.*fold*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            times.append(float(json.loads(p.read_text())["wall_time_s"]))
    return max(times) if times else None


def estimate_seconds(item: Item, profile: str, results_dir=None) -> float:
    """Seconds one item should take: an earlier run's wall time, else the planning estimate
    (:func:`leukcore.runs.distributed.experiment_gpu_seconds`, ``paper`` profile), else a default."""
    if item.kind == "audit":
        from .runs.records import record_path

        p = record_path("audits", profile, item.experiment, results_dir)
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            return float(json.loads(p.read_text())["wall_time_s"])
        return DEFAULT_ITEM_S.get(profile, 120.0)
    prior = _prior_seconds(item.paper, item.experiment, profile, results_dir)
    if prior is not None:
        return prior
    if profile == "paper":
        from .runs.distributed import experiment_gpu_seconds
        from .runs.protocols import get_experiment

        s, _ = experiment_gpu_seconds(item.paper, get_experiment(item.paper, item.experiment))
        return s / n_folds(item.paper, item.experiment, profile)
    return DEFAULT_ITEM_S.get(profile, 120.0)


def audit_profile_name(profile: str) -> str:
    """The audits' profile for a lease at ``profile``: ``audit`` at ``paper``, else the same."""
    return "audit" if profile == "paper" else profile


def _audit_items(profile: str, seeds, *, results_dir, data_root) -> tuple[list[Item], list[str]]:
    """Stage (b), pluggable: the audits at the audit profile, once ``leukcore.audits`` offers it."""
    try:
        from . import audits
    except ImportError as e:
        return [], [f"audits: skipped (leukcore.audits does not import: {e})"]
    from .runs.profiles import list_profiles

    ap = audit_profile_name(profile)
    run = getattr(audits, "get_or_run_audit", None)
    if run is None or ap not in list_profiles():
        return [], [f"audits: skipped (no `{ap}` profile or leukcore.audits.get_or_run_audit yet: the audits issue "
                    f"has not landed)"]
    items, notes = [], []
    for s in seeds:
        for a in audits.list_audits():
            if a not in getattr(audits, "SEEDED_AUDITS", ()) and s != seeds[0]:
                continue  # a single-record audit runs once (deterministic, or not run without its data)
            try:
                have = audits.find_audit_record(a, ap, results_dir=results_dir, seed=s, data_root=data_root)
            except Exception as e:  # noqa: BLE001 - a check that fails means: run it
                have = None
                notes.append(f"audits/{a} seed {s}: record check failed ({type(e).__name__}: {e})")
            if have is None:
                items.append(Item("audits", "audit", "audits", a, seed=s))
    return items, notes


def plan(profile: str = "paper", *, stages=STAGES, seeds=(0, 1, 2), results_dir=None, data_root=None,
         max_folds: int | None = None) -> tuple[list[Item], list[str]]:
    """The pending items of a lease in order, each with its estimate, and notes on what is left out."""
    from .runs.experiments import find_record
    from .runs.protocols import list_experiments

    items: list[Item] = []
    notes: list[str] = []
    for stage in stages:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; valid: {', '.join(STAGES)}")
        if stage == "audits":
            its, ns = _audit_items(profile, seeds, results_dir=results_dir, data_root=data_root)
            items += its
            notes += ns
            continue
        paper = STAGE_PAPERS[stage]
        exps = list_experiments(paper, profile)
        if stage == "vijayalakshmi":
            for s in seeds:
                items += [Item(stage, "experiment", paper, e.id, seed=s) for e in exps
                          if find_record(paper, e.id, profile, results_dir=results_dir, seed=s, data_root=data_root) is None]
        elif stage == "kaur":
            items += [Item(stage, "experiment", paper, e.id, seed=0) for e in exps
                      if find_record(paper, e.id, profile, results_dir=results_dir, seed=0, data_root=data_root) is None]
        else:  # xincept: fold 0 of every model, then fold 1, ...
            if _missing_module("xgboost"):
                notes.append("xincept: xincept-xgboost skipped (xgboost is not installed here: carry the xgboost-cpu "
                             "wheel, see README)")
                exps = [e for e in exps if get_route(e.route).classifier(e) != "xgboost"]
            pending = [e for e in exps
                       if find_record(paper, e.id, profile, results_dir=results_dir, seed=0, data_root=data_root) is None]
            total = max((n_folds(paper, e.id, profile) for e in pending), default=0)
            for k in range(min(total, max_folds) if max_folds else total):
                for e in pending:
                    if find_fold_record(paper, e.id, profile, k, results_dir=results_dir, data_root=data_root) is None:
                        items.append(Item(stage, "fold", paper, e.id, seed=0, fold=k))
    for it in items:
        it.estimate_s = round(estimate_seconds(it, audit_profile_name(profile) if it.kind == "audit" else profile,
                                               results_dir), 1)
    return items, notes


def _missing_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is None


def execute(item: dict, profile: str, *, data_root=None, device: str = "auto", results_dir=None) -> dict:
    """Run one item (a dict of :class:`Item`) here; return the files it wrote and whether it trained."""
    it = Item(**item)
    t0 = time.perf_counter()
    if it.kind == "audit":
        from .audits import get_or_run_audit

        rec = get_or_run_audit(it.experiment, audit_profile_name(profile), data_root=data_root, seed=it.seed,
                               results_dir=results_dir, device=device)
        recs = [rec]
    elif it.kind == "fold":
        rec = run_fold(it.paper, it.experiment, profile, it.fold, data_root=data_root, device=device, seed=it.seed,
                       results_dir=results_dir)
        recs = [rec]  # pooled by the lease's own process (pool_folds), never by two workers at once
    else:
        from .runs.experiments import run_experiment

        rec = run_experiment(it.paper, it.experiment, profile, data_root=data_root, device=device, seed=it.seed,
                             results_dir=results_dir)
        recs = [rec]
    files = []
    for r in recs:
        p = Path(r["_path"])
        files.append(str(p))
        if r.get("predictions"):
            files.append(str(p.with_name(r["predictions"])))
    return {"files": files, "record": recs[0]["_path"], "seconds": round(time.perf_counter() - t0, 1),
            "accuracy": (recs[0].get("metrics") or {}).get("accuracy")}


# ============================================================================ packing


class Packer:
    """One ``<stage>.tar.gz`` per stage under ``out``, rewritten atomically after each finished item.

    Records and predictions go in under their path relative to the results folder, Grad-CAM images
    under ``figures/`` and their path relative to the figures folder, so :func:`collect` puts each
    in place. A tar over the return limit is rewritten without its Grad-CAM images, then without
    its newest files.
    """

    def __init__(self, out: str | os.PathLike, results_dir: str | os.PathLike, figures_dir: str | os.PathLike):
        self.out = Path(out)
        self.roots = {"": Path(results_dir).resolve(), FIGURES_ARC: Path(figures_dir).resolve()}
        self.files: dict[str, list[tuple[str, Path]]] = {}
        self.out.mkdir(parents=True, exist_ok=True)

    def _arcname(self, path: Path) -> str:
        path = Path(path).resolve()
        for prefix, root in self.roots.items():
            if path.is_relative_to(root):
                rel = path.relative_to(root).as_posix()
                return f"{prefix}/{rel}" if prefix else rel
        raise ValueError(f"{path} is neither under the results folder nor the figures folder")

    def add(self, stage: str, paths) -> Path:
        lst = self.files.setdefault(stage, [])
        for p in paths:
            entry = (self._arcname(p), Path(p))
            if entry[0] not in [a for a, _ in lst]:
                lst.append(entry)
        return self.write(stage)

    @staticmethod
    def _blob(entries) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for arc, path in entries:
                if path.is_file():
                    tar.add(path, arcname=arc)
        return buf.getvalue()

    def write(self, stage: str) -> Path:
        entries = list(self.files[stage])
        blob = self._blob(entries)
        if len(blob) > MAX_RETURN_BYTES:
            entries = [e for e in entries if not e[0].endswith(".png")]
            blob = self._blob(entries)
        while len(blob) > MAX_RETURN_BYTES and entries:
            entries.pop()
            blob = self._blob(entries)
            _log(f"pack: {stage}.tar.gz over {MAX_RETURN_BYTES} bytes; newest files left out")
        path = self.out / f"{stage}.tar.gz"
        atomic_write_bytes(path, blob)
        return path


# ============================================================================ the lease


def run_lease(budget_s: float, out: str | os.PathLike, *, profile: str = "paper", device: str = "auto",
              data_root=None, results_dir=None, stages=STAGES, seeds=(0, 1, 2), workers: int = 1,
              gradcam: bool = True, max_folds: int | None = None, reserve_s: float = 15.0,
              allow_dirty: bool = False, require_data: bool | None = None, figures_dir=None) -> dict:
    """Run the pending items in order within ``budget_s`` seconds; pack as it goes; return the summary.

    After a CNN run (fold 0 of a cross-validated one) its Grad-CAM image is drawn by the book's one
    writer (:func:`leukcore.book.figures.gradcam_png`) into ``figures_dir`` (default the book's
    figures folder, where the paper pages read it) and packed with the stage.

    ``workers > 1`` runs that many items at once (processes sharing the GPU, each with
    ``cpu_count // workers`` threads); items start in plan order, each only if its estimate
    (times ``SAFETY``, and the concurrency slowdown) fits in the time left. ``require_data``
    (default: at the ``paper`` profile) refuses to train unless :func:`check_dataset` passes on
    ``data_root``. A dirty tree stops the lease unless ``allow_dirty`` (the diff is then saved).
    """
    from .runs.records import results_dir as _results_dir

    t0 = time.monotonic()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = _results_dir(results_dir)
    changes = tree_changes()
    if changes and not allow_dirty:
        raise RuntimeError("the working tree has changes (git status --porcelain):\n" + changes +
                           "commit them before the lease, so that every record names the code that made it")
    if changes:
        diff = subprocess.run(["git", "diff", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout
        atomic_write_text(out / "lease.diff", changes + "\n" + diff)
    if require_data is None:
        require_data = profile == "paper"
    data_check = None
    if require_data:
        data_root = data_root or DEVICE_DATA
        data_check = check_dataset(data_root)
        _log(f"data: {data_check['dataset']} ({data_check['variant']}) {data_check['n_images']} images, "
             f"fingerprint {data_check['fingerprint']} matches the manifest")
    from .engine import resolve_device

    dev = str(resolve_device(device))
    summary = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "profile": profile, "budget_s": budget_s,
               "workers": workers, "environment": machine_environment(dev), "data": data_check, "items": [], "notes": []}
    items, notes = plan(profile, stages=stages, seeds=seeds, results_dir=res, data_root=data_root, max_folds=max_folds)
    summary["notes"] = notes
    for n in notes:
        _log(n)
    _log(f"plan: {len(items)} pending items, {sum(i.estimate_s for i in items):.0f} s estimated "
         f"(budget {budget_s:.0f} s, {workers} worker(s))")
    from .book.figures import FIGURES_DIR

    figures = Path(figures_dir) if figures_dir is not None else FIGURES_DIR
    packer = Packer(out, res, figures)

    def save_summary():
        summary["elapsed_s"] = round(time.monotonic() - t0, 1)
        atomic_write_text(out / "lease.json", json.dumps(summary, indent=1, default=str) + "\n")

    def left() -> float:
        return budget_s - (time.monotonic() - t0) - reserve_s

    speedup = _grid_speedup(out / "bench_gpu.json") or _grid_speedup(res / "bench" / "gpu.json") or 2.0
    slow = max(1.0, workers / max(speedup, 1.0)) if workers > 1 else 1.0
    summary["concurrency_slowdown"] = round(slow, 2)

    def finished(it: Item, result: dict | None, err: str | None):
        row = {**asdict(it), "status": "done" if err is None else "failed"}
        if err is None:
            row.update(seconds=result["seconds"], accuracy=result["accuracy"], record=result["record"])
            files = list(result["files"])
            if it.kind == "fold":
                try:
                    pooled = pool_folds(it.paper, it.experiment, profile, seed=it.seed, results_dir=res,
                                        data_root=data_root)
                    files += [pooled["_path"], str(Path(pooled["_path"]).with_name(pooled["predictions"]))]
                    row["pooled"] = f"{pooled['status']} ({len(pooled['pooled_from_folds'])} folds)"
                except Exception as e:  # noqa: BLE001 - the fold record is kept; `leukcore gpu pool` redoes it
                    _log(f"pooling {it.label} failed: {type(e).__name__}: {e}")
            if gradcam and it.kind != "audit" and it.fold in (None, 0):
                try:
                    png = _gradcam_for(result["record"], figures, data_root)
                except Exception as e:  # noqa: BLE001 - an image is not worth losing a record
                    png = None
                    _log(f"Grad-CAM of {it.label} failed: {type(e).__name__}: {e}")
                if png is not None:
                    files.append(str(png))
                    row["gradcam"] = str(png)
            packer.add(it.stage, files)
            _log(f"done {it.label}: {result['seconds']:.0f} s (estimated {it.estimate_s:.0f} s), "
                 f"accuracy {row['accuracy'] if row['accuracy'] is None else round(row['accuracy'], 4)}; "
                 f"{time.monotonic() - t0:.0f} s into the lease")
        else:
            row["error"] = err
            _log(f"FAILED {it.label}: {err}")
        summary["items"].append(row)
        save_summary()

    def skip(it: Item, why: str):
        summary["items"].append({**asdict(it), "status": "skipped", "why": why})
        _log(f"skip {it.label}: {why}")

    save_summary()
    kw = dict(data_root=str(data_root) if data_root else None, device=dev, results_dir=str(res))
    if workers <= 1:
        for it in items:
            need = it.estimate_s * SAFETY
            if need > left():
                skip(it, f"estimated {need:.0f} s, {max(left(), 0):.0f} s left")
                continue
            _log(f"start {it.label} (estimated {it.estimate_s:.0f} s)")
            try:
                finished(it, execute(asdict(it), profile, **kw), None)
            except Exception as e:  # noqa: BLE001 - one failure does not stop the lease
                traceback.print_exc()
                finished(it, None, f"{type(e).__name__}: {e}")
    else:
        import concurrent.futures as cf

        from .bench.grid import worker_pool

        with worker_pool(workers) as pool:
            queue = list(items)
            running: dict = {}
            while queue or running:
                while queue and len(running) < workers:
                    it = queue.pop(0)
                    need = it.estimate_s * SAFETY * slow
                    if need > left():
                        skip(it, f"estimated {need:.0f} s at {workers} at once, {max(left(), 0):.0f} s left")
                        continue
                    _log(f"start {it.label} (estimated {it.estimate_s:.0f} s alone)")
                    running[pool.submit(execute, asdict(it), profile, **kw)] = it
                if not running:
                    break
                done, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
                for f in done:
                    it = running.pop(f)
                    try:
                        finished(it, f.result(), None)
                    except Exception as e:  # noqa: BLE001
                        finished(it, None, f"{type(e).__name__}: {e}")
    save_summary()
    n_done = sum(r["status"] == "done" for r in summary["items"])
    _log(f"lease: {n_done} done, {sum(r['status'] == 'failed' for r in summary['items'])} failed, "
         f"{sum(r['status'] == 'skipped' for r in summary['items'])} skipped in {time.monotonic() - t0:.0f} s; "
         f"files in {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
    return summary


def _gradcam_for(record_file: str, figures_dir: Path, data_root) -> Path | None:
    """The book's Grad-CAM image of a finished run (None when it has none: no CNN, no weights, no
    training), at its place under ``figures_dir``; a fold record (fold 0) uses the run's fold-0
    weights, kept where the whole run keeps them."""
    from .book.figures import FIGURES_DIR, gradcam_figure_path, gradcam_png
    from .runs.records import read_record
    from .runs.routes import final_weights_path

    rec = read_record(record_file)
    out = Path(figures_dir) / gradcam_figure_path(rec).relative_to(FIGURES_DIR)
    weights = None
    if "fold" in rec:
        pooled = Path(record_file).parent.parent / f"{Path(record_file).stem.rsplit('.fold', 1)[0]}.json"
        weights = final_weights_path({**rec, "_path": str(pooled)})
    return gradcam_png(record_file, out, weights=weights, data_root=data_root)


def _grid_speedup(bench_record: Path) -> float | None:
    """The concurrent/sequential speed-up in a GPU benchmark record's grid block, if measured."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return float(json.loads(Path(bench_record).read_text())["grid"]["speedup"])
    return None


# ============================================================================ back home


def collect(src: str | os.PathLike, results: str | os.PathLike | None = None, figures: str | os.PathLike | None = None
            ) -> dict:
    """Unpack the returned ``*.tar.gz`` into ``results`` (their ``figures/`` into ``figures``,
    default the book's figures folder) and check every record in them.

    ``bench_gpu.json`` (when it came back) becomes ``<results>/bench/gpu.json``. Returns
    ``{"records": [...], "bad": [...]}``; a record is bad when it is not complete or its
    predictions are missing or differ from their hash.
    """
    from .book.figures import FIGURES_DIR
    from .runs.records import read_predictions, read_record, results_dir

    src, res = Path(src), results_dir(results)
    fig = Path(figures) if figures is not None else FIGURES_DIR
    records, bad = [], []
    for t in sorted(src.glob("*.tar.gz")):
        with tarfile.open(t) as tar:
            members = list(safe_members(tar))
            images = [m for m in members if m.name.startswith(FIGURES_ARC + "/")]
            for m in images:
                m.name = m.name[len(FIGURES_ARC) + 1:]
            tar.extractall(fig, members=images, filter="data")
            members = [m for m in members if m not in images]
            tar.extractall(res, members=members, filter="data")
        for m in members:
            if m.name.endswith(".json"):
                rec = read_record(res / m.name)
                try:
                    if rec.get("status") not in ("complete", "partial"):
                        raise ValueError(f"status {rec.get('status')!r}")
                    if rec.get("predictions"):
                        read_predictions(rec)
                    records.append(m.name)
                except ValueError as e:
                    bad.append(f"{m.name}: {e}")
    g = src / "bench_gpu.json"
    if g.is_file():
        (res / "bench").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(g, res / "bench" / "gpu.json")
    return {"records": records, "bad": bad}


# ============================================================================ CLI


def _cmd(args: argparse.Namespace) -> int:
    c = args.gpu_command
    if c == "pack":
        m = pack_dataset(args.data_root, args.out, variant=args.variant, part_mib=args.part_mib)
        for name in m["parts"]:
            print(f"{Path(args.out) / name}: {(Path(args.out) / name).stat().st_size / 2**20:.1f} MiB")
        print(f"{manifest_path(Path(args.out))}: {m['n_images']} images, fingerprint {m['fingerprint']}")
        ok = True
        for line, mib in travel_sizes(Path(args.out), m):
            ok &= mib <= 64
            print(f"{line}: {mib:.1f} MiB with the working tree" + ("" if mib <= 64 else " -- OVER the 64 MiB a call carries"))
        return 0 if ok else 1
    if c == "unpack":
        r = unpack_parts(args.src, args.dest)
        print(f"parts unpacked in {args.dest}: {', '.join(r['have']) or 'none'}; missing: {', '.join(r['missing']) or 'none'}")
        return 0
    if c == "check-data":
        try:
            r = check_dataset(args.root)
        except D.DataError as e:
            print(f"REFUSED: {e}", file=sys.stderr)
            return 1
        print(f"ok: {r}")
        return 0
    if c == "run":
        try:
            run_lease(args.budget, args.out, profile=args.profile, device=args.device, data_root=args.data_root,
                      results_dir=args.results_dir, stages=args.stages.split(","),
                      seeds=[int(s) for s in args.seeds.split(",")], workers=args.workers,
                      gradcam=not args.no_gradcam, max_folds=args.max_folds, allow_dirty=args.allow_dirty,
                      require_data=True if args.require_data else None)
        except (RuntimeError, D.DataError) as e:
            print(f"REFUSED: {e}", file=sys.stderr)
            return 3
        return 0
    if c == "grid":
        tasks = []
        for t in args.experiments.split(","):
            paper, _, exp = t.partition("/")
            tasks.append((paper, exp, 0))
        from .bench.grid import grid_bench, write_grid_block

        block = grid_bench(tasks, args.profile, workers=args.workers, scratch=args.scratch, data_root=args.data_root,
                           device=args.device, epochs=args.epochs)
        print(json.dumps(block, indent=1))
        if args.bench_out:
            print(f"grid block written to {write_grid_block(block, args.bench_out)}")
        return 0 if block["identical_keys"] else 1
    if c == "pool":
        from .runs.protocols import list_experiments

        for e in list_experiments(args.paper, args.profile):
            r = pool_folds(args.paper, e.id, args.profile, results_dir=args.results_dir, data_root=args.data_root)
            print(f"{args.paper}/{e.id}: " + ("no fold records" if r is None else
                                              f"{r['status']} from folds {r['pooled_from_folds']}, "
                                              f"accuracy {r['metrics']['accuracy']:.4f}"))
        return 0
    if c == "collect":
        r = collect(args.src, args.results_dir)
        print(f"{len(r['records'])} records unpacked; {len(r['bad'])} bad")
        for b in r["bad"]:
            print(f"  BAD {b}")
        return 1 if r["bad"] else 0
    raise ValueError(f"unknown gpu command {c!r}")


def register_cli(subparsers) -> None:
    """``leukcore gpu pack|unpack|check-data|run|grid|pool|collect``."""
    from .runs.profiles import list_profiles

    g = subparsers.add_parser("gpu", help="one lease of a lent GPU: carry the data, run pending work, bring it back")
    gs = g.add_subparsers(dest="gpu_command", required=True)
    p = gs.add_parser("pack", help="the Taleqani originals as numbered parts + manifest (to carry)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--out", default=PACK_DIR)
    p.add_argument("--variant", default="original")
    p.add_argument("--part-mib", type=float, default=38.0)
    u = gs.add_parser("unpack", help="device side: add the carried parts to the assembled dataset")
    u.add_argument("--src", default=PACK_DIR)
    u.add_argument("--dest", default=DEVICE_DATA)
    c = gs.add_parser("check-data", help="refuse unless the assembled dataset matches its manifest")
    c.add_argument("--root", default=DEVICE_DATA)
    r = gs.add_parser("run", help="pending work within a time budget, packed into OUT as it goes")
    r.add_argument("--budget", type=float, required=True, help="seconds")
    r.add_argument("--out", required=True)
    r.add_argument("--profile", default="paper", choices=list_profiles())
    r.add_argument("--device", default="auto")
    r.add_argument("--data-root", default=None)
    r.add_argument("--results-dir", default=None)
    r.add_argument("--stages", default=",".join(STAGES))
    r.add_argument("--seeds", default="0,1,2")
    r.add_argument("--workers", type=int, default=1, help="items at once (processes sharing the GPU)")
    r.add_argument("--max-folds", type=int, default=None)
    r.add_argument("--no-gradcam", action="store_true")
    r.add_argument("--allow-dirty", action="store_true", help="run on a changed tree (its diff is saved in OUT)")
    r.add_argument("--require-data", action="store_true", help="check the assembled dataset at any profile")
    gr = gs.add_parser("grid", help="grid throughput: one at a time against several at once")
    gr.add_argument("--experiments", required=True, help="comma-separated paper/experiment")
    gr.add_argument("--profile", default="paper", choices=list_profiles())
    gr.add_argument("--workers", type=int, default=4)
    gr.add_argument("--epochs", type=int, default=None)
    gr.add_argument("--device", default="auto")
    gr.add_argument("--data-root", default=None)
    gr.add_argument("--scratch", default="/tmp/leukcore-grid")
    gr.add_argument("--bench-out", default=None, help="GPU benchmark record to put the grid block in")
    po = gs.add_parser("pool", help="pool fold records into experiment records")
    po.add_argument("--paper", default="xincept_khan2024")
    po.add_argument("--profile", default="paper", choices=list_profiles())
    po.add_argument("--results-dir", default=None)
    po.add_argument("--data-root", default=None)
    co = gs.add_parser("collect", help="unpack returned files into results/ and check them")
    co.add_argument("src")
    co.add_argument("--results-dir", default=None)
    g.set_defaults(func=_cmd)
