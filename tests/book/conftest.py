"""Browser suite of the built book: the machinery (server, browser, page walk, screenshots).

The book is opened both ways a reader opens it: served over http from ``_build/html`` (override
with env ``LEUKCORE_BOOK_HTML``), and from disk (``file://``, as the README says: open
``_build/html/index.html``), in Debian's ``chromium`` driven by Playwright for Python (never
``playwright install``: no browser can be downloaded on these machines).  Over http each page is
visited once per viewport (desktop 1280x900, phone 390x844, one browser context each, one browser
for the session); the desktop visit records what a reader's browser met into a
:class:`PageReport` (console errors, failed requests, links, images, figures, text, tables); both
visits write a full-page screenshot to ``_build/screenshots/`` (override with
``LEUKCORE_BOOK_SCREENSHOTS``).  From disk each page is visited once more at the desktop size
(:class:`BookOnDisk`, no screenshots), its console errors and failed requests counted apart.

The checks are plain functions in ``test_book.py`` that turn a report into a list of problems,
so the same functions run on the real build and on a deliberately broken copy.

Requests to any host other than the local server are refused by the browser
(``--host-resolver-rules``): the book must work offline, so a font or script fetched from a CDN
shows up as a failed request wherever the suite runs.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import urljoin

import pytest

REPO = Path(__file__).resolve().parents[2]
BOOK_HTML = Path(os.environ.get("LEUKCORE_BOOK_HTML") or REPO / "_build" / "html").resolve()
SCREENSHOTS = Path(
    os.environ.get("LEUKCORE_BOOK_SCREENSHOTS") or BOOK_HTML.parent / "screenshots"
).resolve()
BUILD_FIRST = f"build the book first: make book (no {BOOK_HTML / 'index.html'})"

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # offline by construction: every host except the local server fails to resolve
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
NAV_TIMEOUT_MS = 30_000

# Summary of the walk, printed at the end of the session and written to SCREENSHOTS/summary.json.
STATS: dict = {"pages": [], "requests": 0, "failed_requests": 0, "console_errors": 0, "screenshots": 0,
               "walk_seconds": 0.0, "page_seconds": {}, "overflow": {}, "problems": {},
               "from_disk": {"pages": [], "requests": 0, "failed_requests": 0, "console_errors": 0,
                             "walk_seconds": 0.0, "page_seconds": {}}}

_REFRESH = re.compile(
    r"""<meta\s+http-equiv=["']refresh["']\s+content=["']\s*\d+\s*;\s*url=([^"'>]+)["']""",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------- discovery
def discover_pages(root: Path) -> list[str]:
    """Every page of a built book: ``*.html`` under ``root`` as posix paths relative to it.

    Leaves out ``search.html`` and ``genindex.html`` (generated, checked on their own) and
    anything under a top-level folder starting with ``_`` (``_static``, ``_sources``,
    ``_images``, ``_downloads``...).
    """
    pages = []
    for path in root.rglob("*.html"):
        rel = path.relative_to(root).as_posix()
        if rel in ("search.html", "genindex.html") or rel.split("/")[0].startswith("_"):
            continue
        pages.append(rel)
    return sorted(pages)


def screenshot_name(page: str, viewport: str) -> str:
    """``book/runs/x.html`` -> ``book__runs__x-desktop.png``."""
    stem = page[: -len(".html")] if page.endswith(".html") else page
    return f"{stem.replace('/', '__')}-{viewport}.png"


def pytest_generate_tests(metafunc):
    """Parametrize ``page`` with every page of the build (one test id per page)."""
    if "page" in metafunc.fixturenames:
        if (BOOK_HTML / "index.html").is_file():
            pages = discover_pages(BOOK_HTML)
            metafunc.parametrize("page", pages, ids=pages)
        elif in_ci():  # the fixtures fail the test, saying why (a CI run never skips the suite)
            metafunc.parametrize("page", ["-"], ids=["no-build"])
        else:
            metafunc.parametrize(
                "page", [pytest.param("-", marks=pytest.mark.skip(reason=BUILD_FIRST))],
                ids=["no-build"])


# --------------------------------------------------------------------------- http server
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, no log noise; counts requests and remembers every answer >= 400."""

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass

    def log_request(self, code="-", size="-"):
        self.server.served += 1
        with contextlib.suppress(TypeError, ValueError):
            if int(code) >= 400:
                self.server.errors.append((int(code), self.path))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a browser closing a connection early is not our problem; errors are counted


class BookServer:
    """Serve a folder on 127.0.0.1 at a free port from a background thread."""

    def __init__(self, root: Path):
        self.root = Path(root)
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.httpd.served = 0
        self.httpd.errors = []
        self.base_url = f"http://127.0.0.1:{self.httpd.server_port}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                       name=f"book-server-{self.httpd.server_port}")
        self.thread.start()

    @property
    def errors(self) -> list[tuple[int, str]]:
        return self.httpd.errors

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class BookOnDisk:
    """The built book opened from disk: what :class:`BookServer` offers a :class:`Walker` (a root,
    the URL pages are opened under, the server's error answers: none, there is no server)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.base_url = self.root.resolve().as_uri() + "/"
        self.errors: list[tuple[int, str]] = []


@contextlib.contextmanager
def serve(root: Path) -> Iterator[BookServer]:
    server = BookServer(root)
    try:
        yield server
    finally:
        server.close()


# --------------------------------------------------------------------------- page walk
@dataclass
class PageReport:
    """What the browser met on one page (desktop viewport)."""

    page: str                    # path relative to the book root, e.g. "book/intro.html"
    url: str
    base_url: str = ""           # the book root's URL (http://127.0.0.1:PORT/ or file:///.../html/)
    final_url: str = ""
    redirect_to: str | None = None   # target of a <meta http-equiv="refresh">
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[dict] = field(default_factory=list)   # type, url, reason
    server_errors: list[str] = field(default_factory=list)      # "404 /favicon.ico"
    requests: int = 0
    links: list[dict] = field(default_factory=list)    # raw (attribute), abs (resolved)
    images: list[dict] = field(default_factory=list)   # src, natural, w, h, exempt
    figures: list[dict] = field(default_factory=list)  # id, w, h, images, exempt
    article_images: list[dict] = field(default_factory=list)
    text: str = ""                                      # body text without scripts/styles
    stderr_blocks: list[str] = field(default_factory=list)
    tables: dict = field(default_factory=dict)          # class -> [table -> [row]]
    raw_html: str = ""
    error: str = ""                                      # navigation failure, if any
    widths: dict = field(default_factory=dict)          # viewport -> document scrollWidth


_SETTLE_JS = """
async () => {
  const imgs = Array.from(document.images);
  for (const i of imgs) if (i.loading === 'lazy') i.loading = 'eager';
  const done = Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {
    i.addEventListener('load', r); i.addEventListener('error', r); })));
  await Promise.race([done, new Promise(r => setTimeout(r, 5000))]);
  if (document.fonts) await Promise.race([document.fonts.ready, new Promise(r => setTimeout(r, 3000))]);
  // MathJax typesets after load: wait for it (when the page has it) before measuring/shooting
  const mj = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
  if (mj) await Promise.race([mj, new Promise(r => setTimeout(r, 5000))]);
}
"""

_COLLECT_JS = """
(tableClasses) => {
  const box = el => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  // images a reader cannot see without acting: the other colour theme's variant, closed
  // <details>, togglebutton-collapsed cells
  const EXEMPT = '.only-dark, .only-light, details:not([open]), .toggle-hidden';
  const imgInfo = i => { const [w, h] = box(i); return {
      src: i.getAttribute('src') || '', current: i.currentSrc || i.src || '',
      natural: i.naturalWidth, w: w, h: h, exempt: !!i.closest(EXEMPT)}; };
  const article = document.querySelector('article.bd-article') || document.querySelector('article')
                  || document.querySelector('main, [role=main]') || document.body;
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('script, style, noscript, template').forEach(e => e.remove());
  const tables = {};
  for (const cls of tableClasses) {
    tables[cls] = Array.from(document.querySelectorAll(`.${cls} table, table.${cls}`)).map(t => {
      const body = t.tBodies.length ? Array.from(t.tBodies).flatMap(b => Array.from(b.rows))
                                    : Array.from(t.rows).slice(1);
      return body.map(r => ({text: r.innerText.replace(/\\s+/g, ' ').trim().slice(0, 120),
                             verdict: !!r.querySelector('.verdict')}));
    });
  }
  return {
    final_url: location.href,
    links: Array.from(document.querySelectorAll('a[href], area[href]')).map(
      a => ({raw: a.getAttribute('href'), abs: a.href})),
    images: Array.from(document.images).map(imgInfo),
    article_images: Array.from(article.querySelectorAll('img')).map(imgInfo),
    figures: Array.from(document.querySelectorAll('figure')).map(f => { const [w, h] = box(f);
      return {id: f.id || '', w: w, h: h, images: f.querySelectorAll('img, svg').length,
              exempt: !!f.closest(EXEMPT)}; }),
    text: clone.textContent,
    stderr: Array.from(document.querySelectorAll(
      'div.output.stderr, .stderr, div.output.traceback')).map(
      e => e.textContent.trim().slice(0, 200)),
    tables: tables,
  };
}
"""

_WIDTH_JS = "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"

TABLE_CLASSES = ["claims-table", "summary-claims"]
CHECKED_TYPES = {"document", "stylesheet", "image", "media", "font", "script", "fetch", "xhr"}


class _Tab:
    """One page (tab) of a context, reused for every visit at that viewport.

    Events are charged to the report of the visit that was current when the request started,
    so a request cut off by the next navigation (``net::ERR_ABORTED``) is not blamed on the
    next page, and is not a problem of the page that finished loading either.
    """

    def __init__(self, context):
        self.page = context.new_page()
        self.rep: PageReport | None = None
        self.requests = 0
        self._owner: dict = {}
        pg = self.page
        pg.on("request", self._on_request)
        pg.on("requestfinished", lambda req: self._owner.pop(req, None))
        pg.on("requestfailed", self._on_failed)
        pg.on("response", self._on_response)
        pg.on("console", self._on_console)
        pg.on("pageerror", lambda exc: self.rep and self.rep.console_errors.append(
            f"uncaught error: {exc}"))

    def _on_request(self, req):
        self.requests += 1
        self._owner[req] = self.rep

    def _on_failed(self, req):
        rep = self._owner.pop(req, None)
        if rep is None or req.resource_type not in CHECKED_TYPES:
            return
        reason = req.failure or "failed"
        if rep is not self.rep and "ERR_ABORTED" in reason:
            return  # cut off by leaving the page after it had loaded
        rep.failed_requests.append({"type": req.resource_type, "url": req.url, "reason": reason})

    def _on_response(self, resp):
        rep = self._owner.get(resp.request)
        if rep is not None and resp.status >= 400 and resp.request.resource_type in CHECKED_TYPES:
            rep.failed_requests.append({"type": resp.request.resource_type, "url": resp.url,
                                        "reason": f"HTTP {resp.status}"})

    def _on_console(self, msg):
        if self.rep is not None and msg.type == "error":
            where = (msg.location or {}).get("url", "")
            self.rep.console_errors.append(msg.text + (f" (at {where})" if where else ""))


class Walker:
    """Visits pages of one served book with one browser; caches a report per page."""

    def __init__(self, browser, server: BookServer | BookOnDisk, screenshots: Path | None = None,
                 viewports: dict | None = None, stats: dict | None = STATS):
        self.browser = browser
        self.server = server
        self.screenshots = screenshots
        self.viewports = viewports or VIEWPORTS
        self.stats = stats  # where the walk's counts go (None: not counted)
        self._contexts: dict = {}
        self._tabs: dict[str, _Tab] = {}
        self._reports: dict[str, PageReport] = {}

    def context(self, viewport: str):
        if viewport not in self._contexts:
            self._contexts[viewport] = self.browser.new_context(
                viewport=self.viewports[viewport], device_scale_factor=1,
                reduced_motion="reduce", service_workers="block")
            self._contexts[viewport].set_default_timeout(NAV_TIMEOUT_MS)
        return self._contexts[viewport]

    def tab(self, viewport: str) -> _Tab:
        tab = self._tabs.get(viewport)
        if tab is None or tab.page.is_closed():
            tab = self._tabs[viewport] = _Tab(self.context(viewport))
        return tab

    def shot_path(self, page: str, viewport: str) -> Path:
        return self.screenshots / screenshot_name(page, viewport)

    def count_requests(self, n: int) -> None:
        """Add requests made outside the page walk (the search test) to the summary."""
        if self.stats is not None:
            self.stats["requests"] += n

    def close(self) -> None:
        for ctx in self._contexts.values():
            with contextlib.suppress(Exception):
                ctx.close()
        self._contexts.clear()
        self._tabs.clear()

    def report(self, page: str) -> PageReport:
        """The report of ``page`` (visited once; screenshots taken on that visit)."""
        if page not in self._reports:
            t0 = time.perf_counter()
            rep = self._visit(page)
            if self.screenshots is not None:
                for viewport in self.viewports:
                    if viewport != "desktop":
                        self._screenshot_visit(page, rep, viewport)
            if self.stats is not None:
                seconds = time.perf_counter() - t0
                self.stats["pages"].append(page)
                self.stats["requests"] += rep.requests
                self.stats["failed_requests"] += len(rep.failed_requests)
                self.stats["console_errors"] += len(rep.console_errors)
                self.stats["walk_seconds"] += seconds
                self.stats["page_seconds"][page] = round(seconds, 2)
                for viewport, width in rep.widths.items():
                    if "overflow" in self.stats and width > self.viewports[viewport]["width"]:
                        self.stats["overflow"][f"{page} ({viewport})"] = width
            self._reports[page] = rep
        return self._reports[page]

    # -- one visit ------------------------------------------------------------------
    def _goto(self, pg, page: str, redirect_to: str | None) -> None:
        url = self.server.base_url + page
        pg.goto(url, wait_until="load", timeout=NAV_TIMEOUT_MS)
        if redirect_to:
            target = re.sub(r"[?#].*$", "", redirect_to).lstrip("./")
            pg.wait_for_url(lambda u: target in u, timeout=NAV_TIMEOUT_MS)
            pg.wait_for_load_state("load")
        pg.evaluate(_SETTLE_JS)

    def _visit(self, page: str) -> PageReport:
        path = self.server.root / page
        raw = path.read_text(encoding="utf-8", errors="replace")
        m = _REFRESH.search(raw)
        rep = PageReport(page=page, url=self.server.base_url + page, base_url=self.server.base_url, raw_html=raw,
                         redirect_to=m.group(1).strip() if m else None)
        mark = len(self.server.errors)
        tab = self.tab("desktop")
        tab.rep, n0 = rep, tab.requests
        try:
            self._goto(tab.page, page, rep.redirect_to)
            data = tab.page.evaluate(_COLLECT_JS, TABLE_CLASSES)
            rep.final_url = data["final_url"]
            rep.links = data["links"]
            if rep.redirect_to:
                rep.links.append({"raw": rep.redirect_to, "abs": _join(rep.url, rep.redirect_to)})
            rep.images = data["images"]
            rep.article_images = data["article_images"]
            rep.figures = data["figures"]
            rep.text = data["text"]
            rep.stderr_blocks = data["stderr"]
            rep.tables = data["tables"]
            rep.widths["desktop"] = tab.page.evaluate(_WIDTH_JS)
            if self.screenshots is not None:
                self._shoot(tab.page, page, "desktop")
        except Exception as exc:  # a page that cannot be opened is a problem, not a crash
            rep.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            with contextlib.suppress(Exception):
                tab.page.close()  # start the next visit from a fresh tab
        finally:
            tab.rep = None
        rep.requests = tab.requests - n0
        rep.server_errors = [f"{code} {p}" for code, p in self.server.errors[mark:]]
        return rep

    def _screenshot_visit(self, page: str, rep: PageReport, viewport: str) -> None:
        tab = self.tab(viewport)
        n0 = tab.requests
        try:
            self._goto(tab.page, page, rep.redirect_to)
            rep.widths[viewport] = tab.page.evaluate(_WIDTH_JS)
            self._shoot(tab.page, page, viewport)
        except Exception as exc:
            rep.error = rep.error or f"{viewport}: {type(exc).__name__}: {exc}".splitlines()[0]
            with contextlib.suppress(Exception):
                tab.page.close()
        rep.requests += tab.requests - n0

    def _shoot(self, pg, page: str, viewport: str) -> None:
        self.screenshots.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(self.shot_path(page, viewport)),
                      full_page=True, animations="disabled")
        if self.stats is not None:
            self.stats["screenshots"] += 1


def _join(base: str, href: str) -> str:
    return urljoin(base, href)


# --------------------------------------------------------------------------- fixtures
def find_chromium() -> str | None:
    """Debian's chromium; env ``LEUKCORE_CHROMIUM`` names the executable to use instead."""
    if os.environ.get("LEUKCORE_CHROMIUM"):
        cands = (os.environ["LEUKCORE_CHROMIUM"],)
    else:
        cands = (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser"))
    for cand in cands:
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    return None


INSTALL_CHROMIUM = ("install it with: apt-get update && apt-get install -y chromium (Debian's package; "
                    "no browser can be downloaded here: never `playwright install`), or set LEUKCORE_CHROMIUM "
                    "to a chromium executable")


def in_ci() -> bool:
    """True under a CI runner (``CI`` set to anything but empty, 0, false, no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _skip(reason: str):
    """Skip the browser suite, except under CI (``CI=true``), where a suite that cannot run fails:
    a skipped browser suite would otherwise pass a CI run silently."""
    if in_ci():
        pytest.fail(f"[book] the browser suite cannot run under CI=true: {reason}", pytrace=False)
    print(f"\n[book] skipping the browser suite: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def book_html() -> Path:
    """The built book (``LEUKCORE_BOOK_HTML`` or ``<repo>/_build/html``); skip if not built."""
    if not (BOOK_HTML / "index.html").is_file():
        _skip(BUILD_FIRST)
    return BOOK_HTML


@pytest.fixture(scope="session")
def browser(book_html):
    """One headless Debian chromium for the session; skip when it or playwright is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _skip(f"playwright for Python is not installed ({exc}); pip install -e '.[test]'")
    exe = find_chromium()
    if exe is None:
        where = os.environ.get("LEUKCORE_CHROMIUM") or "PATH or /usr/bin/chromium"
        _skip(f"Debian's chromium is not installed (looked in {where}); {INSTALL_CHROMIUM}")
    # launch() gives the browser a fresh temporary user data dir (profile), removed on close;
    # Playwright refuses --user-data-dir in args (that is launch_persistent_context's job).
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def book_server(book_html):
    with serve(book_html) as server:
        yield server


@pytest.fixture(scope="session")
def walker(browser, book_server):
    """Page walk of the real build, with screenshots; one report per page, cached."""
    for viewport in VIEWPORTS:  # no stale screenshot of a page that is gone
        for old in SCREENSHOTS.glob(f"*-{viewport}.png"):
            old.unlink()
    w = Walker(browser, book_server, screenshots=SCREENSHOTS)
    yield w
    w.close()


@pytest.fixture(scope="session")
def disk_walker(browser, book_html):
    """Page walk of the real build opened from disk (``file://``), desktop only, no screenshots;
    counted apart in the summary (``from_disk``)."""
    w = Walker(browser, BookOnDisk(book_html), screenshots=None, viewports={"desktop": VIEWPORTS["desktop"]},
               stats=STATS["from_disk"])
    yield w
    w.close()


@pytest.fixture(scope="session")
def walk_copy(browser):
    """``walk_copy(root)``: a context manager serving another built book (e.g. a broken copy)
    and yielding a :class:`Walker` on it (no screenshots, not counted in the summary)."""

    @contextlib.contextmanager
    def _walk(root: Path):
        with serve(root) as server:
            w = Walker(browser, server, screenshots=None, stats=None)
            try:
                yield w
            finally:
                w.close()

    return _walk


@pytest.fixture(scope="session")
def problem_log() -> dict:
    """page -> problems found, gathered into the end-of-session summary."""
    return STATS["problems"]


@pytest.fixture(scope="session")
def book_pages(book_html) -> list[str]:
    return discover_pages(book_html)


@pytest.fixture(scope="session")
def forbidden_paths() -> list[str]:
    """Absolute paths of this machine that must never show in the book: the repository, the
    folder the book was built from, the working directory (the generic ``/root/``, ``/tmp/``,
    ``/home/`` paths are matched by pattern in the checks)."""
    paths = {REPO, Path.cwd(), BOOK_HTML.parent.parent}
    return sorted(str(p) for p in paths if len(p.parts) >= 3)  # "/", "/work" would be noise


def pytest_terminal_summary(terminalreporter):
    if not STATS["pages"]:
        return
    tr = terminalreporter
    tr.section("book: browser walk")
    tr.write_line(f"built book: {BOOK_HTML}")
    tr.write_line(f"pages checked: {len(STATS['pages'])} ({', '.join(STATS['pages'])})")
    tr.write_line(f"requests made by the browser: {STATS['requests']} "
                  f"(failed: {STATS['failed_requests']}), console errors: {STATS['console_errors']}, "
                  f"walk time {STATS['walk_seconds']:.1f} s")
    disk = STATS["from_disk"]
    if disk["pages"]:
        tr.write_line(f"opened from disk (file://): {len(disk['pages'])} pages, {disk['requests']} requests "
                      f"(failed: {disk['failed_requests']}), console errors: {disk['console_errors']}, "
                      f"walk time {disk['walk_seconds']:.1f} s")
    tr.write_line(f"screenshots: {STATS['screenshots']} in {SCREENSHOTS}")
    slow = sorted(STATS["page_seconds"].items(), key=lambda kv: -kv[1])[:3]
    tr.write_line("slowest pages: " + ", ".join(f"{p} {t:.1f} s" for p, t in slow))
    if STATS["overflow"]:  # not a failure: the screenshot shows it; the book's owner decides
        tr.write_line("wider than the viewport (horizontal scrolling): " + ", ".join(
            f"{k} {v} px" for k, v in STATS["overflow"].items()))
    n_problems = sum(len(v) for v in STATS["problems"].values())
    tr.write_line(f"problems found: {n_problems}")
    with contextlib.suppress(OSError):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / "summary.json").write_text(
            json.dumps({"book": str(BOOK_HTML), **STATS}, indent=1, sort_keys=True))
        tr.write_line(f"summary: {SCREENSHOTS / 'summary.json'}")

