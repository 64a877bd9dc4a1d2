"""One training loop for every CNN of the study: :func:`fit`, with checkpoint / resume.

Data path. ``train`` / ``val`` / ``test`` are ``(x, y)`` (``test`` may be ``(x, y, ids)``) with
``x`` uint8, either a numpy NHWC array ``(N, H, W, 3)`` (as :func:`leukcore.data.load_images`
returns) or a torch NCHW tensor ``(N, 3, H, W)``, and ``y`` integer labels. The whole split is
held as one uint8 tensor in NHWC storage (on the GPU when training there); each epoch a seeded
``torch.Generator`` draws a permutation, each batch is an index-select of that tensor (viewed
as NCHW in channels-last memory format, no copy), then the
paper's augmentation preset (:mod:`leukcore.augment`; on the CPU its OpenCV backend, uint8
``warpAffine`` + ``transform`` per image, on a GPU its torch backend, one ``grid_sample`` per
batch) and the normalisation with the model's mean / std, ``x_n = (x / 255 - mean) / std``
(:func:`leukcore.augment.uint8_to_normalized`). No ``DataLoader``, no per-sample decode.

Step. ``loss = L(z, y) + l2_term`` with ``L`` from :func:`leukcore.losses.make_loss` (class
weights passed as ``weight``) and ``l2_term = l2 * sum ||W||^2`` (Keras ``kernel_regularizer``
semantics: :func:`leukcore.losses.l2_penalty`, or ``model.l2_params()`` when the model names
the regularised weights, as XIncept does); ``weight_decay`` is the optimiser's own (coupled)
decay. The logits are cast to float32 before the loss. Model and batches are in channels-last
memory format (``channels_last=True``, CPU and CUDA: oneDNN and cuDNN both run their fastest
convolutions on NHWC; on this project's CPU a training step of alnet / dscnet at 224 was
1.35-1.4x faster than NCHW). On CUDA the forward pass runs under bf16 autocast
(``amp="auto"``); on the CPU everything is fp32. Adam is torch's fused implementation on both.
Per-step loss / accuracy are accumulated on the device and synchronised once per epoch.

Optimisers (``optimizer_kwargs`` override): ``adam`` (betas 0.9 / 0.999, eps 1e-7, the Keras
defaults), ``rmsprop`` (``alpha = rho = 0.9``, eps 1e-7, the Keras defaults; torch's own are 0.99
/ 1e-8; where eps enters the update can differ between libraries, immaterial at 1e-7), ``sgd``
(momentum 0, Keras' default). Scheduler: none, or ``cosine`` (``CosineAnnealingLR`` over
``epochs``, stepped once per epoch).

Checkpoints. At the end of every epoch (after validation) ``checkpoint_dir/last.pt`` is written
atomically (temporary file, fsync, ``os.replace``) with the model, optimiser and scheduler
states, the number of completed epochs, the history, the best-epoch bookkeeping, the config and
the Python / NumPy / torch (CPU and CUDA) RNG states plus the shuffle and augmentation
generator states, all as tensors or plain types so that it loads with
``torch.load(..., weights_only=True)``. ``resume=True`` continues from it; on the CPU the
resumed run ends with weights bit-identical to an uninterrupted run (a run killed mid-epoch
redoes that epoch from the previous checkpoint, with the same shuffle, augmentation and dropout
draws). A checkpoint written with
a different config (other than ``epochs``, ``progress``, ``val_every``, ``num_threads``) is
refused.

Determinism. :func:`fit` seeds ``random``, NumPy and torch with ``config.seed`` (the shuffle
generator with ``seed``, the augmentation generator with ``seed + 1``) and, when
``config.deterministic``, turns on ``torch.use_deterministic_algorithms(True, warn_only=True)``
and cuDNN's deterministic mode for its own duration only (the previous settings are restored).
Model initialisation happens before :func:`fit`: seed it yourself. On the CPU, same seed and
same thread count give identical weights; on CUDA some kernels (some convolution backward
algorithms, atomics in index / scatter ops) stay non-deterministic even so (``warn_only``
warns instead of failing).

Reported numbers: ``train_loss`` is the mean data loss over the epoch's training samples
(without the L2 term, which is ``train_l2``, its mean over steps), ``train_accuracy`` the
accuracy of the training-mode predictions on the augmented batches (as Keras reports them);
``val_loss`` / ``val_accuracy`` are computed in eval mode without augmentation (``None`` in
epochs skipped by ``val_every``). ``best_epoch`` is the (1-based) epoch with the lowest
``val_loss`` (the last epoch without validation data). ``images_per_s`` counts training
images over the time of the training steps only (no validation, no checkpointing).
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .transforms import list_presets, make_augment, uint8_to_normalized
from .losses import l2_penalty, list_losses, make_loss

__all__ = [
    "TrainConfig",
    "FitResult",
    "fit",
    "predict_proba",
    "resolve_device",
    "model_norm_stats",
    "load_checkpoint",
    "OPTIMIZERS",
]

OPTIMIZERS = ("adam", "rmsprop", "sgd")
SCHEDULERS = (None, "cosine")
AMP_MODES = ("auto", "bf16", "off")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
DEVICES = ("auto", "cpu", "cuda")
CHECKPOINT_NAME = "last.pt"
_CHECKPOINT_FORMAT = "leukcore.train/1"
#: config fields that may change between an interrupted run and its resumption
_RESUME_MUTABLE = {"epochs", "progress", "val_every", "num_threads"}


@dataclass(kw_only=True)
class TrainConfig:
    """Training hyper-parameters (keyword-only). See the module docstring for semantics.

    optimizer ``adam | rmsprop | sgd``; ``lr``; ``epochs``; ``batch_size``; ``weight_decay``
    (optimiser decay); ``l2`` (loss-side ``l2 * sum ||W||^2``); ``loss`` name and
    ``loss_kwargs``; ``class_weights`` (one per class, passed to the loss as ``weight``);
    ``augment`` preset name and ``augment_kwargs`` overrides; ``optimizer_kwargs``;
    ``scheduler`` ``None | "cosine"``; ``device`` ``auto | cpu | cuda`` (``cuda:N`` accepted);
    ``amp`` ``auto | bf16 | off`` (``auto``: bf16 autocast on CUDA, fp32 on CPU); ``compile`` (``torch.compile`` the model; ``True`` in
    torch's default mode, or a mode name such as ``"reduce-overhead"``, which adds CUDA graphs); ``channels_last`` (model and batches in
    channels-last memory format, on the CPU too: measured 1.35-1.4x faster training steps for
    alnet and dscnet at 224 on this project's 2-core CPU); ``seed``; ``deterministic``;
    ``num_threads`` (torch intra-op threads during fit; ``None`` leaves them); ``progress``
    (tqdm bar per epoch); ``val_every`` (validate every k epochs and at the last);
    ``eval_batch_size`` (default ``2 * batch_size``); ``restore_best`` (predict the test set
    with the weights of ``best_epoch`` rather than the last ones).
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    epochs: int = 10
    batch_size: int = 32
    weight_decay: float = 0.0
    l2: float = 0.0
    loss: str = "sparse_ce"
    loss_kwargs: Dict[str, Any] = field(default_factory=dict)
    class_weights: Optional[Sequence[float]] = None
    augment: str = "none"
    augment_kwargs: Dict[str, Any] = field(default_factory=dict)
    optimizer_kwargs: Dict[str, Any] = field(default_factory=dict)
    scheduler: Optional[str] = None
    device: str = "auto"
    amp: str = "auto"
    compile: bool | str = False
    channels_last: bool = True
    seed: int = 0
    deterministic: bool = True
    num_threads: Optional[int] = None
    progress: bool = True
    val_every: int = 1
    eval_batch_size: Optional[int] = None
    restore_best: bool = False

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; valid: {list(OPTIMIZERS)}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {self.scheduler!r}; valid: {list(SCHEDULERS)}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"unknown amp mode {self.amp!r}; valid: {list(AMP_MODES)}")
        if not (self.device in DEVICES or str(self.device).startswith("cuda:")):
            raise ValueError(f"unknown device {self.device!r}; valid: {list(DEVICES)} or 'cuda:N'")
        if isinstance(self.compile, str) and self.compile not in COMPILE_MODES:
            raise ValueError(f"unknown compile mode {self.compile!r}; valid: True, False or one of {list(COMPILE_MODES)}")
        if self.loss not in list_losses():
            raise ValueError(f"unknown loss {self.loss!r}; valid: {list_losses()}")
        if self.augment not in list_presets():
            raise ValueError(f"unknown augmentation preset {self.augment!r}; valid: {list_presets()}")
        for name in ("epochs", "batch_size", "val_every"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < (0 if name == "epochs" else 1):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not (self.lr > 0):
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.l2 < 0 or self.weight_decay < 0:
            raise ValueError("l2 and weight_decay must be >= 0")
        if self.class_weights is not None:
            self.class_weights = [float(w) for w in self.class_weights]
        make_augment(self.augment, **self.augment_kwargs)  # validates the overrides

    #: Fields set by the caller at run time, never by a protocol's ``train`` block.
    RUNTIME_FIELDS = ("seed", "device", "progress", "num_threads")

    @classmethod
    def protocol_keys(cls) -> list[str]:
        """The keys a protocol's ``train`` block may set (every field but the runtime ones)."""
        return [f.name for f in fields(cls) if f.name not in cls.RUNTIME_FIELDS]

    @classmethod
    def from_protocol(cls, train: dict, **runtime) -> "TrainConfig":
        """The configuration a protocol's ``train`` block describes, with this class's defaults.

        The one path from a protocol file to :func:`fit`: every key reaches the trainer, and an
        unknown (e.g. misspelt) key is an error naming it and the valid ones.
        """
        check_train_keys(train)
        kw = {k: v for k, v in train.items() if not (k == "augment" and v is None)}
        for f in fields(cls):  # YAML reads 1e-3 as a string: coerce plain numeric fields
            if f.name in kw and f.type in ("float", "int") and kw[f.name] is not None:
                kw[f.name] = float(kw[f.name]) if f.type == "float" else int(kw[f.name])
        return cls(**kw, **runtime)

    def to_dict(self) -> dict:
        """Plain-type copy (JSON / checkpoint safe)."""
        return _plain(asdict(self))



def check_train_keys(train: dict, where: str = "train") -> None:
    """Raise a ValueError naming every key of ``train`` that :class:`TrainConfig` does not know."""
    valid = TrainConfig.protocol_keys()
    unknown = sorted(set(train) - set(valid))
    if unknown:
        raise ValueError(f"unknown training key(s) {', '.join(map(repr, unknown))} in {where}; "
                         f"valid: {', '.join(valid)}")

def _plain(obj):
    """Convert tuples / numpy scalars to JSON-friendly plain types, recursively."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


@dataclass
class FitResult:
    """What :func:`fit` returns.

    ``history``: one dict per epoch (``epoch`` 1-based, ``train_loss``, ``train_accuracy``,
    ``val_loss``, ``val_accuracy``, ``seconds``, ``lr``, and ``train_l2`` when ``l2 > 0``);
    ``test_prob`` ``(N, C)`` float64 probabilities (``None`` without test data), ``test_y``,
    ``test_ids``; ``best_epoch`` (1-based); ``wall_time_s`` of this call; ``device``;
    ``images_per_s`` of the training steps run in this call (``None`` if none ran);
    ``config`` (dict); ``resumed_from_epoch`` (completed epochs found in the checkpoint, 0 for a
    fresh run); ``checkpoint`` path or ``None``.
    """

    history: List[dict]
    test_prob: Optional[np.ndarray]
    test_y: Optional[np.ndarray]
    test_ids: Optional[list]
    best_epoch: Optional[int]
    wall_time_s: float
    device: str
    images_per_s: Optional[float]
    config: dict
    resumed_from_epoch: int = 0
    checkpoint: Optional[str] = None


# ----------------------------------------------------------------------------- helpers
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


class _Normalizer:
    """``x_n = (x / 255 - mean) / std`` of a uint8 batch (:func:`leukcore.augment.uint8_to_normalized`)."""

    def __init__(self, mean, std):
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)

    def from_uint8(self, x: torch.Tensor) -> torch.Tensor:
        return uint8_to_normalized(x, self.mean, self.std)



def _take(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x.index_select(0, idx)``; on the CPU a single-threaded NumPy gather instead: torch's
    parallel copy leaves its OpenMP threads spinning just when the augmentation's own threads
    start (measured: 2130 against 1660 images/s for the dscnet preset at 224 on 2 cores)."""
    if x.device.type != "cpu":
        return x.index_select(0, idx)
    return torch.from_numpy(np.take(x.numpy(), idx.numpy(), axis=0))


def _as_nhwc_uint8(x, what: str) -> torch.Tensor:
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


def _nchw(xb_nhwc: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """An NHWC uint8 batch as NCHW: channels-last strides (free) or contiguous (a copy)."""
    xb = xb_nhwc.permute(0, 3, 1, 2)
    return xb if channels_last else xb.contiguous()


def _to_layout(xb: torch.Tensor, channels_last: bool) -> torch.Tensor:
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return xb.contiguous(memory_format=fmt)


def _unpack(split, what: str, allow_ids: bool = False):
    if split is None:
        return None, None, None
    if not isinstance(split, (tuple, list)) or len(split) not in ((2, 3) if allow_ids else (2,)):
        raise ValueError(f"{what} must be a tuple (x, y){' or (x, y, ids)' if allow_ids else ''}")
    x = _as_nhwc_uint8(split[0], what)
    y = torch.as_tensor(np.asarray(split[1]), dtype=torch.long).reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"{what}: {x.shape[0]} images but {y.shape[0]} labels")
    if y.numel() and int(y.min()) < 0:
        raise ValueError(f"{what}: labels must be >= 0")
    ids = list(split[2]) if len(split) == 3 else None
    if ids is not None and len(ids) != x.shape[0]:
        raise ValueError(f"{what}: {x.shape[0]} images but {len(ids)} ids")
    return x, y, ids


def _use_amp(amp: str, device: torch.device) -> bool:
    if amp == "off":
        return False
    if amp == "bf16":
        return True
    return device.type == "cuda"


def _autocast(device: torch.device, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _batches(n: int, batch_size: int) -> List[tuple]:
    """Batch bounds; a trailing batch of a single sample is dropped (BatchNorm cannot train on
    one sample, and the sample is seen in other epochs through the shuffle)."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds.pop()
    return bounds


def _compiled(model: nn.Module, compile: bool | str):
    """``model`` itself, or ``torch.compile(model)`` (``compile`` a mode name, or ``True``)."""
    if not compile:
        return model
    return torch.compile(model) if compile is True or compile == "default" else torch.compile(model, mode=compile)


def _make_optimizer(cfg: TrainConfig, params, device: torch.device | None = None) -> torch.optim.Optimizer:
    kw = dict(cfg.optimizer_kwargs)
    if cfg.optimizer == "adam":
        kw = {"betas": (0.9, 0.999), "eps": 1e-7, **kw}
        if device is not None and device.type in ("cpu", "cuda") and "foreach" not in kw:
            # the fused update: one pass over each tensor instead of a dozen. On the CPU 7x faster for
            # VGG-16's 134 M parameters (0.10 s against 0.69 s per step on one core); on a GPU one
            # kernel instead of several per parameter, where a small model's step is launch-bound
            kw.setdefault("fused", True)
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)
    if cfg.optimizer == "rmsprop":
        kw = {"alpha": 0.9, "eps": 1e-7, **kw}
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)
    kw = {"momentum": 0.0, **kw}
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **kw)


def _make_loss(cfg: TrainConfig) -> nn.Module:
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


def _l2_term(model: nn.Module, lam: float) -> Optional[torch.Tensor]:
    if not lam:
        return None
    if hasattr(model, "l2_params"):
        ps = list(model.l2_params())
        if not ps:
            return None
        return lam * sum(p.pow(2).sum() for p in ps)
    return l2_penalty(model, lam)


def _rng_state(gens: Dict[str, torch.Generator]) -> dict:
    v, st, gauss = random.getstate()
    kind, key, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "python": {"version": int(v), "state": list(st), "gauss": gauss},
        "numpy": {
            "kind": str(kind),
            "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    for k, g in gens.items():
        state[k] = g.get_state()
    return state


def _set_rng_state(state: dict, gens: Dict[str, torch.Generator]) -> None:
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
    for k, g in gens.items():
        g.set_state(state[k])


def save_atomic(obj, path) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (:func:`leukcore.data.atomic_write_with`)."""
    from .files import atomic_write_with

    atomic_write_with(path, lambda f: torch.save(obj, f))


def load_checkpoint(path) -> dict:
    """Load a :func:`fit` checkpoint with ``torch.load(..., weights_only=True)`` on the CPU.

    A file holding pickled Python objects (which could run code when loaded) is refused with a
    ValueError naming it.
    """
    import pickle

    try:
        ck = torch.load(Path(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        why = next((ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln), "not plain tensors")
        raise ValueError(f"{path}: refused: it holds pickled Python objects that could run code when loaded "
                         f"({why[:200]}); delete it and train again (resume=False or another checkpoint_dir)") from None
    if not isinstance(ck, dict) or ck.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a leukcore training checkpoint ({_CHECKPOINT_FORMAT})")
    return ck


def _cpu_state(model: nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


@contextlib.contextmanager
def intra_op_threads(n: Optional[int]):
    """torch's intra-op threads and OpenCV's threads set to ``n`` for a block, then restored
    (``None`` or 0: unchanged). The one place the study sets thread counts."""
    import cv2

    prev = torch.get_num_threads(), cv2.getNumThreads()
    if n:
        if int(n) != prev[0]:
            torch.set_num_threads(int(n))
        cv2.setNumThreads(int(n))
    try:
        yield
    finally:
        if torch.get_num_threads() != prev[0]:
            torch.set_num_threads(prev[0])
        cv2.setNumThreads(prev[1])


@contextlib.contextmanager
def _runtime(cfg: TrainConfig, device: torch.device):
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


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=True, file=sys.stderr, dynamic_ncols=True)


@torch.no_grad()
def _evaluate(model, fwd, x, y, loss_fn, norm, device, amp, channels_last, batch_size):
    """Mean loss (batch losses weighted by batch size), accuracy and probabilities, eval mode."""
    model.eval()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    probs = []
    n = x.shape[0]
    for s in range(0, n, batch_size):
        xb = _nchw(x[s : s + batch_size].to(device, non_blocking=True), channels_last)
        yb = y[s : s + batch_size].to(device, non_blocking=True)
        xb = _to_layout(norm.from_uint8(xb), channels_last)
        with _autocast(device, amp):
            logits = fwd(xb)
        logits = logits.float()
        if yb is not None and loss_fn is not None:
            loss_sum += loss_fn(logits, yb).double() * yb.shape[0]
        p = loss_fn.probabilities(logits) if hasattr(loss_fn, "probabilities") else torch.softmax(logits, 1)
        correct += (p.argmax(1) == yb).sum()
        probs.append(p.float().cpu())
    stats = torch.stack([loss_sum, correct.double()]).tolist()
    return stats[0] / max(n, 1), stats[1] / max(n, 1), torch.cat(probs).numpy() if probs else None


# ----------------------------------------------------------------------------- fit
def fit(
    model: nn.Module,
    train,
    val=None,
    test=None,
    *,
    config: TrainConfig,
    checkpoint_dir=None,
    resume: bool = False,
    callbacks: Optional[Sequence[Callable]] = None,
) -> FitResult:
    """Train ``model`` on ``train`` (``(x, y)``), validate on ``val``, predict ``test``.

    See the module docstring for the data path, the step, checkpoints and determinism.
    ``checkpoint_dir``: write ``last.pt`` there after every epoch. ``resume``: continue from
    ``checkpoint_dir/last.pt`` when it exists (a fresh run otherwise). ``callbacks``: callables
    ``cb(epoch, record, model)`` called after each epoch's checkpoint; a callback returning
    ``True`` stops training (an exception propagates, the checkpoint stays).

    The model is trained in place and left on the training device in eval mode.
    Returns a :class:`FitResult`.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError("config must be a leukcore.train.TrainConfig")
    cfg = config
    t_call = time.perf_counter()
    device = resolve_device(cfg.device)
    xtr, ytr, _ = _unpack(train, "train")
    xva, yva, _ = _unpack(val, "val")
    xte, yte, ids = _unpack(test, "test", allow_ids=True)
    if xtr.shape[0] < 1:
        raise ValueError("train: no images")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir")
    ck_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    amp = _use_amp(cfg.amp, device)
    channels_last = cfg.channels_last
    eval_bs = cfg.eval_batch_size or 2 * cfg.batch_size

    with _runtime(cfg, device):
        random.seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        torch.manual_seed(cfg.seed)
        gens = {
            "shuffle": torch.Generator().manual_seed(cfg.seed),
            "augment": torch.Generator().manual_seed(cfg.seed + 1),
        }
        model.to(device)
        model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        fwd = _compiled(model, cfg.compile)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("model has no trainable parameters")
        opt = _make_optimizer(cfg, params, device)
        sched = (
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
            if cfg.scheduler == "cosine"
            else None
        )
        loss_fn = _make_loss(cfg).to(device)
        aug = make_augment(cfg.augment, **cfg.augment_kwargs)
        mean, std = model_norm_stats(model)
        norm = _Normalizer(mean, std)

        history: List[dict] = []
        start_epoch = 0
        best = {"epoch": None, "val_loss": math.inf, "state": None}
        if resume and ck_path is not None and ck_path.exists():
            ck = load_checkpoint(ck_path)
            old = {k: v for k, v in ck["config"].items() if k not in _RESUME_MUTABLE}
            new = {k: v for k, v in cfg.to_dict().items() if k not in _RESUME_MUTABLE}
            if old != new:
                diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                raise ValueError(
                    f"{ck_path}: checkpoint was written with a different config ({diff}); "
                    "use another checkpoint_dir or resume=False"
                )
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            if sched is not None and ck.get("scheduler") is not None:
                sched.load_state_dict(ck["scheduler"])
            history = list(ck["history"])
            start_epoch = int(ck["epoch"])
            best = {
                "epoch": ck["best_epoch"],
                "val_loss": float(ck["best_val_loss"]),
                "state": ck.get("best_model"),
            }
            _set_rng_state(ck["rng"], gens)

        # data on the training device (one uint8 tensor per split)
        xtr_d = xtr.to(device)
        ytr_d = ytr.to(device)
        n = xtr.shape[0]
        bounds = _batches(n, cfg.batch_size)
        n_per_epoch = bounds[-1][1] - bounds[0][0] if bounds else 0
        train_time = 0.0
        train_images = 0

        for epoch in range(start_epoch, cfg.epochs):
            t_ep = time.perf_counter()
            model.train()
            perm = torch.randperm(n, generator=gens["shuffle"]).to(device)
            loss_sum = torch.zeros((), device=device, dtype=torch.float64)
            l2_sum = torch.zeros((), device=device, dtype=torch.float64)
            correct = torch.zeros((), device=device, dtype=torch.long)
            bar = _progress(len(bounds), f"epoch {epoch + 1}/{cfg.epochs}", cfg.progress)
            for s, e in bounds:
                idx = perm[s:e]
                xb = _nchw(_take(xtr_d, idx), channels_last)
                yb = ytr_d.index_select(0, idx)
                if aug.identity:
                    xb = norm.from_uint8(xb)
                else:
                    xb = aug(xb, generator=gens["augment"], mean=mean, std=std)
                xb = _to_layout(xb, channels_last)
                with _autocast(device, amp):
                    logits = fwd(xb)
                logits = logits.float()
                data_loss = loss_fn(logits, yb)
                pen = _l2_term(model, cfg.l2)
                loss = data_loss if pen is None else data_loss + pen
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    loss_sum += data_loss.detach().double() * (e - s)
                    if pen is not None:
                        l2_sum += pen.detach().double()
                    if logits.ndim == 2 and logits.shape[1] > 1:
                        pred = logits.argmax(1)
                    else:
                        pred = (logits.reshape(-1) > 0).long()
                    correct += (pred == yb).sum()
                bar.update(1)
            tr_loss, tr_l2, tr_correct = torch.stack([loss_sum, l2_sum, correct.double()]).tolist()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t_train = time.perf_counter() - t_ep
            train_time += t_train
            train_images += n_per_epoch
            lr_now = float(opt.param_groups[0]["lr"])
            if sched is not None:
                sched.step()
            rec = {
                "epoch": epoch + 1,
                "train_loss": tr_loss / n_per_epoch,
                "train_accuracy": tr_correct / n_per_epoch,
                "val_loss": None,
                "val_accuracy": None,
            }
            if cfg.l2:
                rec["train_l2"] = tr_l2 / len(bounds)
            last = epoch + 1 == cfg.epochs
            if xva is not None and ((epoch + 1) % cfg.val_every == 0 or last):
                vl, va, _ = _evaluate(model, fwd, xva, yva, loss_fn, norm, device, amp, channels_last, eval_bs)
                rec["val_loss"], rec["val_accuracy"] = vl, va
                if vl < best["val_loss"]:
                    best["epoch"], best["val_loss"] = epoch + 1, vl
                    if cfg.restore_best:
                        best["state"] = _cpu_state(model)
            rec["lr"] = lr_now
            rec["seconds"] = time.perf_counter() - t_ep
            history.append(rec)
            post = {"loss": f"{rec['train_loss']:.4f}", "acc": f"{rec['train_accuracy']:.3f}"}
            if rec["val_loss"] is not None:
                post.update(val_loss=f"{rec['val_loss']:.4f}", val_acc=f"{rec['val_accuracy']:.3f}")
            bar.set_postfix(post, refresh=True)
            bar.close()
            if ck_path is not None:
                save_atomic(
                    {
                        "format": _CHECKPOINT_FORMAT,
                        "epoch": epoch + 1,
                        "model": _cpu_state(model),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict() if sched is not None else None,
                        "history": history,
                        "best_epoch": best["epoch"],
                        "best_val_loss": best["val_loss"],
                        "best_model": best["state"],
                        "config": cfg.to_dict(),
                        "rng": _rng_state(gens),
                        "torch_version": str(torch.__version__),
                    },
                    ck_path,
                )
            stop = False
            for cb in callbacks or ():
                stop = bool(cb(epoch + 1, rec, model)) or stop
            if stop:
                break

        best_epoch = best["epoch"] if best["epoch"] is not None else (len(history) or None)
        if cfg.restore_best and best["state"] is not None:
            model.load_state_dict(best["state"])
        test_prob = None
        if xte is not None:
            _, _, test_prob = _evaluate(model, fwd, xte, yte, loss_fn, norm, device, amp, channels_last, eval_bs)
            test_prob = test_prob.astype(np.float64)
        model.eval()

    return FitResult(
        history=history,
        test_prob=test_prob,
        test_y=None if yte is None else yte.numpy(),
        test_ids=ids,
        best_epoch=best_epoch,
        wall_time_s=time.perf_counter() - t_call,
        device=str(device),
        images_per_s=(train_images / train_time) if train_time > 0 else None,
        config=cfg.to_dict(),
        resumed_from_epoch=start_epoch,
        checkpoint=None if ck_path is None else str(ck_path),
    )


@torch.no_grad()
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
    mean / std (:func:`model_norm_stats`). ``loss``: a loss name or module whose
    ``probabilities(logits)`` maps the head's outputs to probabilities (e.g. ``bce``'s
    sigmoids); default ``softmax``. ``amp="auto"`` runs bf16 autocast on CUDA (outputs cast to
    float32 before the probabilities); ``channels_last`` as in :class:`TrainConfig`. The model
    is moved to ``device`` (and memory format) and left in eval mode.
    """
    dev = resolve_device(device)
    x = _as_nhwc_uint8(x_uint8, "x")
    if isinstance(loss, str):
        loss = make_loss(loss)
    model.to(dev)
    model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    norm = _Normalizer(*model_norm_stats(model))
    use_amp = _use_amp(amp, dev)
    model.eval()
    out = []
    for s in range(0, x.shape[0], batch_size):
        xb = _nchw(x[s : s + batch_size].to(dev, non_blocking=True), channels_last)
        xb = _to_layout(norm.from_uint8(xb), channels_last)
        with _autocast(dev, use_amp):
            logits = model(xb)
        logits = logits.float()
        p = loss.probabilities(logits) if loss is not None else torch.softmax(logits, 1)
        out.append(p.cpu())
    if not out:
        return np.zeros((0, 0))
    return torch.cat(out).double().numpy()
