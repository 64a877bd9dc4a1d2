"""Image filters used by the reproduced papers and by the shortcut audit.

* :func:`logmh` -- Laplacian-of-Gaussian modified high-boosting (Haque et al. 2024, eq. 1-4).
* :func:`dscnet_sharpen` / :class:`SharpenLayer` -- our stand-in for DSCNet's unspecified
  "custom image filtering" layer (Kaur et al. 2023, Algorithm 1 line 2): a fixed 3x3
  sharpening kernel, as a numpy function and as a non-trainable first model layer.
* :func:`to_grey` -- ITU-R BT.601 luma, replicated to three channels.
* :func:`reinhard_normalize` / :func:`reinhard_target` -- Reinhard colour transfer
  (stain normalisation) in CIELAB.

Images follow the package convention: ``uint8`` arrays, ``(H, W, C)`` (or ``(N, H, W, C)``
batches where stated) in **RGB** channel order.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LOGMH_DEFAULTS",
    "SHARPEN_KERNEL",
    "BT601_WEIGHTS",
    "logmh",
    "dscnet_sharpen",
    "SharpenLayer",
    "to_grey",
    "reinhard_target",
    "reinhard_normalize",
]

#: Default LoGMH parameters (the paper gives none; see :func:`logmh`).
LOGMH_DEFAULTS: dict[str, float] = {"sigma": 1.0, "alpha": 1.5, "beta": 1.0}

#: DSCNet stand-in filter: identity minus the 4-neighbour Laplacian, ``K = delta - lap4``.
SHARPEN_KERNEL: np.ndarray = np.array(
    [[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]], dtype=np.float64
)
SHARPEN_KERNEL.setflags(write=False)

#: ITU-R BT.601 luma weights for (R, G, B).
BT601_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------- LoGMH
def logmh(
    image: np.ndarray,
    sigma: float = LOGMH_DEFAULTS["sigma"],
    alpha: float = LOGMH_DEFAULTS["alpha"],
    beta: float = LOGMH_DEFAULTS["beta"],
) -> np.ndarray:
    """Laplacian-of-Gaussian modified high-boosting (LoGMH), Haque et al. 2024, eq. 1-4.

    With ``I`` the image as float64 (any scale; channels filtered independently)::

        B = G_sigma * I                          (eq. 1)  cv2.GaussianBlur(I, (0, 0), sigma)
        L = d2B/dx2 + d2B/dy2                    (eq. 2)  cv2.Laplacian(B, CV_64F, ksize=1)
        H = alpha * I - beta * L                 (eq. 3)
        out = (H - min H) / (max H - min H)      (eq. 4)  min/max over the whole image,
                                                          all channels together

    OpenCV's default border (``BORDER_REFLECT_101``, i.e. ``dcb|abcd|cba``) is used by both
    filters. For ``ksize=(0, 0)`` OpenCV sizes the float Gaussian kernel as
    ``round(8 * sigma + 1) | 1`` taps (radius ``~4 sigma``). ``ksize=1`` selects the
    4-neighbour Laplacian ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``; since its centre is negative,
    subtracting it sharpens.

    Defaults (the paper states none): ``sigma = 1.0`` px -- enough to suppress JPEG and sensor
    noise before the second derivative while keeping nuclear-chromatin edges at the 224-227 px
    working resolution; ``alpha = 1.5, beta = 1.0`` -- the classical high-boost form
    ``A*I - lap(I)`` with boost factor ``A > 1`` (Gonzalez & Woods), i.e. the original image
    kept dominant with a unit-weight edge term. Because eq. 4 is a global affine rescaling,
    only the ratio ``beta / alpha`` (and ``sigma``) changes the output; the result is also
    invariant to the input's scale and offset (uint8 or [0, 1] input give the same output).

    Args:
        image: ``(H, W)``, ``(H, W, C)`` array of any numeric dtype, or an ``(N, H, W, C)``
            batch (each image normalised on its own).
        sigma: Gaussian standard deviation in pixels (> 0).
        alpha: weight of the original image.
        beta: weight of the Laplacian of the blurred image.

    Returns:
        float32 array of the same shape with values in ``[0, 1]`` (min 0 and max 1 unless the
        image is constant, which gives all zeros).
    """
    arr = np.asarray(image)
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if arr.ndim == 4:
        out = np.zeros(arr.shape, dtype=np.float32)
        for i, im in enumerate(arr):
            out[i] = logmh(im, sigma, alpha, beta)
        return out
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected (H, W), (H, W, C) or (N, H, W, C), got shape {arr.shape}")
    img = arr.astype(np.float64)
    if img.size == 0 or np.ptp(img) == 0:
        return np.zeros(arr.shape, dtype=np.float32)
    blurred = cv2.GaussianBlur(img, (0, 0), sigma)
    lap = cv2.Laplacian(blurred, cv2.CV_64F, ksize=1)
    h = alpha * img - beta * lap.reshape(img.shape)
    lo, hi = h.min(), h.max()
    if not hi > lo:
        return np.zeros(arr.shape, dtype=np.float32)
    return ((h - lo) / (hi - lo)).astype(np.float32)


# --------------------------------------------------------------- DSCNet sharpening
def dscnet_sharpen(image: np.ndarray) -> np.ndarray:
    """DSCNet's "custom image filtering" stand-in: a fixed 3x3 sharpening filter.

    The paper (Kaur et al. 2023, Algorithm 1, line 2) does not specify its filter; we use
    (a documented interpretation) the Laplacian sharpening kernel :data:`SHARPEN_KERNEL`::

        K = [[ 0, -1,  0],
             [-1,  5, -1],      out = K * I = I - lap4(I)
             [ 0, -1,  0]]

    applied to each channel separately with reflect padding (``dcb|abcd|cba``, OpenCV's
    ``BORDER_REFLECT_101``, scipy's ``'mirror'``, torch's ``'reflect'``). ``K`` is symmetric,
    so correlation and convolution coincide. The kernel sums to 1, so constants are preserved
    and ``sharpen(a * I + b) = a * sharpen(I) + b``: sharpening commutes with per-channel
    normalisation, and the output is *not* clipped (it may leave the input's range).

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)`` array (any numeric dtype),
            with ``H, W >= 2``.

    Returns:
        float32 array of the same shape, in the input's scale.
    """
    arr = np.asarray(image)
    if arr.ndim not in (2, 3, 4):
        raise ValueError(f"expected (H, W), (H, W, C) or (N, H, W, C), got shape {arr.shape}")
    img = arr.astype(np.float32)
    hw = (0, 1) if arr.ndim in (2, 3) else (1, 2)
    pad = [(1, 1) if ax in hw else (0, 0) for ax in range(arr.ndim)]
    p = np.pad(img, pad, mode="reflect")

    def shift(dy: int, dx: int) -> np.ndarray:
        sl = [slice(None)] * arr.ndim
        sl[hw[0]] = slice(1 + dy, p.shape[hw[0]] - 1 + dy)
        sl[hw[1]] = slice(1 + dx, p.shape[hw[1]] - 1 + dx)
        return p[tuple(sl)]

    out = 5.0 * shift(0, 0) - shift(-1, 0) - shift(1, 0) - shift(0, -1) - shift(0, 1)
    return out.astype(np.float32)


class SharpenLayer(nn.Module):
    """Fixed, non-trainable depthwise 3x3 sharpening layer (DSCNet's filtering layer).

    Applies :data:`SHARPEN_KERNEL` to every channel of an ``(N, C, H, W)`` float tensor with
    ``'reflect'`` padding, so that its output equals :func:`dscnet_sharpen` on the NHWC
    array. The kernel is a non-persistent buffer: it has no parameters (does not count in a
    model's parameter total, receives no gradient) and is not stored in checkpoints.
    Non-float inputs are converted to float32.
    """

    def __init__(self) -> None:
        super().__init__()
        kernel = torch.as_tensor(np.array(SHARPEN_KERNEL), dtype=torch.float32)
        self.register_buffer("kernel", kernel.view(1, 1, 3, 3), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``out[n, c] = K * reflect_pad(x[n, c])`` for every channel ``c``."""
        if not torch.is_floating_point(x):
            x = x.float()
        c = x.shape[1]
        weight = self.kernel.to(dtype=x.dtype, device=x.device).expand(c, 1, 3, 3)
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), weight, groups=c)

    def extra_repr(self) -> str:
        return "kernel=[[0,-1,0],[-1,5,-1],[0,-1,0]], padding=reflect, trainable=False"


