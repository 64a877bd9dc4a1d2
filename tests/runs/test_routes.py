"""leukcore.runs.routes: the route registry, what each route says about its experiments, and a new
route added as one class."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from leukcore.runs import experiments, protocols
from leukcore.runs.records import read_predictions
from leukcore.runs.routes import ROUTES, FoldOutput, Route, get_route, list_routes, register_route


def test_every_experiment_names_a_registered_route():
    assert list_routes() == ["aggregate", "cnn", "features", "fusion"]
    used = {e.route for p in protocols.list_papers() for e in protocols.list_experiments(p)}
    assert used == set(list_routes())  # every route serves some paper, and no paper names another
    with pytest.raises(ValueError, match="valid: aggregate, cnn, features, fusion"):
        get_route("yolo")
    assert get_route(None) is ROUTES["cnn"]  # a protocol entry without a route


def test_what_each_route_says_about_its_experiment():
    feat = protocols.get_experiment("logmh_haque2024", "multiclass-rf")
    assert get_route(feat.route).network(feat) == "alexnet" and get_route(feat.route).classifier(feat) == "rf"
    fusion = protocols.get_experiment("xincept_khan2024", "xincept-xgboost")
    assert get_route(fusion.route).network(fusion) == "xincept" and get_route(fusion.route).classifier(fusion) == "xgboost"
    cnn = protocols.get_experiment("dscnet_vijayalakshmi", "vgg16")
    assert get_route(cnn.route).explained and get_route(cnn.route).classifier(cnn) is None
    agg = protocols.get_experiment("alnet_jawahar2022", "alnet-cv")
    route = get_route(agg.route)
    assert not route.trains and route.parts(agg) == ["alnet-fold0", "alnet-fold1", "alnet-fold2"]
    assert [r for r in list_routes() if not get_route(r).trains] == ["aggregate"]
    with pytest.raises(ValueError, match="taken"):
        register_route(type("Again", (Route,), {"name": "cnn"}))


def test_a_new_route_is_one_class(tmp_path):
    """A route that predicts the training part's class frequencies for every test image, registered
    in three lines, runs through the study's machinery: its record, its seed set once per fold."""
    seeds = []

    class Prior(Route):
        name = "test-prior"

        def fit_fold(self, exp, inputs):
            import torch

            seeds.append((inputs.seed, torch.initial_seed()))
            freq = np.bincount(inputs.y[inputs.train], minlength=inputs.n_classes) / len(inputs.train)
            return FoldOutput(np.tile(freq, (len(inputs.test), 1)), [], None, [])

    register_route(Prior)
    try:
        (tmp_path / "nodata").mkdir()
        run = experiments.resolve_run("dscnet_vijayalakshmi", "dscnet", "smoke", seed=3, device="cpu",
                                      data_root=str(tmp_path / "nodata"), results_dir=tmp_path / "res")
        rec = experiments.execute(dataclasses.replace(run, route=get_route("test-prior")))
    finally:
        ROUTES.pop("test-prior")
    # synthetic Taleqani at the smoke profile: 10 images per class, a stratified split, so the
    # training part holds the four classes equally and every probability is 1/4; the argmax of a tie
    # is class 0, right for the test part's quarter of class-0 images
    probs = read_predictions(rec).filter(like="p_").to_numpy()
    assert np.allclose(probs, 0.25) and rec["metrics"]["accuracy"] == pytest.approx(0.25)
    assert seeds == [(3, 3)]  # fold 0 seeded seed + 0, once, before the route ran
