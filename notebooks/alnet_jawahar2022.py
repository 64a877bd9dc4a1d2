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
# # ALNet on the C-NMC 2019 folds (Jawahar et al. 2022)
#
# ## What we found

# %% tags=["remove-input"]
# What we found: prose from book/findings/alnet_jawahar2022.md.j2, its numbers filled from the records (leukcore.book.findings)
from leukcore.book.findings import show

show("alnet_jawahar2022")

# %% tags=["parameters", "hide-cell"]
# papermill's parameters (what each means: leukcore.book.evidence.PARAMETERS), then this paper's own knobs
profile = "smoke"  # smoke | cpu | audit | paper
data_root = None  # folder holding the datasets (None: LEUKCORE_DATA, ./data, ../shared/data)
device = "auto"  # auto | cpu | cuda
seed = 0
seeds = None  # e.g. [0, 1, 2]: one record per seed
output_dir = None  # results folder (None: results/)
force = False  # retrain even where a record with the same key exists
train_missing = True  # False: render existing records only
alnet_dropout = 0.2  # Table 2 dropout (the text also says 30 %)

# %% [markdown]
# ## ALNet's layer table
#
# Table 2 of the paper gives every layer; at 224x224 input our model must have exactly the
# paper's 535,010 trainable parameters.

# %% tags=["nbval-check-output", "hide-input"]
# NBVAL_CHECK_OUTPUT
from leukcore.book import pages

print(pages.model_param_line("alnet", num_classes=2, input_size=224))

# %% tags=["hide-input"]
# %matplotlib inline
# The evidence every paper page shows, in one call: protocol, data, runs, figures, claims, consistency
from leukcore.book.evidence import show_evidence

records = show_evidence("alnet_jawahar2022", profile, data_root=data_root, device=device, seed=seed, seeds=seeds,
                        output_dir=output_dir, force=force, train_missing=train_missing,
                        overrides={"models": {"alnet": {"dropout": alnet_dropout}}})
