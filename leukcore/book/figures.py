"""The book's figures, each computed from the claims table or from run records (never typed in).

Forest plots (claimed value and measured interval per claim, by verdict), the per-paper summary
panels, ROC curves whose area is the AUC of the tables (binary: the positive class; multi-class:
the macro mean of one-vs-rest curves, as :func:`leukcore.metrics.compute_metrics`), learning
curves, confusion matrices, reliability diagrams with their expected calibration error, Grad-CAM
and a gallery of misclassified cells.  Records whose predictions collapse to one class did not
train: Grad-CAM, reliability diagrams and galleries skip them.

``leukcore figures gradcam --record PATH --out PNG`` renders a record's Grad-CAM to a small PNG
(on the machine that holds the weights), which the paper page shows when the weights are absent
(``book/figures/<paper>/<experiment>_<profile>_gradcam.png``).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..evaluation.verdicts import FIRM
from ..files import PROJECT_ROOT
from ..runs.profiles import PROFILE_RANK
from ..runs.records import provenance_label, read_predictions

FIGURES_DIR = PROJECT_ROOT / "book" / "figures"
SOFT = ("differs", "indicative")
FAILED = ("failed to train",)
UNMEASURED = ("not comparable", "not run")
VERDICT_COLOURS = {"reproduced": "#1a7f37", "lower": "#c2410c", "higher": "#7c3aed", "differs": "#b45309",
                   "indicative": "#6b7280", "failed to train": "#9ca3af", "not comparable": "#d1d5db",
                   "not run": "#d1d5db"}
# reading order of the claims table and the figures: firm results first, then the rest
VERDICT_ORDER = {v: i for i, v in enumerate(FIRM + SOFT + FAILED + UNMEASURED)}
FRACTION_UNITS = ("percent", "fraction")


# --------------------------------------------------------------------------------------------
# The claims table (one accessor: leukcore.evaluation.verdicts when it exists, else today's report table)
# --------------------------------------------------------------------------------------------


def claims_frame(paper: str = "all") -> pd.DataFrame:
    """The claims table (:func:`leukcore.evaluation.verdicts.claims_table`), percent claims on the fraction scale."""
    from ..evaluation.verdicts import claims_table

    return _as_fractions(claims_table(paper=paper))


def _as_fractions(df: pd.DataFrame) -> pd.DataFrame:
    """Percent claims on the fraction scale of the measurements (a table printed in percent is divided)."""
    df = df.copy()
    pct = df["unit"].eq("percent")
    for col in ("claimed", "measured", "low", "high", "difference"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    if pct.any() and (df.loc[pct, "claimed"].abs() > 1.0 + 1e-9).any():
        for col in ("claimed", "measured", "low", "high", "difference"):
            if col in df and (col == "claimed" or (df.loc[pct, col].abs() > 1.0 + 1e-9).any()):
                df.loc[pct, col] = df.loc[pct, col] / 100.0
    return df


def sort_claims(df: pd.DataFrame) -> pd.DataFrame:
    """Firm verdicts first, then the others; within a verdict, paper-profile rows first."""
    key = pd.DataFrame({"v": df["verdict"].map(VERDICT_ORDER).fillna(len(VERDICT_ORDER)),
                        "p": -df["profile"].map(PROFILE_RANK).fillna(-1),  # highest profile first
                        "paper": df["paper"].astype(str), "claim": df["claim"].astype(str)}, index=df.index)
    return df.loc[key.sort_values(["v", "p", "paper", "claim"], kind="stable").index].reset_index(drop=True)


def collapsed_reduced(df: pd.DataFrame) -> pd.Series:
    """Rows whose pooled runs include a collapsed run at a reduced profile: a fact about those
    runs, not a measurement of the claim."""
    col = df["collapsed"].fillna("").astype(str) if "collapsed" in df else pd.Series("", index=df.index)
    return (df["profile"].fillna("") != "paper") & col.str.match(r"^[1-9]\d* of")


def forest_data(df: pd.DataFrame) -> pd.DataFrame:
    """The rows a forest plot shows: claims on a 0..1 scale with a measurement at their best
    profile, in reading order; never a collapsed reduced-profile run."""
    d = df[df["unit"].isin(FRACTION_UNITS) & df["measured"].notna() & df["claimed"].notna() & ~collapsed_reduced(df)]
    return sort_claims(d)


def _section(v: str) -> str:
    return "firm" if v in FIRM else ("failed to train" if v in FAILED else "indicative")


# --------------------------------------------------------------------------------------------
# Forest plot and summary panels
# --------------------------------------------------------------------------------------------


def plot_forest(df: pd.DataFrame, title: str | None = None, max_rows: int | None = None):
    """Claimed value (black diamond) and measured interval (bar) per claim, coloured by verdict.

    Firm verdicts (filled circles) come first; indicative rows (hollow circles) and runs that
    failed to train (crosses) follow in their own sections, separated by a line.  Artists carry
    ``gid`` ``claimed`` / ``measured-<section>`` / ``interval`` (the unit tests read them back).
    Returns None when no claim has a measurement.
    """
    import matplotlib.pyplot as plt

    d = forest_data(df)
    d = d if max_rows is None else d.head(max_rows)
    if d.empty:
        return None
    n = len(d)
    y = np.arange(n)[::-1].astype(float)
    fig, ax = plt.subplots(figsize=(8.0, 1.2 + 0.2 * n))
    low = d["low"].fillna(d["measured"]).to_numpy(float)
    high = d["high"].fillna(d["measured"]).to_numpy(float)
    colours = [VERDICT_COLOURS.get(v, "k") for v in d["verdict"]]
    ax.hlines(y, low, high, colors=colours, lw=2.2, gid="interval")
    sections = d["verdict"].map(_section).to_numpy()
    for sec, marker in (("firm", "o"), ("indicative", "o"), ("failed to train", "X")):
        m = sections == sec
        if not m.any():
            continue
        cols = [c for c, k in zip(colours, m) if k]
        face = cols if sec != "indicative" else "white"
        ax.scatter(d["measured"].to_numpy(float)[m], y[m], marker=marker, s=36, facecolors=face, edgecolors=cols,
                   linewidths=1.5, zorder=3, gid=f"measured-{sec}")
    ax.scatter(d["claimed"].to_numpy(float), y, marker="D", s=22, color="black", zorder=4, gid="claimed",
               label="claimed (as printed)")
    # section separators and labels
    for i in range(1, n):
        if sections[i] != sections[i - 1]:
            ax.axhline(y[i] + 0.5, color="0.3", lw=0.8, ls="--")
    starts = [0] + [i for i in range(1, n) if sections[i] != sections[i - 1]]
    labels = [f"{m} · {c} · {r.get('profile') or ''}".strip(" ·") for m, c, (_, r) in
              zip(d["model"].astype(str), d["claim"].astype(str), d.iterrows())]
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    lo = float(np.nanmin(np.r_[low, d["claimed"].to_numpy(float)]))
    hi = float(np.nanmax(np.r_[high, d["claimed"].to_numpy(float)]))
    pad = max(0.01, 0.05 * (hi - lo))
    ax.set_xlim(max(0.0, lo - pad), min(1.02, hi + pad) if hi <= 1.0 else hi + pad)
    ax.set_ylim(-0.8, n - 0.2)
    for s in starts:
        ax.text(0.005, y[s] + 0.1, sections[s], transform=ax.get_yaxis_transform(), ha="left", va="bottom",
                fontsize=8, style="italic", color="0.25")
    ax.set_xlabel("value (fraction; percentages divided by 100)")
    ax.grid(axis="x", lw=0.4, alpha=0.5)
    handles = _verdict_handles(d["verdict"].unique()) + [
        plt.Line2D([], [], marker="D", ls="", color="black", label="claimed (as printed)")]
    ax.legend(handles=handles, fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=4, frameon=False)
    more = len(forest_data(df)) - n
    ax.set_title((title or "") + (f" (first {n} of {n + more} measured claims)" if more > 0 else ""),
                 fontsize=9, pad=24 if title else 18)
    fig.tight_layout()
    return fig


def _verdict_handles(verdicts) -> list:
    import matplotlib.pyplot as plt

    out = []
    for v in sorted(verdicts, key=lambda v: VERDICT_ORDER.get(v, 99)):
        c = VERDICT_COLOURS.get(v, "k")
        sec = _section(v)
        out.append(plt.Line2D([], [], marker="X" if sec == "failed to train" else "o", ls="-", color=c,
                              markerfacecolor="white" if sec == "indicative" else c, label=v))
    return out


def plot_summary(df: pd.DataFrame):
    """Claimed (x) against measured (y) per paper, one panel each, axes zoomed to the panel's data.

    Firm verdicts are filled circles drawn on top; indicative ones hollow and faint, failed runs
    crosses, so reduced-profile runs do not dominate the picture.  Without any measurement the
    figure says so (the summary page always has its figure).
    """
    import matplotlib.pyplot as plt

    from .labels import PAPER_NAMES

    every = sorted(df["paper"].dropna().unique())
    papers = [p for p in every if len(forest_data(df[df["paper"] == p]))]
    if not papers:  # still a figure, so the page that shows it builds
        fig, ax = plt.subplots(figsize=(5, 1.2))
        ax.text(0.5, 0.5, "no claim has a measurement yet", ha="center", va="center")
        ax.axis("off")
        return fig
    cols = min(3, len(papers))
    rows = int(math.ceil(len(papers) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.0 * rows), squeeze=False)
    for ax, paper in zip(axes.flat, papers):
        d = forest_data(df[df["paper"] == paper])
        ax.set_title(PAPER_NAMES.get(paper, paper), fontsize=9)
        for v, g in sort_claims(d).groupby("verdict", sort=False):
            c = VERDICT_COLOURS.get(v, "k")
            sec = _section(v)
            yerr = np.vstack([(g["measured"] - g["low"].fillna(g["measured"])).clip(lower=0),
                              (g["high"].fillna(g["measured"]) - g["measured"]).clip(lower=0)])
            ax.errorbar(g["claimed"], g["measured"], yerr=yerr, fmt="X" if sec == "failed to train" else "o",
                        ms=6 if sec == "firm" else 4, color=c, mfc="white" if sec == "indicative" else c, ecolor=c,
                        alpha=0.95 if sec == "firm" else 0.45, lw=1.2 if sec == "firm" else 0.7,
                        zorder=3 if sec == "firm" else 2, label=f"{v} ({len(g)})")
        ax.set_xlim(*_zoom(d["claimed"]))
        ax.set_ylim(*_zoom(np.r_[d["measured"], d["low"].dropna(), d["high"].dropna()]))
        lo, hi = min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, scalex=False, scaley=False)
        ax.set_xlabel("claimed")
        ax.set_ylabel("measured (95 % interval)")
        ax.legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[len(papers):]:
        ax.axis("off")
    unmeasured = [PAPER_NAMES.get(p, p) for p in every if p not in papers]
    if unmeasured:
        fig.suptitle("no measured claim yet: " + "; ".join(unmeasured), fontsize=9, y=0.995)
    fig.tight_layout()
    return fig


def _zoom(values) -> tuple[float, float]:
    """Axis limits around the values (a little margin; never past 0 or far past 1)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    lo, hi = float(v.min()), float(v.max())
    pad = max(0.005, 0.06 * (hi - lo))
    return max(0.0, lo - pad), min(1.02, hi + pad)


