"""Sufficiency of the scale-bar corner: classifiers that see only the bottom-right box the scale-bar mask covers
(at the Originals' own resolution), against the same classifiers on a box of the same size in the opposite
(top-left) corner, in colour and in grey. The background's colour is in every corner, so only this
like-for-like pair, and the grey one above all, says what the mark itself carries."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import data as D
from .arms import (
    CONTEXTS,
    evaluation_block,
    measured,
    pc_text,
    pp_text,
    register_arms,
    register_headline,
    register_summary,
    seeds_text,
    taleqani_context,
    train_audit_cnn,
    training_block,
)
from .base import NATIVE_SIZE
from .inputs import corner_crop, full_proba
from .training import predict_on


def native_images(ctx: dict, prof, data_root, seed: int) -> np.ndarray:
    """The context's images (same rows, same order) at :data:`NATIVE_SIZE`; cached per process."""
    key = ("native-images", prof.name, str(data_root), int(seed), len(ctx["table"]))
    if key not in CONTEXTS:
        CONTEXTS[key] = {"x": D.load_images(ctx["table"], NATIVE_SIZE)[0]}
    return CONTEXTS[key]["x"]


def corner_crops(ctx: dict, prof, st: dict, data_root, seed: int) -> dict[str, np.ndarray]:
    """``{"bar": crops, "control": crops}`` of the context's images: :func:`corner_crop` at the native side, in the
    corners the settings name; cached per process (the native images are let go once cropped)."""
    key = ("corner-crops", prof.name, str(data_root), int(seed), len(ctx["table"]))
    if key not in CONTEXTS:
        x = native_images(ctx, prof, data_root, seed)
        box = tuple(st["crop"]["box"])
        CONTEXTS[key] = {k: corner_crop(x, corner, box) for k, corner in st["crop"]["corners"].items()}
        CONTEXTS.pop(("native-images", prof.name, str(data_root), int(seed), len(ctx["table"])), None)
    return CONTEXTS[key]


def pixel_fit_predict(st: dict, x_train: np.ndarray, y_train, x_test: np.ndarray, n_classes: int, seed: int, *,
                      grey: bool = False) -> np.ndarray:
    """The pixel classifier: a standardised logistic regression on the crops' pixel values / 255 (``grey``: the
    first channel only, the three channels of :func:`leukcore.filters.to_grey` being equal)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def feats(x):
        return (x[..., :1] if grey else x).reshape(len(x), -1).astype(np.float32) / 255.0

    c = st["pixel_classifier"]
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=c["C"], max_iter=c["max_iter"], random_state=seed))
    clf.fit(feats(x_train), y_train)
    return full_proba(clf, feats(x_test), n_classes)


@register_arms("scale_bar_alone")
def _arm_scale_bar_alone(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    from ..filters import to_grey

    c = taleqani_context("scale_bar_alone", prof, st, data_root, seed, device)
    y, tr, te, names = c["y"], c["tr"], c["te"], c["names"]
    kind, corner, *grey = arm.split("_")
    crops = corner_crops(c, prof, st, data_root, seed)[corner]
    if grey:
        crops = to_grey(crops)
    res: dict[str, Any] = {"crop_px": list(crops.shape[1:3]), "corner": st["crop"]["corners"][corner],
                           "grey": bool(grey), "n_train": int(len(tr)), "n_test": int(len(te))}
    if kind == "pixels":
        prob = pixel_fit_predict(st, crops[tr], y[tr], crops[te], len(names), seed, grey=bool(grey))
    else:
        model, info, cached = train_audit_cnn(st, c, crops[tr], y[tr], seed, device, progress)
        res["training"] = training_block(info, cached)
        prob = predict_on(model, crops[te], device)
    ev = evaluation_block(y[te], prob, names, te)
    res.update(eval=ev, measures={arm: measured(ev)},
               test_majority_rate=float(np.bincount(y[te], minlength=len(names)).max() / max(len(te), 1)))
    return res, c["data"].describe()


@register_summary("scale_bar_alone")
def _summary(by_seed: dict, seeds: list, results: dict) -> dict:
    first = by_seed[seeds[0]]["pixels_bar"]["results"]
    return {"crop_px": first["crop_px"],
            "test_majority_rate": float(np.mean([by_seed[s]["pixels_bar"]["results"]["test_majority_rate"] for s in seeds]))}


@register_headline("scale_bar_alone")
def _headline(res: dict) -> str:
    a, e = res["arms"], res["effects"]
    h, w = res["crop_px"]
    return (f"A {h} x {w} px crop of the scale-bar corner alone: pixel classifier {pc_text(a['pixels_bar'])} in colour, "
            f"{pc_text(a['pixels_bar_grey'])} in grey; the audit CNN {pc_text(a['cnn_bar'])} and "
            f"{pc_text(a['cnn_bar_grey'])}. Against the opposite corner: {pp_text(e['pixels'])}, {pp_text(e['pixels_grey'])}, "
            f"{pp_text(e['cnn'])}, {pp_text(e['cnn_grey'])} ({seeds_text(res)}).")
