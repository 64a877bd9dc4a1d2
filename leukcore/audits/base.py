"""What every audit shares: its id and question, the audit profile and settings, the data it reads,
small measurements (intervals, twins) and the record every audit writes."""
from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import data as D
from ..runs.profiles import Profile, get_profile
from ..runs.records import (
    code_block,
    current_code_state,
    device_description,
    git_commit,
    library_versions,
    settings_hash,
    write_record,
)


PAPER = "audits"
CACHE_VERSION = 2  # bump when the training helpers change what a cached model means


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


#: The audits' budget per profile, on top of :mod:`leukcore.runs.profiles`. Keys that are fields of
#: :class:`leukcore.runs.profiles.Profile` (``image_size``, ``max_per_class``, ``epochs``) override the
#: profile's value (``None`` = no cap) -- the audits ask questions about the whole of
#: ``taleqani-all`` (its 40 duplicate pairs, its 3,256 originals), so at ``cpu`` they use every
#: image at 64 px whatever the per-paper ``cpu`` profile caps. Other keys: ``aug_per_class``: N of
#: ``leakage_augment`` (the paper's 5,000 at ``paper``); ``choices_epochs``: the epochs of each ``choices``
#: rerun (the paper's 50 at ``paper``); ``leq_images`` / ``leq_epochs``: the
#: training slice of ``loss_equivalence``; ``seeds``: the seeds ``leukcore audits run`` uses by default.
AUDIT_BUDGET: dict[str, dict[str, Any]] = {
    "smoke": {"aug_per_class": 24, "leq_images": 32, "leq_epochs": 1, "choices_epochs": 1, "seeds": (0,)},
    "cpu": {"image_size": 64, "max_per_class": None, "epochs": 3,
            "aug_per_class": 1000, "leq_images": 320, "leq_epochs": 2, "choices_epochs": 2, "seeds": (0,)},
    "audit": {"image_size": 64, "max_per_class": None, "epochs": 12,
              "aug_per_class": 1000, "leq_images": 320, "leq_epochs": 2, "choices_epochs": 3, "seeds": (0, 1, 2)},
    "paper": {"aug_per_class": PAPER_AUGMENTED_PER_CLASS, "leq_images": 1024, "leq_epochs": 2, "choices_epochs": 50,
              "seeds": (0, 1, 2)},
}



PROFILE_OVERRIDES = ("image_size", "max_per_class", "epochs")


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


#: Where a pixel of a Segmented copy counts as cell: its largest RGB channel exceeds this value (the data
#: README's threshold; at 224 px, the Originals' native side).
FOREGROUND_THRESHOLD = 30


#: A Segmented copy is "nearly empty" (a failed segmentation) when less than this fraction of its pixels is
#: cell; the README's counts use the same cut (and a second one, :data:`ALMOST_BLACK_FRACTION`).
NEARLY_EMPTY_FRACTION = 0.01
ALMOST_BLACK_FRACTION = 0.001


#: The side at which corner crops, cell masks and foreground fractions are taken: the Originals' own (224 px),
#: so that the scale-bar mark and the cells' edges are seen as photographed.
NATIVE_SIZE = 224


#: The background arm of ``background_alone`` leaves out the cell mask grown by this many pixels (the halo of
#: JPEG ringing and half-segmented edges around each cell), and the scale-bar box (measured on its own by
#: ``scale_bar_alone``).
CELL_MARGIN_PX = 3


#: Kaur et al.'s lambda (Section 3.2) and the three ways we read it (``choices``): the L2 term added to the loss.
KAUR_LAMBDA = 0.01
LAMBDA_READINGS = {
    "keras": {"l2": KAUR_LAMBDA, "text": "lambda * sum(w^2) over the conv and fully connected weights "
                                         "(Keras kernel_regularizer=l2(lambda); how leukcore runs Kaur today)"},
    "matlab": {"l2": KAUR_LAMBDA / 2, "text": "lambda / 2 * sum(w^2) over the same weights (MATLAB trainingOptions "
                                              "L2Regularization = lambda; Kaur et al. trained in MATLAB 2022a; "
                                              "biases not penalised; MATLAB's batch-norm scale and offset factors "
                                              "are left out)"},
    "none": {"l2": 0.0, "text": "no L2 term"},
}


#: A model has collapsed when it calls at least this share of the test images one class (``choices``).
COLLAPSE_SHARE = 0.9


