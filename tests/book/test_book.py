"""The book as a reader meets it: every page of the built book checked in headless Chromium.

Run: ``make book`` then ``.venv/bin/python -m pytest -m book tests/book -q``
(``LEUKCORE_BOOK_HTML=/path/to/_build/html`` checks another build).

Each ``check_*`` function turns a :class:`conftest.PageReport` into a list of problems (empty:
fine).  The page tests assert those lists are empty; ``test_checks_catch_a_broken_copy`` runs
the same functions on a copy of the build with one image and one link broken and asserts both
are named.
"""
from __future__ import annotations

import contextlib
import functools
import re
import shutil
import struct
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.book

PAPER_IDS = ["dscnet_kaur2023", "dscnet_vijayalakshmi", "logmh_haque2024",
             "alnet_jawahar2022", "xincept_khan2024"]
# search term -> chapters that must exist before the search is expected to find it
SEARCH_TERMS = {"DSCNet": ["dscnet_kaur2023", "dscnet_vijayalakshmi"],
                "LoGMH": ["logmh_haque2024"]}
TRACEBACK = "Traceback (most recent call last)"
# /root/, /tmp/, /home/ as a filesystem path, not as the tail of a URL ("https://x.org/home/")
GENERIC_PATHS = re.compile(r"(?<![\w.:/~%-])/(?:root|tmp|home)/[^\s\"'<>)]*")
FILE_URL = re.compile(r"""(?:href|src)\s*=\s*["']file:[^"']*""", re.IGNORECASE)
BROKEN_IMG = "leukcore-missing-figure.png"
BROKEN_LINK = "leukcore-missing-page.html"


# =========================================================================== checks
def check_load(rep) -> list[str]:
    """Console errors (incl. uncaught exceptions) and failed requests while loading the page.

    A failed request is a ``requestfailed`` event or a response with status >= 400 for a
    document, stylesheet, script, image, font, media, fetch or xhr.  Answers >= 400 the server
    gave that the browser does not expose (the favicon) are named too, once a console error
    ("Failed to load resource") points at them.
    """
    p = rep.page
    problems = [f"{p}: could not be opened: {rep.error}"] if rep.error else []
    problems += [f"{p}: console error: {msg}" for msg in rep.console_errors]
    problems += [f"{p}: failed {f['type']} request {f['url']} ({f['reason']})"
                 for f in rep.failed_requests]
    seen = {urlsplit(f["url"]).path for f in rep.failed_requests}
    extra = [e for e in rep.server_errors if e.split(" ", 1)[1].split("?")[0] not in seen]
    if extra and any("Failed to load resource" in m for m in rep.console_errors):
        problems.append(f"{p}: the server answered {', '.join(extra)}")
    return list(dict.fromkeys(problems))  # a resource asked for twice is one problem


class _IdParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if value and (key == "id" or (key == "name" and tag == "a")):
                self.ids.add(value)


@functools.lru_cache(maxsize=512)
def _ids(path: str, mtime: float) -> frozenset[str]:
    parser = _IdParser()
    parser.feed(Path(path).read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.ids)


def element_ids(path: Path) -> frozenset[str]:
    """Every ``id`` (and ``<a name>``) in an HTML file."""
    return _ids(str(path), path.stat().st_mtime)


def check_links(rep, root: Path) -> list[str]:
    """Every link to the book itself resolves to an existing file, and its #anchor to an id.

    Links are taken from the rendered DOM (``a[href]``, resolved by the browser against the
    page); a link is local when it points at the server the page came from (from disk: at a
    ``file:`` URL), and must stay inside the book's root.  A folder means its ``index.html``.
    Anchors are checked in ``.html`` targets against their ``id``s.
    """
    base = urlsplit(rep.url)
    root_path = unquote(urlsplit(rep.base_url).path) if rep.base_url else "/"
    problems, seen = [], set()
    for link in rep.links:
        raw, absolute = (link.get("raw") or "").strip(), link.get("abs") or ""
        if not raw or raw == "#" or raw.lower().startswith(("javascript:", "mailto:", "tel:", "data:")):
            continue
        target = urlsplit(absolute)
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            continue  # external (the suite is offline; external links are not followed)
        key = (target.path, target.fragment)
        if key in seen:
            continue
        seen.add(key)
        path = unquote(target.path)
        if not path.startswith(root_path):
            problems.append(f"{rep.page}: link '{raw}' leaves the book ({path})")
            continue
        rel = path[len(root_path):].lstrip("/")
        file = root / rel
        if rel == "" or rel.endswith("/") or file.is_dir():
            file = file / "index.html"
        if not file.is_file():
            problems.append(f"{rep.page}: broken link '{raw}': {file.relative_to(root).as_posix()} "
                            "does not exist")
            continue
        fragment = unquote(target.fragment)
        if fragment and file.suffix == ".html" and fragment not in element_ids(file):
            problems.append(f"{rep.page}: broken anchor '{raw}': no element with id "
                            f"'{fragment}' in {file.relative_to(root).as_posix()}")
    return problems


