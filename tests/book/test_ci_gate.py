"""Under CI=true the browser suite fails, with the install command, when Chromium is missing;
elsewhere it skips.  Runs the suite in a subprocess against a stand-in build (no browser needed)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run_suite(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess:
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text("<html><body>stand-in</body></html>")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(LEUKCORE_BOOK_HTML=str(html), LEUKCORE_CHROMIUM=str(tmp_path / "no-such-chromium"),
               LEUKCORE_BOOK_SCREENSHOTS=str(tmp_path / "shots"), PYTHONPATH=str(REPO))
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-m", "book", "-p", "no:cacheprovider", "-q",
                           "tests/book/test_book.py", "-k", "test_page_loads_without_errors"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_missing_chromium_fails_under_ci(tmp_path):
    pytest.importorskip("playwright")
    out = _run_suite(tmp_path, "true")
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert "cannot run under CI=true" in text and "apt-get install -y chromium" in text, text


def test_missing_chromium_skips_outside_ci(tmp_path):
    pytest.importorskip("playwright")
    out = _run_suite(tmp_path, None)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "skipped" in text and "failed" not in text, text
