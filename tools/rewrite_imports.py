#!/usr/bin/env python3
"""Rewrite imports of leukcore's old flat modules to the subpackages that replaced them.

    python tools/rewrite_imports.py FILE_OR_DIR...   # .py files; prints each change
    python tools/rewrite_imports.py --check FILE...  # exit 1 if anything would change
    python tools/rewrite_imports.py --moved DIR...   # once, right after `git mv` of modules to
                                                     # where MODULES says: respell their own imports

Handles ``from leukcore.X import a, b as c`` (also relative, also parenthesised over several
lines), ``from leukcore import X [as Y]`` and ``import leukcore.X [as Y]``; a renamed private name
(``_Normalizer`` -> ``Normalizer``) is renamed where the file uses it, directly or through the
module's alias (``T._take`` -> ``T.take``); a line ``from leukcore.X import a, b`` inside a string
(a script run in a subprocess) is rewritten too. Idempotent: the new paths are not in the mapping, so
a second run changes nothing.
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

#: old module -> the module that replaced it (every name not listed in NAMES goes there)
MODULES = {
    "leukcore.train": "leukcore.engine",
    "leukcore.features": "leukcore.engine",
    "leukcore.augment": "leukcore.transforms",
    # the back of the pipeline: runs, evaluation, book
    "leukcore.profiles": "leukcore.runs.profiles",
    "leukcore.records": "leukcore.runs.records",
    "leukcore.experiments": "leukcore.runs.experiments",
    "leukcore.distributed": "leukcore.runs.distributed",
    "leukcore.metrics": "leukcore.evaluation.metrics",
    "leukcore.claims": "leukcore.evaluation.claims",
    "leukcore.verdicts": "leukcore.evaluation.verdicts",
    "leukcore.audit": "leukcore.evaluation.consistency",
    "leukcore.tables": "leukcore.book.tables",
    "leukcore.figures": "leukcore.book.figures",
    "leukcore.findings": "leukcore.book.findings",
    "leukcore.report": "leukcore.book.pages",
    "leukcore.runner": "leukcore.book.runner",
    "leukcore.citation": "leukcore.book.citation",
}

#: (old module, name) -> (new module, new name)
NAMES = {
    **{("leukcore.data", n): ("leukcore.files", n)
       for n in ("PROJECT_ROOT", "atomic_write_text", "atomic_write_bytes", "atomic_write_with")},
    **{("leukcore.train", old): ("leukcore.engine", new) for old, new in {
        "_Normalizer": "Normalizer", "_make_optimizer": "make_optimizer", "_runtime": "runtime",
        "_as_nhwc_uint8": "as_nhwc_uint8", "_autocast": "autocast", "_nchw": "nchw", "_take": "take",
        "_batches": "batch_bounds", "_to_layout": "to_layout", "_unpack": "unpack_split", "_use_amp": "use_amp",
        "_compiled": "compiled", "_make_loss": "make_train_loss", "_l2_term": "l2_term",
        "_CHECKPOINT_FORMAT": "CHECKPOINT_FORMAT",
    }.items()},
    **{("leukcore.train", old): ("leukcore.engine.checkpoint", old.lstrip("_"))
       for old in ("_RESUME_MUTABLE", "_rng_state", "_set_rng_state", "_cpu_state")},
    ("leukcore.augment", "to_float_normalized"): ("leukcore.transforms", "uint8_to_normalized"),
    ("leukcore.augment", "_affine_grid"): ("leukcore.transforms.torch_backend", "affine_grid"),
    ("leukcore.augment", "_pixel_matrices"): ("leukcore.transforms.opencv_backend", "pixel_matrices"),
    ("leukcore.augment", "_stats"): ("leukcore.transforms.normalize", "channel_stats"),
    ("leukcore.augment", "_normalizing_lut"): ("leukcore.transforms.normalize", "normalizing_lut"),
    **{("leukcore.experiments", old): ("leukcore.runs.experiments", new) for old, new in {
        "_new_model": "new_model", "_resolve_device": "resolve_device", "_images": "experiment_images",
        "_settings": "experiment_settings", "_task_spec": "task_spec", "_read_protocol": "read_protocol",
    }.items()},
    ("leukcore.records", "_nvidia_driver"): ("leukcore.runs.records", "nvidia_driver"),
    ("leukcore.figures", "_claims"): ("leukcore.book.figures", "claims_frame"),
}


def _package_of(path: Path) -> list[str] | None:
    """The package a file under a ``leukcore`` folder belongs to, as parts (``["leukcore", "runs"]``)."""
    parts = path.resolve().parts
    if "leukcore" not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index("leukcore")
    return list(parts[i:-1])


def _absolute(node: ast.ImportFrom, pkg: list[str] | None) -> str | None:
    if node.level == 0:
        return node.module
    if pkg is None or node.level > len(pkg):
        return None
    base = pkg[: len(pkg) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _spell(module: str, level: int, pkg: list[str] | None) -> str:
    """``module`` as the statement spelled it: absolute, or relative to the leukcore root."""
    if level == 0 or pkg is None:
        return module
    here = ".".join(pkg) + "."
    if len(pkg) > 1 and module.startswith(here) and "." not in module[len(here):]:
        return "." + module[len(here):]  # a sibling in the file's own subpackage
    return "." * len(pkg) + ("" if module == "leukcore" else module.removeprefix("leukcore."))


def _alias(name: str, asname: str | None) -> str:
    return f"{name} as {asname}" if asname and asname != name else name


def _from_line(indent: str, module: str, names: list[str]) -> str:
    line = f"{indent}from {module} import {', '.join(names)}"
    if len(line) <= 120:
        return line
    return f"{indent}from {module} import (\n" + "".join(f"{indent}    {n},\n" for n in names) + f"{indent})"


def _moved_from(pkg: list[str] | None, path: Path) -> list[str] | None:
    """For a module that MODULES moved here, the package it was in (its relative imports were
    written from there); else None."""
    if pkg is None:
        return None
    new = ".".join(pkg + [path.stem])
    old = next((o for o, n in MODULES.items() if n == new), None)
    return old.split(".")[:-1] if old else None


def rewrite(text: str, path: Path, moved: bool = False) -> tuple[str, list[str]]:
    """The rewritten source and a list of 'old -> new' descriptions.

    ``moved``: the file itself was just moved to where MODULES says: its relative imports are
    read from its old package and spelled from its new one (run once, right after the move).
    """
    tree = ast.parse(text)
    pkg = _package_of(path)
    old_pkg = _moved_from(pkg, path) if moved else None
    lines = text.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []  # (first line, last line) 1-based, replacement
    renames: dict[str, str] = {}  # local private name -> new local name
    aliases: dict[str, str] = {}  # module alias -> old module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = _absolute(node, old_pkg or pkg)
            respell = old_pkg is not None and node.level > 0
            if mod is None:
                continue
            indent = re.match(r"\s*", lines[node.lineno - 1]).group(0)
            if mod == "leukcore" and (respell or any(f"leukcore.{a.name}" in MODULES for a in node.names)):
                groups: dict[str, list[str]] = {}
                for a in node.names:
                    old = f"leukcore.{a.name}"
                    new = MODULES.get(old, old)
                    local = a.asname or a.name
                    if old in MODULES:
                        aliases[local] = old
                    parent, _, leaf = new.rpartition(".")
                    groups.setdefault(parent, []).append(_alias(leaf, local))
                new_text = "\n".join(_from_line(indent, _spell(p, node.level, pkg) if node.level else p, ns)
                                     for p, ns in groups.items())
                edits.append((node.lineno, node.end_lineno, new_text))
                continue
            if mod not in MODULES and not any((mod, a.name) in NAMES for a in node.names) and not respell:
                continue
            groups = {}
            for a in node.names:
                new_mod, new_name = NAMES.get((mod, a.name), (MODULES.get(mod, mod), a.name))
                if a.asname is None and new_name != a.name:
                    renames[a.name] = new_name
                groups.setdefault(new_mod, []).append(_alias(new_name, a.asname))
            new_text = "\n".join(_from_line(indent, _spell(m, node.level, pkg), ns) for m, ns in groups.items())
            edits.append((node.lineno, node.end_lineno, new_text))
        elif isinstance(node, ast.Import):
            if not any(a.name in MODULES for a in node.names):
                continue
            indent = re.match(r"\s*", lines[node.lineno - 1]).group(0)
            new = []
            for a in node.names:
                if a.name in MODULES and a.asname:
                    aliases[a.asname] = a.name
                new.append(_alias(MODULES.get(a.name, a.name), a.asname))
            edits.append((node.lineno, node.end_lineno, f"{indent}import {', '.join(new)}"))
    changes = []
    for first, last, new_text in sorted(edits, reverse=True):
        old_text = "".join(lines[first - 1:last]).rstrip("\n")
        if old_text != new_text:
            changes.append(f"{path}:{first}: {old_text.strip()}  ->  {new_text.strip()}")
            lines[first - 1:last] = [new_text + "\n"]
    out = "".join(lines)
    for old, new in renames.items():
        out2 = re.sub(rf"(?<![\w.]){re.escape(old)}\b", new, out)
        if out2 != out:
            changes.append(f"{path}: name {old} -> {new}")
        out = out2
    for alias, old_mod in aliases.items():
        for (m, old), (_, new) in NAMES.items():
            if m == old_mod:
                out2 = re.sub(rf"\b{re.escape(alias)}\.{re.escape(old)}\b", f"{alias}.{new}", out)
                if out2 != out:
                    changes.append(f"{path}: {alias}.{old} -> {alias}.{new}")
                out = out2
    # imports inside strings (scripts run in a subprocess): whole lines naming only public names
    pat = re.compile(r"^(\s*from\s+)(" + "|".join(map(re.escape, MODULES)) + r")(\s+import\s+)([\w, ]+)$", re.M)

    def plain(m: re.Match) -> str:
        if any(n.strip().startswith("_") for n in m.group(4).split(",")):
            return m.group(0)
        changes.insert(0, f"{path}: (in a string) from {m.group(2)} import ...  ->  from {MODULES[m.group(2)]}")
        return m.group(1) + MODULES[m.group(2)] + m.group(3) + m.group(4)

    out = pat.sub(plain, out)
    return out, changes[::-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")
    ap.add_argument("--moved", action="store_true",
                    help="the files were just moved to their new place: respell their relative imports (once)")
    args = ap.parse_args(argv)
    files = [f for p in args.paths for f in (sorted(p.rglob("*.py")) if p.is_dir() else [p])]
    changed = 0
    for f in files:
        text = f.read_text()
        try:
            new, changes = rewrite(text, f, moved=args.moved)
        except SyntaxError as e:
            print(f"{f}: skipped ({e.msg})", file=sys.stderr)
            continue
        if new != text:
            changed += 1
            print("\n".join(changes))
            if not args.check:
                f.write_text(new)
    print(f"{changed} file(s) {'would change' if args.check else 'changed'}", file=sys.stderr)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
