# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Beyond the papers: shortcuts, leakage, equivalent losses and external validity
#
# None of the five papers asks whether its accuracy needs the morphology of the cells, whether its
# split lets the same image (or the same original, or the same patient) into training and test, whether
# the losses it compares differ at all, or whether its model recognises normal cells from another
# laboratory. Each audit below is one function of `leukcore.audits`. The audits that train a CNN run
# at the `audit` profile, several seeds per arm, one record per arm and seed
# (`results/audits/audit/<audit>/<arm>.seed<k>.json`), pooled into one summary per audit
# (`results/audits/audit/<audit>.json`): each accuracy is a mean over seeds with a t-interval over
# seeds, and each effect is a paired difference (arm minus its reference, seed by seed) with a
# t-interval over seeds and McNemar's test per seed. Each audit ends with a conclusion whose numbers
# are read from its summary record. The records are made by `leukcore audits run --profile audit`;
# at that profile this page reads them (set `run_missing` to train what is missing).

# %% tags=["parameters", "hide-cell"]
profile = "audit"  # audit (the audits' own budget) | smoke (CI: a few images) | cpu
data_root = None  # folder holding the datasets (None: LEUKCORE_DATA, ./data, ../shared/data)
device = "auto"  # auto | cpu | cuda
seed = 0  # the seed of the single-record audits (and of the seeded ones when seeds is None at smoke / cpu)
seeds = None  # None: the profile's seeds (0, 1, 2 at audit)
output_dir = None  # results folder (None: the project's results/)
run_missing = False  # train the arms that have no record yet (always at smoke and cpu)
force = False  # rerun even when a complete record with the same key exists

# %% tags=["hide-input"]
# %matplotlib inline
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import HTML, Markdown, display

from leukcore import audits
from leukcore.book import pages
from leukcore.book.audit_conclusions import audit_cards, show_conclusion
from leukcore.runs.profiles import get_profile
from leukcore.runs.records import provenance_label

pages.notebook_setup()
run = run_missing or force or profile in ("smoke", "cpu")
seed_list = tuple(seeds) if seeds is not None else (audits.default_seeds(profile) if profile == "audit" else (seed,))
display(Markdown(f"Profile `{profile}`: {get_profile(profile).description}"))
records = {}


def show(audit_id):
    """Read (or, when asked, run) one audit; show its banner, headline, table, figure and conclusion."""
    if run:
        rec = audits.get_or_run_audit(audit_id, profile, force=force, data_root=data_root, seeds=seed_list,
                                 seed=seed, results_dir=output_dir, device=device)
    else:
        rec = audits.load_summary(audit_id, profile, output_dir)
    if rec is None:
        display(Markdown(f"**Not run yet at the `{profile}` profile**: `leukcore audits run --audit {audit_id} "
                         f"--profile {profile}` makes its records."))
        return None
    records[audit_id] = rec
    display(Markdown(audits.data_banner(rec)))
    display(Markdown(f"**{rec['headline']}**"))
    display(HTML(pages.df_to_html(audits.audit_table(rec), "records-table", escape=True)))
    audits.plot_audit(rec)
    plt.show()
    show_conclusion(audit_id)
    return rec


# %% [markdown]
# ## The audit CNN, and why this one
#
# An audit that removes colour, or the scale bar, from a weak model says nothing about the papers'
# models. The audit CNN must therefore be strong on the original images (the audits ask for a mean
# accuracy over seeds of at least `leukcore.audits.MIN_ORIGINAL_ACCURACY`), and cheap enough to be trained once per arm
# and seed. DSCNet at its paper size, 224 px, is too slow on the study's 2-core CPU for that; the audits
# use `audit_cnn` (`leukcore.models`), a small network of four convolution blocks with batch
# normalisation, at 64 px, where the cells' texture is still visible. It trains with Adam and a cosine
# learning-rate decay, crops and flips as its only augmentation (no colour jitter: colour is what the
# audits vary), and early stopping on a validation part carved from the training part, which may stop
# training only in the second half of its epochs. The numbers below come from the records.

# %% tags=["hide-input"]
mc = audits.model_choice(output_dir, profile)
lines = []
if mc.get("dscnet_cpu_s"):
    lines.append(f"- One DSCNet training at {mc['dscnet_image_size']} px on this CPU "
                 f"(`dscnet_vijayalakshmi`, paper profile, {mc['dscnet_device']}) took "
                 f"{mc['dscnet_cpu_s'] / 60:.0f} minutes.")