#: Loss-equivalence tolerance: curves "coincide" when their largest difference is below it.
LOSS_TOLERANCE = 1e-5


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
    "scale_bar_alone": {
        "title": "The scale-bar corner alone",
        "question": "Does the scale-bar corner, and nothing else, tell the classes apart better than a crop of the "
                    "same size from the opposite corner, in colour and in grey?"},
    "background_alone": {
        "title": "The background alone, the cells alone",
        "question": "Does the colour of the field between the cells tell the classes apart as well as the colour "
                    "of the cells themselves?"},
    "attribution": {
        "title": "Where the models look",
        "question": "What share of the models' Grad-CAM mass falls in the scale-bar corner, against a control "
                    "corner of the same size, over the whole test set?"},
    "segmented_artefacts": {
        "title": "The Segmented copies' own artefacts",
        "question": "How many Segmented copies are (nearly) empty, does that alone give the class away, and what "
                    "does the background-removed audit find without them?"},
    "choices": {
        "title": "Our own choices: Kaur's lambda and filter",
        "question": "Do the baselines collapse because of how we read Kaur's lambda, and does the sharpening filter "
                    "we chose change DSCNet?"},
}


#: The audits run as arms x seeds, one record per arm and seed (see :func:`run_arm`), pooled into one
#: summary record per audit (:func:`summarise_audit`). The other audits write one record each.
SEEDED_AUDITS = ("shortcut_cnn", "segmented", "acquisition_groups", "leakage_duplicates", "leakage_augment",
                 "external_pbc", "scale_bar_alone", "background_alone", "attribution", "segmented_artefacts", "choices")


#: The arms of each seeded audit, in running order.
ARMS: dict[str, tuple[str, ...]] = {
    "shortcut_cnn": ("original", "grey", "reinhard", "mask_scale_bar", "mask_control"),
    "segmented": ("original", "segmented", "colour_hist_original", "colour_hist_segmented"),
    "acquisition_groups": ("random", "group_disjoint"),
    "leakage_duplicates": ("duplicate_aware", "random"),
    "leakage_augment": ("augment_then_split", "split_then_augment"),
    "external_pbc": ("original", "grey", "reinhard", "mask_scale_bar", "mask_control", "colour_hist"),
    "scale_bar_alone": ("pixels_bar", "pixels_control", "pixels_bar_grey", "pixels_control_grey",
                        "cnn_bar", "cnn_control", "cnn_bar_grey", "cnn_control_grey"),
    "background_alone": ("background", "cells", "whole"),
    "attribution": ("audit_cnn", "paper_cnns"),
    "segmented_artefacts": ("foreground_fraction", "original", "segmented", "colour_hist_original",
                            "colour_hist_segmented"),
    "choices": ("dscnet_keras", "dscnet_matlab", "dscnet_none", "dscnet_nofilter_keras", "dscnet_nofilter_none",
                "alexnet_keras", "alexnet_matlab", "alexnet_none", "resnet50_keras", "resnet50_matlab", "resnet50_none"),
}


#: ``choices``: the models rerun (Kaur's DSCNet and the baselines that fit this CPU; VGG-16 at 64 px takes about
#: a quarter of an hour per epoch here and is left to the GPU issue).
CHOICES_MODELS = ("dscnet", "alexnet", "resnet50")



#: The image alterations of ``shortcut_cnn`` (trained arms) and the test-time-only ones of its original arm.
VARIANTS = ("original", "grey", "reinhard", "mask_scale_bar", "mask_control")


def list_audits() -> list[str]:
    """The audit ids, in the book's order."""
    return list(AUDITS)


def check_audit(audit_id: str) -> None:
    if audit_id not in AUDITS:
        raise ValueError(f"unknown audit {audit_id!r}; valid: {', '.join(AUDITS)}")


def audit_profile(profile: str | Profile) -> Profile:
    """The profile as the audits run it: :func:`leukcore.runs.profiles.get_profile` with the overrides
    of :data:`AUDIT_BUDGET` (``image_size``, ``max_per_class``, ``epochs``) applied."""
    from dataclasses import replace

    prof = get_profile(profile) if isinstance(profile, str) else profile
    over = {k: v for k, v in AUDIT_BUDGET[prof.name].items() if k in PROFILE_OVERRIDES}
    return replace(prof, **over) if over else prof


def default_seeds(profile: str) -> tuple[int, ...]:
    """The seeds ``leukcore audits run`` uses at ``profile`` when none are given."""
    return tuple(AUDIT_BUDGET[audit_profile(profile).name]["seeds"])


