"""Byte-identical duplicates: a random split against a duplicate-aware split."""
from __future__ import annotations

import numpy as np

from .. import data as D
from .base import row_index, count_twins
from .training import predict_on
from .arms import train_audit_cnn, evaluation_block, measured, taleqani_context, training_block, register_arms


@register_arms("leakage_duplicates")
def _arm_leakage_duplicates(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    c = taleqani_context("leakage_duplicates", prof, st, data_root, seed, device, prefer_duplicates=True)
    x, y, names, table = c["x"], c["y"], c["names"], c["table"]
    split = D.split_fractions(table, st["split"]["fractions"], seed=seed, group_by=st["arms"][arm])
    tr, te = row_index(table, split["train"]), row_index(table, split["test"])
    model, info, cached = train_audit_cnn(st, c, x[tr], y[tr], seed, device, progress)
    prob = predict_on(model, x[te], device)
    ev = evaluation_block(y[te], prob, names, te)
    tw = count_twins(table, split)
    res = {"eval": ev, "training": training_block(info, cached), "n_train": int(len(tr)), "n_test": int(len(te)),
           "test_with_twin": tw["test_with_twin"], "groups_straddling": tw["groups_straddling"],
           "duplicate_groups": tw["duplicate_groups"], "max_effect": tw["test_with_twin"] / max(len(te), 1),
           "measures": {arm: measured(ev)}}
    if tw["test_with_twin"]:
        mask = np.isin(te, row_index(table, tw["test_ids_with_twin"]))
        res["accuracy_on_twins"] = float((prob.argmax(1) == y[te])[mask].mean())
    return res, c["data"].describe()
