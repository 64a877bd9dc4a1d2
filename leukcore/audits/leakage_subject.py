"""Subject leakage: an image-level split against a subject-disjoint one (needs C-NMC's patient ids)."""
from __future__ import annotations

import time
from typing import Any

from .. import data as D
from .base import (
    audit_data,
    audit_profile,
    audit_record,
    audit_settings,
    class_names_of,
    metric_block,
    resolve_audit_device,
    result_row,
    row_index,
    write_audit_record,
)
from .training import predict_on, trained_model


def leakage_subject(profile: str = "smoke", data_root=None, seed: int = 0, results_dir=None, device: str = "auto",
                    *, progress: bool = False, write: bool = True) -> dict:
    """Image-level random 80/20 split vs subject-disjoint 80/20 split of C-NMC 2019's training folds.

    Same CNN (2 outputs), budget and seed. Reports each arm's accuracy with a bootstrap
    interval and the number of subjects with images on both sides. ``cnmc-2019`` absent: at
    ``smoke`` the synthetic C-NMC tree stands in; at ``cpu`` / ``paper`` the record says
    ``status: "not run"`` with the reason (and is still written, so the book can say so).
    """
    prof = audit_profile(profile)
    st = audit_settings("leakage_subject", profile)
    t0 = time.perf_counter()
    dev = resolve_audit_device(device)
    try:
        data = audit_data("cnmc-2019", prof, data_root, seed=seed, synthetic_fallback=prof.name == "smoke",
                          split="train")
    except D.DataError as missing:
        reason = f"not run: cnmc-2019 absent ({str(missing).split(';')[0]})"
        ds = {"id": "cnmc-2019", "fingerprint": None, "is_papers": False, "stands_in_for": None, "note": reason,
              "n_images": 0}
        rec = audit_record("leakage_subject", prof, seed, st, ds, t0, dev, {}, [], reason, [], status="not run",
                      reason=reason)
        return write_audit_record(rec, results_dir, write)
    x, table = D.load_images(data.table, st["image_size"])
    data.table = table
    y, names = table["label"].to_numpy(), class_names_of(table)
    results: dict[str, Any] = {"n_subjects": int(table["subject"].nunique()), "arms": {}}
    rows = []
    for arm, group_by in st["arms"].items():
        split = D.split_fractions(table, st["split"]["fractions"], seed=seed, group_by=group_by)
        tr, te = row_index(table, split["train"]), row_index(table, split["test"])
        model, _, cached = trained_model(st, len(names), x[tr], y[tr], seed=seed, device=dev, progress=progress)
        block = metric_block(y[te], predict_on(model, x[te], dev), names, st["bootstrap"], seed)
        shared = set(table["subject"].iloc[tr]) & set(table["subject"].iloc[te])
        block["subjects_on_both_sides"] = len(shared)
        block["trained_from_cache"] = bool(cached)
        results["arms"][arm] = block
        rows.append(result_row(arm.replace("_", " ") + " split", "accuracy", block["accuracy"], block["n"],
                         f"{len(shared)} subjects on both sides"))
    a, b = (results["arms"][k]["accuracy"]["point"] for k in ("image_level", "subject_disjoint"))
    headline = f"Image-level split {a:.1%} vs subject-disjoint split {b:.1%} ({a - b:+.1%})."
    rec = audit_record("leakage_subject", prof, seed, st, data.describe(), t0, dev, results, rows, headline,
                  ["interpretation: training folds 0-2 pooled, then split 80/20 (stratified)"])
    return write_audit_record(rec, results_dir, write)
