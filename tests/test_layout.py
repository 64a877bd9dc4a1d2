"""The package's layout keeps its promises: the front of the pipeline (files, data, transforms,
models, engine) imports no private name across modules, has no import cycle and never reaches
into the layers after it; ``import leukcore`` stays cheap; committed records keep their keys."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "leukcore"
#: the front of the pipeline, in the order data flows; a layer imports only from itself and earlier ones
FRONT = ["files", "data", "transforms", "filters", "models", "engine", "losses"]
LAYER = {"files": 0, "data": 1, "transforms": 2, "filters": 2, "models": 3, "engine": 4, "losses": 4}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _front_modules() -> dict[str, Path]:
    out = {}
    for top in FRONT:
        p = PKG / top
        files = sorted(p.rglob("*.py")) if p.is_dir() else [PKG / f"{top}.py"]
        for f in files:
            out[_module_name(f)] = f
    return out


def _imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, imported names) of every ``from ... import`` in the file (any depth)."""
    is_pkg = path.name == "__init__.py"
    pkg = name.split(".") if is_pkg else name.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "leukcore" or mod.startswith("leukcore."):
                out.append((mod, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith("leukcore")]
    return out


def _resolve(mod: str, name: str, modules: dict[str, Path]) -> str:
    """The module an imported name refers to when it is itself a submodule, else ``mod``."""
    return f"{mod}.{name}" if f"{mod}.{name}" in modules else mod


def test_no_private_names_across_modules():
    modules = _front_modules()
    bad = [f"{name} imports {n} from {mod}" for name, path in modules.items() for mod, names in _imports(name, path)
           for n in names if n.startswith("_") and _resolve(mod, n, modules) == mod and mod != name]
    assert not bad, bad


def test_front_layers_import_only_themselves_and_earlier_layers():
    modules = _front_modules()
    bad = []
    for name, path in modules.items():
        own = LAYER[name.split(".")[1]]
        for mod, _ in _imports(name, path):
            parts = mod.split(".")
            if len(parts) < 2:
                continue
            if parts[1] not in LAYER:
                bad.append(f"{name} -> {mod} (a later layer of the package)")
            elif LAYER[parts[1]] > own:
                bad.append(f"{name} -> {mod}")
    assert not bad, bad


def test_no_import_cycle_in_the_front_of_the_pipeline():
    modules = _front_modules()
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for mod, names in _imports(name, path):
            targets = [_resolve(mod, n, modules) for n in names] or [mod]
            for t in targets:
                if t in modules and t != name and not name.startswith(t + "."):  # a package's own modules
                    graph[name].add(t)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_package_import_is_cheap():
    code = "import sys, leukcore, leukcore.data, leukcore.files; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_public_faces_keep_their_names():
    from leukcore import data as D, filters, losses, models

    for n in ("load_dataset", "find_duplicates", "split_fractions", "load_images", "fingerprint", "DataError",
              "BadImageError", "PROJECT_ROOT", "atomic_write_text"):
        assert hasattr(D, n), n
    assert callable(filters.logmh) and callable(losses.make_loss)
    for n in ("create_model", "list_models", "min_input_size", "count_params", "model_info", "param_table",
              "WeightsUnavailableError", "ALNet", "DSCNet", "XIncept"):
        assert hasattr(models, n), n
    assert models.min_input_size("alnet") == models.model_info("alnet")["min_input_size"] == 136


def _committed_records():
    for f in sorted((ROOT / "results").glob("*/*/*.json")):
        try:
            r = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(r, dict) and {"settings_hash", "paper", "experiment", "profile"} <= set(r) \
                and r["paper"] != "audits":  # audit records are keyed by leukcore.audits, not by a protocol
            yield f, r


@pytest.mark.parametrize("path,record", list(_committed_records()), ids=lambda v: getattr(v, "name", ""))
def test_committed_records_keep_their_settings_hash(path, record):
    from leukcore import experiments as X
    from leukcore.profiles import get_profile
    from leukcore.records import settings_hash

    try:
        exp = X.get_experiment(record["paper"], record["experiment"])
    except ValueError:
        pytest.skip("experiment no longer in its protocol")
    if exp.route == "aggregate":
        pytest.skip("aggregates pool other records")
    settings = X._settings(record["paper"], exp, get_profile(record["profile"]))
    assert settings_hash(settings) == record["settings_hash"]
