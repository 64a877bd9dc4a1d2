"""What the arms of the seeded audits share: the record path of an arm and seed, the Taleqani
context (split, images, stain target) built once per seed, the audit CNN, and one evaluation block.
Each audit module registers its arm function here (:func:`register_arms`)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import data as D
from ..runs.profiles import Profile
from ..runs.records import results_dir as results_root
from .stats import to_bits
from .base import class_names_of, row_index, taleqani_data, ARMS, CHOICES_MODELS, PAPER, SEEDED_AUDITS, wilson_interval
from .training import trained_model


#: The contrasts of each seeded audit: ``(effect, measure a, measure b, what a - b isolates)``.
EFFECTS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "shortcut_cnn": (
        ("grey", "grey", "original", "what colour adds (trained and tested without it)"),
        ("reinhard", "reinhard", "original", "what the stain differences between images add"),
        ("mask_scale_bar", "mask_scale_bar", "original", "the scale-bar corner and any masked corner together"),
        ("mask_control", "mask_control", "original", "any masked corner (the control: no scale bar there)"),
        ("scale_bar", "mask_scale_bar", "mask_control", "the scale bar itself (the mask's own effect removed)"),
        ("test_grey", "original@grey", "original", "the original model on grey test images"),
        ("test_reinhard", "original@reinhard", "original", "the original model on stain-normalised test images"),
        ("test_mask_scale_bar", "original@mask_scale_bar", "original", "the original model, scale bar masked"),
        ("test_mask_control", "original@mask_control", "original", "the original model, control corner masked"),
        ("test_scale_bar", "original@mask_scale_bar", "original@mask_control",
         "the scale bar itself, at test time only"),
    ),
    "segmented": (
        ("segmented", "segmented", "original", "what the background adds (trained and tested without it)"),
        ("test_segmented", "original@segmented", "original", "the original model on background-free test images"),
        ("colour_hist", "colour_hist_segmented", "colour_hist_original",
         "what the background adds to the colour histogram"),
        ("cnn_over_colour", "segmented", "colour_hist_segmented",
         "what the CNN reads beyond colour once the background is gone"),
    ),
    "acquisition_groups": (
        ("group_disjoint", "group_disjoint", "random", "keeping acquisition groups on one side of the split"),
    ),
    "leakage_duplicates": (
        ("random", "random", "duplicate_aware", "letting byte-identical pairs straddle the split"),
    ),
    "leakage_augment": (
        ("leak_own_test", "augment_then_split", "split_then_augment",
         "the construction, each arm scored on its own test set (what a paper would report)"),
        ("leak_unseen", "augment_then_split@unseen", "split_then_augment@unseen",
         "the construction, both arms scored on originals neither saw"),
        ("own_minus_unseen", "augment_then_split", "augment_then_split@unseen",
         "how far augment-then-split's own test overstates its accuracy on unseen originals"),
        ("clean_own_minus_unseen", "split_then_augment", "split_then_augment@unseen",
         "how an augmented test set of unseen originals compares with the unseen originals themselves"),
    ),
    "external_pbc": (),
    "scale_bar_alone": (
        ("pixels", "pixels_bar", "pixels_control", "the scale-bar corner's pixels over the opposite corner's, in colour"),
        ("pixels_grey", "pixels_bar_grey", "pixels_control_grey",
         "the same in grey: the mark's shape and brightness without its colour"),
        ("cnn", "cnn_bar", "cnn_control", "the scale-bar corner over the opposite corner, the audit CNN, in colour"),
        ("cnn_grey", "cnn_bar_grey", "cnn_control_grey", "the same in grey"),
    ),
    "background_alone": (
        ("cells_minus_background", "cells", "background", "what the cells' colour tells beyond the field's"),
        ("whole_minus_background", "whole", "background", "what the whole image's colour tells beyond the field's"),
        ("whole_minus_cells", "whole", "cells", "what the whole image's colour tells beyond the cells'"),
    ),
    "attribution": (
        ("audit_cnn", "audit_cnn@bar", "audit_cnn@control",
         "the audit CNN's Grad-CAM share in the scale-bar corner over its share in the control corner"),
    ),
    "segmented_artefacts": (
        ("segmented", "segmented", "original", "what the background adds, nearly-empty copies left out"),
        ("test_segmented", "original@segmented", "original", "the original model on background-free test images, "
                                                              "nearly-empty copies left out"),
        ("colour_hist", "colour_hist_segmented", "colour_hist_original",
         "what the background adds to the colour histogram, nearly-empty copies left out"),
        ("cnn_over_colour", "segmented", "colour_hist_segmented",
         "what the CNN reads beyond colour once the background is gone, nearly-empty copies left out"),
    ),
    "choices": tuple(
        [(f"{m}_none_vs_keras", f"{m}_none", f"{m}_keras", f"{m}: no L2 term against lambda as leukcore applies it")
         for m in CHOICES_MODELS]
        + [(f"{m}_matlab_vs_keras", f"{m}_matlab", f"{m}_keras", f"{m}: MATLAB's reading of lambda against ours")
           for m in CHOICES_MODELS]
        + [("filter_keras", "dscnet_keras", "dscnet_nofilter_keras", "DSCNet's sharpening filter, lambda as now"),
           ("filter_none", "dscnet_none", "dscnet_nofilter_none", "DSCNet's sharpening filter, no L2 term")]),
}


#: What a seeded audit's measures are (the accuracy unless named here), for its tables and figures.
MEASURE_NAMES = {"attribution": "Grad-CAM share of the box"}


#: An OOD AUROC (maximum softmax, Taleqani test vs PBC) from which a model is said to tell the PBC
#: images apart from its own test images: the usual threshold of "acceptable" discrimination.
OOD_AUROC_SEPARATES = 0.7


#: Per-model numbers of ``external_pbc`` pooled over seeds.
EXTERNAL_METRICS = ("benign_fraction", "mean_confidence_pbc", "mean_confidence_taleqani", "ood_auroc",
                    "taleqani_benign_recall", "taleqani_accuracy")


CONTEXTS: dict[tuple, dict] = {}


SIGNATURES: dict[str, pd.DataFrame] = {}


def arm_record_path(audit_id: str, arm: str, profile: str, seed: int, results_dir=None) -> Path:
    """Where one arm's record for one seed lives: ``<results>/audits/<profile>/<audit>/<arm>.seed<k>.json``."""
    return results_root(results_dir) / PAPER / profile / audit_id / f"{arm}.seed{int(seed)}.json"


