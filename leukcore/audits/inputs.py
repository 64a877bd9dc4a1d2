"""What the audits do to the images (grey, stain normalisation, masked corners) and what the
colour-only baselines read from them (colour histograms and channel statistics)."""
from __future__ import annotations

import math

import numpy as np

from .base import FOREGROUND_THRESHOLD, SCALE_BAR_BOX, VARIANTS


def scale_bar_box(height: int, width: int, box: tuple[float, float] = SCALE_BAR_BOX) -> tuple[int, int]:
    """Top-left corner ``(y0, x0)`` of the masked box: ``y0 = H - ceil(h H)``, ``x0 = W - ceil(w W)``."""
    w, h = box
    return height - math.ceil(h * height), width - math.ceil(w * width)


#: The corners a mask can cover: the scale bar's (bottom-right) and the control's (top-left).
CORNERS = ("bottom-right", "top-left", "top-right", "bottom-left")


def mask_box(height: int, width: int, corner: str = "bottom-right",
             box: tuple[float, float] = SCALE_BAR_BOX) -> tuple[int, int, int, int]:
    """Rows ``y0:y1`` and columns ``x0:x1`` of a box of ``ceil(h H) x ceil(w W)`` pixels in ``corner``.

    The bottom-right box is :func:`scale_bar_box`'s; the others have the same size in another corner.
    """
    if corner not in CORNERS:
        raise ValueError(f"unknown corner {corner!r}; valid: {', '.join(CORNERS)}")
    w, h = box
    bh, bw = math.ceil(h * height), math.ceil(w * width)
    y0 = height - bh if corner.startswith("bottom") else 0
    x0 = width - bw if corner.endswith("right") else 0
    return y0, y0 + bh, x0, x0 + bw


def mask_scale_bar(images: np.ndarray, box: tuple[float, float] = SCALE_BAR_BOX, fill: str = "mean",
                   corner: str = "bottom-right") -> np.ndarray:
    """Cover the bottom-right scale-bar corner (see :data:`SCALE_BAR_BOX`), or a box of the same size
    in another ``corner`` (the control); return a copy.

    ``fill="mean"``: each image's box gets that image's mean colour over the pixels outside
    the box (rounded per channel), so the mask adds no constant mark of its own;
    ``fill="black"``: zeros. ``images``: uint8 ``(H, W, 3)`` or ``(N, H, W, 3)``.
    """
    if fill not in ("mean", "black"):
        raise ValueError(f"unknown fill {fill!r}; valid: 'mean', 'black'")
    x = np.array(images, dtype=np.uint8, copy=True)
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) uint8 images, got shape {np.shape(images)}")
    _, hgt, wid, _ = x.shape
    y0, y1, x0, x1 = mask_box(hgt, wid, corner, box)
    if fill == "black":
        x[:, y0:y1, x0:x1] = 0
    else:
        outside = np.ones((hgt, wid), bool)
        outside[y0:y1, x0:x1] = False
        mean = x[:, outside].astype(np.float64).mean(axis=1)  # (N, 3)
        x[:, y0:y1, x0:x1] = np.clip(np.rint(mean), 0, 255).astype(np.uint8)[:, None, None, :]
    return x[0] if single else x


def corner_crop(images: np.ndarray, corner: str = "bottom-right", box: tuple[float, float] = SCALE_BAR_BOX) -> np.ndarray:
    """The pixels of exactly the box :func:`mask_box` gives in ``corner`` (the region :func:`mask_scale_bar`
    covers), as a copy: ``(N, ceil(h H), ceil(w W), C)`` from ``(N, H, W, C)``, or one image ``(H, W, C)``."""
    x = np.asarray(images)
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) or (H, W, C) images, got shape {np.shape(images)}")
    y0, y1, x0, x1 = mask_box(x.shape[1], x.shape[2], corner, box)
    out = x[:, y0:y1, x0:x1].copy()
    return out[0] if single else out


def foreground_mask(segmented: np.ndarray, threshold: int = FOREGROUND_THRESHOLD) -> np.ndarray:
    """Where a Segmented copy keeps a cell: its largest RGB channel exceeds ``threshold`` (the data README's
    rule). ``(N, H, W, 3)`` uint8 -> ``(N, H, W)`` bool (or one image)."""
    return np.asarray(segmented).max(axis=-1) > threshold


def foreground_fraction(segmented: np.ndarray, threshold: int = FOREGROUND_THRESHOLD) -> np.ndarray:
    """The share of each image's pixels that :func:`foreground_mask` counts as cell: ``(N,)`` floats."""
    m = foreground_mask(segmented, threshold)
    return m.reshape(m.shape[0], -1).mean(axis=1) if m.ndim == 3 else np.array([m.mean()])


