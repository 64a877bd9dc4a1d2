"""Protocol files -> experiments; one call that trains and evaluates one; executors over many.

A paper's protocol (``leukcore/protocols/<paper>.yaml``) is data: dataset, split rule, image
size, training recipe, the experiments (listed, or a ``grid`` that expands to them), and the
deviations we had to make (templates filled from each run's settings: :func:`deviation_lines`), and
``sources``, where each setting comes from (``stated`` by the paper, with where and a quote, or
``chosen`` by us, with why; :func:`check_sources`; not hashed).  :func:`list_experiments` expands it at a profile;
:func:`run_experiment` trains and evaluates one experiment and writes its run record;
:func:`get_or_run` returns an existing complete record with the same key instead of rerunning.
:func:`run_grid` runs many, in process (``executor="local"``, the default) or as Ray tasks.
"""
from __future__ import annotations

import copy
import itertools
import os
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .. import data as D
from .profiles import Profile, get_profile
from .records import (
    check_code,
    code_block,
    code_state,
    device_description,
    git_commit,
    library_versions,
    read_predictions,
    read_record,
    record_path,
    run_name,
    settings_hash,
    write_record,
)

PROTOCOL_DIR = Path(__file__).resolve().parents[1] / "protocols"
#: Metric paths that get a bootstrap interval in every record.
CI_METRICS = ("accuracy", "sensitivity.macro", "sensitivity.weighted", "specificity.macro", "specificity.weighted",
              "precision.macro", "precision.weighted", "f1.macro", "f1.weighted", "auc")


# --------------------------------------------------------------------------------------------
# Protocols
# --------------------------------------------------------------------------------------------


def list_papers() -> list[str]:
    """Paper ids that have a protocol file."""
    return sorted(p.stem for p in PROTOCOL_DIR.glob("*.yaml"))


@lru_cache(maxsize=None)
def read_protocol(paper: str) -> dict:
    path = PROTOCOL_DIR / f"{paper}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown paper {paper!r}; valid: {', '.join(list_papers())}")
    doc = yaml.safe_load(path.read_text())
    if doc.get("paper") != paper:
        raise ValueError(f"{path}: 'paper' field {doc.get('paper')!r} does not match the file name")
    from ..engine import check_train_keys

    check_train_keys(doc.get("train", {}), f"{path.name} 'train'")
    check_sources(doc, path.name)
    return doc


#: train keys a protocol may leave to their defaults (see ``_train_config``) and still annotate
TRAIN_DEFAULT_KEYS = ("optimizer", "lr", "loss", "augment", "l2")


def _models_of(doc: dict) -> tuple[set, set, dict]:
    """(models and classifiers, fusion classifiers, {model: model_kw keys}) named by a protocol."""
    models, classifiers, kws = set(), set(), {}
    for spec in doc.get("experiments", []):
        if spec.get("route") == "aggregate":
            continue
        if spec.get("model"):
            models.add(spec["model"])
            kws.setdefault(spec["model"], set()).update(spec.get("model_kw", {}))
        if spec.get("route") == "fusion" and spec.get("classifier"):
            classifiers.add(spec["classifier"])
    for key, field_ in (("grid", "model"), ("feature_grid", "classifier")):
        g = doc.get(key) or {}
        vals = g.get(field_) or []
        models.update(vals.values() if isinstance(vals, dict) else vals)
    return models, classifiers, kws


def setting_paths(doc: dict) -> tuple[list[str], set[str]]:
    """(the setting paths a protocol must annotate in ``sources``, every path it may annotate).

    Required: each key of ``train`` and ``split``, ``image_size``, ``preprocess`` and
    ``center_crop`` when set, ``pretrained.<m>`` for each model the ``pretrained`` mapping sets
    true (one each: a paper may state the weights of one model and not of another),
    ``models.<m>`` for each model or classifier, ``classifiers.<c>`` for a fusion's classifier,
    ``model_kw.<m>.<k>`` for each model option set, and ``grid.<k>`` for each grid dimension
    other than model / classifier. Also allowed: the defaults a protocol relies on
    (``train.augment`` ...), ``model_kw.<m>`` and ``pretrained.<m>`` for a model set false.
    """
    req = [f"train.{k}" for k in doc.get("train", {})] + [f"split.{k}" for k in doc.get("split", {})]
    req += [k for k in ("image_size", "preprocess", "center_crop") if doc.get(k) not in (None, False)]
    pretrained = doc.get("pretrained") or {}
    req += [f"pretrained.{m}" for m, on in pretrained.items() if on]
    models, classifiers, kws = _models_of(doc)
    req += [f"models.{m}" for m in sorted(models)] + [f"classifiers.{c}" for c in sorted(classifiers)]
    req += [f"model_kw.{m}.{k}" for m in sorted(kws) for k in sorted(kws[m])]
    for key in ("grid", "feature_grid"):
        req += [f"grid.{k}" for k in (doc.get(key) or {}) if k not in ("id", "model", "classifier")]
    req = list(dict.fromkeys(req))
    allowed = set(req) | {f"train.{k}" for k in TRAIN_DEFAULT_KEYS} | {f"model_kw.{m}" for m in models}
    allowed |= {f"pretrained.{m}" for m in pretrained}
    return req, allowed


def check_sources(doc: dict, name: str = "<protocol>") -> None:
    """Every setting of a protocol is annotated in its ``sources`` block, as ``{stated: where,
    quote?: words, note?: ...}`` or ``{chosen: why, note?: ...}``, and every annotation names a real
    setting; ValueError naming the file and the path otherwise."""
    src = doc.get("sources")
    if not isinstance(src, dict):
        raise ValueError(f"{name}: missing 'sources' block (where each setting comes from)")
    req, allowed = setting_paths(doc)
    missing = [p for p in req if p not in src]
    if missing:
        raise ValueError(f"{name}: sources: no annotation for {missing}")
    unknown = sorted(set(src) - allowed)
    if unknown:
        raise ValueError(f"{name}: sources: {unknown} are not settings of this protocol")
    for path, ann in src.items():
        if not isinstance(ann, dict) or len({"stated", "chosen"} & set(ann)) != 1:
            raise ValueError(f"{name}: sources.{path}: needs exactly one of 'stated' (where) or 'chosen' (why)")
        extra = set(ann) - {"stated", "chosen", "quote", "note"}
        if extra or ("quote" in ann and "stated" not in ann):
            raise ValueError(f"{name}: sources.{path}: unknown keys {sorted(extra) or ['quote (without stated)']}")
        if not all(isinstance(v, str) and v.strip() for v in ann.values()):
            raise ValueError(f"{name}: sources.{path}: values must be non-empty text")


