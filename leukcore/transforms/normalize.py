"""uint8 images to the normalised float a model takes: ``(x / 255 - mean) / std`` per channel."""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np
import torch


_STATS_CACHE: Dict[tuple, torch.Tensor] = {}


def channel_stats(values, x: torch.Tensor) -> torch.Tensor:
    """Per-channel statistics as a (1, C, 1, 1) float32 tensor on ``x``'s device (cached, so a
    training loop does not copy them to the GPU at every step)."""
    vals = tuple(float(v) for v in torch.as_tensor(values, dtype=torch.float64).reshape(-1).tolist())
    if len(vals) == 1:
        vals = vals * x.shape[1]
    key = (vals, str(x.device))
    t = _STATS_CACHE.get(key)
    if t is None:
        if len(_STATS_CACHE) > 64:
            _STATS_CACHE.clear()
        t = _STATS_CACHE[key] = torch.tensor(vals, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return t


def normalize(batch: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Per-channel normalisation of a float batch in [0, 1]: ``(x - mean) / std`` (NCHW)."""
    return (batch - channel_stats(mean, batch)) / channel_stats(std, batch)


_LUT_CACHE: Dict[tuple, np.ndarray] = {}


def normalizing_lut(ch: int, mean, std) -> np.ndarray:
    """The ``cv2.LUT`` table ``(v / 255 - mean_c) / std_c`` for ``v`` in 0..255, per channel,
    computed in float64 and stored as float32 (cached)."""
    m = np.broadcast_to(np.asarray(mean, dtype=np.float64).reshape(-1), (ch,))
    s = np.broadcast_to(np.asarray(std, dtype=np.float64).reshape(-1), (ch,))
    key = (ch, tuple(m.tolist()), tuple(s.tolist()))
    lut = _LUT_CACHE.get(key)
    if lut is None:
        if len(_LUT_CACHE) > 64:
            _LUT_CACHE.clear()
        lut = _LUT_CACHE[key] = ((np.arange(256.0)[:, None] / 255.0 - m) / s).astype(np.float32).reshape(1, 256, ch)
    return lut



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
