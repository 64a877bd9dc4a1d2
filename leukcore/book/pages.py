"""Tables, figures and book pages, all computed from protocol files, the claims ledger and run records.

Nothing here holds a number of its own: a claimed value comes from ``leukcore/ledger``, a
measured one from a run record under ``results/``.  ``leukcore book pages``
writes the generated fragments that the book's prose pages include (``book/_generated/``).
"""
from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..files import PROJECT_ROOT, atomic_write_text
from .labels import PAPER_NAMES, verdict_badge
from ..runs.profiles import PROFILES
from ..runs.records import load_records, provenance_label

BOOK_DIR = PROJECT_ROOT / "book"
GENERATED = BOOK_DIR / "_generated"
FRACTION_METRICS = ("accuracy", "sensitivity", "specificity", "precision", "f1", "auc", "train_accuracy",
                    "val_accuracy")

# --------------------------------------------------------------------------------------------
# Badges and small HTML helpers
# --------------------------------------------------------------------------------------------


def df_to_html(df: pd.DataFrame, css_class: str, escape: bool = False) -> str:
    """A table as HTML inside ``<div class=css_class>`` (cells may hold badge HTML)."""
    return f'<div class="{css_class}">\n' + df.to_html(index=False, escape=escape, border=0, na_rep="—") + "\n</div>"


# --------------------------------------------------------------------------------------------
# Protocols
# --------------------------------------------------------------------------------------------


def protocol_table(paper: str) -> pd.DataFrame:
    """The paper's protocol (from its protocol file): ``setting``, ``value`` and ``source``, which
    says whether the paper states the setting (``stated: <where>``) or we chose it (``chosen: <why>``),
    from the protocol's ``sources`` block."""
    from ..runs.protocols import list_experiments, load_protocol, setting_paths, setting_source

    p = load_protocol(paper)
    src = lambda *paths: "; ".join(dict.fromkeys(x for x in (setting_source(paper, q) for q in paths) if x))  # noqa: E731
    rows = []
    if "tasks" in p:
        for name, t in p["tasks"].items():
            rows.append((f"dataset ({name})", f"{t['dataset']['id']} ({t['classes']} classes)", ""))
    else:
        rows.append(("dataset", f"{p['dataset']['id']} ({p['classes']} classes)", ""))
    if p.get("substitute"):
        rows.append(("stand-in here", p["substitute"]["id"], ""))
    s = p["split"]
    rows.append(("split", ", ".join(f"{k}: {v}" for k, v in s.items() if k != "kind") + f" ({s['kind']})",
                 src(*(f"split.{k}" for k in s))))
    rows.append(("image size", f"{p.get('image_size')} px", src("image_size")))
    if p.get("center_crop"):
        rows.append(("centre crop", "yes", src("center_crop")))
    if p.get("preprocess"):
        rows.append(("pre-processing", p["preprocess"], src("preprocess")))
    for k, v in p.get("train", {}).items():
        rows.append((k.replace("_", " "), str(v), src(f"train.{k}")))
    required, allowed = setting_paths(p)
    for k in ("augment", "loss"):
        if k not in p.get("train", {}) and f"train.{k}" in p["sources"]:
            rows.append((k, "none" if k == "augment" else "(per experiment)", src(f"train.{k}")))
    for path in required:
        if path.startswith(("grid.", "models.", "classifiers.", "model_kw.")):
            kind, _, name = path.partition(".")
            label = {"grid": "grid", "models": "model", "classifiers": "classifier", "model_kw": "model option"}[kind]
            rows.append((f"{label} {name}", _grid_value(p, name) if kind == "grid" else
                         (_kw_value(p, name) if kind == "model_kw" else name), src(path)))
    by_source: dict[str, list[str]] = {}  # one row per source: the paper may state one model's weights, not another's
    for m, on in (p.get("pretrained") or {}).items():
        if on:
            by_source.setdefault(src(f"pretrained.{m}"), []).append(m)
    rows += [("ImageNet weights (paper)", ", ".join(ms), s) for s, ms in by_source.items()]
    exps = list_experiments(paper)
    rows.append(("experiments", f"{len(exps)}: " + ", ".join(e.id for e in exps), ""))
    return pd.DataFrame(rows, columns=["setting", "value", "source"])


