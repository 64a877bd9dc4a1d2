"""The feature route: frozen-backbone features -> classical classifiers.

:func:`extract_features` runs a frozen backbone's ``forward_features`` (AlexNet up to pool5 for
LoGMH, XIncept's fused features) on uint8 images, in eval mode without gradients, and returns
an ``(N, D)`` float32 array. :func:`make_classifier` builds the scikit-learn (or XGBoost /
LightGBM scikit-learn API) estimator of a name with the paper's stated hyper-parameters.

Hyper-parameters live once, in :data:`CLASSIFIER_PARAMS` (``stated`` lists the ones a paper
gives; the rest are the library's defaults written out so that records show them; the comments
there say why where a choice was ours).

"scaled": the estimator is wrapped as ``Pipeline([("scale", StandardScaler()), ("clf",
est)])`` because it is distance-, margin- or gradient-based and feature scale changes its
result (``z = (x - mean_train) / std_train`` per feature); tree ensembles are scale-invariant
and get the raw features. ``random_state = seed`` is set on every estimator that has one.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

__all__ = ["CLASSIFIER_PARAMS", "extract_features", "make_classifier", "list_classifiers"]

CLASSIFIER_PARAMS: Dict[str, Dict[str, Any]] = {
    "mlp": {
        "source": "logmh_haque2024",
        # LoGMH: "Adam, lr 0.001, 50 epochs"; one hidden layer of 100 (sklearn's default: the paper gives no
        # architecture); sklearn may stop before 50 epochs when the training loss stalls (its ``tol`` rule)
        "params": {"solver": "adam", "learning_rate_init": 0.001, "max_iter": 50, "hidden_layer_sizes": (100,)},
        "stated": ["solver", "learning_rate_init", "max_iter"],
        "scaled": True,
    },
    "rf": {
        "source": "logmh_haque2024",
        "params": {"n_estimators": 100, "max_depth": None, "criterion": "gini"},
        "stated": ["n_estimators", "max_depth", "criterion"],
        "scaled": False,
    },
    "svm": {
        "source": "logmh_haque2024",
        # probability=True is ours, for ROC / probabilities (Platt scaling with internal 5-fold CV)
        "params": {"kernel": "rbf", "C": 1.0, "gamma": "scale", "probability": True},
        "stated": ["kernel", "C", "gamma"],
        "scaled": True,
    },
    "knn": {
        "source": "logmh_haque2024",
        "params": {"n_neighbors": 5, "metric": "euclidean"},
        "stated": ["n_neighbors", "metric"],
        "scaled": True,
    },
    "sgd": {
        "source": "logmh_haque2024",
        "params": {
            "loss": "log_loss",
            "learning_rate": "constant",
            "eta0": 0.01,
            "max_iter": 100,
            "penalty": "l2",
            "tol": None,  # so that exactly 100 epochs run (LoGMH: "log loss, lr 0.01, 100 epochs, L2")
        },
        "stated": ["loss", "eta0", "max_iter", "penalty"],
        "scaled": True,
    },
    "adaboost": {
        "source": "xincept_khan2024",
        "params": {"n_estimators": 50, "learning_rate": 1.0},
        "stated": [],
        "scaled": False,
    },
    "logreg": {
        "source": "xincept_khan2024",
        "params": {"C": 1.0, "solver": "lbfgs", "max_iter": 1000},  # max_iter raised so that it converges
        "stated": [],
        "scaled": True,
    },
    "xgboost": {
        "source": "xincept_khan2024",
        # XIncept's main classifier; no numbers given: XGBoost's defaults
        "params": {"n_estimators": 100, "max_depth": 6, "learning_rate": 0.3, "tree_method": "hist"},
        "stated": [],
        "scaled": False,
    },
    "lightgbm": {
        "source": "xincept_khan2024",
        "params": {"n_estimators": 100, "learning_rate": 0.1, "num_leaves": 31, "verbose": -1},
        "stated": [],
        "scaled": False,
    },
}
"""Per classifier: ``source`` paper id, ``params`` passed to the estimator, ``stated`` (the
parameter names the paper gives), ``scaled`` (wrapped in a ``StandardScaler`` pipeline)."""


def list_classifiers() -> list:
    """Names accepted by :func:`make_classifier`, sorted."""
    return sorted(CLASSIFIER_PARAMS)


def _estimator_class(name: str):
    if name == "mlp":
        from sklearn.neural_network import MLPClassifier as cls
    elif name == "rf":
        from sklearn.ensemble import RandomForestClassifier as cls
    elif name == "svm":
        from sklearn.svm import SVC as cls
    elif name == "knn":
        from sklearn.neighbors import KNeighborsClassifier as cls
    elif name == "sgd":
        from sklearn.linear_model import SGDClassifier as cls
    elif name == "adaboost":
        from sklearn.ensemble import AdaBoostClassifier as cls
    elif name == "logreg":
        from sklearn.linear_model import LogisticRegression as cls
    elif name == "xgboost":
        from xgboost import XGBClassifier as cls
    elif name == "lightgbm":
        from lightgbm import LGBMClassifier as cls
    else:  # pragma: no cover - guarded by make_classifier
        raise ValueError(name)
    return cls


def make_classifier(name: str, seed: int = 0, **overrides):
    """A scikit-learn-compatible estimator ``name`` with the paper's hyper-parameters.

    ``name`` in :func:`list_classifiers`; ``overrides`` replace entries of
    ``CLASSIFIER_PARAMS[name]["params"]``; ``seed`` becomes ``random_state`` where the
    estimator has one. Scale-sensitive estimators (``mlp``, ``svm``, ``knn``, ``sgd``,
    ``logreg``) come as ``Pipeline([("scale", StandardScaler()), ("clf", est)])``; reach the
    estimator with ``clf[-1]``. Unknown names raise ``ValueError`` listing the valid ones.
    """
    if name not in CLASSIFIER_PARAMS:
        raise ValueError(f"unknown classifier {name!r}; valid: {list_classifiers()}")
    spec = CLASSIFIER_PARAMS[name]
    cls = _estimator_class(name)
    params = {**spec["params"], **overrides}
    valid = set(cls().get_params()) if name not in ("xgboost", "lightgbm") else None
    if "random_state" in (valid if valid is not None else {"random_state"}):
        params.setdefault("random_state", seed)
    if valid is not None:
        bad = sorted(set(params) - valid)
        if bad:
            raise ValueError(f"unknown parameter(s) {bad} for {name} ({cls.__name__})")
    est = cls(**params)
    if spec["scaled"]:
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        return Pipeline([("scale", StandardScaler()), ("clf", est)])
    return est


def extract_features(model, x_uint8, *, batch_size: int = 64, device: str = "auto", amp: bool = False) -> np.ndarray:
    """Features ``(N, D)`` float32 of ``model.forward_features`` on uint8 images.

    ``x_uint8``: numpy NHWC ``(N, H, W, 3)`` or torch NCHW uint8. Each batch is normalised with
    the model's mean / std (``(x / 255 - mean) / std``, :func:`leukcore.engine.model_norm_stats`),
    passed through ``forward_features`` by :func:`~leukcore.engine.evaluation.evaluate` (eval mode, ``torch.no_grad``) (the backbone is
    frozen: no gradient, no BatchNorm statistics update) and flattened per image. ``amp=True``
    uses bf16 autocast on CUDA; the default is fp32 so that features do not depend on the
    device's precision. The model's training mode is restored afterwards.
    """
    from ..transforms.normalize import Normalizer
    from .batching import as_nhwc_uint8
    from .evaluation import evaluate
    from .setup import model_norm_stats, resolve_device

    if not hasattr(model, "forward_features"):
        raise ValueError(f"{type(model).__name__} has no forward_features(); use a backbone model (e.g. alexnet)")
    dev = resolve_device(device)
    x = as_nhwc_uint8(x_uint8, "x")
    was_training = model.training
    model.to(dev)
    model.eval()
    try:
        ev = evaluate(model.forward_features, x, normalizer=Normalizer(*model_norm_stats(model)), device=dev,
                      batch_size=batch_size, amp=amp and dev.type == "cuda", channels_last=False,
                      head=lambda f: f.reshape(f.shape[0], -1))
    finally:
        model.train(was_training)
    if ev.outputs is None:
        return np.zeros((0, 0), dtype=np.float32)
    return ev.outputs
