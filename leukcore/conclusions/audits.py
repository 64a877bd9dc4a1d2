"""The audits' conclusions (the audits page) and the landing findings they support, each a declared test over
the audit records' seeds: ids start with the audit's id (``landing-`` for the two landing findings)."""
from __future__ import annotations

from .registry import Evidence, declare
from .rule import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED
from .sources import against, arm_values, audit_summary, paired

#: An accuracy change smaller than this (a difference of fractions) is "no change" in the ``within`` claims below:
#: about three test images of the audits' 80/20 split of Taleqani (652 test images).
NO_CHANGE = 0.005

#: A Grad-CAM share difference smaller than this is "no difference" between two corners.
NO_SHARE_DIFFERENCE = 0.01

#: Chance of a two-way call: a Benign share or an AUROC on this side says nothing.
HALF = 0.5

#: The part of every sentence that shows an effect over seeds: ``+1.3 pp [+0.3 pp, +2.3 pp] over 3 seeds``.
EFFECT = "{{ e | effect }} over {{ e.runs[0] | plural('seed') }}"


def margin_text(margin: float) -> str:
    """A declared margin as the sentences print it, unsigned: ``1.0 pp``."""
    return f"{{{{ {100 * margin!r} | num(1) }}}}\u00a0pp"


def measure_values(audit: str, measure: str, key: str = "accuracy") -> tuple[dict, list]:
    """``({seed: value}, paths)`` of one measure of a seeded audit (``original@grey`` lives in arm ``original``)."""
    return arm_values(audit, measure.split("@")[0], f"measures.{measure}.{key}")


def contrast(audit: str, a: str, b: str, labels: tuple[str, str], key: str = "accuracy", **values) -> Evidence:
    """Measure ``a`` minus measure ``b``, paired by seed, each side shown under its label."""
    va, pa = measure_values(audit, a, key)
    vb, pb = measure_values(audit, b, key)
    return Evidence(per_run=paired(va, vb), sides={labels[0]: va, labels[1]: vb}, records=pa + pb, values=values)


def above(audit: str, measure: str, reference: float, label: str, key: str = "accuracy", **values) -> Evidence:
    """One measure per seed minus a fixed reference (chance, a threshold, the majority class)."""
    v, p = measure_values(audit, measure, key)
    return Evidence(per_run=against(v, reference), sides={label: v}, records=p,
                    values={"reference": reference, **values})


def majority_rate() -> float:
    """The share of Taleqani's largest class (the colour baseline's record: it counts every image)."""
    return float(audit_summary("shortcut_colour")[0]["results"]["majority_rate"])


def majority_of_test(audit: str, arm: str) -> dict:
    """Each seed's majority-class share of its own test images (recorded by the new audits' arms)."""
    return arm_values(audit, arm, "test_majority_rate")[0]


def above_test_majority(audit: str, measure: str, label: str) -> Evidence:
    """A measure per seed minus that seed's own test-set majority rate."""
    v, p = measure_values(audit, measure)
    ref = majority_of_test(audit, measure.split("@")[0])
    return Evidence(per_run=paired(v, ref), sides={label: v, "majority class": ref}, records=p)


def _not_settled(what: str) -> str:
    return f"Whether {what} is not settled: {EFFECT}, and the rule needs the same sign in at least 3 seeds."


# ------------------------------------------------------------------------------------------- colour


@declare("shortcut_colour-above-majority", page="audits", kind="greater",
         claim="A colour histogram alone classifies the Taleqani images far above the majority class",
         test="accuracy of the colour-histogram logistic regression on each seed's test split (external_pbc's "
              "colour_hist arm) minus the majority-class share",
         sentences={
             SUPPORTED: "Over {{ e.runs[0] | plural('seed') }} of a fresh 80/20 split, the colour histogram is above "
                        "the majority class in every seed, by {{ e.mean | pp }} {{ (e.low, e.high) | ppinterval }}.",
             INCONCLUSIVE: _not_settled("the colour histogram beats the majority class on a fresh split"),
             NOT_SUPPORTED: "On fresh splits the colour histogram does not beat the majority class ({{ e.mean | pp }})."})
def _colour_above_majority() -> Evidence:
    return above("external_pbc", "colour_hist", majority_rate(), "colour histogram")


