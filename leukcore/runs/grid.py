"""The grid of experiments: every pending experiment of some papers, run by an executor.

``executor="local"`` runs them one after the other in this process; ``executor="ray"`` submits
each as a Ray task (:mod:`leukcore.runs.distributed`). This module sits above both, so neither
the experiments nor the Ray executor imports the other's caller.
"""
from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field

from .distributed import run_on_ray
from .experiments import find_record, get_or_run, run_experiment
from .protocols import get_experiment, list_experiments
from .records import run_name
from .routes import get_route


@dataclass
class GridResult:
    """What :func:`run_grid` did: records by (paper, experiment), failures with their error."""

    records: dict = field(default_factory=dict)
    failures: dict = field(default_factory=dict)
    wall_time_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def pending(papers: list[str], profile: str, *, results_dir=None, seed: int = 0, data_root=None,
            force: bool = False) -> list[tuple[str, str]]:
    """(paper, experiment) pairs that have no complete record with the same key (all with ``force``)."""
    out = []
    for p in papers:
        for e in list_experiments(p, profile):
            if force or find_record(p, e.id, profile, results_dir=results_dir, seed=seed, data_root=data_root) is None:
                out.append((p, e.id))
    return out


def run_grid(papers: list[str], profile: str = "smoke", *, executor: str = "local", address: str | None = None,
             data_root: str | None = None, device: str = "auto", seed: int = 0, results_dir=None,
             force: bool = False, progress: bool = True, gpu_fraction: float | None = None,
             max_retries: int = 2, seeds: list[int] | None = None) -> GridResult:
    """Run every pending experiment of ``papers``; one failure does not stop the others.

    ``seeds`` (e.g. ``[0, 1, 2]``) runs the grid once per seed, each recorded on its own (the
    claims table pools them); results of seed ``k > 0`` are keyed ``(paper, "<experiment>.seed<k>")``.

    ``executor="local"`` runs them one at a time in this process.  ``executor="ray"`` submits each
    as a Ray task (see :mod:`leukcore.runs.distributed`); the driver writes the returned records.
    Experiments that train nothing (aggregates) run last, locally, from the records of their parts.
    """
    from tqdm.auto import tqdm

    if seeds is not None:
        merged = GridResult()
        t0 = time.perf_counter()
        for k in seeds:
            g = run_grid(papers, profile, executor=executor, address=address, data_root=data_root, device=device,
                         seed=int(k), results_dir=results_dir, force=force, progress=progress,
                         gpu_fraction=gpu_fraction, max_retries=max_retries)
            merged.records.update({(p, run_name(e, int(k))): r for (p, e), r in g.records.items()})
            merged.failures.update({(p, run_name(e, int(k))): f for (p, e), f in g.failures.items()})
        merged.wall_time_s = time.perf_counter() - t0
        return merged
    t0 = time.perf_counter()
    todo = pending(papers, profile, results_dir=results_dir, seed=seed, data_root=data_root, force=force)
    agg = [(p, e) for p, e in todo if not get_route(get_experiment(p, e).route).trains]
    todo = [t for t in todo if t not in agg]
    result = GridResult()
    kw = dict(data_root=data_root, device=device, seed=seed, results_dir=results_dir)
    if executor == "local":
        bar = tqdm(total=len(todo), desc=f"experiments ({profile})", disable=not progress)
        for p, e in todo:
            bar.set_postfix_str(f"{p}/{e}")
            try:
                result.records[(p, e)] = run_experiment(p, e, profile, **kw)
            except Exception as err:  # noqa: BLE001 - reported in the summary, others go on
                result.failures[(p, e)] = f"{type(err).__name__}: {err}"
                traceback.print_exc(file=sys.stderr)
            bar.update(1)
        bar.close()
    elif executor == "ray":
        run_on_ray(todo, profile, result, address=address, gpu_fraction=gpu_fraction, max_retries=max_retries,
                   progress=progress, **kw)
    else:
        raise ValueError(f"unknown executor {executor!r}; valid: local, ray")
    for p, e in agg:
        try:
            result.records[(p, e)] = get_or_run(p, e, profile, force=force, **kw)
        except Exception as err:  # noqa: BLE001
            result.failures[(p, e)] = f"{type(err).__name__}: {err}"
    result.wall_time_s = time.perf_counter() - t0
    return result


