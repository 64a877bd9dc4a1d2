"""Tests of leukcore.engine.features: feature extraction and the papers' classical classifiers."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from leukcore.engine import CLASSIFIER_PARAMS, extract_features, list_classifiers, make_classifier

ALL = ["adaboost", "knn", "lightgbm", "logreg", "mlp", "rf", "sgd", "svm", "xgboost"]
SCALED = {"mlp", "svm", "knn", "sgd", "logreg"}

# The papers' stated values, typed in from STUDY.md (independent of CLASSIFIER_PARAMS).
STATED = {
    "mlp": {"solver": "adam", "learning_rate_init": 0.001, "max_iter": 50},
    "rf": {"n_estimators": 100, "max_depth": None, "criterion": "gini"},
    "svm": {"kernel": "rbf", "C": 1.0, "gamma": "scale", "probability": True},
    "knn": {"n_neighbors": 5, "metric": "euclidean"},
    "sgd": {"loss": "log_loss", "learning_rate": "constant", "eta0": 0.01, "max_iter": 100, "penalty": "l2"},
}


def _final(est):
    return est[-1] if hasattr(est, "steps") else est


@pytest.fixture(scope="module")
def separable():
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    x, y = make_classification(
        n_samples=300, n_features=12, n_informative=6, n_redundant=2, n_classes=3,
        n_clusters_per_class=1, class_sep=2.0, random_state=0,
    )
    x[:, :3] *= 100.0  # features on different scales, as CNN features are
    return train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)


def test_list_and_unknown_name():
    assert list_classifiers() == ALL
    with pytest.raises(ValueError) as e:
        make_classifier("catboost")
    for name in ALL:
        assert name in str(e.value)
    with pytest.raises(ValueError, match="n_trees"):
        make_classifier("rf", n_trees=5)


@pytest.mark.parametrize("name", ALL)
def test_classifier_beats_chance(name, separable):
    xtr, xte, ytr, yte = separable
    # one thread for the boosted trees: OpenMP spinning on a shared 2-core machine is slow
    est = make_classifier(name, seed=0, **({"n_jobs": 1} if name in ("xgboost", "lightgbm") else {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLP / SGD convergence notes at the papers' epoch counts
        est.fit(xtr, ytr)
        acc = float((est.predict(xte) == yte).mean())
        proba = est.predict_proba(xte)
    assert acc > 0.8, f"{name}: accuracy {acc:.3f} (chance 0.33)"
    assert proba.shape == (len(yte), 3)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_exposes_paper_hyper_parameters(name):
    est = make_classifier(name, seed=7)
    assert hasattr(est, "steps") == (name in SCALED)
    if name in SCALED:
        assert type(est[0]).__name__ == "StandardScaler"
    params = _final(est).get_params()
    for k, v in {**CLASSIFIER_PARAMS[name]["params"], **STATED.get(name, {})}.items():
        assert params[k] == v, (name, k, params[k], v)
    assert set(CLASSIFIER_PARAMS[name]["stated"]) <= set(CLASSIFIER_PARAMS[name]["params"])
    if "random_state" in params:
        assert params["random_state"] == 7


def test_stated_sources():
    for name in STATED:
        assert CLASSIFIER_PARAMS[name]["source"] == "logmh_haque2024"
        assert set(CLASSIFIER_PARAMS[name]["stated"]) <= set(STATED[name])
    for name in ("xgboost", "lightgbm", "adaboost", "logreg"):
        assert CLASSIFIER_PARAMS[name]["source"] == "xincept_khan2024"
    assert make_classifier("sgd")[-1].get_params()["tol"] is None  # exactly 100 epochs
    assert _final(make_classifier("lightgbm")).get_params()["verbose"] == -1


def test_overrides_and_seed_reproducibility(separable):
    xtr, xte, ytr, _ = separable
    est = make_classifier("rf", seed=3, n_estimators=10)
    assert est.get_params()["n_estimators"] == 10
    a = make_classifier("rf", seed=3, n_estimators=10).fit(xtr, ytr).predict_proba(xte)
    b = make_classifier("rf", seed=3, n_estimators=10).fit(xtr, ytr).predict_proba(xte)
    np.testing.assert_array_equal(a, b)


def test_scaler_pipeline_standardises_with_training_statistics(separable):
    xtr, _, ytr, _ = separable
    est = make_classifier("knn").fit(xtr, ytr)
    z = est[0].transform(xtr)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-9)
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-9)


# ------------------------------------------------------------------ extract_features
class _Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.head = nn.Linear(2 * 6 * 6, 2)
        self.default_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.2, 0.2, 0.2)}

    def forward_features(self, x):
        return torch.flatten(self.bn(self.conv(x)), 1)

    def forward(self, x):
        return self.head(self.forward_features(x))


def test_extract_features_normalises_and_is_frozen():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 8, 8, 3)).astype(np.uint8)
    m = _Backbone()
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    f = extract_features(m, x, batch_size=2, device="cpu")
    assert f.shape == (5, 72) and f.dtype == np.float32
    assert m.training  # mode restored
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # BN stats untouched
    xt = (torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.2
    m.eval()
    with torch.no_grad():
        ref = m.forward_features(xt).numpy()
    np.testing.assert_allclose(f, ref, atol=1e-5)


def test_extract_features_needs_forward_features():
    with pytest.raises(ValueError, match="forward_features"):
        extract_features(nn.Linear(2, 2), np.zeros((1, 4, 4, 3), np.uint8))


def test_extract_features_alexnet_pool5_shape():
    models = pytest.importorskip("leukcore.models")
    torch.manual_seed(0)
    m = models.create_model("alexnet", num_classes=2)
    x = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3)).astype(np.uint8)
    f = extract_features(m, x, batch_size=2, device="cpu")
    # torchvision AlexNet conv1..pool5 at 64 px: 256 maps of 1x1 (9216 = 256x6x6 at 224)
    assert f.shape == (3, 256)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    from leukcore.transforms import uint8_to_normalized
    from leukcore.engine import model_norm_stats

    with torch.no_grad():
        ref = torch.flatten(m.features(uint8_to_normalized(xt, *model_norm_stats(m))), 1).numpy()
    np.testing.assert_allclose(f, ref, atol=1e-5)


def test_features_to_classifier_route():
    """Features of a frozen random backbone separate bright from dark images for every classifier."""
    rng = np.random.default_rng(1)
    y = np.arange(60) % 2
    x = rng.integers(0, 80, (60, 8, 8, 3)).astype(np.uint8)
    x[y == 1] += 150
    f = extract_features(_Backbone(), x, device="cpu")
    est = make_classifier("logreg").fit(f[:40], y[:40])
    assert (est.predict(f[40:]) == y[40:]).mean() > 0.9
