"""The ``features`` route (LoGMH's machine-learning models): a backbone's features, a classifier on
top. Without ImageNet weights the backbone is first trained on the training part: random-weight
features would be meaningless."""
from __future__ import annotations

from .registry import FoldInputs, FoldOutput, Route, register_route
from .training import classify_features, fit_on, new_model


@register_route
class FeaturesRoute(Route):
    name = "features"

    def network(self, exp) -> str | None:
        return exp.backbone

    def classifier(self, exp) -> str | None:
        return exp.classifier

    def fit_fold(self, exp, inputs: FoldInputs) -> FoldOutput:
        backbone, lines = new_model(exp.backbone, inputs.n_classes, inputs.settings)
        if any("from scratch" in d for d in lines):
            fit_on(backbone, inputs)
            lines = lines + [f"{exp.backbone} feature extractor trained on the training split (no ImageNet weights)"]
        return FoldOutput(classify_features(exp.classifier, backbone, inputs), [], None, lines)