@declare("shortcut_colour-cnn-above-colour", page="audits", kind="greater",
         claim="The audit CNN, which sees shape as well, scores above the colour histogram on the same split",
         test="accuracy of the audit CNN minus the colour histogram's, both on the original images and the same "
              "test split of each seed (the segmented audit's original and colour_hist_original arms)",
         sentences={
             SUPPORTED: "On the same split of each seed, the CNN scores above colour alone in every seed, by "
                        f"{EFFECT}: shape adds to colour, but far less than colour gives on its own.",
             INCONCLUSIVE: _not_settled("the CNN adds anything to colour alone"),
             NOT_SUPPORTED: f"On the same split, the CNN does not beat colour alone ({EFFECT})."})
def _cnn_above_colour() -> Evidence:
    return contrast("segmented", "original", "colour_hist_original", ("audit CNN", "colour histogram"))


# -------------------------------------------------------------------------------------- shortcut_cnn


@declare("shortcut_cnn-strong", page="audits", kind="greater",
         claim="The audit CNN is a strong model on the original images (above the audits' minimum)",
         test="the audit CNN's accuracy on the original test images of each seed minus the minimum the audits ask "
              "(leukcore.audits.MIN_ORIGINAL_ACCURACY)",
         sentences={
             SUPPORTED: "The audit CNN stays above the {{ v.reference | pct(0) }} the audits ask of it in every seed "
                        f"(by {EFFECT}), so what it loses below is what a strong model loses.",
             INCONCLUSIVE: "Whether the audit CNN clears the {{ v.reference | pct(0) }} the audits ask of it is not "
                           f"settled ({EFFECT}); read its losses below with that in mind.",
             NOT_SUPPORTED: "The audit CNN stays below the {{ v.reference | pct(0) }} the audits ask of it "
                            f"({EFFECT}): what it loses below describes a weaker model than the papers'."})
def _cnn_strong() -> Evidence:
    from ..audits import MIN_ORIGINAL_ACCURACY

    return above("shortcut_cnn", "original", MIN_ORIGINAL_ACCURACY, "audit CNN")


@declare("shortcut_cnn-grey-costs", page="audits", kind="less",
         claim="Without colour (trained and tested on grey images) the audit CNN loses accuracy",
         test="accuracy on grey images minus on the original images, paired by seed",
         sentences={
             SUPPORTED: f"Trained and tested without colour it loses accuracy in every seed ({EFFECT}): colour "
                        "carries part of the accuracy, but most of it survives without colour.",
             INCONCLUSIVE: _not_settled("the CNN loses accuracy without colour"),
             NOT_SUPPORTED: f"Without colour it does better ({EFFECT})."})
def _grey_costs() -> Evidence:
    return contrast("shortcut_cnn", "grey", "original", ("grey", "original"))


@declare("shortcut_cnn-uses-colour", page="audits", kind="less",
         claim="The model trained on the original images relies on colour: shown grey test images, it loses accuracy",
         test="accuracy of the original model on grey test images minus on the original test images, paired by seed",
         sentences={
             SUPPORTED: f"Shown grey test images without retraining, the original model loses accuracy in every seed "
                        f"({EFFECT}): it uses colour when colour is there, although a model trained without colour "
                        "classifies grey images far better.",
             INCONCLUSIVE: _not_settled("the original model relies on colour at test time"),
             NOT_SUPPORTED: f"Shown grey test images, the original model does not lose accuracy ({EFFECT})."})
def _uses_colour() -> Evidence:
    return contrast("shortcut_cnn", "original@grey", "original", ("grey test images", "original test images"))


@declare("shortcut_cnn-scale-bar-not-needed", page="audits", kind="within", margin=NO_CHANGE,
         claim="Masking the scale-bar corner, against a control mask of the same size, costs the CNN no accuracy",
         test="accuracy with the scale-bar corner masked minus with the control corner masked (trained so), paired "
              "by seed; 'no change' = within the declared margin",
         sentences={
             SUPPORTED: "Masking the scale bar, against masking a corner of the same size where there is none, changes "
                        f"the accuracy by no more than {margin_text(NO_CHANGE)} in any seed ({EFFECT}): the model "
                        "does not need the bar. That is not to say it cannot use it (see the sufficiency test below).",
             INCONCLUSIVE: "Masking the scale bar, against masking a control corner, changes the accuracy by "
                           f"{EFFECT}, not reliably within {margin_text(NO_CHANGE)} of no change: whether the "
                           "model needs the bar is not settled by this test.",
             NOT_SUPPORTED: f"Masking the scale bar costs accuracy beyond the control mask ({EFFECT}): the model "
                            "needs it."})