# ---------------------------------------------------------------------- grey-scale
def to_grey(image: np.ndarray) -> np.ndarray:
    """Grey-scale by ITU-R BT.601 luma, returned as three identical uint8 channels.

    ``Y = round(0.299 R + 0.587 G + 0.114 B)`` (clipped to [0, 255]); the output repeats
    ``Y`` in all three channels so a model keeps its 3-channel input. Input is RGB.

    Args:
        image: ``(H, W, 3)`` or ``(N, H, W, 3)`` RGB array (uint8, or floats in 0..255).

    Returns:
        uint8 array of the same shape with ``out[..., 0] == out[..., 1] == out[..., 2]``.
    """
    arr = np.asarray(image)
    if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise ValueError(f"expected (..., H, W, 3) RGB, got shape {arr.shape}")
    y = arr.astype(np.float64) @ np.asarray(BT601_WEIGHTS)
    y = np.clip(np.rint(y), 0, 255).astype(np.uint8)
    return np.repeat(y[..., None], 3, axis=-1)


# --------------------------------------------------------------- Reinhard transfer
def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(
            f"expected a (H, W, 3) uint8 RGB image, got shape {arr.shape} dtype {arr.dtype}"
        )
    return np.ascontiguousarray(arr)


def _lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(_as_rgb_uint8(image), cv2.COLOR_RGB2LAB).astype(np.float64)


