"""The claims ledger: every number the five papers print, as data.

One YAML file per paper lives in ``leukcore/ledger/<paper_id>.yaml`` (package data). Each file
has the top-level keys ``paper``, ``title``, ``source`` (the file in ``../shared/papers``) and
``claims``, a list of mappings with these fields:

=============  ========  ===================================================================
field          required  meaning
=============  ========  ===================================================================
id             yes       unique within the paper; lowercase ``[a-z0-9][a-z0-9._-]*``
model          yes       leukcore model / classifier name (``dscnet``, ``alexnet+mlp`` ...) or null
experiment     yes       protocol experiment that would produce the number, or null
dataset        yes       dataset id (``taleqani-all``, ``cnmc-2019`` ...) or null when unknown
setting        no        free mapping (``task``, ``loss``, ``augmentation``, ``fold``, ``split`` ...)
metric         yes       one of :data:`METRICS`
value          yes       as printed: a number, or a list of lists for a confusion matrix
unit           yes       one of :data:`UNITS`
std            no        standard deviation as printed
averaging      no        as stated by the paper: null (unstated) or one of :data:`AVERAGINGS`
class          no        class name for per-class claims
source         yes       table / section / figure (several separated by ``;``)
note           no        free text
actual_metric  no        the quantity the number really is, when the paper names it wrongly
                         (one of :data:`METRICS`; e.g. a training accuracy printed as
                         "accuracy"); the audit reports such claims as mislabelled only
actual_of      no        id of the claim (same paper) that prints the same quantity under its
                         right name (e.g. Table 2's recall for a recall the text calls accuracy)
=============  ========  ===================================================================

Values are written in the YAML exactly as printed (``98.90`` stays ``98.90``); the loader
keeps that text in the column ``printed`` and derives ``resolution``, the unit in the last
printed place (``0.01`` for ``98.90``, ``1`` for ``94``, ``10`` for ``1.8e+02``), which the
audit uses as rounding tolerance (half a unit in the last place).

``value01`` is the value as a fraction in [0, 1] for ``percent`` (value / 100) and
``fraction`` units, NaN otherwise.

Setting keys with a fixed meaning (used by :mod:`leukcore.evaluation.consistency`; other keys are free):
``task`` (``binary``/``multiclass``), ``fold`` (int, or ``mean`` for an average over folds),
``split``, ``quantity`` (for counts: ``images``, ``subjects`` ...), ``stage`` (for times),
``statistic`` (the number is not the metric itself: ``improvement``, ``difference``,
``min_over_classes``, ``max_over_classes``), ``bound`` (``">"``/``"<"``: the paper prints an
inequality), and the annotation keys :data:`ANNOTATION_KEYS` which link claims to each other
(``sum_of``, ``difference_of``, ``total_ref``, ``drawn_from``: on a count that is one part of a
split, the id or ids of the counts in which the paper states the size of the data the split was
taken from) or describe them (``labels`` of a confusion
matrix, rows = actual, columns = predicted; ``eval_pool`` on class-count claims that give the
composition of the set the evaluation was drawn from; ``balanced_eval`` when the paper states
a class-balanced evaluation set; ``positive`` class; ``rounded_display`` when a matrix was
printed with limited significant digits).
"""
from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

PAPERS: tuple[str, ...] = (
    "dscnet_kaur2023",
    "dscnet_vijayalakshmi",
    "logmh_haque2024",
    "alnet_jawahar2022",
    "xincept_khan2024",
)
METRICS: tuple[str, ...] = (
    "accuracy", "sensitivity", "specificity", "precision", "f1", "auc",
    "train_accuracy", "val_accuracy", "train_loss", "val_loss",
    "confusion_matrix", "params", "time_s", "count", "error_rate",
)
UNITS: tuple[str, ...] = ("percent", "fraction", "count", "seconds", "params", "unitless")
AVERAGINGS: tuple[str, ...] = ("macro", "weighted", "binary", "per-class", "micro")
REQUIRED: tuple[str, ...] = (
    "id", "model", "experiment", "dataset", "metric", "value", "unit", "source",
)
OPTIONAL: tuple[str, ...] = ("setting", "std", "averaging", "class", "note", "actual_metric", "actual_of")
ANNOTATION_KEYS: frozenset[str] = frozenset({
    "sum_of", "difference_of", "total_ref", "labels", "eval_pool", "balanced_eval",
    "positive", "rounded_display", "drawn_from",
})
COLUMNS: tuple[str, ...] = (
    "paper", "id", "model", "experiment", "dataset", "setting", "metric", "value", "unit",
    "std", "averaging", "class", "source", "note", "printed", "resolution", "value01",
    "actual_metric", "actual_of",
)
_TEXT_COLUMNS = ("model", "experiment", "dataset", "averaging", "class", "note", "printed", "actual_metric",
                 "actual_of")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