def _scale_bar_not_needed() -> Evidence:
    return contrast("shortcut_cnn", "mask_scale_bar", "mask_control", ("scale bar masked", "control masked"))


# ----------------------------------------------------------------------------------------- segmented


@declare("segmented-background-helps", page="audits", kind="less",
         claim="Without the background (the Segmented copies) the audit CNN loses accuracy",
         test="accuracy trained and tested on the Segmented copies minus on the originals, paired by seed",
         sentences={
             SUPPORTED: f"On the background-free copies the CNN loses accuracy in every seed ({EFFECT}); as the "
                        "next section shows, part of that loss is the copies' own failures, not the background.",
             INCONCLUSIVE: _not_settled("the CNN loses accuracy without the background"),
             NOT_SUPPORTED: f"On the background-free copies the CNN does better ({EFFECT})."})
def _segmented_background_helps() -> Evidence:
    return contrast("segmented", "segmented", "original", ("segmented", "original"))


@declare("segmented-original-model-fails", page="audits", kind="less",
         claim="The model trained on the original images fails on background-free test images",
         test="accuracy of the original model on the Segmented test images minus on the original test images, "
              "paired by seed",
         sentences={
             SUPPORTED: "Shown the background-free test images without retraining, the model trained on the "
                        f"originals loses accuracy in every seed ({EFFECT}): it had learnt to use the background, "
                        "or at least to expect it.",
             INCONCLUSIVE: _not_settled("the original model fails on background-free test images"),
             NOT_SUPPORTED: f"Shown background-free test images, the original model does not lose accuracy ({EFFECT})."})
def _original_model_fails() -> Evidence:
    return contrast("segmented", "original@segmented", "original", ("segmented test images", "original test images"))


@declare("segmented-clean-background-helps", page="audits", kind="less",
         claim="With the nearly-empty Segmented copies left out, removing the background still costs accuracy",
         test="accuracy on the Segmented copies minus on the originals, nearly-empty copies left out, paired by seed",
         sentences={
             SUPPORTED: "With the nearly-empty copies left out, the background-free images still cost accuracy in "
                        f"every seed ({EFFECT}).",
             INCONCLUSIVE: "With the nearly-empty copies left out, the background-free images change the accuracy by "
                           f"{EFFECT}: whether removing the background costs anything is then not settled.",
             NOT_SUPPORTED: "With the nearly-empty copies left out, the background-free images do better "
                            f"({EFFECT})."})
def _clean_background_helps() -> Evidence:
    return contrast("segmented_artefacts", "segmented", "original", ("segmented", "original"))


# ------------------------------------------------------------------------------------------- leakage


@declare("acquisition_groups-siblings-help", page="audits", kind="less",
         claim="Keeping acquisition groups on one side of the split lowers the accuracy",
         test="accuracy with a group-disjoint split minus with a random split, paired by seed",
         sentences={
             SUPPORTED: f"A group-disjoint split lowers the accuracy in every seed ({EFFECT}): images that share an "
                        "acquisition are easier to classify when their siblings are in training.",
             INCONCLUSIVE: "A group-disjoint split changes the accuracy by "
                           f"{EFFECT}: no reliable gain from letting acquisition siblings into training.",
             NOT_SUPPORTED: f"A group-disjoint split raises the accuracy ({EFFECT})."})
def _siblings_help() -> Evidence:
    return contrast("acquisition_groups", "group_disjoint", "random", ("group-disjoint", "random"))


@declare("leakage_duplicates-no-effect", page="audits", kind="within", margin=2 * NO_CHANGE,
         claim="The byte-identical pairs do not move the accuracy of a random split",
         test="accuracy with a random split minus with a duplicate-aware split, paired by seed; 'no effect' = within "
              "the declared margin",
         sentences={
             SUPPORTED: f"The random split differs from the duplicate-aware one by {EFFECT}, within "
                        f"{margin_text(2 * NO_CHANGE)} in every seed: the duplicates are a defect of the data worth "
                        "removing, not the reason for the papers' accuracies.",
             INCONCLUSIVE: f"The random split differs from the duplicate-aware one by {EFFECT}: within run-to-run "
                           f"variation, but not reliably within {margin_text(2 * NO_CHANGE)}, so the rule leaves "
                           "open whether they change it at all.",
             NOT_SUPPORTED: f"The random split scores differently from the duplicate-aware one ({EFFECT})."})
