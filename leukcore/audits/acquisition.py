"""A proxy for patients on taleqani-all, which publishes no patient ids: groups of images that share an
acquisition signature (background, illumination, the JPEG encoder's settings, EXIF, file numbering).

Images of one smear, photographed in one session, share their background colour, illumination and
encoder; images of different patients usually do not. Grouping by these statistics can therefore
only approximate patients: two patients photographed alike fall in one group, one patient's images
under changed illumination fall in two. What the groups recover is checked against what is known:
byte-identical duplicates must share a group, and patients carry one diagnosis, so a patient-like
group should be nearly pure in class.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

#: Width of the border ring whose colour statistics describe the background, as a fraction of the side.
BORDER = 0.06
#: Number of groups when the caller gives none: the number of patients the dataset's description states.
TALEQANI_PATIENTS = 89

SIGNATURE_COLUMNS = (
    "border_r", "border_g", "border_b", "border_sd_r", "border_sd_g", "border_sd_b",
    "luma_p05", "luma_p50", "luma_p95", "bright_r", "bright_g", "bright_b",
    "jpeg_q", "has_exif", "file_number",
)


def _file_number(name: str) -> float:
    m = re.search(r"(\d+)(?=\.[A-Za-z]+$)", name)
    return float(m.group(1)) if m else np.nan


def image_signature(path: str | Path) -> dict:
    """The acquisition signature of one image file (at its stored resolution).

    ``border_*``: mean and standard deviation per RGB channel of the outer ring (:data:`BORDER` of
    the side); ``luma_p05/p50/p95``: percentiles of BT.601 luma; ``bright_*``: mean RGB of the
    brightest quarter of the pixels (the background of a smear); ``jpeg_q``: mean of the JPEG
    luminance quantisation table (the encoder's quality setting; NaN for other formats);
    ``has_exif``: 1 when the file carries EXIF tags; ``file_number``: the number in the file name.
    """
    from PIL import Image

    with Image.open(path) as im:
        q = getattr(im, "quantization", None) or {}
        jpeg_q = float(np.mean(q[0])) if 0 in q else np.nan
        try:
            has_exif = float(len(im.getexif()) > 0)
        except Exception:  # noqa: BLE001 - unreadable EXIF counts as none
            has_exif = 0.0
        x = np.asarray(im.convert("RGB"), dtype=np.float64)
    h, w, _ = x.shape
    b = max(1, int(round(BORDER * min(h, w))))
    ring = np.ones((h, w), bool)
    ring[b:h - b, b:w - b] = False
    border = x[ring]
    luma = x @ np.array([0.299, 0.587, 0.114])
    cut = np.percentile(luma, 75)
    bright = x[luma >= cut]
    p05, p50, p95 = np.percentile(luma, [5, 50, 95])
    return {"border_r": border[:, 0].mean(), "border_g": border[:, 1].mean(), "border_b": border[:, 2].mean(),
            "border_sd_r": border[:, 0].std(), "border_sd_g": border[:, 1].std(), "border_sd_b": border[:, 2].std(),
            "luma_p05": p05, "luma_p50": p50, "luma_p95": p95,
            "bright_r": bright[:, 0].mean(), "bright_g": bright[:, 1].mean(), "bright_b": bright[:, 2].mean(),
            "jpeg_q": jpeg_q, "has_exif": has_exif, "file_number": _file_number(Path(path).name)}


def signatures(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`image_signature` of every row of ``table`` (its ``path`` column), indexed like it."""
    return pd.DataFrame([image_signature(p) for p in table["path"]], index=table.index,
                        columns=list(SIGNATURE_COLUMNS))


def group_images(sig: pd.DataFrame, n_groups: int, *, weights: dict | None = None) -> np.ndarray:
    """Ward clustering of the standardised signatures into ``n_groups`` groups; labels ``0..n_groups-1``.

    Each column is standardised (a constant or all-NaN column is dropped, other NaNs take the
    column mean) and multiplied by its weight (``weights``, default 1). Deterministic: Ward's
    linkage has no random start.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    f = sig.astype(float).copy()
    keep = [c for c in f.columns if f[c].notna().any() and f[c].std(skipna=True) > 0]
    f = f[keep]
    f = f.fillna(f.mean())
    z = (f - f.mean()) / f.std(ddof=0)
    for c, wgt in (weights or {}).items():
        if c in z:
            z[c] = z[c] * float(wgt)
    n = len(z)
    k = int(max(1, min(n_groups, n)))
    if n < 2:
        return np.zeros(n, dtype=int)
    labels = fcluster(linkage(z.to_numpy(), method="ward"), t=k, criterion="maxclust")
    _, out = np.unique(labels, return_inverse=True)
    return out.astype(int)


def group_report(table: pd.DataFrame, groups: np.ndarray) -> dict:
    """How well ``groups`` recover what is known about ``table``.

    ``duplicate_pairs`` / ``duplicate_pairs_together``: byte-identical groups (same ``sha256``)
    and how many of them lie wholly in one acquisition group (``..._fraction``);
    ``class_purity``: the fraction of images whose group's majority class is their own class;
    ``pure_groups``: groups of a single class; ``n_groups``, ``sizes`` (min, median, max).
    """
    g = pd.Series(np.asarray(groups), index=table.index)
    dup = [idx for _, idx in table.groupby("sha256").groups.items() if len(idx) > 1]
    together = sum(1 for idx in dup if g.loc[idx].nunique() == 1)
    lab = table["label"]
    majority = lab.groupby(g).agg(lambda s: s.value_counts().iloc[0])
    sizes = g.value_counts()
    pure = int((lab.groupby(g).nunique() == 1).sum())
    return {"n_groups": int(g.nunique()), "n_images": int(len(g)),
            "duplicate_pairs": len(dup), "duplicate_pairs_together": int(together),
            "duplicate_pairs_together_fraction": (together / len(dup)) if dup else None,
            "class_purity": float(majority.sum() / len(g)) if len(g) else None,
            "pure_groups": pure, "pure_groups_fraction": pure / max(int(g.nunique()), 1),
            "sizes": {"min": int(sizes.min()), "median": float(sizes.median()), "max": int(sizes.max())}}