def check_images(rep) -> list[str]:
    """Every ``<img>`` loaded (naturalWidth > 0) and, with every ``<figure>``, has a non-zero
    rendered box (theme colour variants, closed ``<details>`` and collapsed cells excepted)."""
    problems = []
    for img in rep.images:
        src = img["src"] or img["current"]
        is_svg = src.split("?")[0].lower().endswith(".svg")
        if img["natural"] <= 0 and not (is_svg and img["w"] > 0 and img["h"] > 0):
            problems.append(f"{rep.page}: image '{src}' did not load (naturalWidth 0)")
        elif not img["exempt"] and (img["w"] <= 0 or img["h"] <= 0):
            problems.append(f"{rep.page}: image '{src}' rendered with size "
                            f"{img['w']:.0f}x{img['h']:.0f}")
    for fig in rep.figures:
        if not fig["exempt"] and (fig["w"] <= 0 or fig["h"] <= 0 or fig["images"] == 0):
            problems.append(f"{rep.page}: figure '{fig['id'] or '(no id)'}' rendered with size "
                            f"{fig['w']:.0f}x{fig['h']:.0f} and {fig['images']} image(s)")
    return problems


def _snippet(text: str, i: int, n: int = 60) -> str:
    return " ".join(text[max(0, i - n): i + n].split())


def check_leaks(rep, forbidden: list[str]) -> list[str]:
    """No traceback, no stderr block, no absolute path of the building machine.

    Text is the page body without scripts and styles (hidden cells included: they ship to the
    reader).  ``forbidden`` paths (the repository, the build's source folder, home) are searched
    in the text and in the raw HTML; ``/root/``, ``/tmp/``, ``/home/`` paths and ``file:`` links
    in the text and attributes.
    """
    p, text, raw = rep.page, rep.text, rep.raw_html
    problems = []
    if (i := text.find(TRACEBACK)) >= 0:
        problems.append(f"{p}: shows a Python traceback: ...{_snippet(text, i)}...")
    problems += [f"{p}: shows a stderr/error output block: {b[:120]!r}" for b in rep.stderr_blocks]
    for path in forbidden:
        for where, hay in (("text", text), ("HTML", raw)):
            if (i := hay.find(path)) >= 0:
                problems.append(f"{p}: absolute path {path} in the page {where}: "
                                f"...{_snippet(hay, i)}...")
                break
    for m in GENERIC_PATHS.finditer(text):
        problems.append(f"{p}: absolute path in the page text: {m.group(0)[:100]}")
        break
    if m := FILE_URL.search(raw):
        problems.append(f"{p}: link to a local file: {m.group(0)[:100]}")
    return problems


def check_page(rep, root: Path, forbidden: list[str]) -> list[str]:
    """All page checks together."""
    return check_load(rep) + check_links(rep, root) + check_images(rep) + check_leaks(rep, forbidden)


def check_claims_table(rep) -> list[str]:
    """A paper chapter shows a claimed-vs-reproduced table (``.claims-table table``) whose
    every body row carries a ``.verdict``."""
    tables = rep.tables.get("claims-table", [])
    if not tables:
        return [f"{rep.page}: no claimed-vs-reproduced table (a <table> inside .claims-table)"]
    problems = []
    for n, rows in enumerate(tables, 1):
        if not rows:
            problems.append(f"{rep.page}: claims table {n} has no body rows")
        problems += [f"{rep.page}: claims table {n} row '{r['text']}' has no .verdict"
                     for r in rows if not r["verdict"]]
    return problems


