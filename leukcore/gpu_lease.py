"""One lease of a lent GPU, turned into as many complete, provenanced records as it allows.

A lent GPU machine comes for about 15 minutes, start included, at most 10 minutes a command, with
a 64 MiB working tree going there and at most 8 files of 16 MiB coming back.  This module is the
one prepared command for it (``leukcore gpu ...``, driven by ``tools/gpu_lease.sh``):

* ``pack`` / ``unpack`` / ``check-data``: the Taleqani originals (about 76 MB, more than one call
  carries) travel as numbered parts with a manifest (file list, SHA-256 of each file, the
  dataset fingerprint :func:`leukcore.data.fingerprint`); the device accumulates parts in a
  fixed folder outside the repository across back-to-back calls, and nothing trains until the
  assembled folder matches the manifest and the dataset's ``SHA256SUMS`` (else the refusal names
  the missing parts).
* ``run``: within a time budget, the pending work in a fixed order -- (a) Vijayalakshmi's three
  models for seeds 0, 1, 2; (b) the audits at the ``audit`` profile, 3 seeds (when that profile
  exists); (c) XIncept's seven experiments fold by fold (fold 0 of all seven, then fold 1, ...);
  (d) Kaur's remaining experiments, seed 0 -- skipping what already has a complete record and
  what would not finish in the time left, and packing records, predictions and small Grad-CAM
  images into one ``tar.gz`` per stage after every finished run (rewritten atomically, so a run
  stopped at any point keeps all finished results).
* ``grid``: several experiments at once on one GPU (processes, each with its share of the CPU
  cores, all on the same GPU; each process loads its own data) against one at a time: images/s of
  the whole grid, and a check that both give records identical in key and equal in metrics. The
  result is the ``grid`` block of the GPU benchmark record.
* ``collect``: unpack what came back into ``results/`` and check every record.

Cross-validated experiments run one fold at a time (:mod:`leukcore.runs.experiments`): :func:`run_fold` writes
``<paper>/<profile>/folds/<run>.fold<k>.json`` (with its predictions), keyed like a whole-run
record (same settings hash, dataset fingerprint, seed); :func:`pool_folds` builds the usual
record ``<paper>/<profile>/<run>.json`` from all ``k`` fold records (out-of-fold predictions in fold
order, metrics and intervals recomputed; the same record :func:`~leukcore.runs.experiments.run_experiment`
writes, up to wall time) and, while folds are missing, a ``status: "partial"`` record
``folds/<run>.partial.json`` of the folds done.
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

import numpy as np

from . import data as D
from .files import PROJECT_ROOT, atomic_write_bytes, atomic_write_text
from .runs.experiments import find_fold_record, n_folds, pool_folds, run_fold

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


def _log(msg: str) -> None:
    print(msg, flush=True)


# ============================================================================ provenance


def tree_changes(cwd: Path = PROJECT_ROOT) -> str | None:
    """``git status --porcelain`` of the checkout ("" when clean), or None outside git."""
    try:
        r = subprocess.run(["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def gpu_driver_version() -> str | None:
    """The NVIDIA driver version (``nvidia-smi``, else NVML), or None without one."""
    from .runs.records import nvidia_driver

    v = nvidia_driver()
    if v:
        return v
    try:
        import pynvml

        pynvml.nvmlInit()
        v = pynvml.nvmlSystemGetDriverVersion()
        return v.decode() if isinstance(v, bytes) else str(v)
    except Exception:  # noqa: BLE001 - optional
        return None


def environment(device: str) -> dict:
    """What ran: commit, tree state, device (GPU, driver), library versions."""
    from .runs.records import device_description, git_commit, library_versions

    return {"commit": git_commit(), "tree_changes": tree_changes(), "device": device_description(device),
            "driver": gpu_driver_version() if device.startswith("cuda") else None,
            "versions": library_versions(), "cpu_count": os.cpu_count()}


# ============================================================================ data that travels


def _manifest_path(folder: Path) -> Path:
    return Path(folder) / "manifest.json"


def pack_dataset(data_root: str | os.PathLike, out: str | os.PathLike = PACK_DIR, *, dataset: str = "taleqani-all",
                 variant: str = "original", part_mib: float = 38.0) -> dict:
    """Write ``dataset``'s images as numbered uncompressed tar parts of at most ``part_mib`` MiB, and a manifest.

    The manifest lists every file (path under the data root, SHA-256, size, part), the dataset
    fingerprint of the loaded table and the SHA-256 of the dataset's ``SHA256SUMS`` (shipped in part 1).
    """
    table = D.load_dataset(dataset, data_root, variant=variant, verbose=False)
    root = Path(table.attrs["root"])
    files = [(f"{dataset}/{Path(p).relative_to(root).as_posix()}", Path(p)) for p in sorted(table["path"])]
    sums = root / "SHA256SUMS"
    extra = [(f"{dataset}/SHA256SUMS", sums)] if sums.is_file() else []
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(f"{dataset}.part*.tar"):
        old.unlink()
    limit = int(part_mib * 2**20)
    parts: list[list[tuple[str, Path]]] = [[]]
    size = 0
    for rel, p in extra + files:
        n = p.stat().st_size + 1024  # tar header and padding
        if parts[-1] and size + n > limit:
            parts.append([])
            size = 0
        parts[-1].append((rel, p))
        size += n
    entries = []
    for i, part in enumerate(parts, 1):
        name = f"{dataset}.part{i}of{len(parts)}.tar"
        tmp = out / f".{name}.tmp"
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for rel, p in part:
                info = tar.gettarinfo(str(p), arcname=rel)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                with open(p, "rb") as fh:
                    tar.addfile(info, fh)
        os.replace(tmp, out / name)
        for rel, p in part:
            entries.append({"path": rel, "sha256": D.sha256_file(p), "bytes": p.stat().st_size, "part": name})
    manifest = {"dataset": dataset, "variant": variant, "fingerprint": D.fingerprint(table),
                "n_images": int(len(table)), "parts": [f"{dataset}.part{i}of{len(parts)}.tar" for i in range(1, len(parts) + 1)],
                "sha256sums": D.sha256_file(sums) if sums.is_file() else None, "files": entries}
    atomic_write_text(_manifest_path(out), json.dumps(manifest, indent=1) + "\n")
    return manifest


def travel_sizes(pack: Path, manifest: dict, root: Path = PROJECT_ROOT) -> list[tuple[str, float]]:
    """MiB each lease call would carry: the working tree that travels (tracked and untracked,
    not ignored) plus the manifest and one part (and ``.whl/`` with the last part)."""
    r = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                       capture_output=True, text=True)
    tree = sum((root / f).stat().st_size for f in r.stdout.split("\0") if f and (root / f).is_file())
    whl = sum(p.stat().st_size for p in (root / ".whl").glob("*.whl")) if (root / ".whl").is_dir() else 0
    man = _manifest_path(pack).stat().st_size
    out = []
    for i, name in enumerate(manifest["parts"], 1):
        extra = whl if i == len(manifest["parts"]) else 0
        out.append((f"call {i} ({name}{' + .whl' if extra else ''})",
                    (tree + man + (pack / name).stat().st_size + extra) / 2**20))
    return out


def _safe_members(tar: tarfile.TarFile):
    for m in tar.getmembers():
        p = Path(m.name)
        if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):
            raise ValueError(f"{tar.name}: unsafe member {m.name!r}")
        yield m


def unpack_parts(src: str | os.PathLike = PACK_DIR, dest: str | os.PathLike = DEVICE_DATA) -> dict:
    """Extract the parts present in ``src`` into ``dest`` (kept across calls), with the manifest.

    Returns ``{"have": [...], "missing": [...]}`` (parts, by the manifest's names).
    """
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if _manifest_path(src).is_file():
        shutil.copyfile(_manifest_path(src), _manifest_path(dest))
    if not _manifest_path(dest).is_file():
        raise D.DataError(f"no manifest.json in {src} or {dest}: carry {PACK_DIR}/manifest.json "
                          f"(made by `leukcore gpu pack`)")
    manifest = json.loads(_manifest_path(dest).read_text())
    done = dest / ".parts"
    done.mkdir(exist_ok=True)
    for name in manifest["parts"]:
        p = src / name
        if p.is_file():
            with tarfile.open(p) as tar:
                tar.extractall(dest, members=list(_safe_members(tar)), filter="data")
            (done / name).write_text("ok\n")
    have = [n for n in manifest["parts"] if (done / n).is_file()]
    return {"have": have, "missing": [n for n in manifest["parts"] if n not in have]}


def check_dataset(root: str | os.PathLike = DEVICE_DATA) -> dict:
    """Refuse (:class:`~leukcore.data.DataError`) unless ``root`` holds the manifest's complete dataset.

    Checks: every part unpacked, every file's SHA-256, the lines of ``SHA256SUMS`` for the variant,
    and the fingerprint of the table :func:`leukcore.data.load_dataset` loads from ``root``.
    """
    root = Path(root)
    mp = _manifest_path(root)
    if not mp.is_file():
        raise D.DataError(f"{root}: no manifest.json; run `leukcore gpu unpack` with the carried parts first")
    m = json.loads(mp.read_text())
    missing_parts = [n for n in m["parts"] if not (root / ".parts" / n).is_file()]
    bad = []
    for f in m["files"]:
        p = root / f["path"]
        if not p.is_file() or p.stat().st_size != f["bytes"] or D.sha256_file(p) != f["sha256"]:
            bad.append(f)
    if missing_parts or bad:
        parts = sorted(set(missing_parts) | {f["part"] for f in bad})
        raise D.DataError(f"{root}: dataset {m['dataset']} incomplete: {len(bad)} of {len(m['files'])} files missing "
                          f"or different; carry and unpack the part(s) {', '.join(parts)} (made by `leukcore gpu pack`)")
    ds_dir = root / m["dataset"]
    sums = ds_dir / "SHA256SUMS"
    if m.get("sha256sums"):
        if not sums.is_file() or D.sha256_file(sums) != m["sha256sums"]:
            raise D.DataError(f"{sums}: missing or not the SHA256SUMS the manifest names")
        prefix = {"original": "./Original/", "segmented": "./Segmented/"}.get(m["variant"], "./")
        want = {}
        for line in sums.read_text().splitlines():
            h, _, rel = line.partition("  ")
            if rel.startswith(prefix):
                want[f"{m['dataset']}/{rel[2:]}"] = h
        have = {f["path"]: f["sha256"] for f in m["files"] if not f["path"].endswith("SHA256SUMS")}
        if want != have:
            diff = sorted(set(want) ^ set(have)) or sorted(k for k in want if want[k] != have.get(k))
            raise D.DataError(f"{root}: the assembled files disagree with {sums} ({len(diff)} paths, e.g. {diff[:3]})")
    table = D.load_dataset(m["dataset"], root, variant=m["variant"], verbose=False)
    fp = D.fingerprint(table)
    if fp != m["fingerprint"]:
        raise D.DataError(f"{root}: dataset fingerprint {fp} is not the manifest's {m['fingerprint']}")
    return {"dataset": m["dataset"], "variant": m["variant"], "fingerprint": fp, "n_images": int(len(table))}


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
        from .runs.experiments import get_experiment

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
    from .runs.experiments import find_record, list_experiments

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
                exps = [e for e in exps if e.classifier != "xgboost" and e.route != "fusion"]
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


# ============================================================================ Grad-CAM images


def collapsed(rec: dict) -> bool:
    """True when a record's predictions all fall in one class (its Grad-CAM would show nothing useful)."""
    from .runs.records import read_predictions

    p = read_predictions(rec)
    prob = p[[c for c in p.columns if c.startswith("p_")]].to_numpy()
    return len(np.unique(prob.argmax(1))) < 2


def gradcam_png(rec: dict, out: str | os.PathLike, *, n: int = 4, weights=None, data_root=None) -> Path | None:
    """A small PNG of Grad-CAM maps of a CNN run's fold-0 model on its first ``n`` test images.

    None (and nothing written) when the run is not a CNN, its weights are absent (not kept for
    models over 30 M parameters), or its predictions collapse to one class.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from .runs.experiments import new_model, experiment_data, final_weights_path, get_experiment
    from .runs.profiles import get_profile
    from .runs.records import read_predictions
    from .engine.explain import grad_cam

    exp = get_experiment(rec["paper"], rec["experiment"])
    if exp.route != "cnn" or collapsed(rec):
        return None
    weights = Path(weights) if weights is not None else final_weights_path(rec)
    if not weights.is_file():
        return None
    model, _ = new_model(exp.model, len(rec["class_names"]), {**rec["settings"], "pretrained": False},
                          **rec["settings"].get("model_kw", {}))
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    ed = experiment_data(rec["paper"], exp, get_profile(rec["profile"]), data_root, seed=rec["seed"])
    ids = [i for i in read_predictions(rec)["id"] if i in set(ed.table["id"])][:n]
    t = ed.table.set_index("id", drop=False).loc[ids].reset_index(drop=True)
    x, _ = D.load_images(t, rec["settings"]["image_size"])
    cams = grad_cam(model, x)
    fig, axes = plt.subplots(1, len(x), figsize=(1.6 * len(x), 1.9), squeeze=False)
    for j in range(len(x)):
        axes[0, j].imshow(x[j])
        axes[0, j].imshow(cams[j], cmap="jet", alpha=0.45)
        axes[0, j].set_title(t["class_name"].iloc[j], fontsize=7)
        axes[0, j].axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
    return Path(out)


def gradcam_path(rec: dict) -> Path:
    """``<paper>/<profile>/gradcam/<run>.png`` beside the record."""
    return Path(rec["_path"]).parent / "gradcam" / f"{Path(rec['_path']).stem}.png"


# ============================================================================ packing


class Packer:
    """One ``<stage>.tar.gz`` per stage under ``out``, rewritten atomically after each finished item.

    Paths inside are relative to the results folder, so ``tar xzf <stage>.tar.gz -C results`` (or
    :func:`collect`) puts them in place. A tar over the return limit is rewritten without its
    Grad-CAM images, then without its newest files.
    """

    def __init__(self, out: str | os.PathLike, results_dir: str | os.PathLike):
        self.out = Path(out)
        self.root = Path(results_dir)
        self.files: dict[str, list[str]] = {}
        self.out.mkdir(parents=True, exist_ok=True)

    def add(self, stage: str, paths) -> Path:
        lst = self.files.setdefault(stage, [])
        for p in paths:
            rel = Path(p).resolve().relative_to(self.root.resolve()).as_posix()
            if rel not in lst:
                lst.append(rel)
        return self.write(stage)

    def _blob(self, rels) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for rel in rels:
                if (self.root / rel).is_file():
                    tar.add(self.root / rel, arcname=rel)
        return buf.getvalue()

    def write(self, stage: str) -> Path:
        rels = list(self.files[stage])
        blob = self._blob(rels)
        if len(blob) > MAX_RETURN_BYTES:
            rels = [r for r in rels if not r.endswith(".png")]
            blob = self._blob(rels)
        while len(blob) > MAX_RETURN_BYTES and rels:
            rels.pop()
            blob = self._blob(rels)
            _log(f"pack: {stage}.tar.gz over {MAX_RETURN_BYTES} bytes; newest files left out")
        path = self.out / f"{stage}.tar.gz"
        atomic_write_bytes(path, blob)
        return path


# ============================================================================ the lease


def _init_worker(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(int(threads))
        with contextlib.suppress(Exception):
            import cv2

            cv2.setNumThreads(int(threads))


def run_lease(budget_s: float, out: str | os.PathLike, *, profile: str = "paper", device: str = "auto",
              data_root=None, results_dir=None, stages=STAGES, seeds=(0, 1, 2), workers: int = 1,
              gradcam: bool = True, max_folds: int | None = None, reserve_s: float = 15.0,
              allow_dirty: bool = False, require_data: bool | None = None) -> dict:
    """Run the pending items in order within ``budget_s`` seconds; pack as it goes; return the summary.

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
    from .runs.experiments import resolve_device

    dev = resolve_device(device)
    summary = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "profile": profile, "budget_s": budget_s,
               "workers": workers, "environment": environment(dev), "data": data_check, "items": [], "notes": []}
    items, notes = plan(profile, stages=stages, seeds=seeds, results_dir=res, data_root=data_root, max_folds=max_folds)
    summary["notes"] = notes
    for n in notes:
        _log(n)
    _log(f"plan: {len(items)} pending items, {sum(i.estimate_s for i in items):.0f} s estimated "
         f"(budget {budget_s:.0f} s, {workers} worker(s))")
    packer = Packer(out, res)

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
                    png = _gradcam_for(result["record"], data_root)
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
        import multiprocessing as mp

        threads = max(1, (os.cpu_count() or 1) // workers)
        with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                    initargs=(threads,)) as pool:
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


