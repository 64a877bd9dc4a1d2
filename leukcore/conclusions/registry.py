"""Declared conclusions: each one names its claim, its test, the runs it reads and a sentence per status.

A declaration is a function that gathers the per-run evidence from the records, registered with
:func:`declare` (as :mod:`leukcore.evaluation.consistency` registers its rules)::

    @declare("darknet-vs-dscnet", page="dscnet_vijayalakshmi", kind="greater",
             claim="Darknet-53 scores higher than our DSCNet on the paper's split",
             test="accuracy, Darknet-53 minus DSCNet, per seed at the paper profile",
             sentences={SUPPORTED: "...", INCONCLUSIVE: "...", NOT_SUPPORTED: "..."})
    def _darknet_vs_dscnet() -> Evidence:
        ...

:func:`evaluate` grades it with :func:`leukcore.conclusions.rule.judge`; the book renders the
sentence of the status it got (``leukcore.book.findings.finding``), so a new record can change
both the status and the words. ``leukcore findings`` lists them all.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Mapping

from .rule import KINDS, STATUSES, Judgement, judge

#: the modules that declare conclusions (imported on first use)
DECLARING_MODULES: tuple[str, ...] = ("landing", "papers", "audits")


@dataclass
class Evidence:
    """What a declaration gathers from the records.

    ``per_run``: the effect in each run, oriented as the claim's kind says; ``sides``: each side's
    value per run (``{"DSCNet": {0: 0.967, 1: 0.940}}``), for the page's per-run display; ``runs``:
    runs on each side when they are not paired; ``values``: named numbers the sentences use;
    ``records``: the files read; ``holds``: the outcome of an exact (arithmetic) check.
    """

    per_run: dict = field(default_factory=dict)
    sides: dict = field(default_factory=dict)
    runs: tuple[int, int] | None = None
    values: dict = field(default_factory=dict)
    records: list = field(default_factory=list)
    holds: bool | None = None


@dataclass(frozen=True)
class Conclusion:
    """One declared test of ours."""

    id: str
    page: str  #: where it is said: "landing", "audits" or a paper id
    claim: str  #: the conclusion as a claim, whatever its status
    test: str  #: the quantity and the comparison, in words
    kind: str  #: greater | less | within | exact (see :mod:`leukcore.conclusions.rule`)
    sentences: Mapping[str, str]  #: status -> the sentence the book prints (a Jinja template)
    gather: Callable[[], Evidence]
    margin: float = 0.0
    bounds: tuple[float, float] | None = (-1.0, 1.0)  #: the effect's possible range
    unit: str = "pp"  #: how the effect prints: pp (a difference of fractions), fraction, count


CONCLUSIONS: dict[str, Conclusion] = {}


def declare(cid: str, *, page: str, claim: str, test: str, kind: str, sentences: Mapping[str, str],
            margin: float = 0.0, bounds: tuple[float, float] | None = (-1.0, 1.0), unit: str = "pp"):
    """Register the decorated function as the evidence of conclusion ``cid``."""
    if kind not in KINDS:
        raise ValueError(f"{cid}: unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    missing = [s for s in STATUSES if s not in sentences]
    if missing and kind != "exact":
        raise ValueError(f"{cid}: no sentence for status {', '.join(missing)}")

    def wrap(fn: Callable[[], Evidence]) -> Callable[[], Evidence]:
        if cid in CONCLUSIONS and CONCLUSIONS[cid].gather.__qualname__ != fn.__qualname__:
            raise ValueError(f"conclusion {cid!r} declared twice")
        CONCLUSIONS[cid] = Conclusion(cid, page, claim, test, kind, dict(sentences), fn, margin, bounds, unit)
        return fn
    return wrap


def _load() -> None:
    for m in DECLARING_MODULES:
        importlib.import_module(f"{__package__}.{m}")


def list_conclusions(page: str | None = None) -> list[Conclusion]:
    """Every declared conclusion (of one page), in declaration order."""
    _load()
    return [c for c in CONCLUSIONS.values() if page is None or c.page == page]


def get_conclusion(cid: str) -> Conclusion:
    _load()
    if cid not in CONCLUSIONS:
        raise ValueError(f"unknown conclusion {cid!r}; declared: {', '.join(CONCLUSIONS)}")
    return CONCLUSIONS[cid]


@dataclass(frozen=True)
class Result:
    """A conclusion, its evidence and its judgement."""

    conclusion: Conclusion
    evidence: Evidence
    judgement: Judgement

    @property
    def status(self) -> str:
        return self.judgement.status

    def as_dict(self) -> dict:
        c, e, j = self.conclusion, self.evidence, self.judgement
        return {"id": c.id, "page": c.page, "claim": c.claim, "status": j.status, "why": j.why,
                "runs_per_side": list(j.runs), "test": {"kind": c.kind, "quantity": c.test, "margin": c.margin,
                                                         "bounds": list(c.bounds) if c.bounds else None,
                                                         "unit": c.unit},
                "effect": {k: v for k, v in j.as_dict().items() if k in ("mean", "low", "high", "clipped", "per_run")},
                "sides": {k: {str(s): v for s, v in d.items()} for k, d in e.sides.items()},
                "records": sorted(set(map(str, e.records)))}


@lru_cache(maxsize=None)
def evaluate(cid: str) -> Result:
    """Gather a conclusion's evidence from the records and grade it (cached; :func:`clear_cache`)."""
    c = get_conclusion(cid)
    ev = c.gather()
    j = judge(ev.per_run, c.kind, runs=ev.runs, margin=c.margin, bounds=c.bounds, holds=ev.holds)
    return Result(c, ev, j)


def clear_cache() -> None:
    """Forget graded conclusions (after new records were written, or in tests)."""
    evaluate.cache_clear()
