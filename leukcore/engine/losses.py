"""Classification losses compared by the reproduced papers, and DSCNet's L2 penalty.

Every loss is an ``nn.Module`` called as ``loss(logits, target)`` with ``logits`` of shape
``(N, C)`` (``(N, 1)`` or ``(N,)`` for a one-logit ``bce`` head) and ``target`` either integer
labels ``(N,)`` or a target distribution ``(N, C)``; each module encodes the target itself, as
the papers describe (``mce`` / ``kl`` one-hot encode labels, ``sparse_ce`` takes labels).
``loss.probabilities(logits)`` turns the head's outputs into ``(N, C)`` class probabilities.

Notation: ``z`` logits, ``p = softmax(z)``, ``y`` the target distribution (one-hot for labels),
``w`` optional class weights. With one-hot targets ``KL(y || p) = CE(y, p) - H(y) = CE(y, p)``
because ``H(y) = 0``: ``mce``, ``sparse_ce`` and ``kl`` are the same objective (DSCNet's
MCELoss, SMLoss, KLLoss), identical in value and in gradient.

Class weighting (CE family): sample ``i`` gets weight ``s_i = sum_c w_c y_ic`` (``= w_{y_i}``
for labels) and the batch loss is the weighted mean ``sum_i s_i l_i / sum_i s_i``, which is
``F.cross_entropy(..., weight=w)`` for integer labels. Without weights it is the plain mean.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CrossEntropyLoss",
    "SparseCrossEntropyLoss",
    "KLDivergenceLoss",
    "FocalLoss",
    "BinaryCrossEntropyLoss",
    "make_loss",
    "list_losses",
    "l2_penalty",
]


def _check_logits(logits: torch.Tensor) -> None:
    if logits.ndim != 2:
        raise ValueError(f"expected logits of shape (N, C), got {tuple(logits.shape)}")


def _as_labels(target: torch.Tensor) -> torch.Tensor:
    """``(N,)`` integer-valued target -> long labels."""
    if torch.is_floating_point(target):
        if not torch.equal(target, target.round()):
            raise ValueError("a 1-D target must hold integer class labels")
    return target.long()


def _as_distribution(target: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Target as an ``(N, C)`` distribution: labels are one-hot encoded, ``(N, C)`` kept."""
    n, c = logits.shape
    if target.ndim == 1:
        labels = _as_labels(target)
        return F.one_hot(labels, c).to(logits.dtype)
    if target.shape != (n, c):
        raise ValueError(f"target shape {tuple(target.shape)} does not match logits {(n, c)}")
    return target.to(logits.dtype)