def _gradcam_for(record_file: str, data_root) -> Path | None:
    """Grad-CAM PNG of a finished run; a fold record (fold 0) uses the run's fold-0 weights and is
    drawn beside the pooled record's place (``<paper>/<profile>/gradcam/<run>.png``)."""
    from .runs.experiments import final_weights_path
    from .runs.records import read_record

    rec = read_record(record_file)
    if "fold" in rec:
        pooled = Path(record_file).parent.parent / f"{Path(record_file).stem.rsplit('.fold', 1)[0]}.json"
        ref = {**rec, "_path": str(pooled)}
        return gradcam_png(rec, gradcam_path(ref), weights=final_weights_path(ref), data_root=data_root)
    return gradcam_png(rec, gradcam_path(rec), data_root=data_root)


def _grid_speedup(bench_record: Path) -> float | None:
    """The concurrent/sequential speed-up in a GPU benchmark record's grid block, if measured."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return float(json.loads(Path(bench_record).read_text())["grid"]["speedup"])
    return None


# ============================================================================ grid throughput


def _train_images(rec: dict) -> int:
    """Training images a record's run went through: sum over folds of epochs run x training images."""
    epochs = int(rec["settings"]["train"].get("epochs", 1))
    hist = rec.get("history") or []
    total = 0
    for i, f in enumerate(rec["split"].get("folds") or []):
        h = hist[i] if i < len(hist) else None
        total += (len(h) if isinstance(h, list) and h else epochs) * int(f.get("train", 0))
    return total


