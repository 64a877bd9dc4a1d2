"""The claims table as the book shows it: escaped HTML that DataTables makes sortable offline.

The table is plain HTML built by pandas' Styler with every cell escaped (the verdict badge is
the only markup, made from an escaped verdict and a fixed class name), so it reads without
JavaScript.  ``book/_static/leukcore-tables.js`` turns every ``.claims-table`` /
``.summary-claims`` table into a DataTable (sort, search, a filter per verdict, paper and
profile) with the installed itables' DataTables, which :mod:`leukcore.book.assets` writes into the
build: no request leaves the book, opened from disk or served.  The verdict is the first column,
so it stays in view.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd

from .figures import FIRM, claims_frame, sort_claims
from .units import format_value


def _slug(v: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", str(v).lower().replace(" ", "-"))


def display_unit(r) -> str:
    """``percent`` for a rate the paper printed in percent (the table holds fractions), else the row's unit."""
    printed = r.get("printed")
    return "percent" if isinstance(printed, str) and printed.rstrip().endswith("%") else r["unit"]


def claims_display(df: pd.DataFrame) -> pd.DataFrame:
    """The claims table as the reader sees it: verdict first, numbers formatted (in percent where
    the paper printed percent), difference only for firm verdicts, firm paper-profile rows first;
    every reason, the collapsed runs and a repeated measurement shown."""
    df = sort_claims(df)

    def measured(r) -> str:
        u = display_unit(r)
        s = format_value(r["measured"], u)
        if not s:
            return ""
        lo, hi = format_value(r["low"], u), format_value(r["high"], u)
        if lo and hi and lo != hi:
            s += f" [{lo}, {hi}]"
        return s + (" %" if display_unit(r) == "percent" else "")

    def claimed(r) -> str:
        if isinstance(r.get("printed"), str) and r["printed"]:
            return r["printed"]
        return format_value(r["claimed"], r["unit"])

    def diff(r) -> str:
        d = r["difference"]
        if r["verdict"] not in FIRM or d is None or d != d:
            return ""
        u = display_unit(r)
        return format_value(d, u, signed=True) + (" pp" if u == "percent" else "")

    def metric(r) -> str:
        extra = [str(x) for x in (r.get("averaging"), r.get("class")) if isinstance(x, str) and x
                 and x not in ("overall", "exact", "none")]
        pm = r.get("printed_metric")
        if isinstance(pm, str) and pm and pm != r["metric"]:
            extra.append(f"printed as {pm}")
        return str(r["metric"]) + (f" ({', '.join(extra)})" if extra else "")

    def runs(r) -> str:
        if not r["runs"] or r["runs"] != r["runs"]:
            return ""
        s = str(int(r["runs"]))
        col = r.get("collapsed")
        if isinstance(col, str) and col and not col.startswith("0 "):
            s += f" ({col} collapsed)"
        return s

    def dataset(r) -> str:
        used, paper = r.get("dataset"), r.get("paper_dataset")
        used = used if isinstance(used, str) and used else ""
        if isinstance(paper, str) and paper and paper != used:
            return f"{used} (paper: {paper})" if used else f"(paper: {paper})"
        return used

    def reasons(r) -> str:
        s = r["reasons"] if isinstance(r.get("reasons"), str) else ""
        same = r.get("same_as")
        if isinstance(same, str) and same:
            s += ("; " if s else "") + f"same predictions as {same}: one measurement shown again"
        return s

    rows = [{"verdict": r["verdict"], "paper": r["paper"], "claim": r["claim"], "model": r["model"],
             "metric": metric(r), "claimed": claimed(r), "measured [95 % interval]": measured(r),
             "runs": runs(r), "difference": diff(r),
             "profile · dataset": " · ".join(x for x in (r["profile"] if isinstance(r["profile"], str) else "",
                                                         dataset(r)) if x),
             "reasons": reasons(r)}
            for _, r in df.iterrows()]
    return pd.DataFrame(rows, columns=["verdict", "paper", "claim", "model", "metric", "claimed",
                                       "measured [95 % interval]", "runs", "difference", "profile · dataset",
                                       "reasons"])


def table_html(disp: pd.DataFrame, css_class: str, uuid: str = "claims") -> str:
    """Escaped HTML of a display table inside ``<div class=css_class>``; the ``verdict`` column
    (when present) becomes a badge whose text is the escaped verdict."""
    def badge(escaped: str) -> str:  # Styler escapes the value before the formatter sees it
        return f'<span class="verdict verdict-{_slug(html.unescape(escaped))}">{escaped}</span>'

    from pandas.io.formats.style import Styler

    sty = Styler(disp, uuid=uuid, cell_ids=False).hide(axis="index").format(escape="html", na_rep="")
    if "verdict" in disp:
        sty = sty.format(badge, subset=["verdict"], escape="html")
    body = sty.to_html(table_attributes='class="dataframe leukcore-dt"', doctype_html=False)
    return f'<div class="{css_class}">\n{body}\n</div>'


def claims_html(paper: str = "all", css_class: str | None = None, df: pd.DataFrame | None = None) -> str:
    """The claims table of one paper (or ``all``) as escaped HTML for a page."""
    df = claims_frame(paper) if df is None else df
    disp = claims_display(df)
    if paper not in (None, "all"):
        disp = disp.drop(columns=["paper"])
    return table_html(disp, css_class or ("summary-claims" if paper in (None, "all") else "claims-table"),
                      uuid=f"claims-{paper}")


def write_claims_table(out: Path, df: pd.DataFrame | None = None) -> list[Path]:
    """``summary_table.md`` (the interactive table, raw HTML) and, unless already written,
    ``claims.csv`` (the same rows, every column) into ``out``."""
    from ..files import atomic_write_text

    df = claims_frame("all") if df is None else df
    written = []
    p = out / "summary_table.md"
    atomic_write_text(p, "```{raw} html\n" + claims_html("all", "summary-claims", df=df) + "\n```\n")
    written.append(p)
    csv = out / "claims.csv"
    if not csv.is_file():
        atomic_write_text(csv, sort_claims(df).to_csv(index=False))
        written.append(csv)
    return written