if mc.get("trainings"):
    lines.append(f"- The audits at the `{profile}` profile trained {mc['trainings']} models"
                 + (f"; as DSCNet at 224 px that would take about {mc['dscnet_all_hours']:.0f} hours on this CPU"
                    if mc.get("dscnet_all_hours") else "")
                 + f". The audit CNN took {mc['audit_cnn_mean_s'] / 60:.1f} minutes per trained arm on average.")
o = mc.get("audit_cnn_original")
if o:
    iv = f" [{o['low']:.1%}, {o['high']:.1%}]" if o.get("low") is not None else ""
    lines.append(f"- Its accuracy on the original Taleqani test images: {o['mean']:.1%}{iv}, mean over "
                 f"{o['n']} seeds (t-interval).")
display(Markdown("\n".join(lines) or "No audit records yet."))

# %% [markdown]
# ## The audits at a glance
#
# One card per audit: its question, the headline of its summary record, and each conclusion we draw from it,
# graded by the rule every conclusion of this study follows (supported only when at least 3 seeds stand on each
# side, the effect has the claimed sign in every seed and its t-interval over seeds excludes no effect;
# otherwise inconclusive, with each seed's value shown, or not supported).

# %% tags=["hide-input"]
display(HTML(audit_cards(audits.list_audits(), profile)))

# %% [markdown]
# ## 1. Colour alone
#
# If the four classes of `taleqani-all` were photographed on different days, with different stains or
# microscope settings, the colour of the whole field may give the class away. A logistic regression
# that sees only a 16-bin histogram of each colour channel (48 numbers per image, nothing about shape),
# and one that sees only the mean and standard deviation of each channel (6 numbers), are scored by
# stratified, duplicate-aware 5-fold cross-validation; the interval is a bootstrap over the pooled
# out-of-fold predictions. These baselines run once: given its folds the cross-validation is
# deterministic, so seeds would only reshuffle the folds. The dashed line is the majority-class rate.

# %% tags=["hide-input"]
rec = show("shortcut_colour")

# %% [markdown]
# ## 2. The CNN without colour, without stain differences, without the scale bar
#
# The audit CNN is trained on the same duplicate-aware 80/20 split, from the same initial weights and in
# the same data order within a seed, on five versions of the images: the originals; grey-scale (BT.601
# luma); Reinhard stain-normalised (target: the training part's pooled LAB statistics); the bottom-right
# corner masked, where the microscope software printed its scale bar (a box of 18 % x 16 % of the side,
# filled with the image's mean colour; see `leukcore.audits.SCALE_BAR_BOX`); and, as the control, a box
# of the same size and fill in the top-left corner, where there is no scale bar. What each contrast
# isolates:
#
# - *grey minus original*: what colour adds; *stain-normalised minus original*: what the stain
#   differences between images add;
# - *control mask minus original*: what masking any corner does to the input distribution;
# - *scale-bar mask minus control mask*: the scale bar itself, with the mask's own effect removed.
#
# The same contrasts are measured a second time at test time only: the *original* model is shown altered
# test images, without retraining (rows `original@...`); what it loses there is what it relied on.

# %% tags=["hide-input"]
fig = audits.plot_variant_examples(data_root=data_root)
plt.show()

# %% tags=["hide-input"]
rec = show("shortcut_cnn")

# %% [markdown]
# ## 3. The scale-bar corner alone
#
# Masking the scale-bar corner asks whether the model *needs* the bar; with colour and the background there as
# well, a model that can use the bar loses nothing when it is hidden. The converse asks whether the corner
# *suffices*: classifiers that see only the box the mask covers, cropped at the Originals' own resolution (where
# the mark is legible), against the same classifiers on a box of the same size from the opposite corner, where
# there is no mark. The background's colour is in every corner, so only this like-for-like pair, and the grey
# one above all, says what the mark itself carries. Two classifiers see each crop: a logistic regression on its
# pixels, and the audit CNN. The crops below are what they see, side by side by class.

# %% tags=["hide-input"]
fig = audits.plot_corner_crops(data_root=data_root)
plt.show()

