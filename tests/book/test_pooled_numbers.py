"""Over the built book: a number printed beside "N runs" is the pooled number of those N runs."""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.book


def _text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S | re.I)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).replace("&nbsp;", " ").replace("&amp;", "&")


def test_every_number_beside_n_runs_is_their_pool(book_html):
    from leukcore.book import findings as F

    problems, seen = [], 0
    for page in sorted(book_html.rglob("*.html")):
        if "_static" in page.parts or "_sources" in page.parts:
            continue
        text = _text(page.read_text(encoding="utf-8", errors="replace"))
        seen += len(F.RUNS_CLAIM.findall(text.replace("\u00a0", " ")))
        problems += [f"{page.relative_to(book_html)}: {p}" for p in F.pooled_runs_problems(text)]
    assert seen >= 5, "the book prints no measurement beside its run count: the check would pass vacuously"
    assert not problems, "\n".join(problems)
