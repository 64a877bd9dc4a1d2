"""uint8 images to the normalised float a model takes: ``(x / 255 - mean) / std`` per channel."""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import torch


@lru_cache(maxsize=64)
def _stats_tensor(vals: tuple[float, ...], device: str) -> torch.Tensor:
    return torch.tensor(vals, dtype=torch.float32, device=device).view(1, -1, 1, 1)


def channel_stats(values, x: torch.Tensor) -> torch.Tensor:
    """Per-channel statistics as a (1, C, 1, 1) float32 tensor on ``x``'s device (cached, so a
    training loop does not copy them to the GPU at every step)."""
    vals = tuple(float(v) for v in torch.as_tensor(values, dtype=torch.float64).reshape(-1).tolist())
    if len(vals) == 1:
        vals = vals * x.shape[1]
    return _stats_tensor(vals, str(x.device))


def normalize(batch: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Per-channel normalisation of a float batch in [0, 1]: ``(x - mean) / std`` (NCHW)."""
    return (batch - channel_stats(mean, batch)) / channel_stats(std, batch)


@lru_cache(maxsize=64)
def _lut(ch: int, m: tuple[float, ...], s: tuple[float, ...]) -> np.ndarray:
    lut = ((np.arange(256.0)[:, None] / 255.0 - np.asarray(m)) / np.asarray(s)).astype(np.float32).reshape(1, 256, ch)
    lut.setflags(write=False)  # shared by every caller
    return lut


def normalizing_lut(ch: int, mean, std) -> np.ndarray:
    """The ``cv2.LUT`` table ``(v / 255 - mean_c) / std_c`` for ``v`` in 0..255, per channel,
    computed in float64 and stored as float32 (cached)."""
    m = np.broadcast_to(np.asarray(mean, dtype=np.float64).reshape(-1), (ch,))
    s = np.broadcast_to(np.asarray(std, dtype=np.float64).reshape(-1), (ch,))
    return _lut(ch, tuple(m.tolist()), tuple(s.tolist()))



def uint8_to_normalized(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 NCHW -> float32 ``(x / 255 - mean) / std`` per channel (the one place it is done).

    A CPU batch of 1 or 3 channels stored channels-last (NHWC, how :func:`leukcore.engine.fit`
    holds images) goes through one ``cv2.LUT`` pass over a 256-entry table per channel, computed
    in float64 (exact to float32 rounding); the result keeps the channels-last strides. On the CPU
    that is much faster than a broadcast multiply-add over a channels-last tensor (see the
    benchmark records). Anything else: one ``torch.addcmul``. A batch that is not uint8 is a ValueError.
    """
    if x.dtype != torch.uint8:
        raise ValueError(f"expected a uint8 batch, got {x.dtype}")
    n, ch = x.shape[0], x.shape[1]
    nhwc = x.permute(0, 2, 3, 1)
    if x.device.type == "cpu" and ch in (1, 3) and nhwc.is_contiguous() and x.numel() > 0:
        import cv2

        lut = normalizing_lut(ch, mean, std)
        src = nhwc.numpy().reshape(n * x.shape[2], x.shape[3], ch)
        out = torch.from_numpy(cv2.LUT(src, lut).reshape(n, x.shape[2], x.shape[3], ch))
        return out.permute(0, 3, 1, 2)
    m, s = channel_stats(mean, x), channel_stats(std, x)
    return torch.addcmul(-m / s, x.float(), 1.0 / (255.0 * s))


class Normalizer:
    """The model's input normalisation ``x_n = (x / 255 - mean) / std`` of a uint8 batch, held with
    its statistics (:func:`uint8_to_normalized` does the work)."""

    def __init__(self, mean, std):
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)

    def from_uint8(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised float32 NCHW batch of uint8 NCHW ``x``."""
        return uint8_to_normalized(x, self.mean, self.std)