# %% tags=["hide-input"]
rec = show("scale_bar_alone")

# %% [markdown]
# ## 4. Where the models look
#
# The third test of the bar: over every test image, what share of the audit CNN's Grad-CAM mass (Selvaraju et
# al. 2017: last convolution, predicted class, each map scaled to [0, 1], `leukcore.engine.explain.grad_cam`)
# falls in the scale-bar box, against the control box of the same size. The model is the `shortcut_cnn`
# original model of the same seed (retrained when its cached weights are not on this machine; the record says
# whether its per-image correctness matches the `shortcut_cnn` record). The paper-profile CNNs are measured the
# same way when their final weights are kept beside their records (weights are not committed).

# %% tags=["hide-input"]
rec = show("attribution")

# %% [markdown]
# ## 5. Background removed
#
# `taleqani-all` also ships a `Segmented` variant: the same images with everything but the cells blacked
# out (the dataset authors' segmentation). The audit CNN is trained and tested on it with the split of
# section 2; the original model is tested on segmented images; and the colour histogram of section 1 is
# fitted on both versions of the same training part.

# %% tags=["hide-input"]
rec = show("segmented")

# %% [markdown]
# ## 6. The Segmented copies' own artefacts
#
# The Segmented copies are not simply "cells without background": many keep almost none of their pixels.
# Before reading the previous section, the copies are measured: the share of each copy's pixels that the
# segmentation keeps (its foreground fraction: a pixel counts as cell when its largest RGB channel exceeds a
# threshold, at 224 px), per image and per class; how many copies are nearly empty; whether that one number
# alone gives the class away (a logistic regression on it, on each seed's split); and the previous section's
# audit repeated on the images whose copy is not nearly empty (split anew).

# %% tags=["hide-input"]
rec = show("segmented_artefacts")
ff = audits.find_arm_record("segmented_artefacts", "foreground_fraction", profile, seed=seed_list[0],
                            results_dir=output_dir) if rec is not None else None
if ff is not None:
    fig = audits.plot_foreground_fractions(ff)
    plt.show()

# %% [markdown]
# ## 7. The background alone, the cells alone
#
# The colour histogram's accuracy mixes the acquisition (stain, illumination, the field between the cells)
# with the cells themselves (how much violet, how large the blasts). Which of the two carries the signal is
# the first question a haematologist asks. The Segmented copies give a cell mask; the colour-histogram
# classifier of section 1 is then fitted on the background alone (every pixel outside the cells, the cell mask
# grown by a few pixels and the scale-bar corner left out), on the cells alone, and on the whole image, on the
# same images (those whose copy is not nearly empty) and the same split of each seed.

# %% tags=["hide-input"]
fig = audits.plot_regions(data_root=data_root)
if fig is not None:
    plt.show()

# %% tags=["hide-input"]
rec = show("background_alone")

# %% [markdown]
# ## 8. A proxy for patients: acquisition groups
#
# Taleqani publishes no patient identifiers, so every Taleqani number, ours and the papers', comes from
# an image-level split that may put cells of one patient on both sides. As a proxy, the images are
# grouped by acquisition signature (the colour and spread of the border, luma percentiles, the colour of
# the brightest quarter of the pixels, the JPEG encoder's quantisation, EXIF where present, and the file
# number) with Ward clustering into as many groups as the dataset has patients. The groups are checked
# against what is known (the byte-identical pairs must share a group; a patient has one diagnosis, so a
# patient-like group is nearly pure in class), then a random split is compared with a split that keeps
# every group on one side. This is a proxy: it cannot show what patient ids would.

# %% tags=["hide-input"]
rec = show("acquisition_groups")

# %% [markdown]
# ## 9. Random vs duplicate-aware split
#
# `taleqani-all` holds 40 byte-identical pairs (consecutive numbers in `Pro`). A random split puts some
# pairs on both sides: the model is then tested on images it was trained on. Both arms train the same
# CNN with the same budget; the number of test images whose twin is in training bounds how far the leak
# can move the accuracy.

# %% tags=["hide-input"]
rec = show("leakage_duplicates")

