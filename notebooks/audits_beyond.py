# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Beyond the papers: shortcuts, leakage, equivalent losses and external validity
#
# None of the five papers asks whether its accuracy needs the morphology of the cells, whether its
# split lets the same image (or the same original) into training and test, whether the losses it
# compares differ at all, or whether its model recognises normal cells from another laboratory.
# Each audit below is one function of `leukcore.audits`; this notebook runs them at the chosen
# profile (or reuses a complete record with the same key from `results/audits/<profile>/`) and shows,
# for each, what it asks, its numbers with 95 % intervals and a figure. Rerun it with papermill
# (`papermill notebooks/audits_beyond.ipynb out.ipynb -p profile cpu`).

# %% tags=["parameters", "hide-cell"]
profile = "smoke"  # smoke | cpu | paper
data_root = None  # folder holding the datasets (None: LEUKCORE_DATA, ./data, ../shared/data)
device = "auto"  # auto | cpu | cuda
seed = 0
output_dir = None  # results folder (None: the project's results/)
force = False  # rerun even when a complete record with the same key exists

# %% tags=["hide-input"]
# %matplotlib inline
import matplotlib.pyplot as plt
from IPython.display import HTML, Markdown, display

from leukcore import audits as A
from leukcore.book import pages as R
from leukcore.runs.profiles import get_profile

R.notebook_setup()
display(Markdown(f"Profile `{profile}`: {get_profile(profile).description}"))
records = {}


def show(audit_id):
    """Run (or reuse) one audit, then show its data banner, headline, table and figure."""
    rec = A.get_or_run_audit(audit_id, profile, force=force, data_root=data_root, seed=seed,
                             results_dir=output_dir, device=device)
    records[audit_id] = rec
    display(Markdown(A.data_banner(rec)))
    display(Markdown(f"**{rec['headline']}**"))
    display(HTML(R.df_to_html(A.audit_table(rec), "records-table", escape=True)))
    fig = A.plot_audit(rec)
    plt.show()
    return rec


# %% [markdown]
# ## 1. Colour alone
#
# If the four classes of `taleqani-all` were photographed on different days, with different stains or
# microscope settings, the colour of the whole field may give the class away. A logistic regression
# that sees only a 16-bin histogram of each colour channel (48 numbers per image, nothing about shape),
# and one that sees only the mean and standard deviation of each channel (6 numbers), are scored by
# stratified, duplicate-aware 5-fold cross-validation; the interval is a bootstrap over the pooled
# out-of-fold predictions. The dashed line is the majority-class rate.

# %% tags=["hide-input"]
rec = show("shortcut_colour")

# %% [markdown]
# ## 2. The CNN without colour, without stain differences, without the scale bar
#
# The audit CNN (DSCNet as built by `leukcore.models`, four outputs, trained from scratch) is trained four
# times on the same duplicate-aware 80/20 split, from the same initial weights, in the same data order and
# with the same budget: on the original images, on grey-scale images (BT.601 luma), on Reinhard
# stain-normalised images (target: the training part's pooled LAB statistics) and with the bottom-right
# corner masked, where the microscope software printed its scale bar (a box of 18 % x 16 % of the side,
# filled with the image's mean colour; measured on the real images, see `leukcore.audits.SCALE_BAR_BOX`).
# McNemar's test compares each variant with the original on the same test images. The last rows feed the
# *original* model altered test images without retraining: what it loses there is what it relied on.

# %% tags=["hide-input"]
fig = A.plot_variant_examples(data_root=data_root, seed=seed)
plt.show()

# %% tags=["hide-input"]
rec = show("shortcut_cnn")

# %% [markdown]
# ## 3. Random vs duplicate-aware split
#
# `taleqani-all` holds 40 byte-identical pairs (consecutive numbers in `Pro`). A random split puts some
# pairs on both sides: the model is then tested on images it was trained on. Both arms train the same
# CNN with the same budget; the note gives the number of test images whose twin is in training, which
# bounds how far the leak can move the accuracy.

# %% tags=["hide-input"]
rec = show("leakage_duplicates")

# %% [markdown]
# ## 4. Augment-then-split vs split-then-augment
#
# `multicancer-all`, the dataset of the DSCNet paper, is the 3,256 Taleqani images expanded by augmentation
# to 5,000 per class; a random split of it puts augmented copies of the same original on both sides.
# Augment-then-split reproduces that construction; split-then-augment splits the originals first and
# expands each part on its own. Same CNN, training sets of the same size, test sets of the same size
# and construction. At reduced profiles the number per class is capped and the originals are
# subsampled so that each original has as many copies as in the paper; the originals left out are a
# third, clean test set that neither model saw.

# %% tags=["hide-input"]
rec = show("leakage_augment")

# %% [markdown]
# ## 5. Image-level vs subject-level split (C-NMC 2019)
#
# C-NMC 2019 names the patient of every image. An image-level random split lets cells of the same patient
# into training and test; a subject-disjoint split does not. The dataset is not reachable from our
# machines: at the `smoke` profile the audit runs on a synthetic tree in the C-NMC layout (to show that it
# works), at the other profiles its record says it was not run.

# %% tags=["hide-input"]
rec = show("leakage_subject")

# %% [markdown]
# ## 6. Three names, one loss
#
# DSCNet's paper compares categorical cross-entropy, sparse categorical cross-entropy and KL divergence.
# With one-hot labels, `KL(y || p) = CE(y, p) - H(y)` and `H(y) = 0`: the three are one function. DSCNet is
# trained three times from the same initial weights in the same data order on the CPU with deterministic
# algorithms; the right panel shows how far the per-step loss curves drift apart.

# %% tags=["hide-input"]
rec = show("loss_equivalence")
display(Markdown(rec["implication"]))

# %% [markdown]
# ## 7. Normal lymphocytes from another laboratory
#
# `pbc-lymphocytes` holds 1,214 images of normal lymphocytes from the Hospital Clinic of Barcelona
# (CellaVision DM96). Every one of them should be called Benign by a model that learned what a benign
# lymphocyte looks like. The four CNNs of section 2 (each given the PBC images altered as its training
# images were) and the colour-histogram classifier of section 1 (trained on the same training part)
# predict every image; the interval is Wilson's.

# %% tags=["hide-input"]
rec = show("external_pbc")

# %% [markdown]
# ## Summary
#
# One line per audit, from its record.

# %% tags=["hide-input"]
import pandas as pd

from leukcore.runs.records import provenance_label

summary = pd.DataFrame([{"audit": a, "finding": r["headline"], "status": r["status"],
                         "profile · dataset": provenance_label(r), "wall time (s)": r.get("wall_time_s")}
                        for a, r in records.items()])
display(HTML(R.df_to_html(summary, "records-table", escape=True)))
