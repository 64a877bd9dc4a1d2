"""The ``cnn`` route: a network trained end to end, tested on the fold's test part; fold 0's final
weights are kept beside the record (for Grad-CAM) when the network is small enough."""
from __future__ import annotations

from .registry import FoldInputs, FoldOutput, Route, register_route
from .training import MAX_SAVED_PARAMS, fit_on, n_params, new_model


@register_route
class CNNRoute(Route):
    name = "cnn"
    explained = True

    def fit_fold(self, exp, inputs: FoldInputs) -> FoldOutput:
        model, lines = new_model(exp.model, inputs.n_classes, inputs.settings, **inputs.settings["model_kw"])
        res = fit_on(model, inputs, test=True)
        if inputs.weights_path is not None and sum(p.numel() for p in model.parameters()) <= MAX_SAVED_PARAMS:
            from ...engine import save_atomic

            save_atomic({k: v.detach().cpu() for k, v in model.state_dict().items()}, inputs.weights_path)
        return FoldOutput(res.test_prob, res.history, n_params(model), lines)