def setting_source(paper: str, path: str) -> str:
    """``stated: <where>`` or ``chosen: <why>`` for one setting path of ``paper`` ('' if none)."""
    ann = read_protocol(paper).get("sources", {}).get(path)
    if not ann:
        return ""
    return f"stated: {ann['stated']}" if "stated" in ann else f"chosen: {ann['chosen']}"


def load_protocol(paper: str) -> dict:
    """The protocol of ``paper`` as a dict (a copy: callers may modify it)."""
    return copy.deepcopy(read_protocol(paper))


@dataclass
class Experiment:
    """One unit of work: a model (or classifier) trained and evaluated once under a protocol."""

    paper: str
    id: str
    model: str | None
    route: str = "cnn"                     #: cnn | features | fusion | aggregate
    task: str | None = None                #: for papers with several tasks (LoGMH: binary, multiclass)
    loss: str | None = None
    augment: str | None = None
    fold: int | None = None
    classifier: str | None = None
    backbone: str | None = None
    model_kw: dict = field(default_factory=dict)
    of: list = field(default_factory=list)  #: aggregate: the experiments pooled
    min_image_size: int | None = None      #: the model's smallest input (ALNet 136, InceptionV3 75)
    note: str | None = None

    def spec(self) -> dict:
        """The experiment as plain data (stored in its record)."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, [], {})}


def _expand_grid(paper: str, grid: dict, extra: dict | None = None) -> list[Experiment]:
    keys = [k for k in grid if k not in ("id", "backbone")]
    values = [list(grid[k].items()) if isinstance(grid[k], dict) else [(v, v) for v in grid[k]] for k in keys]
    out = []
    for combo in itertools.product(*values):
        names = {k: name for k, (name, _) in zip(keys, combo)}
        vals = {k: val for k, (_, val) in zip(keys, combo)}
        exp = Experiment(paper=paper, id=grid["id"].format(**names), model=vals.get("model"),
                         task=vals.get("task"), loss=vals.get("loss"), augment=vals.get("aug"),
                         classifier=vals.get("classifier"), backbone=grid.get("backbone"), **(extra or {}))
        out.append(exp)
    return out


def list_experiments(paper: str, profile: str = "paper") -> list[Experiment]:
    """The experiments of ``paper`` (the same at every profile: a profile only caps their size)."""
    get_profile(profile)
    proto = read_protocol(paper)
    exps: list[Experiment] = []
    if "grid" in proto:
        exps += _expand_grid(paper, proto["grid"])
    if "feature_grid" in proto:
        exps += _expand_grid(paper, proto["feature_grid"], {"route": "features"})
        for e in exps[-len(list(itertools.product(*[v for k, v in proto["feature_grid"].items()
                                                     if k not in ("id", "backbone")]))):]:
            e.model = f"{e.backbone}+{e.classifier}"
    for spec in proto.get("experiments", []):
        spec = dict(spec)
        exps.append(Experiment(paper=paper, id=spec.pop("id"), model=spec.pop("model", None), **spec))
    ids = [e.id for e in exps]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ValueError(f"{paper}: duplicate experiment ids {sorted(dup)}")
    return exps


def get_experiment(paper: str, experiment_id: str) -> Experiment:
    """One experiment of ``paper`` by id; unknown ids raise a ValueError listing the valid ones."""
    exps = {e.id: e for e in list_experiments(paper)}
    if experiment_id not in exps:
        raise ValueError(f"unknown experiment {experiment_id!r} of {paper}; valid: {', '.join(exps)}")
    return exps[experiment_id]


def task_spec(proto: dict, exp: Experiment) -> dict:
    """Dataset, classes, positive class and synthetic layout of the experiment's task."""
    if "tasks" in proto:
        return dict(proto["tasks"][exp.task])
    return {k: proto.get(k) for k in ("dataset", "classes", "positive", "synthetic_layout", "substitute")}


# --------------------------------------------------------------------------------------------
# Data for one experiment
# --------------------------------------------------------------------------------------------

_SYNTH_LAYOUT_OF = {"taleqani-all": "taleqani", "cnmc-2019": "cnmc", "leukemia-0.2": "leukemia-0.2",
                    "multicancer-all": "multicancer", "pbc-lymphocytes": "pbc"}


@dataclass
class ExperimentData:
    """The table an experiment used and what it is: the paper's data, a real substitute, or synthetic."""

    table: pd.DataFrame
    dataset_id: str
    is_papers: bool
    stands_in_for: str | None
    note: str

    def describe(self) -> dict:
        return {"id": self.dataset_id, "is_papers": self.is_papers, "stands_in_for": self.stands_in_for,
                "note": self.note, "fingerprint": D.fingerprint(self.table), "n_images": int(len(self.table)),
                "root_source": self.table.attrs.get("root_source"),
                "counts": {str(k): int(v) for k, v in self.table["class_name"].value_counts().sort_index().items()}}