def _duplicates() -> Evidence:
    return contrast("leakage_duplicates", "random", "duplicate_aware", ("random", "duplicate-aware"))


@declare("leakage_augment-own-test-higher", page="audits", kind="greater",
         claim="Augment-then-split reports a higher accuracy on its own test set than split-then-augment",
         test="own-test accuracy, augment-then-split minus split-then-augment, paired by seed",
         sentences={
             SUPPORTED: f"On their own test sets augment-then-split scores higher in every seed ({EFFECT}).",
             INCONCLUSIVE: _not_settled("augment-then-split reports more on its own test set"),
             NOT_SUPPORTED: f"On their own test sets augment-then-split does not score higher ({EFFECT})."})
def _augment_own() -> Evidence:
    return contrast("leakage_augment", "augment_then_split", "split_then_augment",
                    ("augment-then-split", "split-then-augment"))


@declare("leakage_augment-unseen-same", page="audits", kind="within", margin=2 * NO_CHANGE,
         claim="On originals neither saw, augment-then-split and split-then-augment score the same",
         test="accuracy on the unseen originals, augment-then-split minus split-then-augment, paired by seed; 'the "
              "same' = within the declared margin",
         sentences={
             SUPPORTED: f"On originals neither model saw they differ by {EFFECT}, within "
                        f"{margin_text(2 * NO_CHANGE)} in every seed: the construction does not make a better (or "
                        "worse) model, it changes only the number reported.",
             INCONCLUSIVE: f"On originals neither model saw they differ by {EFFECT}: whether the construction "
                           "changes the model itself is not settled.",
             NOT_SUPPORTED: f"On originals neither model saw they differ ({EFFECT}): the construction changes the "
                            "model, not only the number."})
def _augment_unseen() -> Evidence:
    return contrast("leakage_augment", "augment_then_split@unseen", "split_then_augment@unseen",
                    ("augment-then-split", "split-then-augment"))


@declare("leakage_augment-copies-harder", page="audits", kind="less",
         claim="Augmented copies of unseen originals are harder to classify than the originals themselves",
         test="split-then-augment's accuracy on its own (augmented) test set minus on the unseen originals, paired "
              "by seed",
         sentences={
             SUPPORTED: "Augmented copies of new originals are harder to classify than the originals themselves in "
                        f"every seed ({EFFECT} for split-then-augment), so comparing the two arms' own test sets mixes "
                        "the leak with how hard each test set's copies are.",
             INCONCLUSIVE: _not_settled("augmented copies are harder to classify than the originals themselves"),
             NOT_SUPPORTED: f"Augmented copies of new originals are easier to classify than the originals ({EFFECT})."})
def _copies_harder() -> Evidence:
    return contrast("leakage_augment", "split_then_augment", "split_then_augment@unseen",
                    ("augmented copies", "unseen originals"))


# ---------------------------------------------------------------------------------------- one loss


@declare("loss_equivalence-one-objective", page="audits", kind="exact",
         claim="Categorical CE, sparse CE and KL divergence train DSCNet identically (one-hot labels)",
         test="the largest difference between the per-step loss curves is below the audit's tolerance",
         sentences={SUPPORTED: "The three curves coincide within the audit's tolerance: one objective.",
                    NOT_SUPPORTED: "The three curves differ beyond the audit's tolerance."})
def _one_objective() -> Evidence:
    rec, path = audit_summary("loss_equivalence")
    r = rec["results"]
    return Evidence(holds=bool(r["max_abs_loss_diff"] < rec["settings"]["tolerance"]), records=[path])


# ------------------------------------------------------------------------------------- external_pbc


#: The models of ``external_pbc`` as the page names them.
EXTERNAL_MODELS = {"original": "the CNN trained on the original images", "grey": "the CNN trained on grey images",
                   "reinhard": "the CNN trained on stain-normalised images",
                   "mask_scale_bar": "the CNN trained with the scale bar masked",
                   "mask_control": "the CNN trained with the control corner masked",
                   "colour_hist": "the colour histogram"}


