"""The training loop: :func:`train_one_epoch` and :func:`fit` (epochs, validation, checkpoints, resume).

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

import math
import random
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..transforms import make_augment
from ..transforms.normalize import Normalizer
from .batching import batch_bounds, batches, unpack_split
from .checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_NAME, RESUME_MUTABLE, cpu_state, load_checkpoint, rng_state, save_atomic, set_rng_state
from .config import FitResult, TrainConfig
from .evaluation import evaluate
from .setup import autocast, compiled, l2_term, make_optimizer, make_train_loss, model_norm_stats, resolve_device, runtime, use_amp


def _progress(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr (disabled unless ``enabled``)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=True, file=sys.stderr, dynamic_ncols=True)


def train_one_epoch(model: nn.Module, forward, x: torch.Tensor, y: torch.Tensor, perm: torch.Tensor, *,
                    optimizer: torch.optim.Optimizer, loss_fn: nn.Module, augment, normalizer: Normalizer,
                    generator: torch.Generator, device: torch.device, amp: bool, channels_last: bool,
                    batch_size: int, l2: float = 0.0, on_step: Optional[Callable[[], None]] = None) -> tuple:
    """One pass over the training split in the order ``perm``: per batch (:func:`~leukcore.engine.batching.batches`)
    the forward pass (bf16 autocast when ``amp``), ``loss = L(z, y) + l2_term``, backward, optimiser step.

    Returns ``(sum of batch data losses x batch size, sum of L2 terms, correct predictions)`` as
    floats, synchronised once at the end of the epoch.
    """
    model.train()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    l2_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for xb, yb, (s, e) in batches(x, y, perm, batch_size, augment=augment, normalizer=normalizer,
                                  generator=generator, channels_last=channels_last):
        with autocast(device, amp):
            logits = forward(xb)
        logits = logits.float()
        data_loss = loss_fn(logits, yb)
        pen = l2_term(model, l2)
        loss = data_loss if pen is None else data_loss + pen
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            loss_sum += data_loss.detach().double() * (e - s)
            if pen is not None:
                l2_sum += pen.detach().double()
            if logits.ndim == 2 and logits.shape[1] > 1:
                pred = logits.argmax(1)
            else:
                pred = (logits.reshape(-1) > 0).long()
            correct += (pred == yb).sum()
        if on_step is not None:
            on_step()
    return tuple(torch.stack([loss_sum, l2_sum, correct.double()]).tolist())


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

    :mod:`leukcore.engine` describes the data path, the step, checkpoints and determinism.
    ``checkpoint_dir``: write ``last.pt`` there after every epoch. ``resume``: continue from
    ``checkpoint_dir/last.pt`` when it exists (a fresh run otherwise). ``callbacks``: callables
    ``cb(epoch, record, model)`` called after each epoch's checkpoint; a callback returning
    ``True`` stops training (an exception propagates, the checkpoint stays).

    The model is trained in place and left on the training device in eval mode.
    Returns a :class:`FitResult`.
    """
    if not isinstance(config, TrainConfig):
        raise ValueError("config must be a leukcore.engine.TrainConfig")
    cfg = config
    t_call = time.perf_counter()
    device = resolve_device(cfg.device)
    xtr, ytr, _ = unpack_split(train, "train")
    xva, yva, _ = unpack_split(val, "val")
    xte, yte, ids = unpack_split(test, "test", allow_ids=True)
    if xtr.shape[0] < 1:
        raise ValueError("train: no images")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir")
    ck_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    amp = use_amp(cfg.amp, device)
    channels_last = cfg.channels_last
    eval_bs = cfg.eval_batch_size or 2 * cfg.batch_size

    with runtime(cfg, device):
        random.seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        torch.manual_seed(cfg.seed)
        gens = {
            "shuffle": torch.Generator().manual_seed(cfg.seed),
            "augment": torch.Generator().manual_seed(cfg.seed + 1),
        }
        model.to(device)
        model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        fwd = compiled(model, cfg.compile)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("model has no trainable parameters")
        opt = make_optimizer(cfg, params, device)
        sched = (
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
            if cfg.scheduler == "cosine"
            else None
        )
        loss_fn = make_train_loss(cfg).to(device)
        aug = make_augment(cfg.augment, **cfg.augment_kwargs)
        mean, std = model_norm_stats(model)
        norm = Normalizer(mean, std)

        history: List[dict] = []
        start_epoch = 0
        best = {"epoch": None, "val_loss": math.inf, "state": None}
        if resume and ck_path is not None and ck_path.exists():
            ck = load_checkpoint(ck_path)
            old = {k: v for k, v in ck["config"].items() if k not in RESUME_MUTABLE}
            new = {k: v for k, v in cfg.to_dict().items() if k not in RESUME_MUTABLE}
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
            set_rng_state(ck["rng"], gens)

        # data on the training device (one uint8 tensor per split)
        xtr_d = xtr.to(device)
        ytr_d = ytr.to(device)
        n = xtr.shape[0]
        bounds = batch_bounds(n, cfg.batch_size)
        n_per_epoch = bounds[-1][1] - bounds[0][0] if bounds else 0
        train_time = 0.0
        train_images = 0

        for epoch in range(start_epoch, cfg.epochs):
            t_ep = time.perf_counter()
            perm = torch.randperm(n, generator=gens["shuffle"]).to(device)
            bar = _progress(len(bounds), f"epoch {epoch + 1}/{cfg.epochs}", cfg.progress)
            tr_loss, tr_l2, tr_correct = train_one_epoch(
                model, fwd, xtr_d, ytr_d, perm, optimizer=opt, loss_fn=loss_fn, augment=aug, normalizer=norm,
                generator=gens["augment"], device=device, amp=amp, channels_last=channels_last,
                batch_size=cfg.batch_size, l2=cfg.l2, on_step=lambda: bar.update(1))
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
                model.eval()
                ev = evaluate(fwd, xva, y=yva, loss_fn=loss_fn, normalizer=norm, device=device, amp=amp,
                              channels_last=channels_last, batch_size=eval_bs)
                vl, va = ev.loss, ev.accuracy
                rec["val_loss"], rec["val_accuracy"] = vl, va
                if vl < best["val_loss"]:
                    best["epoch"], best["val_loss"] = epoch + 1, vl
                    if cfg.restore_best:
                        best["state"] = cpu_state(model)
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
                        "format": CHECKPOINT_FORMAT,
                        "epoch": epoch + 1,
                        "model": cpu_state(model),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict() if sched is not None else None,
                        "history": history,
                        "best_epoch": best["epoch"],
                        "best_val_loss": best["val_loss"],
                        "best_model": best["state"],
                        "config": cfg.to_dict(),
                        "rng": rng_state(gens),
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
            model.eval()
            test_prob = evaluate(fwd, xte, y=yte, loss_fn=loss_fn, normalizer=norm, device=device, amp=amp,
                                 channels_last=channels_last, batch_size=eval_bs).outputs
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
