"""The audits themselves (see :mod:`leukcore.audits` for what each asks): settings, data, image
alterations, the audit CNN's training, every audit, their records and summaries, tables and figures."""
from __future__ import annotations

import hashlib
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .. import data as D
from ..profiles import Profile, get_profile
from ..records import (code_block, code_snapshot, current_code_state, device_description, git_commit, library_versions,
                       read_complete, read_record, record_path, settings_hash, write_record)
from ..records import results_dir as results_root
from .stats import to_bits

PAPER = "audits"

#: Bottom-right box that holds the microscope software's scale bar in ``taleqani-all``, as
#: fractions ``(width, height)`` of the image side. Measured on the 224x224 Originals: the
#: small label ("|-- 200 pix --|", white box, black or red text) spans columns 193-217 and
#: rows 194-217; the large variant (white box, "200 pix" / "500 pi" in black, about a third of
#: the images) starts at column ~193, row ~194 and runs to the right edge. The box
#: ``x >= W - ceil(0.18 W)``, ``y >= H - ceil(0.16 H)`` (columns >= 183, rows >= 188 at 224;
#: >= 52 / >= 53 at 64) covers both with a margin.
SCALE_BAR_BOX: tuple[float, float] = (0.18, 0.16)

#: Images per class of the published ``multicancer-all`` (Taleqani expanded by augmentation).
PAPER_AUGMENTED_PER_CLASS = 5000

#: Epochs of every audit CNN when the profile does not cap them (``paper`` profile).
AUDIT_EPOCHS = 30

#: The audits' budget per profile, on top of :mod:`leukcore.profiles`. Keys that are fields of
#: :class:`leukcore.profiles.Profile` (``image_size``, ``max_per_class``, ``epochs``) override the
#: profile's value (``None`` = no cap) -- the audits ask questions about the whole of
#: ``taleqani-all`` (its 40 duplicate pairs, its 3,256 originals), so at ``cpu`` they use every
#: image at 64 px whatever the per-paper ``cpu`` profile caps. Other keys: ``aug_per_class``: N of
#: ``leakage_augment`` (the paper's 5,000 at ``paper``); ``leq_images`` / ``leq_epochs``: the
#: training slice of ``loss_equivalence``; ``seeds``: the seeds ``leukcore audits run`` uses by default.
AUDIT_BUDGET: dict[str, dict[str, Any]] = {
    "smoke": {"aug_per_class": 24, "leq_images": 32, "leq_epochs": 1, "seeds": (0,)},
    "cpu": {"image_size": 64, "max_per_class": None, "epochs": 3,
            "aug_per_class": 1000, "leq_images": 320, "leq_epochs": 2, "seeds": (0,)},
    "audit": {"image_size": 64, "max_per_class": None, "epochs": 12,
              "aug_per_class": 1000, "leq_images": 320, "leq_epochs": 2, "seeds": (0, 1, 2)},
    "paper": {"aug_per_class": PAPER_AUGMENTED_PER_CLASS, "leq_images": 1024, "leq_epochs": 2, "seeds": (0, 1, 2)},
}
_PROFILE_OVERRIDES = ("image_size", "max_per_class", "epochs")

#: The audit CNN: the small :class:`leukcore.models.AuditCNN` (``audit_cnn``), 4 outputs. Chosen by
#: measurement: DSCNet at 224 px is too slow on two CPU cores for 3 seeds of every arm, and at 64 px
#: this network still reads the cells' texture (its accuracy on the original images is in the
#: ``shortcut_cnn`` record; the audit profile asks for at least :data:`MIN_ORIGINAL_ACCURACY`).
AUDIT_MODEL = "audit_cnn"
#: The model of ``loss_equivalence``: the question is about DSCNet's paper, so DSCNet itself.
LOSS_MODEL = "dscnet"
#: The audit CNN's training recipe (the same for every arm of every audit; epochs / batch from the
#: profile). Augmentation is crop and flips only: colour is what the audits vary, so no colour
#: jitter. ``val_fraction`` of the training part (stratified, byte-identical images kept together)
#: is held out for early stopping (:class:`EarlyStop`): only the second half of the epochs competes,
#: training stops when the validation loss has not improved for ``patience`` epochs there, and the
#: weights of its best validation epoch are kept.
AUDIT_TRAIN = {"optimizer": "adam", "lr": 2e-3, "scheduler": "cosine", "loss": "sparse_ce", "augment": "none",
               "augment_kwargs": {"hflip": 0.5, "vflip": 0.5, "crop_scale": [0.8, 1.0]}, "l2": 0.0,
               "val_fraction": 0.1, "patience": 3, "keep": "best validation epoch of the second half"}
#: The accuracy the audit CNN must reach on the original images (mean over seeds) at the audit profile.
MIN_ORIGINAL_ACCURACY = 0.95
#: Loss-equivalence tolerance: curves "coincide" when their largest difference is below it.
LOSS_TOLERANCE = 1e-5

_CACHE_VERSION = 2  # bump when the training helpers change what a cached model means
_MEMO: dict[str, tuple[dict, list]] = {}

AUDITS: dict[str, dict[str, str]] = {
    "shortcut_colour": {
        "title": "Colour-only baselines",
        "question": "How much of the four-class accuracy on taleqani-all needs no morphology at all?"},
    "shortcut_cnn": {
        "title": "The CNN without colour, without stain differences, without the scale bar",
        "question": "Does the CNN keep its accuracy on grey-scale, stain-normalised and scale-bar-masked inputs, "
                    "against a mask of the same size in another corner?"},
    "segmented": {
        "title": "Background removed",
        "question": "Does the CNN need the background of the field, or the cells alone?"},
    "acquisition_groups": {
        "title": "A proxy for patients: acquisition groups",
        "question": "How much does a random image-level split gain over a split that keeps images of one "
                    "acquisition signature together?"},
    "leakage_duplicates": {
        "title": "Random vs duplicate-aware split",
        "question": "What do the 40 byte-identical pairs of taleqani-all do to a random split?"},
    "leakage_augment": {
        "title": "Augment-then-split vs split-then-augment",
        "question": "How much accuracy does the multicancer-all construction (augment, then split) add?"},
    "leakage_subject": {
        "title": "Image-level vs subject-level split (C-NMC 2019)",
        "question": "How much does an image-level split of C-NMC overstate the accuracy on unseen patients?"},
    "loss_equivalence": {
        "title": "Three names, one loss",
        "question": "Do categorical CE, sparse CE and KL divergence train DSCNet differently?"},
    "external_pbc": {
        "title": "External lymphocytes",
        "question": "What do models trained on taleqani-all make of normal lymphocytes from another laboratory?"},
}

#: The audits run as arms x seeds, one record per arm and seed (see :func:`run_arm`), pooled into one
#: summary record per audit (:func:`summarise_audit`). The other audits write one record each.
SEEDED_AUDITS = ("shortcut_cnn", "segmented", "acquisition_groups", "leakage_duplicates", "leakage_augment",
                 "external_pbc")
#: The arms of each seeded audit, in running order.
ARMS: dict[str, tuple[str, ...]] = {
    "shortcut_cnn": ("original", "grey", "reinhard", "mask_scale_bar", "mask_control"),
    "segmented": ("original", "segmented", "colour_hist_original", "colour_hist_segmented"),
    "acquisition_groups": ("random", "group_disjoint"),
    "leakage_duplicates": ("duplicate_aware", "random"),
    "leakage_augment": ("augment_then_split", "split_then_augment"),
    "external_pbc": ("original", "grey", "reinhard", "mask_scale_bar", "mask_control", "colour_hist"),
}
#: The image alterations of ``shortcut_cnn`` (trained arms) and the test-time-only ones of its original arm.
VARIANTS = ("original", "grey", "reinhard", "mask_scale_bar", "mask_control")


def list_audits() -> list[str]:
    """The audit ids, in the book's order."""
    return list(AUDITS)


def _check_audit(audit_id: str) -> None:
    if audit_id not in AUDITS:
        raise ValueError(f"unknown audit {audit_id!r}; valid: {', '.join(AUDITS)}")


# --------------------------------------------------------------------------------------------
# Settings (what an audit computes; hashed into its record key)
# --------------------------------------------------------------------------------------------


def audit_profile(profile: str | Profile) -> Profile:
    """The profile as the audits run it: :func:`leukcore.profiles.get_profile` with the overrides
    of :data:`AUDIT_BUDGET` (``image_size``, ``max_per_class``, ``epochs``) applied."""
    from dataclasses import replace

    prof = get_profile(profile) if isinstance(profile, str) else profile
    over = {k: v for k, v in AUDIT_BUDGET[prof.name].items() if k in _PROFILE_OVERRIDES}
    return replace(prof, **over) if over else prof


def default_seeds(profile: str) -> tuple[int, ...]:
    """The seeds ``leukcore audits run`` uses at ``profile`` when none are given."""
    return tuple(AUDIT_BUDGET[audit_profile(profile).name]["seeds"])


def _image_size(prof: Profile) -> int:
    return max(int(prof.image_size or 224), prof.min_image_size, 32)