def _external_decls(arm: str, name: str) -> None:
    @declare(f"external_pbc-{arm}-benign", page="audits", kind="greater", bounds=(-HALF, HALF),
             claim=f"{name[0].upper() + name[1:]} calls most normal PBC lymphocytes Benign",
             test=f"share of the PBC lymphocytes called Benign by {name}, per seed, minus one half",
             sentences={
                 SUPPORTED: f"{name[0].upper() + name[1:]} calls most of them Benign in every seed "
                            "({{ (v.reference + e.mean) | pct }} on average).",
                 INCONCLUSIVE: f"Whether {name} calls most of them Benign is not settled "
                               "({{ (v.reference + e.mean) | pct }} on average over {{ e.runs[0] | plural('seed') }}).",
                 NOT_SUPPORTED: f"{name[0].upper() + name[1:]} calls most of them something other than Benign "
                                "({{ (v.reference + e.mean) | pct }} Benign on average)."})
    def _benign() -> Evidence:
        v, p = arm_values("external_pbc", arm, "benign_fraction.point")
        return Evidence(per_run=against(v, HALF), sides={"Benign share": v}, records=p, values={"reference": HALF})

    @declare(f"external_pbc-{arm}-unfamiliar", page="audits", kind="greater", bounds=(-HALF, HALF), unit="fraction",
             claim=f"{name[0].upper() + name[1:]} tells the PBC lymphocytes apart from its own test images",
             test=f"OOD AUROC of {name} (maximum softmax, Taleqani test images against PBC) per seed minus one half",
             sentences={
                 SUPPORTED: "Its confidence tells them apart from its own test images in every seed (OOD AUROC "
                            "{{ (v.reference + e.mean) | num(2) }} on average).",
                 INCONCLUSIVE: "Whether its confidence tells them apart from its own test images is not settled "
                               "(OOD AUROC {{ (v.reference + e.mean) | num(2) }} on average over "
                               "{{ e.runs[0] | plural('seed') }}).",
                 NOT_SUPPORTED: "Its confidence does not tell them apart: it is more confident on these unfamiliar "
                                "cells than on its own test images (OOD AUROC {{ (v.reference + e.mean) | num(2) }} on "
                                "average)."})
    def _unfamiliar() -> Evidence:
        v, p = arm_values("external_pbc", arm, "ood_auroc")
        return Evidence(per_run=against(v, HALF), sides={"OOD AUROC": v}, records=p, values={"reference": HALF})


for _arm, _name in EXTERNAL_MODELS.items():
    _external_decls(_arm, _name)


# ---------------------------------------------------------------------------------- scale_bar_alone


@declare("scale_bar_alone-mark-grey", page="audits", kind="greater",
         claim="The scale-bar corner alone, in grey, tells the classes apart better than the opposite corner",
         test="accuracy of the pixel classifier on the grey scale-bar crop minus on the grey opposite-corner crop, "
              "paired by seed",
         sentences={
             SUPPORTED: "In grey, where the background's colour no longer helps, the scale-bar corner alone beats "
                        f"the opposite corner in every seed ({EFFECT}): the mark itself carries the class.",
             INCONCLUSIVE: _not_settled("the mark itself, in grey, carries more than the opposite corner"),
             NOT_SUPPORTED: f"In grey the scale-bar corner alone does no better than the opposite corner ({EFFECT})."})
def _mark_grey() -> Evidence:
    return contrast("scale_bar_alone", "pixels_bar_grey", "pixels_control_grey", ("scale-bar corner", "opposite corner"))


@declare("scale_bar_alone-mark-colour", page="audits", kind="greater",
         claim="The scale-bar corner alone, in colour, tells the classes apart better than the opposite corner",
         test="accuracy of the pixel classifier on the scale-bar crop minus on the opposite-corner crop, in colour, "
              "paired by seed",
         sentences={
             SUPPORTED: f"In colour the scale-bar corner beats the opposite corner in every seed ({EFFECT}).",
             INCONCLUSIVE: _not_settled("the scale-bar corner, in colour, carries more than the opposite corner"),
             NOT_SUPPORTED: f"In colour the scale-bar corner does no better than the opposite corner ({EFFECT})."})
def _mark_colour() -> Evidence:
    return contrast("scale_bar_alone", "pixels_bar", "pixels_control", ("scale-bar corner", "opposite corner"))


@declare("scale_bar_alone-cnn-grey", page="audits", kind="greater",
         claim="The audit CNN shown only the grey scale-bar corner beats the same CNN on the grey opposite corner",
         test="accuracy of the audit CNN on the grey scale-bar crop minus on the grey opposite-corner crop, paired by seed",
         sentences={
             SUPPORTED: f"The audit CNN agrees: in grey, the scale-bar corner beats the opposite corner ({EFFECT}).",
             INCONCLUSIVE: _not_settled("the audit CNN, in grey, reads more from the scale-bar corner"),
             NOT_SUPPORTED: f"The audit CNN reads no more from the grey scale-bar corner ({EFFECT})."})