def write_summary_figures(out: Path, df: pd.DataFrame | None = None) -> list[Path]:
    """The summary page's figure (``claims_vs_measured.png``) and one forest plot per paper
    (``forest_<paper>.png``) into ``out``; returns the files written."""
    import matplotlib.pyplot as plt

    df = claims_frame("all") if df is None else df
    written = []
    fig = plot_summary(df)
    if fig is not None:
        fig.savefig(out / "claims_vs_measured.png", dpi=100)
        plt.close(fig)
        written.append(out / "claims_vs_measured.png")
    from ..files import atomic_write_text
    from .labels import PAPER_NAMES

    parts = []
    for paper in sorted(df["paper"].dropna().unique()):
        fig = plot_forest(df[df["paper"] == paper])
        name = PAPER_NAMES.get(paper, paper)
        if fig is None:
            parts.append(f"- {name}: no claim of this paper has a measurement yet.\n")
            continue
        fig.savefig(out / f"forest_{paper}.png", dpi=90)
        plt.close(fig)
        written.append(out / f"forest_{paper}.png")
        parts.append(f"```{{admonition}} Forest plot: {name}\n:class: dropdown\n\n"
                     f"![Claimed value and measured interval per claim of {name}](_generated/forest_{paper}.png)\n```\n")
    atomic_write_text(out / "forest_plots.md", "\n".join(parts))
    written.append(out / "forest_plots.md")
    return written


