"""Audits beyond the papers: shortcuts, leakage, equivalent losses and external validity.

What none of the five papers checked (``../shared/STUDY.md``, "Questions no paper asks").

Layout: one module per audit (:mod:`.shortcut_colour`, :mod:`.shortcut_cnn`, :mod:`.segmented`,
:mod:`.acquisition_groups`, :mod:`.leakage_duplicates`, :mod:`.leakage_augment`,
:mod:`.leakage_subject`, :mod:`.loss_equivalence`, :mod:`.external_pbc`, :mod:`.scale_bar_alone`,
:mod:`.background_alone`, :mod:`.attribution`, :mod:`.segmented_artefacts`, :mod:`.choices`), on what they share:
:mod:`.base` (ids, the audit profile's settings, data, records), :mod:`.inputs` (image
alterations, colour features), :mod:`.training` (the audit CNN's training), :mod:`.arms` (what
the seeded audits' arms share), :mod:`.seeded` (arm records and summaries over seeds),
:mod:`.stats` (t-intervals, paired differences, McNemar, AUROC), :mod:`.acquisition` (acquisition
signatures and groups); :mod:`.registry` runs any audit by id, :mod:`.figures` draws them. Each
audit's concluding paragraph is book prose, rendered from its summary record by
:mod:`leukcore.book.audit_conclusions`.

Two kinds of audit:

* **Seeded** (:data:`SEEDED_AUDITS`: ``shortcut_cnn``, ``segmented``, ``acquisition_groups``,
  ``leakage_duplicates``, ``leakage_augment``, ``external_pbc``, ``scale_bar_alone``, ``background_alone``,
  ``attribution``, ``segmented_artefacts``, ``choices``): arms x seeds. Each arm and seed
  is one training of the audit CNN (or one evaluation of trained models), written at once to
  ``<results>/audits/<profile>/<audit>/<arm>.seed<k>.json`` and reused when its key matches
  (:func:`find_arm_record`), so an interrupted run loses only the arm in progress and can be
  completed later or elsewhere. :func:`summarise_audit` pools them into
  ``<results>/audits/<profile>/<audit>.json``: each measure's mean over seeds with a
  t-interval, each contrast (:data:`EFFECTS`) as paired differences per seed with a t-interval
  over seeds, and McNemar per seed on the test images both arms share.
* **Single-record** (``shortcut_colour``, ``leakage_subject``, ``loss_equivalence``): one
  record, ``<results>/audits/<profile>/<audit>.json``. The colour baselines and the loss
  comparison are deterministic given their data (cross-validation folds; deterministic CPU
  training), so they run once, at seed 0.

Profiles: the ``audit`` profile (:mod:`leukcore.runs.profiles`) is the audits' own budget: every
image at 64 px, the audit CNN (:data:`AUDIT_MODEL`, :data:`AUDIT_TRAIN`) for at most 12 epochs
with early stopping, 3 seeds. ``smoke`` runs the same code on a few images (CI).

Audits (ids of :data:`AUDITS`): ``shortcut_colour`` (colour-histogram and colour-moment logistic
regressions, duplicate-aware 5-fold CV); ``shortcut_cnn`` (the audit CNN trained on original,
grey, Reinhard-normalised, scale-bar-masked and control-masked images, and the original model
on altered test images); ``segmented`` (the Segmented variant, background removed: trained and
tested on it, the original model tested on it, the colour histogram on it); ``acquisition_groups``
(groups of images sharing an acquisition signature, a proxy for patients: random vs
group-disjoint split); ``leakage_duplicates`` (random vs duplicate-aware split);
``leakage_augment`` (augment-then-split, the ``multicancer-all`` construction, vs
split-then-augment, on their own test sets and on originals neither saw); ``leakage_subject``
(image- vs subject-level split of C-NMC 2019; "not run" without it); ``loss_equivalence``
(DSCNet trained with mce, sparse_ce and kl from the same weights); ``external_pbc`` (the
``shortcut_cnn`` models and the colour histogram on PBC lymphocytes: predicted classes,
confidence, out-of-distribution AUROC, Taleqani Benign recall); ``scale_bar_alone`` (sufficiency: a pixel
classifier and the audit CNN on the scale-bar corner alone, cropped at 224 px, against the opposite corner, in
colour and in grey); ``background_alone`` (the colour histogram of the background alone, the cells alone and the
whole image, the cells masked with the Segmented copies); ``attribution`` (the share of Grad-CAM mass in the
scale-bar corner against the control corner, for the audit CNN and every paper-profile CNN whose weights are
kept); ``segmented_artefacts`` (the Segmented copies' foreground fraction per image and class, the nearly-empty
ones, a classifier on that one number, and the ``segmented`` audit without them); ``choices`` (Kaur's models at
64 px under three readings of lambda, and DSCNet without its sharpening filter). Each summary can add numbers
of its own (:func:`.arms.register_summary`) and its headline (:func:`.arms.register_headline`), beside its arms.

Data. Each audit reads its real dataset when present; otherwise it falls back to the synthetic
stand-in (:func:`leukcore.data.load_synthetic`) and its record says so (``dataset.id ==
"synthetic"``, ``dataset.stands_in_for``).
"""
from __future__ import annotations

