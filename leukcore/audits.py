"""Audits beyond the papers: shortcuts, leakage, equivalent losses and external validity.

What none of the five papers checked (``../shared/STUDY.md``, "Questions no paper asks").
Every audit is one function with the same signature as an experiment,
``audit(profile="smoke", data_root=None, seed=0, results_dir=None, device="auto")``; it runs,
writes one run record (``<results>/audits/<profile>/<audit id>.json``, the record conventions
of :mod:`leukcore.experiments`) and returns it. :func:`get_or_run_audit` reuses a complete
record with the same key (paper ``"audits"``, audit id, profile, data fingerprint, seed,
settings hash) instead of rerunning.

Audits (ids of :data:`AUDITS`):

``shortcut_colour``
    Colour-only baselines on ``taleqani-all`` (Original): per-channel colour histograms
    (16 bins per channel, 48 features) and, separately, per-channel mean and standard
    deviation (6 features), each with a standardised multinomial logistic regression;
    stratified, duplicate-aware 5-fold cross-validation; accuracy and macro F1 on the pooled
    out-of-fold predictions with a percentile bootstrap interval.
``shortcut_cnn``
    The audit CNN (DSCNet, 4 outputs, see :func:`audit_settings`) trained on the original
    images and on three altered copies -- grey-scale (BT.601 luma), Reinhard stain
    normalisation (target: pooled LAB statistics of the training part) and the scale-bar
    corner masked (:func:`mask_scale_bar`) -- with the same duplicate-aware 80/20 split,
    initial weights, data order and budget. Accuracy with intervals, McNemar against the
    original. The original model is also evaluated on altered test images (no retraining).
``leakage_duplicates``
    Random 80/20 split vs duplicate-aware 80/20 split (the 40 byte-identical pairs kept on
    one side), same model and budget; accuracy of each and the number of test images whose
    byte-identical twin is in the training part (:func:`count_twins`).
``leakage_augment``
    Augment-then-split (the construction of ``multicancer-all``: originals expanded to
    ``N`` images per class with DSCNet's augmentations, then split at random) against
    split-then-augment (originals split first, each part expanded on its own). Same model,
    same training-set size and budget, test sets of the same size and construction. Both
    models are also evaluated on originals neither of them saw (when the profile leaves any).
``leakage_subject``
    Image-level random split vs subject-disjoint split on ``cnmc-2019`` (patient ids in its
    file names). ``cnmc-2019`` is not available here: at ``smoke`` the audit runs on the
    synthetic C-NMC tree, at ``cpu`` / ``paper`` it writes a record with status ``"not run"``.
``loss_equivalence``
    DSCNet trained three times with ``mce``, ``sparse_ce`` and ``kl``: same initial weights,
    same data order, deterministic CPU; the per-step loss curves and the final weights are
    compared (maximum absolute differences).
``external_pbc``
    The ``shortcut_cnn`` models (and the colour-histogram classifier) trained on
    ``taleqani-all`` predict every image of ``pbc-lymphocytes`` (normal lymphocytes from
    another laboratory): the fraction called Benign with a Wilson 95 % interval, per model.

Data. Each audit reads its real dataset when present; otherwise it falls back to the
synthetic stand-in (:func:`leukcore.data.load_synthetic`) and its record says so
(``dataset.id == "synthetic"``, ``dataset.stands_in_for``). A data root whose folder holds
``SYNTHETIC.txt`` (a tree written by :func:`leukcore.data.write_synthetic`) is recorded as
synthetic too. ``dataset.is_papers`` is true when the audit ran on the real dataset it is
defined on (the study's question, not a stand-in).

Record fields (all audits): ``status`` (``"complete"``, or ``"not run"`` with ``reason``),
``paper`` (``"audits"``), ``experiment`` (the audit id), ``title``, ``question``,
``profile``, ``seed``, ``settings`` and ``settings_hash``, ``dataset`` (``id``,
``fingerprint``, ``is_papers``, ``stands_in_for``, ``note``, ``n_images``, ``counts``), for
``external_pbc`` also ``external_dataset``, ``results`` (the audit's numbers: each measured
fraction as ``{"point", "low", "high", "n_boot", "level"}`` or a Wilson interval
``{"point", "low", "high", "k", "n", "method"}``), ``rows`` (the same numbers as a flat
table: ``arm``, ``metric``, ``point``, ``low``, ``high``, ``n``, ``note``), ``headline``
(one sentence), ``deviations`` (choices stated), ``commit``, ``versions``, ``device``,
``wall_time_s``.
"""
from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from . import data as D
from .runs.profiles import Profile, get_profile
from .runs.records import (
    code_block,
    code_snapshot,
    current_code_state,
    device_description,
    git_commit,
    library_versions,
    read_complete,
    record_path,
    settings_hash,
    write_record,
)

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
#: image at 64 px for 3 epochs whatever the per-paper ``cpu`` profile caps (about 9 CPU-minutes for
#: all audits, measured on slices). Other keys: ``aug_per_class``: N of ``leakage_augment`` (the
#: paper's 5,000 at ``paper``); ``leq_images`` / ``leq_epochs``: the training slice of
#: ``loss_equivalence``.
AUDIT_BUDGET: dict[str, dict[str, Any]] = {
    "smoke": {"aug_per_class": 24, "leq_images": 32, "leq_epochs": 1},
    "cpu": {"image_size": 64, "max_per_class": None, "epochs": 3,
            "aug_per_class": 1000, "leq_images": 320, "leq_epochs": 2},
    "paper": {"aug_per_class": PAPER_AUGMENTED_PER_CLASS, "leq_images": 1024, "leq_epochs": 2},
}
_PROFILE_OVERRIDES = ("image_size", "max_per_class", "epochs")