def reinhard_target(images: np.ndarray | Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Target LAB statistics ``(means, stds)`` for :func:`reinhard_normalize`.

    The reference is one ``(H, W, 3)`` uint8 RGB image, an ``(N, H, W, 3)`` batch, or any
    iterable of images (sizes may differ). Pixels of all reference images are pooled:
    ``mean_k = mean(LAB_k)``, ``std_k = std(LAB_k)`` (population std) over every pixel, for
    each channel ``k`` of OpenCV's 8-bit CIELAB (``L * 255/100``, ``a + 128``, ``b + 128``).

    Returns:
        two float64 arrays of shape ``(3,)``.
    """
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    for im in images:
        lab = _lab(im).reshape(-1, 3)
        total += lab.sum(axis=0)
        total_sq += np.square(lab).sum(axis=0)
        count += lab.shape[0]
    if count == 0:
        raise ValueError("reinhard_target needs at least one reference image")
    means = total / count
    stds = np.sqrt(np.maximum(total_sq / count - np.square(means), 0.0))
    return means, stds


def reinhard_normalize(
    image: np.ndarray,
    target_means: Sequence[float] | np.ndarray,
    target_stds: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Reinhard colour transfer (stain normalisation) in CIELAB.

    Reinhard, Ashikhmin, Gooch & Shirley (2001), "Color transfer between images",
    IEEE Computer Graphics and Applications 21(5):34-41. Per LAB channel ``k``::

        out_k = (x_k - mean_k(x)) / std_k(x) * target_std_k + target_mean_k

    where the source statistics are those of the image itself. As is usual for stain
    normalisation, we use OpenCV's 8-bit CIELAB (``cv2.COLOR_RGB2LAB`` on uint8) instead of
    the paper's l-alpha-beta space; the result is rounded, clipped to [0, 255] in LAB and
    converted back to RGB. A channel with zero spread is shifted to the target mean.
    Compute the target with :func:`reinhard_target`.

    Args:
        image: ``(H, W, 3)`` uint8 RGB image, or an ``(N, H, W, 3)`` batch (each image uses
            its own statistics).
        target_means: the three target LAB means.
        target_stds: the three target LAB standard deviations.

    Returns:
        uint8 RGB array of the same shape.
    """
    arr = np.asarray(image)
    if arr.ndim == 4:
        return np.stack([reinhard_normalize(im, target_means, target_stds) for im in arr])
    tm = np.asarray(target_means, dtype=np.float64).reshape(3)
    ts = np.asarray(target_stds, dtype=np.float64).reshape(3)
    lab = _lab(arr)
    flat = lab.reshape(-1, 3)
    mu, sd = flat.mean(axis=0), flat.std(axis=0)
    scale = np.divide(ts, sd, out=np.zeros(3), where=sd > 0)
    out = (lab - mu) * scale + tm
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return cv2.cvtColor(out, cv2.COLOR_LAB2RGB)
