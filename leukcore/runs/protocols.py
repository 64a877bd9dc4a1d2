"""Protocol files -> experiments and their settings.

A paper's protocol (``leukcore/protocols/<paper>.yaml``) is data: dataset, split rule, image size,
training recipe, the experiments (listed, or a ``grid`` that expands to them), the deviations we
had to make (templates, :mod:`leukcore.runs.deviations`), and ``sources``, where each setting comes
from (``stated`` by the paper, with where and a quote, or ``chosen`` by us, with why;
:func:`check_sources`; not hashed). :func:`list_experiments` expands it; :func:`experiment_settings`
gives everything that defines what one experiment computes at a profile (hashed into its record's
key); :func:`protocol_folds` and :func:`n_folds` say how many folds it trains.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from .profiles import Profile, get_profile
from .routes import DEFAULT_ROUTE, get_route

PROTOCOL_DIR = Path(__file__).resolve().parents[1] / "protocols"
#: train keys a protocol may leave to their defaults (TrainConfig's) and still annotate
TRAIN_DEFAULT_KEYS = ("optimizer", "lr", "loss", "augment", "l2")


def list_papers() -> list[str]:
    """Paper ids that have a protocol file."""
    return sorted(p.stem for p in PROTOCOL_DIR.glob("*.yaml"))


@lru_cache(maxsize=None)
def read_protocol(paper: str) -> dict:
    """The protocol of ``paper``, checked (its train keys, its sources); cached: do not modify it
    (:func:`load_protocol` gives a copy)."""
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


def load_protocol(paper: str) -> dict:
    """The protocol of ``paper`` as a dict (a copy: callers may modify it)."""
    return copy.deepcopy(read_protocol(paper))


@dataclass
class Experiment:
    """One unit of work: a model (or classifier) trained and evaluated once under a protocol."""

    paper: str
    id: str
    model: str | None
    route: str = DEFAULT_ROUTE             #: a name of :mod:`leukcore.runs.routes` (cnn | features | fusion | aggregate)
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

    @classmethod
    def from_spec(cls, paper: str, spec: dict) -> "Experiment":
        """An experiment listed in a protocol's ``experiments`` block (its route checked)."""
        spec = dict(spec)
        exp = cls(paper=paper, id=spec.pop("id"), model=spec.pop("model", None), **spec)
        get_route(exp.route)
        return exp

    def spec(self) -> dict:
        """The experiment as plain data (stored in its record, hashed into its key)."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, [], {})}


# --------------------------------------------------------------------------------------------
# Where each setting comes from
# --------------------------------------------------------------------------------------------


def _models_of(doc: dict) -> tuple[set, set, dict]:
    """(models and classifiers, fusion classifiers, {model: model_kw keys}) named by a protocol."""
    models, classifiers, kws = set(), set(), {}
    for spec in doc.get("experiments", []):
        exp = Experiment.from_spec(doc.get("paper", ""), spec)
        route = get_route(exp.route)
        if not route.trains:
            continue
        if exp.model:
            models.add(exp.model)
            kws.setdefault(exp.model, set()).update(exp.model_kw)
        if route.classifier(exp):
            classifiers.add(route.classifier(exp))
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
    ``models.<m>`` for each model or classifier, ``classifiers.<c>`` for the classifier a listed
    experiment's route fits on top, ``model_kw.<m>.<k>`` for each model option set, and
    ``grid.<k>`` for each grid dimension other than model / classifier. Also allowed: the defaults
    a protocol relies on (``train.augment`` ...), ``model_kw.<m>`` and ``pretrained.<m>`` for a
    model set false.
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


# --------------------------------------------------------------------------------------------
# Experiments
# --------------------------------------------------------------------------------------------


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
        feats = _expand_grid(paper, proto["feature_grid"], {"route": "features"})
        for e in feats:
            e.model = f"{e.backbone}+{e.classifier}"
        exps += feats
    exps += [Experiment.from_spec(paper, spec) for spec in proto.get("experiments", [])]
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

    network = get_route(exp.route).network(exp)
    model_min = min_input_size(network) if exp.model else 0
    size = max(size, int(proto.get("min_image_size", 0)), int(exp.min_image_size or 0), profile.min_image_size,
               model_min)
    model_kw = {**exp.model_kw, **overrides.get("models", {}).get(exp.model or "", {})}
    out = {"experiment": exp.spec(), "train": train, "image_size": int(size), "model_kw": model_kw,
           "preprocess": proto.get("preprocess"), "center_crop": bool(proto.get("center_crop", False)),
           "split": proto["split"], "pretrained": bool(proto.get("pretrained", {}).get(network or "", False)),
           "profile": profile.settings()}
    if out["preprocess"] == "logmh":
        from ..filters import LOGMH_DEFAULTS

        out["logmh"] = {**LOGMH_DEFAULTS, **overrides.get("logmh", {})}
    return out


# --------------------------------------------------------------------------------------------
# Folds
# --------------------------------------------------------------------------------------------


def protocol_folds(split: dict, exp: Experiment) -> int | None:
    """The folds of the protocol's cross-validation that ``exp`` runs: ``k`` of a ``kfold`` split,
    or of a ``fractions`` split's ``cv`` block for the routes it names (default ``cnn``); None for a
    fixed split (one training)."""
    if split.get("kind") == "kfold":
        return int(split["k"])
    cv = split.get("cv")
    if cv and exp.route in cv.get("routes", ["cnn"]):
        return int(cv["k"])
    return None


def trainings(paper: str, exp: Experiment, profile: Profile) -> int:
    """Trainings one experiment runs at ``profile``: its folds, capped at the profile's
    ``max_folds`` (1 for a fixed split; 0 for a route that trains nothing)."""
    if not get_route(exp.route).trains:
        return 0
    k = protocol_folds(read_protocol(paper)["split"], exp)
    if k is None:
        return 1
    return min(k, profile.max_folds) if profile.max_folds else k


def n_folds(paper: str, experiment_id: str, profile: str) -> int:
    """Folds the experiment runs at ``profile`` (1 for a fixed split): what
    :func:`leukcore.runs.inputs.experiment_split` gives."""
    return max(trainings(paper, get_experiment(paper, experiment_id), get_profile(profile)), 1)
