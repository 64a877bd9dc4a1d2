"""How an experiment runs: the route registry (:mod:`.registry`) and one module per route.

- :mod:`.cnn`        a network trained end to end (its fold-0 weights kept for Grad-CAM)
- :mod:`.features`   a backbone's features and a classifier on top (LoGMH's machine-learning models)
- :mod:`.fusion`     a fusion network, then a boosted-tree classifier on its features (XIncept)
- :mod:`.aggregate`  trains nothing: pools other experiments' predictions (ALNet's three folds)
- :mod:`.training`   what the training routes share (the model a run builds, its training configuration)
"""
from __future__ import annotations

from . import aggregate, cnn, features, fusion  # noqa: F401 - each registers its route
from .registry import DEFAULT_ROUTE, ROUTES, FoldInputs, FoldOutput, Route, get_route, list_routes, register_route
from .training import FINAL_WEIGHTS, final_weights_path, new_model

__all__ = ["DEFAULT_ROUTE", "ROUTES", "FoldInputs", "FoldOutput", "Route", "get_route", "list_routes",
           "register_route", "FINAL_WEIGHTS", "final_weights_path", "new_model"]
