"""What the study found, in prose whose every number is a reference filled when the book is built.

Hand-written findings are Jinja2 templates under ``book/findings/`` (``*.md.j2``).  A number
in them is never typed: it is a call that reads a run record, an audit record or the claims
ledger, piped through a formatting filter, for example::

    {{ m("dscnet_vijayalakshmi", "darknet53", "accuracy") | pct }}   our measurement
    {{ ci("dscnet_vijayalakshmi", "darknet53", "accuracy") | interval }}
    {{ claim("dscnet_vijayalakshmi", "dscnet-accuracy") }}          a claimed value, as printed
    {{ audit("shortcut_colour", "hist.accuracy.point") | pct }}     an audit record's number
    {{ audit("shortcut_cnn", "effects.grey") | ppci }}              a paired difference over seeds
    {{ consistency_errors() }}                                      the consistency checks

A reference that nothing fills raises :class:`MissingReference` naming it (the build fails; a
blank is never printed).  ``build_pages`` writes ``book/_generated/landing.md``,
``report.md`` and ``findings_<paper>.md``; a paper notebook's first code cell calls
:func:`show` to put its "What we found" at the top of the page.

The claims table comes from one accessor, :func:`_claims`: ``leukcore.evaluation.verdicts.claims_table``.
"""
from __future__ import annotations

import math
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..evaluation.verdicts import COLUMNS as CLAIM_COLUMNS, EXACT_METRICS, FIRM
from ..files import PROJECT_ROOT
from ..runs.profiles import best_profile
from .labels import PAPER_DOCS, paper_name
from .units import NBSP, format_value

TEMPLATE_DIR = PROJECT_ROOT / "book" / "findings"
MIN_RUNS = 3  # runs behind a firm verdict (project standard)


class MissingReference(LookupError):
    """A reference in the prose that no record, audit or claim fills (the build must fail)."""


def _missing(name: str, why: str) -> MissingReference:
    return MissingReference(f"reference {name} is not filled by any record: {why}")


