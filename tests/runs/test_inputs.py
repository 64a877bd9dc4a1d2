"""leukcore.runs.inputs: an experiment's data (or its stand-in), its split and images."""
from __future__ import annotations

import pandas as pd
import pytest

from leukcore.runs import inputs, profiles
from leukcore.runs.protocols import get_experiment


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LEUKCORE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))

def test_absent_dataset_falls_back_to_synthetic_and_says_so(tmp_path):
    exp = get_experiment("alnet_jawahar2022", "alnet-fold1")
    d = inputs.experiment_data("alnet_jawahar2022", exp, profiles.get_profile("smoke"), str(tmp_path))
    assert d.dataset_id == "synthetic" and not d.is_papers and d.stands_in_for == "cnmc-2019"
    assert "SYNTHETIC" in d.note
    folds = inputs.experiment_split("alnet_jawahar2022", exp, d.table, profiles.get_profile("smoke"))
    ids1 = set(folds[0]["train"]) | set(folds[0]["test"])
    assert ids1 <= set(d.table.loc[d.table["fold"] == 1, "id"])  # published fold 1 only

def test_substitute_dataset(shared_data):
    exp = get_experiment("dscnet_kaur2023", "dscnet-kl-aug")
    d = inputs.experiment_data("dscnet_kaur2023", exp, profiles.get_profile("smoke"), str(shared_data))
    assert d.dataset_id == "taleqani-all" and not d.is_papers and d.stands_in_for == "multicancer-all"
    assert d.table["class_name"].value_counts().to_dict() == {c: 10 for c in ("Benign", "Early", "Pre", "Pro")}

def test_kfold_capped_by_profile(shared_data):
    exp = get_experiment("xincept_khan2024", "vgg16")
    d = inputs.experiment_data("xincept_khan2024", exp, profiles.get_profile("paper"), str(shared_data))
    assert len(d.table) == 3256
    assert len(inputs.experiment_split("xincept_khan2024", exp, d.table, profiles.get_profile("paper"))) == 10
    c = inputs.experiment_data("xincept_khan2024", exp, profiles.get_profile("cpu"), str(shared_data))
    assert c.table["class_name"].value_counts().to_dict() == {k: 200 for k in ("Benign", "Early", "Pre", "Pro")}
    folds = inputs.experiment_split("xincept_khan2024", exp, c.table, profiles.get_profile("cpu"))
    assert len(folds) == 1 and len(folds[0]["test"]) == 80

def test_haque_cross_validates_the_transfer_learning_models(tmp_path):
    paper = "logmh_haque2024"
    cnn, feat = get_experiment(paper, "binary-xception"), get_experiment(paper, "binary-rf")
    prof = profiles.get_profile("paper")
    table = inputs.experiment_data(paper, cnn, profiles.get_profile("smoke"), str(tmp_path)).table  # synthetic, 20 images
    from leukcore import data as D

    base = D.split_fractions(table, {"train": 0.75, "val": 0.05, "test": 0.20}, seed=0)
    folds = inputs.experiment_split(paper, cnn, table, prof)
    assert len(folds) == 5
    dev = set(base["train"]) | set(base["val"])
    for f in folds:
        assert sorted(f["test"]) == sorted(base["test"])  # the 20 % held out, the same for every fold
        assert set(f["train"]) | set(f["val"]) == dev and not set(f["train"]) & set(f["val"])
    vals = [set(f["val"]) for f in folds]
    assert set().union(*vals) == dev and sum(map(len, vals)) == len(dev)  # each image validates once
    lab = dict(zip(table["id"], table["label"]))
    for v in vals:  # stratified: 16 development images, 8 per class -> each fold holds 1 or 2 of each
        counts = pd.Series([lab[i] for i in v]).value_counts()
        assert set(counts.index) == {0, 1} and counts.max() - counts.min() <= 1
    assert len(inputs.experiment_split(paper, cnn, table, profiles.get_profile("smoke"))) == 2  # max_folds
    assert len(inputs.experiment_split(paper, cnn, table, profiles.get_profile("cpu"))) == 1
    assert inputs.experiment_split(paper, feat, table, prof) == [base]  # the ML models: one split