LEDGER_DIR = Path(__file__).resolve().parents[1] / "ledger"
#: libyaml's safe loader when available (same semantics as yaml.safe_load, faster)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def list_papers() -> list[str]:
    """The five paper ids, in the order of ``../shared/papers/README.md``."""
    return list(PAPERS)


def ledger_path(paper_id: str) -> Path:
    """Path of the ledger file for ``paper_id``; ValueError listing valid ids if unknown."""
    if paper_id not in PAPERS:
        raise ValueError(f"unknown paper id {paper_id!r}; valid ids: {', '.join(PAPERS)}")
    return LEDGER_DIR / f"{paper_id}.yaml"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate(doc: Any, filename: str | None = None) -> dict:
    """Check one ledger document (the parsed YAML mapping) and return it.

    Raises ``ValueError`` naming the file, the claim id and the field for: a missing required
    field, an unknown field, metric, unit or averaging, a duplicate or malformed id, a value
    that is not numeric (confusion matrices: a non-empty list of equal-length lists of
    non-negative numbers), a percent value outside [0, 100], a fraction outside [0, 1], a
    negative count / params / seconds value, a negative or non-numeric ``std``, and a
    ``setting`` that is not a mapping.
    """
    where = f"ledger {filename or '<doc>'}"
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: top level must be a mapping")
    for key in ("paper", "claims"):
        if key not in doc:
            raise ValueError(f"{where}: missing top-level field {key!r}")
    if doc["paper"] not in PAPERS:
        raise ValueError(f"{where}: field 'paper': unknown paper id {doc['paper']!r}; "
                         f"valid ids: {', '.join(PAPERS)}")
    claims = doc["claims"]
    if not isinstance(claims, list) or not claims:
        raise ValueError(f"{where}: field 'claims' must be a non-empty list")
    seen: set[str] = set()
    for i, c in enumerate(claims):
        if not isinstance(c, dict):
            raise ValueError(f"{where}: claim #{i}: must be a mapping")
        cid = c.get("id", f"#{i}")

        def fail(field: str, msg: str) -> None:
            raise ValueError(f"{where}: claim {cid!r}: field {field!r}: {msg}")

        for f in REQUIRED:
            if f not in c:
                fail(f, "missing required field")
        for f in c:
            if f not in REQUIRED and f not in OPTIONAL:
                fail(f, f"unknown field; allowed: {', '.join(REQUIRED + OPTIONAL)}")
        if not isinstance(cid, str) or not _ID_RE.match(cid):
            fail("id", "must be a lowercase string matching [a-z0-9][a-z0-9._-]*")
        if cid in seen:
            fail("id", "duplicate id")
        seen.add(cid)
        metric, unit, value = c["metric"], c["unit"], c["value"]
        if metric not in METRICS:
            fail("metric", f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
        if unit not in UNITS:
            fail("unit", f"unknown unit {unit!r}; valid: {', '.join(UNITS)}")
        avg = c.get("averaging")
        if avg is not None and avg not in AVERAGINGS:
            fail("averaging", f"unknown averaging {avg!r}; valid: null, {', '.join(AVERAGINGS)}")
        setting = c.get("setting")
        if setting is not None and not isinstance(setting, dict):
            fail("setting", "must be a mapping")
        if metric == "confusion_matrix":
            ok = (isinstance(value, list) and value
                  and all(isinstance(r, list) and r for r in value)
                  and len({len(r) for r in value}) == 1
                  and all(_is_number(x) and x >= 0 for r in value for x in r))
            if not ok:
                fail("value", "confusion matrix must be a list of equal-length lists of "
                              "non-negative numbers")
        else:
            if not _is_number(value):
                fail("value", f"not numeric: {value!r}")
            if unit == "percent" and not 0 <= value <= 100:
                fail("value", f"percent value {value} outside [0, 100]")
            if unit == "fraction" and not 0 <= value <= 1:
                fail("value", f"fraction value {value} outside [0, 1]")
            if unit in ("count", "params", "seconds") and value < 0:
                fail("value", f"{unit} value {value} is negative")
        std = c.get("std")
        if std is not None and (not _is_number(std) or std < 0):
            fail("std", f"must be a non-negative number, got {std!r}")
        if not isinstance(c["source"], str) or not c["source"].strip():
            fail("source", "must be a non-empty string")
        actual = c.get("actual_metric")
        if actual is not None and (actual not in METRICS or actual == metric):
            fail("actual_metric", f"must be a metric other than {metric!r}, one of {', '.join(METRICS)}")
        if c.get("actual_of") is not None and actual is None:
            fail("actual_of", "needs actual_metric (what the number really is)")
    ids = {c["id"] for c in claims}
    for c in claims:
        ref = c.get("actual_of")
        if ref is not None and (ref not in ids or ref == c["id"]):
            raise ValueError(f"{where}: claim {c['id']!r}: field 'actual_of': {ref!r} is not another claim "
                             f"of this ledger")
    return doc


def _printed_values(text: str) -> dict[str, str]:
    """Map claim id -> the value's scalar text exactly as written in the YAML."""
    out: dict[str, str] = {}
    root = yaml.compose(text, Loader=_SAFE_LOADER)
    if not isinstance(root, yaml.MappingNode):
        return out
    for k, v in root.value:
        if k.value != "claims" or not isinstance(v, yaml.SequenceNode):
            continue
        for item in v.value:
            if not isinstance(item, yaml.MappingNode):
                continue
            fields = {kn.value: vn for kn, vn in item.value}
            idn, valn = fields.get("id"), fields.get("value")
            if isinstance(idn, yaml.ScalarNode) and isinstance(valn, yaml.ScalarNode):
                out[idn.value] = valn.value
    return out


def resolution_of(printed: Any) -> float:
    """Unit in the last printed place: ``'98.90'`` -> 0.01, ``'94'`` -> 1, ``'1.8e+02'`` -> 10.

    Accepts the printed text or a number (then its shortest ``repr`` is used). NaN when the
    text is not a decimal number.
    """
    text = printed if isinstance(printed, str) else repr(printed)
    try:
        exp = Decimal(text.strip().replace(",", "")).as_tuple().exponent
    except (InvalidOperation, AttributeError):
        return float("nan")
    if not isinstance(exp, int):
        return float("nan")
    return float(Decimal(1).scaleb(exp))


def claims_frame(doc: dict, printed: dict[str, str] | None = None):
    """One row per claim of a validated ledger ``doc``: the columns :data:`COLUMNS`.

    ``printed`` maps claim ids to the value text as written (see :func:`load_claims`); when
    absent, the printed text is the value's ``repr``. ``value01`` = value / 100 for percent,
    value for fraction, NaN otherwise (and for confusion matrices).
    """
    import pandas as pd

    printed = printed or {}
    rows = []
    for c in doc["claims"]:
        value = c["value"]
        is_cm = c["metric"] == "confusion_matrix"
        text = printed.get(c["id"]) if not is_cm else None
        if text is None and not is_cm:
            text = repr(value)
        if is_cm:
            v01 = float("nan")
        elif c["unit"] == "percent":
            v01 = value / 100.0
        elif c["unit"] == "fraction":
            v01 = float(value)
        else:
            v01 = float("nan")
        rows.append({
            "paper": doc["paper"],
            "id": c["id"],
            "model": c.get("model"),
            "experiment": c.get("experiment"),
            "dataset": c.get("dataset"),
            "setting": dict(c.get("setting") or {}),
            "metric": c["metric"],
            "value": value,
            "unit": c["unit"],
            "std": c.get("std"),
            "averaging": c.get("averaging"),
            "class": c.get("class"),
            "source": c["source"],
            "note": c.get("note"),
            "printed": text,
            "resolution": resolution_of(text) if text is not None else float("nan"),
            "value01": v01,
            "actual_metric": c.get("actual_metric"),
            "actual_of": c.get("actual_of"),
        })
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in _TEXT_COLUMNS:
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    df["std"] = df["std"].astype(float)
    return df


@lru_cache(maxsize=None)
def _load_one(paper_id: str):
    path = ledger_path(paper_id)
    if not path.is_file():
        raise ValueError(f"ledger file missing for {paper_id!r}: {path}")
    text = path.read_text(encoding="utf-8")
    doc = validate(yaml.load(text, Loader=_SAFE_LOADER), filename=path.name)  # == yaml.safe_load
    if doc["paper"] != paper_id:
        raise ValueError(f"ledger {path.name}: field 'paper' is {doc['paper']!r}, "
                         f"expected {paper_id!r}")
    return claims_frame(doc, _printed_values(text))


def load_claims(paper_id: str | None = None):
    """The claims ledger as a pandas DataFrame, one row per claim.

    ``paper_id`` None loads all five papers. Columns: :data:`COLUMNS` (the schema fields plus
    ``paper``, ``printed``, ``resolution`` and ``value01``). Unknown ids raise ``ValueError``
    listing the valid ones; an invalid ledger file raises ``ValueError`` naming file, claim and
    field. The result is a fresh copy (safe to modify).
    """
    ids = list(PAPERS) if paper_id is None else [paper_id]
    for p in ids:
        ledger_path(p)  # validates the id
    import pandas as pd
    frames = [_load_one(p) for p in ids]
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].copy()
    df["setting"] = [dict(s) for s in df["setting"]]
    for col in _TEXT_COLUMNS:  # missing text fields are None (never NaN), whatever concat did
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df


