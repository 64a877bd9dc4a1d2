"""The package's layout keeps its promises: no module imports a private name from another, the
whole package has no import cycle (lazy imports inside functions included), each layer imports
only itself and the layers before it (files, data, transforms, models, engine, metrics, runs,
evaluation, audits, bench, book, gpu_lease, cli), with no exception; experiment routes are told
apart only inside the route registry; the device resolver, the profile order and the unit
formatter are each defined once; ``import leukcore`` stays cheap; committed records keep their keys."""
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
#: (filters and losses are the public faces of transforms and engine; a run ends by computing its
#: metrics, so metrics sit below the runs; the book renders the benchmark's records; the GPU lease
#: drives runs, audits, the benchmark and the book's Grad-CAM writer; records verify reads runs and audits)
LAYER = {"files": 0, "data": 1, "transforms": 2, "filters": 2, "models": 3, "engine": 4, "losses": 4,
         "metrics": 4, "runs": 5, "evaluation": 6, "audits": 7, "bench": 8, "conclusions": 8, "verify": 8,
         "book": 9, "gpu_lease": 10, "cli": 11}


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
              "BadImageError"):
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
    from leukcore.runs.profiles import get_profile
    from leukcore.runs.protocols import experiment_settings, get_experiment
    from leukcore.runs.records import settings_hash
    from leukcore.runs.routes import get_route

    try:
        exp = get_experiment(record["paper"], record["experiment"])
    except ValueError:
        pytest.skip("experiment no longer in its protocol")
    if not get_route(exp.route).trains:
        pytest.skip("a record that pools other records is keyed by theirs")
    settings = experiment_settings(record["paper"], exp, get_profile(record["profile"]))
    assert settings_hash(settings) == record["settings_hash"]


# ------------------------------------------------------------------ one place for each fact


def _trees() -> dict[str, ast.AST]:
    return {name: ast.parse(path.read_text()) for name, path in _front_modules().items()}


def _route_operand(node: ast.AST) -> bool:
    """``x.route``, ``x["route"]`` or ``x.get("route")``: an experiment's route name."""
    if isinstance(node, ast.Attribute):
        return node.attr == "route"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "route"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return bool(node.args) and isinstance(node.args[0], ast.Constant) and node.args[0].value == "route"
    return False


def _string_constants(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and bool(node.elts) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts)


def test_no_route_is_told_apart_by_name_outside_the_route_registry():
    """``route == "cnn"`` and the like live only in leukcore/runs/routes/: everything else asks the
    route object (leukcore.runs.routes.get_route), so that adding a route is one file."""
    bad = []
    for name, tree in _trees().items():
        if name.startswith("leukcore.runs.routes"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(_route_operand(s) for s in sides) and any(_string_constants(s) for s in sides):
                    bad.append(f"{name}:{node.lineno}")
    assert not bad, f"route names compared outside leukcore.runs.routes: {bad}"


def test_the_route_registry_catches_a_comparison():
    tree = ast.parse('if exp.route != "aggregate" and spec.get("route") in ("cnn", "fusion"): pass')
    found = [n for n in ast.walk(tree) if isinstance(n, ast.Compare)
             and any(_route_operand(s) for s in [n.left, *n.comparators])
             and any(_string_constants(s) for s in [n.left, *n.comparators])]
    assert len(found) == 2


def test_layers_have_no_exceptions():
    """Every layer is a top-level module or package: no submodule is filed below its package (the
    arrow that climbed back up, runs -> evaluation.metrics, is gone)."""
    assert all("." not in k for k in LAYER)


def _defs(name: str) -> list[str]:
    return [f"{mod}:{node.lineno}" for mod, tree in _trees().items() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name]


def test_one_device_resolver():
    """One ``resolve_device`` (leukcore.engine.setup), and nobody else picks cuda-or-cpu by hand."""
    assert _defs("resolve_device") == [d for d in _defs("resolve_device") if d.startswith("leukcore.engine.setup:")]
    assert len(_defs("resolve_device")) == 1
    bad = [f"{mod}:{node.lineno}" for mod, tree in _trees().items() for node in ast.walk(tree)
           if isinstance(node, ast.IfExp) and isinstance(node.body, ast.Constant) and node.body.value == "cuda"
           and "is_available" in ast.unparse(node.test) and mod != "leukcore.engine.setup"]
    assert not bad, bad


def test_one_profile_order():
    """The profiles' order is PROFILES' (leukcore.runs.profiles): no other module lists profile
    names in an order of its own or ranks them."""
    from leukcore.runs.profiles import PROFILES

    names = set(PROFILES)
    bad = []
    for mod, tree in _trees().items():
        if mod == "leukcore.runs.profiles":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List)):
                if sum(isinstance(e, ast.Constant) and e.value in names for e in node.elts) >= 2:
                    bad.append(f"{mod}:{node.lineno} lists profiles")
            elif isinstance(node, ast.Dict):
                ranked = [k.value for k, v in zip(node.keys, node.values) if isinstance(k, ast.Constant)
                          and k.value in names and isinstance(v, ast.Constant) and isinstance(v.value, int)]
                if len(ranked) >= 2:
                    bad.append(f"{mod}:{node.lineno} ranks profiles")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Name) and "PROFILE" in t.id and ("ORDER" in t.id or "RANK" in t.id):
                        bad.append(f"{mod}:{node.lineno} defines {t.id}")
    assert not bad, bad


def _formats_by_unit(fn: ast.FunctionDef) -> bool:
    """A function that picks a number format by a claim's unit: it compares something called
    ``unit`` with "fraction" or "params" and formats with a format spec."""
    by_unit = any(isinstance(n, ast.Compare) and "unit" in ast.unparse(n.left)
                  and any(isinstance(c, ast.Constant) and c.value in ("fraction", "params") for c in n.comparators)
                  for n in ast.walk(fn))
    spec = any(isinstance(n, ast.FormattedValue) and n.format_spec is not None for n in ast.walk(fn))
    return by_unit and spec


def test_one_unit_formatter():
    """Numbers are printed in their claim's unit by one function, leukcore.book.units.format_value."""
    found = [f"{mod}.{node.name}" for mod, tree in _trees().items() for node in ast.walk(tree)
             if isinstance(node, ast.FunctionDef) and _formats_by_unit(node)]
    assert found == ["leukcore.book.units.format_value"], found