def check_has_figure(rep) -> list[str]:
    """At least one image in the article, loaded and with a non-zero rendered box."""
    shown = [i for i in rep.article_images if i["natural"] > 0 and i["w"] > 0 and i["h"] > 0]
    if shown:
        return []
    return [f"{rep.page}: no figure shown ({len(rep.article_images)} <img> in the article, "
            "none loaded with a non-zero size)"]


def check_summary(rep, n_claims: int) -> list[str]:
    """The summary's ``.summary-claims`` table has one body row per claim of the ledger."""
    tables = rep.tables.get("summary-claims", [])
    if not tables:
        return [f"{rep.page}: no claims table (a <table> inside .summary-claims)"]
    rows = sum(len(t) for t in tables)
    if rows != n_claims:
        return [f"{rep.page}: the summary lists {rows} claim rows in {len(tables)} table(s), "
                f"the ledger holds {n_claims} claims"]
    return []


# =========================================================================== helpers
def _assert_none(problems: list[str], log: dict, page: str) -> None:
    if problems:
        log.setdefault(page, []).extend(problems)
    assert not problems, f"{len(problems)} problem(s):\n  " + "\n  ".join(problems)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _chapter(book_html: Path, paper_id: str) -> str:
    page = f"book/runs/{paper_id}.html"
    if not (book_html / page).is_file():
        pytest.skip(f"chapter {page} not built yet (the {paper_id} run page has not landed)")
    return page


# =========================================================================== every page
def test_page_loads_without_errors(walker, page, problem_log):
    """No console error, no failed request (image, script, stylesheet, font...)."""
    _assert_none(check_load(walker.report(page)), problem_log, page)


def test_page_opens_from_disk_without_errors(disk_walker, book_html, page, problem_log):
    """Opened from disk (``file://``, as the README says), no console error, no failed request,
    and every internal link resolves."""
    rep = disk_walker.report(page)
    _assert_none(check_load(rep) + check_links(rep, book_html), problem_log, f"{page} (from disk)")


def test_page_links_resolve(walker, book_html, page, problem_log):
    """Every internal link and #anchor resolves."""
    _assert_none(check_links(walker.report(page), book_html), problem_log, page)


def test_page_images_render(walker, page, problem_log):
    """Every image and figure loaded with a non-zero rendered size."""
    _assert_none(check_images(walker.report(page)), problem_log, page)


def test_page_shows_no_traceback_stderr_or_local_path(walker, page, forbidden_paths, problem_log):
    _assert_none(check_leaks(walker.report(page), forbidden_paths), problem_log, page)


def test_screenshots_of_every_page(walker, book_pages):
    """A full-page screenshot of every page at desktop and phone width under _build/screenshots."""
    missing, wrong = [], []
    for page in book_pages:
        walker.report(page)
        for viewport, size in walker.viewports.items():
            shot = walker.shot_path(page, viewport)
            if not shot.is_file():
                missing.append(shot.name)
            elif (w := _png_size(shot)[0]) < size["width"]:
                # wider is allowed: a page that overflows shows it (listed in the summary)
                wrong.append(f"{shot.name}: {w} px wide, expected {size['width']}")
    assert not missing and not wrong, f"missing: {missing}; wrong width: {wrong}"


# =========================================================================== content
@pytest.mark.parametrize("paper_id", PAPER_IDS)
def test_paper_chapter_shows_claims_and_figures(walker, book_html, paper_id, problem_log):
    """Each paper chapter: claimed-vs-reproduced table with a verdict per row, and a figure."""
    page = _chapter(book_html, paper_id)
    rep = walker.report(page)
    _assert_none(check_claims_table(rep) + check_has_figure(rep), problem_log, page)


def test_summary_lists_every_claim_of_the_ledger(walker, book_html, problem_log):
    page = "book/summary.html"
    if not (book_html / page).is_file():
        pytest.skip(f"{page} not built yet (the summary page has not landed)")
    try:
        from leukcore.evaluation.claims import load_claims
    except ImportError as exc:
        pytest.skip(f"leukcore.evaluation.claims is not importable yet: {exc}")
    try:
        n_claims = len(load_claims())
    except Exception as exc:  # the ledger itself is broken or incomplete: a failure, not a skip
        pytest.fail(f"could not count the ledger's claims: {type(exc).__name__}: {exc}")
    _assert_none(check_summary(walker.report(page), n_claims), problem_log, page)


