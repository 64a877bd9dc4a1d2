"""The training engine: one loop for every CNN of the study, in the order a run uses it.

- :mod:`.config`      :class:`TrainConfig` (one set of defaults; ``from_protocol``), :class:`FitResult`
- :mod:`.setup`       device, normalisation statistics, optimiser, loss, AMP, threads, determinism
- :mod:`.batching`    how a split is held and cut into (augmented, normalised) batches
- :mod:`.loop`        :func:`train_one_epoch` and :func:`fit`
- :mod:`.evaluation`  THE evaluation loop (validation, test, :func:`predict_proba`, features)
- :mod:`.checkpoint`  atomic checkpoints and resume
- :mod:`.losses`      the papers' losses (public face :mod:`leukcore.losses`)
- :mod:`.features`    frozen-backbone features and the classical classifiers

Each module's docstring says how its part works (the data path, the step, checkpoints, determinism).
"""

from __future__ import annotations

from ..transforms.normalize import Normalizer
from .batching import as_nhwc_uint8, batch_bounds, batches, nchw, take, to_layout, unpack_split
from .checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_NAME, load_checkpoint, save_atomic
from .config import AMP_MODES, COMPILE_MODES, DEVICES, OPTIMIZERS, SCHEDULERS, FitResult, TrainConfig, check_train_keys
from .evaluation import Evaluation, evaluate, predict_proba, probabilities
from .features import CLASSIFIER_PARAMS, extract_features, list_classifiers, make_classifier
from .loop import fit, train_one_epoch
from .losses import l2_penalty, list_losses, make_loss
from .setup import (autocast, compiled, intra_op_threads, l2_term, make_optimizer, make_train_loss, model_norm_stats,
                    resolve_device, runtime, set_threads, use_amp)

__all__ = [
    "AMP_MODES", "CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "CLASSIFIER_PARAMS", "COMPILE_MODES", "DEVICES", "Evaluation",
    "FitResult", "Normalizer", "OPTIMIZERS", "SCHEDULERS", "TrainConfig", "as_nhwc_uint8", "autocast", "batch_bounds",
    "batches", "check_train_keys", "compiled", "evaluate", "extract_features", "fit", "intra_op_threads", "l2_penalty",
    "l2_term", "list_classifiers", "list_losses", "load_checkpoint", "make_classifier", "make_loss", "make_optimizer",
    "make_train_loss", "model_norm_stats", "nchw", "predict_proba", "probabilities", "resolve_device", "runtime",
    "save_atomic", "set_threads", "take", "to_layout", "train_one_epoch", "unpack_split", "use_amp",
]
