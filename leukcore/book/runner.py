"""The papermill runner: execute paper notebooks into the book's run pages.

``leukcore reproduce`` first computes every pending experiment (locally or on Ray, see
:func:`leukcore.runs.grid.run_grid`), then executes each paper's notebook with papermill into
``book/runs/<paper>.ipynb``; the notebook renders from the records, rerunning nothing.  A page
of a higher profile on real data is never replaced by a lower or synthetic one unless ``force``.
Executed pages are scrubbed of the machine's absolute paths.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..files import PROJECT_ROOT, atomic_write_text
from ..runs.profiles import PROFILE_RANK, get_profile

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
RUNS_DIR = PROJECT_ROOT / "book" / "runs"
#: Notebooks beyond the five papers' (they compute their own records, see leukcore.audits).
EXTRA_NOTEBOOKS = {"audits_beyond": ("taleqani-all", "pbc-lymphocytes")}


def list_notebooks() -> list[str]:
    """Every notebook ``reproduce`` can execute: one per paper, then the cross-paper audits."""
    from ..runs.protocols import list_papers

    return list_papers() + list(EXTRA_NOTEBOOKS)


def page_rank(meta: dict | None) -> tuple[int, int]:
    """How much a run page is worth: (profile rank, 1 if every dataset it used was real)."""
    if not meta:
        return (-1, -1)
    return (PROFILE_RANK.get(meta.get("profile"), -1), 1 if meta.get("real_data") else 0)


def page_meta(path: Path) -> dict | None:
    """The ``leukcore`` metadata of an executed run page (profile, real_data, ...), or None."""
    try:
        return json.loads(path.read_text())["metadata"].get("leukcore")
    except (OSError, ValueError, KeyError):
        return None


def scrub_paths(nb: dict, replacements: dict[str, str]) -> dict:
    """Replace absolute paths of this machine in every cell source, output and metadata."""
    pairs = sorted(((k, v) for k, v in replacements.items() if k and len(k) > 1), key=lambda kv: -len(kv[0]))

    def fix(o):
        if isinstance(o, str):
            for k, v in pairs:
                o = o.replace(k, v)
            return o
        if isinstance(o, list):
            return [fix(v) for v in o]
        if isinstance(o, dict):
            return {k: fix(v) for k, v in o.items()}
        return o

    return fix(nb)


def fold_injected_parameters(nb: dict) -> dict:
    """Fold the cell papermill injects (this run's parameters) like the parameters cell it
    follows (``hide-cell``), so a page opens with neither."""
    for cell in nb.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "hide-cell" not in tags:
            cell["metadata"]["tags"] = [*tags, "hide-cell"]
    return nb


def machine_paths(data_root: str | None = None, results_dir: str | None = None) -> dict[str, str]:
    """Absolute paths that must not appear in a committed page, and what replaces them."""
    out = {}
    if data_root:
        out[os.path.abspath(data_root)] = "<data_root>"
    if results_dir:
        out[os.path.abspath(results_dir)] = "<results>"
    out[str(PROJECT_ROOT.parent / "shared")] = "<shared>"
    out[str(PROJECT_ROOT)] = "<project>"
    out[str(Path.home())] = "~"
    venv = Path(sys.prefix)
    out[str(venv)] = "<venv>"
    return out


@dataclass
class NotebookRun:
    paper: str
    status: str                  #: executed | kept | failed
    seconds: float = 0.0
    error: str | None = None
    page: str | None = None


@dataclass
class ReproduceSummary:
    runs: list = field(default_factory=list)
    grid: object = None

    @property
    def ok(self) -> bool:
        return all(r.status != "failed" for r in self.runs) and (self.grid is None or self.grid.ok)


def execute_notebook(paper: str, profile: str, *, data_root=None, device: str = "auto", seed: int = 0,
                     results_dir=None, runs_dir: Path = RUNS_DIR, force: bool = False,
                     kernel: str | None = None, train_missing: bool = True,
                     seeds: list[int] | None = None) -> NotebookRun:
    """Execute ``notebooks/<paper>.ipynb`` at ``profile`` into ``<runs_dir>/<paper>.ipynb``.

    Kept (not executed) when the existing page ranks higher than what this run would produce,
    unless ``force``.  The page is written atomically and only when execution succeeded.
    """
    import papermill as pm

    from ..runs.inputs import experiment_data
    from ..runs.protocols import list_experiments
    from ..runs.records import load_records
    from ..runs.routes import get_route

    get_profile(profile)
    src = NOTEBOOK_DIR / f"{paper}.ipynb"
    if not src.is_file():
        return NotebookRun(paper, "failed", error=f"no notebook {src}")
    dest = Path(runs_dir) / f"{paper}.ipynb"
    if paper in EXTRA_NOTEBOOKS:
        from ..data import DataError, resolve_root

        try:
            for d in EXTRA_NOTEBOOKS[paper]:
                resolve_root(d, data_root, verbose=False)
            used, real = list(EXTRA_NOTEBOOKS[paper]), True
        except DataError:
            used, real = ["synthetic"], False
    else:
        datasets = {e.task: experiment_data(paper, e, get_profile(profile), data_root, seed=seed)
                    for e in list_experiments(paper) if get_route(e.route).trains}
        used = [d.dataset_id for d in datasets.values()]
        real = all(d != "synthetic" for d in used)
    meta = {"profile": profile, "real_data": real, "datasets": sorted(set(used)), "seed": seed}
    if not force and dest.is_file() and page_rank(page_meta(dest)) > page_rank(meta):
        old = page_meta(dest)
        return NotebookRun(paper, "kept", page=str(dest),
                           error=f"existing page is {old.get('profile')} on "
                                 f"{'real' if old.get('real_data') else 'synthetic'} data (use --force)")
    tmp = dest.with_name(f".{dest.stem}.executing.ipynb")
    dest.parent.mkdir(parents=True, exist_ok=True)
    params = {"profile": profile, "data_root": None if data_root is None else os.path.abspath(data_root),
              "device": device, "seed": seed,
              "output_dir": None if results_dir is None else os.path.abspath(results_dir), "force": False}
    if paper not in EXTRA_NOTEBOOKS:
        params["train_missing"] = train_missing
        if seeds is not None:
            params["seeds"] = [int(k) for k in seeds]
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(src), str(tmp), parameters=params, cwd=str(NOTEBOOK_DIR), progress_bar=False,
                            kernel_name=kernel, log_output=False)
    except Exception as e:  # noqa: BLE001 - one failing notebook does not stop the others
        if tmp.exists():
            tmp.unlink()
        return NotebookRun(paper, "failed", time.perf_counter() - t0, f"{type(e).__name__}: {str(e)[-800:]}")
    nb = json.loads(tmp.read_text())
    tmp.unlink()
    nb["metadata"]["leukcore"] = {**meta, "records": len(load_records(paper if paper not in EXTRA_NOTEBOOKS
                                                                      else "audits", profile, root=results_dir))}
    nb = scrub_paths(nb, machine_paths(data_root, results_dir))
    nb = fold_injected_parameters(nb)
    atomic_write_text(dest, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return NotebookRun(paper, "executed", time.perf_counter() - t0, page=str(dest))


def reproduce(papers: list[str], profile: str, *, data_root=None, device: str = "auto", seed: int = 0,
              results_dir=None, executor: str = "local", address: str | None = None, force: bool = False,
              runs_dir: Path = RUNS_DIR, progress: bool = True, train: bool = True,
              seeds: list[int] | None = None) -> ReproduceSummary:
    """Compute pending experiments (``executor``), then execute the notebooks into run pages.

    ``seeds`` (e.g. ``[0, 1, 2]``) trains and records every experiment once per seed.

    ``train=False`` renders pages from the existing records only (missing experiments: *not run*).
    """
    from tqdm.auto import tqdm

    from ..runs.protocols import list_papers
    from ..runs.grid import run_grid

    summary = ReproduceSummary()
    if train:
        summary.grid = run_grid([p for p in papers if p in list_papers()], profile, executor=executor,
                                address=address, data_root=data_root, device=device, seed=seed,
                                results_dir=results_dir, force=force, progress=progress, seeds=seeds)
    bar = tqdm(papers, desc=f"notebooks ({profile})", disable=not progress)
    for paper in bar:
        bar.set_postfix_str(paper)
        summary.runs.append(execute_notebook(paper, profile, data_root=data_root, device=device, seed=seed,
                                             results_dir=results_dir, runs_dir=runs_dir, force=force,
                                             train_missing=train, seeds=seeds))
    return summary
