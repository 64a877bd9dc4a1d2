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
# # DSCNet in Keras on the Taleqani images (Vijayalakshmi & Deepa)
#
# ## What we found

# %% tags=["remove-input"]
# What we found: prose from book/findings/dscnet_vijayalakshmi.md.j2, its numbers filled from the records (leukcore.book.findings)
from leukcore.book.findings import show

show("dscnet_vijayalakshmi")

# %% [markdown]
# ## The evidence
#
# This notebook reruns the paper `dscnet_vijayalakshmi` with `leukcore` at the chosen profile and puts every
# number the paper claims beside the number we measured. Rerun it with
# `leukcore reproduce --paper dscnet_vijayalakshmi --profile cpu` or with papermill
# (`papermill notebooks/dscnet_vijayalakshmi.ipynb out.ipynb -p profile cpu`).

# %% [markdown]
# ```{include} ../_generated/rerun_dscnet_vijayalakshmi.md
# ```

# %% tags=["parameters", "hide-cell"]
profile = "smoke"  # smoke | cpu | paper
data_root = None  # folder holding the datasets (None: LEUKCORE_DATA, ./data, ../shared/data)
device = "auto"  # auto | cpu | cuda
seed = 0
seeds = None  # e.g. [0, 1, 2]: train and record every experiment once per seed (None: `seed` alone)
output_dir = None  # results folder (None: the project's results/)
force = False  # retrain even when a complete record with the same key exists
train_missing = True  # False: render existing records only; experiments without one show as "not run"

# %% tags=["hide-input"]
# %matplotlib inline
import matplotlib.pyplot as plt
from IPython.display import HTML, Markdown, display

from leukcore.runs import experiments as X
from leukcore.book import pages as R

paper = "dscnet_vijayalakshmi"
R.notebook_setup()
display(Markdown(R.paper_intro(paper)))

# %% [markdown]
# ## Protocol and our deviations
#
# From the paper's protocol file (`leukcore/protocols/dscnet_vijayalakshmi.yaml`); nothing here is typed in.

# %% tags=["hide-input"]
display(HTML(R.df_to_html(R.protocol_table(paper), "protocol-table", escape=True)))
display(HTML(R.df_to_html(R.deviations_table(paper), "deviations-table", escape=True)))

# %% [markdown]
# ## Data

# %% tags=["remove-input"]
datasets = R.experiment_datasets(paper, profile, data_root=data_root, seed=seed)
for data in datasets:
    display(Markdown(R.data_banner(data, profile)))

# %% tags=["nbval-check-output", "hide-input"]
# NBVAL_CHECK_OUTPUT
for data in datasets:
    print(R.data_summary_text(data))

# %% tags=["hide-input"]
for data in datasets:
    fig = R.example_images(data.table, n_per_class=4)
    plt.show()

# %% [markdown]
# ## Experiments
#
# Every experiment of the paper's claims tables, at this profile. A complete record with the
# same key (paper, experiment, profile, data fingerprint, seed, settings) is reused, not rerun.

# %% tags=["hide-input"]
records = X.run_paper(paper, profile, data_root=data_root, device=device, seed=seed, seeds=seeds,
                      results_dir=output_dir, force=force, progress=False,
                      train_missing=train_missing)
# the evidence is the profile "What we found" cites (the best recorded one); lower profiles are folded at the end
evidence, reduced, evidence_profile = R.evidence_split(paper, records)
display(Markdown(R.evidence_note(evidence_profile, profile, reduced)))
display(HTML(R.df_to_html(R.records_table(evidence), "records-table", escape=True)))

# %% [markdown]
# ## Figures
#
# Learning curves (loss on the left axis, accuracy on the right), confusion matrices (rows: the
# true class, with counts and row percentages) and ROC curves whose areas are the AUCs of the
# tables (two classes: the positive class' curve; more: the macro mean of the one-vs-rest
# curves, as the legend says). A run whose predictions collapse to one class did not train: its
# panel says so, and it is left out of the reliability diagrams, Grad-CAM and the gallery below.

# %% tags=["hide-input"]
from leukcore.book import figures as F

fig = F.plot_learning_curves(evidence)
plt.show()

# %% tags=["hide-input"]
fig = F.plot_confusion_matrices(evidence)
plt.show()

# %% tags=["hide-input"]
fig = F.plot_roc(evidence)
plt.show()

# %% [markdown]
# ### Calibration
#
# Reliability diagrams of the runs that trained: the accuracy of the test images in each
# confidence bin against the confidence the model gave them, and the expected calibration error
# (ECE; 0 for a model whose confidence is its accuracy).

# %% tags=["hide-input"]
fig = F.plot_reliability(evidence)
plt.show()

# %% [markdown]
# ### Where the model looks (Grad-CAM)
#
# Grad-CAM maps of a run that trained, on test images, with the true and the predicted class
# above each (red: an error). Trained weights are not committed: where they are absent, the page
# shows the image rendered on the machine that held them (`leukcore figures gradcam`).

# %% tags=["hide-input"]
fig = F.show_grad_cam(F.gradcam_record(evidence), data_root=data_root)
plt.show()

# %% [markdown]
# ### Misclassified cells
#
# The test images the most accurate run that trained got wrong with the most confidence, with
# their true and predicted classes.

# %% tags=["hide-input"]
fig = F.plot_misclassified(F.best_trained_record(evidence), data_root=data_root)
plt.show()

# %% [markdown]
# ## Claimed vs measured
#
# Every claim of this paper in the ledger (`leukcore/ledger/dscnet_vijayalakshmi.yaml`), beside our
# real-data measurement for its experiment (from `results/`), with the verdict rule of the
# methods page: firm verdicts first. The forest plot shows the same numbers; the table sorts,
# searches and filters in the page. Runs on synthetic data never count.

# %% tags=["hide-input"]
from leukcore.book import tables as T

fig = F.plot_forest(F.claims_frame(paper), title="claimed (diamond) and measured 95 % interval per claim")
plt.show()
display(HTML(T.claims_html(paper)))

# %% [markdown]
# ## What the paper's own numbers say
#
# The consistency audit of this paper's claims (`leukcore.evaluation.consistency`).

# %% tags=["hide-input"]
display(HTML(R.audit_html(paper)))

# %% [markdown]
# ## Runs at reduced profiles
#
# The runs of this paper at profiles below the one the evidence above comes from (fewer epochs,
# images or folds, smaller inputs). They test the pipeline; a collapse here is a fact about that
# run, never a verdict on the paper.

# %% tags=["hide-output"]
if reduced:
    display(HTML(R.df_to_html(R.records_table(reduced), "records-table", escape=True)))
    fig = F.plot_learning_curves(reduced)
    plt.show()
    fig = F.plot_confusion_matrices(reduced)
    plt.show()
else:
    print("No run at a lower profile.")