_SEARCH_DONE_JS = """() => document.querySelector('#search-results li, ul.search li')
    || ((document.querySelector('.search-summary') || {}).textContent || '').trim().length > 0"""


@pytest.mark.parametrize("term", list(SEARCH_TERMS))
def test_offline_search_finds(walker, book_server, book_html, term):
    """The book's own search page (search.html?q=...) lists results for the term."""
    if not (book_html / "search.html").is_file():
        pytest.fail("the build has no search.html")
    chapters = SEARCH_TERMS[term]
    if not any((book_html / f"book/runs/{c}.html").is_file() for c in chapters):
        pytest.skip(f"no chapter for {term} built yet ({', '.join(chapters)})")
    pg = walker.context("desktop").new_page()
    n = {"requests": 0}
    errors: list[str] = []
    pg.on("request", lambda r: n.__setitem__("requests", n["requests"] + 1))
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        pg.goto(f"{book_server.base_url}search.html?q={term}", wait_until="load")
        try:
            pg.wait_for_function(_SEARCH_DONE_JS, timeout=15_000)
        except Exception as exc:
            pytest.fail(f"search.html?q={term} did not finish within 15 s ({type(exc).__name__})"
                        + (f"; page errors: {errors}" if errors else ""))
        results = pg.locator("#search-results li, ul.search li")
        count = results.count()
        summary = pg.locator(".search-summary").all_inner_texts()
    finally:
        pg.close()
        walker.count_requests(n["requests"])
    assert count > 0, (f"search for {term!r} found nothing: {summary}"
                       + (f"; page errors: {errors}" if errors else ""))


# =========================================================================== the suite fails
def _break_page(html: str) -> str:
    """Point the first <img src> of the article at a missing file and the first link to a
    local page at a missing page (inserted when the page has none)."""
    start = html.find("<article")
    start = start if start >= 0 else html.find("<body")
    head, body = html[:start], html[start:]
    open_end = body.find(">") + 1
    img = re.search(r'<img\b[^>]*?\bsrc="([^"]*)"', body)
    if img:
        body = body[:img.start(1)] + BROKEN_IMG + body[img.end(1):]
    else:
        body = body[:open_end] + f'<p><img src="{BROKEN_IMG}" alt="figure"></p>' + body[open_end:]
    link = re.search(r'<a\b[^>]*?\bhref="([^"#:][^":]*?\.html(?:#[^"]*)?)"', body)
    if link:
        body = body[:link.start(1)] + BROKEN_LINK + body[link.end(1):]
    else:
        body = body[:open_end] + f'<p><a href="{BROKEN_LINK}">next</a></p>' + body[open_end:]
    return head + body


def test_checks_catch_a_broken_copy(tmp_path, book_html, book_pages, walk_copy, forbidden_paths):
    """On a scratch copy of the build with one image reference and one link broken in one page,
    the same checks report both, by name."""
    copy = tmp_path / "html"
    shutil.copytree(book_html, copy, ignore=shutil.ignore_patterns(".doctrees", ".buildinfo"))
    pages = [p for p in book_pages
             if "http-equiv" not in (copy / p).read_text(errors="replace")[:2000].lower()]
    assert pages, "the build has no pages"
    with_img = [p for p in pages if "<img" in (copy / p).read_text(errors="replace")]
    page = min(with_img or pages, key=lambda p: (copy / p).stat().st_size)  # quickest to open
    target = copy / page
    target.write_text(_break_page(target.read_text(encoding="utf-8")), encoding="utf-8")

    with walk_copy(copy) as walker:
        rep = walker.report(page)
    problems = check_page(rep, copy, forbidden_paths)
    text = "\n".join(problems)
    print(f"broken copy of {page}: {len(problems)} problem(s) reported:\n{text}")
    assert BROKEN_IMG in text, f"the broken image was not reported; problems:\n{text}"
    assert BROKEN_LINK in text, f"the broken link was not reported; problems:\n{text}"
    # and each by the check meant for it
    assert any(BROKEN_IMG in p for p in check_images(rep)), check_images(rep)
    assert any(BROKEN_LINK in p for p in check_links(rep, copy)), check_links(rep, copy)