# --------------------------------------------------------------------------------------------
# Records: which trained, ROC, calibration
# --------------------------------------------------------------------------------------------


def trained(rec: dict) -> bool:
    """Whether a record's model learned anything: its test predictions use more than one class
    (a record without a confusion matrix shows no collapse, so it counts as trained)."""
    cm = rec.get("metrics", {}).get("confusion_matrix")
    if not cm:
        return True
    return int((np.asarray(cm).sum(axis=0) > 0).sum()) > 1


def _probs(rec: dict) -> tuple[np.ndarray, np.ndarray]:
    p = read_predictions(rec)
    return p["y_true"].to_numpy(int), p[[c for c in p.columns if c.startswith("p_")]].to_numpy(float)


def _positive_index(rec: dict) -> int:
    names = list(rec["class_names"])
    pos = rec.get("metrics", {}).get("positive")
    return names.index(pos) if pos in names else 1


def _curve_breaks(fpr: np.ndarray, tpr: np.ndarray):
    """A piecewise-linear ROC curve as (distinct fpr, lowest tpr at it, highest tpr at it)."""
    ux = np.unique(fpr)
    lo = np.array([tpr[fpr == x].min() for x in ux])
    hi = np.array([tpr[fpr == x].max() for x in ux])
    return ux, lo, hi