def _finite(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


# --------------------------------------------------------------------------------------------
# Sources: records, audits, the claims ledger, the claims table (one accessor)
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _records_cached() -> tuple:
    from ..runs.records import load_records

    return tuple(load_records())


def clear_cache() -> None:
    """Forget cached records and tables (after new runs were written, or in tests)."""
    _records_cached.cache_clear()
    _pooled.cache_clear()
    _claims_cached.cache_clear()
    _consistency_findings.cache_clear()
    from ..conclusions import clear_cache as clear_conclusions

    clear_conclusions()


def _real(rec: dict) -> bool:
    return rec.get("status") == "complete" and rec.get("dataset", {}).get("id") != "synthetic"


def _records(paper: str, experiment: str | None = None, profile: str | None = None) -> list[dict]:
    return [r for r in _records_cached() if r["paper"] == paper and _real(r)
            and (experiment is None or r["experiment"] == experiment)
            and (profile is None or r["profile"] == profile)]


def _best_profile(recs: list[dict]) -> str | None:
    return best_profile({r["profile"] for r in recs})


def _record(paper: str, experiment: str, profile: str | None = None) -> dict:
    """The record the prose cites: the highest profile on real data, seed 0 first."""
    name = f"record({paper!r}, {experiment!r}{', ' + repr(profile) if profile else ''})"
    recs = _records(paper, experiment, profile)
    if not recs:
        raise _missing(name, "no complete real-data record")
    prof = profile or _best_profile(recs)
    recs = sorted((r for r in recs if r["profile"] == prof), key=lambda r: r.get("seed", 0))
    return recs[0]


@lru_cache(maxsize=None)
def _claims_cached(paper: str) -> pd.DataFrame:
    from ..evaluation.verdicts import claims_table

    return claims_table(paper=paper, records=list(_records_cached()))


def _claims(paper: str = "all") -> pd.DataFrame:
    """The claims table (columns :data:`leukcore.evaluation.verdicts.COLUMNS`): the one place this module reads verdicts from."""
    return _claims_cached(paper).copy()


def headline_claim(paper: str) -> str:
    """The claim id marked ``headline:`` at the top of the paper's ledger file."""
    from ..evaluation.claims import ledger_path

    doc = yaml.safe_load(ledger_path(paper).read_text(encoding="utf-8"))
    cid = doc.get("headline")
    if not cid:
        raise _missing(f"headline({paper!r})", f"no 'headline:' in {ledger_path(paper).name}")
    return cid


@lru_cache(maxsize=None)
def _consistency_findings() -> pd.DataFrame:
    from ..evaluation.consistency import check_claims

    return check_claims()


def _audit_record(audit_id: str, profile: str | None = None) -> dict:
    recs = [r for r in _records("audits", audit_id, profile) if r.get("results")]
    if not recs:
        raise _missing(f"audit({audit_id!r})", "no complete audit record with results")
    prof = profile or _best_profile(recs)
    return sorted((r for r in recs if r["profile"] == prof), key=lambda r: r.get("seed", 0))[0]


# --------------------------------------------------------------------------------------------
# The template functions (each raises MissingReference when nothing fills it)
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _pooled(paper: str, experiment: str, metric: str) -> dict:
    from ..evaluation.verdicts import pooled_measure

    return pooled_measure(list(_records_cached()), paper, experiment, metric)


def _pooled_or_missing(name: str, paper: str, experiment: str, metric: str) -> dict:
    try:
        d = _pooled(paper, experiment, metric)
    except (ValueError, KeyError):
        raise _missing(name, "no such metric in the records") from None
    if not d or not _finite(d.get("point")):
        raise _missing(name, "no complete real-data record")
    return d


def m(paper: str, experiment: str, metric: str = "accuracy") -> float:
    """A measured metric (dotted path, e.g. ``f1.weighted``) pooled over the experiment's runs at its
    best profile, exactly as the claims table pools it (so it always goes with :func:`runs` and :func:`ci`)."""
    return float(_pooled_or_missing(f"m({paper!r}, {experiment!r}, {metric!r})", paper, experiment, metric)["point"])


def ci(paper: str, experiment: str, metric: str = "accuracy") -> tuple[float, float]:
    """The 95 % interval of :func:`m`: two-level bootstrap over the runs and their test images."""
    d = _pooled_or_missing(f"ci({paper!r}, {experiment!r}, {metric!r})", paper, experiment, metric)
    if not _finite(d.get("low")) or not _finite(d.get("high")):
        raise _missing(f"ci({paper!r}, {experiment!r}, {metric!r})", "no interval")
    return float(d["low"]), float(d["high"])


def runs(paper: str, experiment: str, metric: str = "accuracy") -> int:
    """The runs :func:`m` pools (seeds times folds)."""
    return int(_pooled_or_missing(f"runs({paper!r}, {experiment!r})", paper, experiment, metric)["runs"])


def prof(paper: str, experiment: str) -> str:
    """The profile of the runs :func:`m` pools."""
    return str(_pooled_or_missing(f"prof({paper!r}, {experiment!r})", paper, experiment, "accuracy")["profile"])


def m_seed(paper: str, experiment: str, seed: int, metric: str = "accuracy") -> float:
    """One run's metric (the record of ``seed`` at the best profile): for a sentence about that seed only."""
    from ..metrics import metric_at

    name = f"m_seed({paper!r}, {experiment!r}, {seed}, {metric!r})"
    recs = _records(paper, experiment)
    best = _best_profile(recs)
    rec = next((r for r in recs if r["profile"] == best and int(r.get("seed") or 0) == int(seed)), None)
    if rec is None:
        raise _missing(name, "no record of that seed")
    try:
        return float(metric_at(rec["metrics"], metric))
    except (ValueError, KeyError, TypeError):
        raise _missing(name, "the record has no such metric") from None


def claim_row(paper: str, claim_id: str) -> dict:
    """One row of the claims table, as a mapping."""
    df = _claims(paper)
    hit = df[df["claim"] == claim_id]
    if hit.empty:
        raise _missing(f"claim({paper!r}, {claim_id!r})", "no such claim in the ledger")
    return hit.iloc[0].to_dict()


def claim(paper: str, claim_id: str) -> str:
    """A claimed value exactly as printed, with its unit (``99.85 %``, ``0.990``, ``1,214``)."""
    r = claim_row(paper, claim_id)
    return _printed(r["printed"], r["unit"])


def claimed(paper: str, claim_id: str) -> float:
    """A claimed value as a number (a fraction for percent and fraction units), for arithmetic."""
    v = claim_row(paper, claim_id)["claimed"]
    if not _finite(v) or isinstance(v, (list, tuple)):
        raise _missing(f"claimed({paper!r}, {claim_id!r})", "the claim is not a single number")
    return float(v)


def audit(audit_id: str, path: str, profile: str | None = None) -> Any:
    """A number from an audit record's ``results`` at a dotted path (``hist.accuracy.point``)."""
    node: Any = _audit_record(audit_id, profile)["results"]
    for part in _split(path):
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise _missing(f"audit({audit_id!r}, {path!r})", f"no key {part!r}")
    if isinstance(node, (int, float)) and not isinstance(node, bool) and not _finite(float(node)):
        raise _missing(f"audit({audit_id!r}, {path!r})", "the value is missing")
    return node


def _split(path: str) -> list[str]:
    """Dotted path; a key holding a dot or colon is written in brackets: ``models.[dscnet:original].point``."""
    out, buf, depth = [], "", 0
    for ch in path:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "." and depth == 0:
            out.append(buf)
            buf = ""
        else:
            buf += ch
    out.append(buf)
    return out


def audit_profile(audit_id: str) -> str:
    """The profile of the audit record the prose cites."""
    return _audit_record(audit_id)["profile"]


def consistency_errors(paper: str | None = None, rule: str | None = None, severity: str = "error") -> int:
    """How many findings of the consistency checks (``leukcore.evaluation.consistency.check_claims``) match."""
    f = _consistency_findings()
    if paper:
        f = f[f["paper"] == paper]
    if rule:
        f = f[f["rule"] == rule]
    if severity:
        f = f[f["severity"] == severity]
    return int(len(f))


def consistency(paper: str | None = None, kind: str | None = None) -> int:
    """How many consistency findings of that kind (impossible, disagrees, mislabelled, typo,
    implausible) the checks report (of one paper)."""
    from ..evaluation.consistency import consistency_counts

    return consistency_counts(kind=kind, paper=paper)


def consistency_papers(kind: str = "impossible") -> int:
    """How many papers have at least one consistency finding of that kind."""
    f = _consistency_findings()
    return int(f[f["kind"] == kind]["paper"].nunique())


@lru_cache(maxsize=None)
def _references() -> dict:
    return yaml.safe_load((TEMPLATE_DIR / "references.yaml").read_text(encoding="utf-8"))


def cite(key: str) -> str:
    """The short citation of a domain statement's source (``book/findings/references.yaml``)."""
    refs = _references()
    if key not in refs:
        raise _missing(f"cite({key!r})", f"no such reference in references.yaml; known: {', '.join(refs)}")
    return refs[key]["short"]


def conclusions_markdown() -> str:
    """The rule that grades our own conclusions, and every declared conclusion with its status (the methods page)."""
    from ..conclusions import RULE_TEXT, list_conclusions
    from .labels import status_badge

    rows = findings_table()
    lines = [RULE_TEXT, "", f"The {len(list_conclusions())} conclusions this book draws, as `leukcore findings` lists "
             "them (runs on each side; the records each reads are in `leukcore findings --format json`):", ""]
    for r in rows:
        runs = " / ".join(map(str, r["runs_per_side"])) if any(r["runs_per_side"]) else "arithmetic"
        lines.append(f"- `{r['id']}` ({r['page']}): {r['claim']}. *Test*: {r['test']['quantity']}; runs: {runs}. "
                     f"{status_badge(r['status'])} ({r['why']})")
    return "\n".join(lines) + "\n"


def references_markdown() -> str:
    """Every source the prose cites, in full (the methods page)."""
    return "\n".join(f"- **{v['short']}**: {v['full']}" for v in _references().values()) + "\n"


def consistency_error_papers(severity: str = "error") -> int:
    """How many papers have at least one consistency finding of that severity."""
    f = _consistency_findings()
    return int(f[f["severity"] == severity]["paper"].nunique())


def count_claims(paper: str = "all", verdict: str | None = None) -> int:
    """Claims in the ledger (of one paper, with one verdict)."""
    df = _claims(paper)
    return int(len(df if verdict is None else df[df["verdict"] == verdict]))


def n_firm(paper: str = "all") -> int:
    """Claims with a firm verdict (reproduced, lower or higher) resting on runs; exact counts
    (parameters, images), checked exactly and needing no run, are counted by :func:`n_exact`."""
    df = _claims(paper)
    return int((df["verdict"].isin(FIRM) & ~df["metric"].isin(EXACT_METRICS)).sum())


def n_exact(paper: str = "all", verdict: str | None = None) -> int:
    """Exact-count claims (parameters, images) checked exactly, optionally with one verdict."""
    df = _claims(paper)
    df = df[df["metric"].isin(EXACT_METRICS)]
    return int(len(df) if verdict is None else (df["verdict"] == verdict).sum())


def headline_verdicts() -> list[str]:
    """The verdict on each paper's headline claim, in paper order."""
    from ..evaluation.claims import list_papers

    return [claim_row(p, headline_claim(p))["verdict"] for p in list_papers()]


def mean(*values: float) -> float:
    """The arithmetic mean of the values (e.g. of a paper's per-fold claims)."""
    if not values:
        raise _missing("mean()", "no values")
    return float(sum(values) / len(values))


def compute() -> dict:
    """The compute the recorded runs used: CPU and GPU hours from their ``wall_time_s`` and ``device``."""
    out = {"cpu_hours": 0.0, "gpu_hours": 0.0, "cpu_runs": 0, "gpu_runs": 0, "gpus": set(), "cpus": set()}
    for r in _records_cached():
        if r.get("status") != "complete" or not _finite(r.get("wall_time_s")):
            continue
        dev = str(r.get("device") or "")
        gpu = "CUDA" in dev or "NVIDIA" in dev or dev.startswith("cuda")
        key = "gpu" if gpu else "cpu"
        out[f"{key}_hours"] += float(r["wall_time_s"]) / 3600.0
        out[f"{key}_runs"] += 1
        out[f"{key}s"].add(dev)
    if not out["cpu_runs"] and not out["gpu_runs"]:
        raise _missing("compute()", "no run record with a wall time")
    out["gpus"] = ", ".join(sorted(out["gpus"])) or "none"
    out["cpus"] = ", ".join(sorted(out["cpus"])) or "none"
    out["runs"] = out["cpu_runs"] + out["gpu_runs"]
    return out


def params(model: str, num_classes: int, input_size: int | None = None) -> int:
    """Trainable parameters of a leukcore model, counted when the page is built."""
    from ..models import model_summary

    return int(model_summary(model, num_classes, input_size=input_size)["params_trainable"])


def n_records(paper: str | None = None, profile: str | None = None) -> int:
    """Complete real-data run records (of a paper, at a profile)."""
    return sum(1 for r in _records_cached() if _real(r) and (paper is None or r["paper"] == paper)
               and (profile is None or r["profile"] == profile))


# --------------------------------------------------------------------------------------------
# Filters (formatting only; a missing value raises)
# --------------------------------------------------------------------------------------------


def _need(v: Any, what: str) -> float:
    if not _finite(v):
        raise _missing(what, "the value is missing")
    return float(v)


def pct(v: Any, digits: int = 1) -> str:
    """A fraction as a percentage: 0.9760 -> ``97.6 %`` (a no-break space: the sign never wraps alone)."""
    return f"{100 * _need(v, 'pct'):.{digits}f}{NBSP}%"


def pp(v: Any, digits: int = 1) -> str:
    """A difference of fractions in percentage points, signed: 0.09 -> ``+9.0 pp``."""
    x = round(100 * _need(v, "pp"), digits)
    return f"{x if x != 0 else 0.0:+.{digits}f}{NBSP}pp"  # never "-0.0"


def interval(t: Any, digits: int = 1) -> str:
    """``(low, high)`` fractions as ``[97.1 %, 98.1 %]``."""
    if not isinstance(t, (tuple, list)) or len(t) != 2:
        raise _missing("interval", f"not an interval: {t!r}")
    return f"[{pct(t[0], digits)}, {pct(t[1], digits)}]"


def _seed_stat(d: Any, what: str) -> dict:
    if not isinstance(d, dict) or not _finite(d.get("mean")):
        raise _missing(what, f"not a mean over seeds: {d!r}"[:200])
    return d


def ppci(d: Any, digits: int = 1) -> str:
    """A paired difference over seeds (``{"mean", "low", "high"}``) in percentage points with its
    interval: ``-2.1 pp [-3.9 pp, -0.4 pp]`` (the mean alone when one seed gives no interval)."""
    d = _seed_stat(d, "ppci")
    s = pp(d["mean"], digits)
    return s + (f" [{pp(d['low'], digits)}, {pp(d['high'], digits)}]" if _finite(d.get("low")) else "")


def ppinterval(t: Any, digits: int = 1) -> str:
    """``(low, high)`` differences of fractions as ``[-3.9 pp, -0.4 pp]``."""
    if not isinstance(t, (tuple, list)) or len(t) != 2:
        raise _missing("ppinterval", f"not an interval: {t!r}")
    return f"[{pp(t[0], digits)}, {pp(t[1], digits)}]"


def effect(e: Any, digits: int = 1, sign: int = 1) -> str:
    """A conclusion's effect (``e`` of a sentence: mean, low, high) in percentage points with its interval
    over runs, ``+1.3 pp [+0.3 pp, +2.3 pp]``; the mean alone with fewer than two runs. ``sign=-1`` negates."""
    if not isinstance(e, dict) or not _finite(e.get("mean")):
        raise _missing("effect", f"not an effect: {e!r}"[:200])
    s = pp(sign * e["mean"], digits)
    if _finite(e.get("low")) and _finite(e.get("high")):
        lo, hi = sorted((sign * e["low"], sign * e["high"]))
        s += f" [{pp(lo, digits)}, {pp(hi, digits)}]"
    return s


def pctci(d: Any, digits: int = 1) -> str:
    """A mean over seeds (``{"mean", "low", "high"}``) as a percentage with its interval: ``98.9 % [98.7 %, 99.1 %]``."""
    d = _seed_stat(d, "pctci")
    s = pct(d["mean"], digits)
    return s + (f" {interval((d['low'], d['high']), digits)}" if _finite(d.get("low")) else "")


def excludes_zero(d: Any) -> bool:
    """Whether a mean over seeds has an interval that lies wholly on one side of zero."""
    d = _seed_stat(d, "excludes_zero")
    return _finite(d.get("low")) and _finite(d.get("high")) and (d["low"] > 0 or d["high"] < 0)


def num(v: Any, digits: int = 0) -> str:
    """A count or a plain number: 1214 -> ``1,214``."""
    return f"{_need(v, 'num'):,.{digits}f}"


def sci(v: Any, digits: int = 1) -> str:
    """A small number in scientific notation: ``2.4e-07``."""
    return f"{_need(v, 'sci'):.{digits}e}"


def plural(n: Any, word: str) -> str:
    """``1 run``, ``3 runs``."""
    return _plural(int(_need(n, "plural")), word)


def _printed(printed: Any, unit: str | None = None) -> str:
    """A claim as printed (the table's ``printed`` holds the unit), with a no-break space before ``%``."""
    if printed is None or (isinstance(printed, float) and math.isnan(printed)):
        raise _missing("claim", "no printed value")
    text = str(printed)
    return text[:-2] + f"{NBSP}%" if text.endswith(" %") else text


# --------------------------------------------------------------------------------------------
# Generated blocks that are the same for every paper (landing cards, the verdict sentence)
# --------------------------------------------------------------------------------------------


def badge(verdict: str) -> str:
    from .labels import verdict_badge

    return verdict_badge(verdict)


def _effect_text(v: float, unit: str) -> str:
    if unit == "pp":
        return pp(v)
    if unit == "fraction":
        return format_value(v, unit)
    if unit == "percent":
        return pct(v)
    return num(v)


def per_run_text(cid: str) -> str:
    """Each run's value of a conclusion, by side (``DSCNet 96.7 % s0, 94.0 % s1; Darknet-53 99.5 % s0``),
    or each run's effect when it has no sides."""
    from ..conclusions import evaluate

    r = evaluate(cid)
    unit = r.conclusion.unit
    fmt = (lambda x: pct(x)) if unit in ("pp", "percent") else (lambda x: _effect_text(x, unit))
    if r.evidence.sides:
        return "; ".join(f"{name} " + ", ".join(f"{fmt(v)} s{s}" for s, v in sorted(d.items()))
                         for name, d in r.evidence.sides.items())
    return ", ".join(f"{_effect_text(v, unit)} s{s}" for s, v in sorted(r.judgement.per_run.items()))


def statement(cid: str) -> str:
    """A declared conclusion's sentence for the status its records give it (plain Markdown, no badge)."""
    from ..conclusions import evaluate

    r = evaluate(cid)
    j = r.judgement
    effect = {"mean": j.mean, "low": j.low, "high": j.high, "per_run": j.per_run, "runs": j.runs}
    try:
        return environment().from_string(r.conclusion.sentences[r.status]).render(
            e=effect, v=r.evidence.values, sides=r.evidence.sides).strip()
    except MissingReference as err:
        raise MissingReference(f"finding {cid!r}: {err}") from None


def findings_table(page: str | None = None) -> list[dict]:
    """Every declared conclusion (of one page): id, page, statement (as the book prints it), status, why,
    runs per side, the test, the effect and each run's value, the records read (``leukcore findings``)."""
    from ..conclusions import evaluate, list_conclusions

    return [{**evaluate(c.id).as_dict(), "statement": statement(c.id)} for c in list_conclusions(page)]


def finding(cid: str, per_run: bool | None = None) -> str:
    """A declared conclusion (:mod:`leukcore.conclusions`): the sentence of the status the records
    give it, then its status badge; an inconclusive one also shows each run's value (``per_run``
    forces or suppresses that)."""
    from ..conclusions import evaluate, INCONCLUSIVE
    from .labels import status_badge

    r = evaluate(cid)
    j = r.judgement
    text = statement(cid)
    show = (r.status == INCONCLUSIVE) if per_run is None else per_run
    if show and (r.evidence.sides or j.per_run):
        text += f" (per seed: {per_run_text(cid)}.)"
    return f"{text} {status_badge(r.status)}"


def is_percent(row: dict) -> bool:
    """Whether the paper printed this claim in percent (the table holds fractions either way)."""
    return str(row.get("printed") or "").rstrip().endswith("%")


def _fmt_value(v: float, row: dict) -> str:
    if row.get("unit") == "fraction":
        unit = "percent" if is_percent(row) else "fraction"
        return format_value(_need(v, "value"), unit, digits=1) + (f"{NBSP}%" if unit == "percent" else "")
    return num(v)


def measurement_text(row: dict) -> str:
    """``95.4 % [93.4 %, 97.1 %] (profile paper, 2 runs)``: the pooled number of the runs it names, or why there is none."""
    if not _finite(row.get("measured")):
        return "no measurement"
    s = _fmt_value(row["measured"], row)
    if _finite(row.get("low")) and _finite(row.get("high")) and row["low"] != row["high"]:
        s += f" [{_fmt_value(row['low'], row)}, {_fmt_value(row['high'], row)}]"
    n = int(row.get("runs") or 0)
    if not n:
        return s + " (counted exactly)"
    return s + f" (profile `{row['profile']}`, {_plural(n, 'run')})"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _reasons(row: dict) -> list[str]:
    from ..evaluation.verdicts import reasons_of

    return reasons_of(row)


def _remedies(row: dict, commands: bool) -> list[str]:
    """What would lift each of the row's reasons (none for a reason no run can lift)."""
    from ..evaluation import verdicts as V

    paper = row["paper"]
    pds = row.get("paper_dataset") or "the paper's dataset"
    cmd = f" (`leukcore reproduce --paper {paper} --profile paper --device cuda --seeds 0,1,2`)" if commands else ""
    data = (f" (`leukcore reproduce --paper {paper} --profile paper --data-root DIR`, on a GPU)" if commands else "")
    out = {V.R_NO_DATA: f"the paper's data (`{pds}`) downloaded{data}",
           V.R_NOT_YET: f"a run at the paper's profile{cmd}",
           V.R_SUBSTITUTE: f"the paper's own data (`{pds}`)",
           V.R_IMAGENET: "the ImageNet weights the protocol needs (a machine with internet access)",
           V.R_REDUCED: f"{MIN_RUNS} seeds at the paper's profile on a GPU{cmd}",
           V.R_FEW_RUNS: f"{MIN_RUNS} runs{cmd}"}
    got = []
    for r in _reasons(row):
        text = out.get(r)
        if r == V.R_FEW_RUNS and V.R_REDUCED in _reasons(row):
            continue  # said with the profile
        if text and text not in got:
            got.append(text)
    return got


def verdict_sentence(row: dict, short: bool = False) -> str:
    """Every reason behind the row's verdict, then what would make it firmer (``short``: without commands)."""
    v = row["verdict"]
    reasons = _reasons(row)
    n = int(row.get("runs") or 0)
    if v in FIRM and row.get("metric") not in EXACT_METRICS:
        side = {"reproduced": "contains", "lower": "lies wholly below", "higher": "lies wholly above"}[v]
        return f"Our interval over {_plural(n, 'run')} {side} the claimed value; more seeds would only narrow it."
    if v in FIRM or v == "differs":
        return "Counted exactly, as the paper counted." if v == "reproduced" else \
            "Counted exactly, as the paper counted: the numbers differ."
    head = f"{v.capitalize()}: " + "; ".join(reasons) + "." if reasons else f"{v.capitalize()}."
    if v == "failed to train":
        head += " Its numbers are shown, not compared with the claim (a run that did not learn says nothing of " \
                "the paper's model)."
    fixes = _remedies(row, commands=not short)
    if fixes:
        head += " A verdict needs " + ", and ".join(fixes) + "."
    elif v == "not comparable":
        head += " No run here can make it comparable: both numbers are shown."
    return head


def badge_row(paper: str) -> str:
    """A paper's verdicts as a row of badges with counts (the top of its page)."""
    c = _claims(paper)["verdict"].value_counts()
    order = [k for k in ("reproduced", "lower", "higher", "differs", "indicative", "failed to train",
                         "not comparable", "not run") if k in c]
    return " ".join(f"{badge(k)}&nbsp;{int(c[k])}" for k in order)


def paper_card(paper: str) -> str:
    """One sphinx-design card: headline claim, our best measurement, verdict, why and what next."""
    cid = headline_claim(paper)
    r = claim_row(paper, cid)
    claimed_txt = _printed(r["printed"], r["unit"])
    lines = [f":::{{grid-item-card}} {paper_name(paper)}",
             f":link: {PAPER_DOCS[paper]}",
             ":link-type: doc",
             "",
             f"**Claim** ({r['source'].split(';')[0]}): {r['model']} {r['metric']} **{claimed_txt}**"
             f" on `{r['paper_dataset']}`",
             "",
             f"**Ours**: {measurement_text(r)}" + (f" on `{r['dataset']}`" if r.get("dataset") and
                                                    _finite(r.get("measured")) and
                                                    r["dataset"] != r["paper_dataset"] else ""),
             "",
             f"**Verdict**: {badge(r['verdict'])}",
             "",
             f"**All claims**: {badge_row(paper)}",
             "",
             verdict_sentence(r, short=True),
             ":::"]
    return "\n".join(lines)


def cards() -> str:
    """The landing page's five paper cards, in a responsive grid."""
    from ..evaluation.claims import list_papers

    return "::::{grid} 1 1 2 2\n:gutter: 3\n\n" + "\n\n".join(paper_card(p) for p in list_papers()) + "\n::::\n"


def results_table() -> str:
    """Per paper: claims, how many have a measurement, the verdicts, and the headline's verdict (Markdown)."""
    from ..evaluation.claims import list_papers

    lines = ["| paper | claims | measured | firm | headline claim | verdict |",
             "|---|---|---|---|---|---|"]
    for p in list_papers():
        df = _claims(p)
        v = df["verdict"].value_counts()
        h = claim_row(p, headline_claim(p))
        lines.append(f"| {{doc}}`{paper_name(p)} <{PAPER_DOCS[p]}>` | {len(df)} | {int(df['measured'].notna().sum())} "
                     f"| {int(sum(v.get(k, 0) for k in FIRM))} | {_printed(h['printed'], h['unit'])} "
                     f"{h['model']} {h['metric']} | {badge(h['verdict'])} |")
    return "\n".join(lines) + "\n"


def verdict_counts(paper: str = "all") -> str:
    """``reproduced 0 · lower 0 · ...`` with badges, from the claims table."""
    c = _claims(paper)["verdict"].value_counts()
    return " · ".join(f"{badge(k)} {int(v)}" for k, v in c.items())


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def environment(template_dir: Path | str = TEMPLATE_DIR):
    """The Jinja2 environment: strict (an unknown name fails), the functions and filters above."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir)), undefined=jinja2.StrictUndefined,
                             autoescape=False, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=False)
    env.globals.update(finding=finding, consistency=consistency, consistency_papers=consistency_papers, cite=cite, per_run_text=per_run_text, m=m, ci=ci, m_seed=m_seed, prof=prof, runs=runs, claim=claim, claimed=claimed, claim_row=claim_row,
                       audit=audit, audit_profile=audit_profile, consistency_errors=consistency_errors,
                       consistency_error_papers=consistency_error_papers, count_claims=count_claims, n_firm=n_firm, n_exact=n_exact, headline_verdicts=headline_verdicts, mean=mean, compute=compute,
                       n_records=n_records, cards=cards, verdict_counts=verdict_counts, badge=badge,
                       paper_name=paper_name, headline_claim=headline_claim, measurement_text=measurement_text,
                       verdict_sentence=verdict_sentence, badge_row=badge_row,
                       params=params, results_table=results_table, excludes_zero=excludes_zero, MIN_RUNS=MIN_RUNS, n_papers=len(PAPER_DOCS), abs=abs, min=min, max=max)
    env.filters.update(pct=pct, pp=pp, interval=interval, ppinterval=ppinterval, effect=effect, num=num, sci=sci, plural=plural, ppci=ppci, pctci=pctci)
    return env


def render(name: str, template_dir: Path | str = TEMPLATE_DIR, **context) -> str:
    """Render one template; a reference nothing fills raises MissingReference naming template and reference."""
    import jinja2

    try:
        return environment(template_dir).get_template(name).render(**context)
    except MissingReference as e:
        raise MissingReference(f"{name}: {e}") from None
    except jinja2.UndefinedError as e:
        raise MissingReference(f"{name}: reference {e}") from None


def render_string(text: str, name: str = "<string>", **context) -> str:
    """Render a template given as text (tests, notebooks)."""
    import jinja2

    try:
        return environment().from_string(text).render(**context)
    except MissingReference as e:
        raise MissingReference(f"{name}: {e}") from None
    except jinja2.UndefinedError as e:
        raise MissingReference(f"{name}: reference {e}") from None


def paper_findings(paper: str) -> str:
    """The "What we found" prose of one paper (``book/findings/<paper>.md.j2``)."""
    return render(f"{paper}.md.j2", paper=paper)


def show(paper: str) -> None:
    """Display a paper's verdict badges and its "What we found" in a notebook (its first code cell, input removed)."""
    from IPython.display import Markdown, display

    display(Markdown(f"**Verdicts on this paper's claims**: {badge_row(paper)}\n\n" + paper_findings(paper)))


def build(out: Path) -> list[Path]:
    """Write the landing page, the reproducibility report and each paper's findings into ``out``."""
    from ..evaluation.claims import list_papers
    from ..files import atomic_write_text

    clear_cache()
    typed = check_prose()
    if typed:  # a measurement typed into prose instead of referenced: the build fails, naming it
        raise ValueError("literal measurements in prose (write them as references, see leukcore.book.findings): "
                         + "; ".join(f"{k}: {', '.join(v)}" for k, v in typed.items()))
    written = []
    pages = {"landing.md": "landing.md.j2", "report.md": "report.md.j2"}
    pages.update({f"findings_{p}.md": f"{p}.md.j2" for p in list_papers()})
    for target, tmpl in pages.items():
        p = Path(out) / target
        atomic_write_text(p, render(tmpl))
        written.append(p)
    return written


def relpath(p: Path) -> str:
    return os.path.relpath(p, PROJECT_ROOT)


# --------------------------------------------------------------------------------------------
# The check that keeps measurements out of hand-written prose
# --------------------------------------------------------------------------------------------

#: a measurement typed as text: a percentage, percentage points, a decimal number, scientific notation
LITERAL = re.compile(r"(?<![\w.\-/])(?:\d+(?:[.,]\d+)?\s*(?:%|pp\b|percent\b|per\s?cent\b)"
                     r"|\d+\.\d+(?:e[-+]?\d+)?|\d+e[-+]?\d+)(?![\w.]*\w)", re.IGNORECASE)
#: structural numbers that look like measurements, each with the reason it is allowed
ALLOWED: tuple[tuple[str, str], ...] = (
    (r"\b95\s?%(?=\s+(?:bootstrap\s+)?(?:interval|confidence|CI|Wilson)|\s+intervals?\b)",
     "the confidence level of every interval: a convention, not a measurement"),
    (r"\b(?:Tables?|Sections?|Sec\.|Figures?|Fig\.|Algorithm|Eq\.|Chapter)\s+\d+(?:\.\d+)+",
     "a reference into a paper's own numbering"),
    (r"\b\d+\.\d+\.\d+\b", "a software version"),
    (r"\bdoi:\s?\S+|\b10\.\d{4,}/\S+", "a DOI"),
    (r"\bCC[ -]BY(?:[ -][A-Z]{2})*\s+\d+\.\d+", "a licence's version"),
    (r"\bLeukemia Dataset 0\.2\b", "a dataset's name (leukemia-0.2)"),
    (r"\bbox of \d+ % x \d+ % of the side", "the scale-bar mask's size: a setting (leukcore.audits.SCALE_BAR_BOX)"),
    (r"\bv\d+(?:\.\d+)*\b", "a software version"),
)
_STRIP = (
    re.compile(r"\{\{.*?\}\}", re.S),   # template expressions: the references themselves
    re.compile(r"\{%.*?%\}", re.S),     # template statements
    re.compile(r"\{#.*?#\}", re.S),     # template comments
    re.compile(r"^(```+|~~~+)(?!\{)[^\n]*\n.*?^\1[ \t]*$", re.S | re.M),  # code blocks (not directives)
    re.compile(r"`[^`\n]*`"),           # inline code, role targets, commands
    re.compile(r"https?://\S+"),        # addresses
    re.compile(r"\]\([^)]*\)"),         # link targets
)


def scan_prose(text: str) -> list[str]:
    """The literal measurements in a piece of prose (outside template expressions, code and addresses)."""
    for rx in _STRIP:
        text = rx.sub(" ", text)
    for rx, _why in ALLOWED:
        text = re.sub(rx, " ", text, flags=re.IGNORECASE)
    return [mt.group(0) for mt in LITERAL.finditer(text)]


def prose_sources(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """Every piece of hand-written prose: book pages, findings templates, notebook markdown cells."""
    root = Path(root)
    out = {}
    for p in sorted((root / "book").glob("*.md")) + sorted((root / "book" / "findings").glob("*.j2")):
        out[os.path.relpath(p, root)] = p.read_text(encoding="utf-8")
    for p in sorted((root / "notebooks").glob("*.py")):
        out[os.path.relpath(p, root)] = "\n\n".join(_markdown_cells(p.read_text(encoding="utf-8")))
    if Path(root).resolve() == PROJECT_ROOT.resolve():  # the declared conclusions' words are prose too
        from ..conclusions import list_conclusions

        for c in list_conclusions():
            out[f"leukcore/conclusions ({c.id})"] = "\n".join([c.claim, c.test, *c.sentences.values()])
    return out


def _markdown_cells(text: str) -> list[str]:
    """The markdown cells of a jupytext percent-format script, comment markers removed."""
    cells, cur = [], None
    for line in text.splitlines():
        if line.startswith("# %%"):
            if cur is not None:
                cells.append("\n".join(cur))
            cur = [] if "[markdown]" in line else None
        elif cur is not None:
            cur.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
    if cur is not None:
        cells.append("\n".join(cur))
    return cells


def check_prose(root: Path = PROJECT_ROOT) -> dict[str, list[str]]:
    """``{file: [literal, ...]}`` for every prose file that holds a typed-in measurement (empty: clean)."""
    return {name: hits for name, text in prose_sources(root).items() if (hits := scan_prose(text))}


# --------------------------------------------------------------------------------------------
# The check that a number printed beside "N runs" is the pool of those N runs
# --------------------------------------------------------------------------------------------

#: ``96.7 % [95.9 %, 97.6 %] (profile paper, 2 runs)`` / ``0.775 [0.688, 0.850] (profile cpu, 1 run)``
_NUM = r"(-?\d+(?:\.\d+)?)"
_PCT = r"\s?%"
RUNS_CLAIM = re.compile(
    rf"{_NUM}(?P<p1>{_PCT})?\s\[{_NUM}(?:{_PCT})?,\s{_NUM}(?:{_PCT})?\]\s*"
    rf"(?:\(profile\s`?(?P<profile>\w+)`?,\s|from\s|over\s)(?P<n>\d+)\s(?:runs?|seeds?)\b")


def pooled_runs_problems(text: str, table: pd.DataFrame | None = None) -> list[str]:
    """Every ``value [low, high] ... N runs`` in ``text`` (a page as plain text) whose numbers are not
    the pool of N runs of some claims-table row or pooled experiment (at the printed precision).

    ``table``: the claims table (default: the whole ledger against the committed records)."""
    df = _claims("all") if table is None else table
    rows = df[df["measured"].notna() & df["low"].notna()]
    problems = []
    for mt in RUNS_CLAIM.finditer(text.replace(NBSP, " ")):
        x, lo, hi, n = float(mt.group(1)), float(mt.group(3)), float(mt.group(4)), int(mt.group("n"))
        pct_shown = mt.group("p1") is not None
        digits = len(mt.group(1).split(".")[1]) if "." in mt.group(1) else 0
        scale = 100.0 if pct_shown else 1.0
        tol = 0.5 * 10 ** -digits + 1e-9

        def close(a, b):
            return abs(scale * float(a) - b) <= tol

        ok = any(int(r["runs"]) == n and close(r["measured"], x) and close(r["low"], lo) and close(r["high"], hi)
                 for _, r in rows.iterrows())
        if not ok:
            problems.append(f"{mt.group(0)!r}: no claim pooled over {n} runs has these numbers")
    return problems