def check_arm(audit_id: str, arm: str) -> None:
    if audit_id not in SEEDED_AUDITS:
        raise ValueError(f"{audit_id!r} is not a seeded audit; seeded: {', '.join(SEEDED_AUDITS)}")
    if arm not in ARMS[audit_id]:
        raise ValueError(f"unknown arm {arm!r} of {audit_id}; valid: {', '.join(ARMS[audit_id])}")


def evaluation_block(y: np.ndarray, prob: np.ndarray, names: list[str], index=None) -> dict:
    """One model on one test set: accuracy (Wilson interval), macro F1, recall per class, the
    confusion matrix, per-image correctness and the test images' positions."""
    import warnings

    from ..metrics import compute_metrics, metric_at

    pred = prob.argmax(1) if len(prob) else np.zeros(0, int)
    ok = pred == np.asarray(y)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = compute_metrics(y, prob, class_names=names) if len(y) else None
    return {"accuracy": wilson_interval(int(ok.sum()), int(len(ok))), "n": int(len(ok)),
            "f1_macro": float(metric_at(m, "f1.macro")) if m else math.nan,
            "recall_per_class": m["sensitivity"]["per_class"] if m else {},
            "confusion_matrix": m["confusion_matrix"] if m else [],
            "correct": to_bits(ok), "test_index": None if index is None else [int(i) for i in index]}


def measured(ev: dict) -> dict:
    return {"accuracy": ev["accuracy"]["point"], "n": ev["n"], "correct": ev["correct"], "test_index": ev["test_index"]}


def training_block(info: dict, cached: bool) -> dict:
    return {**{k: v for k, v in info.items()}, "from_cache": bool(cached)}