def _eval_curve(ux, lo, hi, grid):
    """Left and right limits of a piecewise-linear ROC curve at each point of ``grid``."""
    left, right = np.empty_like(grid), np.empty_like(grid)
    for j, x in enumerate(grid):
        k = np.searchsorted(ux, x)
        if k < len(ux) and ux[k] == x:
            left[j], right[j] = lo[k], hi[k]
        else:  # strictly between ux[k-1] and ux[k]: on the segment from (ux[k-1], hi) to (ux[k], lo)
            a, b = k - 1, k
            t = (x - ux[a]) / (ux[b] - ux[a])
            left[j] = right[j] = hi[a] + t * (lo[b] - hi[a])
    return left, right


def macro_roc(y_true: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, list]:
    """The macro-average one-vs-rest ROC curve: the vertical mean of the per-class curves.

    The per-class curves are averaged exactly (every class' breakpoints, with both limits at a
    vertical step), so the trapezoid area of the returned curve is the mean of the per-class
    AUCs: ``roc_auc_score(..., multi_class="ovr", average="macro")``.  Returns (fpr, tpr, area,
    per-class ``(fpr, tpr, auc)``).
    """
    from sklearn.metrics import auc, roc_curve

    per, parts = [], []
    for k in range(prob.shape[1]):
        fpr, tpr, _ = roc_curve(y_true == k, prob[:, k], drop_intermediate=False)
        per.append((fpr, tpr, float(auc(fpr, tpr))))
        parts.append(_curve_breaks(fpr, tpr))
    grid = np.unique(np.concatenate([p[0] for p in parts]))
    lefts, rights = zip(*(_eval_curve(ux, lo, hi, grid) for ux, lo, hi in parts))
    left, right = np.mean(lefts, axis=0), np.mean(rights, axis=0)
    fpr = np.repeat(grid, 2)
    tpr = np.column_stack([left, right]).ravel()
    return fpr, tpr, float(auc(fpr, tpr)), per


