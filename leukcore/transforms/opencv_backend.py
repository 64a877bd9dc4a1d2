"""The OpenCV backend of :class:`~leukcore.transforms.augment.Augment`: CPU batches, image by image
on uint8 (``warpAffine``, ``transform``, ``LUT``), split across threads."""
from __future__ import annotations

from typing import Dict

import numpy as np
import torch

from .normalize import normalizing_lut

CV_BORDER = {"zeros": 0, "border": 1, "reflection": 2}  # cv2.BORDER_CONSTANT, _REPLICATE, _REFLECT


def apply_opencv(aug, x: torch.Tensor, params: Dict[str, torch.Tensor], mean=None, std=None) -> torch.Tensor:
    """:meth:`Augment.apply <leukcore.transforms.augment.Augment.apply>` on the CPU with OpenCV, image by image on uint8 (its SIMD bilinear
    ``warpAffine`` on uint8).

    Same parameters, same formulas as the torch backend: the affine matrices of :meth:`Augment.theta`
    converted to pixel coordinates (``align_corners=False``: ``x = ((u + 1) W - 1) / 2``), the
    fill as OpenCV border (``zeros`` constant 0, ``border`` replicate, ``reflection``
    reflect, which is ``grid_sample``'s reflection about the pixel edges), then the composed
    colour map with the contrast mean taken on the warped image; the result is rounded to
    uint8 after the warp and after the colour map (saturating, which is the clamp to
    [0, 1]), then converted to float and normalised in one pass. The differences from the
    torch backend are those roundings (at most half a level each) and OpenCV's 1/32-pixel
    coordinate precision: mean absolute difference well under one level in 255
    (``tests/test_augment.py`` bounds it). Returns float32 NCHW with channels-last strides.
    """
    import cv2

    n, ch, height, width = x.shape
    geo = any(k in params for k in ("angle", "zoom", "shift", "pad_shift", "crop"))
    if not geo:  # exact index flips, as in the torch backend
        if "hflip" in params:
            x = torch.where(params["hflip"].view(n, 1, 1, 1), x.flip(-1), x)
        if "vflip" in params:
            x = torch.where(params["vflip"].view(n, 1, 1, 1), x.flip(-2), x)
    src = x.permute(0, 2, 3, 1)
    if not src.is_contiguous():
        src = src.contiguous()
    src = src.numpy()
    if ch == 1:
        src = src[..., 0]
    work = np.empty_like(src)  # uint8 after the warp and the colour map
    res = np.empty(src.shape, dtype=np.float32)  # normalised float, NHWC
    mats = pixel_matrices(aug.theta(params, n, height, width), height, width) if geo else None
    colour = any(k in params for k in ("brightness", "contrast", "saturation", "hue"))
    if colour:
        if ch != 3:
            raise ValueError("colour operations need 3-channel images")
        a, o, g = aug.colour_matrix(params)
        a, o, g = a.numpy(), o.numpy() * 255.0, g.numpy()
        contrast = "contrast" in params
    border = CV_BORDER[aug.fill]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    lut = normalizing_lut(ch, 0.0 if mean is None else mean, 1.0 if std is None else std)

    def images(lo: int, hi: int) -> None:  # images lo..hi-1, start to end (OpenCV releases the GIL)
        cm = np.empty((3, 4), dtype=np.float32)
        if geo and ch == 3:  # OpenCV's SIMD warp serves 4 channels: 3.4x faster, same RGB values
            rgba, warped = np.empty((height, width, 4), np.uint8), np.empty((height, width, 4), np.uint8)
        for i in range(lo, hi):
            if geo and ch == 3:
                cv2.cvtColor(src[i], cv2.COLOR_RGB2RGBA, dst=rgba)
                cv2.warpAffine(rgba, mats[i], (width, height), dst=warped, flags=flags, borderMode=border,
                               borderValue=0)
                cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB, dst=work[i])
            elif geo:
                cv2.warpAffine(src[i], mats[i], (width, height), dst=work[i], flags=flags, borderMode=border,
                               borderValue=0)
            else:
                work[i] = src[i]
            if colour:
                off = o[i]
                if contrast:  # the offset from the channel means of the warped image (0..255 units)
                    off = off + g[i] @ np.asarray(cv2.mean(work[i])[:3])
                cm[:, :3] = a[i]
                cm[:, 3] = off
                cv2.transform(work[i], cm, dst=work[i])
        rows = (hi - lo) * height
        cv2.LUT(work[lo:hi].reshape(rows, width, ch), lut, dst=res[lo:hi].reshape(rows, width, ch))

    _in_chunks(images, n)
    t = torch.from_numpy(res)
    return t.unsqueeze(1) if ch == 1 else t.permute(0, 3, 1, 2)  # NCHW view, channels-last strides


def pixel_matrices(theta: torch.Tensor, height: int, width: int) -> np.ndarray:
    """(N, 2, 3) float64 ``theta`` (output -> input, normalised, ``align_corners=False``) as the
    float32 pixel matrices OpenCV's ``warpAffine(..., WARP_INVERSE_MAP)`` takes: ``P · T · Q`` with
    ``Q`` output pixel -> normalised (``u = (2 x + 1) / W - 1``) and ``P`` normalised -> input pixel."""
    n = theta.shape[0]
    t = np.zeros((n, 3, 3))
    t[:, :2, :] = theta.numpy()
    t[:, 2, 2] = 1.0
    q = np.array([[2.0 / width, 0.0, 1.0 / width - 1.0], [0.0, 2.0 / height, 1.0 / height - 1.0], [0.0, 0.0, 1.0]])
    p = np.array([[width / 2.0, 0.0, (width - 1) / 2.0], [0.0, height / 2.0, (height - 1) / 2.0], [0.0, 0.0, 1.0]])
    return np.ascontiguousarray((p @ t @ q)[:, :2, :], dtype=np.float32)



_POOL = None
_POOL_WORKERS = 0


def _in_chunks(fn, n: int) -> None:
    """``fn(lo, hi)`` over ``0..n`` in contiguous chunks, one per torch intra-op thread, the first
    in this thread and the others in a small shared thread pool (OpenCV releases the GIL, so the
    chunks run in parallel; a batch split by image scales better than OpenCV's own row-splitting
    of a 224 px image). One thread: a plain call. Each image is computed alone, so the result does
    not depend on the split."""
    global _POOL, _POOL_WORKERS
    k = max(1, min(torch.get_num_threads(), n))
    if k == 1:
        fn(0, n)
        return
    from concurrent.futures import ThreadPoolExecutor

    if _POOL_WORKERS < k - 1:
        _POOL, _POOL_WORKERS = ThreadPoolExecutor(max_workers=k - 1, thread_name_prefix="leukcore-augment"), k - 1
    bounds = [round(j * n / k) for j in range(k + 1)]
    futures = [_POOL.submit(fn, bounds[j], bounds[j + 1]) for j in range(1, k)]
    fn(bounds[0], bounds[1])
    for f in futures:
        f.result()