def _train_settings(prof: Profile) -> dict:
    epochs = int(AUDIT_EPOCHS if prof.epochs is None else min(AUDIT_EPOCHS, prof.epochs))
    return {**AUDIT_TRAIN, "epochs": epochs, "batch_size": int(prof.batch_size or 32),
            "stop_from_epoch": epochs // 2 + 1}


def audit_settings(audit_id: str, profile: str = "smoke") -> dict:
    """Everything that defines what ``audit_id`` computes at ``profile`` (stored and hashed in its records).

    Common: ``image_size`` (the profile's; 224, the native size, when it sets none),
    ``model`` / ``model_kw`` (:data:`AUDIT_MODEL`), ``train`` (:data:`AUDIT_TRAIN` with the
    profile's epochs and batch size, and the first epoch at which early stopping may stop),
    ``split`` (stratified 80/20, duplicate-aware), ``bootstrap`` resamples and the profile.
    """
    _check_audit(audit_id)
    prof = audit_profile(profile)
    budget = AUDIT_BUDGET[prof.name]
    common = {"audit": audit_id, "image_size": _image_size(prof), "bootstrap": int(prof.bootstrap),
              "max_per_class": prof.max_per_class, "profile": prof.settings(),
              "profile_overrides": {k: v for k, v in budget.items() if k in _PROFILE_OVERRIDES},
              "cache_version": _CACHE_VERSION}
    cnn = {"model": AUDIT_MODEL, "model_kw": {}, "train": _train_settings(prof),
           "split": {"kind": "fractions", "fractions": {"train": 0.8, "test": 0.2}, "group_by": "duplicates"}}
    colour = {"features": {"hist": {"bins": 16, "per_channel": True, "normalised": True}, "moments": ["mean", "std"]},
              "classifier": {"name": "logistic_regression", "C": 1.0, "max_iter": 5000, "standardise": True}}
    if audit_id == "shortcut_colour":
        return {**common, **colour, "cv": {"k": 5, "stratified": True, "group_by": "duplicates"},
                "seeds": "none: the cross-validation is deterministic given its folds (seed 0)"}
    if audit_id == "shortcut_cnn":
        return {**common, **cnn, "arms": list(ARMS[audit_id]),
                "mask": {"box": list(SCALE_BAR_BOX), "fill": "image_mean", "scale_bar_corner": "bottom-right",
                         "control_corner": "top-left"},
                "reinhard_target": "pooled LAB mean/std of the training part (OpenCV 8-bit LAB)",
                "test_time_variants": list(VARIANTS[1:])}
    if audit_id == "segmented":
        return {**common, **cnn, **colour, "arms": list(ARMS[audit_id]), "variants": ["original", "segmented"],
                "test_time_variants": ["segmented"]}
    if audit_id == "acquisition_groups":
        return {**common, **cnn, "arms": list(ARMS[audit_id]),
                "signature": {"border": "outer ring, fraction of the side", "columns": "leukcore.audits.acquisition",
                              "file_number_weight": 1.0},
                "n_groups": "89 (the patients the dataset names), or a quarter of the images below 890",
                "clustering": "ward on standardised signatures"}
    if audit_id == "leakage_duplicates":
        return {**common, **cnn, "arms": {"random": None, "duplicate_aware": "duplicates"}}
    if audit_id == "leakage_augment":
        n = int(budget["aug_per_class"])
        return {**common, **cnn, "per_class": n, "paper_per_class": PAPER_AUGMENTED_PER_CLASS,
                "originals_fraction": n / PAPER_AUGMENTED_PER_CLASS, "augment": "dscnet",
                "min_originals_per_class": 5,
                "leaky_split": {"kind": "fractions", "fractions": {"train": 0.8, "test": 0.2}, "group_by": None}}
    if audit_id == "leakage_subject":
        return {**common, **cnn, "num_classes": 2, "arms": {"image_level": None, "subject_disjoint": "subject"},
                "dataset_split": "train"}
    if audit_id == "loss_equivalence":
        return {**common, "model": LOSS_MODEL, "model_kw": {}, "losses": ["mce", "sparse_ce", "kl"],
                "n_images": int(budget["leq_images"]), "epochs": int(budget["leq_epochs"]),
                "batch_size": int(prof.batch_size or 32), "optimizer": "adam", "lr": 1e-3,
                "dtype": "float32", "device": "cpu", "deterministic": True, "tolerance": LOSS_TOLERANCE}
    # external_pbc
    return {**common, **cnn, **colour, "arms": list(ARMS[audit_id]), "benign_label": 0, "interval": "wilson",
            "ood_score": "maximum softmax probability; AUROC of Taleqani test (in-distribution) vs PBC",
            "external_max_per_class": prof.max_per_class}


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

_SYNTH_LAYOUT = {"taleqani-all": "taleqani", "pbc-lymphocytes": "pbc", "cnmc-2019": "cnmc"}


def _cap(table: pd.DataFrame, n: int | None, seed: int, *, prefer_duplicates: bool = False) -> pd.DataFrame:
    """At most ``n`` images per class, seeded; byte-identical groups are kept whole.

    Within each class the duplicate groups are taken in a seeded random order (groups of
    twins first when ``prefer_duplicates``) until the next group would pass ``n``.
    """
    if not n:
        return table
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for _, g in table.groupby("label", sort=True):
        groups = [grp.index.to_numpy() for _, grp in g.groupby("sha256", sort=True)]
        order = rng.permutation(len(groups))
        if prefer_duplicates:
            order = sorted(order, key=lambda i: len(groups[i]) < 2)  # stable sort: groups of twins first
        taken = 0
        for i in order:
            if taken + len(groups[i]) > n:
                continue
            keep += groups[i].tolist()
            taken += len(groups[i])
            if taken >= n:
                break
    attrs = dict(table.attrs)
    out = table.loc[sorted(keep)].reset_index(drop=True)
    out.attrs = attrs
    return out


def audit_data(dataset_id: str, profile: str | Profile, data_root=None, *, seed: int = 0, cap: bool = True,
               synthetic_fallback: bool = True, prefer_duplicates: bool = False, **options):
    """The table an audit uses, as :class:`leukcore.experiments.ExperimentData`.

    The real dataset when present (``is_papers`` true), else the synthetic stand-in in its
    layout (``dataset_id == "synthetic"``); a real path holding ``SYNTHETIC.txt`` counts as
    synthetic. Unlabelled rows are dropped; ``cap`` applies the profile's ``max_per_class``
    (:func:`_cap`). ``synthetic_fallback=False`` lets :class:`leukcore.data.DataError` through.
    """
    from ..experiments import ExperimentData

    prof = audit_profile(profile)
    try:
        table = D.load_dataset(dataset_id, data_root, verbose=False, **options)
        root = Path(table.attrs.get("root", "."))
        if any((p / "SYNTHETIC.txt").is_file() for p in (root, root.parent)):
            table.attrs.update(dataset="synthetic", stands_in_for=dataset_id)
            data = ExperimentData(table, "synthetic", False, dataset_id,
                                  f"SYNTHETIC tree in the {dataset_id} layout at {root}")
        else:
            data = ExperimentData(table, dataset_id, True, None, f"{dataset_id} ({table.attrs.get('root_source')})")
    except D.DataError as missing:
        if not synthetic_fallback:
            raise
        size = min(max(prof.image_size or 64, 32), 96)
        table = D.load_synthetic(layout=_SYNTH_LAYOUT[dataset_id], n_per_class=prof.synthetic_per_class,
                                 size=size, seed=seed, **options)
        data = ExperimentData(table, "synthetic", False, dataset_id,
                              f"SYNTHETIC stand-in for {dataset_id} (absent: {str(missing).split(';')[0]})")
    t = data.table
    if (t["label"] < 0).any():
        attrs = dict(t.attrs)
        t = t[t["label"] >= 0].reset_index(drop=True)
        t.attrs = attrs
    if cap:
        t = _cap(t, prof.max_per_class, seed, prefer_duplicates=prefer_duplicates)
    data.table = t
    return data


def _taleqani(prof: Profile, data_root, seed: int, **kw):
    return audit_data("taleqani-all", prof, data_root, seed=seed, variant="original", **kw)


def _index(table: pd.DataFrame, ids) -> np.ndarray:
    pos = pd.Series(np.arange(len(table)), index=table["id"])
    return pos.loc[list(ids)].to_numpy()


def _classes(table: pd.DataFrame) -> list[str]:
    return list(table.attrs.get("classes") or sorted(table["class_name"].unique()))


# --------------------------------------------------------------------------------------------
# Image alterations and counts
# --------------------------------------------------------------------------------------------


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


def count_twins(table: pd.DataFrame, split: dict[str, list[str]], a: str = "train", b: str = "test") -> dict:
    """Byte-identical images across two parts of a split.

    Returns ``{"test_with_twin": number of ``b`` images whose SHA-256 also occurs in ``a``,
    "groups_straddling": duplicate groups with members on both sides, "duplicate_groups": all
    groups of byte-identical images in ``table``, "test_ids_with_twin": their ids}``.
    """
    sha = dict(zip(table["id"], table["sha256"]))
    in_a = {sha[i] for i in split[a]}
    in_b = {sha[i] for i in split[b]}
    twins = sorted(i for i in split[b] if sha[i] in in_a)
    groups = D.find_duplicates(table)
    straddling = sum(1 for g in groups if {sha[i] for i in g} & in_a & in_b)
    return {"test_with_twin": len(twins), "groups_straddling": int(straddling), "duplicate_groups": len(groups),
            "test_ids_with_twin": twins}


def wilson_interval(k: int, n: int, level: float = 0.95) -> dict:
    """Wilson score interval for a binomial proportion ``k / n``.

    With ``p = k / n`` and ``z`` the ``(1 + level) / 2`` normal quantile:
    ``centre = (p + z^2 / 2n) / (1 + z^2 / n)``,
    ``half = z sqrt(p (1 - p) / n + z^2 / 4n^2) / (1 + z^2 / n)``;
    interval ``[centre - half, centre + half]``. ``n = 0`` gives NaNs.
    Returns ``{"point", "low", "high", "k", "n", "level", "method": "wilson"}``.
    """
    from scipy.stats import norm

    if n <= 0:
        return {"point": math.nan, "low": math.nan, "high": math.nan, "k": int(k), "n": int(n), "level": level,
                "method": "wilson"}
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    z = float(norm.ppf(0.5 + level / 2))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return {"point": p, "low": max(0.0, centre - half), "high": min(1.0, centre + half), "k": int(k), "n": int(n),
            "level": level, "method": "wilson"}


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


def _colour_classifier(settings: dict, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    c = settings["classifier"]
    return make_pipeline(StandardScaler(), LogisticRegression(C=c["C"], max_iter=c["max_iter"], random_state=seed))


def _full_proba(clf, f: np.ndarray, n_classes: int) -> np.ndarray:
    p = clf.predict_proba(f)
    out = np.zeros((len(f), n_classes))
    out[:, np.asarray(clf.classes_, dtype=int)] = p
    return out


# --------------------------------------------------------------------------------------------
# Metrics and records
# --------------------------------------------------------------------------------------------


def _ci(y, prob, metric: str, class_names, n_boot: int, seed: int) -> dict:
    from ..metrics import bootstrap_ci

    return bootstrap_ci(y, prob, metric, n=n_boot, seed=seed, class_names=class_names)


def _block(y: np.ndarray, prob: np.ndarray, class_names: list[str], n_boot: int, seed: int) -> dict:
    """Accuracy and macro F1 with percentile bootstrap intervals, the confusion matrix and ``n``."""
    from ..metrics import compute_metrics

    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            m = compute_metrics(y, prob, class_names=class_names)
    return {"n": int(len(y)), "accuracy": _ci(y, prob, "accuracy", class_names, n_boot, seed),
            "f1_macro": _ci(y, prob, "f1.macro", class_names, n_boot, seed),
            "confusion_matrix": m["confusion_matrix"],
            "recall_per_class": m["sensitivity"]["per_class"]}


def _row(arm: str, metric: str, ci: dict, n: int | None = None, note: str = "") -> dict:
    return {"arm": arm, "metric": metric, "point": ci.get("point"), "low": ci.get("low"), "high": ci.get("high"),
            "n": n if n is not None else ci.get("n"), "note": note}


def _resolve_device(device: str) -> str:
    from ..engine import resolve_device

    return str(resolve_device(device))


def _record(audit_id: str, prof: Profile, seed: int, settings: dict, dataset: dict, t0: float, device: str,
            results: dict, rows: list[dict], headline: str, deviations: list[str], *, status: str = "complete",
            **extra) -> dict:
    code = current_code_state()  # read when the audit started (run_audit's snapshot)
    return {"status": status, "paper": PAPER, "experiment": audit_id, "title": AUDITS[audit_id]["title"],
            "question": AUDITS[audit_id]["question"], "profile": prof.name, "seed": int(seed),
            "settings": settings, "settings_hash": settings_hash(settings), "dataset": dataset,
            "results": results, "rows": rows, "headline": headline, "deviations": deviations,
            "commit": git_commit(state=code), "code": code_block(code)[0], "_diff": code_block(code)[1],
            "versions": library_versions(), "device": device_description(device),
            "wall_time_s": round(time.perf_counter() - t0, 2), **extra}


def _combined_fingerprint(train_fp: str, external_fp: str) -> str:
    """Fingerprint of a run that used two datasets: SHA-256 of ``train:<fp>\\nexternal:<fp>`` (16 hex chars)."""
    return hashlib.sha256(f"train:{train_fp}\nexternal:{external_fp}".encode()).hexdigest()[:16]


def _write(rec: dict, results_dir, write: bool) -> dict:
    if write:
        rec["_path"] = str(write_record(rec, root=results_dir))
    return rec


# --------------------------------------------------------------------------------------------
# Training (one helper for every CNN of the audits; trained models are cached by content)
# --------------------------------------------------------------------------------------------


def _train_config(settings: dict, *, seed: int, device: str, progress: bool):
    from ..engine import TrainConfig

    t = settings["train"]
    return TrainConfig(optimizer=t["optimizer"], lr=float(t["lr"]), epochs=int(t["epochs"]),
                       batch_size=int(t["batch_size"]), l2=float(t["l2"]), loss=t["loss"], augment=t["augment"],
                       augment_kwargs={k: (tuple(v) if isinstance(v, list) else v)
                                       for k, v in t.get("augment_kwargs", {}).items()},
                       scheduler=t.get("scheduler"),
                       seed=seed, device=device, progress=progress)


def _model_cache_file(key: str) -> Path:
    return D.cache_dir() / "audits" / "models" / f"{key}.pt"


def validation_carve(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(fit, val)`` of a seeded, stratified hold-out of ``fraction`` of ``(x, y)``.

    Identical images (same bytes at the working size: the byte-identical twins of the data) stay on
    one side. Each class gives ``round(fraction * n_c)`` images (at least one when it has two
    groups or more); nothing is held out when ``fraction`` is 0 or the set is too small.
    """
    n = len(y)
    if fraction <= 0 or n < 4:
        return np.arange(n), np.zeros(0, dtype=int)
    keys = [hashlib.sha1(np.ascontiguousarray(x[i]).tobytes()).hexdigest() for i in range(n)]
    rng = np.random.default_rng(seed + 7919)
    val: list[int] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        groups: dict[str, list[int]] = {}
        for i in idx:
            groups.setdefault(keys[i], []).append(int(i))
        order = list(groups.values())
        if len(order) < 2:
            continue
        order = [order[j] for j in rng.permutation(len(order))]
        want = max(1, int(round(fraction * len(idx))))
        taken = 0
        for g in order:
            if taken >= want:
                break
            val += g
            taken += len(g)
    val_arr = np.array(sorted(val), dtype=int)
    fit_arr = np.setdiff1d(np.arange(n), val_arr)
    return fit_arr, val_arr


class EarlyStop:
    """``fit`` callback: early stopping confined to the second half of the epochs.

    Only epochs from ``stop_from`` on compete for "best" (lowest validation loss); their best
    weights are kept (``best_state``), and training stops when ``patience`` epochs from then on
    have not improved on it. The first half is left alone: at a high learning rate the
    validation loss swings from epoch to epoch, and a best epoch taken there stops too early.
    """

    def __init__(self, patience: int, stop_from: int):
        self.patience, self.stop_from = int(patience), int(stop_from)
        self.best, self.best_epoch, self.best_state, self.stopped_at = math.inf, None, None, None

    def __call__(self, epoch: int, rec: dict, model) -> bool:
        vl = rec.get("val_loss")
        if vl is None or epoch < self.stop_from:
            return False
        if vl < self.best:
            self.best, self.best_epoch = vl, epoch
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if epoch - self.best_epoch >= self.patience:
            self.stopped_at = epoch
            return True
        return False


def trained_model(settings: dict, n_classes: int, x_train: np.ndarray, y_train: np.ndarray, *, seed: int = 0,
                  device: str = "cpu", progress: bool = False):
    """The audit CNN trained on ``(x_train, y_train)``; returns ``(model, info, from_cache)``.

    Initial weights come from ``torch.manual_seed(seed)``, the data order and augmentation from
    ``seed`` (:func:`leukcore.engine.fit`). When the recipe has a ``val_fraction``, that part of
    the training images (:func:`validation_carve`) is held out for early stopping
    (``patience``, from epoch ``stop_from_epoch``), and the best validation epoch's weights are
    kept. ``info``: ``history`` (per epoch), ``best_epoch``, ``epochs_run``, ``stopped_early``,
    ``n_fit``, ``n_val``, ``train_seconds``. A model is identified by the SHA-256 of the training
    images and labels (in order), the model, the recipe, ``n_classes``, the seed and the device
    type; it is kept in memory and under ``<cache_dir>/audits/models/<key>.pt`` so that audits
    sharing a model train it once.
    """
    import torch

    from ..engine import fit, save_atomic
    from ..models import create_model

    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x_train).tobytes())
    h.update(np.ascontiguousarray(y_train, dtype=np.int64).tobytes())
    key = settings_hash({"data": h.hexdigest(), "shape": list(np.shape(x_train)), "model": settings["model"],
                         "model_kw": settings["model_kw"], "train": settings["train"], "n_classes": int(n_classes),
                         "seed": int(seed), "device": device.split(":")[0], "v": _CACHE_VERSION})
    model = create_model(settings["model"], num_classes=n_classes, **settings["model_kw"])
    cached = _MEMO.get(key)
    if cached is None:
        f = _model_cache_file(key)
        if f.is_file():
            try:
                ck = torch.load(f, map_location="cpu", weights_only=True)
                cached = (ck["state"], dict(ck["info"]))
            except Exception:  # noqa: BLE001 - a damaged cache file is retrained
                cached = None
    if cached is not None:
        model.load_state_dict(cached[0])
        model.eval()
        _MEMO[key] = cached
        return model, cached[1], True
    t = settings["train"]
    fit_i, val_i = validation_carve(x_train, y_train, float(t.get("val_fraction", 0.0)), seed)
    if not len(val_i):
        fit_i = np.arange(len(y_train))
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = create_model(settings["model"], num_classes=n_classes, **settings["model_kw"])
    cfg = _train_config(settings, seed=seed, device=device, progress=progress)
    stop = EarlyStop(int(t.get("patience", 0) or 10 ** 6), int(t.get("stop_from_epoch", 1)))
    val = (x_train[val_i], y_train[val_i]) if len(val_i) else None
    res = fit(model, (x_train[fit_i], y_train[fit_i]), val, None, config=cfg, callbacks=[stop] if val else None)
    if stop.best_state is not None:
        model.load_state_dict(stop.best_state)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    info = {"history": [dict(r) for r in res.history],
            "best_epoch": stop.best_epoch if stop.best_state is not None else len(res.history),
            "epochs_run": len(res.history),
            "stopped_early": stop.stopped_at is not None and stop.stopped_at < int(t["epochs"]), "n_fit": int(len(fit_i)), "n_val": int(len(val_i)),
            "train_seconds": round(time.perf_counter() - t0, 2)}
    _MEMO[key] = (state, info)
    try:
        save_atomic({"state": state, "info": info}, _model_cache_file(key))
    except OSError:
        pass
    return model, info, False


def _predict(model, x: np.ndarray, device: str) -> np.ndarray:
    from ..engine import predict_proba

    if len(x) == 0:
        return np.zeros((0, 0))
    return predict_proba(model, x, device=device, batch_size=128)


# --------------------------------------------------------------------------------------------
# 1. Colour-only baselines
# --------------------------------------------------------------------------------------------


def shortcut_colour(profile: str = "smoke", data_root=None, seed: int = 0, results_dir=None, device: str = "auto",
                    *, progress: bool = False, write: bool = True) -> dict:
    """Colour-histogram and colour-moment logistic regressions on taleqani-all (Original), 5-fold.

    Features (:func:`colour_features`) of the images at the profile's size; a standardised
    multinomial logistic regression (``C = 1``); stratified 5-fold cross-validation that keeps
    byte-identical images in one fold (``split_kfold(..., group_by="duplicates")``, seeded);
    the out-of-fold probabilities of all folds are pooled and scored: accuracy and macro F1
    with a percentile bootstrap interval over the pooled predictions. The majority-class rate
    is given for reference.
    """
    prof = audit_profile(profile)
    st = audit_settings("shortcut_colour", profile)
    t0 = time.perf_counter()
    data = _taleqani(prof, data_root, seed)
    table = data.table
    names = _classes(table)
    x, table = D.load_images(table, st["image_size"])
    y = table["label"].to_numpy()
    k = min(st["cv"]["k"], int(table.groupby("label")["sha256"].nunique().min()))
    folds = D.split_kfold(table, k, seed=seed, group_by="duplicates")
    feats = {"hist": colour_features(x, "hist", st["features"]["hist"]["bins"]), "moments": colour_features(x, "moments")}
    results: dict[str, Any] = {"folds": k}
    rows = []
    for kind, f in feats.items():
        prob = np.zeros((len(y), len(names)))
        for part in folds:
            tr, te = _index(table, part["train"]), _index(table, part["test"])
            clf = _colour_classifier(st, seed).fit(f[tr], y[tr])
            prob[te] = _full_proba(clf, f[te], len(names))
        block = _block(y, prob, names, st["bootstrap"], seed)
        block["n_features"] = int(f.shape[1])
        results[kind] = block
        label = f"colour histogram ({f.shape[1]} features) + LR" if kind == "hist" else "colour mean + std (6) + LR"
        rows.append(_row(label, "accuracy", block["accuracy"], block["n"]))
        rows.append(_row(label, "F1 macro", block["f1_macro"], block["n"]))
    counts = np.bincount(y, minlength=len(names))
    results["majority_rate"] = float(counts.max() / counts.sum())
    results["chance_rate"] = 1.0 / len(names)
    rows.append({"arm": f"majority class ({names[int(counts.argmax())]})", "metric": "accuracy",
                 "point": results["majority_rate"], "low": None, "high": None, "n": int(counts.sum()), "note": "reference"})
    acc = results["hist"]["accuracy"]
    headline = (f"A colour histogram alone classifies {acc['point']:.1%} [{acc['low']:.1%}, {acc['high']:.1%}] of the "
                f"images correctly (majority class: {results['majority_rate']:.1%}).")
    devs = ["interpretation: one run (seed 0), no seeds: the cross-validation and the logistic regression are "
            "deterministic given the folds, so only the fold assignment would change with the seed",
            "interpretation: duplicate-aware stratified folds (StratifiedGroupKFold on file hashes)",
            f"interpretation: features from images resized to {st['image_size']} px (the profile's size)"]
    dev = _resolve_device(device)
    rec = _record("shortcut_colour", prof, seed, st, data.describe(), t0, dev, results, rows, headline, devs)
    return _write(rec, results_dir, write)


# --------------------------------------------------------------------------------------------
# 2. Seeded audits: one record per arm and seed, pooled into one summary per audit
# --------------------------------------------------------------------------------------------
#
# Each arm of a seeded audit is one training (or one evaluation of trained models) for one seed;
# its record is written as soon as it finishes (``<results>/audits/<profile>/<audit>/<arm>.seed<k>.json``)
# and reused when its key matches (paper, audit, arm, profile, seed, settings hash, data
# fingerprint), so an interrupted run loses only the arm in progress. Every arm record holds
# ``results["measures"]``: ``{name: {"accuracy", "n", "correct", "test_index"}}`` -- the accuracy
# of one model on one test set, the per-image correctness (a string of 0/1) and the test images'
# positions in the audit's table (``None`` for test sets that are not images of the table). The
# summary (:func:`summarise_audit`) pools them: the mean of each measure over seeds with a
# t-interval, each effect as paired differences (measure a - measure b, per seed) with a
# t-interval over seeds, and McNemar per seed on the images both test sets share.

#: The contrasts of each seeded audit: ``(effect, measure a, measure b, what a - b isolates)``.
EFFECTS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "shortcut_cnn": (
        ("grey", "grey", "original", "what colour adds (trained and tested without it)"),
        ("reinhard", "reinhard", "original", "what the stain differences between images add"),
        ("mask_scale_bar", "mask_scale_bar", "original", "the scale-bar corner and any masked corner together"),
        ("mask_control", "mask_control", "original", "any masked corner (the control: no scale bar there)"),
        ("scale_bar", "mask_scale_bar", "mask_control", "the scale bar itself (the mask's own effect removed)"),
        ("test_grey", "original@grey", "original", "the original model on grey test images"),
        ("test_reinhard", "original@reinhard", "original", "the original model on stain-normalised test images"),
        ("test_mask_scale_bar", "original@mask_scale_bar", "original", "the original model, scale bar masked"),
        ("test_mask_control", "original@mask_control", "original", "the original model, control corner masked"),
        ("test_scale_bar", "original@mask_scale_bar", "original@mask_control",
         "the scale bar itself, at test time only"),
    ),
    "segmented": (
        ("segmented", "segmented", "original", "what the background adds (trained and tested without it)"),
        ("test_segmented", "original@segmented", "original", "the original model on background-free test images"),
        ("colour_hist", "colour_hist_segmented", "colour_hist_original",
         "what the background adds to the colour histogram"),
        ("cnn_over_colour", "segmented", "colour_hist_segmented",
         "what the CNN reads beyond colour once the background is gone"),
    ),
    "acquisition_groups": (
        ("group_disjoint", "group_disjoint", "random", "keeping acquisition groups on one side of the split"),
    ),
    "leakage_duplicates": (
        ("random", "random", "duplicate_aware", "letting byte-identical pairs straddle the split"),
    ),
    "leakage_augment": (
        ("leak_own_test", "augment_then_split", "split_then_augment",
         "the construction, each arm scored on its own test set (what a paper would report)"),
        ("leak_unseen", "augment_then_split@unseen", "split_then_augment@unseen",
         "the construction, both arms scored on originals neither saw"),
        ("own_minus_unseen", "augment_then_split", "augment_then_split@unseen",
         "how far augment-then-split's own test overstates its accuracy on unseen originals"),
        ("clean_own_minus_unseen", "split_then_augment", "split_then_augment@unseen",
         "how an augmented test set of unseen originals compares with the unseen originals themselves"),
    ),
    "external_pbc": (),
}

#: An OOD AUROC (maximum softmax, Taleqani test vs PBC) from which a model is said to tell the PBC
#: images apart from its own test images: the usual threshold of "acceptable" discrimination.
OOD_AUROC_SEPARATES = 0.7

#: Per-model numbers of ``external_pbc`` pooled over seeds.
EXTERNAL_METRICS = ("benign_fraction", "mean_confidence_pbc", "mean_confidence_taleqani", "ood_auroc",
                    "taleqani_benign_recall", "taleqani_accuracy")

_CTX: dict[tuple, dict] = {}
_SIGS: dict[str, pd.DataFrame] = {}


def arm_record_path(audit_id: str, arm: str, profile: str, seed: int, results_dir=None) -> Path:
    """Where one arm's record for one seed lives: ``<results>/audits/<profile>/<audit>/<arm>.seed<k>.json``."""
    return results_root(results_dir) / PAPER / profile / audit_id / f"{arm}.seed{int(seed)}.json"


def _check_arm(audit_id: str, arm: str) -> None:
    if audit_id not in SEEDED_AUDITS:
        raise ValueError(f"{audit_id!r} is not a seeded audit; seeded: {', '.join(SEEDED_AUDITS)}")
    if arm not in ARMS[audit_id]:
        raise ValueError(f"unknown arm {arm!r} of {audit_id}; valid: {', '.join(ARMS[audit_id])}")


def _evaluation(y: np.ndarray, prob: np.ndarray, names: list[str], index=None) -> dict:
    """One model on one test set: accuracy (Wilson interval), macro F1, recall per class, the
    confusion matrix, per-image correctness and the test images' positions."""
    import warnings

    from ..metrics import compute_metrics, metric_at

    pred = prob.argmax(1) if len(prob) else np.zeros(0, int)
    ok = pred == np.asarray(y)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = compute_metrics(y, prob, class_names=names) if len(y) else None
    return {"accuracy": wilson_interval(int(ok.sum()), int(len(ok))), "n": int(len(ok)),
            "f1_macro": float(metric_at(m, "f1.macro")) if m else math.nan,
            "recall_per_class": m["sensitivity"]["per_class"] if m else {},
            "confusion_matrix": m["confusion_matrix"] if m else [],
            "correct": to_bits(ok), "test_index": None if index is None else [int(i) for i in index]}


def _measure(ev: dict) -> dict:
    return {"accuracy": ev["accuracy"]["point"], "n": ev["n"], "correct": ev["correct"], "test_index": ev["test_index"]}


def _training(info: dict, cached: bool) -> dict:
    return {**{k: v for k, v in info.items()}, "from_cache": bool(cached)}


def _taleqani_context(audit_id: str, prof: Profile, st: dict, data_root, seed: int, device: str,
                      prefer_duplicates: bool = False) -> dict:
    """The Taleqani originals at the working size, split 80/20 (duplicate-aware, seeded); cached per process."""
    key = ("taleqani", prof.name, str(data_root), int(seed), bool(prefer_duplicates), st["image_size"])
    if key in _CTX:
        return _CTX[key]
    from ..filters import reinhard_target

    data = _taleqani(prof, data_root, seed, prefer_duplicates=prefer_duplicates)
    x, table = D.load_images(data.table, st["image_size"])
    data.table = table
    y = table["label"].to_numpy()
    split = D.split_fractions(table, st["split"]["fractions"], seed=seed, group_by="duplicates")
    tr, te = _index(table, split["train"]), _index(table, split["test"])
    ctx = {"data": data, "x": x, "table": table, "y": y, "names": _classes(table), "split": split, "tr": tr,
           "te": te, "target": reinhard_target(x[tr])}
    _CTX.clear() if len(_CTX) > 4 else None
    _CTX[key] = ctx
    return ctx


def _cnn(st: dict, ctx: dict, x_train: np.ndarray, y_train: np.ndarray, seed: int, device: str, progress: bool):
    return trained_model(st, len(ctx["names"]), x_train, y_train, seed=seed, device=device, progress=progress)


def _arm_shortcut_cnn(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    c = _taleqani_context("shortcut_cnn", prof, st, data_root, seed, device)
    x, y, tr, te, tg = c["x"], c["y"], c["tr"], c["te"], c["target"]
    model, info, cached = _cnn(st, c, apply_variant(x[tr], arm, tg), y[tr], seed, device, progress)
    ev = _evaluation(y[te], _predict(model, apply_variant(x[te], arm, tg), device), c["names"], te)
    res = {"eval": ev, "training": _training(info, cached), "n_train": int(len(tr)), "n_test": int(len(te)),
           "measures": {arm: _measure(ev)}}
    if arm == "original":
        res["test_time"] = {}
        for v in st["test_time_variants"]:
            e = _evaluation(y[te], _predict(model, apply_variant(x[te], v, tg), device), c["names"], te)
            res["test_time"][v] = e
            res["measures"][f"original@{v}"] = _measure(e)
    box = st["mask"]["box"]
    res["mask_boxes_px"] = {k: dict(zip(("y0", "y1", "x0", "x1"), mask_box(st["image_size"], st["image_size"],
                                                                          corner, tuple(box))))
                            for k, corner in (("mask_scale_bar", "bottom-right"), ("mask_control", "top-left"))}
    return res, c["data"].describe()


def _segmented_images(ctx: dict, prof, st, data_root, seed) -> tuple[np.ndarray, dict]:
    """The Segmented variant of the context's images, in the same order (matched by file name)."""
    seg = segmented_table(ctx["table"], prof, data_root, seed)
    xs, _kept = D.load_images(seg, st["image_size"])
    return xs, {"fingerprint": D.fingerprint(seg), "n_images": int(len(seg))}


def _colour_fit_predict(st: dict, x_train, y_train, x_test, n_classes: int, seed: int) -> np.ndarray:
    bins = st["features"]["hist"]["bins"]
    clf = _colour_classifier(st, seed).fit(colour_features(x_train, "hist", bins), y_train)
    return _full_proba(clf, colour_features(x_test, "hist", bins), n_classes)


def _arm_segmented(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    c = _taleqani_context("segmented", prof, st, data_root, seed, device)
    x, y, tr, te, names = c["x"], c["y"], c["tr"], c["te"], c["names"]
    key = ("segmented-images", prof.name, str(data_root), int(seed), st["image_size"])
    if key not in _CTX:
        _CTX[key] = dict(zip(("x", "ds"), _segmented_images(c, prof, st, data_root, seed)))
    xs, seg_ds = _CTX[key]["x"], _CTX[key]["ds"]
    res: dict[str, Any] = {"n_train": int(len(tr)), "n_test": int(len(te))}
    if arm in ("original", "segmented"):
        src = x if arm == "original" else xs
        model, info, cached = _cnn(st, c, src[tr], y[tr], seed, device, progress)
        ev = _evaluation(y[te], _predict(model, src[te], device), names, te)
        res.update(eval=ev, training=_training(info, cached), measures={arm: _measure(ev)})
        if arm == "original":
            e = _evaluation(y[te], _predict(model, xs[te], device), names, te)
            res["test_time"] = {"segmented": e}
            res["measures"]["original@segmented"] = _measure(e)
    else:
        src = x if arm == "colour_hist_original" else xs
        ev = _evaluation(y[te], _colour_fit_predict(st, src[tr], y[tr], src[te], len(names), seed), names, te)
        res.update(eval=ev, measures={arm: _measure(ev)})
    res["segmented_all_zero"] = int((xs.reshape(len(xs), -1).max(axis=1) == 0).sum())  # every pixel 0 at this size
    ds = c["data"].describe()
    ds = {**ds, "fingerprint": _combined_fingerprint(ds["fingerprint"], seg_ds["fingerprint"]),
          "original_fingerprint": ds["fingerprint"], "segmented_fingerprint": seg_ds["fingerprint"]}
    return res, ds


def n_acquisition_groups(n_images: int) -> int:
    """Groups asked of the clustering: the 89 patients of taleqani-all, or a quarter of the images when
    fewer than ten per patient (the small profiles)."""
    from .acquisition import TALEQANI_PATIENTS

    return TALEQANI_PATIENTS if n_images >= 10 * TALEQANI_PATIENTS else max(2, n_images // 4)


def acquisition_table(table: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """``table`` with a ``subject`` column holding each image's acquisition group, and the group report."""
    from .acquisition import group_images, group_report, signatures

    fp = D.fingerprint(table)
    if fp not in _SIGS:
        _SIGS[fp] = signatures(table)
    sig = _SIGS[fp]
    groups = group_images(sig, n_acquisition_groups(len(table)))
    out = table.copy()
    out["subject"] = [f"g{g:03d}" for g in groups]
    out.attrs = dict(table.attrs)
    rep = group_report(table, groups)
    rep["signature_columns_used"] = [k for k in sig.columns if sig[k].notna().any() and sig[k].std() > 0]
    rep["signature_columns_constant"] = [k for k in sig.columns if k not in rep["signature_columns_used"]]
    return out, rep


def _arm_acquisition_groups(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    c = _taleqani_context("acquisition_groups", prof, st, data_root, seed, device)
    x, y, names, table = c["x"], c["y"], c["names"], c["table"]
    res: dict[str, Any] = {}
    if arm == "random":
        tr, te = c["tr"], c["te"]
    else:
        gt, rep = acquisition_table(table)
        sp = D.split_fractions(gt, st["split"]["fractions"], seed=seed, group_by="subject")
        tr, te = _index(gt, sp["train"]), _index(gt, sp["test"])
        res["groups"] = rep
        res["groups_in_test"] = int(gt["subject"].iloc[te].nunique())
    model, info, cached = _cnn(st, c, x[tr], y[tr], seed, device, progress)
    ev = _evaluation(y[te], _predict(model, x[te], device), names, te)
    res.update(eval=ev, training=_training(info, cached), n_train=int(len(tr)), n_test=int(len(te)),
               measures={arm: _measure(ev)})
    return res, c["data"].describe()


def _arm_leakage_duplicates(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    c = _taleqani_context("leakage_duplicates", prof, st, data_root, seed, device, prefer_duplicates=True)
    x, y, names, table = c["x"], c["y"], c["names"], c["table"]
    split = D.split_fractions(table, st["split"]["fractions"], seed=seed, group_by=st["arms"][arm])
    tr, te = _index(table, split["train"]), _index(table, split["test"])
    model, info, cached = _cnn(st, c, x[tr], y[tr], seed, device, progress)
    prob = _predict(model, x[te], device)
    ev = _evaluation(y[te], prob, names, te)
    tw = count_twins(table, split)
    res = {"eval": ev, "training": _training(info, cached), "n_train": int(len(tr)), "n_test": int(len(te)),
           "test_with_twin": tw["test_with_twin"], "groups_straddling": tw["groups_straddling"],
           "duplicate_groups": tw["duplicate_groups"], "max_effect": tw["test_with_twin"] / max(len(te), 1),
           "measures": {arm: _measure(ev)}}
    if tw["test_with_twin"]:
        mask = np.isin(te, _index(table, tw["test_ids_with_twin"]))
        res["accuracy_on_twins"] = float((prob.argmax(1) == y[te])[mask].mean())
    return res, c["data"].describe()


def _arm_leakage_augment(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    c = _taleqani_context("leakage_augment", prof, st, data_root, seed, device)
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
        tr, te = _index(pool, sp["train"]), _index(pool, sp["test"])
        xtr, ytr, xte, yte = xa[tr], ya[tr], xa[te], ya[te]
        res["test_source_in_train"] = float(np.isin(src[te], src[tr]).mean()) if len(te) else math.nan
    else:
        osp = D.split_fractions(sub_t, st["split"]["fractions"], seed=seed, group_by="duplicates")
        otr, ote = _index(sub_t, osp["train"]), _index(sub_t, osp["test"])
        frac = st["split"]["fractions"]
        ntr = {int(k): int(round(frac["train"] * n)) for k in np.unique(ys)}
        nte = {int(k): n - ntr[int(k)] for k in np.unique(ys)}
        xtr, ytr, _, _ = expand_by_augmentation(xs[otr], ys[otr], ntr, preset=st["augment"], seed=seed + 1)
        xte, yte, _, _ = expand_by_augmentation(xs[ote], ys[ote], nte, preset=st["augment"], seed=seed + 2)
        res["test_source_in_train"] = 0.0
    model, info, cached = _cnn(st, c, xtr, ytr, seed, device, progress)
    ev = _evaluation(yte, _predict(model, xte, device), names, None)
    res.update(eval=ev, training=_training(info, cached), n_train=int(len(ytr)), n_test=int(len(yte)),
               measures={arm: _measure(ev)})
    if len(fresh):
        fe = _evaluation(y_all[fresh], _predict(model, x_all[fresh], device), names, fresh)
        res["unseen"] = fe
        res["measures"][f"{arm}@unseen"] = _measure(fe)
    return res, c["data"].describe()


def _arm_external_pbc(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    from .stats import auroc

    c = _taleqani_context("external_pbc", prof, st, data_root, seed, device)
    x, y, tr, te, tg, names = c["x"], c["y"], c["tr"], c["te"], c["target"], c["names"]
    key = ("pbc-images", prof.name, str(data_root), int(seed), st["image_size"])
    if key not in _CTX:
        ext = audit_data("pbc-lymphocytes", prof, data_root, seed=seed, cap=False)
        ext.table = _cap(ext.table, st["external_max_per_class"], seed)
        ext_ds = ext.describe()
        xe, et = D.load_images(ext.table, st["image_size"], on_bad="skip")
        _CTX[key] = {"x": xe, "ds": ext_ds, "skipped": et.attrs.get("skipped", [])}
    xe, ext_ds = _CTX[key]["x"], _CTX[key]["ds"]
    res: dict[str, Any] = {"n_external": int(len(xe)), "skipped": _CTX[key]["skipped"]}
    if arm == "colour_hist":
        pe = _colour_fit_predict(st, x[tr], y[tr], xe, len(names), seed)
        pt = _colour_fit_predict(st, x[tr], y[tr], x[te], len(names), seed)
    else:
        model, info, cached = _cnn(st, c, apply_variant(x[tr], arm, tg), y[tr], seed, device, progress)
        res["training"] = _training(info, cached)
        pe = _predict(model, apply_variant(xe, arm, tg), device)
        pt = _predict(model, apply_variant(x[te], arm, tg), device)
    benign = st["benign_label"]
    called = pe.argmax(1) if len(pe) else np.zeros(0, int)
    ev = _evaluation(y[te], pt, names, te)
    conf_e = pe.max(1) if len(pe) else np.zeros(0)
    conf_t = pt.max(1) if len(pt) else np.zeros(0)
    is_benign = y[te] == benign
    res.update({
        "eval": ev, "measures": {arm: _measure(ev)},
        "benign_fraction": wilson_interval(int((called == benign).sum()), int(len(called))),
        "predicted_counts": {names[k]: int((called == k).sum()) for k in range(len(names))},
        "mean_p_benign": float(pe[:, benign].mean()) if len(pe) else math.nan,
        "mean_confidence_pbc": float(conf_e.mean()) if len(conf_e) else math.nan,
        "mean_confidence_taleqani": float(conf_t.mean()) if len(conf_t) else math.nan,
        "ood_auroc": auroc(conf_t, conf_e),
        "taleqani_benign_recall": float((pt.argmax(1)[is_benign] == benign).mean()) if is_benign.any() else math.nan,
        "taleqani_accuracy": ev["accuracy"]["point"]})
    ds = c["data"].describe()
    ds = {**ds, "fingerprint": _combined_fingerprint(ds["fingerprint"], ext_ds["fingerprint"]),
          "train_fingerprint": ds["fingerprint"]}
    return res, {"dataset": ds, "external_dataset": ext_ds}


_ARM_FUNCTIONS: dict[str, Callable[..., tuple[dict, dict]]] = {
    "shortcut_cnn": _arm_shortcut_cnn, "segmented": _arm_segmented, "acquisition_groups": _arm_acquisition_groups,
    "leakage_duplicates": _arm_leakage_duplicates, "leakage_augment": _arm_leakage_augment,
    "external_pbc": _arm_external_pbc,
}


def find_arm_record(audit_id: str, arm: str, profile: str = "smoke", *, seed: int = 0, results_dir=None,
                    data_root=None, fingerprint: str | None = None) -> dict | None:
    """The complete record of one arm and seed with the same key, else ``None``.

    Key: paper ``"audits"``, audit, arm, profile, seed, settings hash (:func:`audit_settings`) and
    the data fingerprint the audit would use now (:func:`audit_fingerprint`; pass ``fingerprint``
    to skip recomputing it).
    """
    _check_arm(audit_id, arm)
    rec = read_complete(arm_record_path(audit_id, arm, profile, seed, results_dir), seed)
    if rec is None or rec.get("arm") != arm:
        return None
    if rec.get("settings_hash") != settings_hash(audit_settings(audit_id, profile)):
        return None
    fp = fingerprint if fingerprint is not None else audit_fingerprint(audit_id, profile, data_root, seed)
    if rec.get("dataset", {}).get("fingerprint") != fp:
        return None
    rec["_path"] = str(arm_record_path(audit_id, arm, profile, seed, results_dir))
    return rec


def run_arm(audit_id: str, arm: str, profile: str = "smoke", *, seed: int = 0, data_root=None, results_dir=None,
            device: str = "auto", progress: bool = False, write: bool = True) -> dict:
    """Train (or evaluate) one arm of a seeded audit for one seed; write its record at once and return it."""
    _check_arm(audit_id, arm)
    prof = audit_profile(profile)
    st = audit_settings(audit_id, profile)
    dev = _resolve_device(device)
    with code_snapshot(profile):
        t0 = time.perf_counter()
        results, ds = _ARM_FUNCTIONS[audit_id](arm, prof, st, data_root, seed, dev, progress)
        extra = ds if "dataset" in ds else {"dataset": ds}
        code = current_code_state()
        rec = {"status": "complete", "paper": PAPER, "experiment": audit_id, "arm": arm,
               "title": AUDITS[audit_id]["title"], "profile": prof.name, "seed": int(seed), "settings": st,
               "settings_hash": settings_hash(st), **extra, "results": results,
               "commit": git_commit(state=code), "code": code_block(code)[0], "_diff": code_block(code)[1],
               "versions": library_versions(), "device": device_description(dev),
               "wall_time_s": round(time.perf_counter() - t0, 2)}
    if write:
        path = arm_record_path(audit_id, arm, prof.name, seed, results_dir)
        rec["_path"] = str(write_record(rec, path=path))
    return rec


def get_or_run_arm(audit_id: str, arm: str, profile: str = "smoke", *, seed: int = 0, force: bool = False,
                   data_root=None, results_dir=None, device: str = "auto", progress: bool = False) -> dict:
    """The arm's record with the same key (:func:`find_arm_record`), else :func:`run_arm`."""
    if not force:
        rec = find_arm_record(audit_id, arm, profile, seed=seed, results_dir=results_dir, data_root=data_root)
        if rec is not None:
            return rec
    return run_arm(audit_id, arm, profile, seed=seed, data_root=data_root, results_dir=results_dir, device=device,
                   progress=progress)


def _arm_records(audit_id: str, profile: str, results_dir=None) -> dict[int, dict[str, dict]]:
    """``{seed: {arm: record}}`` of the complete arm records on disk with the current settings hash."""
    h = settings_hash(audit_settings(audit_id, profile))
    folder = results_root(results_dir) / PAPER / profile / audit_id
    out: dict[int, dict[str, dict]] = {}
    for p in sorted(folder.glob("*.seed*.json")) if folder.is_dir() else []:
        try:
            rec = read_record(p)
        except ValueError:
            continue
        if rec.get("status") != "complete" or rec.get("settings_hash") != h or rec.get("arm") not in ARMS[audit_id]:
            continue
        rec["_path"] = str(p)
        out.setdefault(int(rec["seed"]), {})[rec["arm"]] = rec
    return out


def _mcnemar_common(ma: dict, mb: dict) -> dict | None:
    """McNemar of two measures on the test images both share (``None`` when they share none)."""
    from .stats import from_bits, mcnemar_correct

    ca, cb = from_bits(ma["correct"]), from_bits(mb["correct"])
    ia, ib = ma.get("test_index"), mb.get("test_index")
    if ia is None or ib is None:
        return None
    common, pa, pb = np.intersect1d(np.asarray(ia), np.asarray(ib), return_indices=True)
    if not len(common):
        return None
    out = mcnemar_correct(ca[pa], cb[pb])
    out["n_common"] = int(len(common))
    return out


def _pp(d: dict) -> str:
    """``-2.1 pp [-3.9, -0.4]`` (or without an interval from one seed)."""
    if d.get("mean") is None:
        return "—"
    def f(v: float) -> str:
        x = round(100 * v, 1)
        return f"{x if x != 0 else 0.0:+.1f}"

    s = f"{f(d['mean'])} pp"
    if d.get("low") is not None:
        s += f" [{f(d['low'])}, {f(d['high'])}]"
    return s


def _pc(d: dict) -> str:
    if d.get("mean") is None:
        return "—"
    s = f"{100 * d['mean']:.1f} %"
    if d.get("low") is not None:
        s += f" [{100 * d['low']:.1f}, {100 * d['high']:.1f}]"
    return s


def _headline(audit_id: str, res: dict) -> str:
    a, e, k = res["arms"], res["effects"], len(res["seeds"])
    seeds = f"{k} seed{'s' if k != 1 else ''}"
    if audit_id == "shortcut_cnn":
        return (f"Audit CNN on the original images {_pc(a['original'])} ({seeds}); grey {_pp(e['grey'])}, "
                f"stain-normalised {_pp(e['reinhard'])}; scale-bar mask vs control mask {_pp(e['scale_bar'])} "
                f"trained, {_pp(e['test_scale_bar'])} at test time only.")
    if audit_id == "segmented":
        return (f"Trained and tested on the background-free images: {_pc(a['segmented'])}, {_pp(e['segmented'])} "
                f"against the original images; the original model on them {_pp(e['test_segmented'])}; the colour "
                f"histogram on them {_pc(a['colour_hist_segmented'])} ({seeds}).")
    if audit_id == "acquisition_groups":
        g = res.get("groups") or {}
        return (f"{g.get('n_groups')} acquisition groups (all {g.get('duplicate_pairs_together')} duplicate pairs "
                f"inside one group, class purity {100 * (g.get('class_purity') or math.nan):.1f} %); group-disjoint "
                f"split vs random split {_pp(e['group_disjoint'])} ({seeds}).")
    if audit_id == "leakage_duplicates":
        return (f"Random split vs duplicate-aware split {_pp(e['random'])} ({seeds}); at most "
                f"{res.get('max_test_with_twin')} test images have a byte-identical twin in training.")
    if audit_id == "leakage_augment":
        return (f"Augment-then-split vs split-then-augment: {_pp(e['leak_own_test'])} on their own test sets, "
                f"{_pp(e['leak_unseen'])} on originals neither saw ({seeds}).")
    if audit_id == "external_pbc":
        r = res["ranges"]
        return (f"Across {len(res['models'])} models trained on taleqani-all, {100 * r['benign_fraction']['min']:.1f}-"
                f"{100 * r['benign_fraction']['max']:.1f} % of the PBC lymphocytes are called Benign, with an OOD "
                f"AUROC of {r['ood_auroc']['min']:.2f}-{r['ood_auroc']['max']:.2f} (0.5 = PBC no less familiar "
                f"than Taleqani's own test images) ({seeds}).")
    return ""


def names_of_benign(arm_records: dict) -> str:
    """The name of the Benign class in an ``external_pbc`` arm record set (the first class)."""
    rec = next(iter(arm_records.values()))
    return list(rec["results"]["predicted_counts"])[rec["settings"]["benign_label"]]


def summarise_audit(audit_id: str, profile: str = "smoke", *, results_dir=None, write: bool = True) -> dict | None:
    """Pool the arm records of ``audit_id`` at ``profile`` into its summary record (``None`` when no seed
    has every arm).

    ``results``: ``seeds`` (those with every arm); ``arms``: per measure, the accuracy's mean over
    seeds with a t-interval (:func:`leukcore.audits.stats.t_interval`); ``effects``: per contrast of
    :data:`EFFECTS`, the paired differences a - b per seed with a t-interval over seeds, the seeds'
    McNemar tests on the test images both share, and what the contrast isolates; plus each audit's
    own numbers. ``wall_time_s`` is the sum over the arm records.
    """
    from .stats import paired_differences, t_interval

    _check_audit(audit_id)
    if audit_id not in SEEDED_AUDITS:
        raise ValueError(f"{audit_id!r} writes one record and needs no summary")
    prof = audit_profile(profile)
    st = audit_settings(audit_id, profile)
    by_seed = _arm_records(audit_id, prof.name, results_dir)
    seeds = sorted(s for s, arms in by_seed.items() if set(ARMS[audit_id]) <= set(arms))
    if not seeds:
        return None
    for s in seeds:  # the arms of one seed must have seen the same data (seeds may differ: capped profiles)
        fps = {by_seed[s][a]["dataset"].get("fingerprint") for a in ARMS[audit_id]}
        if len(fps) > 1:
            raise ValueError(f"{audit_id}: the arm records of seed {s} at {profile} come from different data "
                             f"({sorted(map(str, fps))}); rerun the stale ones")
    measures: dict[str, dict[int, dict]] = {}
    for s in seeds:
        for a in ARMS[audit_id]:
            for name, m in by_seed[s][a]["results"]["measures"].items():
                measures.setdefault(name, {})[s] = m
    arms = {name: {**t_interval([per[s]["accuracy"] for s in seeds if s in per], bounds=(0.0, 1.0)),
                   "n_images": int(np.median([per[s]["n"] for s in per]))} for name, per in measures.items()}
    effects = {}
    for eff, a, b, what in EFFECTS[audit_id]:
        if a not in measures or b not in measures:
            continue
        d = paired_differences({s: measures[a][s]["accuracy"] for s in seeds if s in measures[a]},
                               {s: measures[b][s]["accuracy"] for s in seeds if s in measures[b]}, bounds=(-1.0, 1.0))
        mc = {int(s): _mcnemar_common(measures[a][s], measures[b][s]) for s in d["seeds"]}
        effects[eff] = {**d, "a": a, "b": b, "isolates": what,
                        "mcnemar": {s: v for s, v in mc.items() if v is not None} or None}
    results: dict[str, Any] = {"seeds": seeds, "arms": arms, "effects": effects}
    first = by_seed[seeds[0]]
    train_info = [r["results"].get("training") for s in seeds for r in by_seed[s].values() if r["results"].get("training")]
    fresh = [t for t in train_info if not t.get("from_cache")]
    results["training"] = {"models": len(train_info),
                           "epochs_run": [t["epochs_run"] for t in train_info],
                           "best_epochs": [t["best_epoch"] for t in train_info],
                           # early = before the last epoch (a stop signalled at the last epoch skips nothing)
                           "stopped_early": int(sum(t["epochs_run"] < st["train"]["epochs"] for t in train_info)),
                           "trained_here": len(fresh)}
    if audit_id == "shortcut_cnn":
        results["mask_boxes_px"] = first["original"]["results"]["mask_boxes_px"]
        results["min_original_accuracy"] = MIN_ORIGINAL_ACCURACY
        results["original_meets_minimum"] = bool(arms["original"]["mean"] >= MIN_ORIGINAL_ACCURACY)
    elif audit_id == "acquisition_groups":
        results["groups"] = first["group_disjoint"]["results"]["groups"]
        results["groups_in_test"] = [by_seed[s]["group_disjoint"]["results"]["groups_in_test"] for s in seeds]
    elif audit_id == "leakage_duplicates":
        tw = [by_seed[s]["random"]["results"]["test_with_twin"] for s in seeds]
        results.update(test_with_twin=dict(zip(map(int, seeds), tw)), max_test_with_twin=int(max(tw)),
                       duplicate_groups=first["random"]["results"]["duplicate_groups"],
                       max_effect=t_interval([by_seed[s]["random"]["results"]["max_effect"] for s in seeds]))
    elif audit_id == "leakage_augment":
        r0 = first["augment_then_split"]["results"]
        results.update(per_class=r0["per_class"], paper_per_class=PAPER_AUGMENTED_PER_CLASS, originals_used=r0["originals_used"], n_fresh=r0["n_fresh"],
                       test_source_in_train=t_interval([by_seed[s]["augment_then_split"]["results"]["test_source_in_train"]
                                                        for s in seeds]),
                       n_train={a: first[a]["results"]["n_train"] for a in ARMS[audit_id]})
    elif audit_id == "external_pbc":
        models = {}
        for a in ARMS[audit_id]:
            row = {}
            for k in EXTERNAL_METRICS:
                vals = [by_seed[s][a]["results"][k] for s in seeds]
                vals = [v["point"] if isinstance(v, dict) else v for v in vals]
                row[k] = t_interval(vals)
            row["predicted_counts"] = {c: int(sum(by_seed[s][a]["results"]["predicted_counts"][c] for s in seeds))
                                       for c in first[a]["results"]["predicted_counts"]}
            models[a] = row
        results["models"] = models
        results["n_external"] = first["original"]["results"]["n_external"]
        results["ranges"] = {k: {"min": float(min(m[k]["mean"] for m in models.values())),
                                 "max": float(max(m[k]["mean"] for m in models.values())),
                                 "argmin": min(models, key=lambda n: models[n][k]["mean"]),
                                 "argmax": max(models, key=lambda n: models[n][k]["mean"])}
                             for k in EXTERNAL_METRICS}
        results["ood_auroc_separates"] = OOD_AUROC_SEPARATES
        results["ood_separating_models"] = [a for a, m in models.items() if m["ood_auroc"]["mean"] >= OOD_AUROC_SEPARATES]
        results["benign_majority_models"] = [a for a, m in models.items() if m["benign_fraction"]["mean"] > 0.5]
        groups = {}
        for g, names in (("separating", results["ood_separating_models"]),
                         ("others", [a for a in models if a not in results["ood_separating_models"]])):
            if not names:
                groups[g] = None
                continue
            counts: dict[str, int] = {}
            for a in names:
                for c, k in models[a]["predicted_counts"].items():
                    counts[c] = counts.get(c, 0) + k
            other = {c: k for c, k in counts.items() if c != names_of_benign(first)}
            groups[g] = {"models": names,
                         **{k: {"min": float(min(models[a][k]["mean"] for a in names)),
                                "max": float(max(models[a][k]["mean"] for a in names))}
                            for k in ("benign_fraction", "ood_auroc", "taleqani_benign_recall")},
                         "top_other_class": max(other, key=other.get) if other else None}
        results["ood_groups"] = groups
        spread = {a: (min(m["benign_fraction"]["values"]), max(m["benign_fraction"]["values"])) for a, m in models.items()}
        widest = max(spread, key=lambda a: spread[a][1] - spread[a][0])
        results["benign_fraction_seed_spread"] = {"model": widest, "min": spread[widest][0], "max": spread[widest][1]}
        cnn = {a: m for a, m in models.items() if a != "colour_hist"}
        results["cnn_ranges"] = {k: {"min": float(min(m[k]["mean"] for m in cnn.values())),
                                     "max": float(max(m[k]["mean"] for m in cnn.values()))} for k in EXTERNAL_METRICS}
    rows = []
    for name, d in arms.items():
        rows.append({"arm": name, "metric": f"accuracy, mean over {d['n']} seeds", "point": d["mean"], "low": d["low"],
                     "high": d["high"], "n": d["n_images"], "note": "t-interval over seeds"})
    for eff, d in effects.items():
        ps = ", ".join(f"{v['p_value']:.2g}" for v in (d["mcnemar"] or {}).values())
        rows.append({"arm": f"{d['a']} - {d['b']}", "metric": "paired difference", "point": d["mean"], "low": d["low"],
                     "high": d["high"], "n": d["n"], "note": (f"McNemar p per seed: {ps}; " if ps else "") + d["isolates"]})
    if audit_id == "external_pbc":
        for a, m in results["models"].items():
            for k in ("benign_fraction", "ood_auroc", "taleqani_benign_recall"):
                rows.append({"arm": a, "metric": k.replace("_", " "), "point": m[k]["mean"], "low": m[k]["low"],
                             "high": m[k]["high"], "n": len(seeds), "note": "t-interval over seeds"})
    all_recs = [r for s in seeds for r in by_seed[s].values()]
    commits = sorted({str(r.get("commit")) for r in all_recs})
    devs = [f"interpretation: audit CNN = {AUDIT_MODEL} (leukcore.models), {st['image_size']} px, Adam lr "
            f"{st['train']['lr']} with cosine decay, crop and flips only (no colour jitter: colour is what the audits "
            f"vary), at most {st['train']['epochs']} epochs, early stopping on {st['train']['val_fraction']:.0%} of the "
            f"training part (patience {st['train']['patience']}, never before epoch {st['train']['stop_from_epoch']})",
            "interpretation: intervals are Student-t intervals over seeds; effects are paired by seed (same split, "
            "initial weights and data order within a seed)"]
    rec = {"status": "complete", "paper": PAPER, "experiment": audit_id, "title": AUDITS[audit_id]["title"],
           "question": AUDITS[audit_id]["question"], "profile": prof.name, "seed": int(seeds[0]), "seeds": seeds,
           "settings": st, "settings_hash": settings_hash(st), "dataset": first[ARMS[audit_id][0]]["dataset"],
           "results": results, "rows": rows, "headline": _headline(audit_id, results), "deviations": devs,
           # the newest arm's commit (a string, as in every record); all of them, same settings hash, in arm_commits
           "commit": max(all_recs, key=lambda r: str(r.get("written_at", "")))["commit"], "arm_commits": commits,
           "code": first[ARMS[audit_id][0]].get("code"), "versions": first[ARMS[audit_id][0]].get("versions"),
           "device": first[ARMS[audit_id][0]].get("device"),
           "wall_time_s": round(float(sum(r.get("wall_time_s") or 0 for r in all_recs)), 2),
           "arm_records": [os.path.relpath(r["_path"], results_root(results_dir)) for r in all_recs]}
    if audit_id == "external_pbc":
        rec["external_dataset"] = first["original"].get("external_dataset")
    if write:
        rec["_path"] = str(write_record(rec, root=results_dir))
    return rec


def run_seeded_audit(audit_id: str, profile: str = "smoke", *, seeds=None, data_root=None, results_dir=None,
                     device: str = "auto", force: bool = False, progress: bool = False, log=None) -> dict | None:
    """Every arm of ``audit_id`` for every seed (each reused when its record exists), then the summary."""
    seeds = tuple(default_seeds(profile) if seeds is None else seeds)
    for s in seeds:
        fp = audit_fingerprint(audit_id, profile, data_root, s)
        for arm in ARMS[audit_id]:
            have = None if force else find_arm_record(audit_id, arm, profile, seed=s, results_dir=results_dir,
                                                      fingerprint=fp)
            if have is None:
                t0 = time.perf_counter()
                rec = run_arm(audit_id, arm, profile, seed=s, data_root=data_root, results_dir=results_dir,
                              device=device, progress=progress)
                if log:
                    acc = rec["results"]["measures"].get(arm, {}).get("accuracy")
                    log(f"{audit_id}/{arm} seed {s}: {time.perf_counter() - t0:.0f} s"
                        + (f", accuracy {acc:.3f}" if acc is not None else ""))
            elif log:
                log(f"{audit_id}/{arm} seed {s}: reused")
    return summarise_audit(audit_id, profile, results_dir=results_dir)


# --------------------------------------------------------------------------------------------
# 4. Augment-then-split vs split-then-augment
# --------------------------------------------------------------------------------------------


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




# --------------------------------------------------------------------------------------------
# 5. Image-level vs subject-level split (C-NMC 2019)
# --------------------------------------------------------------------------------------------


def leakage_subject(profile: str = "smoke", data_root=None, seed: int = 0, results_dir=None, device: str = "auto",
                    *, progress: bool = False, write: bool = True) -> dict:
    """Image-level random 80/20 split vs subject-disjoint 80/20 split of C-NMC 2019's training folds.

    Same CNN (2 outputs), budget and seed. Reports each arm's accuracy with a bootstrap
    interval and the number of subjects with images on both sides. ``cnmc-2019`` absent: at
    ``smoke`` the synthetic C-NMC tree stands in; at ``cpu`` / ``paper`` the record says
    ``status: "not run"`` with the reason (and is still written, so the book can say so).
    """
    prof = audit_profile(profile)
    st = audit_settings("leakage_subject", profile)
    t0 = time.perf_counter()
    dev = _resolve_device(device)
    try:
        data = audit_data("cnmc-2019", prof, data_root, seed=seed, synthetic_fallback=prof.name == "smoke",
                          split="train")
    except D.DataError as missing:
        reason = f"not run: cnmc-2019 absent ({str(missing).split(';')[0]})"
        ds = {"id": "cnmc-2019", "fingerprint": None, "is_papers": False, "stands_in_for": None, "note": reason,
              "n_images": 0}
        rec = _record("leakage_subject", prof, seed, st, ds, t0, dev, {}, [], reason, [], status="not run",
                      reason=reason)
        return _write(rec, results_dir, write)
    x, table = D.load_images(data.table, st["image_size"])
    data.table = table
    y, names = table["label"].to_numpy(), _classes(table)
    results: dict[str, Any] = {"n_subjects": int(table["subject"].nunique()), "arms": {}}
    rows = []
    for arm, group_by in st["arms"].items():
        split = D.split_fractions(table, st["split"]["fractions"], seed=seed, group_by=group_by)
        tr, te = _index(table, split["train"]), _index(table, split["test"])
        model, _, cached = trained_model(st, len(names), x[tr], y[tr], seed=seed, device=dev, progress=progress)
        block = _block(y[te], _predict(model, x[te], dev), names, st["bootstrap"], seed)
        shared = set(table["subject"].iloc[tr]) & set(table["subject"].iloc[te])
        block["subjects_on_both_sides"] = len(shared)
        block["trained_from_cache"] = bool(cached)
        results["arms"][arm] = block
        rows.append(_row(arm.replace("_", " ") + " split", "accuracy", block["accuracy"], block["n"],
                         f"{len(shared)} subjects on both sides"))
    a, b = (results["arms"][k]["accuracy"]["point"] for k in ("image_level", "subject_disjoint"))
    headline = f"Image-level split {a:.1%} vs subject-disjoint split {b:.1%} ({a - b:+.1%})."
    rec = _record("leakage_subject", prof, seed, st, data.describe(), t0, dev, results, rows, headline,
                  ["interpretation: training folds 0-2 pooled, then split 80/20 (stratified)"])
    return _write(rec, results_dir, write)


# --------------------------------------------------------------------------------------------
# 6. Three names, one loss
# --------------------------------------------------------------------------------------------


def stepwise_losses(model_fn: Callable[[], Any], x: np.ndarray, y: np.ndarray, loss: str, *, epochs: int = 1,
                    batch_size: int = 32, lr: float = 1e-3, seed: int = 0) -> tuple[list[float], dict]:
    """Train ``model_fn()`` with ``loss`` on the CPU and return ``(per-step losses, final state dict)``.

    The step of :func:`leukcore.train.fit` without its per-epoch bookkeeping: ``torch``
    seeded with ``seed`` before ``model_fn()`` (same initial weights and dropout masks for
    every loss), a ``torch.Generator(seed)`` permutation per epoch (same data order), inputs
    ``(u8 / 255 - mean) / std``, Adam (betas 0.9 / 0.999, eps 1e-7), deterministic algorithms,
    float32. Labels are passed as integers; ``mce`` and ``kl`` one-hot encode them.
    """
    import torch

    from ..losses import make_loss
    from ..engine import TrainConfig, make_optimizer, Normalizer, runtime, model_norm_stats

    cfg = TrainConfig(optimizer="adam", lr=lr, epochs=max(epochs, 1), batch_size=batch_size, loss=loss, seed=seed,
                      device="cpu", deterministic=True, progress=False)
    dev = torch.device("cpu")
    with runtime(cfg, dev):
        torch.manual_seed(seed)
        model = model_fn()
        opt = make_optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
        lf = make_loss(loss)
        norm = Normalizer(*model_norm_stats(model))
        xt = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous()
        yt = torch.as_tensor(np.array(y, dtype=np.int64))
        gen = torch.Generator().manual_seed(seed)
        curve: list[float] = []
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(len(yt), generator=gen)
            for s in range(0, len(yt), batch_size):
                idx = perm[s:s + batch_size]
                if len(idx) < 2:
                    continue
                logits = model(norm.from_uint8(xt[idx])).float()
                out = lf(logits, yt[idx])
                opt.zero_grad(set_to_none=True)
                out.backward()
                opt.step()
                curve.append(float(out.detach()))
    return curve, {k: v.detach().clone() for k, v in model.state_dict().items()}


def loss_equivalence(profile: str = "smoke", data_root=None, seed: int = 0, results_dir=None, device: str = "auto",
                     *, progress: bool = False, write: bool = True) -> dict:
    """DSCNet trained with ``mce``, ``sparse_ce`` and ``kl`` from the same weights in the same order.

    A seeded, stratified slice of taleqani-all (``AUDIT_BUDGET[profile]["leq_images"]``
    images, ``leq_epochs`` epochs) trained by :func:`stepwise_losses` on the CPU whatever
    ``device`` says (bit-level determinism is the point). Records the three per-step loss
    curves, the largest absolute difference between any two curves and between any two final
    weight sets, and whether the curves coincide within ``tolerance`` (1e-5).
    """
    from ..models import create_model

    prof = audit_profile(profile)
    st = audit_settings("loss_equivalence", profile)
    t0 = time.perf_counter()
    data = _taleqani(prof, data_root, seed, cap=False)
    per_class = max(1, st["n_images"] // max(data.table["label"].nunique(), 1))
    data.table = _cap(data.table, per_class, seed)
    x, table = D.load_images(data.table, st["image_size"])
    data.table = table
    y = table["label"].to_numpy()
    n_classes = len(_classes(table))

    def model_fn():
        return create_model(st["model"], num_classes=n_classes, **st["model_kw"])

    curves, states = {}, {}
    for loss in st["losses"]:
        curves[loss], states[loss] = stepwise_losses(model_fn, x, y, loss, epochs=st["epochs"],
                                                     batch_size=st["batch_size"], lr=st["lr"], seed=seed)
    pairs = {}
    names = st["losses"]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = names[i], names[j]
            dc = float(np.max(np.abs(np.array(curves[a]) - np.array(curves[b])))) if curves[a] else 0.0
            dw = max(float((states[a][k].double() - states[b][k].double()).abs().max()) for k in states[a]
                     if states[a][k].is_floating_point())
            pairs[f"{a} vs {b}"] = {"max_abs_loss_diff": dc, "max_abs_weight_diff": dw}
    max_curve = max(p["max_abs_loss_diff"] for p in pairs.values())
    max_weight = max(p["max_abs_weight_diff"] for p in pairs.values())
    weight_scale = max(float(v.double().abs().max()) for v in states[names[0]].values() if v.is_floating_point())
    results = {"curves": curves, "pairs": pairs, "max_abs_loss_diff": max_curve, "max_abs_weight_diff": max_weight,
               "max_abs_weight": weight_scale, "steps": len(curves[names[0]]), "n_images": int(len(y)),
               "coincide": bool(max_curve < st["tolerance"]), "tolerance": st["tolerance"],
               "loss_range": [float(min(curves[names[0]] or [0])), float(max(curves[names[0]] or [0]))]}
    rows = [{"arm": k, "metric": "max |loss difference| per step", "point": v["max_abs_loss_diff"], "low": None,
             "high": None, "n": results["steps"], "note": f"max |weight difference| {v['max_abs_weight_diff']:.2e}"}
            for k, v in pairs.items()]
    headline = (f"Over {results['steps']} steps the three loss curves differ by at most {max_curve:.1e} "
                f"(final weights by {max_weight:.1e}): with one-hot targets mce, sparse_ce and kl are one objective, "
                "so any difference between them in a paper's table is run-to-run noise, not the loss.")
    devs = ["interpretation: deterministic CPU float32; what differs between the losses is only floating-point "
            "rounding in their formulas"]
    rec = _record("loss_equivalence", prof, seed, st, data.describe(), t0, "cpu", results, rows, headline, devs,
                  implication=("DSCNet (Kaur et al. 2023) compares categorical CE, sparse categorical CE and KL "
                               "divergence and ranks KL first; for one-hot labels KL(y||p) = CE(y, p) - H(y) = CE(y, p), "
                               "so the three rows of that comparison train the same model: their differences "
                               "measure run-to-run variation (seed, data order, non-deterministic kernels), not the "
                               "choice of loss."))
    return _write(rec, results_dir, write)


# --------------------------------------------------------------------------------------------
# Reuse before rerun
# --------------------------------------------------------------------------------------------

def _seeded_function(audit_id: str) -> Callable[..., dict]:
    def run(profile: str = "smoke", data_root=None, seed: int = 0, results_dir=None, device: str = "auto", *,
            progress: bool = False, write: bool = True) -> dict:
        for arm in ARMS[audit_id]:
            if write:
                get_or_run_arm(audit_id, arm, profile, seed=seed, data_root=data_root, results_dir=results_dir,
                               device=device, progress=progress)
            else:
                run_arm(audit_id, arm, profile, seed=seed, data_root=data_root, results_dir=results_dir,
                        device=device, progress=progress, write=False)
        return summarise_audit(audit_id, profile, results_dir=results_dir, write=write)

    run.__name__ = audit_id
    run.__doc__ = (f"Every arm of ``{audit_id}`` for ``seed`` (:func:`run_arm`; existing arm records are reused), "
                   f"then its summary over all seeds on disk (:func:`summarise_audit`).")
    return run


shortcut_cnn = _seeded_function("shortcut_cnn")
segmented = _seeded_function("segmented")
acquisition_groups = _seeded_function("acquisition_groups")
leakage_duplicates = _seeded_function("leakage_duplicates")
leakage_augment = _seeded_function("leakage_augment")
external_pbc = _seeded_function("external_pbc")

AUDIT_FUNCTIONS: dict[str, Callable[..., dict]] = {
    "shortcut_colour": shortcut_colour, "shortcut_cnn": shortcut_cnn, "segmented": segmented,
    "acquisition_groups": acquisition_groups, "leakage_duplicates": leakage_duplicates,
    "leakage_augment": leakage_augment, "leakage_subject": leakage_subject, "loss_equivalence": loss_equivalence,
    "external_pbc": external_pbc,
}


def run_audit(audit_id: str, profile: str = "smoke", **kw) -> dict:
    """Run one audit by id (keyword arguments as the audit functions); write and return its record."""
    _check_audit(audit_id)
    with code_snapshot(profile, kw.pop("allow_dirty", None)):  # the code, read before training
        return AUDIT_FUNCTIONS[audit_id](profile, **kw)


def segmented_table(original: pd.DataFrame, prof: Profile, data_root=None, seed: int = 0) -> pd.DataFrame:
    """The Segmented variant's rows for the images of ``original``, in its order (matched by file name)."""
    seg = audit_data("taleqani-all", prof, data_root, seed=seed, cap=False, variant="segmented").table
    by_name = {i.split("/", 1)[-1]: k for k, i in enumerate(seg["id"])}
    rows = [by_name[i.split("/", 1)[-1]] for i in original["id"]]
    out = seg.iloc[rows].reset_index(drop=True)
    out.attrs = dict(seg.attrs)
    return out


def audit_fingerprint(audit_id: str, profile: str = "smoke", data_root=None, seed: int = 0) -> str | None:
    """The data fingerprint ``audit_id`` would record now (``None`` when its data are absent and it would not run)."""
    _check_audit(audit_id)
    prof = audit_profile(profile)
    if audit_id == "leakage_subject":
        try:
            return audit_data("cnmc-2019", prof, data_root, seed=seed, synthetic_fallback=prof.name == "smoke",
                              split="train").describe()["fingerprint"]
        except D.DataError:
            return None
    if audit_id == "leakage_duplicates":
        return _taleqani(prof, data_root, seed, prefer_duplicates=True).describe()["fingerprint"]
    if audit_id == "loss_equivalence":
        st = audit_settings(audit_id, profile)
        data = _taleqani(prof, data_root, seed, cap=False)
        per_class = max(1, st["n_images"] // max(data.table["label"].nunique(), 1))
        return D.fingerprint(_cap(data.table, per_class, seed))
    orig = _taleqani(prof, data_root, seed)
    fp = orig.describe()["fingerprint"]
    if audit_id == "segmented":
        return _combined_fingerprint(fp, D.fingerprint(segmented_table(orig.table, prof, data_root, seed)))
    if audit_id == "external_pbc":
        ext = audit_data("pbc-lymphocytes", prof, data_root, seed=seed, cap=False)
        efp = D.fingerprint(_cap(ext.table, audit_settings(audit_id, profile)["external_max_per_class"], seed))
        return _combined_fingerprint(fp, efp)
    return fp


def find_audit_record(audit_id: str, profile: str = "smoke", *, results_dir=None, seed: int = 0,
                      data_root=None) -> dict | None:
    """The existing complete record of ``audit_id`` for ``seed`` with the same key, else ``None``.

    Key (as :func:`leukcore.experiments.find_record`): paper ``"audits"``, audit id, profile,
    seed, settings hash (:func:`audit_settings`) and the fingerprint of the data the audit
    would use now (:func:`audit_fingerprint`). A seeded audit has it when every arm has a record
    for ``seed`` with that key; the summary over all its seeds on disk is returned.
    """
    _check_audit(audit_id)
    if audit_id in SEEDED_AUDITS:
        fp = audit_fingerprint(audit_id, profile, data_root, seed)
        if any(find_arm_record(audit_id, a, profile, seed=seed, results_dir=results_dir, fingerprint=fp) is None
               for a in ARMS[audit_id]):
            return None
        rec = None
        path = record_path(PAPER, profile, audit_id, results_dir)
        if path.is_file():
            try:
                rec = read_record(path)
            except ValueError:
                rec = None
        if rec is not None and seed in rec.get("seeds", []) and rec.get("settings_hash") == settings_hash(
                audit_settings(audit_id, profile)) and rec.get("dataset", {}).get("fingerprint") == fp:
            rec["_path"] = str(path)
            return rec
        return summarise_audit(audit_id, profile, results_dir=results_dir, write=False)
    rec = read_complete(record_path(PAPER, profile, audit_id, results_dir), seed)
    if rec is None:
        return None
    if rec.get("settings_hash") != settings_hash(audit_settings(audit_id, profile)):
        return None
    if rec.get("dataset", {}).get("fingerprint") != audit_fingerprint(audit_id, profile, data_root, seed):
        return None
    return rec


def get_or_run_audit(audit_id: str, profile: str = "smoke", *, force: bool = False, data_root=None, seed: int = 0,
                     seeds=None, results_dir=None, device: str = "auto", progress: bool = False, log=None) -> dict:
    """An existing complete record with the same key (:func:`find_audit_record`), else run the audit.

    Seeded audits (:data:`SEEDED_AUDITS`) run every arm for each of ``seeds`` (default: ``seed``),
    reusing arm records with the same key, and return the summary over every seed on disk.
    ``force`` reruns. A ``"not run"`` record (``leakage_subject`` without C-NMC) is never
    reused: the audit is asked again, so it runs as soon as the data appear.
    """
    _check_audit(audit_id)
    if audit_id in SEEDED_AUDITS:
        return run_seeded_audit(audit_id, profile, seeds=(seed,) if seeds is None else seeds, data_root=data_root,
                                results_dir=results_dir, device=device, force=force, progress=progress, log=log)
    if not force:
        rec = find_audit_record(audit_id, profile, results_dir=results_dir, seed=seed, data_root=data_root)
        if rec is not None:
            return rec
    return run_audit(audit_id, profile, data_root=data_root, seed=seed, results_dir=results_dir, device=device,
                     progress=progress)


def load_summary(audit_id: str, profile: str = "audit", results_dir=None) -> dict | None:
    """The audit's record at ``profile`` as written (the summary of a seeded audit), without running anything."""
    _check_audit(audit_id)
    path = record_path(PAPER, profile, audit_id, results_dir)
    if not path.is_file():
        return None
    try:
        rec = read_record(path)
    except ValueError:
        return None
    rec["_path"] = str(path)
    return rec


def summarise_all(profile: str = "audit", results_dir=None) -> dict[str, dict | None]:
    """:func:`summarise_audit` for every seeded audit at ``profile`` (``None`` where no seed has every arm)."""
    return {a: summarise_audit(a, profile, results_dir=results_dir) for a in SEEDED_AUDITS}


# --------------------------------------------------------------------------------------------
# Tables and figures (the notebook and the book call these)
# --------------------------------------------------------------------------------------------


def _fmt_frac(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.3f}"


def audit_table(rec: dict) -> pd.DataFrame:
    """The record's ``rows`` as a table: arm, metric, value, 95 % interval, n, note, profile · dataset."""
    from ..records import provenance_label

    label = provenance_label(rec)
    if rec.get("status") != "complete":
        return pd.DataFrame([{"arm": "—", "metric": "—", "value": rec.get("reason", rec.get("status")),
                              "95 % interval": "—", "n": None, "note": "", "profile · dataset": label}])
    out = []
    for r in rec.get("rows", []):
        small = r["point"] is not None and abs(r["point"]) < 1e-3 and r["low"] is None
        value = f"{r['point']:.2e}" if small else _fmt_frac(r["point"])
        ci = "—" if r.get("low") is None else f"[{_fmt_frac(r['low'])}, {_fmt_frac(r['high'])}]"
        out.append({"arm": r["arm"], "metric": r["metric"], "value": value, "95 % interval": ci, "n": r.get("n"),
                    "note": r.get("note", ""), "profile · dataset": label})
    return pd.DataFrame(out)


def _bars(ax, rows: list[dict], title: str, ref: float | None = None, ref_label: str = "") -> None:
    rows = [r for r in rows if r.get("low") is not None]
    labels = [f"{r['arm']}\n{r['metric']}" if len({x['metric'] for x in rows}) > 1 else r["arm"] for r in rows]
    pts = np.array([r["point"] for r in rows], float)
    err = np.array([[r["point"] - r["low"] for r in rows], [r["high"] - r["point"] for r in rows]], float)
    ypos = np.arange(len(rows))[::-1]
    ax.barh(ypos, pts, xerr=err, color="#4c72b0", alpha=0.85, capsize=3)
    ax.set_yticks(ypos)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlim(0, 1)
    if ref is not None:
        ax.axvline(ref, color="grey", ls="--", lw=1)
        ax.text(ref, -0.9, ref_label, fontsize=7, color="grey", ha="left")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("fraction (95 % interval)")


def _interval_bars(ax, labels: list[str], stats: list[dict], *, scale: float = 1.0, zero: bool = False,
                   seeds: dict | None = None) -> None:
    """Horizontal bars of means with their t-intervals over seeds (and each seed's value as a dot)."""
    ypos = np.arange(len(labels))[::-1]
    pts = np.array([scale * (d.get("mean") if d.get("mean") is not None else np.nan) for d in stats], float)
    lo = np.array([scale * d["low"] if d.get("low") is not None else np.nan for d in stats], float)
    hi = np.array([scale * d["high"] if d.get("high") is not None else np.nan for d in stats], float)
    err = np.vstack([np.where(np.isnan(lo), 0, pts - lo), np.where(np.isnan(hi), 0, hi - pts)])
    ax.barh(ypos, pts, xerr=err, color="#4c72b0" if not zero else "#dd8452", alpha=0.8, capsize=3)
    for y0, d in zip(ypos, stats):
        vals = d.get("values") or list((d.get("per_seed") or {}).values())
        ax.plot([scale * v for v in vals], [y0] * len(vals), "k.", ms=4)
    ax.set_yticks(ypos)
    ax.set_yticklabels(labels, fontsize=8)
    if zero:
        ax.axvline(0, color="grey", lw=1)


def _plot_seeded(rec: dict, title: str):
    """A seeded audit's summary: accuracy per measure (left) and the paired effects (right), each a mean
    over seeds with its t-interval and the seeds as dots; ``external_pbc``: per model, the fraction of
    PBC cells called Benign, the OOD AUROC and the Taleqani Benign recall."""
    import matplotlib.pyplot as plt

    res = rec["results"]
    if rec["experiment"] == "external_pbc":
        models = res["models"]
        names = list(models)
        fig, axes = plt.subplots(1, 3, figsize=(12, 0.8 + 0.45 * len(names)), sharey=True)
        for ax, (k, lab) in zip(axes, (("benign_fraction", "PBC lymphocytes called Benign"),
                                       ("ood_auroc", "OOD AUROC (max softmax; 0.5 = none)"),
                                       ("taleqani_benign_recall", "Taleqani Benign recall"))):
            _interval_bars(ax, names, [models[n][k] for n in names])
            ax.set_xlim(0, 1)
            ax.set_xlabel(lab, fontsize=9)
            if k == "ood_auroc":
                ax.axvline(0.5, color="grey", ls="--", lw=1)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        return fig
    arms, effects = res["arms"], res["effects"]
    n = max(len(arms), len(effects), 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 0.9 + 0.42 * n))
    names = list(arms)
    _interval_bars(a1, names, [arms[k] for k in names])
    lo = min([arms[k]["low"] if arms[k].get("low") is not None else arms[k]["mean"] for k in names] + [1.0])
    a1.set_xlim(max(0.0, lo - 0.05), 1.0)
    a1.set_xlabel("accuracy, mean over seeds (t-interval; dots: seeds)", fontsize=9)
    enames = list(effects)
    _interval_bars(a2, [f"{effects[k]['a']} - {effects[k]['b']}" for k in enames], [effects[k] for k in enames],
                   scale=100.0, zero=True)
    a2.set_xlabel("paired difference, percentage points (t-interval over seeds)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_audit(rec: dict):
    """One figure per audit record: bars with 95 % intervals (loss curves for ``loss_equivalence``)."""
    import matplotlib.pyplot as plt

    from ..records import provenance_label

    aid = rec["experiment"]
    title = f"{AUDITS[aid]['title']}  ({provenance_label(rec)})"
    if rec.get("status") != "complete":
        fig, ax = plt.subplots(figsize=(7, 1.2))
        ax.axis("off")
        ax.text(0.01, 0.5, rec.get("reason", "not run"), fontsize=10, va="center")
        ax.set_title(title, fontsize=10)
        return fig
    res = rec["results"]
    if aid in SEEDED_AUDITS:
        return _plot_seeded(rec, title)
    if aid == "loss_equivalence":
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.2))
        for i, (k, c) in enumerate(res["curves"].items()):
            a1.plot(np.arange(1, len(c) + 1), c, lw=2.5 - 0.8 * i, ls=("-", "--", ":")[i % 3], label=k)
        a1.set_xlabel("step")
        a1.set_ylabel("training loss")
        a1.legend(fontsize=8)
        a1.set_title("per-step loss (three curves overlaid)", fontsize=10)
        names = list(res["curves"])
        base = np.array(res["curves"][names[0]])
        for k in names[1:]:
            d = np.abs(np.array(res["curves"][k]) - base)
            a2.semilogy(np.arange(1, len(d) + 1), np.maximum(d, 1e-12), label=f"|{k} - {names[0]}|")
        a2.axhline(res["tolerance"], color="grey", ls="--", lw=1)
        a2.set_xlabel("step")
        a2.set_ylabel("absolute difference (floor 1e-12)")
        a2.legend(fontsize=8)
        a2.set_title("difference between curves", fontsize=10)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        return fig
    rows = rec["rows"]
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * max(len([r for r in rows if r.get('low') is not None]), 1)))
    if aid == "shortcut_colour":
        _bars(ax, [r for r in rows if r["metric"] == "accuracy"], title, res["majority_rate"], "majority class")
    elif aid == "external_pbc":
        _bars(ax, rows, title, None)
        ax.set_xlabel("fraction of PBC lymphocytes called Benign (Wilson 95 % interval); all are normal")
    else:
        _bars(ax, rows, title, 1.0 / max(len(rec["dataset"].get("counts") or {0: 1, 1: 1}), 1), "chance")
    fig.tight_layout()
    return fig


def data_banner(rec: dict) -> str:
    """A loud markdown banner when the audit's data are synthetic; a plain line otherwise."""
    ds = rec.get("dataset", {})
    if rec.get("status") != "complete":
        return f"**Not run**: {rec.get('reason', '')}\n"
    if ds.get("id") == "synthetic":
        return (f"```{{warning}}\nSYNTHETIC DATA ({ds.get('note', '')}): the numbers of this audit describe the "
                f"generator, not {ds.get('stands_in_for')}. Rerun with the real data.\n```\n")
    line = (f"Data: `{ds.get('id')}` ({ds.get('n_images')} images, fingerprint `{ds.get('fingerprint')}`), "
            f"profile `{rec['profile']}`.")
    ext = rec.get("external_dataset")
    if ext:
        if ext.get("id") == "synthetic":
            return (line + f"\n\n```{{warning}}\nSYNTHETIC external set ({ext.get('note', '')}): the fractions below "
                    f"describe the generator, not {ext.get('stands_in_for')}.\n```\n")
        line += f" External: `{ext.get('id')}` ({ext.get('n_images')} images)."
    return line + "\n"


def plot_variant_examples(data_root=None, n: int = 3, size: int = 224, seed: int = 0):
    """``n`` taleqani-all originals (one per class, seeded) as the ``shortcut_cnn`` arms see them, and
    the same images from the Segmented variant.

    Columns: original, grey, Reinhard (target: the pooled statistics of the shown images),
    scale bar masked and control corner masked (each masked box outlined), segmented.
    Synthetic images when the data are absent.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..filters import reinhard_target

    data = audit_data("taleqani-all", "smoke", data_root, seed=seed, cap=False, variant="original")
    t = data.table
    rng = np.random.default_rng(seed)
    rows = [int(rng.choice(np.flatnonzero(t["label"].to_numpy() == c))) for c in sorted(t["label"].unique())][:n]
    sub = t.iloc[rows].reset_index(drop=True)
    sub.attrs = dict(t.attrs)
    x, kept = D.load_images(sub, size)
    try:
        xs, _ = D.load_images(segmented_table(kept, audit_profile("smoke"), data_root, seed), size)
    except (D.DataError, KeyError):
        xs = None
    stats = reinhard_target(x)
    variants = VARIANTS + (("segmented",) if xs is not None else ())
    fig, axes = plt.subplots(len(x), len(variants), figsize=(2.0 * len(variants), 2.1 * len(x)), squeeze=False)
    boxes = {"mask_scale_bar": mask_box(size, size, "bottom-right"), "mask_control": mask_box(size, size, "top-left")}
    for i in range(len(x)):
        for j, v in enumerate(variants):
            ax = axes[i, j]
            ax.imshow(xs[i] if v == "segmented" else apply_variant(x[i:i + 1], v, stats)[0])
            ax.set_xticks([])
            ax.set_yticks([])
            if v in boxes:
                y0, y1, x0, x1 = boxes[v]
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="red", lw=1))
            if i == 0:
                ax.set_title(v.replace("_", " "), fontsize=9)
        axes[i, 0].set_ylabel(kept["class_name"].iat[i], fontsize=9)
    label = "SYNTHETIC stand-in" if data.dataset_id == "synthetic" else data.dataset_id
    fig.suptitle(f"The inputs of the arms ({label})", fontsize=10)
    fig.tight_layout()
    return fig


def model_choice(results_dir=None, profile: str = "audit") -> dict:
    """The measurements behind the choice of the audit CNN: DSCNet's wall time at 224 px on a CPU (the
    Vijayalakshmi paper-profile record run there, if any), the number of trainings the audits need at
    ``profile``, and the audit CNN's mean wall time per trained arm and accuracy on the originals."""
    from ..records import load_records

    out: dict[str, Any] = {"dscnet_cpu_s": None, "dscnet_image_size": None, "dscnet_accuracy": None}
    for r in load_records("dscnet_vijayalakshmi", "paper", root=results_dir):
        if r.get("experiment") == "dscnet" and "CPU" in str(r.get("device")):
            out.update(dscnet_cpu_s=float(r["wall_time_s"]), dscnet_image_size=r.get("settings", {}).get("image_size"),
                       dscnet_accuracy=r.get("metrics", {}).get("accuracy"), dscnet_device=r.get("device"))
            break
    trained, secs = 0, []
    for a in SEEDED_AUDITS:
        for seed_recs in _arm_records(a, profile, results_dir).values():
            for rec in seed_recs.values():
                t = rec["results"].get("training")
                if t and not t.get("from_cache"):
                    trained += 1
                    secs.append(float(rec["wall_time_s"]))
    out.update(trainings=trained, audit_cnn_mean_s=float(np.mean(secs)) if secs else None)
    if out["dscnet_cpu_s"] and trained:
        out["dscnet_all_hours"] = out["dscnet_cpu_s"] * trained / 3600.0
    s = load_summary("shortcut_cnn", profile, results_dir)
    out["audit_cnn_original"] = s["results"]["arms"]["original"] if s else None
    return out
