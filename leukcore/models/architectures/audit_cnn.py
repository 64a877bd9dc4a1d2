"""The audits' CNN: a small VGG-style network, ours, fast enough on a CPU for every arm and seed of
the audits (``leukcore.audits``); no paper uses it."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..builder import build
from ..registry import INTERPRETATION, ModelSpec, register_model


class AuditCNN(nn.Module):
    """Four conv blocks (3x3 'same' conv -> BN -> ReLU, each but the last followed by a 2x2
    max-pool; widths 16, 32, 64, 128 by default), global average pool, dropout, linear logits.

    At 64 px the last block sees an 8x8 map: enough depth to read the texture of a cell at that
    size, cheap enough to train many times on two CPU cores. Works for any side >= 16.
    """

    def __init__(self, num_classes: int = 4, widths: Sequence[int] = (16, 32, 64, 128), dropout: float = 0.2,
                 in_chans: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = c
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features, ``(N, widths[-1])``."""
        return torch.flatten(self.pool(self.features(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        return self.classifier(self.dropout(self.forward_features(x)))


AUDIT_CNN_SPEC = ModelSpec(
    name="audit_cnn",
    papers={},
    paper_input_size=64,
    default_num_classes=4,
    norm="imagenet",
    small_input_size=32,
    head=("classifier",),
    description="The audits' CNN (ours): 4 conv blocks 16-32-64-128 with BN, global average pool, linear",
    deviations=(
        INTERPRETATION + "not a paper's model: the audits' own small CNN (leukcore.audits), trained from scratch",
    ),
    min_input_size=16,
)


@register_model(AUDIT_CNN_SPEC)
def audit_cnn(num_classes: int = 4, pretrained: bool | str = False, weights=None, **kw) -> nn.Module:
    """The audits' CNN; see :class:`AuditCNN`."""
    return build(AUDIT_CNN_SPEC, lambda: AuditCNN(num_classes, **kw), num_classes, pretrained, weights)