# --------------------------------------------------------------------------- source locations
#: Where the papers' plain-text copies live (``../shared/papers`` from the project root).
PAPERS_DIR = Path(__file__).resolve().parents[3] / "shared" / "papers"
#: Lines around a table caption that belong to the table: tables are flattened before or after
#: their caption (Vijayalakshmi prints captions below), so a few lines either side.
TABLE_BEFORE, TABLE_AFTER = 12, 30
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X")


def paper_source(paper_id: str, papers_dir: str | Path | None = None) -> Path:
    """The paper's plain-text file named by its ledger's ``source`` (in ``papers_dir``)."""
    ledger_path(paper_id)
    doc = yaml.load(ledger_path(paper_id).read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    return Path(papers_dir or PAPERS_DIR) / doc["source"]


def _clean(line: str) -> str:
    return re.sub(r"[*#]", "", line).strip()


def _is_toc(line: str) -> bool:
    return "....." in line


def _section_number(line: str) -> str | None:
    """``'4.7.1'`` for a numbered heading line (``4.7.1 Title``, ``### **3.2 Title**``), else None."""
    text = _clean(line)
    if _is_toc(line) or len(text) > 120:
        return None
    m = re.match(r"^(\d+(?:\.\d+)*)\.?\s+[A-Z]", text)
    return m.group(1) if m else None


def _roman_heading(line: str) -> str | None:
    m = re.match(r"^([IVX]+)\.\s+[A-Z]", _clean(line))
    return m.group(1) if m and m.group(1) in _ROMAN and len(_clean(line)) < 80 else None


def _letter_heading(line: str) -> str | None:
    m = re.match(r"^([A-H])\.\s+[A-Z]", _clean(line))
    return m.group(1) if m and len(_clean(line)) < 80 else None


def locate(text: str, location: str) -> list[tuple[int, int]]:
    """Line ranges ``[start, end)`` of ``text`` that a source location names.

    ``Table N`` / ``Table N.M``: the lines around each caption line (``Table N.`` / ``Table N:``);
    ``Section 4.7`` (numbered, with its subsections) up to the next heading that is not inside
    it, or the next chapter; ``Section III.B`` (roman, then lettered) up to the next heading of the same
    kind; ``Chapter N`` up to the next chapter; ``Abstract`` up to the next heading. Empty
    when the location is not found.
    """
    lines = text.splitlines()
    loc = re.sub(r"\s*\(.*$", "", location.strip())
    out: list[tuple[int, int]] = []
    m = re.fullmatch(r"(?i)table\s+(\d+(?:\.\d+)?)", loc)
    if m:
        # a caption: "Table 2." / "Table 2:" / "TABLE 2:" / "Table 5.1." (not "Table 2 presents ...")
        pat = re.compile(rf"(?i)^table\s+{re.escape(m.group(1))}(?![\d])(?!\.\d)\s*[.:]")
        for i, line in enumerate(lines):
            if pat.match(_clean(line)) and not _is_toc(line):
                out.append((max(0, i - TABLE_BEFORE), min(len(lines), i + TABLE_AFTER)))
        return out
    m = re.fullmatch(r"(?i)chapter\s+(\d+)", loc)
    if m:
        heads = [i for i, line in enumerate(lines) if re.match(r"(?i)^chapter\s+\d+\s*$", _clean(line))]
        for k, i in enumerate(heads):
            if re.match(rf"(?i)^chapter\s+{m.group(1)}\s*$", _clean(lines[i])):
                out.append((i, heads[k + 1] if k + 1 < len(heads) else len(lines)))
        return out
    if loc.lower() == "abstract":
        for i, line in enumerate(lines):
            if re.match(r"(?i)^abstract\b", _clean(line)):
                end = next((j for j in range(i + 1, len(lines)) if _section_number(lines[j]) or
                            _roman_heading(lines[j]) or lines[j].startswith("#")), len(lines))
                out.append((i, end))
                break
        return out
    m = re.fullmatch(r"(?i)section\s+(\d+(?:\.\d+)*)", loc)
    if m:
        num = m.group(1)
        for i, line in enumerate(lines):
            if _section_number(line) == num:
                end = next((j for j in range(i + 1, len(lines))
                            if ((n := _section_number(lines[j])) and not n.startswith(num + "."))
                            or re.match(r"(?i)^chapter\s+\d+\s*$", _clean(lines[j]))), len(lines))
                out.append((i, end))
        return out
    m = re.fullmatch(r"(?i)section\s+([IVX]+)(?:\.([A-H]))?", loc)
    if m:
        roman, letter = m.group(1), m.group(2)
        for i, line in enumerate(lines):
            if _roman_heading(line) != roman:
                continue
            end = next((j for j in range(i + 1, len(lines)) if _roman_heading(lines[j])), len(lines))
            if letter is None:
                out.append((i, end))
                continue
            for j in range(i + 1, end):
                if _letter_heading(lines[j]) == letter:
                    e = next((k for k in range(j + 1, end) if _letter_heading(lines[k])), end)
                    out.append((j, e))
        return out
    return out


def region_text(text: str, location: str) -> str:
    """The text of every range :func:`locate` finds for ``location`` (empty when none)."""
    lines = text.splitlines()
    return "\n".join("\n".join(lines[a:b]) for a, b in locate(text, location))


def _number_text(text: str) -> str:
    """Numbers as plain digits: thousands separators dropped (``535,010`` -> ``535010``)."""
    return re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)


