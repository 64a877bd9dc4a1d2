"""DSCNet (Kaur et al. 2023, Algorithm 1; also Vijayalakshmi & Deepa), with the widths we chose."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers import activation_layer, glorot_init
from ..builder import build
from ..registry import INTERPRETATION, ModelSpec, register_model


class DSCNet(nn.Module):
    """DSCNet, Kaur et al. 2023 Algorithm 1 (Vijayalakshmi & Deepa re-tell it in Keras).

    Algorithm 1 fixes the topology and nothing else::

        X_f  = filter(X)                                   (line 2)
        Z1   = s(W1 * X_f + b1)                            conv block 1 (layer 1)
        Z2   = s([Z1, X_f])                                dense block 1 (layer 2)
        Z3   = s(W3 * Z2 + b3);   Z4 = s([Z3, Z2])         layers 3, 4
        ...  Z9 = s(W9 * Z8 + b9); Z10 = s([Z9, Z8])       layers 5-10
        Z11  = s(W11 * Z10 + b11)                          conv block 6 (layer 11)
        flatten -> FC + dropout 0.3 -> FC + dropout 0.2 -> softmax

    Our choices (none is given by either paper; all are interpretations):

    * **filter**: :class:`leukcore.filters.SharpenLayer`, a fixed (non-trainable) 3x3
      Laplacian sharpening kernel ``[[0,-1,0],[-1,5,-1],[0,-1,0]]`` with reflect padding
      (``sharpen=False``: none, the identity; the ``choices`` audit compares the two);
    * **conv blocks** (layers 1, 3, 5, 7, 9, 11): one 3x3 'same' convolution each, widths
      ``32, 32, 64, 64, 128, 256`` (``widths``), bias, activation ``s`` = ReLU, or LeakyReLU
      (``activation="leaky_relu"``, slope 0.3 = Keras' default; Vijayalakshmi lists both);
      no BatchNorm (``batch_norm=True`` adds it) because Algorithm 1 writes ``s(W*Z + b)``;
    * **dense blocks** (layers 2, 4, 6, 8, 10): channel concatenation of the conv block's
      output and that block's input, the activation applied as written (idempotent for ReLU,
      it squares the negative slope for LeakyReLU), then a **2x2 max-pool** (a DenseNet
      "transition"), so the concatenated channels (3 -> 35 -> 67 -> 131 -> 195 -> 323)
      are convolved at 224, 112, 56, 28, 14 and 7 pixels;
    * **flatten**: a global average pool before the flatten, so the flattened vector is the
      256 channels of layer 11 (the model takes any input side >= 32; flattening the 7x7x256
      map instead would add ~3 M parameters to the first FC layer);
    * **FC layers**: layers 13 and 14 are hidden layers of 256 and 128 units (``fc_units``)
      with the activation and dropout 0.3 / 0.2 (``dropout``; Vijayalakshmi uses 0.1), then a
      linear classifier of ``num_classes`` logits. Algorithm 1 literally applies the softmax to
      ``Z14 = s(W Z13 + b)``, which would put a ReLU and dropout on the class scores; we read
      13-14 as hidden layers and add the classifier the softmax needs;
    * initialisation: ``glorot_uniform`` kernels, zero biases (Keras / MATLAB defaults).

    Inputs use unit scaling (``u8 / 255``); the sharpening kernel sums to 1 so it commutes
    with any per-channel normalisation.
    """

    def __init__(
        self,
        num_classes: int = 4,
        widths: Sequence[int] = (32, 32, 64, 64, 128, 256),
        fc_units: Sequence[int] = (256, 128),
        dropout: float | Sequence[float] = (0.3, 0.2),
        activation: str = "relu",
        negative_slope: float = 0.3,
        batch_norm: bool = False,
        kernel_size: int = 3,
        in_chans: int = 3,
        sharpen: bool = True,
    ):
        super().__init__()
        from ...transforms.filters import SharpenLayer

        widths = tuple(int(w) for w in widths)
        if len(widths) != 6:
            raise ValueError(f"DSCNet has six conv blocks; widths has {len(widths)}")
        fc_units = tuple(int(u) for u in fc_units)
        if isinstance(dropout, (int, float)):
            dropout = (float(dropout),) * len(fc_units)
        dropout = tuple(float(d) for d in dropout)
        if len(dropout) != len(fc_units):
            raise ValueError(f"dropout {dropout} needs one rate per FC layer {fc_units}")
        self.filter = SharpenLayer() if sharpen else nn.Identity()
        self.act = activation_layer(activation, negative_slope)
        convs = []
        c_in = in_chans
        for i, w in enumerate(widths):
            layers: list[nn.Module] = [nn.Conv2d(c_in, w, kernel_size, padding=kernel_size // 2, bias=not batch_norm)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(w))
            convs.append(nn.Sequential(*layers))
            if i < len(widths) - 1:
                c_in = w + c_in  # the dense block concatenates output and input
        self.convs = nn.ModuleList(convs)
        self.pool = nn.MaxPool2d(2)
        self.num_features = widths[-1]
        fcs, drops = [], []
        prev = self.num_features
        for units, p in zip(fc_units, dropout):
            fcs.append(nn.Linear(prev, units))
            drops.append(nn.Dropout(p))
            prev = units
        self.fcs = nn.ModuleList(fcs)
        self.drops = nn.ModuleList(drops)
        self.classifier = nn.Linear(prev, num_classes)
        glorot_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Filter, conv/dense blocks 1-11, global average pool: ``(N, widths[-1])``."""
        z = self.filter(x)
        for i, conv in enumerate(self.convs):
            out = self.act(conv(z))
            if i == len(self.convs) - 1:
                z = out
                break
            z = self.pool(self.act(torch.cat([out, z], dim=1)))
        return torch.flatten(F.adaptive_avg_pool2d(z, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        z = self.forward_features(x)
        for fc, drop in zip(self.fcs, self.drops):
            z = drop(self.act(fc(z)))
        return self.classifier(z)


DSCNET_SPEC = ModelSpec(
    name="dscnet",
    papers={"dscnet_kaur2023": 224, "dscnet_vijayalakshmi": 224},
    paper_input_size=224,
    default_num_classes=4,
    norm="unit",
    small_input_size=64,
    head=("classifier",),
    description="Kaur et al. 2023 Algorithm 1 with our widths (see DSCNet docstring).",
    deviations=(
        INTERPRETATION + "custom filtering layer = fixed 3x3 Laplacian sharpening (leukcore.filters.SharpenLayer)",
        INTERPRETATION + "conv blocks: one 3x3 'same' conv each, widths 32-32-64-64-128-256, bias, no BatchNorm",
        INTERPRETATION + "dense blocks: concat(conv output, its input), activation, then 2x2 max-pool",
        INTERPRETATION + "global average pool before the flatten (256 features)",
        INTERPRETATION + "FC layers 13-14 = hidden 256 and 128 units with dropout 0.3 / 0.2, then a linear classifier",
        INTERPRETATION + "glorot_uniform kernels, zero biases; inputs scaled to [0, 1]",
        INTERPRETATION + "input 224x224 (Vijayalakshmi Table 1; Kaur states none)",
    ),
)


@register_model(DSCNET_SPEC)
def dscnet(num_classes: int = 4, pretrained: bool | str = False, weights=None, **kw) -> nn.Module:
    """DSCNet (Kaur et al. 2023 Algorithm 1); options of :class:`DSCNet` (dropout, activation, ...)."""
    spec = DSCNET_SPEC
    if kw.get("activation") == "leaky_relu":
        spec = ModelSpec(**{**spec.__dict__, "deviations": spec.deviations + (
            INTERPRETATION + f"LeakyReLU, negative slope {kw.get('negative_slope', 0.3)} (Keras default)",)})
    return build(spec, lambda: DSCNet(num_classes, **kw), num_classes, pretrained, weights)
