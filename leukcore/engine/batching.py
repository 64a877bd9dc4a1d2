"""How the training data is held and cut into batches: one uint8 NHWC tensor per split, each batch an
index-select viewed as NCHW (channels-last), augmented and normalised in one pass.

Data path. ``train`` / ``val`` / ``test`` are ``(x, y)`` (``test`` may be ``(x, y, ids)``) with
``x`` uint8, either a numpy NHWC array ``(N, H, W, 3)`` (as :func:`leukcore.data.load_images`
returns) or a torch NCHW tensor ``(N, 3, H, W)``, and ``y`` integer labels. The whole split is
held as one uint8 tensor in NHWC storage (on the GPU when training there); each epoch a seeded
``torch.Generator`` draws a permutation, each batch is an index-select of that tensor (viewed
as NCHW in channels-last memory format, no copy), then the
paper's augmentation preset (:mod:`leukcore.transforms`; on the CPU its OpenCV backend, uint8
``warpAffine`` + ``transform`` per image, on a GPU its torch backend, one ``grid_sample`` per
batch) and the normalisation with the model's mean / std, ``x_n = (x / 255 - mean) / std``
(:class:`leukcore.transforms.Normalizer`). No ``DataLoader``, no per-sample decode.
"""
from __future__ import annotations

from typing import Iterator, List

import numpy as np
import torch


def take(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x.index_select(0, idx)``; on the CPU a single-threaded NumPy gather instead: torch's
    parallel copy leaves its OpenMP threads spinning just when the augmentation's own threads
    start (the benchmark records show the difference)."""
    if x.device.type != "cpu":
        return x.index_select(0, idx)
    return torch.from_numpy(np.take(x.numpy(), idx.numpy(), axis=0))


def as_nhwc_uint8(x, what: str) -> torch.Tensor:
    """uint8 numpy NHWC ``(N, H, W, C)`` or torch NCHW ``(N, C, H, W)`` -> torch uint8 NHWC.

    Images are kept in NHWC storage (no copy for a contiguous numpy array); a batch is
    ``x[idx].permute(0, 3, 1, 2)``, an NCHW tensor in channels-last memory format.
    """
    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise ValueError(
                f"{what}: expected a uint8 numpy array (N, H, W, 3), got {x.dtype} {x.shape}; "
                "load images with leukcore.data.load_images"
            )
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, torch.Tensor):
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(
                f"{what}: expected a uint8 torch tensor (N, 3, H, W), got {x.dtype} {tuple(x.shape)}"
            )
        return x.permute(0, 2, 3, 1).contiguous()
    raise ValueError(f"{what}: expected a uint8 numpy array or torch tensor, got {type(x).__name__}")


def nchw(xb_nhwc: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """An NHWC uint8 batch as NCHW: channels-last strides (free) or contiguous (a copy)."""
    xb = xb_nhwc.permute(0, 3, 1, 2)
    return xb if channels_last else xb.contiguous()


def to_layout(xb: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``xb`` in channels-last or contiguous memory format (a no-op when it already is)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return xb.contiguous(memory_format=fmt)


def unpack_split(split, what: str, allow_ids: bool = False):
    """``(x, y[, ids])`` of one split checked and held as fit holds it: ``(uint8 NHWC, int64 labels, ids)``."""
    if split is None:
        return None, None, None
    if not isinstance(split, (tuple, list)) or len(split) not in ((2, 3) if allow_ids else (2,)):
        raise ValueError(f"{what} must be a tuple (x, y){' or (x, y, ids)' if allow_ids else ''}")
    x = as_nhwc_uint8(split[0], what)
    y = torch.as_tensor(np.asarray(split[1]), dtype=torch.long).reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"{what}: {x.shape[0]} images but {y.shape[0]} labels")
    if y.numel() and int(y.min()) < 0:
        raise ValueError(f"{what}: labels must be >= 0")
    ids = list(split[2]) if len(split) == 3 else None
    if ids is not None and len(ids) != x.shape[0]:
        raise ValueError(f"{what}: {x.shape[0]} images but {len(ids)} ids")
    return x, y, ids



def batch_bounds(n: int, batch_size: int) -> List[tuple]:
    """Batch bounds; a trailing batch of a single sample is dropped (BatchNorm cannot train on
    one sample, and the sample is seen in other epochs through the shuffle)."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds.pop()
    return bounds



def batches(x: torch.Tensor, y: torch.Tensor, perm: torch.Tensor, batch_size: int, *, augment, normalizer,
            generator: torch.Generator, channels_last: bool = True) -> Iterator[tuple]:
    """One epoch of training batches: ``(float32 NCHW batch, int64 labels, (start, end))`` per batch.

    ``x`` uint8 NHWC and ``y`` labels on the training device (:func:`unpack_split`), ``perm`` the
    epoch's permutation; each batch is gathered (:func:`take`), viewed as NCHW, then augmented
    with ``augment`` (parameters drawn from ``generator``) and normalised in the same pass, or
    only normalised when the preset is the identity. Bounds from :func:`batch_bounds`.
    """
    mean, std = normalizer.mean, normalizer.std
    for s, e in batch_bounds(x.shape[0], batch_size):
        idx = perm[s:e]
        xb = nchw(take(x, idx), channels_last)
        yb = y.index_select(0, idx)
        if augment.identity:
            xb = normalizer.from_uint8(xb)
        else:
            xb = augment(xb, generator=generator, mean=mean, std=std)
        yield to_layout(xb, channels_last), yb, (s, e)
