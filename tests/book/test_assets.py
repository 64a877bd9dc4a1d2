"""leukcore.book.assets: DataTables comes from the installed itables, pinned, written into the build."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from leukcore.book import assets

ROOT = Path(__file__).resolve().parents[2]


def test_itables_is_pinned_to_the_installed_version():
    itables = pytest.importorskip("itables")
    pins = re.findall(r'"itables==([^"]+)"', (ROOT / "pyproject.toml").read_text())
    assert pins == [itables.__version__], f"pyproject.toml pins itables {pins}; installed {itables.__version__}"


def test_the_bundle_is_written_as_a_classic_script_around_itables_module(tmp_path):
    pytest.importorskip("itables")
    css, js = assets.write_datatables(tmp_path / "_static")
    src, version = assets.itables_bundle()
    assert css == tmp_path / "_static" / "datatables" / "dt_bundle.css"
    assert css.read_bytes() == (src / "dt_bundle.css").read_bytes()
    text = js.read_text()
    assert "export{" not in text.split('"', 1)[0] and f"itables {version}" in text  # no module syntax outside the string
    module = json.loads(re.search(r"new Blob\(\[(\".*\")\],", text, re.S).group(1))
    assert module == (src / "dt_bundle.js").read_text(encoding="utf-8")  # the module, unchanged
    assert f"window.{assets.DATATABLES_GLOBAL} = import(URL.createObjectURL(" in text


def test_nothing_minified_is_committed_under_book_static():
    files = subprocess.run(["git", "ls-files", "book/_static"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert files, "no book/_static files tracked"
    big = [f for f in files if (ROOT / f).stat().st_size > 50_000 or "bundle" in f or f.endswith(".min.js")]
    assert not big, f"a vendored bundle is committed: {big}"
