"""Pieces the papers' own networks share: Keras-style initialisation and activations."""
from __future__ import annotations

from torch import nn


def glorot_init(module: nn.Module) -> None:
    """Keras defaults: ``glorot_uniform`` kernels, zero biases (conv and dense layers)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def activation_layer(activation: str, negative_slope: float) -> nn.Module:
    if activation == "relu":
        return nn.ReLU()
    if activation == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    raise ValueError(f"unknown activation {activation!r}; valid: relu, leaky_relu")