def roc_for_record(rec: dict) -> dict:
    """The ROC curve the table's AUC belongs to: binary, the positive class' curve; multi-class,
    the macro one-vs-rest curve.  ``{"fpr", "tpr", "area", "label", "per_class"}``."""
    from sklearn.metrics import auc, roc_curve

    y, prob = _probs(rec)
    names = list(rec["class_names"])
    if prob.shape[1] == 2:
        pos = _positive_index(rec)
        fpr, tpr, _ = roc_curve(y == pos, prob[:, pos], drop_intermediate=False)
        area = float(auc(fpr, tpr))
        return {"fpr": fpr, "tpr": tpr, "area": area, "per_class": [],
                "label": f"{rec['experiment']}: AUC {area:.3f} ({names[pos]} vs rest)"}
    fpr, tpr, area, per = macro_roc(y, prob)
    return {"fpr": fpr, "tpr": tpr, "area": area, "per_class": [(names[k], *per[k]) for k in range(len(per))],
            "label": f"{rec['experiment']}: macro one-vs-rest AUC {area:.3f}"}


def plot_roc(records: list[dict], max_curves: int = 10):
    """ROC curves whose areas are the AUCs of the tables (legend states the averaging)."""
    import matplotlib.pyplot as plt

    recs = records[:max_curves]
    if not recs:
        return None
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    for r in recs:
        c = roc_for_record(r)
        ax.plot(c["fpr"], c["tpr"], lw=1.5, label=c["label"])
    ax.plot([0, 1], [0, 1], "k--", lw=0.7)
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(fontsize=7, loc="lower right", title="area = AUC of the table", title_fontsize=7)
    ax.set_title(provenance_label(recs[0]), fontsize=9)
    fig.tight_layout()
    return fig


