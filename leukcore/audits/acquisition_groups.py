"""A proxy for patients: images grouped by acquisition signature, then a random split against a
group-disjoint split of the same CNN."""
from __future__ import annotations

from typing import Any

import pandas as pd

from .. import data as D
from .base import row_index
from .training import predict_on
from .arms import train_audit_cnn, evaluation_block, measured, SIGNATURES, taleqani_context, training_block, register_arms


def n_acquisition_groups(n_images: int) -> int:
    """Groups asked of the clustering: the 89 patients of taleqani-all, or a quarter of the images when
    fewer than ten per patient (the small profiles)."""
    from .acquisition import TALEQANI_PATIENTS

    return TALEQANI_PATIENTS if n_images >= 10 * TALEQANI_PATIENTS else max(2, n_images // 4)


def acquisition_table(table: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """``table`` with a ``subject`` column holding each image's acquisition group, and the group report."""
    from .acquisition import group_images, group_report, signatures

    fp = D.fingerprint(table)
    if fp not in SIGNATURES:
        SIGNATURES[fp] = signatures(table)
    sig = SIGNATURES[fp]
    groups = group_images(sig, n_acquisition_groups(len(table)))
    out = table.copy()
    out["subject"] = [f"g{g:03d}" for g in groups]
    out.attrs = dict(table.attrs)
    rep = group_report(table, groups)
    rep["signature_columns_used"] = [k for k in sig.columns if sig[k].notna().any() and sig[k].std() > 0]
    rep["signature_columns_constant"] = [k for k in sig.columns if k not in rep["signature_columns_used"]]
    return out, rep


@register_arms("acquisition_groups")
def _arm_acquisition_groups(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    c = taleqani_context("acquisition_groups", prof, st, data_root, seed, device)
    x, y, names, table = c["x"], c["y"], c["names"], c["table"]
    res: dict[str, Any] = {}
    if arm == "random":
        tr, te = c["tr"], c["te"]
    else:
        gt, rep = acquisition_table(table)
        sp = D.split_fractions(gt, st["split"]["fractions"], seed=seed, group_by="subject")
        tr, te = row_index(gt, sp["train"]), row_index(gt, sp["test"])
        res["groups"] = rep
        res["groups_in_test"] = int(gt["subject"].iloc[te].nunique())
    model, info, cached = train_audit_cnn(st, c, x[tr], y[tr], seed, device, progress)
    ev = evaluation_block(y[te], predict_on(model, x[te], device), names, te)
    res.update(eval=ev, training=training_block(info, cached), n_train=int(len(tr)), n_test=int(len(te)),
               measures={arm: measured(ev)})
    return res, c["data"].describe()