def experiment_data(paper: str, exp: Experiment, profile: Profile, data_root: str | None = None, *,
                    seed: int = 0, verbose: bool = False) -> ExperimentData:
    """Load the experiment's dataset; fall back to the protocol's real substitute, then to synthetic.

    The table is then capped at ``profile.max_per_class`` images per class (seeded, stratified).
    """
    proto = read_protocol(paper)
    task = task_spec(proto, exp)
    ds = task["dataset"]
    try:
        table = D.load_dataset(ds["id"], data_root, verbose=verbose, **ds.get("options", {}))
        out = ExperimentData(table, ds["id"], True, None, "the paper's dataset")
    except D.DataError as missing:
        sub = task.get("substitute")
        out = None
        if sub:
            try:
                table = D.load_dataset(sub["id"], data_root, verbose=verbose, **sub.get("options", {}))
                out = ExperimentData(table, sub["id"], False, ds["id"],
                                     f"real substitute for {ds['id']}: {' '.join(str(sub.get('why', '')).split())}")
            except D.DataError:
                out = None
        if out is None:
            layout = task.get("synthetic_layout") or _SYNTH_LAYOUT_OF[ds["id"]]
            size = max(profile.image_size or 64, 32)
            table = D.load_synthetic(layout=layout, n_per_class=profile.synthetic_per_class, size=min(size, 96),
                                     seed=seed, **ds.get("options", {}))
            out = ExperimentData(table, "synthetic", False, ds["id"],
                                 f"SYNTHETIC stand-in for {ds['id']} (absent: {str(missing).split(';')[0]})")
    t = out.table
    t = t[t["label"] >= 0].reset_index(drop=True) if (t["label"] < 0).any() else t
    if profile.max_per_class:
        rng = np.random.default_rng(seed)
        keep = []
        for _, g in t.groupby("label", sort=True):
            idx = g.index.to_numpy()
            keep += sorted(rng.permutation(idx)[: profile.max_per_class].tolist())
        attrs = dict(t.attrs)
        t = t.loc[sorted(keep)].reset_index(drop=True)
        t.attrs = attrs
    out.table = t
    return out


def experiment_split(paper: str, exp: Experiment, table: pd.DataFrame, profile: Profile, *, seed: int = 0) -> list[dict]:
    """The protocol's split of ``table`` for this experiment: a list of ``{train, val?, test}`` parts.

    One element for a fixed split or a fold experiment; several for a cross-validated
    experiment (capped at ``profile.max_folds``; their test predictions are pooled).  A
    ``fractions`` split with a ``cv`` block (``{k, routes}``) holds its test part out and runs
    stratified k-fold over the rest for the experiments of those routes: fold ``f`` trains on
    the other folds, validates on fold ``f`` and is tested on the held-out part.
    """
    split = read_protocol(paper)["split"]
    kind = split["kind"]
    if kind == "fractions":
        part = D.split_fractions(table, split["fractions"], seed=seed, group_by=split.get("group_by"))
        cv = split.get("cv")
        if not cv or exp.route not in cv.get("routes", ["cnn"]):
            return [part]
        # Haque et al.: the test part is held out; stratified k-fold over the rest (train + val),
        # each fold validating on one k-th and training on the others, every fold tested on the test part
        dev = [i for name in part if name != "test" for i in part[name]]
        dev_table = table[table["id"].isin(set(dev))].reset_index(drop=True)
        folds = D.split_kfold(dev_table, int(cv["k"]), seed=seed, group_by=split.get("group_by"))
        folds = folds[: profile.max_folds] if profile.max_folds else folds
        return [{"train": f["train"], "val": f["test"], "test": list(part["test"])} for f in folds]
    if kind == "kfold":
        folds = D.split_kfold(table, split["k"], seed=seed, group_by=split.get("group_by"))
        return folds[: profile.max_folds] if profile.max_folds else folds
    if kind == "published_folds":
        fold = exp.fold or 0
        if "fold" in table and table["fold"].notna().any():
            part = table[table["fold"] == fold] if fold in set(table["fold"]) else table
        else:
            part = table
        return [D.split_fractions(part.reset_index(drop=True), split["within_fold"], seed=seed + fold)]
    raise ValueError(f"{paper}: unknown split kind {kind!r}")


# --------------------------------------------------------------------------------------------
# Running one experiment
# --------------------------------------------------------------------------------------------


def experiment_settings(paper: str, exp: Experiment, profile: Profile, overrides: dict | None = None) -> dict:
    """Everything that defines what an experiment computes (hashed into its record key).

    ``overrides`` (a notebook's knobs): ``{"train": {...}, "models": {model: {kw...}},
    "logmh": {"sigma", "alpha", "beta"}}``.  Settings hold effective values, so an override equal
    to the default gives the same key as no override.
    """
    overrides = overrides or {}
    unknown = set(overrides) - {"train", "models", "logmh"}
    if unknown:
        raise ValueError(f"unknown override keys {sorted(unknown)}; valid: train, models, logmh")
    proto = read_protocol(paper)
    from ..engine import check_train_keys

    check_train_keys(overrides.get("train", {}), "the 'train' overrides")
    train = {**proto.get("train", {}), **overrides.get("train", {})}
    if exp.loss:
        train["loss"] = exp.loss
    if exp.augment:
        train["augment"] = exp.augment
    if profile.epochs is not None:
        train["epochs"] = min(int(train.get("epochs", profile.epochs)), profile.epochs)
    if profile.batch_size is not None:
        train["batch_size"] = profile.batch_size
    size = profile.image_size or proto.get("image_size", 224)
    from ..models import min_input_size

    model_min = min_input_size(exp.backbone if exp.route == "features" else exp.model) if exp.model else 0
    size = max(size, int(proto.get("min_image_size", 0)), int(exp.min_image_size or 0), profile.min_image_size,
               model_min)
    model_kw = {**exp.model_kw, **overrides.get("models", {}).get(exp.model or "", {})}
    out = {"experiment": exp.spec(), "train": train, "image_size": int(size), "model_kw": model_kw,
            "preprocess": proto.get("preprocess"), "center_crop": bool(proto.get("center_crop", False)),
            "split": proto["split"], "pretrained": bool(proto.get("pretrained", {}).get(
                (exp.backbone if exp.route == "features" else exp.model) or "", False)),
            "profile": profile.settings()}
    if out["preprocess"] == "logmh":
        from ..filters import LOGMH_DEFAULTS

        out["logmh"] = {**LOGMH_DEFAULTS, **overrides.get("logmh", {})}
    return out