# %% [markdown]
# ## 10. Augment-then-split vs split-then-augment
#
# `multicancer-all`, the dataset of the DSCNet paper, is the 3,256 Taleqani images expanded by augmentation
# to 5,000 per class; a random split of it puts augmented copies of the same original on both sides.
# Augment-then-split reproduces that construction with DSCNet's augmentations; split-then-augment splits
# the originals first and expands each part on its own. Same CNN, training sets of the same size, test
# sets of the same size and construction. At the audit profile each class is expanded to fewer images and
# the originals are subsampled so that each original has as many copies as in the paper; the originals
# left out are a third test set that neither model saw, on which the two arms can be compared fairly.

# %% tags=["hide-input"]
rec = show("leakage_augment")

# %% [markdown]
# ## 11. Image-level vs subject-level split (C-NMC 2019)
#
# C-NMC 2019 names the patient of every image. An image-level random split lets cells of the same patient
# into training and test; a subject-disjoint split does not. The dataset is not reachable from our
# machines: at the `smoke` profile the audit runs on a synthetic tree in the C-NMC layout (to show that it
# works), at the other profiles its record says it was not run.

# %% tags=["hide-input"]
rec = show("leakage_subject")

# %% [markdown]
# ## 12. Three names, one loss
#
# DSCNet's paper compares categorical cross-entropy, sparse categorical cross-entropy and KL divergence.
# With one-hot labels, `KL(y || p) = CE(y, p) - H(y)` and `H(y) = 0`: the three are one function. DSCNet
# itself is trained three times from the same initial weights in the same data order on the CPU with
# deterministic algorithms (one run: it is deterministic); the right panel shows how far the per-step loss
# curves drift apart.

# %% tags=["hide-input"]
rec = show("loss_equivalence")
if rec is not None:
    display(Markdown(rec["implication"]))

# %% [markdown]
# ## 13. Normal lymphocytes from another laboratory
#
# `pbc-lymphocytes` holds 1,214 images of normal lymphocytes from the Hospital Clinic of Barcelona
# (CellaVision DM96, one centred cell per image). A test set of one class cannot tell recognition from a
# default: a model that sends every unfamiliar image to one class scores all or nothing. So each model
# trained on Taleqani (the five CNNs of section 2, each shown the PBC images altered as its training
# images were, and the colour histogram) is read four ways: the classes it predicts for the PBC cells,
# its mean confidence, an out-of-distribution score (the AUROC with which its maximum softmax probability
# separates Taleqani's test images from the PBC images) and, beside them, its recall of Taleqani's own
# Benign class, which the dataset's description (Aria et al. 2021) calls haematogones: benign B-cell
# precursors (McKenna et al. 2001), not mature lymphocytes.

# %% tags=["hide-input"]
rec = show("external_pbc")

# %% [markdown]
# ## 14. Our own choices: Kaur's lambda and filter
#
# Where a paper is silent we chose, and a choice may decide an outcome. Kaur et al. give one regularisation
# parameter, `lambda = 0.01`, and trained in MATLAB; leukcore applies it as `0.01 * sum(w^2)` over every conv and
# fully connected weight (Keras' `kernel_regularizer`), and every baseline trained from scratch under it
# collapsed. Kaur's models (DSCNet and the baselines that fit this CPU, AlexNet and ResNet-50) are rerun at the
# audit scale (64 px, a few epochs, from scratch, Adam, KL loss, no augmentation) under three readings of
# lambda: ours; MATLAB's `L2Regularization` (half our term: MATLAB adds `lambda / 2 * sum(w^2)` over the
# weights, not the biases); and none. DSCNet is also run without the sharpening filter that stands for the
# paper's unspecified "custom filtering layer".

# %% tags=["hide-input"]
rec = show("choices")

# %% [markdown]
# ## Summary
#
# One line per audit, from its record; the wall time of a seeded audit is the sum over its arm records.

# %% tags=["hide-input"]
summary = pd.DataFrame([{"audit": a, "finding": r["headline"], "status": r["status"],
                         "seeds": ", ".join(map(str, r.get("seeds", [r.get("seed")]))),
                         "profile · dataset": provenance_label(r), "wall time (min)": round((r.get("wall_time_s") or 0) / 60, 1)}
                        for a, r in records.items()])
display(HTML(pages.df_to_html(summary, "records-table", escape=True)))
if len(summary):
    display(Markdown(f"All audits together: {summary['wall time (min)'].sum():.0f} minutes of compute "
                     f"at the `{profile}` profile."))
