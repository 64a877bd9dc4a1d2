"""The training engine: one loop for every CNN of the study, in the order a run uses it.

- :mod:`.config`      :class:`TrainConfig` (one set of defaults; ``from_protocol``), :class:`FitResult`
- :mod:`.setup`       device, normalisation statistics, optimiser, loss, AMP, threads, determinism
- :mod:`.batching`    how a split is held and cut into (augmented, normalised) batches
- :mod:`.loop`        :func:`train_one_epoch` and :func:`fit`
- :mod:`.evaluation`  THE evaluation loop (validation, test, :func:`predict_proba`, features)
- :mod:`.checkpoint`  atomic checkpoints and resume
- :mod:`.losses`      the papers' losses (public face :mod:`leukcore.losses`)
- :mod:`.features`    frozen-backbone features and the classical classifiers

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
                    resolve_device, runtime, use_amp)

__all__ = [
    "AMP_MODES", "CHECKPOINT_FORMAT", "CHECKPOINT_NAME", "CLASSIFIER_PARAMS", "COMPILE_MODES", "DEVICES", "Evaluation",
    "FitResult", "Normalizer", "OPTIMIZERS", "SCHEDULERS", "TrainConfig", "as_nhwc_uint8", "autocast", "batch_bounds",
    "batches", "check_train_keys", "compiled", "evaluate", "extract_features", "fit", "intra_op_threads", "l2_penalty",
    "l2_term", "list_classifiers", "list_losses", "load_checkpoint", "make_classifier", "make_loss", "make_optimizer",
    "make_train_loss", "model_norm_stats", "nchw", "predict_proba", "probabilities", "resolve_device", "runtime",
    "save_atomic", "take", "to_layout", "train_one_epoch", "unpack_split", "use_amp",
]