class _SoftmaxLoss(nn.Module):
    """Shared parts of the softmax (CE-family) losses: class weights, probabilities."""

    name = ""

    def __init__(self, weight: Sequence[float] | torch.Tensor | None = None) -> None:
        super().__init__()
        w = None if weight is None else torch.as_tensor(weight, dtype=torch.float32)
        if w is not None and w.ndim != 1:
            raise ValueError("class weight must be a 1-D sequence, one value per class")
        self.register_buffer("weight", w, persistent=False)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """``p = softmax(z)`` over classes, shape ``(N, C)``."""
        return torch.softmax(logits, dim=1)

    def _reduce(self, per_sample: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Plain batch mean, or ``sum_i s_i l_i / sum_i s_i`` with ``s_i = w . y_i``."""
        if self.weight is None:
            return per_sample.mean()
        s = y @ self.weight.to(dtype=y.dtype, device=y.device)
        return (s * per_sample).sum() / s.sum()

    def extra_repr(self) -> str:
        return "" if self.weight is None else f"weight={self.weight.tolist()}"


class CrossEntropyLoss(_SoftmaxLoss):
    """``mce``: categorical cross-entropy on one-hot (or soft) targets (DSCNet's MCELoss).

    ``l_i = - sum_c y_ic log p_ic``; integer labels are one-hot encoded first; batch mean
    (or class-weighted mean, see the module docstring).
    """

    name = "mce"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_logits(logits)
        y = _as_distribution(target, logits)
        per_sample = -(y * F.log_softmax(logits, dim=1)).sum(dim=1)
        return self._reduce(per_sample, y)


class SparseCrossEntropyLoss(_SoftmaxLoss):
    """``sparse_ce``: cross-entropy on integer labels (DSCNet's SMLoss).

    ``l_i = - log p_{i, y_i}``; batch mean (or ``F.cross_entropy``'s weighted mean). An
    ``(N, C)`` target is accepted only when it is one-hot (it is converted by argmax).
    """

    name = "sparse_ce"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_logits(logits)
        if target.ndim == 2:
            onehot = (target == 0) | (target == 1)
            if target.shape != logits.shape or not (onehot.all() and (target.sum(1) == 1).all()):
                raise ValueError("sparse_ce needs integer labels (or exactly one-hot rows)")
            target = target.argmax(dim=1)
        labels = _as_labels(target)
        w = None if self.weight is None else self.weight.to(logits.dtype)
        return F.cross_entropy(logits, labels, weight=w)


class KLDivergenceLoss(_SoftmaxLoss):
    """``kl``: Kullback-Leibler divergence ``KL(y || p)`` (DSCNet's KLLoss).

    ``l_i = sum_c y_ic (log y_ic - log p_ic)`` with ``0 log 0 = 0``; integer labels are one-hot
    encoded; batch mean (Algorithm 2: ``L = 1/N sum_i KL(Y_i, Y^_i)``). Equals ``mce`` minus
    the target entropy, hence equals ``mce`` for one-hot targets.
    """

    name = "kl"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_logits(logits)
        y = _as_distribution(target, logits)
        per_sample = (torch.xlogy(y, y) - y * F.log_softmax(logits, dim=1)).sum(dim=1)
        return self._reduce(per_sample, y)


class FocalLoss(_SoftmaxLoss):
    """``focal``: softmax focal loss (Lin et al. 2017, "Focal loss for dense object detection").

    ``l_i = - sum_c y_ic (1 - p_ic)^gamma log p_ic``; ``gamma = 0`` gives cross-entropy.
    Class weights play the role of the paper's ``alpha_t``. Default ``gamma = 2``.
    """

    name = "focal"

    def __init__(
        self, gamma: float = 2.0, weight: Sequence[float] | torch.Tensor | None = None
    ) -> None:
        super().__init__(weight)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_logits(logits)
        y = _as_distribution(target, logits)
        logp = F.log_softmax(logits, dim=1)
        modulator = (1.0 - logp.exp()).clamp_min(0.0).pow(self.gamma)
        per_sample = -(y * modulator * logp).sum(dim=1)
        return self._reduce(per_sample, y)

    def extra_repr(self) -> str:
        rest = super().extra_repr()
        return f"gamma={self.gamma}" + (f", {rest}" if rest else "")


class BinaryCrossEntropyLoss(nn.Module):
    """``bce``: binary cross-entropy on sigmoid outputs (ALNet's ``Dense(2, sigmoid)``).

    With ``s(z) = 1 / (1 + exp(-z))`` and ``bce(z, t) = -[t log s(z) + (1 - t) log(1 - s(z))]``:

    * two outputs, logits ``(N, 2)``: each output is its own sigmoid, the target is one-hot
      ``t_ic`` (labels are encoded; an ``(N, 2)`` target is used as is) and the loss is the
      mean over outputs and batch, ``1/(2N) sum_i sum_c bce(z_ic, t_ic)`` -- Keras'
      ``binary_crossentropy`` on a ``Dense(2, activation="sigmoid")`` head.
    * one logit, ``(N, 1)`` or ``(N,)``: ``1/N sum_i bce(z_i, t_i)`` with ``t_i`` the label
      (or probability) of class 1; an ``(N, 2)`` target uses its column 1.

    Computed from logits (numerically stable); Keras clips probabilities to
    ``[1e-7, 1 - 1e-7]``, which only matters for saturated outputs.
    """

    name = "bce"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.ndim == 2 and logits.shape[1] == 2:
            t = _as_distribution(target, logits)
            return F.binary_cross_entropy_with_logits(logits, t)
        z = self._one_logit(logits)
        if target.ndim == 2:
            if target.shape[1] == 2:
                target = target[:, 1]
            elif target.shape[1] == 1:
                target = target[:, 0]
            else:
                raise ValueError(f"bad target shape {tuple(target.shape)} for one logit")
        if target.shape != z.shape:
            raise ValueError(f"target shape {tuple(target.shape)} does not match {tuple(z.shape)}")
        return F.binary_cross_entropy_with_logits(z, target.to(z.dtype))

    @staticmethod
    def _one_logit(logits: torch.Tensor) -> torch.Tensor:
        if logits.ndim == 2 and logits.shape[1] == 1:
            return logits[:, 0]
        if logits.ndim == 1:
            return logits
        raise ValueError(f"bce expects logits (N, 2), (N, 1) or (N,), got {tuple(logits.shape)}")

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Two outputs: ``s(z_ic) / sum_c s(z_ic)``; one logit: ``[1 - s(z_i), s(z_i)]``."""
        if logits.ndim == 2 and logits.shape[1] == 2:
            s = torch.sigmoid(logits)
            return s / s.sum(dim=1, keepdim=True)
        p = torch.sigmoid(self._one_logit(logits))
        return torch.stack([1.0 - p, p], dim=1)


_LOSSES: dict[str, type[nn.Module]] = {
    "mce": CrossEntropyLoss,
    "sparse_ce": SparseCrossEntropyLoss,
    "kl": KLDivergenceLoss,
    "focal": FocalLoss,
    "bce": BinaryCrossEntropyLoss,
}


def list_losses() -> list[str]:
    """Names accepted by :func:`make_loss`, sorted."""
    return sorted(_LOSSES)


def make_loss(name: str, **kw) -> nn.Module:
    """Build a loss module by name: ``mce``, ``sparse_ce``, ``kl``, ``focal`` or ``bce``.

    Keyword arguments go to the class: ``weight`` (class weights) for ``mce``, ``sparse_ce``,
    ``kl`` and ``focal``; ``gamma`` for ``focal``. The module is called as
    ``loss(logits, target)`` and has ``probabilities(logits) -> (N, C)``. Unknown names raise
    ``ValueError`` listing the valid ones.
    """
    try:
        cls = _LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; valid: {', '.join(list_losses())}") from None
    return cls(**kw)


def l2_penalty(model: nn.Module, lam: float) -> torch.Tensor:
    """L2 weight penalty ``lam * sum_W ||W||^2`` over convolution and linear weights.

    Keras ``kernel_regularizer=l2(lam)`` semantics on every conv / dense layer: kernel
    weights only -- biases, batch-norm (and other normalisation) parameters and fixed buffers
    are excluded; no factor 1/2. (MATLAB's ``L2Regularization`` adds ``lam/2 * ||w||^2``
    over all weights; to mimic it pass ``lam / 2``.) DSCNet uses ``lam = 0.01``. Add the
    result to the data loss: ``loss(z, y) + l2_penalty(model, lam)``.

    Returns:
        a scalar tensor (differentiable; zero when the model has no such weights).
    """
    kinds = (nn.modules.conv._ConvNd, nn.Linear, nn.Bilinear)
    terms = [
        m.weight.pow(2).sum()
        for m in model.modules()
        if isinstance(m, kinds) and isinstance(getattr(m, "weight", None), torch.Tensor)
    ]
    if not terms:
        p = next(model.parameters(), None)
        return torch.zeros((), device=None if p is None else p.device)
    return lam * sum(terms[1:], terms[0])
