"""THE evaluation loop: a model over uint8 images in eval-mode batches, without gradients. Fit's
validation and test pass, :func:`predict_proba` and feature extraction all run it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from ..transforms.normalize import Normalizer
from .batching import as_nhwc_uint8, nchw, to_layout
from .losses import make_loss
from .setup import autocast, model_norm_stats, resolve_device, use_amp


@dataclass
class Evaluation:
    """What :func:`evaluate` returns: mean ``loss`` and ``accuracy`` (``None`` without labels / loss)
    and ``outputs`` ``(N, ...)`` float32 on the CPU (``None`` for no images)."""

    loss: Optional[float]
    accuracy: Optional[float]
    outputs: Optional[np.ndarray]


def probabilities(loss_fn=None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The map from a head's outputs to class probabilities: ``loss_fn.probabilities`` when the loss
    has one (e.g. ``bce``'s sigmoids), else ``softmax``."""
    if loss_fn is not None and hasattr(loss_fn, "probabilities"):
        return loss_fn.probabilities
    return lambda logits: torch.softmax(logits, 1)


@torch.no_grad()
def evaluate(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, normalizer: Normalizer,
             device: torch.device, batch_size: int, amp: bool = False, channels_last: bool = True,
             y: Optional[torch.Tensor] = None, loss_fn=None,
             head: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> Evaluation:
    """Run ``forward`` over ``x`` (uint8 NHWC, :func:`~leukcore.engine.batching.as_nhwc_uint8`) in batches.

    Each batch goes to ``device``, is normalised (``normalizer``), laid out (``channels_last``) and
    passed through ``forward`` under bf16 autocast when ``amp``; the outputs are cast to float32 and
    mapped by ``head`` (default: :func:`probabilities` of ``loss_fn``). With labels ``y``, the mean
    loss (batch losses weighted by batch size; needs ``loss_fn``) and the accuracy of the argmax.
    The caller puts the model in eval mode.
    """
    head = head or probabilities(loss_fn)
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    outs = []
    n = x.shape[0]
    for s in range(0, n, batch_size):
        xb = nchw(x[s : s + batch_size].to(device, non_blocking=True), channels_last)
        xb = to_layout(normalizer.from_uint8(xb), channels_last)
        with autocast(device, amp):
            z = forward(xb)
        z = z.float()
        p = head(z)
        if y is not None:
            yb = y[s : s + batch_size].to(device, non_blocking=True)
            if loss_fn is not None:
                loss_sum += loss_fn(z, yb).double() * yb.shape[0]
            correct += (p.argmax(1) == yb).sum()
        outs.append(p.float().cpu())
    outputs = torch.cat(outs).numpy() if outs else None
    if y is None:
        return Evaluation(None, None, outputs)
    stats = torch.stack([loss_sum, correct.double()]).tolist()
    return Evaluation(stats[0] / max(n, 1) if loss_fn is not None else None, stats[1] / max(n, 1), outputs)


def predict_proba(
    model: nn.Module,
    x_uint8,
    *,
    batch_size: int = 64,
    device: str = "auto",
    loss=None,
    amp: str = "auto",
    channels_last: bool = True,
) -> np.ndarray:
    """Class probabilities ``(N, C)`` (float64) of ``model`` on uint8 images, eval mode.

    ``x_uint8``: numpy NHWC or torch NCHW uint8. Inputs are normalised with the model's
    mean / std (:func:`~leukcore.engine.setup.model_norm_stats`). ``loss``: a loss name or module whose
    ``probabilities(logits)`` maps the head's outputs to probabilities (e.g. ``bce``'s
    sigmoids); default ``softmax``. ``amp="auto"`` runs bf16 autocast on CUDA (outputs cast to
    float32 before the probabilities); ``channels_last`` as in :class:`~leukcore.engine.TrainConfig`.
    The model is moved to ``device`` (and memory format) and left in eval mode.
    """
    dev = resolve_device(device)
    x = as_nhwc_uint8(x_uint8, "x")
    if isinstance(loss, str):
        loss = make_loss(loss)
    model.to(dev)
    model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    model.eval()
    ev = evaluate(model, x, normalizer=Normalizer(*model_norm_stats(model)), device=dev, batch_size=batch_size,
                  amp=use_amp(amp, dev), channels_last=channels_last, head=probabilities(loss))
    if ev.outputs is None:
        return np.zeros((0, 0))
    return ev.outputs.astype(np.float64)
