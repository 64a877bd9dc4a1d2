"""The CNN+LSTM baseline of XIncept's comparison (the thesis does not specify it: our design)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from ..builder import build
from ..registry import INTERPRETATION, ModelSpec, register_model


class CNNLSTM(nn.Module):
    """XIncept's CNN+LSTM baseline (the thesis names it only): our small design.

    Four conv blocks (3x3 'same' conv -> BN -> ReLU -> 2x2 max-pool; widths 32, 64, 128,
    128) reduce a 224 image to a 128x14x14 map; the width axis is average-pooled to 7
    columns (``AdaptiveAvgPool2d((None, 7))``, so any input side >= 16 works); each of the
    14 rows, 128*7 = 896 values, is one time step of a single-layer LSTM (128 hidden units,
    top to bottom); the last hidden state -> dropout 0.2 -> linear logits.
    """

    def __init__(self, num_classes: int = 4, widths: Sequence[int] = (32, 64, 128, 128),
                 columns: int = 7, hidden: int = 128, dropout: float = 0.2, in_chans: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)]
            c = w
        self.cnn = nn.Sequential(*layers)
        self.columns = int(columns)
        self.squeeze = nn.AdaptiveAvgPool2d((None, self.columns))
        self.lstm = nn.LSTM(c * self.columns, hidden, batch_first=True)
        self.num_features = hidden
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The LSTM's last hidden state, ``(N, hidden)``."""
        m = self.squeeze(self.cnn(x))  # (N, C, H', columns)
        seq = m.permute(0, 2, 1, 3).flatten(2)  # (N, H', C*columns): rows as time steps
        _, (h, _) = self.lstm(seq)
        return h[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        return self.fc(self.dropout(self.forward_features(x)))


CNN_LSTM_SPEC = ModelSpec(
    name="cnn_lstm",
    papers={"xincept_khan2024": 224},
    paper_input_size=224,
    default_num_classes=4,
    norm="unit",
    small_input_size=64,
    head=("fc",),
    description="XIncept's CNN+LSTM baseline: 4 conv blocks, rows -> LSTM(128) -> linear",
    deviations=(
        INTERPRETATION + "CNN+LSTM baseline unspecified in the thesis: 4 conv blocks (32-64-128-128, BN, ReLU, max-pool), "
             "rows of the width-pooled 14x7 map as an LSTM(128) sequence, last state -> dropout 0.2 -> linear",
        INTERPRETATION + "trained from scratch; inputs scaled to [0, 1]",
    ),
)


@register_model(CNN_LSTM_SPEC)
def cnn_lstm(num_classes: int = 4, pretrained: bool | str = False, weights=None, **kw) -> nn.Module:
    """CNN+LSTM baseline; see :class:`CNNLSTM`."""
    return build(CNN_LSTM_SPEC, lambda: CNNLSTM(num_classes, **kw), num_classes, pretrained, weights)
