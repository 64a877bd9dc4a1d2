"""What a training run sets up before its first step: device, normalisation statistics, optimiser,
loss, precision (AMP), compilation, threads and determinism.

Step. ``loss = L(z, y) + l2_term`` with ``L`` from :func:`leukcore.losses.make_loss` (class
weights passed as ``weight``) and ``l2_term = l2 * sum ||W||^2`` (Keras ``kernel_regularizer``
semantics: :func:`leukcore.losses.l2_penalty`, or ``model.l2_params()`` when the model names
the regularised weights, as XIncept does); ``weight_decay`` is the optimiser's own (coupled)
decay. The logits are cast to float32 before the loss. Model and batches are in channels-last
memory format (``channels_last=True``, CPU and CUDA: oneDNN and cuDNN both run their fastest
convolutions on NHWC; the benchmark records measure the difference). On CUDA the forward pass runs under bf16 autocast
(``amp="auto"``); on the CPU everything is fp32. Adam is torch's fused implementation on both.
Per-step loss / accuracy are accumulated on the device and synchronised once per epoch.

Optimisers (``optimizer_kwargs`` override): ``adam`` (betas 0.9 / 0.999, eps 1e-7, the Keras
defaults), ``rmsprop`` (``alpha = rho = 0.9``, eps 1e-7, the Keras defaults; torch's own are 0.99
/ 1e-8; where eps enters the update can differ between libraries, immaterial at 1e-7), ``sgd``
(momentum 0, Keras' default). Scheduler: none, or ``cosine`` (``CosineAnnealingLR`` over
``epochs``, stepped once per epoch).
"""
from __future__ import annotations

import contextlib
from typing import Optional

import torch
from torch import nn

from .config import DEVICES, TrainConfig
from .losses import l2_penalty, make_loss


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> ``cuda`` when available else ``cpu``; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available; use 'cpu' or 'auto'")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; valid: {list(DEVICES)}")
    return dev


def model_norm_stats(model: nn.Module):
    """The ``(mean, std)`` (3 floats each, images scaled to [0, 1]) a model expects.

    Looked up as ``model.norm_mean`` / ``model.norm_std``, then in the ``default_cfg`` dict
    (:mod:`leukcore.models` puts its convention there), then timm's ``pretrained_cfg``; a
    model that declares none gets ``mean = 0, std = 1`` (inputs ``x / 255``, Keras'
    ``Rescaling(1/255)``).
    """
    m, s = getattr(model, "norm_mean", None), getattr(model, "norm_std", None)
    if m is not None and s is not None:
        return tuple(float(v) for v in torch.as_tensor(m).flatten()), tuple(
            float(v) for v in torch.as_tensor(s).flatten()
        )
    for cfg_name in ("default_cfg", "pretrained_cfg"):
        cfg = getattr(model, cfg_name, None)
        if isinstance(cfg, dict) and cfg.get("mean") is not None and cfg.get("std") is not None:
            return tuple(float(v) for v in cfg["mean"]), tuple(float(v) for v in cfg["std"])
    return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)



def use_amp(amp: str, device: torch.device) -> bool:
    """Whether to run the forward pass under bf16 autocast: ``auto`` on CUDA only, ``bf16`` always, ``off`` never."""
    if amp == "off":
        return False
    if amp == "bf16":
        return True
    return device.type == "cuda"


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on ``device`` when ``enabled``, else a null context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)



def compiled(model: nn.Module, compile: bool | str):
    """``model`` itself, or ``torch.compile(model)`` (``compile`` a mode name, or ``True``)."""
    if not compile:
        return model
    return torch.compile(model) if compile is True or compile == "default" else torch.compile(model, mode=compile)


def make_optimizer(cfg: TrainConfig, params, device: torch.device | None = None) -> torch.optim.Optimizer:
    """The optimiser of ``cfg`` with Keras' defaults (see :mod:`leukcore.engine`); Adam fused on CPU / CUDA."""
    kw = dict(cfg.optimizer_kwargs)
    if cfg.optimizer == "adam":
        kw = {"betas": (0.9, 0.999), "eps": 1e-7, **kw}
        if device is not None and device.type in ("cpu", "cuda") and "foreach" not in kw:
            # the fused update: one pass over each tensor instead of a dozen (much faster on the CPU for
            # large models); on a GPU one kernel instead of several per parameter
            kw.setdefault("fused", True)
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)
    if cfg.optimizer == "rmsprop":
        kw = {"alpha": 0.9, "eps": 1e-7, **kw}
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)
    kw = {"momentum": 0.0, **kw}
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)


def make_train_loss(cfg: TrainConfig) -> nn.Module:
    """The loss of ``cfg`` with its class weights (``weight``); a loss that takes none is a ValueError."""
    kw = dict(cfg.loss_kwargs)
    if cfg.class_weights is not None:
        kw["weight"] = list(cfg.class_weights)
    try:
        return make_loss(cfg.loss, **kw)
    except TypeError as e:
        raise ValueError(
            f"loss {cfg.loss!r} does not accept {sorted(kw)} ({e}); class weights work with "
            "mce, sparse_ce, kl and focal"
        ) from None


def l2_term(model: nn.Module, lam: float) -> Optional[torch.Tensor]:
    """``lam * sum ||W||^2`` over ``model.l2_params()`` when the model names them, else :func:`l2_penalty`; ``None`` at 0."""
    if not lam:
        return None
    if hasattr(model, "l2_params"):
        ps = list(model.l2_params())
        if not ps:
            return None
        return lam * sum(p.pow(2).sum() for p in ps)
    return l2_penalty(model, lam)



def set_threads(n: Optional[int]) -> None:
    """torch's intra-op threads and OpenCV's threads set to ``n`` (``None`` or 0: unchanged): the one
    place the study sets thread counts (:func:`intra_op_threads` for a block, or a worker process's
    initializer)."""
    if n:
        import cv2

        if int(n) != torch.get_num_threads():
            torch.set_num_threads(int(n))
        cv2.setNumThreads(int(n))


@contextlib.contextmanager
def intra_op_threads(n: Optional[int]):
    """torch's intra-op threads and OpenCV's threads set to ``n`` for a block (:func:`set_threads`),
    then restored (``None`` or 0: unchanged)."""
    import cv2

    prev = torch.get_num_threads(), cv2.getNumThreads()
    set_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != prev[0]:
            torch.set_num_threads(prev[0])
        cv2.setNumThreads(prev[1])


@contextlib.contextmanager
def runtime(cfg: TrainConfig, device: torch.device):
    """Determinism, cuDNN and thread settings for the duration of :func:`fit`, then restored."""
    prev = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    with intra_op_threads(cfg.num_threads):
        try:
            if cfg.deterministic:
                torch.use_deterministic_algorithms(True, warn_only=True)
                torch.backends.cudnn.deterministic = True
                torch.backends.cudnn.benchmark = False
            elif device.type == "cuda":
                torch.backends.cudnn.benchmark = True
            yield
        finally:
            torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
            torch.backends.cudnn.deterministic = prev[2]
            torch.backends.cudnn.benchmark = prev[3]