#: The audit CNN: DSCNet (Kaur et al. 2023) as built by :mod:`leukcore.models`, 4 outputs.
AUDIT_MODEL = "dscnet"
#: Its training recipe (the same for every arm of every audit; epochs/batch from the profile).
AUDIT_TRAIN = {"optimizer": "adam", "lr": 1e-3, "loss": "sparse_ce", "augment": "none", "l2": 0.0}
#: Loss-equivalence tolerance: curves "coincide" when their largest difference is below it.
LOSS_TOLERANCE = 1e-5

_CACHE_VERSION = 1  # bump when the training helpers change what a cached model means
_MEMO: dict[str, tuple[dict, list]] = {}

AUDITS: dict[str, dict[str, str]] = {
    "shortcut_colour": {
        "title": "Colour-only baselines",
        "question": "How much of the four-class accuracy on taleqani-all needs no morphology at all?"},
    "shortcut_cnn": {
        "title": "The CNN without colour, without stain differences, without the scale bar",
        "question": "Does the CNN keep its accuracy on grey-scale, stain-normalised and scale-bar-masked inputs?"},
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
        "question": "Do models trained on taleqani-all call normal lymphocytes from another laboratory benign?"},
}


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


def _image_size(prof: Profile) -> int:
    return max(int(prof.image_size or 224), prof.min_image_size, 32)


def _train_settings(prof: Profile) -> dict:
    epochs = AUDIT_EPOCHS if prof.epochs is None else min(AUDIT_EPOCHS, prof.epochs)
    return {**AUDIT_TRAIN, "epochs": int(epochs), "batch_size": int(prof.batch_size or 32)}


def audit_settings(audit_id: str, profile: str = "smoke") -> dict:
    """Everything that defines what ``audit_id`` computes at ``profile`` (stored and hashed in its record).

    Common: ``image_size`` (the profile's; 224, the native size, when it sets none),
    ``model`` / ``model_kw`` (DSCNet with its default widths), ``train`` (Adam, lr 1e-3, sparse
    CE, no augmentation, no L2, ``epochs = min(30, profile cap)``, the profile's batch size),
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
    if audit_id == "shortcut_colour":
        return {**common, "features": {"hist": {"bins": 16, "per_channel": True, "normalised": True},
                                       "moments": ["mean", "std"]},
                "classifier": {"name": "logistic_regression", "C": 1.0, "max_iter": 5000, "standardise": True},
                "cv": {"k": 5, "stratified": True, "group_by": "duplicates"}}
    if audit_id == "shortcut_cnn":
        return {**common, **cnn, "variants": ["original", "grey", "reinhard", "mask_scale_bar"],
                "mask": {"box": list(SCALE_BAR_BOX), "fill": "image_mean"},
                "reinhard_target": "pooled LAB mean/std of the training part (OpenCV 8-bit LAB)",
                "test_time_variants": ["grey", "reinhard", "mask_scale_bar"]}
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
        return {**common, "model": AUDIT_MODEL, "model_kw": {}, "losses": ["mce", "sparse_ce", "kl"],
                "n_images": int(budget["leq_images"]), "epochs": int(budget["leq_epochs"]),
                "batch_size": int(prof.batch_size or 32), "optimizer": "adam", "lr": 1e-3,
                "dtype": "float32", "device": "cpu", "deterministic": True, "tolerance": LOSS_TOLERANCE}
    # external_pbc
    return {**common, **cnn, "models": ["dscnet:original", "dscnet:grey", "dscnet:reinhard",
                                        "dscnet:mask_scale_bar", "colour_hist_lr"],
            "benign_label": 0, "interval": "wilson", "external_max_per_class": prof.max_per_class}


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
    from .runs.experiments import ExperimentData

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


def mask_scale_bar(images: np.ndarray, box: tuple[float, float] = SCALE_BAR_BOX, fill: str = "mean") -> np.ndarray:
    """Cover the bottom-right scale-bar corner (see :data:`SCALE_BAR_BOX`); return a copy.

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
    y0, x0 = scale_bar_box(hgt, wid, box)
    if fill == "black":
        x[:, y0:, x0:] = 0
    else:
        outside = np.ones((hgt, wid), bool)
        outside[y0:, x0:] = False
        mean = x[:, outside].astype(np.float64).mean(axis=1)  # (N, 3)
        x[:, y0:, x0:] = np.clip(np.rint(mean), 0, 255).astype(np.uint8)[:, None, None, :]
    return x[0] if single else x


