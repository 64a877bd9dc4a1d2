"""Colour alone: colour histograms and channel statistics with a logistic regression, no shape."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import data as D
from .base import (
    audit_profile,
    audit_record,
    audit_settings,
    class_names_of,
    metric_block,
    resolve_audit_device,
    result_row,
    row_index,
    taleqani_data,
    write_audit_record,
)
from .inputs import colour_classifier, full_proba, colour_features


def shortcut_colour(profile: str = "smoke", data_root=None, seed: int = 0, results_dir=None, device: str = "auto",
                    *, progress: bool = False, write: bool = True) -> dict:
    """Colour-histogram and colour-moment logistic regressions on taleqani-all (Original), 5-fold.

    Features (:func:`colour_features`) of the images at the profile's size; a standardised
    multinomial logistic regression (``C = 1``); stratified 5-fold cross-validation that keeps
    byte-identical images in one fold (``split_kfold(..., group_by="duplicates")``, seeded);
    the out-of-fold probabilities of all folds are pooled and scored: accuracy and macro F1
    with a percentile bootstrap interval over the pooled predictions. The majority-class rate
    is given for reference.
    """
    prof = audit_profile(profile)
    st = audit_settings("shortcut_colour", profile)
    t0 = time.perf_counter()
    data = taleqani_data(prof, data_root, seed)
    table = data.table
    names = class_names_of(table)
    x, table = D.load_images(table, st["image_size"])
    y = table["label"].to_numpy()
    k = min(st["cv"]["k"], int(table.groupby("label")["sha256"].nunique().min()))
    folds = D.split_kfold(table, k, seed=seed, group_by="duplicates")
    feats = {"hist": colour_features(x, "hist", st["features"]["hist"]["bins"]), "moments": colour_features(x, "moments")}
    results: dict[str, Any] = {"folds": k}
    rows = []
    for kind, f in feats.items():
        prob = np.zeros((len(y), len(names)))
        for part in folds:
            tr, te = row_index(table, part["train"]), row_index(table, part["test"])
            clf = colour_classifier(st, seed).fit(f[tr], y[tr])
            prob[te] = full_proba(clf, f[te], len(names))
        block = metric_block(y, prob, names, st["bootstrap"], seed)
        block["n_features"] = int(f.shape[1])
        results[kind] = block
        label = f"colour histogram ({f.shape[1]} features) + LR" if kind == "hist" else "colour mean + std (6) + LR"
        rows.append(result_row(label, "accuracy", block["accuracy"], block["n"]))
        rows.append(result_row(label, "F1 macro", block["f1_macro"], block["n"]))
    counts = np.bincount(y, minlength=len(names))
    results["majority_rate"] = float(counts.max() / counts.sum())
    results["chance_rate"] = 1.0 / len(names)
    rows.append({"arm": f"majority class ({names[int(counts.argmax())]})", "metric": "accuracy",
                 "point": results["majority_rate"], "low": None, "high": None, "n": int(counts.sum()), "note": "reference"})
    acc = results["hist"]["accuracy"]
    headline = (f"A colour histogram alone classifies {acc['point']:.1%} [{acc['low']:.1%}, {acc['high']:.1%}] of the "
                f"images correctly (majority class: {results['majority_rate']:.1%}).")
    devs = ["interpretation: one run (seed 0), no seeds: the cross-validation and the logistic regression are "
            "deterministic given the folds, so only the fold assignment would change with the seed",
            "interpretation: duplicate-aware stratified folds (StratifiedGroupKFold on file hashes)",
            f"interpretation: features from images resized to {st['image_size']} px (the profile's size)"]
    dev = resolve_audit_device(device)
    rec = audit_record("shortcut_colour", prof, seed, st, data.describe(), t0, dev, results, rows, headline, devs)
    return write_audit_record(rec, results_dir, write)
