"""Deviation lines, generated from a run's settings, so that none can contradict them.

A protocol's ``deviations`` entries are templates (``"Learning rate: {train.lr}"``, ``{path:%}`` for
a fraction shown as a percentage), with an optional ``when`` (``model``, ``route``, ``profile``,
``reduced_folds``); an entry naming a setting the run does not have does not apply to it. A
reduced profile adds its own lines, and a model its interpretation lines (less those the run's
settings override). :func:`deviation_lines` makes a run's lines; :func:`protocol_deviations`
every line of a paper at a profile, with the experiments it applies to.
"""
from __future__ import annotations

import re

import pandas as pd

from .profiles import get_profile
from .protocols import Experiment, experiment_settings, get_experiment, list_experiments, protocol_folds, read_protocol
from .routes import get_route

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)(:%)?\}")  # {path} or {path:%} (a fraction as a percentage)
#: keys of a deviation entry in a protocol file (a plain string is ``{text: ...}``)
DEVIATION_KEYS = ("text", "when")
#: conditions a deviation entry may be limited by
WHEN_KEYS = ("model", "route", "profile", "reduced_folds")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out[key] = v
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
    return out


def show_value(v) -> str:
    """A setting as a deviation line says it: ``yes``/``no``, lists joined by `` / ``, floats short."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return " / ".join(show_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def deviation_context(paper: str, exp: Experiment, settings: dict, *, seed: int = 0, n_folds: int | None = None) -> dict:
    """What a deviation template may name: every settings path (``train.lr``, ``model_kw.dropout``,
    ``profile.name``, ``split.cv.k`` ...) plus ``seed``, ``model``, ``experiment``, ``folds_total``
    (folds of the protocol's cross-validation, if any) and ``folds_run``."""
    ctx = _flat(settings)
    ctx.update({"seed": seed, "model": exp.model, "experiment": exp.id, "route": exp.route})
    total = protocol_folds(settings.get("split", {}), exp)
    if total is not None:
        cap = settings.get("profile", {}).get("max_folds")
        ctx["folds_total"] = total
        ctx["folds_run"] = n_folds if n_folds is not None else min(total, cap or total)
    return {k: v for k, v in ctx.items() if v is not None}


def _fill(text: str, ctx: dict) -> str | None:
    """``text`` with its ``{path}`` placeholders filled from ``ctx``; None when one is missing (the
    line does not apply to this run)."""
    missing = [m for m, _ in _PLACEHOLDER.findall(text) if m not in ctx]
    if missing:
        return None

    def show(m):
        v = ctx[m.group(1)]
        return f"{100 * float(v):g} %" if m.group(2) else show_value(v)

    return " ".join(_PLACEHOLDER.sub(show, text).split())


def _applies(when: dict, ctx: dict) -> bool:
    for key, want in (when or {}).items():
        if key not in WHEN_KEYS:
            raise ValueError(f"unknown deviation condition {key!r}; valid: {', '.join(WHEN_KEYS)}")
        if key == "reduced_folds":
            reduced = "folds_total" in ctx and ctx["folds_run"] < ctx["folds_total"]
            if reduced != bool(want):
                return False
            continue
        have = ctx.get("profile.name") if key == "profile" else ctx.get(key)
        if have not in (want if isinstance(want, list) else [want]):
            return False
    return True


def _profile_lines(paper: str, settings: dict, ctx: dict) -> list[str]:
    """Deviations a reduced profile makes, in words, from the run's settings (none at ``paper``)."""
    proto = read_protocol(paper)
    prof = settings.get("profile", {})
    name = prof.get("name", "?")
    out = []
    size, psize = settings.get("image_size"), proto.get("image_size")
    if psize is not None and size != psize:
        out.append(f"Input size {size}x{size} px ({name} profile, or the model's minimum); the protocol's is "
                   f"{psize}x{psize}.")
    t, pt = settings.get("train", {}), proto.get("train", {})
    if "epochs" in pt and t.get("epochs") != pt["epochs"]:
        out.append(f"Epochs: {t.get('epochs')} ({name} profile); the protocol's are {pt['epochs']}.")
    if "batch_size" in pt and t.get("batch_size") != pt["batch_size"]:
        out.append(f"Batch size: {t.get('batch_size')} ({name} profile); the protocol's is {pt['batch_size']}.")
    if prof.get("max_per_class"):
        out.append(f"At most {prof['max_per_class']} images per class ({name} profile; seeded, stratified).")
    if "folds_total" in ctx and ctx["folds_run"] < ctx["folds_total"]:
        out.append(f"Cross-validation: {ctx['folds_run']} of the {ctx['folds_total']} folds run ({name} profile, "
                   f"max_folds {prof.get('max_folds')}); the protocol runs all {ctx['folds_total']}.")
    return out


def _model_lines(lines: list[str], settings: dict, exp: Experiment) -> list[str]:
    """A model's interpretation lines, less those that state a value the run's settings set otherwise
    (an option given in ``model_kw``, the input size); the settings' own lines replace them."""
    kw = settings.get("model_kw") or {}
    size = settings.get("image_size")
    out, dropped = [], False
    for line in lines:
        low = line.lower()
        if any(re.search(rf"\b{re.escape(k.replace('_', ' '))}\b|\b{re.escape(k)}\b", low) for k in kw):
            dropped = True
            continue
        m = re.search(r"\binput (\d+)x(\d+)", low)
        if m and size is not None and int(m.group(1)) != size:
            continue
        out.append(line)
    if dropped:
        out.append(f"{exp.model} options as run: " + ", ".join(f"{k} {show_value(v)}" for k, v in sorted(kw.items()))
                   + ".")
    return out


def deviation_lines(paper: str, exp: Experiment, settings: dict, *, seed: int = 0, model_lines: list[str] = (),
                    n_folds: int | None = None) -> list[str]:
    """A run's deviation lines: the protocol's templates that apply, filled from its settings, then
    the reduced profile's own lines, then the model's interpretation lines less those its settings
    override."""
    ctx = deviation_context(paper, exp, settings, seed=seed, n_folds=n_folds)
    out = []
    for entry in read_protocol(paper).get("deviations", []):
        entry = {"text": entry} if isinstance(entry, str) else entry
        if not _applies(entry.get("when"), ctx):
            continue
        line = _fill(entry["text"], ctx)
        if line is not None:
            out.append(line)
    out += _profile_lines(paper, settings, ctx)
    out += _model_lines(list(model_lines), settings, exp)
    return list(dict.fromkeys(out))


def record_deviations(rec: dict) -> list[str]:
    """A record's deviation lines regenerated from its own settings by today's templates (for
    records written before the lines were generated, whose fixed text can contradict their
    settings); the model's interpretation lines it stored (``interpretation:`` / ``deviation:``
    / the ImageNet line) pass through the same filter as at run time. A record that pooled other
    records keeps its lines (its parts' lines)."""
    exp = get_experiment(rec["paper"], rec["experiment"])
    if not get_route(exp.route).trains:
        return list(rec.get("deviations", []))
    model = [d for d in rec.get("deviations", []) if d.startswith(("interpretation:", "deviation:"))
             or d.startswith("ImageNet weights unavailable")]
    n = len(rec.get("split", {}).get("folds", [])) or None
    return deviation_lines(rec["paper"], exp, rec["settings"], seed=rec.get("seed") or 0, model_lines=model, n_folds=n)


def protocol_deviations(paper: str, profile: str = "paper") -> pd.DataFrame:
    """Every deviation line of ``paper`` at ``profile`` (protocol templates filled from each
    experiment's settings), with the experiments it applies to (``all`` when every one that trains)."""
    prof = get_profile(profile)
    exps = [e for e in list_experiments(paper, profile) if get_route(e.route).trains]
    seen: dict[str, list[str]] = {}
    for e in exps:
        for line in deviation_lines(paper, e, experiment_settings(paper, e, prof)):
            seen.setdefault(line, []).append(e.id)
    return pd.DataFrame([(line, "all" if len(ids) == len(exps) else ", ".join(ids)) for line, ids in seen.items()],
                        columns=["deviation or interpretation", "applies to"])