def apply_variant(images: np.ndarray, variant: str, reinhard_stats=None) -> np.ndarray:
    """The images as one arm of ``shortcut_cnn`` sees them.

    ``original`` (unchanged), ``grey`` (:func:`leukcore.filters.to_grey`), ``reinhard``
    (:func:`leukcore.filters.reinhard_normalize` to ``reinhard_stats = (means, stds)``),
    ``mask_scale_bar`` (:func:`mask_scale_bar`, mean fill).
    """
    from .filters import reinhard_normalize, to_grey

    if variant == "original":
        return images
    if variant == "grey":
        return to_grey(images)
    if variant == "reinhard":
        if reinhard_stats is None:
            raise ValueError("variant 'reinhard' needs reinhard_stats=(means, stds) (leukcore.filters.reinhard_target)")
        return reinhard_normalize(images, *reinhard_stats) if len(images) else images
    if variant == "mask_scale_bar":
        return mask_scale_bar(images)
    raise ValueError(f"unknown variant {variant!r}; valid: original, grey, reinhard, mask_scale_bar")


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
    from .evaluation.metrics import bootstrap_ci

    return bootstrap_ci(y, prob, metric, n=n_boot, seed=seed, class_names=class_names)


def _block(y: np.ndarray, prob: np.ndarray, class_names: list[str], n_boot: int, seed: int) -> dict:
    """Accuracy and macro F1 with percentile bootstrap intervals, the confusion matrix and ``n``."""
    from .evaluation.metrics import compute_metrics

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
    from .engine import resolve_device

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
    from .engine import TrainConfig

    t = settings["train"]
    return TrainConfig(optimizer=t["optimizer"], lr=float(t["lr"]), epochs=int(t["epochs"]),
                       batch_size=int(t["batch_size"]), l2=float(t["l2"]), loss=t["loss"], augment=t["augment"],
                       seed=seed, device=device, progress=progress)


def _model_cache_file(key: str) -> Path:
    return D.cache_dir() / "audits" / "models" / f"{key}.pt"


def trained_model(settings: dict, n_classes: int, x_train: np.ndarray, y_train: np.ndarray, *, seed: int = 0,
                  device: str = "cpu", progress: bool = False):
    """The audit CNN trained on ``(x_train, y_train)``; returns ``(model, history, from_cache)``.

    Initial weights come from ``torch.manual_seed(seed)``, the data order and augmentation
    from ``seed`` (:func:`leukcore.train.fit`). A model is identified by the SHA-256 of the
    training images and labels (in order), the model, the recipe, ``n_classes``, the seed and
    the device type; it is kept in memory and under ``<cache_dir>/audits/models/<key>.pt`` so
    that audits sharing a model (``shortcut_cnn``, ``leakage_duplicates``, ``external_pbc``)
    train it once.
    """
    import torch

    from .models import create_model
    from .engine import fit, save_atomic

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
                cached = (ck["state"], list(ck["history"]))
            except Exception:  # noqa: BLE001 - a damaged cache file is retrained
                cached = None
    if cached is not None:
        model.load_state_dict(cached[0])
        model.eval()
        _MEMO[key] = cached
        return model, cached[1], True
    torch.manual_seed(seed)
    model = create_model(settings["model"], num_classes=n_classes, **settings["model_kw"])
    cfg = _train_config(settings, seed=seed, device=device, progress=progress)
    res = fit(model, (x_train, y_train), None, None, config=cfg)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    history = [{k: v for k, v in r.items()} for r in res.history]
    _MEMO[key] = (state, history)
    try:
        save_atomic({"state": state, "history": history}, _model_cache_file(key))
    except OSError:
        pass
    return model, history, False


def _predict(model, x: np.ndarray, device: str) -> np.ndarray:
    from .engine import predict_proba

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
    devs = ["interpretation: duplicate-aware stratified folds (StratifiedGroupKFold on file hashes)",
            f"interpretation: features from images resized to {st['image_size']} px (the profile's size)"]
    dev = _resolve_device(device)
    rec = _record("shortcut_colour", prof, seed, st, data.describe(), t0, dev, results, rows, headline, devs)
    return _write(rec, results_dir, write)


# --------------------------------------------------------------------------------------------
# 2. The CNN on altered inputs
# --------------------------------------------------------------------------------------------


def _split(table: pd.DataFrame, settings: dict, seed: int, group_by="__settings__") -> dict:
    sp = settings["split"]
    gb = sp["group_by"] if group_by == "__settings__" else group_by
    return D.split_fractions(table, sp["fractions"], seed=seed, group_by=gb)


