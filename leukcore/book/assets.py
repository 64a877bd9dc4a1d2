"""The book's assets taken from installed packages when the book is built, never committed.

DataTables (the claims tables' sorting, search and filters) comes from the installed itables
(pinned in ``pyproject.toml``), whose offline bundle ``dt_bundle.js`` is an ES module. Browsers
refuse module scripts and ``import()`` of files from a book opened from disk (``file://``), so the
bundle is written as a classic script that imports the module's text from a ``blob:`` URL (what
itables itself does offline) and publishes the promise of the module as
``window.leukcoreDataTables``; ``book/_static/leukcore-tables.js`` loads it on the pages that
have a claims table. The Sphinx extension ``book/_ext/leukcore_assets.py`` calls
:func:`write_datatables` into the built book's ``_static/`` at the end of every build.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..files import atomic_write_text

#: The folder under the built book's ``_static/`` (``leukcore-tables.js`` loads from there).
DATATABLES_DIR = "datatables"
#: The global the classic script sets: a promise of the DataTables module.
DATATABLES_GLOBAL = "leukcoreDataTables"


def itables_bundle() -> tuple[Path, str]:
    """The installed itables' offline bundle folder (``itables/html``) and itables' version."""
    import itables

    return Path(itables.__file__).parent / "html", str(itables.__version__)


def datatables_script(module_js: str, version: str) -> str:
    """A classic script that imports the ES module ``module_js`` from a ``blob:`` URL and sets
    ``window.leukcoreDataTables`` to the promise of it (the module text embedded as a JSON string)."""
    return (f"/* DataTables from itables {version} (itables/html/dt_bundle.js, MIT; DataTables, jQuery and their\n"
            f" * extensions, MIT), written by leukcore.book.assets when the book is built. */\n"
            f"window.{DATATABLES_GLOBAL} = import(URL.createObjectURL(new Blob([{json.dumps(module_js)}],\n"
            f"  {{type: \"text/javascript\"}})));\n")


def write_datatables(static_dir: str | Path) -> list[Path]:
    """``<static_dir>/datatables/dt_bundle.css`` (itables' stylesheet, copied) and ``dt_bundle.js``
    (:func:`datatables_script` of itables' module); returns their paths."""
    src, version = itables_bundle()
    out = Path(static_dir) / DATATABLES_DIR
    out.mkdir(parents=True, exist_ok=True)
    css = out / "dt_bundle.css"
    shutil.copyfile(src / "dt_bundle.css", css)
    js = out / "dt_bundle.js"
    atomic_write_text(js, datatables_script((src / "dt_bundle.js").read_text(encoding="utf-8"), version))
    return [css, js]
