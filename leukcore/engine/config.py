"""The training configuration (:class:`TrainConfig`, from a protocol's ``train`` block or by hand) and
what :func:`~leukcore.engine.fit` returns (:class:`FitResult`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..transforms import list_presets, make_augment
from .losses import list_losses

OPTIMIZERS = ("adam", "rmsprop", "sgd")
SCHEDULERS = (None, "cosine")
AMP_MODES = ("auto", "bf16", "off")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(kw_only=True)
class TrainConfig:
    """Training hyper-parameters (keyword-only); :mod:`leukcore.engine` says what they do.

    optimizer ``adam | rmsprop | sgd``; ``lr``; ``epochs``; ``batch_size``; ``weight_decay``
    (optimiser decay); ``l2`` (loss-side ``l2 * sum ||W||^2``); ``loss`` name and
    ``loss_kwargs``; ``class_weights`` (one per class, passed to the loss as ``weight``);
    ``augment`` preset name and ``augment_kwargs`` overrides; ``optimizer_kwargs``;
    ``scheduler`` ``None | "cosine"``; ``device`` ``auto | cpu | cuda`` (``cuda:N`` accepted);
    ``amp`` ``auto | bf16 | off`` (``auto``: bf16 autocast on CUDA, fp32 on CPU); ``compile`` (``torch.compile`` the model; ``True`` in
    torch's default mode, or a mode name such as ``"reduce-overhead"``, which adds CUDA graphs); ``channels_last`` (model and batches in
    channels-last memory format, on the CPU too: faster there as well, see the benchmark records); ``seed``; ``deterministic``;
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