def _cnn_grey() -> Evidence:
    return contrast("scale_bar_alone", "cnn_bar_grey", "cnn_control_grey", ("scale-bar corner", "opposite corner"))


@declare("scale_bar_alone-any-corner", page="audits", kind="greater",
         claim="The audit CNN shown only the opposite corner, where there is no mark, classifies far above the "
               "majority class",
         test="accuracy of the audit CNN on the opposite-corner crop (colour) minus the majority-class share of each "
              "seed's test images",
         sentences={
             SUPPORTED: "The audit CNN needs no mark at all: shown only the opposite corner, a small patch of the "
                        f"field where there is none, it beats the majority class in every seed ({EFFECT}): every corner of the "
                        "field carries the class, which is why masking one corner costs nothing.",
             INCONCLUSIVE: _not_settled("a small patch of the field without the mark is enough for the audit CNN"),
             NOT_SUPPORTED: f"Shown only the opposite corner, the audit CNN does not beat the majority class ({EFFECT})."})
def _any_corner() -> Evidence:
    v, p = measure_values("scale_bar_alone", "cnn_control")
    ref = majority_of_test("scale_bar_alone", "pixels_bar")
    return Evidence(per_run=paired(v, ref), sides={"opposite corner": v, "majority class": ref}, records=p)


# --------------------------------------------------------------------------------- background_alone


@declare("background_alone-background-suffices", page="audits", kind="greater",
         claim="The colour of the background alone, without the cells, classifies far above the majority class",
         test="accuracy of the colour histogram of the background pixels minus the majority-class share of each "
              "seed's test images",
         sentences={
             SUPPORTED: "The background alone, with every cell and the scale bar left out, beats the majority class "
                        f"in every seed ({EFFECT}).",
             INCONCLUSIVE: _not_settled("the background alone beats the majority class"),
             NOT_SUPPORTED: f"The background alone does not beat the majority class ({EFFECT})."})
def _background_suffices() -> Evidence:
    return above_test_majority("background_alone", "background", "background alone")


@declare("background_alone-cells-vs-background", page="audits", kind="greater",
         claim="The cells' colour tells the classes apart better than the background's",
         test="accuracy of the colour histogram of the cell pixels minus of the background pixels, paired by seed",
         sentences={
             SUPPORTED: f"The cells' colour beats the background's in every seed ({EFFECT}).",
             INCONCLUSIVE: f"The cells' colour and the background's differ by {EFFECT}: neither carries reliably "
                           "more of the colour signal.",
             NOT_SUPPORTED: f"The cells' colour does not beat the background's: cells minus background, {EFFECT}. "
                            "The colour signal is in the field between the cells (stain, illumination, the red "
                            "cells) at least as much as in the cells."})
def _cells_vs_background() -> Evidence:
    return contrast("background_alone", "cells", "background", ("cells alone", "background alone"))


# -------------------------------------------------------------------------------------- attribution


@declare("attribution-audit-cnn-corner", page="audits", kind="greater",
         claim="The audit CNN puts more of its Grad-CAM mass in the scale-bar corner than in the control corner",
         test="Grad-CAM share in the scale-bar box minus in the control box, mean over the test images, paired by seed",
         sentences={
             SUPPORTED: "The audit CNN's Grad-CAM puts more of its mass in the scale-bar corner than in the control "
                        f"corner in every seed ({EFFECT}).",
             INCONCLUSIVE: "The audit CNN's Grad-CAM mass in the scale-bar corner and in the control corner differ "
                           f"by {EFFECT}: no reliable preference for the corner.",
             NOT_SUPPORTED: "The audit CNN's Grad-CAM puts less of its mass in the scale-bar corner than in the "
                            f"control corner ({EFFECT}): it does not look at the bar."})
def _attribution() -> Evidence:
    return contrast("attribution", "audit_cnn@bar", "audit_cnn@control", ("scale-bar corner", "control corner"),
                    key="value")


# ------------------------------------------------------------------------------ segmented_artefacts


