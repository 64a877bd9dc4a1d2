"""tools/rewrite_imports.py: old flat-module imports become the subpackages' paths, once."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("rewrite_imports", ROOT / "tools" / "rewrite_imports.py")
rw = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rw)

OLD = '''from .data import PROJECT_ROOT, DataError, atomic_write_text
from . import train as T


def f(x):
    from .train import TrainConfig, _make_optimizer, _Normalizer
    from .features import extract_features
    from .augment import make_augment, to_float_normalized
    norm = _Normalizer(0, 1)
    opt = _make_optimizer(TrainConfig(), [])
    for s, e in T._batches(10, 4):
        xb = T._take(x, s)
    return to_float_normalized(x, 0, 1), obj._make_optimizer


SCRIPT = """
from leukcore.train import TrainConfig, fit
"""
'''

NEW = '''from .files import PROJECT_ROOT, atomic_write_text
from .data import DataError
from . import engine as T


def f(x):
    from .engine import TrainConfig, make_optimizer, Normalizer
    from .engine import extract_features
    from .transforms import make_augment, uint8_to_normalized
    norm = Normalizer(0, 1)
    opt = make_optimizer(TrainConfig(), [])
    for s, e in T.batch_bounds(10, 4):
        xb = T.take(x, s)
    return uint8_to_normalized(x, 0, 1), obj._make_optimizer


SCRIPT = """
from leukcore.engine import TrainConfig, fit
"""
'''


def test_rewrites_top_level_module_imports_and_is_idempotent():
    path = ROOT / "leukcore" / "example.py"  # never written: only its place in the package matters
    new, changes = rw.rewrite(OLD, path)
    assert new == NEW
    assert any("_Normalizer -> Normalizer" in c for c in changes)
    again, changes2 = rw.rewrite(new, path)
    assert again == new and changes2 == []


def test_relative_imports_from_a_subpackage_keep_their_depth():
    path = ROOT / "leukcore" / "runs" / "example.py"
    new, _ = rw.rewrite("from ..train import fit\nfrom ..data import atomic_write_text\n", path)
    assert new == "from ..engine import fit\nfrom ..files import atomic_write_text\n"


def test_a_moved_module_reads_its_imports_from_where_it_was():
    """report.py became book/pages.py: its relative imports were written from leukcore/, its
    sibling (figures) is now next to it, and a private name it used became public."""
    old = """from .profiles import PROFILES
from .files import atomic_write_text


def g():
    from .figures import _claims
    return _claims()
"""
    new = """from ..runs.profiles import PROFILES
from ..files import atomic_write_text


def g():
    from .figures import claims_frame
    return claims_frame()
"""
    path = ROOT / "leukcore" / "book" / "pages.py"
    got, changes = rw.rewrite(old, path, moved=True)
    assert got == new, got
    assert any("_claims -> claims_frame" in c for c in changes)
    assert rw.rewrite(new, path)[0] == new  # without --moved, the respelled file is left alone
