"""ALNet (Jawahar et al. 2022, Table 2, layer for layer)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import glorot_init
from ..builder import build
from ..registry import DEVIATION, INTERPRETATION, ModelSpec, register_model


class ALNet(nn.Module):
    """ALNet, Jawahar et al. 2022, Table 2, layer for layer (Keras semantics).

    ::

        input 224x224x3
        cluster 1: conv1 5x5x32 valid -> 220, conv2 5x5x32 -> 216, maxpool 2 -> 108,
                   maxpool 2 -> 54, BN(32)
        cluster 2: conv3 5x5x64 -> 50, conv4 5x5x64 -> 46, maxpool 2 -> 23, maxpool 2 -> 11,
                   BN(64)
        cluster 3: conv5 5x5x128 -> 7, maxpool 2 -> 3, BN(128)
        flatten 3*3*128 = 1152, dropout, fc1 dense 128 ReLU, fc2 dense num_classes

    Parameters (Table 2's "Param" column): 2432 + 25632 + 51264 + 102464 + 204928 (convs)
    + 147584 + 258 (dense) + 2 * (32 + 64 + 128) (BN gamma, beta) = **535,010 trainable**;
    Keras also counts the BN moving mean / variance (448 more), which is why the Param
    column sums to 535,458. Here those two are buffers, not parameters.

    Choices: every convolution is 'valid' (the shapes require it) and followed by ReLU (the
    text names ReLU as the activation; Table 2 lists no separate activation layers, so they
    are inside ``Conv2D``); every max-pool is 2x2 stride 2 ('valid', floor) -- the text says
    3x3 pools in clusters 2 and 3, but the printed shapes (46 -> 23 -> 11, 7 -> 3) are those
    of 2x2 pools; BatchNorm uses Keras' ``epsilon=1e-3, momentum=0.99``; kernels are
    ``glorot_uniform`` with zero biases (Keras defaults). The paper's last layer is 2 sigmoid
    units trained with binary cross-entropy; we return the 2 logits and let the loss apply
    the sigmoid / softmax. ``dropout`` defaults to 0.2 (sec. 4.3; the model text says 30%).

    ``input_size`` (default 224) fixes the flatten width; inputs of another size raise.
    The smallest workable side is 136.
    """

    def __init__(self, num_classes: int = 2, dropout: float = 0.2, input_size: int = 224, in_chans: int = 3):
        super().__init__()
        self.input_size = int(input_size)
        side = self.flatten_side(self.input_size)
        if side < 1:
            raise ValueError(f"ALNet needs an input side >= 136, got {input_size}")
        bn = dict(eps=1e-3, momentum=0.01)  # Keras momentum 0.99 == PyTorch 0.01
        self.conv1 = nn.Conv2d(in_chans, 32, 5)
        self.conv2 = nn.Conv2d(32, 32, 5)
        self.pool1 = nn.MaxPool2d(2)
        self.pool2 = nn.MaxPool2d(2)
        self.bn1 = nn.BatchNorm2d(32, **bn)
        self.conv3 = nn.Conv2d(32, 64, 5)
        self.conv4 = nn.Conv2d(64, 64, 5)
        self.pool3 = nn.MaxPool2d(2)
        self.pool4 = nn.MaxPool2d(2)
        self.bn2 = nn.BatchNorm2d(64, **bn)
        self.conv5 = nn.Conv2d(64, 128, 5)
        self.pool5 = nn.MaxPool2d(2)
        self.bn3 = nn.BatchNorm2d(128, **bn)
        self.num_features = 128 * side * side
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(self.num_features, 128)
        self.fc2 = nn.Linear(128, num_classes)
        glorot_init(self)

    @staticmethod
    def flatten_side(size: int) -> int:
        """Spatial side after cluster 3: ``((((s-8)//2//2 - 8)//2//2) - 4)//2`` (0 if invalid)."""
        s = size
        for op in ("c", "c", "p", "p", "c", "c", "p", "p", "c", "p"):
            s = s - 4 if op == "c" else s // 2
            if s < 1:
                return 0
        return s

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clusters 1-3 then flatten: ``(N, 1152)`` at 224 (NCHW flatten order)."""
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            raise ValueError(
                f"ALNet was built for {self.input_size}x{self.input_size} inputs "
                f"(flatten {self.num_features}); got {tuple(x.shape[-2:])}: pass input_size="
            )
        x = self.bn1(self.pool2(self.pool1(F.relu(self.conv2(F.relu(self.conv1(x)))))))
        x = self.bn2(self.pool4(self.pool3(F.relu(self.conv4(F.relu(self.conv3(x)))))))
        x = self.bn3(self.pool5(F.relu(self.conv5(x))))
        return torch.flatten(x, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        return self.fc2(F.relu(self.fc1(self.dropout(self.forward_features(x)))))


ALNET_SPEC = ModelSpec(
    name="alnet",
    papers={"alnet_jawahar2022": 224},
    paper_input_size=224,
    default_num_classes=2,
    norm="unit",
    small_input_size=136,
    min_input_size=136,  # five valid 5x5 convolutions and five 2x2 pools
    head=("fc2",),
    paper_params=535_010,
    paper_params_note="ALNet Table 2 / Table 8, trainable, 224x224, 2 outputs",
    description="Jawahar et al. 2022 Table 2, layer for layer (535,010 trainable at 224).",
    deviations=(
        INTERPRETATION + "ReLU after every convolution (the text names ReLU; Table 2 lists no activation layers)",
        INTERPRETATION + "2x2 max-pools throughout: Table 2's shapes require them (the text says 3x3 in clusters 2-3)",
        INTERPRETATION + "dropout 0.2 (sec. 4.3 grid search; sec. 3 text says 30%)",
        INTERPRETATION + "Keras defaults: glorot_uniform kernels, zero biases, BatchNorm eps 1e-3 momentum 0.99",
        INTERPRETATION + "inputs scaled to [0, 1] (u8/255); the paper states no normalisation",
        DEVIATION + "outputs 2 logits; the paper's last layer is 2 sigmoid units (the loss applies the sigmoid)",
    ),
)


@register_model(ALNET_SPEC)
def alnet(num_classes: int = 2, pretrained: bool | str = False, weights=None,
          dropout: float = 0.2, input_size: int = 224) -> nn.Module:
    """ALNet (Jawahar et al. 2022 Table 2); see :class:`ALNet`."""
    return build(ALNET_SPEC, lambda: ALNet(num_classes, dropout=dropout, input_size=input_size),
                  num_classes, pretrained, weights, input_size)
