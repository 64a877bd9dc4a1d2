"""The package's layout keeps its promises: no module imports a private name from another, the
whole package has no import cycle (lazy imports inside functions included), each layer imports
only itself and the layers before it (files, data, transforms, models, engine, runs, evaluation,
audits, book, bench, cli); ``import leukcore`` stays cheap; committed records keep their keys."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "leukcore"
#: the package in the order data flows; a layer imports only from itself and earlier ones
#: (filters, losses and metrics are the public faces of transforms, engine and evaluation)
#: (a run ends by computing its metrics, so evaluation.metrics sits below the runs; the GPU lease
#: drives runs and audits; the book renders the benchmark's records)
LAYER = {"files": 0, "data": 1, "transforms": 2, "filters": 2, "models": 3, "engine": 4, "losses": 4,
         "evaluation.metrics": 4, "metrics": 4, "runs": 5, "evaluation": 6, "audits": 7, "gpu_lease": 8,
         "bench": 8, "conclusions": 8, "verify": 8, "book": 9, "cli": 10}


def _layer(module: str) -> int | None:
    """The layer of ``leukcore.a.b...``: its most specific entry in LAYER."""
    parts = module.split(".")[1:]
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in LAYER:
            return LAYER[".".join(parts[:k])]
    return None
FRONT = [k for k in LAYER if "." not in k]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _front_modules() -> dict[str, Path]:
    """Every module of the package (each top-level module or subpackage must have a layer)."""
    out = {}
    for top in FRONT:
        p = PKG / top
        files = sorted(p.rglob("*.py")) if p.is_dir() else [PKG / f"{top}.py"]
        for f in files:
            out[_module_name(f)] = f
    return out


def test_every_module_has_a_layer():
    tops = {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"} | {p.name for p in PKG.iterdir()
                                                                       if (p / "__init__.py").is_file()}
    assert tops <= set(LAYER), f"modules without a layer in tests/test_layout.py: {sorted(tops - set(LAYER))}"


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
           for n in names if n.startswith("_") and not n.startswith("__") and _resolve(mod, n, modules) == mod
           and mod != name]
    assert not bad, bad


def test_layers_import_only_themselves_and_earlier_layers():
    modules = _front_modules()
    bad = []
    for name, path in modules.items():
        own = _layer(name)
        for mod, names in _imports(name, path):
            for target in [_resolve(mod, n, modules) for n in names] or [mod]:
                if target.count(".") < 1:
                    continue
                layer = _layer(target)
                if layer is None:
                    bad.append(f"{name} -> {target} (a module with no layer)")
                elif layer > own:
                    bad.append(f"{name} -> {target}")
    assert not bad, bad


def test_no_import_cycle():
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
    from leukcore.runs import experiments as X
    from leukcore.runs.profiles import get_profile
    from leukcore.runs.records import settings_hash

    try:
        exp = X.get_experiment(record["paper"], record["experiment"])
    except ValueError:
        pytest.skip("experiment no longer in its protocol")
    if exp.route == "aggregate":
        pytest.skip("aggregates pool other records")
    settings = X.experiment_settings(record["paper"], exp, get_profile(record["profile"]))
    assert settings_hash(settings) == record["settings_hash"]
