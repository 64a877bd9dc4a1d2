"""Augment-then-split (how the DSCNet paper's dataset was built) against split-then-augment, on
each arm's own test set and on originals neither saw."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .. import data as D
from .base import row_index
from .training import predict_on
from .arms import train_audit_cnn, evaluation_block, measured, taleqani_context, training_block, register_arms


@register_arms("leakage_augment")
def _arm_leakage_augment(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    c = taleqani_context("leakage_augment", prof, st, data_root, seed, device)
    x_all, y_all, names, table = c["x"], c["y"], c["names"], c["table"]
    n = st["per_class"]
    sub = _originals_subset(table, st["originals_fraction"], st["min_originals_per_class"], seed)
    sub_t = table.iloc[sub].reset_index(drop=True)
    sub_t.attrs = dict(table.attrs)
    xs, ys = x_all[sub], y_all[sub]
    used = set(table["sha256"].iloc[sub])
    fresh = np.array([i for i in range(len(table)) if table["sha256"].iat[i] not in used], dtype=int)
    res: dict[str, Any] = {"per_class": n, "originals_used": {names[k]: int((ys == k).sum()) for k in np.unique(ys)},
                           "n_fresh": int(len(fresh))}
    if arm == "augment_then_split":
        xa, ya, src, _orig = expand_by_augmentation(xs, ys, n, preset=st["augment"], seed=seed)
        pool = pd.DataFrame({"id": [f"aug{i:06d}" for i in range(len(ya))], "label": ya, "sha256": [f"{s}" for s in src]})
        sp = D.split_fractions(pool, st["leaky_split"]["fractions"], seed=seed, group_by=None)
        tr, te = row_index(pool, sp["train"]), row_index(pool, sp["test"])
        xtr, ytr, xte, yte = xa[tr], ya[tr], xa[te], ya[te]
        res["test_source_in_train"] = float(np.isin(src[te], src[tr]).mean()) if len(te) else math.nan
    else:
        osp = D.split_fractions(sub_t, st["split"]["fractions"], seed=seed, group_by="duplicates")
        otr, ote = row_index(sub_t, osp["train"]), row_index(sub_t, osp["test"])
        frac = st["split"]["fractions"]
        ntr = {int(k): int(round(frac["train"] * n)) for k in np.unique(ys)}
        nte = {int(k): n - ntr[int(k)] for k in np.unique(ys)}
        xtr, ytr, _, _ = expand_by_augmentation(xs[otr], ys[otr], ntr, preset=st["augment"], seed=seed + 1)
        xte, yte, _, _ = expand_by_augmentation(xs[ote], ys[ote], nte, preset=st["augment"], seed=seed + 2)
        res["test_source_in_train"] = 0.0
    model, info, cached = train_audit_cnn(st, c, xtr, ytr, seed, device, progress)
    ev = evaluation_block(yte, predict_on(model, xte, device), names, None)
    res.update(eval=ev, training=training_block(info, cached), n_train=int(len(ytr)), n_test=int(len(yte)),
               measures={arm: measured(ev)})
    if len(fresh):
        fe = evaluation_block(y_all[fresh], predict_on(model, x_all[fresh], device), names, fresh)
        res["unseen"] = fe
        res["measures"][f"{arm}@unseen"] = measured(fe)
    return res, c["data"].describe()


def _augment_copies(x: np.ndarray, sources: np.ndarray, preset: str, generator) -> np.ndarray:
    """Augmented uint8 copies ``aug(x[sources])`` (the preset on uint8 NCHW, rounded back to uint8)."""
    import torch

    from ..transforms import make_augment

    aug = make_augment(preset)
    out = np.empty((len(sources),) + x.shape[1:], np.uint8)
    for s in range(0, len(sources), 256):
        idx = sources[s:s + 256]
        xb = torch.from_numpy(np.ascontiguousarray(x[idx])).permute(0, 3, 1, 2).contiguous()
        yb = aug(xb, generator=generator)
        out[s:s + len(idx)] = (yb.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out


def expand_by_augmentation(x: np.ndarray, y: np.ndarray, per_class: int | dict, *, preset: str = "dscnet",
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Expand a labelled set to ``per_class`` images per class: the originals plus augmented copies.

    Within class ``c`` (``m_c`` originals), the ``per_class - m_c`` copies take their sources
    round-robin over a seeded permutation of the originals (each original gets ``floor`` or
    ``ceil`` of ``(per_class - m_c) / m_c`` copies); a class with more originals than
    ``per_class`` keeps a seeded subset. ``per_class`` may be a dict ``{label: n}``.
    Returns ``(images, labels, source, is_original)``, ``source`` the index into ``x`` of each
    image's original.
    """
    import torch

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(int(seed))
    srcs, orig = [], []
    for c in np.unique(y):
        n_c = int(per_class[int(c)] if isinstance(per_class, dict) else per_class)
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        if n_c <= len(idx):
            srcs.append(np.sort(idx[:n_c]))
            orig.append(np.ones(n_c, bool))
            continue
        extra = idx[np.arange(n_c - len(idx)) % len(idx)]
        srcs.append(np.concatenate([np.sort(idx), extra]))
        orig.append(np.concatenate([np.ones(len(idx), bool), np.zeros(len(extra), bool)]))
    src = np.concatenate(srcs) if srcs else np.zeros(0, int)
    is_orig = np.concatenate(orig) if orig else np.zeros(0, bool)
    out = x[src].copy()
    if (~is_orig).any():
        out[~is_orig] = _augment_copies(x, src[~is_orig], preset, gen)
    return out, y[src], src, is_orig


def _originals_subset(table: pd.DataFrame, fraction: float, minimum: int, seed: int) -> np.ndarray:
    """Indices of a seeded per-class subset of ``ceil(fraction * n_c)`` unique originals (at least ``minimum``)."""
    rng = np.random.default_rng(seed)
    keep = []
    for _, g in table.groupby("label", sort=True):
        first = g.drop_duplicates("sha256").index.to_numpy()  # one image per byte-identical group
        m = min(len(first), max(minimum, math.ceil(fraction * len(g))))
        keep += sorted(rng.permutation(first)[:m].tolist())
    return np.array(sorted(keep), dtype=int)