def _shortcut_models(prof: Profile, st: dict, data_root, seed: int, device: str, progress: bool):
    """Train (or fetch) the four ``shortcut_cnn`` models on one split; shared with ``external_pbc``."""
    from .filters import reinhard_target

    data = _taleqani(prof, data_root, seed)
    x, table = D.load_images(data.table, st["image_size"])
    data.table = table
    y = table["label"].to_numpy()
    split = _split(table, st, seed)
    tr, te = _index(table, split["train"]), _index(table, split["test"])
    target = reinhard_target(x[tr])
    models, cached = {}, {}
    for v in ("original", "grey", "reinhard", "mask_scale_bar"):
        xv = apply_variant(x[tr], v, target)
        models[v], _, cached[v] = trained_model(st, len(_classes(table)), xv, y[tr], seed=seed, device=device,
                                               progress=progress)
    return {"data": data, "x": x, "y": y, "split": split, "tr": tr, "te": te, "target": target, "models": models,
            "from_cache": cached, "names": _classes(table)}


def shortcut_cnn(profile: str = "smoke", data_root=None, seed: int = 0, results_dir=None, device: str = "auto",
                 *, progress: bool = False, write: bool = True) -> dict:
    """DSCNet on original, grey-scale, Reinhard-normalised and scale-bar-masked inputs, same split and budget.

    One duplicate-aware stratified 80/20 split (seeded); for each variant the training and
    test images are altered the same way (:func:`apply_variant`; the Reinhard target is the
    pooled LAB statistics of the training part), the model starts from the same initial
    weights and sees the data in the same order. Accuracy and macro F1 with bootstrap
    intervals; McNemar's test of each variant against the original on the same test images.
    Also: the original model on altered test images (no retraining), which shows what it
    relies on.
    """
    from .evaluation.metrics import mcnemar

    prof = audit_profile(profile)
    st = audit_settings("shortcut_cnn", profile)
    t0 = time.perf_counter()
    dev = _resolve_device(device)
    S = _shortcut_models(prof, st, data_root, seed, dev, progress)
    x, y, te, names = S["x"], S["y"], S["te"], S["names"]
    probs = {v: _predict(S["models"][v], apply_variant(x[te], v, S["target"]), dev) for v in st["variants"]}
    results: dict[str, Any] = {"n_train": int(len(S["tr"])), "n_test": int(len(te)),
                               "mask_box_px": dict(zip(("y0", "x0"), scale_bar_box(st["image_size"], st["image_size"]))),
                               "variants": {}, "test_time": {}}
    rows = []
    base = probs["original"]
    for v in st["variants"]:
        block = _block(y[te], probs[v], names, st["bootstrap"], seed)
        if v != "original":
            block["mcnemar_vs_original"] = mcnemar(y[te], base, probs[v])
            block["accuracy_change"] = block["accuracy"]["point"] - results["variants"]["original"]["accuracy"]["point"]
        block["trained_from_cache"] = bool(S["from_cache"][v])
        results["variants"][v] = block
        note = "" if v == "original" else f"McNemar p = {block['mcnemar_vs_original']['p_value']:.3g}"
        rows.append(_row(f"trained and tested on {v}", "accuracy", block["accuracy"], block["n"], note))
    for v in st["test_time_variants"]:
        p = _predict(S["models"]["original"], apply_variant(x[te], v, S["target"]), dev)
        block = _block(y[te], p, names, st["bootstrap"], seed)
        block["mcnemar_vs_original"] = mcnemar(y[te], base, p)
        results["test_time"][v] = block
        rows.append(_row(f"original model, {v} at test only", "accuracy", block["accuracy"], block["n"],
                         f"McNemar p = {block['mcnemar_vs_original']['p_value']:.3g}"))
    r = results["variants"]
    headline = ("Accuracy of the same CNN: original {:.1%}, grey {:.1%}, stain-normalised {:.1%}, scale bar masked "
                "{:.1%}.").format(*(r[v]["accuracy"]["point"] for v in ("original", "grey", "reinhard", "mask_scale_bar")))
    devs = [f"interpretation: audit CNN = DSCNet ({AUDIT_MODEL}, default widths), 4 outputs, trained from scratch "
            f"with Adam lr 1e-3, sparse CE, no augmentation (flips would move the scale bar), no L2",
            f"interpretation: scale bar masked by the bottom-right box {SCALE_BAR_BOX[0]:.0%} x {SCALE_BAR_BOX[1]:.0%} "
            "of the side, filled with the image's mean colour",
            "interpretation: Reinhard target = pooled LAB statistics of the training images"]
    rec = _record("shortcut_cnn", prof, seed, st, S["data"].describe(), t0, dev, results, rows, headline, devs,
                  split={k: len(v) for k, v in S["split"].items()})
    return _write(rec, results_dir, write)


# --------------------------------------------------------------------------------------------
# 3. Random vs duplicate-aware split
# --------------------------------------------------------------------------------------------