def printed_in(region: str, printed: str) -> bool:
    """Whether the number ``printed`` appears in ``region`` as a number (not inside a longer one)."""
    p = _number_text(printed.strip())
    return re.search(rf"(?<![\d.]){re.escape(p)}(?![\d])(?!\.\d)", _number_text(region)) is not None


def _numbers(region: str) -> list[float]:
    out = []
    for tok in re.findall(r"\d+(?:\.\d+)?(?:e[+-]?\d+)?", _number_text(region)):
        try:
            out.append(float(tok))
        except ValueError:
            continue
    return out


def value_in(region: str, value: float, printed: str | None = None, *, first: bool = True) -> bool:
    """Whether a claim's value appears in ``region``.

    At a claim's first location the number must appear as printed (``printed``), or, for a
    number the paper prints with limited digits, in scientific notation of the same value
    (``1.8e+02`` for 180). At a further location the paper may print it otherwise (``0.90`` in a
    table, ``90%`` in the text): any number in the region equal to the value, or to it as a
    percentage or a fraction, will do.
    """
    if printed is not None and printed_in(region, printed):
        return True
    v = float(value)
    if first:
        sci = re.findall(r"(?<![\d.])\d+(?:\.\d+)?e[+-]?\d+", region)
        return any(math.isclose(float(t), v, rel_tol=1e-9) for t in sci)
    return any(math.isclose(c, v, rel_tol=1e-9, abs_tol=1e-12) for t in _numbers(region) for c in (t, t / 100, t * 100))


def quotes_of(location: str) -> list[str]:
    """The single-quoted passages in a source's parenthetical (``Section 4.8 ('around 90%')``),
    split at ellipses (``...`` marks words left out), each fragment of at least 4 characters."""
    m = re.search(r"\((.*)\)\s*$", location)
    if not m:
        return []
    out = []
    for q in re.findall(r"'([^']{4,})'", m.group(1)):
        out += [f.strip() for f in re.split(r"\.\.\.|…", q) if len(f.strip()) >= 4]
    return out


def _norm(text: str) -> str:
    return " ".join(text.lower().split())
