"""The ``fusion`` route (XIncept): the fusion network trained end to end, then a boosted-tree
classifier (XGBoost unless the protocol names another) on its fused features."""
from __future__ import annotations

from .registry import FoldInputs, FoldOutput, Route, register_route
from .training import classify_features, fit_on, n_params, new_model


@register_route
class FusionRoute(Route):
    name = "fusion"

    def classifier(self, exp) -> str | None:
        return exp.classifier or "xgboost"

    def fit_fold(self, exp, inputs: FoldInputs) -> FoldOutput:
        model, lines = new_model(exp.model, inputs.n_classes, inputs.settings)
        res = fit_on(model, inputs)
        return FoldOutput(classify_features(self.classifier(exp), model, inputs), res.history, n_params(model), lines)