def _grid_value(p: dict, key: str) -> str:
    for g in ("grid", "feature_grid"):
        v = (p.get(g) or {}).get(key)
        if v is not None:
            return ", ".join(f"{k}: {x}" for k, x in v.items()) if isinstance(v, dict) else \
                (", ".join(map(str, v)) if isinstance(v, list) else str(v))
    return ""


def _kw_value(p: dict, name: str) -> str:
    model, _, key = name.partition(".")
    for e in p.get("experiments", []):
        if e.get("model") == model and key in (e.get("model_kw") or {}):
            return str(e["model_kw"][key])
    return ""


def deviations_table(paper: str, profile: str = "paper") -> pd.DataFrame:
    """Our deviations and interpretations at ``profile``, one row each, with the experiments each
    applies to: the protocol's templates filled from each experiment's settings (the lines its
    records carry, less the model's own interpretation lines)."""
    from ..runs.deviations import protocol_deviations

    return protocol_deviations(paper, profile)


# --------------------------------------------------------------------------------------------
# Figures from records
# --------------------------------------------------------------------------------------------


def example_images(table: pd.DataFrame, n_per_class: int = 4, size: int = 96, seed: int = 0):
    """A grid of example images per class."""
    import matplotlib.pyplot as plt

    from ..data import load_images

    rng = np.random.default_rng(seed)
    classes = sorted(table["class_name"].dropna().unique(), key=lambda c: table.loc[table["class_name"] == c, "label"].iloc[0])
    fig, axes = plt.subplots(len(classes), n_per_class, figsize=(1.6 * n_per_class, 1.6 * len(classes)), squeeze=False)
    for row, c in zip(axes, classes):
        g = table[table["class_name"] == c]
        pick = g.iloc[sorted(rng.permutation(len(g))[:n_per_class])]
        imgs, _ = load_images(pick, size)
        for ax, im in zip(row, imgs):
            ax.imshow(im)
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in row[len(imgs):]:
            ax.axis("off")
        row[0].set_ylabel(c, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig


def records_table(records: list[dict]) -> pd.DataFrame:
    """One row per record: experiment, accuracy with interval, macro F1, AUC, wall time, provenance."""
    rows = []
    for r in records:
        ci = r.get("intervals", {}).get("accuracy", {})
        rows.append({"experiment": r["experiment"],
                     "accuracy [95 % CI]": f"{r['metrics']['accuracy']:.3f} [{ci.get('low', float('nan')):.3f}, "
                                           f"{ci.get('high', float('nan')):.3f}]",
                     "F1 macro": round(r["metrics"]["f1"]["macro"], 3),
                     "AUC": None if r["metrics"].get("auc") is None else round(r["metrics"]["auc"], 3),
                     "n test": r["metrics"].get("n"), "params": r.get("params_trainable"),
                     "skipped files": len(r.get("skipped", [])),
                     "wall time (s)": r.get("wall_time_s"), "profile · dataset": provenance_label(r)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Notebook helpers (the notebooks call these; they hold no logic of their own)
# --------------------------------------------------------------------------------------------


def evidence_split(paper: str, records: list[dict]) -> tuple[list[dict], list[dict], str]:
    """``(cited, reduced, profile)``: the runs a paper page shows as its evidence, those it folds below,
    and the profile of the first.

    "What we found" cites each experiment at its best profile on real data, so the evidence is the
    committed real-data records of that profile (every seed), whatever profile the notebook was
    executed at; the runs of lower profiles (among ``records`` and the committed ones) are folded
    below. When nothing real is recorded, ``records`` (the executed run, e.g. a synthetic smoke run)
    is the evidence.
    """
    from ..runs.profiles import PROFILE_RANK
    from ..runs.records import load_records

    real = [r for r in load_records(paper) if r.get("dataset", {}).get("id") != "synthetic"]
    real += [r for r in records if r.get("dataset", {}).get("id") != "synthetic"
             and r.get("_path") not in {x.get("_path") for x in real}]
    if not real:
        return list(records), [], (records[0]["profile"] if records else "")
    best = max(PROFILE_RANK.get(r["profile"], -1) for r in real)
    cited = sorted((r for r in real if PROFILE_RANK.get(r["profile"], -1) == best),
                   key=lambda r: (r["experiment"], r.get("seed") or 0))
    reduced = sorted((r for r in real if PROFILE_RANK.get(r["profile"], -1) < best),
                     key=lambda r: (r["profile"], r["experiment"], r.get("seed") or 0))
    return cited, reduced, cited[0]["profile"]


def notebook_setup() -> None:
    """Quiet, reproducible notebook output: inline figures at a fixed size, no progress bars in logs."""
    import warnings

    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": 90, "savefig.dpi": 90, "figure.max_open_warning": 0})
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto in a kernel without widgets
    os.environ.setdefault("TQDM_DISABLE", "1")


def paper_intro(paper: str) -> str:
    """The paper in two sentences and its citation (from the protocol file)."""
    from ..runs.protocols import load_protocol

    p = load_protocol(paper)
    return f"**{p['title']}**  \n{p['citation']}\n\n{' '.join(p['summary'].split())}\n"


def experiment_datasets(paper: str, profile: str, *, data_root=None, seed: int = 0) -> list:
    """The dataset(s) the paper's experiments use at this profile (one per task), as ExperimentData."""
    from ..runs.inputs import experiment_data
    from ..runs.protocols import list_experiments
    from ..runs.routes import get_route
    from ..runs.profiles import get_profile

    seen, out = set(), []
    for e in list_experiments(paper, profile):
        if not get_route(e.route).trains or e.task in seen:
            continue
        seen.add(e.task)
        out.append(experiment_data(paper, e, get_profile(profile), data_root, seed=seed))
    return out


def data_banner(data, profile: str) -> str:
    """A loud banner when the data are synthetic or a substitute; a plain line otherwise."""
    if data.dataset_id == "synthetic":
        return (f"```{{warning}}\nSYNTHETIC DATA: {data.note}. No number on this page is a reproduction; "
                f"rerun with the real data (`--data-root DIR`).\n```\n")
    if not data.is_papers:
        return (f"```{{note}}\nSubstitute data: {data.note}. Numbers here are indicative, not a "
                f"reproduction.\n```\n")
    return f"The paper's own dataset, `{data.dataset_id}` (profile `{profile}`).\n"


def data_summary_text(data) -> str:
    """Counts per class, duplicate groups and the fingerprint of the images used (deterministic text)."""
    from ..data import find_duplicates, fingerprint

    t = data.table
    counts = t["class_name"].value_counts().sort_index()
    lines = [f"dataset: {data.dataset_id}" + (f" (stands in for {data.stands_in_for})" if data.stands_in_for else ""),
             f"images: {len(t)}; " + ", ".join(f"{k} {v}" for k, v in counts.items()),
             f"byte-identical duplicate groups: {len(find_duplicates(t))}",
             f"fingerprint: {fingerprint(t)}"]
    return "\n".join(lines)


def plot_logmh_examples(table: pd.DataFrame, n: int = 4, size: int = 227, **kw):
    """Original vs LoGMH-filtered images (``kw``: sigma, alpha, beta)."""
    import matplotlib.pyplot as plt

    from ..data import load_images
    from ..filters import logmh

    pick = table.groupby("label", sort=True).head(1).head(n).reset_index(drop=True)
    x, _ = load_images(pick, size)
    fig, axes = plt.subplots(2, len(x), figsize=(2.0 * len(x), 4.2), squeeze=False)
    for j, im in enumerate(x):
        axes[0, j].imshow(im)
        axes[0, j].set_title(pick["class_name"][j], fontsize=8)
        axes[1, j].imshow(logmh(im, **kw))
        for a in axes[:, j]:
            a.set_xticks([])
            a.set_yticks([])
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("LoGMH")
    fig.tight_layout()
    return fig


def model_param_line(name: str, num_classes: int, input_size: int | None = None) -> str:
    """``name: N trainable parameters at SxS`` (deterministic; compared by nbval)."""
    from ..models import model_summary

    s = model_summary(name, num_classes, input_size=input_size)
    return f"{name}: {s['params_trainable']:,} trainable parameters at {s['input_size']}x{s['input_size']}"


#: the columns of a consistency finding the book shows, in this order (``label`` restates the
#: implication in a few words and is left out)
FINDING_SHOWN = ("kind", "severity", "rule", "claim_ids", "printed", "implication")


def findings_shown(findings: pd.DataFrame) -> pd.DataFrame:
    """Consistency findings as the book shows them: :data:`FINDING_SHOWN`, claim ids joined by commas."""
    f = findings.copy()
    f["claim_ids"] = f["claim_ids"].map(lambda ids: ", ".join(ids) if isinstance(ids, (list, tuple)) else str(ids))
    return f[list(FINDING_SHOWN)]


def kinds_markdown() -> str:
    """The kinds of consistency finding (``leukcore.evaluation.consistency.KINDS``) as a list, each
    with its severity, its meaning and how many findings of the ledger have it."""
    from ..evaluation.consistency import KINDS, consistency_counts

    return "\n".join(f"- **{kind}** ({severity}, {consistency_counts(kind)} findings): {meaning}."
                     for kind, (severity, meaning) in KINDS.items()) + "\n"


def consistency_html(paper: str) -> str:
    """This paper's consistency findings as an HTML table."""
    from ..evaluation.consistency import check_claims

    f = check_claims()
    f = f[f["paper"] == paper]
    if f.empty:
        return "<p>The consistency checks found no inconsistency in this paper's claims.</p>"
    return df_to_html(findings_shown(f), "consistency-table", escape=True)


# --------------------------------------------------------------------------------------------
# Generated book fragments
# --------------------------------------------------------------------------------------------


def _md_table(df: pd.DataFrame) -> str:
    """A markdown table (pandas / tabulate); a cell's pipes are escaped, its newlines flattened."""
    cells = df.astype(str).apply(lambda c: c.str.replace("|", "\\|", regex=False).str.replace("\n", " ", regex=False))
    return cells.to_markdown(index=False, tablefmt="pipe", disable_numparse=True) + "\n"


def rerun_box(paper: str) -> str:
    """The "Rerun this" admonition of a paper chapter: exact commands for each profile."""
    lines = ["```{admonition} Rerun this", ":class: tip", ""]
    for prof in PROFILES:
        lines.append(f"**{prof}**: `leukcore reproduce --paper {paper} --profile {prof}`"
                     + (" (add `--data-root DIR` for downloaded data, `--device cuda` on a GPU)" if prof != "smoke" else ""))
        lines.append("")
    lines.append(f"or with papermill: `papermill notebooks/{paper}.ipynb out.ipynb -p profile cpu -p data_root DIR`")
    lines.append("")
    lines.append(f"Notebook: {{download}}`{paper}.ipynb <../../notebooks/{paper}.ipynb>` · "
                 f"{{download}}`{paper}.py <../../notebooks/{paper}.py>`")
    lines.append("```")
    return "\n".join(lines) + "\n"


def build_pages(out: Path = GENERATED) -> list[Path]:
    """Write every generated fragment the book includes; return their paths."""
    import matplotlib

    matplotlib.use("Agg")

    from ..evaluation.claims import load_claims
    from ..data import DATASETS
    from ..runs.protocols import list_experiments, list_papers
    from ..evaluation.verdicts import VERDICTS, claims_table, columns_markdown, vocabulary_markdown
    from .findings import conclusions_markdown, references_markdown

    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, text: str) -> None:
        p = out / name
        atomic_write_text(p, text)
        written.append(p)

    put("verdict_legend.md", "\n".join(f"- {verdict_badge(k)} {html.escape(v)}" for k, v in VERDICTS.items()) + "\n")
    put("verdict_rule.md", vocabulary_markdown())  # the methods page states the vocabulary from the code
    put("claims_columns.md", columns_markdown())  # the summary page's column dictionary, from the code
    put("conclusion_rule.md", conclusions_markdown())
    put("references.md", references_markdown())
    prof = pd.DataFrame([{k: ("paper's" if v is None else v) for k, v in p.settings().items()} for p in PROFILES.values()])
    put("profiles.md", _md_table(prof))
    ds = pd.DataFrame([{"id": d.id, "classes": ", ".join(d.classes), "published layout": d.layout.replace("*", "\\*"),
                        "source": d.citation} for d in DATASETS.values()])
    put("datasets.md", _md_table(ds))

    records = load_records()
    df = claims_table("all", records=records)
    n_claims = len(load_claims())
    counts = df["verdict"].value_counts().to_dict()
    put("summary_counts.md", f"The ledger holds **{n_claims} claims** from {df['paper'].nunique()} papers. Verdicts: "
        + ", ".join(f"{verdict_badge(k)} {counts.get(k, 0)}" for k in VERDICTS) + ".\n")
    put("claims.csv", df.to_csv(index=False))  # the table `leukcore claims --format csv` prints, to download
    # the interactive claims table and the summary / forest figures (leukcore.book.tables, .figures)
    from .figures import claims_frame, write_summary_figures
    from .tables import write_claims_table

    table = claims_frame("all")
    written += write_claims_table(out, table)
    written += write_summary_figures(out, table)
    from .citation import write_citation

    written += write_citation(out)  # version, commit and BibTeX of this build; dataset licences

    for paper in list_papers():
        put(f"rerun_{paper}.md", rerun_box(paper))
        exps = list_experiments(paper)
        put(f"experiments_{paper}.md", f"{len(exps)} experiments: " + ", ".join(f"`{e.id}`" for e in exps) + "\n")

    from ..evaluation.consistency import KINDS, check_claims

    findings = check_claims()
    if len(findings):
        parts = []
        for paper, g in findings.groupby("paper", sort=True):
            per_kind = g["kind"].value_counts()
            counts = ", ".join(f"{per_kind[k]} {k}" for k in KINDS if k in per_kind)
            parts.append(f"### {PAPER_NAMES.get(paper, paper)}\n\n{len(g)} findings: {counts}.\n\n"
                         + _md_table(findings_shown(g)))
        put("consistency.md", "\n".join(parts))
    else:
        put("consistency.md", "The consistency checks found no inconsistency.\n")
    put("consistency_kinds.md", kinds_markdown())
    put("evidence.md", evidence_markdown(df))
    put("environment.md", environment_markdown(records))
    from .performance import performance_markdown

    put("performance.md", performance_markdown())  # rendered from the benchmark records, never typed in
    from .findings import build as build_findings

    written += build_findings(out)  # landing page, reproducibility report, each paper's "What we found"
    from .manifest import write_manifest

    written += write_manifest(out)  # last: the commit and every record and predictions file read above
    return written


def environment_markdown(records: list[dict]) -> str:
    """The environments the recorded runs used: library versions, device and commit, per profile."""
    if not records:
        return "No run has been recorded yet.\n"
    rows = {}
    for r in records:
        v = r.get("versions", {})
        key = (r["profile"], r.get("device"), v.get("torch"), v.get("timm"), v.get("scikit-learn"), v.get("python"))
        row = rows.setdefault(key, {"profile": r["profile"], "device": r.get("device"), "python": v.get("python"),
                                    "torch": v.get("torch"), "torchvision": v.get("torchvision"),
                                    "timm": v.get("timm"), "scikit-learn": v.get("scikit-learn"), "runs": 0,
                                    "commits": set()})
        row["runs"] += 1
        row["commits"].add((r.get("commit") or "?")[:12])
    df = pd.DataFrame([{**r, "commits": ", ".join(sorted(r["commits"]))} for r in rows.values()])
    return ("Read from the run records (`versions`, `device`, `commit` fields):\n\n" + _md_table(df))


def evidence_markdown(df: pd.DataFrame) -> str:
    """Per paper: how many claims got each verdict, and the reasons of those that are not firm
    (read from the claims table, so a reason never says a dataset that is here is absent)."""
    from ..evaluation.verdicts import FIRM, VERDICTS

    lines = []
    for paper, g in df.groupby("paper", sort=True):
        c = g["verdict"].value_counts().to_dict()
        lines.append(f"## {PAPER_NAMES.get(paper, paper)}\n")
        lines.append(f"- claims: {len(g)}; " + ", ".join(f"{k} {c.get(k, 0)}" for k in VERDICTS) + ".")
        measured = g[g["measured"].notna()]
        if len(measured):
            exact = measured["metric"].isin(["params", "count"])
            runs = measured[~exact]
            parts = []
            if len(runs):
                profs = sorted(set(runs["profile"].dropna()))
                parts.append(f"{len(runs)} from runs at the " + ", ".join(f"`{p}`" for p in profs) + " profile")
            if exact.any():
                parts.append(f"{int(exact.sum())} exact counts from the model registry or the dataset on disk")
            lines.append(f"- what we measured: {len(measured)} claims have a measurement: " + "; ".join(parts) + ".")
        rest = g[~g["verdict"].isin(FIRM)].fillna({"reasons": ""})
        for (v, reasons), h in rest.groupby(["verdict", "reasons"], sort=True):
            lines.append(f"- {v}: {len(h)} claims, because: {reasons or 'see the table'}.")
        if rest["reasons"].str.startswith("dataset not available here").any():
            lines.append(f"- command once the data are downloaded: "
                         f"`leukcore reproduce --paper {paper} --profile paper --data-root DIR`.")
        lines.append("")
    return "\n".join(lines)