def leakage_duplicates(profile: str = "smoke", data_root=None, seed: int = 0, results_dir=None, device: str = "auto",
                       *, progress: bool = False, write: bool = True) -> dict:
    """Random vs duplicate-aware stratified 80/20 split of taleqani-all, same CNN and budget.

    Reports each arm's accuracy with a bootstrap interval, the number of test images whose
    byte-identical twin is in the training part (:func:`count_twins`) and, in the random
    arm, the accuracy on those images. The leak can move the accuracy by at most
    ``test_with_twin / n_test``. At reduced profiles (``max_per_class``) duplicate pairs are
    sampled first so that the smoke run exercises the count.
    """
    prof = audit_profile(profile)
    st = audit_settings("leakage_duplicates", profile)
    t0 = time.perf_counter()
    dev = _resolve_device(device)
    data = _taleqani(prof, data_root, seed, prefer_duplicates=True)
    x, table = D.load_images(data.table, st["image_size"])
    data.table = table
    y, names = table["label"].to_numpy(), _classes(table)
    results: dict[str, Any] = {"duplicate_groups": len(D.find_duplicates(table)), "arms": {}}
    rows = []
    for arm, group_by in st["arms"].items():
        split = _split(table, st, seed, group_by=group_by)
        tr, te = _index(table, split["train"]), _index(table, split["test"])
        model, _, cached = trained_model(st, len(names), x[tr], y[tr], seed=seed, device=dev, progress=progress)
        prob = _predict(model, x[te], dev)
        block = _block(y[te], prob, names, st["bootstrap"], seed)
        tw = count_twins(table, split)
        block.update({k: tw[k] for k in ("test_with_twin", "groups_straddling")})
        block["max_effect"] = tw["test_with_twin"] / max(len(te), 1)
        block["trained_from_cache"] = bool(cached)
        if tw["test_with_twin"]:
            twin_mask = np.isin(te, _index(table, tw["test_ids_with_twin"]))
            block["accuracy_on_twins"] = float((prob.argmax(1) == y[te])[twin_mask].mean())
        results["arms"][arm] = block
        label = "random split" if group_by is None else "duplicate-aware split"
        rows.append(_row(label, "accuracy", block["accuracy"], block["n"],
                         f"{tw['test_with_twin']} test images have a byte-identical twin in train"))
    ra, da = results["arms"]["random"], results["arms"]["duplicate_aware"]
    headline = (f"Random split: {ra['test_with_twin']} of {ra['n']} test images have a byte-identical twin in "
                f"training (accuracy {ra['accuracy']['point']:.1%}); duplicate-aware: {da['test_with_twin']} "
                f"(accuracy {da['accuracy']['point']:.1%}). The pairs can move the accuracy by at most "
                f"{ra['max_effect']:.1%}.")
    devs = ["interpretation: both arms use the same seed; their test sets differ (different splits), so part of "
            "the accuracy difference is sampling noise, bounded by the intervals"]
    rec = _record("leakage_duplicates", prof, seed, st, data.describe(), t0, dev, results, rows, headline, devs)
    return _write(rec, results_dir, write)


# --------------------------------------------------------------------------------------------
# 4. Augment-then-split vs split-then-augment
# --------------------------------------------------------------------------------------------


def _augment_copies(x: np.ndarray, sources: np.ndarray, preset: str, generator) -> np.ndarray:
    """Augmented uint8 copies ``aug(x[sources])`` (the preset on uint8 NCHW, rounded back to uint8)."""
    import torch

    from .transforms import make_augment

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