def grow_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` (``(N, H, W)`` or ``(H, W)`` bool) grown by ``pixels`` in every direction (a square structuring
    element of side ``2 pixels + 1``: a pixel joins when any pixel within ``pixels`` rows and columns is set)."""
    from scipy.ndimage import maximum_filter

    m = np.asarray(mask, dtype=bool)
    if pixels <= 0:
        return m.copy()
    size = (1,) * (m.ndim - 2) + (2 * pixels + 1, 2 * pixels + 1)
    return maximum_filter(m, size=size, mode="constant", cval=False)


def region_histogram(images: np.ndarray, masks: np.ndarray, bins: int = 16) -> np.ndarray:
    """:func:`colour_features` (``hist``) of only the pixels where ``masks`` is true, each channel's counts
    divided by the region's pixel count (all zeros for an empty region): ``(N, 3 bins)``."""
    x = np.asarray(images)
    m = np.asarray(masks, dtype=bool)
    if x.shape[:3] != m.shape:
        raise ValueError(f"images {x.shape} and masks {m.shape} differ in size")
    n = len(x)
    out = np.zeros((n, 3, bins))
    for i in range(n):
        px = x[i][m[i]].astype(np.int64) * bins // 256  # (P, 3)
        if len(px):
            for c in range(3):
                out[i, c] = np.bincount(px[:, c], minlength=bins) / len(px)
    return out.reshape(n, 3 * bins)


def apply_variant(images: np.ndarray, variant: str, reinhard_stats=None) -> np.ndarray:
    """The images as one arm of ``shortcut_cnn`` sees them.

    ``original`` (unchanged), ``grey`` (:func:`leukcore.filters.to_grey`), ``reinhard``
    (:func:`leukcore.filters.reinhard_normalize` to ``reinhard_stats = (means, stds)``),
    ``mask_scale_bar`` (:func:`mask_scale_bar`, mean fill), ``mask_control`` (the same box in the
    top-left corner, where there is no scale bar).
    """
    from ..filters import reinhard_normalize, to_grey

    if variant == "original":
        return images
    if variant == "grey":
        return to_grey(images)
    if variant == "reinhard":
        if reinhard_stats is None:
            raise ValueError("variant 'reinhard' needs reinhard_stats=(means, stds) (leukcore.filters.reinhard_target)")
        return reinhard_normalize(images, *reinhard_stats) if len(images) else images
    if variant == "mask_scale_bar":
        return mask_scale_bar(images) if len(images) else images
    if variant == "mask_control":
        return mask_scale_bar(images, corner="top-left") if len(images) else images
    raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")


def colour_features(images: np.ndarray, kind: str = "hist", bins: int = 16) -> np.ndarray:
    """Colour-only features of uint8 RGB images ``(N, H, W, 3)``.

    ``hist``: per channel, the fraction of pixels in each of ``bins`` equal-width bins of
    ``0..255`` (bin ``v * bins // 256``), channels concatenated: ``(N, 3 bins)``;
    ``moments``: per-channel mean and standard deviation of ``v / 255``: ``(N, 6)``.
    """
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) images, got shape {x.shape}")
    n = x.shape[0]
    if kind == "hist":
        idx = (x.reshape(n, -1, 3).astype(np.int64) * bins) // 256  # (N, P, 3)
        out = np.zeros((n, 3, bins))
        for c in range(3):
            codes = idx[:, :, c] + bins * np.arange(n)[:, None]
            out[:, c] = np.bincount(codes.ravel(), minlength=n * bins).reshape(n, bins)
        return (out / (x.shape[1] * x.shape[2])).reshape(n, 3 * bins)
    if kind == "moments":
        f = x.reshape(n, -1, 3).astype(np.float64) / 255.0
        return np.concatenate([f.mean(axis=1), f.std(axis=1)], axis=1)
    raise ValueError(f"unknown colour feature kind {kind!r}; valid: hist, moments")


def colour_classifier(settings: dict, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    c = settings["classifier"]
    return make_pipeline(StandardScaler(), LogisticRegression(C=c["C"], max_iter=c["max_iter"], random_state=seed))


def full_proba(clf, f: np.ndarray, n_classes: int) -> np.ndarray:
    p = clf.predict_proba(f)
    out = np.zeros((len(f), n_classes))
    out[:, np.asarray(clf.classes_, dtype=int)] = p
    return out
