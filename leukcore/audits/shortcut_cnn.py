"""Shortcuts: the audit CNN on grey, stain-normalised and corner-masked images (the scale-bar corner
and a control corner of the same size), trained so and tested so."""
from __future__ import annotations

from .inputs import apply_variant, mask_box
from .training import predict_on
from .arms import train_audit_cnn, evaluation_block, measured, taleqani_context, training_block, register_arms


@register_arms("shortcut_cnn")
def _arm_shortcut_cnn(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    c = taleqani_context("shortcut_cnn", prof, st, data_root, seed, device)
    x, y, tr, te, tg = c["x"], c["y"], c["tr"], c["te"], c["target"]
    model, info, cached = train_audit_cnn(st, c, apply_variant(x[tr], arm, tg), y[tr], seed, device, progress)
    ev = evaluation_block(y[te], predict_on(model, apply_variant(x[te], arm, tg), device), c["names"], te)
    res = {"eval": ev, "training": training_block(info, cached), "n_train": int(len(tr)), "n_test": int(len(te)),
           "measures": {arm: measured(ev)}}
    if arm == "original":
        res["test_time"] = {}
        for v in st["test_time_variants"]:
            e = evaluation_block(y[te], predict_on(model, apply_variant(x[te], v, tg), device), c["names"], te)
            res["test_time"][v] = e
            res["measures"][f"original@{v}"] = measured(e)
    box = st["mask"]["box"]
    res["mask_boxes_px"] = {k: dict(zip(("y0", "y1", "x0", "x1"), mask_box(st["image_size"], st["image_size"],
                                                                          corner, tuple(box))))
                            for k, corner in (("mask_scale_bar", "bottom-right"), ("mask_control", "top-left"))}
    return res, c["data"].describe()