def leakage_augment(profile: str = "smoke", data_root=None, seed: int = 0, results_dir=None, device: str = "auto",
                    *, progress: bool = False, write: bool = True) -> dict:
    """Augment-then-split vs split-then-augment, same CNN, same training size and budget.

    Scale: the paper expanded every class of the 3,256 originals to 5,000 images; a profile
    that caps ``N`` (``AUDIT_BUDGET[profile]["aug_per_class"]``) keeps the number of copies per
    original by using a seeded subset of ``ceil(n_c N / 5000)`` unique originals per class
    (at least 5, so that an 80/20 split leaves one on each side). Arms:

    * **augment-then-split** (leaky): the originals expanded to ``N`` per class
      (:func:`expand_by_augmentation`, DSCNet's preset), then a random stratified 80/20 split
      of the expanded images;
    * **split-then-augment**: the originals split 80/20 first (stratified, duplicate-aware),
      then the training part expanded to ``0.8 N`` and the test part to ``0.2 N`` per class,
      each from its own originals.

    Both models are also scored on the originals outside the subset (``fresh``, never seen by
    either; none at the paper profile). The leak is the accuracy difference between the two
    arms' own test sets; ``test_source_in_train`` counts leaky test images whose original
    (or one of its copies) is in the training part.
    """
    prof = audit_profile(profile)
    st = audit_settings("leakage_augment", profile)
    t0 = time.perf_counter()
    dev = _resolve_device(device)
    data = _taleqani(prof, data_root, seed)
    x_all, table = D.load_images(data.table, st["image_size"])
    data.table = table
    y_all, names = table["label"].to_numpy(), _classes(table)
    n = st["per_class"]
    sub = _originals_subset(table, st["originals_fraction"], st["min_originals_per_class"], seed)
    sub_t = table.iloc[sub].reset_index(drop=True)
    sub_t.attrs = dict(table.attrs)
    xs, ys = x_all[sub], y_all[sub]
    used = set(table["sha256"].iloc[sub])
    fresh = np.array([i for i in range(len(table)) if table["sha256"].iat[i] not in used], dtype=int)
    results: dict[str, Any] = {"per_class": n, "originals_used": {names[c]: int((ys == c).sum()) for c in np.unique(ys)},
                               "n_fresh": int(len(fresh)), "arms": {}}
    # augment-then-split
    xa, ya, src, _ = expand_by_augmentation(xs, ys, n, preset=st["augment"], seed=seed)
    pool = pd.DataFrame({"id": [f"aug{i:06d}" for i in range(len(ya))], "label": ya, "sha256": [f"{s}" for s in src]})
    sp = D.split_fractions(pool, st["leaky_split"]["fractions"], seed=seed, group_by=None)
    tr, te = _index(pool, sp["train"]), _index(pool, sp["test"])
    leaky_src_in_train = float(np.isin(src[te], src[tr]).mean()) if len(te) else math.nan
    arms = {"augment_then_split": (xa[tr], ya[tr], xa[te], ya[te])}
    # split-then-augment
    osp = D.split_fractions(sub_t, st["split"]["fractions"], seed=seed, group_by="duplicates")
    otr, ote = _index(sub_t, osp["train"]), _index(sub_t, osp["test"])
    frac = st["split"]["fractions"]
    ntr = {int(c): int(round(frac["train"] * n)) for c in np.unique(ys)}
    nte = {int(c): n - ntr[int(c)] for c in np.unique(ys)}
    xtr2, ytr2, _, _ = expand_by_augmentation(xs[otr], ys[otr], ntr, preset=st["augment"], seed=seed + 1)
    xte2, yte2, _, _ = expand_by_augmentation(xs[ote], ys[ote], nte, preset=st["augment"], seed=seed + 2)
    arms["split_then_augment"] = (xtr2, ytr2, xte2, yte2)
    rows = []
    for arm, (xtr_, ytr_, xte_, yte_) in arms.items():
        model, _, cached = trained_model(st, len(names), xtr_, ytr_, seed=seed, device=dev, progress=progress)
        block = _block(yte_, _predict(model, xte_, dev), names, st["bootstrap"], seed)
        block["n_train"] = int(len(ytr_))
        block["trained_from_cache"] = bool(cached)
        label = arm.replace("_", "-")
        rows.append(_row(label, "accuracy (its own test set)", block["accuracy"], block["n"]))
        if len(fresh):
            fb = _block(y_all[fresh], _predict(model, x_all[fresh], dev), names, st["bootstrap"], seed)
            block["fresh"] = fb
            rows.append(_row(label, "accuracy (unseen originals)", fb["accuracy"], fb["n"]))
        results["arms"][arm] = block
    results["arms"]["augment_then_split"]["test_source_in_train"] = leaky_src_in_train
    results["arms"]["split_then_augment"]["test_source_in_train"] = 0.0
    a, b = (results["arms"][k]["accuracy"]["point"] for k in ("augment_then_split", "split_then_augment"))
    results["leak"] = a - b
    headline = (f"Augment-then-split scores {a:.1%}, split-then-augment {b:.1%} on their own test sets: "
                f"{results['leak']:+.1%} from the leak ({leaky_src_in_train:.0%} of the leaky test images have "
                "their original in training).")
    if len(fresh):
        fa, fb_ = (results["arms"][k]["fresh"]["accuracy"]["point"] for k in ("augment_then_split", "split_then_augment"))
        headline += f" On {len(fresh)} unseen originals: {fa:.1%} vs {fb_:.1%}."
    devs = [f"deviation: N = {n} images per class instead of 5000 (profile {prof.name}); originals subsampled to "
            f"{st['originals_fraction']:.3g} of each class so that each original has as many copies as in the paper",
            "interpretation: the copies are made with DSCNet's augmentation preset (leukcore.augment 'dscnet') at the "
            "working image size; originals are kept in the expanded set",
            "interpretation: split-then-augment expands its test part the same way, so both test sets have the same "
            "size and construction"]
    rec = _record("leakage_augment", prof, seed, st, data.describe(), t0, dev, results, rows, headline, devs)
    return _write(rec, results_dir, write)


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

    from .losses import make_loss
    from .engine import TrainConfig, make_optimizer, Normalizer, runtime, model_norm_stats

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
    from .models import create_model

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
# 7. External validity on PBC lymphocytes
# --------------------------------------------------------------------------------------------


