"""Readers the declarations share: one value per run, from run records and audit arm records."""
from __future__ import annotations

import math
import os
from typing import Any, Mapping

from ..files import PROJECT_ROOT


def rel(path: Any) -> str:
    """A record's path relative to the project (as the book and ``leukcore findings`` show it)."""
    try:
        return os.path.relpath(str(path), PROJECT_ROOT)
    except ValueError:
        return str(path)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def dig(node: Any, path: str) -> Any:
    """The value at a dotted path of nested dicts (``eval.accuracy.point``); None when absent."""
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def run_values(paper: str, experiment: str, metric: str = "accuracy", profile: str = "paper") -> tuple[dict, list]:
    """``({seed: value}, [record paths])``: one complete real-data record per seed of an
    experiment at a profile, with the settings hash of its lowest seed (as the claims table pools)."""
    from ..metrics import metric_at
    from ..evaluation.verdicts import pooled_records
    from ..runs.records import load_records

    recs = [r for r in pooled_records(load_records(paper), paper, experiment) if r["profile"] == profile]
    out, paths = {}, []
    for r in recs:
        try:
            v = metric_at(r["metrics"], metric)
        except (ValueError, KeyError, TypeError):
            continue
        if _finite(v):
            out[int(r.get("seed") or 0)] = float(v)
            paths.append(rel(r["_path"]))
    return out, paths


def arm_values(audit_id: str, arm: str, path: str, profile: str = "audit") -> tuple[dict, list]:
    """``({seed: value}, [record paths])``: an audit arm's number at ``path`` of its ``results``,
    one per seed (the complete arm records with the current settings)."""
    from ..audits.seeded import arm_records

    out, paths = {}, []
    for seed, arms in sorted(arm_records(audit_id, profile).items()):
        rec = arms.get(arm)
        v = dig(rec.get("results"), path) if rec else None
        if _finite(v):
            out[int(seed)] = float(v)
            paths.append(rel(rec["_path"]))
    return out, paths


def paired(a: Mapping, b: Mapping) -> dict:
    """``{run: a[run] - b[run]}`` over the runs both sides have."""
    return {k: float(a[k]) - float(b[k]) for k in sorted(set(a) & set(b))}


def against(a: Mapping, reference: float) -> dict:
    """``{run: a[run] - reference}``: one side against a fixed value (a claim, chance, a threshold)."""
    return {k: float(v) - float(reference) for k, v in a.items()}


def audit_summary(audit_id: str, profile: str = "audit") -> tuple[dict, str]:
    """``(summary record, its path)`` of one audit (:func:`leukcore.audits.registry.load_summary`); a
    LookupError naming the command that writes it when there is none."""
    from ..audits.registry import load_summary

    rec = load_summary(audit_id, profile)
    if rec is None:
        raise LookupError(f"no summary of audit {audit_id!r} at the {profile} profile: run `leukcore audits run "
                          f"--audit {audit_id} --profile {profile}`")
    return rec, rel(rec["_path"])


def printed_claim(paper: str, claim_id: str) -> str:
    """A claim as the paper printed it, with a no-break space before a percent sign."""
    from ..evaluation.claims import load_claims

    row = load_claims(paper).set_index("id").loc[claim_id]
    return f"{row['printed']}\u00a0%" if row["unit"] == "percent" else str(row["printed"])