@declare("segmented_artefacts-fraction-suffices", page="audits", kind="greater",
         claim="How much of an image the segmentation keeps, one number, classifies above the majority class",
         test="accuracy of a logistic regression on the foreground fraction minus the majority-class share of each "
              "seed's test images",
         sentences={
             SUPPORTED: "That one number, how much of the image the segmentation kept, beats the majority class in "
                        f"every seed ({EFFECT}): the Segmented copies carry a class signal of their own, made by "
                        "their failures.",
             INCONCLUSIVE: _not_settled("the foreground fraction alone beats the majority class"),
             NOT_SUPPORTED: f"The foreground fraction alone does not beat the majority class ({EFFECT})."})
def _fraction_suffices() -> Evidence:
    return above_test_majority("segmented_artefacts", "foreground_fraction", "foreground fraction")


# ------------------------------------------------------------------------------------------ choices


def _lambda_decl(model: str, name: str) -> None:
    @declare(f"choices-{model}-lambda", page="audits", kind="greater",
             claim=f"{name} trains better at the audit scale without the L2 term than with lambda as leukcore applies it",
             test=f"accuracy of {name} without the L2 term minus with lambda * sum(w^2) over its conv and FC weights, "
                  "paired by seed (the audit scale: from scratch, a few epochs)",
             sentences={
                 SUPPORTED: f"{name} does better without the L2 term than under our reading of lambda in every seed "
                            f"({EFFECT}): at this scale, our lambda reading is what holds it back.",
                 INCONCLUSIVE: f"Whether our reading of lambda holds {name} back is not settled at this scale: "
                               f"{EFFECT} without the L2 term.",
                 NOT_SUPPORTED: f"{name} does no better without the L2 term ({EFFECT}): at this scale, our lambda "
                                "reading is not what holds it back."})
    def _gather() -> Evidence:
        return contrast("choices", f"{model}_none", f"{model}_keras", ("no L2", "lambda as now"))



def _collapse_decl(model: str, name: str) -> None:
    @declare(f"choices-{model}-collapses", page="audits", kind="greater",
             claim=f"{name} collapses under lambda as leukcore applies it (calls nearly every test image one class)",
             test=f"the largest share of the test images {name} calls one class under our lambda reading, per seed, "
                  "minus the share from which the audit calls a model collapsed",
             sentences={
                 SUPPORTED: f"Under our reading {name} collapses in every seed: it calls "
                            "{{ (v.reference + e.mean) | pct }} of the test images one class on average.",
                 INCONCLUSIVE: f"Whether {name} collapses under our reading is not settled (on average it calls "
                               "{{ (v.reference + e.mean) | pct }} of the test images one class).",
                 NOT_SUPPORTED: f"Under our reading {name} does not collapse: on average its most frequent call "
                                "takes {{ (v.reference + e.mean) | pct }} of the test images."})
    def _gather() -> Evidence:
        from ..audits.base import COLLAPSE_SHARE

        v, p = arm_values("choices", f"{model}_keras", "majority_share")
        return Evidence(per_run=against(v, COLLAPSE_SHARE), sides={"largest share called one class": v}, records=p,
                        values={"reference": COLLAPSE_SHARE})


for _model, _name in (("alexnet", "AlexNet"), ("resnet50", "ResNet-50"), ("dscnet", "DSCNet")):
    _lambda_decl(_model, _name)
    _collapse_decl(_model, _name)


@declare("choices-filter-no-effect", page="audits", kind="within", margin=4 * NO_CHANGE,
         claim="DSCNet's sharpening filter (our stand-in for the paper's custom filter) does not change its accuracy",
         test="accuracy of DSCNet with the filter minus without it, no L2 term, paired by seed; 'no change' = within "
              "the declared margin",
         sentences={
             SUPPORTED: f"DSCNet with and without the sharpening filter differ by {EFFECT}, within "
                        f"{margin_text(4 * NO_CHANGE)} in every seed: our choice of filter does not decide its number.",
             INCONCLUSIVE: f"DSCNet with and without the sharpening filter differ by {EFFECT}: whether the filter we "
                           "chose matters is not settled at this scale.",
             NOT_SUPPORTED: f"The sharpening filter changes DSCNet's accuracy (with minus without, {EFFECT}): our "
                            "choice of filter matters."})
def _filter() -> Evidence:
    return contrast("choices", "dscnet_none", "dscnet_nofilter_none", ("with filter", "without filter"))


# ------------------------------------------------------------------------------------- landing page


