"""The background alone against the cells alone: the colour-histogram classifier fitted on the pixels outside the
cells (the field: plasma, red cells, illumination, stain) and on the pixels of the cells, the cells taken from the
dataset's own Segmented copies. Which of the two carries the colour signal is the first question a haematologist
asks of the colour baseline."""
from __future__ import annotations

import numpy as np

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
)
from .inputs import colour_classifier, foreground_mask, full_proba, grow_mask, mask_box, region_histogram
from .scale_bar_alone import native_images
from .segmented_artefacts import clean_context, native_segmented, segmented_dataset


def region_masks(segmented: np.ndarray, st: dict) -> dict[str, np.ndarray]:
    """``{"cells", "background", "whole"}`` boolean masks ``(N, H, W)`` from the Segmented copies: cells where
    :func:`foreground_mask` says so; background outside the cell mask grown by ``cell_margin_px`` and outside the
    scale-bar box; whole: every pixel."""
    cells = foreground_mask(segmented, st["segmentation"]["threshold"])
    background = ~grow_mask(cells, int(st["cell_margin_px"]))
    y0, y1, x0, x1 = mask_box(cells.shape[1], cells.shape[2], "bottom-right", tuple(st["scale_bar_box"]))
    background[:, y0:y1, x0:x1] = False
    return {"cells": cells, "background": background, "whole": np.ones_like(cells)}


def region_features(c: dict, prof, st: dict, data_root, seed: int) -> dict:
    """The colour histogram of each region of each image kept by :func:`clean_context` (its rows, in order), and
    each region's share of the image; cached per process."""
    cc = clean_context(c, prof, st, data_root, seed)
    key = ("region-features", prof.name, str(data_root), int(seed), len(c["table"]))
    if key not in CONTEXTS:
        keep = cc["keep"]
        x = native_images(c, prof, data_root, seed)[keep]
        masks = region_masks(native_segmented(c, prof, data_root, seed)[keep], st)
        bins = st["features"]["hist"]["bins"]
        CONTEXTS[key] = {"hist": {k: region_histogram(x, m, bins) for k, m in masks.items()},
                         "share": {k: m.reshape(len(m), -1).mean(axis=1) for k, m in masks.items()}}
    return {**cc, **CONTEXTS[key]}


@register_arms("background_alone")
def _arm_background_alone(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    c = taleqani_context("background_alone", prof, st, data_root, seed, device)
    names = c["names"]
    f = region_features(c, prof, st, data_root, seed)
    keep, tr, te = f["keep"], f["tr"], f["te"]
    y, h = c["y"][keep], f["hist"][arm]
    clf = colour_classifier(st, seed).fit(h[tr], y[tr])
    ev = evaluation_block(y[te], full_proba(clf, h[te], len(names)), names, keep[te])
    share = f["share"][arm]
    res = {"eval": ev, "measures": {arm: measured(ev)}, "n_images": int(len(keep)),
           "n_left_out": int(len(c["table"]) - len(keep)), "n_train": int(len(tr)), "n_test": int(len(te)),
           "region_share": {"median": float(np.median(share)), "min": float(share.min()), "max": float(share.max())},
           "test_majority_rate": float(np.bincount(y[te], minlength=len(names)).max() / max(len(te), 1))}
    return res, segmented_dataset(c, prof, data_root, seed)


@register_summary("background_alone")
def _summary(by_seed: dict, seeds: list, results: dict) -> dict:
    first = by_seed[seeds[0]]
    st = first["cells"]["settings"]
    return {"n_images": first["cells"]["results"]["n_images"], "n_left_out": first["cells"]["results"]["n_left_out"],
            "segmentation": st["segmentation"], "cell_margin_px": st["cell_margin_px"],
            "region_share": {a: first[a]["results"]["region_share"] for a in first},
            "test_majority_rate": float(np.mean([by_seed[s]["cells"]["results"]["test_majority_rate"] for s in seeds]))}


@register_headline("background_alone")
def _headline(res: dict) -> str:
    a, e = res["arms"], res["effects"]
    return (f"Colour histogram of the background alone {pc_text(a['background'])}, of the cells alone "
            f"{pc_text(a['cells'])}, of the whole image {pc_text(a['whole'])}; cells minus background "
            f"{pp_text(e['cells_minus_background'])} ({res['n_images']} images with a usable cell mask, {seeds_text(res)}).")