def calibration_bins(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Top-label reliability bins: per equal-width confidence bin, its count, mean confidence
    and accuracy (empty bins left out)."""
    conf = prob.max(axis=1)
    correct = (prob.argmax(axis=1) == y_true).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        m = idx == b
        if m.any():
            rows.append({"bin": b, "low": edges[b], "high": edges[b + 1], "n": int(m.sum()),
                         "confidence": float(conf[m].mean()), "accuracy": float(correct[m].mean())})
    return pd.DataFrame(rows, columns=["bin", "low", "high", "n", "confidence", "accuracy"])


def expected_calibration_error(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> float:
    """ECE (Guo et al. 2017): sum over bins of (n_b / N) |accuracy_b - confidence_b|."""
    b = calibration_bins(np.asarray(y_true), np.asarray(prob, float), n_bins)
    return float((b["n"] / b["n"].sum() * (b["accuracy"] - b["confidence"]).abs()).sum()) if len(b) else float("nan")


def plot_reliability(records: list[dict], max_panels: int = 8, n_bins: int = 10):
    """Reliability diagrams (accuracy against confidence, with ECE) of the records that trained."""
    import matplotlib.pyplot as plt

    recs = [r for r in records if trained(r)][:max_panels]
    if not recs:
        return None
    cols = min(4, len(recs))
    rows = int(math.ceil(len(recs) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 3.0 * rows), squeeze=False)
    for ax, r in zip(axes.flat, recs):
        y, prob = _probs(r)
        b = calibration_bins(y, prob, n_bins)
        ax.bar(b["low"], b["accuracy"], width=1.0 / n_bins, align="edge", edgecolor="k", color="#93c5fd",
               label="accuracy")
        ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top class)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{r['experiment']}\nECE {expected_calibration_error(y, prob, n_bins):.3f}", fontsize=9)
    for ax in list(axes.flat)[len(recs):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"reliability ({provenance_label(recs[0])})", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Learning curves and confusion matrices
# --------------------------------------------------------------------------------------------


def plot_learning_curves(records: list[dict], max_panels: int = 12):
    """Loss (left axis) and accuracy (right axis) per epoch of each CNN record (first fold)."""
    import matplotlib.pyplot as plt

    recs = [r for r in records if r.get("history") and r["history"][0]][:max_panels]
    if not recs:
        return None
    n = len(recs)
    cols = min(3, n)
    rows = int(math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.0 * rows), squeeze=False)
    for ax, r in zip(axes.flat, recs):
        h = pd.DataFrame(r["history"][0])
        lines = ax.plot(h["epoch"], h["train_loss"], "o-", ms=3, label="train loss")
        if "val_loss" in h and h["val_loss"].notna().any():
            lines += ax.plot(h["epoch"], h["val_loss"], "s--", ms=3, label="val loss")
        ax2 = ax.twinx()
        lines += ax2.plot(h["epoch"], h["train_accuracy"], "g:", label="train accuracy")
        if "val_accuracy" in h and h["val_accuracy"].notna().any():
            lines += ax2.plot(h["epoch"], h["val_accuracy"], "r:", label="val accuracy")
        ax2.set_ylim(0, 1)
        ax2.set_ylabel("accuracy", fontsize=8)
        ax.set_ylabel("loss", fontsize=8)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_title(r["experiment"] + ("" if trained(r) else " (collapsed to one class)"), fontsize=9)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="center right")
    fig.suptitle(f"learning curves, fold 0 ({provenance_label(recs[0])})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_confusion_matrices(records: list[dict], max_panels: int = 8):
    """Confusion matrices (rows true, columns predicted), counts and row percentages."""
    import matplotlib.pyplot as plt

    recs = records[:max_panels]
    if not recs:
        return None
    cols = min(3, len(recs))
    rows = int(math.ceil(len(recs) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.8 * rows), squeeze=False)
    for ax, r in zip(axes.flat, recs):
        cm = np.asarray(r["metrics"]["confusion_matrix"])
        names = list(r["class_names"])
        row = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(row, cmap="Blues", vmin=0, vmax=1)
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(j, i, f"{cm[i, j]}\n{100 * row[i, j]:.0f} %", ha="center", va="center", fontsize=7,
                        color="white" if row[i, j] > 0.6 else "black")
        ax.set_xticks(range(len(names)))
        ax.set_yticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_yticklabels(names, fontsize=8)
        ax.set_xlabel("predicted class", fontsize=8)
        ax.set_ylabel("true class", fontsize=8)
        ax.set_title(f"{r['experiment']}\naccuracy {r['metrics']['accuracy']:.3f}", fontsize=9)
    for ax in list(axes.flat)[len(recs):]:
        ax.axis("off")
    fig.suptitle(provenance_label(recs[0]), fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Images: Grad-CAM and misclassified cells
# --------------------------------------------------------------------------------------------


def _record_images(rec: dict, ids: list[str], data_root=None) -> tuple[np.ndarray, pd.DataFrame]:
    """The test images of ``ids`` as the record's run saw them (same dataset, size)."""
    from ..data import load_images
    from ..runs.inputs import experiment_data
    from ..runs.protocols import get_experiment
    from ..runs.profiles import get_profile

    exp = get_experiment(rec["paper"], rec["experiment"])
    ed = experiment_data(rec["paper"], exp, get_profile(rec["profile"]), data_root, seed=rec.get("seed") or 0)
    known = set(ed.table["id"])
    t = ed.table.set_index("id", drop=False).loc[[i for i in ids if i in known]].reset_index(drop=True)
    x, kept = load_images(t, rec["settings"]["image_size"], on_bad="skip")
    return x, kept.reset_index(drop=True)


def gradcam_figure_path(rec: dict) -> Path:
    """Where the committed Grad-CAM image of a record's experiment at its profile lives:
    ``book/figures/<paper>/<experiment>_<profile>_gradcam.png`` (the image names its run)."""
    return FIGURES_DIR / rec["paper"] / f"{rec['experiment']}_{rec['profile']}_gradcam.png"


def _explained(rec: dict) -> bool:
    """Whether a record's route keeps a CNN that Grad-CAM explains (:attr:`leukcore.runs.routes.Route.explained`)."""
    from ..runs.protocols import get_experiment
    from ..runs.routes import get_route

    return get_route(get_experiment(rec["paper"], rec["experiment"]).route).explained


def gradcam_record(records: list[dict]) -> dict | None:
    """The CNN record a page shows Grad-CAM for: one that trained, preferring one whose weights
    are here or whose image was committed, then the most accurate."""
    cnn = [r for r in records if trained(r) and _explained(r)]
    if not cnn:
        return None
    return max(cnn, key=lambda r: (_weights_here(r) or gradcam_figure_path(r).is_file(), r["metrics"]["accuracy"]))


def plot_grad_cam(rec: dict | None, n: int = 6, data_root=None, weights=None):
    """Grad-CAM of a trained CNN record on test images, with true and predicted class per panel.

    None (with one printed line saying why) when the record did not train (one predicted class),
    is no CNN, or its weights are not on this machine.  Half the panels are correct predictions,
    half errors (when there are any), chosen by confidence, so the figure shows both. ``weights``:
    the model's weights file (default: where the record's run keeps them, :func:`final_weights_path`).
    """
    import matplotlib.pyplot as plt
    import torch

    from ..runs.protocols import get_experiment
    from ..runs.routes import final_weights_path, new_model
    from ..engine.explain import grad_cam

    if rec is None:
        return None
    if not _explained(rec):
        return None
    if not trained(rec):
        print(f"Grad-CAM of {rec['experiment']} ({provenance_label(rec)}) is not shown: the model predicts one "
              f"class for every test image (it did not train), so its maps explain nothing.")
        return None
    weights = Path(weights) if weights is not None else final_weights_path(rec)
    if not weights.is_file():
        print(f"Grad-CAM of {rec['experiment']} ({provenance_label(rec)}) is not shown: its trained weights are not "
              f"on the machine that rendered this page (weights are not committed; the run was made on "
              f"{rec.get('device', 'another machine')}).")
        return None
    exp = get_experiment(rec["paper"], rec["experiment"])
    model, _ = new_model(exp.model, len(rec["class_names"]), {**rec["settings"], "pretrained": False},
                          **rec["settings"].get("model_kw", {}))
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    p = read_predictions(rec)
    prob = p[[c for c in p.columns if c.startswith("p_")]].to_numpy(float)
    p = p.assign(pred=prob.argmax(1), conf=prob.max(1))
    wrong = p[p["pred"] != p["y_true"]].sort_values("conf", ascending=False)
    right = p[p["pred"] == p["y_true"]].groupby("y_true", sort=True).head(2)
    pick = pd.concat([right.head(n - min(len(wrong), n // 2)), wrong.head(n // 2)])
    x, t = _record_images(rec, list(pick["id"]), data_root)
    if not len(x):
        print(f"Grad-CAM of {rec['experiment']} is not shown: its test images are not on this machine.")
        return None
    cams = grad_cam(model, x)
    names = list(rec["class_names"])
    by_id = p.set_index("id")
    fig, axes = plt.subplots(2, len(x), figsize=(1.9 * len(x), 4.3), squeeze=False)
    for j in range(len(x)):
        row = by_id.loc[t["id"].iloc[j]]
        true, pred = names[int(row["y_true"])], names[int(row["pred"])]
        axes[0, j].imshow(x[j])
        axes[0, j].set_title(f"true {true}\npred {pred}", fontsize=8, color="black" if true == pred else "#b91c1c")
        axes[1, j].imshow(x[j])
        axes[1, j].imshow(cams[j], cmap="jet", alpha=0.45)
        for a in axes[:, j]:
            a.set_xticks([])
            a.set_yticks([])
    axes[0, 0].set_ylabel("image", fontsize=8)
    axes[1, 0].set_ylabel("Grad-CAM", fontsize=8)
    fig.suptitle(f"Grad-CAM, {rec['experiment']} seed {rec.get('seed') or 0} ({provenance_label(rec)}); "
                 f"red titles: errors", fontsize=9)
    fig.tight_layout()
    return fig


def show_grad_cam(rec: dict | None, data_root=None):
    """Grad-CAM of a record in a notebook: drawn from the weights where they are, else the
    committed image made where they were (``gradcam_figure_path``), else one line saying why."""
    if rec is None:
        return None
    if trained(rec) and not _weights_here(rec) and gradcam_figure_path(rec).is_file():
        from IPython.display import Image, display

        print(f"Grad-CAM of {rec['experiment']} ({provenance_label(rec)}), rendered on the machine that held the "
              f"trained weights of the run named in the image "
              f"({os.path.relpath(gradcam_figure_path(rec), PROJECT_ROOT)}):")
        display(Image(filename=str(gradcam_figure_path(rec))))
        return None
    return plot_grad_cam(rec, data_root=data_root)


def _weights_here(rec: dict) -> bool:
    from ..runs.routes import final_weights_path

    return final_weights_path(rec).is_file()


def best_trained_record(records: list[dict]) -> dict | None:
    """The most accurate record that trained (ties: the first)."""
    ok = [r for r in records if trained(r)]
    return max(ok, key=lambda r: r["metrics"]["accuracy"]) if ok else None


def plot_misclassified(rec: dict | None, n: int = 12, data_root=None):
    """The record's most confident errors: each cell with its true class, predicted class and
    the probability given to the prediction.  None (with a line) when there is nothing to show."""
    import matplotlib.pyplot as plt

    if rec is None:
        return None
    if rec["dataset"]["id"] == "synthetic":
        print(f"misclassified cells of {rec['experiment']} are not shown: the run used synthetic images.")
        return None
    p = read_predictions(rec)
    prob = p[[c for c in p.columns if c.startswith("p_")]].to_numpy(float)
    p = p.assign(pred=prob.argmax(1), conf=prob.max(1))
    wrong = p[p["pred"] != p["y_true"]].sort_values(["conf", "id"], ascending=[False, True]).head(n)
    if wrong.empty:
        print(f"{rec['experiment']} ({provenance_label(rec)}) misclassified no test image.")
        return None
    try:
        x, t = _record_images(rec, list(wrong["id"]), data_root)
    except (OSError, ValueError) as exc:
        print(f"misclassified cells of {rec['experiment']} are not shown: {exc}")
        return None
    if not len(x):
        print(f"misclassified cells of {rec['experiment']} are not shown: its test images are not on this machine.")
        return None
    names = list(rec["class_names"])
    by_id = wrong.set_index("id")
    cols = min(6, len(x))
    rows = int(math.ceil(len(x) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.5 * rows), squeeze=False)
    for ax, j in zip(axes.flat, range(len(x))):
        row = by_id.loc[t["id"].iloc[j]]
        ax.imshow(x[j])
        ax.set_title(f"true {names[int(row['y_true'])]}\npred {names[int(row['pred'])]} ({row['conf']:.2f})",
                     fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[len(x):]:
        ax.axis("off")
    n_wrong = int((p["pred"] != p["y_true"]).sum())
    fig.suptitle(f"most confident errors of {rec['experiment']}: {len(x)} of {n_wrong} "
                 f"({provenance_label(rec)})", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Command line: leukcore figures gradcam --record PATH --out PNG
# --------------------------------------------------------------------------------------------


def gradcam_png(record: str | os.PathLike, out: str | os.PathLike | None = None, *, data_root=None,
                n: int = 6, dpi: int = 72, weights=None) -> Path | None:
    """Render a record's Grad-CAM to a PNG (default: :func:`gradcam_figure_path`, where the paper page
    reads it); None when skipped. The one Grad-CAM writer (the GPU lease calls it too)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..runs.records import read_record

    rec = read_record(record)
    fig = plot_grad_cam(rec, n=n, data_root=data_root, weights=weights)
    if fig is None:
        return None
    out = Path(out) if out else gradcam_figure_path(rec)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_small_png(fig, out, dpi=dpi)
    plt.close(fig)
    return out


def save_small_png(fig, path: Path, dpi: int = 72, colors: int = 128) -> None:
    """A figure as a palette PNG (``colors`` colours, optimised): photographs of cells with a
    heat map stay legible at a few tens of KB, small enough to commit."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format="png")
    buf.seek(0)
    img = Image.open(buf).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
    img.save(path, format="PNG", optimize=True)


def _cmd_gradcam(args) -> int:
    out = gradcam_png(args.record, args.out, data_root=args.data_root, n=args.n)
    if out is None:
        return 1
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")
    return 0


def register_cli(sub) -> None:
    """``leukcore figures gradcam``: add the subcommand to the ``leukcore`` parser."""
    f = sub.add_parser("figures", help="render figures that need a run's weights")
    fsub = f.add_subparsers(dest="figures_command", required=True)
    g = fsub.add_parser("gradcam", help="Grad-CAM of a record's trained model to a PNG (needs its weights)")
    g.add_argument("--record", required=True, help="run record (results/<paper>/<profile>/<run>.json)")
    g.add_argument("--out", default=None,
                   help="PNG to write (default book/figures/<paper>/<experiment>_<profile>_gradcam.png)")
    g.add_argument("--data-root", default=None)
    g.add_argument("--n", type=int, default=6, help="number of test images")
    g.set_defaults(func=_cmd_gradcam)