#: What every status of ``landing-colour`` says first: the colour histogram against the majority class, and the
#: two regions' scores.
_COLOUR_FACTS = (
    "A logistic regression that sees only a colour histogram of each image, nothing of a cell's shape, classifies "
    "{{ audit('shortcut_colour', 'hist.accuracy.point') | pct }} "
    "{{ (audit('shortcut_colour', 'hist.accuracy.low'), audit('shortcut_colour', 'hist.accuracy.high')) | interval }} "
    "of the Taleqani images correctly (majority class: {{ audit('shortcut_colour', 'majority_rate') | pct }}). With "
    "the cells masked out by the dataset's own segmentation, the colour of the field between them alone scores "
    "{{ audit('background_alone', 'arms.background') | pctci }}, the cells alone "
    "{{ audit('background_alone', 'arms.cells') | pctci }}")
_NO_MORPHOLOGY = (" So the papers that report near-perfect accuracy on these images (or on augmented copies of them) "
                  "need not have learnt any morphology.")


@declare("landing-colour", page="landing", kind="greater",
         claim="Colour alone is enough, and it is the field's more than the cells': the colour of the background "
               "alone classifies the Taleqani images better than the colour of the cells alone",
         test="accuracy of the colour histogram of the background pixels minus of the cell pixels (cells masked with "
              "the Segmented copies; nearly-empty copies and the scale-bar corner left out), paired by seed",
         sentences={
             SUPPORTED: "**Colour alone is enough, and it is the field's more than the cells'.** " + _COLOUR_FACTS
                        + ": the field tells the classes apart better than the cells themselves in every seed, by "
                        + EFFECT + "." + _NO_MORPHOLOGY,
             INCONCLUSIVE: "**Colour alone is enough; whether it is the field's or the cells' is not settled.** "
                           + _COLOUR_FACTS + " (field minus cells " + EFFECT + ")." + _NO_MORPHOLOGY,
             NOT_SUPPORTED: "**Colour alone is enough, and the cells' own colour carries more of it than the "
                            "field's.** " + _COLOUR_FACTS + " (cells minus field {{ (-e.mean) | pp }} over "
                            "{{ e.runs[0] | plural('seed') }})." + _NO_MORPHOLOGY})
def _landing_colour() -> Evidence:
    return contrast("background_alone", "background", "cells", ("background alone", "cells alone"))


_PBC_RANGE = ("from {{ (v.reference + (e.per_run.values() | min)) | pct }} to "
              "{{ (v.reference + (e.per_run.values() | max)) | pct }} between single runs")


@declare("landing-external", page="landing", kind="greater", bounds=(-HALF, HALF),
         claim="The audit CNN trained on the original Taleqani images calls most normal lymphocytes from another "
               "laboratory (PBC) Benign, whatever the seed",
         test="share of the PBC lymphocytes called Benign by the original model, per seed, minus one half",
         sentences={
             SUPPORTED: "**Another laboratory's normal lymphocytes are called Benign, which is not recognition.** "
                        "Over {{ e.runs[0] | plural('seed') }}, the audit CNN trained on the original Taleqani "
                        "images calls most of {{ audit('external_pbc', 'n_external') | num }} normal lymphocytes "
                        "from another laboratory (PBC) Benign in every seed "
                        "({{ (v.reference + e.mean) | pct }} on average, " + _PBC_RANGE + ").",
             INCONCLUSIVE: "**Whether another laboratory's normal lymphocytes are called Benign is not "
                           "settled.** Over {{ e.runs[0] | plural('seed') }}, the audit CNN trained on the original "
                           "Taleqani images calls {{ (v.reference + e.mean) | pct }} of "
                           "{{ audit('external_pbc', 'n_external') | num }} normal lymphocytes from another "
                           "laboratory (PBC) Benign on average, " + _PBC_RANGE + ".",
             NOT_SUPPORTED: "**Another laboratory's normal lymphocytes are not called Benign.** Over "
                            "{{ e.runs[0] | plural('seed') }}, the audit CNN trained on the original Taleqani "
                            "images calls only {{ (v.reference + e.mean) | pct }} of "
                            "{{ audit('external_pbc', 'n_external') | num }} normal lymphocytes from another "
                            "laboratory (PBC) Benign on average."})
def _landing_external() -> Evidence:
    v, p = arm_values("external_pbc", "original", "benign_fraction.point")
    return Evidence(per_run=against(v, HALF), sides={"Benign share": v}, records=p, values={"reference": HALF})
