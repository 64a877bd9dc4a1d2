"""What the book calls things: each paper's display name (in the book's reading order) and the
verdict badge. One place, so the pages, the figures and the findings never disagree."""
from __future__ import annotations

import html

#: paper id -> the name the book gives it, in the order the book presents the papers
PAPER_NAMES = {"dscnet_kaur2023": "DSCNet (Kaur et al. 2023)",
               "dscnet_vijayalakshmi": "DSCNet in Keras (Vijayalakshmi & Deepa)",
               "logmh_haque2024": "LoGMH (Haque et al. 2024)",
               "alnet_jawahar2022": "ALNet (Jawahar et al. 2022)",
               "xincept_khan2024": "XIncept-ALL (Khan 2024)"}

#: each paper's chapter, relative to the book root (for links)
PAPER_DOCS = {p: f"/book/runs/{p}" for p in PAPER_NAMES}


def paper_name(paper: str) -> str:
    """The book's name for a paper (its id when it has none)."""
    return PAPER_NAMES.get(paper, paper)


def verdict_badge(v: str) -> str:
    """The coloured badge of a verdict (CSS in ``book/_static/leukcore.css``)."""
    return f'<span class="verdict verdict-{v.replace(" ", "-")}">{html.escape(v)}</span>'


def status_badge(status: str) -> str:
    """The badge of a conclusion's status (supported / inconclusive / not supported)."""
    return f'<span class="status status-{status.replace(" ", "-")}">{html.escape(status)}</span>'
