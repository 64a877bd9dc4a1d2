"""Background removed: the audit CNN trained and tested on Taleqani's Segmented variant, the
original model tested on segmented images, and the colour histogram on segmented images."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .. import data as D
from ..runs.profiles import Profile
from .base import combined_fingerprint, audit_data
from .inputs import colour_classifier, full_proba, colour_features
from .training import predict_on
from .arms import train_audit_cnn, CONTEXTS, evaluation_block, measured, taleqani_context, training_block, register_arms


def segmented_images(ctx: dict, prof, st, data_root, seed) -> tuple[np.ndarray, dict]:
    """The Segmented variant of the context's images, in the same order (matched by file name)."""
    seg = segmented_table(ctx["table"], prof, data_root, seed)
    xs, _kept = D.load_images(seg, st["image_size"])
    return xs, {"fingerprint": D.fingerprint(seg), "n_images": int(len(seg))}


def colour_fit_predict(st: dict, x_train, y_train, x_test, n_classes: int, seed: int) -> np.ndarray:
    bins = st["features"]["hist"]["bins"]
    clf = colour_classifier(st, seed).fit(colour_features(x_train, "hist", bins), y_train)
    return full_proba(clf, colour_features(x_test, "hist", bins), n_classes)


@register_arms("segmented")
def _arm_segmented(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    c = taleqani_context("segmented", prof, st, data_root, seed, device)
    x, y, tr, te, names = c["x"], c["y"], c["tr"], c["te"], c["names"]
    key = ("segmented-images", prof.name, str(data_root), int(seed), st["image_size"])
    if key not in CONTEXTS:
        CONTEXTS[key] = dict(zip(("x", "ds"), segmented_images(c, prof, st, data_root, seed)))
    xs, seg_ds = CONTEXTS[key]["x"], CONTEXTS[key]["ds"]
    res: dict[str, Any] = {"n_train": int(len(tr)), "n_test": int(len(te))}
    if arm in ("original", "segmented"):
        src = x if arm == "original" else xs
        model, info, cached = train_audit_cnn(st, c, src[tr], y[tr], seed, device, progress)
        ev = evaluation_block(y[te], predict_on(model, src[te], device), names, te)
        res.update(eval=ev, training=training_block(info, cached), measures={arm: measured(ev)})
        if arm == "original":
            e = evaluation_block(y[te], predict_on(model, xs[te], device), names, te)
            res["test_time"] = {"segmented": e}
            res["measures"]["original@segmented"] = measured(e)
    else:
        src = x if arm == "colour_hist_original" else xs
        ev = evaluation_block(y[te], colour_fit_predict(st, src[tr], y[tr], src[te], len(names), seed), names, te)
        res.update(eval=ev, measures={arm: measured(ev)})
    res["segmented_all_zero"] = int((xs.reshape(len(xs), -1).max(axis=1) == 0).sum())  # every pixel 0 at this size
    ds = c["data"].describe()
    ds = {**ds, "fingerprint": combined_fingerprint(ds["fingerprint"], seg_ds["fingerprint"]),
          "original_fingerprint": ds["fingerprint"], "segmented_fingerprint": seg_ds["fingerprint"]}
    return res, ds


def segmented_table(original: pd.DataFrame, prof: Profile, data_root=None, seed: int = 0) -> pd.DataFrame:
    """The Segmented variant's rows for the images of ``original``, in its order (matched by file name)."""
    seg = audit_data("taleqani-all", prof, data_root, seed=seed, cap=False, variant="segmented").table
    by_name = {i.split("/", 1)[-1]: k for k, i in enumerate(seg["id"])}
    rows = [by_name[i.split("/", 1)[-1]] for i in original["id"]]
    out = seg.iloc[rows].reset_index(drop=True)
    out.attrs = dict(seg.attrs)
    return out
