"""RetinaNet's published backbone (ResNet-50 + FPN P3-P7) as a classifier."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..builder import build
from ..registry import INTERPRETATION, ModelSpec, WeightSource, register_model


class RetinaNetClassifier(nn.Module):
    """RetinaNet's published backbone as a classifier (our interpretation for LoGMH).

    Lin et al. 2017: ResNet-50 + FPN, pyramid levels P3-P7 of 256 channels, P6 a 3x3
    stride-2 conv on C5 and P7 a 3x3 stride-2 conv on ReLU(P6) (torchvision's
    ``BackboneWithFPN`` with ``LastLevelP6P7(2048, 256)``). The detection sub-nets (class
    and box heads over anchors) are replaced by a classification head: each level
    global-average-pooled, concatenated (5 x 256 = 1280), one linear layer. Plain
    BatchNorm (not the detector's frozen BN) so the body can be fine-tuned; ImageNet
    weights load into ``backbone.body`` (the FPN starts random, as in the paper).
    """

    def __init__(self, num_classes: int = 2):
        super().__init__()
        import torchvision
        from torchvision.models.detection.backbone_utils import BackboneWithFPN
        from torchvision.ops.feature_pyramid_network import LastLevelP6P7

        resnet = torchvision.models.resnet50(weights=None)
        self.backbone = BackboneWithFPN(
            resnet,
            return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
            in_channels_list=[512, 1024, 2048],
            out_channels=256,
            extra_blocks=LastLevelP6P7(2048, 256),
        )
        self.num_features = 5 * 256
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """P3-P7 average-pooled and concatenated: ``(N, 1280)``."""
        feats = self.backbone(x)
        return torch.cat([torch.flatten(F.adaptive_avg_pool2d(f, 1), 1) for f in feats.values()], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        return self.fc(self.forward_features(x))


RETINANET_SPEC = ModelSpec(
    name="retinanet_cls",
    papers={"logmh_haque2024": 227},
    paper_input_size=227,
    default_num_classes=2,
    norm="imagenet",
    small_input_size=64,
    head=("fc",),
    sources=(WeightSource("backbone.body", "torchvision", "ResNet50_Weights.IMAGENET1K_V1", ("resnet50",), ("fc",)),),
    paper_pretrained=True,
    description="RetinaNet's ResNet-50 + FPN (P3-P7) backbone, pooled levels + linear head",
    deviations=(
        INTERPRETATION + "RetinaNet (a detector) as a classifier: its published ResNet-50 + FPN P3-P7 backbone, each level "
             "average-pooled, concatenated (1280), one linear layer; anchor sub-nets dropped",
        INTERPRETATION + "ImageNet weights for the ResNet-50 body only (FPN random, as RetinaNet's own initialisation); "
             "plain BatchNorm; 227x227 as LoGMH",
    ),
)


@register_model(RETINANET_SPEC)
def retinanet_cls(num_classes: int = 2, pretrained: bool | str = False, weights=None) -> nn.Module:
    """RetinaNet backbone classifier; see :class:`RetinaNetClassifier`."""
    return build(RETINANET_SPEC, lambda: RetinaNetClassifier(num_classes), num_classes, pretrained, weights)