def taleqani_context(audit_id: str, prof: Profile, st: dict, data_root, seed: int, device: str,
                      prefer_duplicates: bool = False) -> dict:
    """The Taleqani originals at the working size, split 80/20 (duplicate-aware, seeded); cached per process."""
    key = ("taleqani", prof.name, str(data_root), int(seed), bool(prefer_duplicates), st["image_size"])
    if key in CONTEXTS:
        return CONTEXTS[key]
    from ..filters import reinhard_target

    data = taleqani_data(prof, data_root, seed, prefer_duplicates=prefer_duplicates)
    x, table = D.load_images(data.table, st["image_size"])
    data.table = table
    y = table["label"].to_numpy()
    split = D.split_fractions(table, st["split"]["fractions"], seed=seed, group_by="duplicates")
    tr, te = row_index(table, split["train"]), row_index(table, split["test"])
    ctx = {"data": data, "x": x, "table": table, "y": y, "names": class_names_of(table), "split": split, "tr": tr,
           "te": te, "target": reinhard_target(x[tr])}
    CONTEXTS.clear() if len(CONTEXTS) > 4 else None
    CONTEXTS[key] = ctx
    return ctx


def train_audit_cnn(st: dict, ctx: dict, x_train: np.ndarray, y_train: np.ndarray, seed: int, device: str, progress: bool):
    return trained_model(st, len(ctx["names"]), x_train, y_train, seed=seed, device=device, progress=progress)


#: audit id -> its arm function ``(arm, profile, settings, data_root, seed, device, progress) ->
#: (results, dataset)``; each audit module registers its own (:func:`register_arms`)
ARM_FUNCTIONS: dict[str, Callable[..., tuple[dict, dict]]] = {}


def register_arms(audit_id: str):
    """Decorator: ``fn`` computes the arms of ``audit_id`` (see :data:`ARM_FUNCTIONS`)."""
    def add(fn):
        ARM_FUNCTIONS[audit_id] = fn
        return fn
    return add


#: audit id -> ``(by_seed, seeds, results) -> dict``: the numbers of its own that an audit's summary adds to the
#: generic ones (``by_seed``: ``{seed: {arm: record}}``; ``results``: the summary's ``arms``, ``effects`` ...);
#: registered by the audit module (:func:`register_summary`), beside its arms.
SUMMARY_EXTRAS: dict[str, Callable[..., dict]] = {}


#: audit id -> ``(results) -> str``: the summary's one-line headline (:func:`register_headline`).
HEADLINES: dict[str, Callable[[dict], str]] = {}


def register_summary(audit_id: str):
    """Decorator: ``fn`` adds ``audit_id``'s own numbers to its summary (see :data:`SUMMARY_EXTRAS`)."""
    def add(fn):
        SUMMARY_EXTRAS[audit_id] = fn
        return fn
    return add


def register_headline(audit_id: str):
    """Decorator: ``fn`` writes ``audit_id``'s headline from its summary's results (see :data:`HEADLINES`)."""
    def add(fn):
        HEADLINES[audit_id] = fn
        return fn
    return add


def seeds_text(results: dict) -> str:
    """``3 seeds`` (``1 seed``) for a headline; ``3 seeds; 2 for a, b`` when some measures have fewer."""
    per = {name: len(a.get("seeds") or results["seeds"]) for name, a in results.get("arms", {}).items()}
    k = max(per.values(), default=len(results["seeds"]))
    fewer: dict[int, list[str]] = {}
    for name, n in per.items():
        if n < k:
            fewer.setdefault(n, []).append(name)
    text = f"{k} seed{'s' if k != 1 else ''}"
    if fewer:
        text += "".join(f"; {n} for {', '.join(names)}" for n, names in sorted(fewer.items()))
    return text


def pp_text(d: dict) -> str:
    """A paired difference over seeds for a headline: ``-2.1 pp [-3.9, -0.4]`` (the mean alone from one seed)."""
    if not d or d.get("mean") is None:
        return "—"

    def f(v: float) -> str:
        x = round(100 * v, 1)
        return f"{x if x != 0 else 0.0:+.1f}"

    return f"{f(d['mean'])} pp" + (f" [{f(d['low'])}, {f(d['high'])}]" if d.get("low") is not None else "")


def pc_text(d: dict) -> str:
    """A mean over seeds for a headline: ``98.9 % [98.7, 99.1]``."""
    if not d or d.get("mean") is None:
        return "—"
    return f"{100 * d['mean']:.1f} %" + (f" [{100 * d['low']:.1f}, {100 * d['high']:.1f}]" if d.get("low") is not None else "")

