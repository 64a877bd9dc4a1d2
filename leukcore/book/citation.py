"""The citation page's generated parts: the book's version and commit, its BibTeX entry (from
``CITATION.cff``), and the source and licence of every dataset the study uses.

The version comes from ``pyproject.toml`` and the commit from git when the book is built, so
the page names exactly what a reader is looking at.
"""
from __future__ import annotations

import datetime as _dt
import re
import subprocess
from pathlib import Path

import yaml

from ..data import DATASETS
from ..files import PROJECT_ROOT, atomic_write_text

# Where each dataset comes from and under which terms (the study never redistributes images).
DATASET_TERMS = {
    "taleqani-all": ("https://www.kaggle.com/datasets/mehradaria/leukemia",
                     "the licence stated on its Kaggle page; download it there under those terms"),
    "cnmc-2019": ("https://doi.org/10.7937/tcia.2019.dc64i46r",
                  "The Cancer Imaging Archive's data usage policy and the licence on its TCIA page"),
    "leukemia-0.2": ("https://www.kaggle.com/datasets/priyaadharshinivs062/leukemia-dataset-02",
                     "the licence stated on its Kaggle page"),
    "multicancer-all": ("https://www.kaggle.com/datasets/obulisainaren/multi-cancer",
                        "the licence stated on its Kaggle page (an augmented derivative of taleqani-all)"),
    "pbc-lymphocytes": ("https://doi.org/10.17632/snkd93bnjr.1",
                        "CC BY 4.0 (Acevedo et al., Data in Brief 30 (2020) 105474)"),
}


def version() -> str:
    """The package version of ``pyproject.toml``."""
    text = (PROJECT_ROOT / "pyproject.toml").read_text()
    m = re.search(r'^version\s*=\s*"([^"]+)"', text, flags=re.M)
    return m.group(1) if m else "unknown"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def commit() -> dict:
    """The checkout the book is built from: full hash, ``git describe`` and its date (None outside git)."""
    return {"hash": _git("rev-parse", "HEAD"), "describe": _git("describe", "--tags", "--always", "--dirty"),
            "date": _git("log", "-1", "--format=%cs")}


def bibtex(cff_path: Path = PROJECT_ROOT / "CITATION.cff") -> str:
    """A BibTeX ``@software`` entry from ``CITATION.cff``, with the version and commit of this build."""
    cff = yaml.safe_load(cff_path.read_text())
    c = commit()
    authors = " and ".join("{" + a["name"] + "}" if "name" in a else f"{a['family-names']}, {a['given-names']}"
                           for a in cff["authors"])
    year = (c["date"] or _dt.date.today().isoformat())[:4]
    fields = [("title", "{" + cff["title"] + "}"), ("author", authors), ("year", year),
              ("version", cff.get("version", version())), ("url", cff.get("repository-code", "")),
              ("note", f"commit {c['hash']}" if c["hash"] else "")]
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields if v)
    return f"@software{{leukcore_{year},\n{body}\n}}"


def citation_markdown() -> str:
    """Version, commit and BibTeX of this build (the citation page includes it)."""
    c = commit()
    line = f"This book is version **{version()}** of leukcore"
    if c["hash"]:
        line += f", built from commit `{c['hash'][:12]}` (`git describe`: `{c['describe']}`, {c['date']})"
    return line + ".\n\n```bibtex\n" + bibtex() + "\n```\n"


def datasets_markdown() -> str:
    """Every dataset: what it is, where it comes from, its licence or terms."""
    lines = ["| dataset | source | where | licence or terms |", "|---|---|---|---|"]
    for ds_id, (url, terms) in DATASET_TERMS.items():
        info = DATASETS[ds_id]
        lines.append(f"| `{ds_id}` | {info.citation} | <{url}> | {terms} |")
    return "\n".join(lines) + "\n"


def write_citation(out: Path) -> list[Path]:
    """``citation.md`` and ``dataset_licences.md`` into ``out``."""
    written = []
    for name, text in (("citation.md", citation_markdown()), ("dataset_licences.md", datasets_markdown())):
        atomic_write_text(out / name, text)
        written.append(out / name)
    return written
