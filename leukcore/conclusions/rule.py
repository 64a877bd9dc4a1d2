"""The one rule that grades our own conclusions: runs in, a status out.

A conclusion of ours is a claim about an effect measured in several runs (seeds or folds): a
paired difference per seed (``A - B``), or one quantity per run against a fixed reference (a
claimed value, chance, a margin). :func:`judge` gives it one of three statuses:

- ``supported``: at least :data:`MIN_RUNS` runs on each side, the effect has the claimed sign in
  every run, and its Student-t interval over runs excludes no effect (lies wholly on the claimed
  side). For a claim of *no* effect (``within``): every run and the whole interval inside the
  declared margin.
- ``not supported``: at least :data:`MIN_RUNS` runs on each side and the interval lies wholly on
  the other side (``greater`` / ``less``), or wholly outside the margin (``within``): the runs
  contradict the claim.
- ``inconclusive``: anything else (too few runs, a run of the other sign, an interval across no
  effect). The page then shows each run's value.

``exact`` claims are arithmetic on printed numbers (no run varies them): ``supported`` when the
check holds, ``not supported`` when it does not.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

SUPPORTED, INCONCLUSIVE, NOT_SUPPORTED = "supported", "inconclusive", "not supported"
STATUSES: tuple[str, ...] = (SUPPORTED, INCONCLUSIVE, NOT_SUPPORTED)
KINDS: tuple[str, ...] = ("greater", "less", "within", "exact")
MIN_RUNS = 3  #: runs on each side behind a supported (or not supported) conclusion
LEVEL = 0.95

#: the rule as the methods page states it
RULE_TEXT = (
    f"A conclusion of ours is *supported* only when at least {MIN_RUNS} runs (seeds or folds) stand on each side "
    "of the comparison, the effect has the claimed sign in every run, and its 95 % interval over runs (Student t, "
    "clipped to the quantity's range) excludes no effect; a claim of no effect is supported when every run and the "
    "whole interval lie inside its declared margin. It is *not supported* when, with as many runs, the interval "
    "lies wholly on the other side (or outside the margin). Anything else is *inconclusive*, and the page shows "
    "each run's value. Arithmetic on printed numbers (no run varies it) is supported when the check holds.")


@dataclass(frozen=True)
class Judgement:
    """What :func:`judge` found: the status, why, and the numbers behind it."""

    status: str
    why: str
    kind: str
    runs: tuple[int, int]  #: runs on each side (the reference side of a fixed value counts as many as the other)
    mean: float | None = None
    low: float | None = None
    high: float | None = None
    per_run: dict = field(default_factory=dict)  #: {run: effect}
    clipped: bool = False

    def as_dict(self) -> dict:
        return {"status": self.status, "why": self.why, "kind": self.kind, "runs": list(self.runs),
                "mean": self.mean, "low": self.low, "high": self.high, "clipped": self.clipped,
                "per_run": {str(k): v for k, v in self.per_run.items()}}


def t_interval(values: Sequence[float], bounds: tuple[float, float] | None = None,
               level: float = LEVEL) -> tuple[float | None, float | None, float | None, bool]:
    """``(mean, low, high, clipped)``: the Student-t interval of the mean over runs, clipped to
    ``bounds`` (the quantity's possible range); low and high are None with fewer than two runs."""
    from scipy.stats import t as student_t

    v = [float(x) for x in values]
    if not v:
        return None, None, None, False
    mean = sum(v) / len(v)
    if len(v) < 2:
        return mean, None, None, False
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1))
    half = float(student_t.ppf(0.5 + level / 2, len(v) - 1)) * sd / math.sqrt(len(v))
    low, high = mean - half, mean + half
    clipped = False
    if bounds is not None:
        clipped = low < bounds[0] or high > bounds[1]
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return mean, low, high, clipped


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(float(x))


def judge(per_run: Mapping, kind: str = "greater", *, runs: tuple[int, int] | None = None,
          margin: float = 0.0, bounds: tuple[float, float] | None = (-1.0, 1.0), holds: bool | None = None) -> Judgement:
    """Grade one conclusion from its effect in each run.

    ``per_run``: ``{run: effect}``, the effect being ``A - B`` paired within a run, or a quantity
    minus its reference, oriented so that the claim is ``effect > 0`` (``greater``), ``effect < 0``
    (``less``) or ``|effect| <= margin`` (``within``). ``runs``: the runs on each side when they
    differ from ``len(per_run)`` (unpaired sides). ``bounds``: the effect's possible range, to clip
    the interval. ``exact`` claims pass ``holds`` instead of runs.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    if kind == "exact":
        if holds is None:
            raise ValueError("an exact conclusion needs holds=True/False")
        return Judgement(SUPPORTED if holds else NOT_SUPPORTED,
                         "the arithmetic holds" if holds else "the arithmetic does not hold", kind, (0, 0))
    eff = {k: float(v) for k, v in per_run.items() if _finite(v)}
    n = runs if runs is not None else (len(eff), len(eff))
    mean, low, high, clipped = t_interval(list(eff.values()), bounds)
    base = dict(kind=kind, runs=tuple(int(x) for x in n), mean=mean, low=low, high=high, per_run=eff, clipped=clipped)
    if min(n) < MIN_RUNS or len(eff) < 2:
        return Judgement(INCONCLUSIVE, f"{min(n)} run{'s' if min(n) != 1 else ''} on the smaller side; "
                                       f"a conclusion needs {MIN_RUNS}", **base)
    vals = list(eff.values())
    if kind == "within":
        if all(abs(v) <= margin for v in vals) and low >= -margin and high <= margin:
            return Judgement(SUPPORTED, f"every run and the interval within \u00b1{margin:g}", **base)
        if low > margin or high < -margin:
            return Judgement(NOT_SUPPORTED, f"the interval lies outside \u00b1{margin:g}", **base)
        return Judgement(INCONCLUSIVE, f"the interval reaches beyond \u00b1{margin:g}", **base)
    sign = 1.0 if kind == "greater" else -1.0
    same = all(sign * v > 0 for v in vals)
    if same and sign * (low if sign > 0 else high) > 0:
        return Judgement(SUPPORTED, "the same sign in every run and an interval that excludes no effect", **base)
    if sign * (high if sign > 0 else low) < 0:
        return Judgement(NOT_SUPPORTED, "the interval lies wholly on the other side of no effect", **base)
    if not same:
        k = sum(1 for v in vals if sign * v <= 0)
        return Judgement(INCONCLUSIVE, f"{k} of {len(vals)} runs go the other way (or show no effect)", **base)
    return Judgement(INCONCLUSIVE, "the interval includes no effect", **base)