def external_pbc(profile: str = "smoke", data_root=None, seed: int = 0, results_dir=None, device: str = "auto",
                 *, progress: bool = False, write: bool = True) -> dict:
    """Models trained on taleqani-all (Original) predict every pbc-lymphocytes image: fraction called Benign.

    Models: the four ``shortcut_cnn`` DSCNets (original, grey, Reinhard, scale bar masked;
    the same training part, reused from the cache when ``shortcut_cnn`` ran) -- each sees the
    PBC images altered as its training images were (the Reinhard model's target is its
    training part's) -- and the colour-histogram logistic regression fitted on the same
    training part. PBC images are resized to the working size (they are 360x363 with one
    centred lymphocyte; Taleqani's 224x224 fields show several cells). Per model: the
    fraction predicted Benign with a Wilson 95 % interval, the predicted-class counts, the
    mean probability of Benign, and the model's Benign recall on the Taleqani test part.
    """
    prof = audit_profile(profile)
    st = audit_settings("external_pbc", profile)
    t0 = time.perf_counter()
    dev = _resolve_device(device)
    S = _shortcut_models(prof, st, data_root, seed, dev, progress)
    ext = audit_data("pbc-lymphocytes", prof, data_root, seed=seed, cap=False)
    ext.table = _cap(ext.table, st["external_max_per_class"], seed)
    ext_ds = ext.describe()  # the images asked for (the key); unreadable ones are listed in results.skipped
    xe, et = D.load_images(ext.table, st["image_size"], on_bad="skip")
    ext.table = et
    x, y, tr, te, names = S["x"], S["y"], S["tr"], S["te"], S["names"]
    benign = st["benign_label"]
    results: dict[str, Any] = {"n_external": int(len(xe)), "skipped": et.attrs.get("skipped", []), "models": {}}
    preds: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for v, model in S["models"].items():
        preds[f"dscnet:{v}"] = (_predict(model, apply_variant(xe, v, S["target"]), dev),
                                _predict(model, apply_variant(x[te], v, S["target"]), dev))
    bins = audit_settings("shortcut_colour", profile)["features"]["hist"]["bins"]
    clf = _colour_classifier(audit_settings("shortcut_colour", profile), seed)
    clf.fit(colour_features(x[tr], "hist", bins), y[tr])
    preds["colour_hist_lr"] = (_full_proba(clf, colour_features(xe, "hist", bins), len(names)),
                               _full_proba(clf, colour_features(x[te], "hist", bins), len(names)))
    rows = []
    for name, (pe, pt) in preds.items():
        called = pe.argmax(1) if len(pe) else np.zeros(0, int)
        k = int((called == benign).sum())
        w = wilson_interval(k, len(called))
        in_dist = (pt.argmax(1)[y[te] == benign] == benign)
        results["models"][name] = {
            "benign_fraction": w, "predicted_counts": {names[c]: int((called == c).sum()) for c in range(len(names))},
            "mean_p_benign": float(pe[:, benign].mean()) if len(pe) else math.nan,
            "taleqani_benign_recall": float(in_dist.mean()) if in_dist.size else math.nan,
            "taleqani_test_accuracy": float((pt.argmax(1) == y[te]).mean()) if len(te) else math.nan}
        rows.append(_row(name, "fraction of PBC lymphocytes called Benign", w, w["n"],
                         f"Benign recall on Taleqani test: {results['models'][name]['taleqani_benign_recall']:.2f}"))
    best = max(results["models"].items(), key=lambda kv: kv[1]["benign_fraction"]["point"])
    orig = results["models"]["dscnet:original"]["benign_fraction"]
    headline = (f"DSCNet trained on taleqani-all calls {orig['point']:.1%} [{orig['low']:.1%}, {orig['high']:.1%}] of "
                f"{orig['n']} normal lymphocytes from another laboratory Benign; the best of {len(preds)} models "
                f"({best[0]}) {best[1]['benign_fraction']['point']:.1%}.")
    ds = S["data"].describe()
    ds_combined = dict(ds)
    ds_combined["fingerprint"] = _combined_fingerprint(ds["fingerprint"], ext_ds["fingerprint"])
    ds_combined["train_fingerprint"] = ds["fingerprint"]
    devs = ["interpretation: PBC images resized to the working size as a whole (no re-scaling of cell size)",
            "interpretation: the models are the shortcut_cnn models (trained on its 80 % training part)"]
    rec = _record("external_pbc", prof, seed, st, ds_combined, t0, dev, results, rows, headline, devs,
                  external_dataset=ext_ds)
    return _write(rec, results_dir, write)


# --------------------------------------------------------------------------------------------
# Reuse before rerun
# --------------------------------------------------------------------------------------------

AUDIT_FUNCTIONS: dict[str, Callable[..., dict]] = {
    "shortcut_colour": shortcut_colour, "shortcut_cnn": shortcut_cnn, "leakage_duplicates": leakage_duplicates,
    "leakage_augment": leakage_augment, "leakage_subject": leakage_subject, "loss_equivalence": loss_equivalence,
    "external_pbc": external_pbc,
}