# --------------------------------------------------------------------------------------------
# Deviation lines, generated from a run's settings
# --------------------------------------------------------------------------------------------

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


def _show_value(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return " / ".join(_show_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def deviation_context(paper: str, exp: Experiment, settings: dict, *, seed: int = 0, n_folds: int | None = None) -> dict:
    """What a deviation template may name: every settings path (``train.lr``, ``model_kw.dropout``,
    ``profile.name``, ``split.cv.k`` ...) plus ``seed``, ``model``, ``experiment``, ``folds_total``
    (folds of the protocol's cross-validation, if any) and ``folds_run``."""
    ctx = _flat(settings)
    ctx.update({"seed": seed, "model": exp.model, "experiment": exp.id, "route": exp.route})
    split = settings.get("split", {})
    total = None
    if split.get("kind") == "kfold":
        total = int(split["k"])
    elif split.get("cv") and exp.route in split["cv"].get("routes", ["cnn"]):
        total = int(split["cv"]["k"])
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
        return f"{100 * float(v):g} %" if m.group(2) else _show_value(v)

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
        out.append(f"{exp.model} options as run: " + ", ".join(f"{k} {_show_value(v)}" for k, v in sorted(kw.items()))
                   + ".")
    return out


def deviation_lines(paper: str, exp: Experiment, settings: dict, *, seed: int = 0, model_lines: list[str] = (),
                    n_folds: int | None = None) -> list[str]:
    """A run's deviation lines, each generated from its settings, so that none can contradict them.

    The protocol's ``deviations`` entries are templates (``"Learning rate: {train.lr}"``), with an
    optional ``when`` (``model``, ``route``, ``profile``, ``reduced_folds``); an entry naming a
    setting the run does not have does not apply to it. Then the reduced profile's own lines,
    then the model's interpretation lines less those its settings override.
    """
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
    / the ImageNet line) pass through the same filter as at run time."""
    exp = get_experiment(rec["paper"], rec["experiment"])
    if exp.route == "aggregate":
        return list(rec.get("deviations", []))
    model = [d for d in rec.get("deviations", []) if d.startswith(("interpretation:", "deviation:"))
             or d.startswith("ImageNet weights unavailable")]
    n = len(rec.get("split", {}).get("folds", [])) or None
    return deviation_lines(rec["paper"], exp, rec["settings"], seed=rec.get("seed") or 0, model_lines=model, n_folds=n)


def protocol_deviations(paper: str, profile: str = "paper") -> pd.DataFrame:
    """Every deviation line of ``paper`` at ``profile`` (protocol templates filled from each
    experiment's settings), with the experiments it applies to (``all`` when every one)."""
    prof = get_profile(profile)
    exps = list_experiments(paper, profile)
    seen: dict[str, list[str]] = {}
    for e in exps:
        if e.route == "aggregate":
            continue
        for line in deviation_lines(paper, e, experiment_settings(paper, e, prof)):
            seen.setdefault(line, []).append(e.id)
    n = len([e for e in exps if e.route != "aggregate"])
    return pd.DataFrame([(line, "all" if len(ids) == n else ", ".join(ids)) for line, ids in seen.items()],
                        columns=["deviation or interpretation", "applies to"])


def experiment_images(table: pd.DataFrame, settings: dict, on_bad: str) -> tuple[np.ndarray, pd.DataFrame]:
    x, kept = D.load_images(table, settings["image_size"], on_bad=on_bad)
    preprocess = settings.get("preprocess")
    if preprocess == "logmh":
        from ..filters import logmh

        x = np.stack([(logmh(im, **settings["logmh"]) * 255.0 + 0.5).astype(np.uint8) for im in x])
    elif preprocess:
        raise ValueError(f"unknown preprocess {preprocess!r}; valid: logmh")
    return x, kept


def _index(table: pd.DataFrame, ids: list[str]) -> np.ndarray:
    pos = pd.Series(np.arange(len(table)), index=table["id"])
    return pos.loc[[i for i in ids if i in pos.index]].to_numpy()


def _metrics_block(y: np.ndarray, prob: np.ndarray, class_names: list[str], positive, n_boot: int, seed: int) -> dict:
    from ..evaluation.metrics import bootstrap_ci, compute_metrics

    pos = None
    if prob.shape[1] == 2 and positive:
        pos = int(positive[0])
    m = compute_metrics(y, prob, class_names=class_names, positive=pos)
    ci = {}
    for path in CI_METRICS:
        try:
            ci[path] = bootstrap_ci(y, prob, path, n=n_boot, seed=seed, class_names=class_names, positive=pos)
        except (ValueError, KeyError):
            continue
    if prob.shape[1] == 2:
        for path in ("sensitivity.binary", "specificity.binary", "precision.binary", "f1.binary"):
            try:
                ci[path] = bootstrap_ci(y, prob, path, n=n_boot, seed=seed, class_names=class_names, positive=pos)
            except (ValueError, KeyError):
                continue
    return {"metrics": m, "intervals": ci}


def _train_config(settings: dict, *, seed: int, device: str, progress: bool):
    """The run's training configuration: the settings' ``train`` block as it is (one set of defaults, TrainConfig's)."""
    from ..engine import TrainConfig

    return TrainConfig.from_protocol(settings["train"], seed=seed, device=device, progress=progress)


def run_experiment(paper: str, experiment_id: str, profile: str = "smoke", *, data_root: str | None = None,
                   device: str = "auto", seed: int = 0, results_dir: str | os.PathLike | None = None,
                   progress: bool = False, on_bad: str = "raise", write: bool = True,
                   overrides: dict | None = None, allow_dirty: bool | None = None) -> dict:
    """Train and evaluate one experiment; write and return its run record.

    The record holds: paper, experiment, profile, dataset (id, fingerprint, counts, whether it
    is the paper's), split (ids per part), seed, settings and their hash, deviations, git
    commit, library versions, device, wall time, history, metrics with 95 % intervals and the
    saved predictions.  A run interrupted mid-way leaves a checkpoint but no complete record, and
    resumes from that checkpoint when called again.

    Provenance: the code is read before training (:func:`leukcore.runs.records.code_state`); a dirty
    tree's diff is stored beside the record.  At the ``paper`` profile a dirty tree is refused
    (:class:`leukcore.runs.records.DirtyTreeError`) unless ``allow_dirty`` (default:
    ``$LEUKCORE_ALLOW_DIRTY``).
    """
    from ..engine import intra_op_threads

    with intra_op_threads(get_profile(profile).threads):
        return _run_experiment(paper, experiment_id, profile, data_root=data_root, device=device, seed=seed,
                               results_dir=results_dir, progress=progress, on_bad=on_bad, write=write,
                               overrides=overrides, allow_dirty=allow_dirty)


def _run_experiment(paper, experiment_id, profile, *, data_root, device, seed, results_dir, progress, on_bad, write,
                    overrides, allow_dirty=None) -> dict:
    prof = get_profile(profile)
    exp = get_experiment(paper, experiment_id)
    t0 = time.perf_counter()
    code = code_state()  # the code that runs, read before training (not after: the tree may change meanwhile)
    check_code(code, prof.name, allow_dirty)
    if exp.route == "aggregate":
        return _run_aggregate(paper, exp, prof, data_root=data_root, device=device, seed=seed,
                              results_dir=results_dir, progress=progress, on_bad=on_bad, write=write,
                              overrides=overrides, code=code, allow_dirty=allow_dirty)
    run = _prepare_run(paper, exp, prof, data_root=data_root, device=device, seed=seed, results_dir=results_dir,
                       on_bad=on_bad, overrides=overrides)
    outs = [_fit_fold(run, k, progress=progress) for k in range(len(run.folds))]
    rec, preds = _pooled_record(run, outs, code=code, wall_time_s=time.perf_counter() - t0)
    if write:
        path = write_record(rec, predictions=preds, root=results_dir)
        rec = read_record(path)  # what the book will read: with its predictions file name and hash
        for last in run.ckpt_root.glob("fold*/last.pt"):  # the run is complete: its resume point is no longer needed
            last.unlink()
    return rec


@dataclass
class _Run:
    """What every fold of one run shares: settings, data, decoded images, split, where checkpoints go."""

    paper: str
    exp: Experiment
    prof: Profile
    seed: int
    settings: dict
    edata: ExperimentData
    table: pd.DataFrame
    task: dict
    class_names: list
    folds: list
    x_all: np.ndarray
    y_all: np.ndarray
    skipped: list
    ckpt_root: Path
    device: str


def _prepare_run(paper, exp, prof, *, data_root, device, seed, results_dir, on_bad, overrides) -> _Run:
    settings = experiment_settings(paper, exp, prof, overrides)
    edata = experiment_data(paper, exp, prof, data_root, seed=seed)
    table = edata.table
    class_names = list(table.attrs.get("classes") or sorted(table["class_name"].unique()))
    folds = experiment_split(paper, exp, table, prof, seed=seed)
    x_all, kept = experiment_images(table, settings, on_bad)
    ckpt_root = record_path(paper, prof.name, exp.id, results_dir).parent / "checkpoints" / run_name(exp.id, seed)
    return _Run(paper, exp, prof, seed, settings, edata, kept, task_spec(read_protocol(paper), exp), class_names,
                folds, x_all, kept["label"].to_numpy(), kept.attrs.get("skipped", []), ckpt_root,
                resolve_device(device))


def _fit_fold(run: _Run, k: int, *, progress: bool) -> dict:
    """Train and evaluate fold ``k`` (seed ``seed + k``); its test predictions, history and model lines."""
    part, table, exp = run.folds[k], run.table, run.exp
    tr, te = _index(table, part["train"]), _index(table, part["test"])
    va = _index(table, part["val"]) if "val" in part else None
    ckpt = run.ckpt_root / f"fold{k}" if run.prof.checkpoints else None
    args = (exp, run.settings, len(run.class_names), run.x_all, run.y_all, tr, va, te)
    kw = dict(seed=run.seed + k, device=run.device, progress=progress, checkpoint_dir=ckpt)
    if exp.route == "cnn":
        prob, hist, params, devs = _run_cnn(*args, table, **kw,
                                            weights_path=run.ckpt_root / "fold0" / FINAL_WEIGHTS if k == 0 else None)
    elif exp.route == "features":
        prob, hist, params, devs = _run_features(*args, **kw)
    elif exp.route == "fusion":
        prob, hist, params, devs = _run_fusion(*args, **kw)
    else:
        raise ValueError(f"unknown route {exp.route!r} in {run.paper}/{exp.id}; valid: cnn, features, fusion, aggregate")
    return {"fold": k, "prob": prob, "y": run.y_all[te], "ids": list(table["id"].to_numpy()[te]), "history": hist,
            "params": params, "model_lines": devs, "sizes": {kk: len(v) for kk, v in part.items()}}


def _pooled_record(run: _Run, outs: list[dict], *, code: dict, wall_time_s: float) -> tuple[dict, pd.DataFrame]:
    """The run record and predictions of the folds in ``outs`` (all of a run's folds: its record)."""
    model_lines = list(dict.fromkeys(d for o in outs for d in o["model_lines"]))
    prob = np.concatenate([o["prob"] for o in outs])
    y = np.concatenate([o["y"] for o in outs])
    ids = [i for o in outs for i in o["ids"]]
    block = _metrics_block(y, prob, run.class_names, run.task.get("positive"), run.prof.bootstrap, run.seed)
    preds = pd.DataFrame({"id": ids, "y_true": y, **{f"p_{c}": prob[:, c] for c in range(prob.shape[1])}})
    if len(run.folds) > 1:  # cross-validated: which fold's model made each prediction (ids repeat under a held-out test)
        preds["fold"] = [o["fold"] for o in outs for _ in o["ids"]]
    rec = {
        "status": "complete", "paper": run.paper, "experiment": run.exp.id, "profile": run.prof.name,
        "seed": run.seed, "spec": run.exp.spec(), "settings": run.settings, "settings_hash": settings_hash(run.settings),
        "dataset": run.edata.describe(), "class_names": run.class_names, "positive": run.task.get("positive"),
        "split": {"folds": [o["sizes"] for o in outs], "test_ids_hash": settings_hash({"ids": sorted(ids)})},
        "skipped": run.skipped,
        "deviations": deviation_lines(run.paper, run.exp, run.settings, seed=run.seed, model_lines=model_lines,
                                      n_folds=len(run.folds)),
        "params_trainable": outs[-1]["params"], "history": [o["history"] for o in outs],
        "commit": git_commit(state=code), "versions": library_versions(),
        "device": device_description(str(run.device)), "threads": _torch_threads(),
        "wall_time_s": round(wall_time_s, 2), **block,
    }
    rec["code"], rec["_diff"] = code_block(code)
    return rec, preds


# --------------------------------------------------------------------------------------------
# One fold at a time (a lent GPU grows a cross-validated experiment fold by fold)
# --------------------------------------------------------------------------------------------


def n_folds(paper: str, experiment_id: str, profile: str) -> int:
    """Folds the experiment runs at ``profile`` (1 for a fixed split): what :func:`experiment_split` gives."""
    split, exp = read_protocol(paper)["split"], get_experiment(paper, experiment_id)
    if split["kind"] == "kfold":
        k = int(split["k"])
    elif split["kind"] == "fractions" and split.get("cv") and exp.route in split["cv"].get("routes", ["cnn"]):
        k = int(split["cv"]["k"])
    else:
        return 1
    cap = get_profile(profile).max_folds
    return min(k, cap) if cap else k


def fold_record_path(paper: str, profile: str, experiment_id: str, k: int, root=None, seed: int = 0) -> Path:
    """``<results>/<paper>/<profile>/folds/<run>.fold<k>.json`` (below where :func:`load_records` looks)."""
    return (record_path(paper, profile, experiment_id, root).parent / "folds"
            / f"{run_name(experiment_id, seed)}.fold{int(k)}.json")


def run_fold(paper: str, experiment_id: str, profile: str, k: int, *, data_root=None, device: str = "auto",
             seed: int = 0, results_dir=None, progress: bool = False, overrides: dict | None = None,
             allow_dirty: bool | None = None) -> dict:
    """Train and evaluate fold ``k`` of a cross-validated experiment; write and return its fold record.

    The fold is exactly the one :func:`run_experiment` trains (split, seed ``seed + k``,
    checkpoints, fold 0's final weights), so :func:`pool_folds` over all folds gives its record.
    """
    from ..engine import intra_op_threads

    prof, exp = get_profile(profile), get_experiment(paper, experiment_id)
    total = n_folds(paper, experiment_id, profile)
    if exp.route == "aggregate" or not 0 <= k < total:
        raise ValueError(f"fold {k} of {paper}/{experiment_id}: valid 0..{total - 1} at profile {profile}")
    t0 = time.perf_counter()
    code = code_state()
    check_code(code, prof.name, allow_dirty)
    with intra_op_threads(prof.threads):
        run = _prepare_run(paper, exp, prof, data_root=data_root, device=device, seed=seed, results_dir=results_dir,
                           on_bad="raise", overrides=overrides)
        out = _fit_fold(run, k, progress=progress)
        rec, preds = _pooled_record(run, [out], code=code, wall_time_s=time.perf_counter() - t0)
    rec.update(fold=int(k), n_folds=int(total))
    if total > 1:
        preds["fold"] = k
    path = write_record(rec, predictions=preds, path=fold_record_path(paper, profile, experiment_id, k, results_dir, seed))
    (run.ckpt_root / f"fold{k}" / "last.pt").unlink(missing_ok=True)
    return read_record(path)


def find_fold_record(paper: str, experiment_id: str, profile: str, k: int, *, seed: int = 0, results_dir=None,
                     data_root=None, overrides=None) -> dict | None:
    """The complete fold record with the current key (settings hash, dataset fingerprint, seed), else None."""
    from .records import read_complete

    rec = read_complete(fold_record_path(paper, profile, experiment_id, k, results_dir, seed), seed)
    if rec is None or rec.get("skipped"):
        return None
    exp, prof = get_experiment(paper, experiment_id), get_profile(profile)
    if rec.get("settings_hash") != settings_hash(experiment_settings(paper, exp, prof, overrides)):
        return None
    if rec["dataset"]["fingerprint"] != D.fingerprint(experiment_data(paper, exp, prof, data_root, seed=seed).table):
        return None
    return rec


def pool_folds(paper: str, experiment_id: str, profile: str, *, seed: int = 0, results_dir=None, data_root=None,
               overrides: dict | None = None) -> dict | None:
    """The record of a cross-validated experiment pooled from its fold records.

    All folds done: the record :func:`run_experiment` writes (same key, predictions in fold order,
    metrics on the pooled predictions) at the usual path. Some: a ``status: "partial"`` record
    with ``folds_done`` at ``folds/<run>.partial.json``, which the book never reads as a result.
    None when no fold is done.
    """
    total = n_folds(paper, experiment_id, profile)
    done = [r for r in (find_fold_record(paper, experiment_id, profile, k, seed=seed, results_dir=results_dir,
                                         data_root=data_root, overrides=overrides) for k in range(total)) if r]
    if not done:
        return None
    preds = pd.concat([read_predictions(r) for r in done], ignore_index=True)
    y = preds["y_true"].to_numpy()
    prob = preds[[c for c in preds.columns if c.startswith("p_")]].to_numpy()
    first = done[0]
    block = _metrics_block(y, prob, first["class_names"], first.get("positive"), get_profile(profile).bootstrap, seed)
    rec = {k: v for k, v in first.items() if k not in ("fold", "n_folds", "_path", "predictions", "predictions_sha256",
                                                        "written_at", "metrics", "intervals")}
    rec.update(status="complete" if len(done) == total else "partial",
               split={"folds": [f for r in done for f in r["split"]["folds"]],
                      "test_ids_hash": settings_hash({"ids": sorted(preds["id"])})},
               deviations=list(dict.fromkeys(d for r in done for d in r.get("deviations", []))),
               history=[h for r in done for h in r["history"]], params_trainable=done[-1].get("params_trainable"),
               wall_time_s=round(sum(r["wall_time_s"] for r in done), 2), pooled_from_folds=[r["fold"] for r in done],
               **block)
    if len({r.get("commit") for r in done}) > 1:
        rec["fold_commits"] = {str(r["fold"]): r.get("commit") for r in done}
    partial = fold_record_path(paper, profile, experiment_id, 0, results_dir, seed).with_name(
        f"{run_name(experiment_id, seed)}.partial.json")
    if rec["status"] == "complete":
        out = read_record(write_record(rec, predictions=preds, root=results_dir))
        for stale in partial.parent.glob(f"{partial.stem}.*"):
            stale.unlink(missing_ok=True)
        return out
    rec["folds_done"] = len(done)
    return read_record(write_record(rec, predictions=preds, path=partial))


def _torch_threads() -> int:
    """torch's intra-op thread count now (recorded with each run: it changes the wall time)."""
    import torch

    return torch.get_num_threads()


def final_weights_path(rec: dict) -> Path:
    """Where a CNN record's trained weights are kept (fold 0; beside the record, not committed)."""
    return (Path(rec["_path"]).parent / "checkpoints" / run_name(rec["experiment"], rec.get("seed") or 0) / "fold0"
            / FINAL_WEIGHTS)


def resolve_device(device: str) -> str:
    if device == "auto":
        try:
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            return "cpu"
    return device


def new_model(name: str, n_classes: int, settings: dict, **kw):
    """Build a model for the run; models whose head depends on the input (ALNet's flatten) get its size."""
    import inspect

    from .. import models
    from ..models import create_model

    ctor = getattr(models, name, None)
    if ctor is not None and "input_size" in inspect.signature(ctor).parameters:
        kw.setdefault("input_size", settings["image_size"])
    pretrained = "if-available" if settings["pretrained"] else False
    model = create_model(name, num_classes=n_classes, pretrained=pretrained, **kw)
    devs = list(getattr(model, "leukcore_deviations", []) or [])
    return model, devs


def _n_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


#: Final weights of a CNN's first fold (kept for Grad-CAM when the model is small enough).
FINAL_WEIGHTS = "final.pt"
MAX_SAVED_PARAMS = 30_000_000


def _run_cnn(exp, settings, n_classes, x, y, tr, va, te, table, *, seed, device, progress, checkpoint_dir,
             weights_path=None):
    import torch

    from ..engine import fit

    torch.manual_seed(seed)
    model, devs = new_model(exp.model, n_classes, settings, **settings["model_kw"])
    cfg = _train_config(settings, seed=seed, device=device, progress=progress)
    res = fit(model, (x[tr], y[tr]), (x[va], y[va]) if va is not None and len(va) else None,
              (x[te], y[te], list(table["id"].to_numpy()[te])), config=cfg, checkpoint_dir=checkpoint_dir,
              resume=checkpoint_dir is not None)
    n = _n_params(model)
    if weights_path is not None and sum(p.numel() for p in model.parameters()) <= MAX_SAVED_PARAMS:
        from ..engine import save_atomic

        save_atomic({k: v.detach().cpu() for k, v in model.state_dict().items()}, Path(weights_path))
    return res.test_prob, res.history, n, devs


def _run_features(exp, settings, n_classes, x, y, tr, va, te, *, seed, device, progress, checkpoint_dir):
    """LoGMH's feature route: a backbone (trained on the training part when no ImageNet weights) -> features -> classifier."""
    import torch

    from ..engine import extract_features, make_classifier
    from ..engine import fit

    torch.manual_seed(seed)
    backbone, devs = new_model(exp.backbone, n_classes, settings)
    if any("from scratch" in d for d in devs):
        # Random-weight features would be meaningless: train the backbone on the training part first.
        cfg = _train_config(settings, seed=seed, device=device, progress=progress)
        fit(backbone, (x[tr], y[tr]), (x[va], y[va]) if va is not None and len(va) else None, None,
            config=cfg, checkpoint_dir=checkpoint_dir, resume=checkpoint_dir is not None)
        devs = devs + [f"{exp.backbone} feature extractor trained on the training split (no ImageNet weights)"]
    f_tr = extract_features(backbone, x[tr], device=device)
    f_te = extract_features(backbone, x[te], device=device)
    clf = make_classifier(exp.classifier, seed=seed)
    clf.fit(f_tr, y[tr])
    prob = _full_proba(clf, f_te, n_classes)
    return prob, [], None, devs


def _full_proba(clf, f, n_classes: int) -> np.ndarray:
    p = clf.predict_proba(f)
    classes = getattr(clf, "classes_", np.arange(p.shape[1]))
    out = np.zeros((len(f), n_classes))
    out[:, np.asarray(classes, dtype=int)] = p
    return out


def _run_fusion(exp, settings, n_classes, x, y, tr, va, te, *, seed, device, progress, checkpoint_dir):
    """XIncept: train the fusion head, then a boosted-tree classifier on the fused features."""
    import torch

    from ..engine import extract_features, make_classifier
    from ..engine import fit

    torch.manual_seed(seed)
    model, devs = new_model(exp.model, n_classes, settings)
    cfg = _train_config(settings, seed=seed, device=device, progress=progress)
    res = fit(model, (x[tr], y[tr]), (x[va], y[va]) if va is not None and len(va) else None, None,
              config=cfg, checkpoint_dir=checkpoint_dir, resume=checkpoint_dir is not None)
    f_tr = extract_features(model, x[tr], device=device)
    f_te = extract_features(model, x[te], device=device)
    clf = make_classifier(exp.classifier or "xgboost", seed=seed)
    clf.fit(f_tr, y[tr])
    return _full_proba(clf, f_te, n_classes), res.history, _n_params(model), devs


def aggregate_fingerprint(fingerprints) -> str:
    """The data fingerprint of a record pooling others: the settings hash of their sorted fingerprints."""
    return settings_hash({"fps": sorted(fingerprints)})


def _run_aggregate(paper, exp, prof, *, data_root, device, seed, results_dir, progress, on_bad, write, overrides,
                   code=None, allow_dirty=None):
    """Pool the test predictions of other experiments (ALNet's three folds) into one record.

    ``code``: the code state read before its parts ran (read now when absent)."""
    t0 = time.perf_counter()
    code = code if code is not None else code_state()
    parts = [get_or_run(paper, e, prof.name, data_root=data_root, device=device, seed=seed,
                        results_dir=results_dir, progress=progress, on_bad=on_bad, overrides=overrides,
                        allow_dirty=allow_dirty)
             for e in exp.of]
    preds = pd.concat([read_predictions(r) for r in parts], ignore_index=True)
    y = preds["y_true"].to_numpy()
    prob = preds[[c for c in preds.columns if c.startswith("p_")]].to_numpy()
    first = parts[0]
    block = _metrics_block(y, prob, first["class_names"], first.get("positive"), prof.bootstrap, seed)
    settings = {"aggregate_of": {r["experiment"]: r["settings_hash"] for r in parts}, "profile": prof.settings()}
    ds = dict(first["dataset"])
    ds["fingerprint"] = aggregate_fingerprint(r["dataset"]["fingerprint"] for r in parts)
    rec = {"status": "complete", "paper": paper, "experiment": exp.id, "profile": prof.name, "seed": seed,
           "spec": exp.spec(), "settings": settings, "settings_hash": settings_hash(settings), "dataset": ds,
           "class_names": first["class_names"], "positive": first.get("positive"),
           "split": {"pooled_from": list(exp.of)}, "skipped": sum((r.get("skipped", []) for r in parts), []),
           "deviations": list(dict.fromkeys(d for r in parts for d in r.get("deviations", []))),
           "params_trainable": first.get("params_trainable"),
           "history": [], "commit": git_commit(state=code), "versions": library_versions(),
           "device": first.get("device"),
           "wall_time_s": round(sum(r["wall_time_s"] for r in parts) + time.perf_counter() - t0, 2), **block}
    rec["code"], rec["_diff"] = code_block(code)
    if write:
        rec = read_record(write_record(rec, predictions=preds, root=results_dir))
    return rec


# --------------------------------------------------------------------------------------------
# Records: reuse before rerun
# --------------------------------------------------------------------------------------------


def find_record(paper: str, experiment_id: str, profile: str, *, results_dir=None, seed: int = 0,
                data_root: str | None = None, overrides: dict | None = None, on_bad: str = "raise") -> dict | None:
    """The existing complete record with the same key (paper, experiment, profile, data, seed, settings).

    A record that left bad files out (non-empty ``skipped``) is reused only under
    ``on_bad="skip"``: with the default ``"raise"`` the experiment reruns and stops at the bad file.
    """
    prof = get_profile(profile)
    exp = get_experiment(paper, experiment_id)
    from .records import read_complete

    rec = read_complete(record_path(paper, profile, experiment_id, results_dir, seed), seed)
    if rec is None:
        return None
    if rec.get("skipped") and on_bad != "skip":
        return None
    if exp.route == "aggregate":
        parts = [find_record(paper, e, profile, results_dir=results_dir, seed=seed, data_root=data_root,
                             overrides=overrides, on_bad=on_bad) for e in exp.of]
        if any(p is None for p in parts):
            return None
        return rec if rec["settings"].get("aggregate_of") == {p["experiment"]: p["settings_hash"] for p in parts} else None
    if rec.get("settings_hash") != settings_hash(experiment_settings(paper, exp, prof, overrides)):
        return None
    edata = experiment_data(paper, exp, prof, data_root, seed=seed)
    if rec["dataset"]["fingerprint"] != D.fingerprint(edata.table):
        return None
    return rec


def get_or_run(paper: str, experiment_id: str, profile: str = "smoke", *, force: bool = False, **kw) -> dict:
    """An existing complete record with the same key, else :func:`run_experiment`; ``force`` retrains."""
    if not force:
        rec = find_record(paper, experiment_id, profile, results_dir=kw.get("results_dir"), seed=kw.get("seed", 0),
                          data_root=kw.get("data_root"), overrides=kw.get("overrides"),
                          on_bad=kw.get("on_bad", "raise"))
        if rec is not None:
            return rec
    return run_experiment(paper, experiment_id, profile, **kw)


def run_paper(paper: str, profile: str = "smoke", *, data_root=None, device: str = "auto", seed: int = 0,
              results_dir=None, force: bool = False, progress: bool = True, overrides: dict | None = None,
              train_missing: bool = True, seeds: list[int] | None = None) -> list[dict]:
    """Every experiment of one paper, reusing complete records (what a notebook calls).

    ``seeds`` (e.g. ``[0, 1, 2]``): every experiment once per seed, each recorded on its own;
    the records of all seeds are returned (default: ``seed`` alone).

    ``train_missing=False`` only collects existing records: an experiment without one is left
    out (and shows as *not run* in the claims table) instead of being trained.
    """
    if seeds is not None:
        return [r for k in seeds for r in run_paper(paper, profile, data_root=data_root, device=device, seed=int(k),
                                                    results_dir=results_dir, force=force, progress=progress,
                                                    overrides=overrides, train_missing=train_missing)]
    out = []
    for e in list_experiments(paper, profile):
        if not train_missing and not force:
            rec = find_record(paper, e.id, profile, results_dir=results_dir, seed=seed, data_root=data_root,
                              overrides=overrides)
            if rec is not None:
                out.append(rec)
            continue
        out.append(get_or_run(paper, e.id, profile, force=force, data_root=data_root, device=device, seed=seed,
                              results_dir=results_dir, progress=progress, overrides=overrides))
    return out