from .acquisition_groups import acquisition_table, n_acquisition_groups
from .arms import EFFECTS, EXTERNAL_METRICS, arm_record_path
from .base import (
    ARMS,
    AUDIT_BUDGET,
    AUDIT_EPOCHS,
    AUDIT_MODEL,
    AUDIT_TRAIN,
    AUDITS,
    LOSS_MODEL,
    LOSS_TOLERANCE,
    MIN_ORIGINAL_ACCURACY,
    PAPER,
    PAPER_AUGMENTED_PER_CLASS,
    SCALE_BAR_BOX,
    SEEDED_AUDITS,
    VARIANTS,
    audit_data,
    audit_profile,
    audit_settings,
    count_twins,
    default_seeds,
    list_audits,
    wilson_interval,
)
from .figures import (
    audit_table,
    data_banner,
    model_choice,
    plot_audit,
    plot_corner_crops,
    plot_foreground_fractions,
    plot_regions,
    plot_variant_examples,
)
from .inputs import (
    CORNERS,
    apply_variant,
    colour_features,
    corner_crop,
    foreground_fraction,
    foreground_mask,
    mask_box,
    mask_scale_bar,
    region_histogram,
    scale_bar_box,
)
from .leakage_augment import expand_by_augmentation
from .leakage_subject import leakage_subject
from .loss_equivalence import loss_equivalence, stepwise_losses
from .registry import (
    AUDIT_FUNCTIONS,
    acquisition_groups,
    attribution,
    audit_fingerprint,
    background_alone,
    choices,
    external_pbc,
    find_audit_record,
    get_or_run_audit,
    leakage_augment,
    leakage_duplicates,
    load_summary,
    run_audit,
    scale_bar_alone,
    segmented,
    segmented_artefacts,
    shortcut_cnn,
    summarise_all,
)
from .seeded import find_arm_record, get_or_run_arm, run_arm, run_seeded_audit, summarise_audit
from .segmented import segmented_table
from .shortcut_colour import shortcut_colour
from .training import EarlyStop, trained_model, validation_carve
from .stats import auroc, from_bits, mcnemar_correct, paired_differences, t_interval, to_bits

__all__ = [
    "ARMS", "AUDIT_BUDGET", "attribution", "background_alone", "choices", "corner_crop", "foreground_fraction",
    "foreground_mask", "plot_corner_crops", "plot_foreground_fractions", "plot_regions", "region_histogram",
    "scale_bar_alone", "segmented_artefacts", "AUDIT_EPOCHS", "AUDIT_FUNCTIONS", "AUDIT_MODEL", "AUDIT_TRAIN", "AUDITS", "CORNERS",
    "EFFECTS", "EXTERNAL_METRICS", "LOSS_MODEL", "LOSS_TOLERANCE", "MIN_ORIGINAL_ACCURACY", "PAPER",
    "PAPER_AUGMENTED_PER_CLASS", "SCALE_BAR_BOX", "SEEDED_AUDITS", "VARIANTS", "acquisition_groups",
    "acquisition_table", "apply_variant", "arm_record_path", "audit_data", "audit_fingerprint", "audit_profile",
    "audit_settings", "audit_table", "auroc", "colour_features", "count_twins", "data_banner", "default_seeds",
    "expand_by_augmentation", "external_pbc", "find_arm_record", "find_audit_record", "from_bits", "get_or_run_arm",
    "get_or_run_audit", "leakage_augment", "leakage_duplicates", "leakage_subject", "list_audits", "load_summary",
    "loss_equivalence", "mask_box", "mask_scale_bar", "model_choice", "mcnemar_correct", "n_acquisition_groups", "paired_differences",
    "plot_audit", "plot_variant_examples", "run_arm", "run_audit", "run_seeded_audit", "scale_bar_box", "segmented",
    "segmented_table", "shortcut_cnn", "shortcut_colour", "stepwise_losses", "summarise_all", "summarise_audit",
    "t_interval", "to_bits", "trained_model", "validation_carve", "wilson_interval", "EarlyStop",
]
