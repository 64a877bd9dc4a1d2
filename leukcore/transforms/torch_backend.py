"""The torch backend of :class:`~leukcore.transforms.augment.Augment`: one ``grid_sample`` and one
``baddbmm`` per batch, on any device (the reference the OpenCV backend is checked against)."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

from .normalize import channel_stats


def apply_torch(aug, x: torch.Tensor, params: Dict[str, torch.Tensor], mean: Optional[Sequence[float]] = None,
                std: Optional[Sequence[float]] = None) -> torch.Tensor:
    """:meth:`Augment.apply <leukcore.transforms.augment.Augment.apply>` with torch: ``x`` uint8 NCHW (checked
    by the caller), ``params`` from ``aug.sample``; float32 NCHW, normalised when ``mean`` / ``std`` are given."""
    n, ch, height, width = x.shape
    dev = x.device
    geo = any(k in params for k in ("angle", "zoom", "shift", "pad_shift", "crop"))
    if not geo:  # exact index flips; with geometry they are folded into the affine matrix
        if "hflip" in params:
            x = torch.where(params["hflip"].to(dev).view(n, 1, 1, 1), x.flip(-1), x)
        if "vflip" in params:
            x = torch.where(params["vflip"].to(dev).view(n, 1, 1, 1), x.flip(-2), x)
    # contiguous NCHW float, 0..255 until the colour / normalisation pass
    x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
    if geo:
        th = aug.theta(params, n, height, width)
        x = F.grid_sample(
            x, affine_grid(th, height, width, dev), mode="bilinear", padding_mode=aug.fill, align_corners=False
        )
    colour = any(k in params for k in ("brightness", "contrast", "saturation", "hue"))
    scale = 1.0 / 255.0
    if colour:
        if ch != 3:
            raise ValueError("colour operations need 3-channel images")
        a, o, g = aug.colour_matrix(params)
        a = (a * scale).to(dev, torch.float32)
        o = o.to(dev, torch.float32).view(n, 3, 1)
        if "contrast" in params:  # offset term from the channel means, on the device
            mu = x.mean(dim=(2, 3)).view(n, 3, 1)
            o = torch.baddbmm(o, (g * scale).to(dev, torch.float32), mu)
        x = torch.baddbmm(o, a, x.reshape(n, 3, height * width)).view(n, 3, height, width)
        x.clamp_(0.0, 1.0)
        scale = 1.0
    if mean is not None or std is not None:
        m = channel_stats(0.0 if mean is None else mean, x)
        s = channel_stats(1.0 if std is None else std, x)
        return torch.addcmul(-m / s, x, scale / s)
    return x.div_(255.0) if scale != 1.0 else x


def affine_grid(theta: torch.Tensor, height: int, width: int, device) -> torch.Tensor:
    """``F.affine_grid(theta, (N, C, H, W), align_corners=False)`` computed by broadcasting.

    Output pixel centres ``u_j = (2 j + 1) / W - 1``, ``v_i = (2 i + 1) / H - 1``; the grid is
    ``(t00 u + t01 v + t02, t10 u + t11 v + t12)`` per sample (same numbers, without the
    (N, H, W, 3) base grid and batched matmul that make ``affine_grid`` slow on the CPU).
    """
    n = theta.shape[0]
    th = theta.to(device=device, dtype=torch.float32)
    u = (torch.arange(width, device=device, dtype=torch.float32) * 2.0 + 1.0) / width - 1.0
    v = (torch.arange(height, device=device, dtype=torch.float32) * 2.0 + 1.0) / height - 1.0
    grid = torch.empty(n, height, width, 2, device=device, dtype=torch.float32)
    for k in range(2):
        gx = th[:, k, 0].view(n, 1) * u.view(1, width)  # (n, W)
        gy = th[:, k, 1].view(n, 1) * v.view(1, height) + th[:, k, 2].view(n, 1)  # (n, H)
        torch.add(gy.view(n, height, 1), gx.view(n, 1, width), out=grid[..., k])
    return grid