def audit_image_size(prof: Profile) -> int:
    return max(int(prof.image_size or 224), prof.min_image_size, 32)


def audit_train_settings(prof: Profile) -> dict:
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
    check_audit(audit_id)
    prof = audit_profile(profile)
    budget = AUDIT_BUDGET[prof.name]
    common = {"audit": audit_id, "image_size": audit_image_size(prof), "bootstrap": int(prof.bootstrap),
              "max_per_class": prof.max_per_class, "profile": prof.settings(),
              "profile_overrides": {k: v for k, v in budget.items() if k in PROFILE_OVERRIDES},
              "cache_version": CACHE_VERSION}
    cnn = {"model": AUDIT_MODEL, "model_kw": {}, "train": audit_train_settings(prof),
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
    crop = {"box": list(SCALE_BAR_BOX), "side": NATIVE_SIZE, "corners": {"bar": "bottom-right", "control": "top-left"},
            "what": "the pixels of exactly the box the scale-bar mask covers, at the Originals' own resolution"}
    segmentation = {"source": "the Segmented copy of each image", "side": NATIVE_SIZE,
                    "cell": f"largest RGB channel > {FOREGROUND_THRESHOLD}", "threshold": FOREGROUND_THRESHOLD,
                    "nearly_empty": f"cell fraction < {NEARLY_EMPTY_FRACTION}", "nearly_empty_fraction": NEARLY_EMPTY_FRACTION,
                    "almost_black_fraction": ALMOST_BLACK_FRACTION}
    if audit_id == "scale_bar_alone":
        return {**common, **cnn, "arms": list(ARMS[audit_id]), "crop": crop,
                "pixel_classifier": {"name": "logistic_regression", "features": "the crop's pixel values (grey: one "
                                     "channel), standardised", "C": 1.0, "max_iter": 2000, "standardise": True},
                "grey": "BT.601 luma (leukcore.filters.to_grey)"}
    if audit_id == "background_alone":
        return {**common, **colour, "arms": list(ARMS[audit_id]), "segmentation": segmentation,
                "split": cnn["split"], "images": "those whose Segmented copy is not nearly empty",
                "background": f"pixels outside the cell mask grown by {CELL_MARGIN_PX} px and outside the scale-bar box",
                "cell_margin_px": CELL_MARGIN_PX, "scale_bar_box": list(SCALE_BAR_BOX),
                "histogram": "per channel, normalised by the region's pixel count"}
    if audit_id == "attribution":
        return {**common, **cnn, "arms": list(ARMS[audit_id]), "crop": crop,
                "method": "Grad-CAM (leukcore.engine.explain.grad_cam): last convolution, predicted class, each map "
                          "scaled to [0, 1] by its minimum and maximum, bilinear to the input side",
                "share": "sum of the map inside the box / sum over the image, mean over the test images",
                "paper_models": "every paper-profile CNN record of the same seed whose final weights are kept beside "
                                "it (results/<paper>/paper/checkpoints/, not committed)"}
    if audit_id == "segmented_artefacts":
        return {**common, **cnn, **colour, "arms": list(ARMS[audit_id]), "segmentation": segmentation,
                "fraction_classifier": {"name": "logistic_regression", "features": "the cell fraction alone",
                                        "standardise": True},
                "images": "CNN and colour arms: the images whose Segmented copy is not nearly empty, split anew"}
    if audit_id == "choices":
        from ..models import min_input_size

        epochs = int(budget["choices_epochs"])
        side = max([common["image_size"]] + [min_input_size(m) for m in CHOICES_MODELS])
        return {**common, "image_size": side, "arms": list(ARMS[audit_id]), "models": list(CHOICES_MODELS), "split": cnn["split"],
                "readings": LAMBDA_READINGS, "lambda": KAUR_LAMBDA,
                "train": {"optimizer": "adam", "lr": 1e-3, "epochs": epochs, "batch_size": 32, "loss": "kl",
                          "augment": "none", "scheduler": None, "val_fraction": 0.0,
                          "keep": "the last epoch's weights", "source": "Kaur et al. Section 3.2 (Adam as in our protocol)"},
                "pretrained": False, "filter": "DSCNet's sharpening layer (leukcore.filters.SharpenLayer) or none",
                "collapse_share": COLLAPSE_SHARE,
                "collapse": "the largest share of the test images called one class reaches collapse_share"}
    # external_pbc
    return {**common, **cnn, **colour, "arms": list(ARMS[audit_id]), "benign_label": 0, "interval": "wilson",
            "ood_score": "maximum softmax probability; AUROC of Taleqani test (in-distribution) vs PBC",
            "external_max_per_class": prof.max_per_class}


SYNTHETIC_LAYOUT = {"taleqani-all": "taleqani", "pbc-lymphocytes": "pbc", "cnmc-2019": "cnmc"}


def cap_per_class(table: pd.DataFrame, n: int | None, seed: int, *, prefer_duplicates: bool = False) -> pd.DataFrame:
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
    """The table an audit uses, as :class:`leukcore.runs.experiments.ExperimentData`.

    The real dataset when present (``is_papers`` true), else the synthetic stand-in in its
    layout (``dataset_id == "synthetic"``); a real path holding ``SYNTHETIC.txt`` counts as
    synthetic. Unlabelled rows are dropped; ``cap`` applies the profile's ``max_per_class``
    (:func:`cap_per_class`). ``synthetic_fallback=False`` lets :class:`leukcore.data.DataError` through.
    """
    from ..runs.inputs import ExperimentData

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
        table = D.load_synthetic(layout=SYNTHETIC_LAYOUT[dataset_id], n_per_class=prof.synthetic_per_class,
                                 size=size, seed=seed, **options)
        data = ExperimentData(table, "synthetic", False, dataset_id,
                              f"SYNTHETIC stand-in for {dataset_id} (absent: {str(missing).split(';')[0]})")
    t = data.table
    if (t["label"] < 0).any():
        attrs = dict(t.attrs)
        t = t[t["label"] >= 0].reset_index(drop=True)
        t.attrs = attrs
    if cap:
        t = cap_per_class(t, prof.max_per_class, seed, prefer_duplicates=prefer_duplicates)
    data.table = t
    return data


def taleqani_data(prof: Profile, data_root, seed: int, **kw):
    return audit_data("taleqani-all", prof, data_root, seed=seed, variant="original", **kw)


def row_index(table: pd.DataFrame, ids) -> np.ndarray:
    pos = pd.Series(np.arange(len(table)), index=table["id"])
    return pos.loc[list(ids)].to_numpy()


def class_names_of(table: pd.DataFrame) -> list[str]:
    return list(table.attrs.get("classes") or sorted(table["class_name"].unique()))


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


def metric_ci(y, prob, metric: str, class_names, n_boot: int, seed: int) -> dict:
    from ..metrics import bootstrap_ci

    return bootstrap_ci(y, prob, metric, n=n_boot, seed=seed, class_names=class_names)


def metric_block(y: np.ndarray, prob: np.ndarray, class_names: list[str], n_boot: int, seed: int) -> dict:
    """Accuracy and macro F1 with percentile bootstrap intervals, the confusion matrix and ``n``."""
    from ..metrics import compute_metrics

    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            m = compute_metrics(y, prob, class_names=class_names)
    return {"n": int(len(y)), "accuracy": metric_ci(y, prob, "accuracy", class_names, n_boot, seed),
            "f1_macro": metric_ci(y, prob, "f1.macro", class_names, n_boot, seed),
            "confusion_matrix": m["confusion_matrix"],
            "recall_per_class": m["sensitivity"]["per_class"]}


def result_row(arm: str, metric: str, ci: dict, n: int | None = None, note: str = "") -> dict:
    return {"arm": arm, "metric": metric, "point": ci.get("point"), "low": ci.get("low"), "high": ci.get("high"),
            "n": n if n is not None else ci.get("n"), "note": note}


def resolve_audit_device(device: str) -> str:
    from ..engine import resolve_device

    return str(resolve_device(device))


def audit_record(audit_id: str, prof: Profile, seed: int, settings: dict, dataset: dict, t0: float, device: str,
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


def combined_fingerprint(train_fp: str, external_fp: str) -> str:
    """Fingerprint of a run that used two datasets: SHA-256 of ``train:<fp>\\nexternal:<fp>`` (16 hex chars)."""
    return hashlib.sha256(f"train:{train_fp}\nexternal:{external_fp}".encode()).hexdigest()[:16]


def write_audit_record(rec: dict, results_dir, write: bool) -> dict:
    if write:
        rec["_path"] = str(write_record(rec, root=results_dir))
    return rec