# =========================================================================== interactive tables, figures, code
WIDE_VIEWPORTS = {"1400": {"width": 1400, "height": 900}, "1920": {"width": 1920, "height": 1080}}
TABLES_READY = "document.documentElement.getAttribute('data-leukcore-tables')"


class _OfflinePage:
    """A fresh browser context where every request to a host other than the local server is
    aborted and recorded (``outside``): a page that needs the network shows up there."""

    def __init__(self, browser, viewport: dict):
        self.ctx = browser.new_context(viewport=viewport, device_scale_factor=1, service_workers="block")
        self.outside: list[str] = []
        self.errors: list[str] = []
        self.ctx.route("**/*", self._route)
        self.page = self.ctx.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _route(self, route):
        url = route.request.url
        if url.startswith(("data:", "blob:", "file:")) or urlsplit(url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def open(self, url: str) -> None:
        self.page.goto(url, wait_until="load")
        self.page.wait_for_function(f"() => {TABLES_READY}", timeout=20_000)
        state = self.page.evaluate(TABLES_READY)
        assert state == "ready", f"{url}: the DataTables bundle did not load (state {state!r}); {self.errors}"

    def close(self) -> None:
        self.ctx.close()


def _rows(pg, scope: str) -> list[dict]:
    return pg.evaluate("""(scope) => Array.from(document.querySelectorAll(scope + ' tbody tr')).map(r => {
        const cells = Array.from(r.cells).map(c => c.innerText.trim());
        return {cells: cells, verdict: (r.querySelector('.verdict') || {}).textContent || ''}; })""", scope)


def _column(pg, scope: str, name: str) -> int:
    heads = pg.evaluate("(scope) => Array.from(document.querySelectorAll(scope + ' thead th'))"
                        ".map(th => th.innerText.trim())", scope)
    assert name in heads, f"no column {name!r} in {heads}"
    return heads.index(name)


def _wait_sorted(pg, scope: str, col: int, *, descending: bool, timeout_ms: int = 10_000) -> None:
    """Wait until the table's column ``col`` reads sorted (DataTables may redraw after the click
    returns); a table that never sorts fails the assertions that follow."""
    js = """([scope, col, desc]) => { const v = Array.from(document.querySelectorAll(scope + ' tbody tr'))
        .map(r => r.cells[col].innerText.trim().toLowerCase()); if (desc) v.reverse();
        return v.every((x, i) => i === 0 || v[i - 1] <= x); }"""
    with contextlib.suppress(Exception):
        pg.wait_for_function(js, arg=[scope, col, descending], timeout=timeout_ms)


def _is_sorted(values: list[str]) -> bool:
    low = [v.lower() for v in values]
    return all(a <= b for a, b in zip(low, low[1:]))


@pytest.fixture(scope="module")
def book_urls(book_server, book_html) -> dict[str, str]:
    """The built book's root URL both ways a reader opens it: served, and from disk."""
    return {"served": book_server.base_url, "from disk": book_html.resolve().as_uri() + "/"}


@pytest.mark.parametrize("way", ["served", "from disk"])
def test_claims_table_sorts_filters_and_searches_offline(browser, book_urls, book_html, way):
    """The summary's claims table in Chromium with the network cut, served and opened from disk:
    DataTables loads from the book, a header click sorts, the verdict filter and the search box
    narrow the rows, and no request leaves the book."""
    page = "book/summary.html"
    if not (book_html / page).is_file():
        pytest.skip(f"{page} not built")
    from leukcore.evaluation.claims import load_claims

    n_claims = len(load_claims())
    scope = ".summary-claims"
    view = _OfflinePage(browser, WIDE_VIEWPORTS["1400"])
    try:
        view.open(book_urls[way] + page)
        pg = view.page
        rows = _rows(pg, scope)
        assert len(rows) == n_claims and all(r["verdict"] for r in rows)
        assert _column(pg, scope, "verdict") == 0  # the verdict leads every row
        # sort: one click ascending, a second descending
        col = _column(pg, scope, "claim")
        header = pg.locator(f"{scope} thead th").nth(col)
        header.click()
        _wait_sorted(pg, scope, col, descending=False)
        up = [r["cells"][col] for r in _rows(pg, scope)]
        assert _is_sorted(up) and up != [r["cells"][col] for r in rows], "a click on 'claim' did not sort it"
        header.click()
        _wait_sorted(pg, scope, col, descending=True)
        down = [r["cells"][col] for r in _rows(pg, scope)]
        assert _is_sorted(down[::-1]) and down != up
        # filter by verdict
        select = pg.locator(f"select[data-column='verdict']")
        options = [o for o in select.locator("option").all_inner_texts() if o != "all"]
        counts = {v: sum(r["verdict"] == v for r in rows) for v in options}
        pick = min(counts, key=counts.get)
        select.select_option(pick)
        shown = _rows(pg, scope)
        assert len(shown) == counts[pick] and {r["verdict"] for r in shown} == {pick}
        select.select_option("")
        assert len(_rows(pg, scope)) == n_claims
        # search across every column
        term = rows[0]["cells"][col]
        pg.locator(f"{scope} ~ * input[type=search], .dt-search input").first.fill(term)
        found = _rows(pg, scope)
        assert 1 <= len(found) < n_claims and all(term.lower() in " ".join(r["cells"]).lower() for r in found)
        assert not view.errors, view.errors
        assert not view.outside, f"requests left the book: {view.outside}"
    finally:
        view.close()


def _pages_with_claims(book_html: Path) -> list[str]:
    pages = ["book/summary.html"] + [f"book/runs/{p}.html" for p in PAPER_IDS]
    return [p for p in pages if (book_html / p).is_file()]


@pytest.mark.parametrize("way", ["served", "from disk"])
def test_every_claims_table_becomes_interactive(browser, book_urls, book_html, way):
    """On the summary and every paper chapter, served and opened from disk, every claims table is a
    DataTable (the bundle loads as a classic script, which a page from disk may load)."""
    view = _OfflinePage(browser, WIDE_VIEWPORTS["1400"])
    found = {}
    try:
        for page in _pages_with_claims(book_html):
            view.open(book_urls[way] + page)
            found[page] = view.page.evaluate("""() => Array.from(document.querySelectorAll(
                '.summary-claims table, .claims-table table')).map(t => t.classList.contains('dataTable'))""")
        assert not view.errors, view.errors
        assert not view.outside, f"requests left the book: {view.outside}"
    finally:
        view.close()
    assert found and all(v and all(v) for v in found.values()), found


@pytest.mark.parametrize("width", list(WIDE_VIEWPORTS))
def test_verdict_column_is_in_view(browser, book_server, book_html, width):
    """At 1400 and 1920 px the verdict of the first rows lies inside the viewport and is not
    covered, on the summary and on every paper chapter."""
    problems = []
    view = _OfflinePage(browser, WIDE_VIEWPORTS[width])
    try:
        for page in _pages_with_claims(book_html):
            view.open(book_server.base_url + page)
            boxes = view.page.evaluate("""() => Array.from(document.querySelectorAll(
                    '.summary-claims tbody tr, .claims-table tbody tr')).slice(0, 5).map(r => {
                const b = r.querySelector('.verdict'); b.scrollIntoView({block: 'center'});
                const box = b.getBoundingClientRect();
                const hit = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
                return {x: box.x, right: box.right, w: box.width, seen: !!hit && b.contains(hit) || hit === b,
                        text: b.textContent}; })""")
            if not boxes:
                problems.append(f"{page}: no claims rows")
            for b in boxes:
                vw = WIDE_VIEWPORTS[width]["width"]
                if not (b["w"] > 0 and b["x"] >= 0 and b["right"] <= vw and b["seen"]):
                    problems.append(f"{page} at {width} px: verdict {b['text']!r} not in view ({b})")
        assert not view.outside, f"requests left the book: {view.outside}"
    finally:
        view.close()
    assert not problems, "\n".join(problems)


def test_summary_figures_load(walker, book_html):
    """The summary's per-paper figure and its forest plots are loaded images (not broken)."""
    page = "book/summary.html"
    if not (book_html / page).is_file():
        pytest.skip(f"{page} not built")
    rep = walker.report(page)
    srcs = {i["src"].rsplit("/", 1)[-1]: i for i in rep.images}
    want = ["claims_vs_measured.png"] + [f"forest_{p}.png" for p in PAPER_IDS
                                         if (book_html.parent.parent / "book" / "_generated" / f"forest_{p}.png").is_file()]
    missing = [w for w in want if not any(s.startswith(w.rsplit(".", 1)[0]) for s in srcs)]
    broken = [s for s, i in srcs.items() if i["natural"] <= 0]
    assert not missing and not broken, f"missing {missing}; broken {broken}"


@pytest.mark.parametrize("paper_id", PAPER_IDS)
def test_chapter_code_is_hidden_and_figures_load(browser, book_server, book_html, paper_id):
    """A paper chapter opens without code: every hide-input cell's source (the evidence is one call,
    leukcore.book.evidence.show_evidence, with the paper's own sections before it) and the parameters
    cell are folded behind a toggle, no source of a remove-input cell ships, and its figures
    (forest plot, ROC, calibration...) are loaded images."""
    page = _chapter(book_html, paper_id)
    view = _OfflinePage(browser, WIDE_VIEWPORTS["1400"])
    try:
        view.open(book_server.base_url + page)
        pg = view.page
        state = pg.evaluate("""() => {
            const vis = e => !!e && (e.checkVisibility ? e.checkVisibility({visibilityProperty: true})
                                                        : e.getClientRects().length > 0);
            const cells = sel => Array.from(document.querySelectorAll(sel));
            const code = c => c.querySelector('.cell_input pre, .cell_input .highlight, pre');
            return {
              hidden: cells('.cell.tag_hide-input').map(c => ({shown: vis(code(c)),
                        toggle: !!c.querySelector('summary, button.toggle-button, .toggle-button')})),
              params: cells('.cell.tag_hide-cell').map(c => ({shown: vis(code(c)),
                        toggle: !!c.querySelector('summary, button.toggle-button, .toggle-button')})),
              removed: cells('.cell.tag_remove-input').filter(c => c.querySelector('.cell_input')).length,
              visibleCode: cells('.cell').filter(c => vis(code(c))).length,
              images: Array.from(document.querySelectorAll('article img')).map(
                i => ({src: i.getAttribute('src') || '', natural: i.naturalWidth})),
            }; }""")
        # the toggle shows the code: open the first hidden cell
        first = pg.locator(".cell.tag_hide-input").first
        first.locator("summary, .toggle-button").first.click()
        opened = first.evaluate("c => { const e = c.querySelector('.cell_input pre, .cell_input .highlight');"
                                " return !!e && e.checkVisibility({visibilityProperty: true}); }")
    finally:
        view.close()
    assert opened, f"{page}: opening a hidden cell's toggle did not show its code"
    assert len(state["hidden"]) >= 1, f"{page}: no hide-input cell (the evidence is one)"
    assert not any(c["shown"] for c in state["hidden"]), f"{page}: code shown by default"
    assert all(c["toggle"] for c in state["hidden"]), f"{page}: a hidden cell has no toggle"
    # the parameters cell and the cell papermill injects after it
    assert state["params"] and not any(c["shown"] for c in state["params"]), f"{page}: parameters {state['params']}"
    assert state["removed"] == 0, f"{page}: a remove-input cell ships its source"
    assert state["visibleCode"] == 0, f"{page}: {state['visibleCode']} code cells show their source"
    broken = [i["src"][:80] for i in state["images"] if i["natural"] <= 0]
    assert not broken and len(state["images"]) >= 3, f"{page}: images {len(state['images'])}, broken {broken}"


def test_cite_page_names_this_version_and_gives_bibtex(walker, book_html):
    """The citation page carries the version (and commit, in a checkout) it was built from and a
    BibTeX entry, filled in at build time."""
    page = "book/cite.html"
    if not (book_html / page).is_file():
        pytest.skip(f"{page} not built")
    from leukcore.book import citation

    text = " ".join(walker.report(page).text.split())
    assert f"version {citation.version()}" in text and "@software{" in text, text[:400]
    assert "CC BY 4.0" in text and "MIT" in text
