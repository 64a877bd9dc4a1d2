"""The audits' statistics over seeds: a t-interval of a mean, paired differences between two arms,
McNemar on per-image correctness, an AUROC, and the compact form per-image results are stored in."""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np


def t_interval(values, level: float = 0.95, bounds: tuple[float, float] | None = None) -> dict:
    """Mean of ``values`` (one per seed) with a Student-t interval over them.

    ``mean +- t_{(1 + level) / 2, n - 1} * sd / sqrt(n)``, ``sd`` the sample standard deviation
    (``ddof = 1``). With fewer than two values the interval is ``None`` (one run says nothing
    about run-to-run variation). ``bounds``: the values' range (``(0, 1)`` for an accuracy,
    ``(-1, 1)`` for a difference of two); the interval is clipped to it and ``clipped`` says so.
    Returns ``{"mean", "low", "high", "sd", "n", "level", "values", "method", "clipped"}``.
    """
    from scipy.stats import t as student_t

    v = [float(x) for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    n = len(v)
    out: dict[str, Any] = {"mean": float(np.mean(v)) if n else None, "low": None, "high": None, "sd": None, "n": n,
                           "level": level, "values": v, "method": "t over seeds"}
    if n >= 2:
        sd = float(np.std(v, ddof=1))
        half = float(student_t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
        low, high = out["mean"] - half, out["mean"] + half
        if bounds is not None:
            out["clipped"] = bool(low < bounds[0] or high > bounds[1])
            low, high = max(low, bounds[0]), min(high, bounds[1])
        out.update(sd=sd, low=low, high=high)
    return out


def paired_differences(a: Mapping[int, float], b: Mapping[int, float], level: float = 0.95,
                       bounds: tuple[float, float] | None = None) -> dict:
    """``a[s] - b[s]`` for every seed ``s`` both have (a value, not None / NaN), with :func:`t_interval` over those differences.

    Pairing by seed removes what the two arms share within a seed (split, initial weights, data
    order); the interval is over seeds. Returns :func:`t_interval`'s dict plus ``seeds`` and
    ``per_seed`` (``{seed: difference}``).
    """
    def ok(v) -> bool:
        return v is not None and not (isinstance(v, float) and math.isnan(v))

    seeds = sorted(s for s in set(a) & set(b) if ok(a[s]) and ok(b[s]))
    diffs = {int(s): float(a[s]) - float(b[s]) for s in seeds}
    out = t_interval(list(diffs.values()), level, bounds=bounds)
    out.update(seeds=[int(s) for s in seeds], per_seed=diffs)
    return out


def mcnemar_correct(correct_a, correct_b) -> dict:
    """McNemar's test (:func:`leukcore.metrics.mcnemar`) from two 0/1 vectors of per-image correctness.

    ``b`` = images A gets right and B wrong, ``c`` = the reverse.
    """
    from ..metrics import mcnemar

    a = np.asarray(correct_a, dtype=int)
    b = np.asarray(correct_b, dtype=int)
    if a.shape != b.shape:
        raise ValueError(f"correctness vectors differ in length: {a.shape} vs {b.shape}")
    return mcnemar(np.ones_like(a), a, b)


def auroc(positive, negative) -> float:
    """Area under the ROC curve: P(a positive's score > a negative's), ties counting one half.

    The Mann-Whitney form, ``(R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)`` with average ranks;
    NaN when either side is empty.
    """
    from scipy.stats import rankdata

    p = np.asarray(positive, dtype=float).ravel()
    q = np.asarray(negative, dtype=float).ravel()
    if not len(p) or not len(q):
        return math.nan
    ranks = rankdata(np.concatenate([p, q]))
    return float((ranks[:len(p)].sum() - len(p) * (len(p) + 1) / 2) / (len(p) * len(q)))


def to_bits(correct) -> str:
    """A 0/1 vector as a string of ``0`` and ``1`` (how records store per-image correctness)."""
    return "".join("1" if c else "0" for c in np.asarray(correct).ravel())


def from_bits(bits: str) -> np.ndarray:
    """The inverse of :func:`to_bits`."""
    return np.frombuffer(bits.encode("ascii"), dtype=np.uint8) - ord("0") if bits else np.zeros(0, np.uint8)
