"""The built book answers its question: the landing page's five cards and findings, the
reproducibility report, each paper's "What we found" (static HTML checks, no browser needed)."""
from __future__ import annotations

import html
import re

import pytest

from .conftest import BOOK_HTML, BUILD_FIRST

pytestmark = pytest.mark.book
PAPERS = ("dscnet_kaur2023", "dscnet_vijayalakshmi", "logmh_haque2024", "alnet_jawahar2022", "xincept_khan2024")


def _text(page: str) -> str:
    path = BOOK_HTML / page
    if not (BOOK_HTML / "index.html").is_file():
        pytest.skip(BUILD_FIRST)
    assert path.is_file(), f"{page} was not built"
    raw = path.read_text(encoding="utf-8")
    # comments first: the theme's head holds a comment that mentions <script>, which would
    # otherwise open a "script" running to the next real </script> and swallow the body
    body = re.sub(r"<!--.*?-->", " ", raw, flags=re.S)
    body = re.sub(r"<script\b.*?</script>|<style\b.*?</style>", " ", body, flags=re.S)
    # ASCII whitespace only: the numbers' no-break spaces (``97.6\u00a0%``) are part of the text
    return html.unescape(re.sub(r"[ \t\n\r\f\v]+", " ", re.sub(r"<[^>]+>", " ", body)))


def _squash(s: str) -> str:
    """Whitespace removed: tags between inline elements leave spaces the source did not have."""
    return re.sub(r"\s+", "", s)


def _landing() -> str:
    idx = (BOOK_HTML / "index.html")
    if not idx.is_file():
        pytest.skip(BUILD_FIRST)
    m = re.search(r'url=([^"]+)"', idx.read_text())  # Jupyter Book's index redirects to the root page
    return m.group(1) if m else "index.html"


def test_landing_page_has_a_card_per_paper_with_the_claims_table_numbers():
    from leukcore.book import findings as F

    page = _landing()
    raw = (BOOK_HTML / page).read_text(encoding="utf-8")
    assert raw.count("sd-card ") >= len(PAPERS) or raw.count("sd-card\"") >= len(PAPERS)
    text = _text(page)
    for p in PAPERS:
        row = F.claim_row(p, F.headline_claim(p))
        assert F.paper_name(p) in text
        assert F._printed(row["printed"], row["unit"]) in text
        if row["measured"] is not None and row["measured"] == row["measured"]:
            assert _squash(F.measurement_text(row).replace("`", "")) in _squash(text)


def test_landing_page_lists_five_findings_with_links():
    from leukcore.book import findings as F

    text = _text(_landing())
    assert "Five things this study found" in text
    assert F.pct(F.audit("shortcut_colour", "hist.accuracy.point")) in text
    assert f"find {F.consistency(kind='impossible')} places" in text
    benign = F.audit("external_pbc", "models.original.benign_fraction.mean")
    assert f"{F.pct(benign)} on average" in text  # finding 3, a declared test over the external_pbc seeds
    for status in ("supported", "inconclusive"):  # every finding shows the status its records give it
        assert status in text


def test_reproducibility_report_is_built_with_its_compute_budget():
    from leukcore.book import findings as F

    text = _text("book/report.html")
    for section in ("Scope of reproducibility", "Methodology", "Compute budget", "Limitations", "Conclusion",
                    "Communication with the original authors"):
        assert section in text
    assert f"{F.compute()['cpu_hours']:,.1f} CPU hours" in text


@pytest.mark.parametrize("paper", PAPERS)
def test_paper_page_opens_with_what_we_found(paper):
    text = _text(f"book/runs/{paper}.html")
    if "What we found" not in text:
        pytest.skip(f"book/runs/{paper}.ipynb predates the 'What we found' cell (re-execute the notebook)")
    found = text.index("What we found")
    assert found < text.index("Protocol and our deviations")
    assert "import " not in text[:found]