def run_audit(audit_id: str, profile: str = "smoke", **kw) -> dict:
    """Run one audit by id (keyword arguments as the audit functions); write and return its record."""
    _check_audit(audit_id)
    with code_snapshot(profile, kw.pop("allow_dirty", None)):  # the code, read before training
        return AUDIT_FUNCTIONS[audit_id](profile, **kw)


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
    fp = _taleqani(prof, data_root, seed).describe()["fingerprint"]
    if audit_id == "external_pbc":
        ext = audit_data("pbc-lymphocytes", prof, data_root, seed=seed, cap=False)
        efp = D.fingerprint(_cap(ext.table, prof.max_per_class, seed))
        return _combined_fingerprint(fp, efp)
    return fp


def find_audit_record(audit_id: str, profile: str = "smoke", *, results_dir=None, seed: int = 0,
                      data_root=None) -> dict | None:
    """The existing complete record of ``audit_id`` with the same key, else ``None``.

    Key (as :func:`leukcore.experiments.find_record`): paper ``"audits"``, audit id, profile,
    seed, settings hash (:func:`audit_settings`) and the fingerprint of the data the audit
    would use now (:func:`audit_fingerprint`).
    """
    _check_audit(audit_id)
    rec = read_complete(record_path(PAPER, profile, audit_id, results_dir), seed)
    if rec is None:
        return None
    if rec.get("settings_hash") != settings_hash(audit_settings(audit_id, profile)):
        return None
    if rec.get("dataset", {}).get("fingerprint") != audit_fingerprint(audit_id, profile, data_root, seed):
        return None
    return rec


def get_or_run_audit(audit_id: str, profile: str = "smoke", *, force: bool = False, data_root=None, seed: int = 0,
                     results_dir=None, device: str = "auto", progress: bool = False) -> dict:
    """An existing complete record with the same key (:func:`find_audit_record`), else run the audit.

    ``force`` reruns. A ``"not run"`` record (``leakage_subject`` without C-NMC) is never
    reused: the audit is asked again, so it runs as soon as the data appear.
    """
    _check_audit(audit_id)
    if not force:
        rec = find_audit_record(audit_id, profile, results_dir=results_dir, seed=seed, data_root=data_root)
        if rec is not None:
            return rec
    return run_audit(audit_id, profile, data_root=data_root, seed=seed, results_dir=results_dir, device=device,
                     progress=progress)


# --------------------------------------------------------------------------------------------
# Tables and figures (the notebook and the book call these)
# --------------------------------------------------------------------------------------------


def _fmt_frac(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.3f}"


def audit_table(rec: dict) -> pd.DataFrame:
    """The record's ``rows`` as a table: arm, metric, value, 95 % interval, n, note, profile · dataset."""
    from .runs.records import provenance_label

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


def plot_audit(rec: dict):
    """One figure per audit record: bars with 95 % intervals (loss curves for ``loss_equivalence``)."""
    import matplotlib.pyplot as plt

    from .runs.records import provenance_label

    aid = rec["experiment"]
    title = f"{AUDITS[aid]['title']}  ({provenance_label(rec)})"
    if rec.get("status") != "complete":
        fig, ax = plt.subplots(figsize=(7, 1.2))
        ax.axis("off")
        ax.text(0.01, 0.5, rec.get("reason", "not run"), fontsize=10, va="center")
        ax.set_title(title, fontsize=10)
        return fig
    res = rec["results"]
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
    """``n`` taleqani-all originals (one per class, seeded) as the four ``shortcut_cnn`` arms see them.

    Columns: original, grey, Reinhard (target: the pooled statistics of the shown images),
    scale bar masked (the masked box outlined). Synthetic images when the data are absent.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from .filters import reinhard_target

    data = audit_data("taleqani-all", "smoke", data_root, seed=seed, cap=False, variant="original")
    t = data.table
    rng = np.random.default_rng(seed)
    rows = [int(rng.choice(np.flatnonzero(t["label"].to_numpy() == c))) for c in sorted(t["label"].unique())][:n]
    x, kept = D.load_images(t.iloc[rows].reset_index(drop=True), size)
    stats = reinhard_target(x)
    variants = ("original", "grey", "reinhard", "mask_scale_bar")
    fig, axes = plt.subplots(len(x), 4, figsize=(8, 2.1 * len(x)), squeeze=False)
    y0, x0 = scale_bar_box(size, size)
    for i in range(len(x)):
        for j, v in enumerate(variants):
            ax = axes[i, j]
            ax.imshow(apply_variant(x[i:i + 1], v, stats)[0])
            ax.set_xticks([])
            ax.set_yticks([])
            if v == "mask_scale_bar":
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), size - x0, size - y0, fill=False, ec="red", lw=1))
            if i == 0:
                ax.set_title(v.replace("_", " "), fontsize=9)
        axes[i, 0].set_ylabel(kept["class_name"].iat[i], fontsize=9)
    label = "SYNTHETIC stand-in" if data.dataset_id == "synthetic" else data.dataset_id
    fig.suptitle(f"The inputs of the four arms ({label})", fontsize=10)
    fig.tight_layout()
    return fig
