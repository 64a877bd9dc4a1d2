"""External validity: the Taleqani models on normal lymphocytes from another laboratory (PBC):
predicted classes, confidence, an out-of-distribution AUROC, and Taleqani's Benign recall beside them."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import data as D
from .base import cap_per_class, combined_fingerprint, audit_data, wilson_interval
from .inputs import apply_variant
from .training import predict_on
from .arms import train_audit_cnn, CONTEXTS, evaluation_block, measured, taleqani_context, training_block, register_arms
from .segmented import colour_fit_predict


@register_arms("external_pbc")
def _arm_external_pbc(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    from .stats import auroc

    c = taleqani_context("external_pbc", prof, st, data_root, seed, device)
    x, y, tr, te, tg, names = c["x"], c["y"], c["tr"], c["te"], c["target"], c["names"]
    key = ("pbc-images", prof.name, str(data_root), int(seed), st["image_size"])
    if key not in CONTEXTS:
        ext = audit_data("pbc-lymphocytes", prof, data_root, seed=seed, cap=False)
        ext.table = cap_per_class(ext.table, st["external_max_per_class"], seed)
        ext_ds = ext.describe()
        xe, et = D.load_images(ext.table, st["image_size"], on_bad="skip")
        CONTEXTS[key] = {"x": xe, "ds": ext_ds, "skipped": et.attrs.get("skipped", [])}
    xe, ext_ds = CONTEXTS[key]["x"], CONTEXTS[key]["ds"]
    res: dict[str, Any] = {"n_external": int(len(xe)), "skipped": CONTEXTS[key]["skipped"]}
    if arm == "colour_hist":
        pe = colour_fit_predict(st, x[tr], y[tr], xe, len(names), seed)
        pt = colour_fit_predict(st, x[tr], y[tr], x[te], len(names), seed)
    else:
        model, info, cached = train_audit_cnn(st, c, apply_variant(x[tr], arm, tg), y[tr], seed, device, progress)
        res["training"] = training_block(info, cached)
        pe = predict_on(model, apply_variant(xe, arm, tg), device)
        pt = predict_on(model, apply_variant(x[te], arm, tg), device)
    benign = st["benign_label"]
    called = pe.argmax(1) if len(pe) else np.zeros(0, int)
    ev = evaluation_block(y[te], pt, names, te)
    conf_e = pe.max(1) if len(pe) else np.zeros(0)
    conf_t = pt.max(1) if len(pt) else np.zeros(0)
    is_benign = y[te] == benign
    res.update({
        "eval": ev, "measures": {arm: measured(ev)},
        "benign_fraction": wilson_interval(int((called == benign).sum()), int(len(called))),
        "predicted_counts": {names[k]: int((called == k).sum()) for k in range(len(names))},
        "mean_p_benign": float(pe[:, benign].mean()) if len(pe) else math.nan,
        "mean_confidence_pbc": float(conf_e.mean()) if len(conf_e) else math.nan,
        "mean_confidence_taleqani": float(conf_t.mean()) if len(conf_t) else math.nan,
        "ood_auroc": auroc(conf_t, conf_e),
        "taleqani_benign_recall": float((pt.argmax(1)[is_benign] == benign).mean()) if is_benign.any() else math.nan,
        "taleqani_accuracy": ev["accuracy"]["point"]})
    ds = c["data"].describe()
    ds = {**ds, "fingerprint": combined_fingerprint(ds["fingerprint"], ext_ds["fingerprint"]),
          "train_fingerprint": ds["fingerprint"]}
    return res, {"dataset": ds, "external_dataset": ext_ds}