def _grid_task(task: tuple, profile: str, kw: dict) -> str:
    from .runs.experiments import run_experiment

    paper, exp, seed = task
    return run_experiment(paper, exp, profile, seed=seed, **kw)["_path"]


def run_concurrent(tasks: list[tuple[str, str, int]], profile: str, *, workers: int, results_dir, data_root=None,
                   device: str = "auto", overrides: dict | None = None) -> tuple[list[dict], float]:
    """Run ``(paper, experiment, seed)`` tasks in ``workers`` spawned processes (1: one at a time, one
    process with every core); return their records (in task order) and the wall time."""
    import concurrent.futures as cf
    import multiprocessing as mp

    from .runs.records import read_record

    threads = max(1, (os.cpu_count() or 1) // max(workers, 1))
    kw = dict(results_dir=str(results_dir), data_root=data_root, device=device, overrides=overrides)
    t0 = time.perf_counter()
    with cf.ProcessPoolExecutor(max(workers, 1), mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                initargs=(threads,)) as pool:
        paths = list(pool.map(_grid_task, tasks, [profile] * len(tasks), [kw] * len(tasks)))
    wall = time.perf_counter() - t0
    return [read_record(p) for p in paths], wall


def _metric_diff(a: dict, b: dict) -> float:
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


def _warm_image_cache(tasks, profile: str, data_root, overrides) -> None:
    """Decode each task's images once into the on-disk image cache before anything is timed."""
    from .runs.experiments import experiment_images, experiment_settings, experiment_data, get_experiment
    from .runs.profiles import get_profile

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
    from .runs.records import record_key

    overrides = {"train": {"epochs": int(epochs)}} if epochs else None
    scratch = Path(scratch)
    _warm_image_cache(tasks, profile, data_root, overrides)  # neither timing pays the first decode
    seq, t_seq = run_concurrent(tasks, profile, workers=1, results_dir=scratch / "sequential", data_root=data_root,
                                device=device, overrides=overrides)
    con, t_con = run_concurrent(tasks, profile, workers=workers, results_dir=scratch / "concurrent",
                                data_root=data_root, device=device, overrides=overrides)
    images = sum(_train_images(r) for r in seq)
    same_keys = [record_key(a) == record_key(b) for a, b in zip(seq, con)]
    diffs = [_metric_diff(a, b) for a, b in zip(seq, con)]
    from .runs.experiments import resolve_device
    from .runs.records import device_description

    dev = resolve_device(device)
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device": device_description(dev),
            "driver": gpu_driver_version() if dev.startswith("cuda") else None, "profile": profile,
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


# ============================================================================ back home


def collect(src: str | os.PathLike, results: str | os.PathLike | None = None) -> dict:
    """Unpack the returned ``*.tar.gz`` into ``results`` and check every record in them.

    ``bench_gpu.json`` (when it came back) becomes ``<results>/bench/gpu.json``. Returns
    ``{"records": [...], "bad": [...]}``; a record is bad when it is not complete or its
    predictions are missing or differ from their hash.
    """
    from .runs.records import read_predictions, read_record, results_dir

    src, res = Path(src), results_dir(results)
    records, bad = [], []
    for t in sorted(src.glob("*.tar.gz")):
        with tarfile.open(t) as tar:
            members = list(_safe_members(tar))
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
        print(f"{_manifest_path(Path(args.out))}: {m['n_images']} images, fingerprint {m['fingerprint']}")
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
        block = grid_bench(tasks, args.profile, workers=args.workers, scratch=args.scratch, data_root=args.data_root,
                           device=args.device, epochs=args.epochs)
        print(json.dumps(block, indent=1))
        if args.bench_out:
            print(f"grid block written to {write_grid_block(block, args.bench_out)}")
        return 0 if block["identical_keys"] else 1
    if c == "pool":
        from .runs.experiments import list_experiments

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
