"""The training step: :func:`leukcore.engine.fit`'s steps against a plain fp32 eager loop, with the
FLOPs of a step and the fraction of the GPU's bf16 peak they reach."""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

from .data_path import BATCH_SIZE
from .timing import LoadMonitor, gpu_peak_bf16, summarize, time_interleaved

TRAIN_MODELS = (("alnet", 224), ("dscnet", None))  # None: the model's paper input size
QUICK_TRAIN_MODELS = (("alnet", 136), ("dscnet", 64))  # alnet's smallest side is 136


def train_flops_per_image(model, size: int, n_classes: int, device: str = "cpu", batch: int = 2) -> float | None:
    """FLOPs of one training step (forward + backward of the cross-entropy) per image, counted by
    ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix products)."""
    import torch
    import torch.nn.functional as F

    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:  # pragma: no cover
        return None
    model.train()
    xb = torch.randn(batch, 3, size, size, device=device)
    yb = torch.randint(0, n_classes, (batch,), device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(xb), yb).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch


def _plain_epoch_fn(model, xf, y, *, batch_size: int, lr: float, sync) -> Callable[[], int]:
    """One epoch of the plain fp32 eager loop (float, pre-normalised tensors; forward, loss,
    backward, a fresh Adam per epoch as each :func:`leukcore.engine.fit` call makes)."""
    import torch
    import torch.nn.functional as F

    n = xf.shape[0]

    def epoch():
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-7)
        for s in range(0, n, batch_size):
            xb, yb = xf[s:s + batch_size], y[s:s + batch_size]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync()
        return n

    return epoch


def _fit_mode(cuda: bool, compile: bool | str, deterministic: bool | None = None) -> str:
    """How :func:`leukcore.engine.fit` runs (its defaults unless said), in words."""
    from ..engine import TrainConfig

    f = getattr(TrainConfig, "__dataclass_fields__", {})
    cl = f["channels_last"].default if "channels_last" in f else cuda
    default_det = f["deterministic"].default if "deterministic" in f else None
    det = default_det if deterministic is None else deterministic
    parts = ["bf16 autocast" if cuda else "fp32"] + (["channels-last"] if cl else [])
    parts.append("fused Adam")
    if compile:
        parts.append("torch.compile" + (f" (mode {compile})" if isinstance(compile, str) else ""))
    parts.append("deterministic algorithms" if det else
                 ("non-deterministic, cuDNN autotuning (benchmark mode)" if cuda else "non-deterministic"))
    changed = compile or (deterministic is not None and deterministic != default_det)
    return ("fit: " if changed else "fit defaults: ") + ", ".join(parts)


def bench_train_step(*, quick: bool = False, reps: int = 3, batch_size: int = BATCH_SIZE, steps: int | None = None,
                     device: str = "auto", compile: bool | str = False, deterministic: bool = True, seed: int = 0,
                     models: Sequence[tuple[str, int | None]] | None = None, load: LoadMonitor | None = None,
                     log: Callable[[str], None] = print) -> dict:
    """Images per second of full training steps: :func:`leukcore.engine.fit` vs a plain fp32 loop.

    ``steps`` optimiser steps per repetition (default 3 on the CPU, 30 on CUDA; ``quick``: 2
    steps of 2 images, alnet at 136 and dscnet at 64). A repetition of *leukcore* is one
    :func:`leukcore.engine.fit` call of one epoch of ``steps`` batches, timed by the epoch's own
    ``seconds`` (the training steps; fit's set-up, which moves the data and builds the optimiser
    once per call, is recorded apart as ``fit_call_s``); a repetition of *plain* is one epoch of
    the plain loop. Both run once as a warm-up, then alternate (:func:`time_interleaved`), so
    a change of machine load hits both alike. ``compile`` (``True`` or a mode) and
    ``deterministic`` are passed to fit's :class:`~leukcore.engine.TrainConfig`. Returns the
    ``train_step`` block of the record.
    """
    import copy

    import torch

    from ..models import create_model
    from ..engine import TrainConfig, fit, resolve_device

    load = load or LoadMonitor()
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    if quick:  # the plumbing only: small inputs, tiny batches
        batch_size, steps = 2, 2
        models = models or QUICK_TRAIN_MODELS
    models = models or TRAIN_MODELS
    steps = steps or (30 if cuda else 3)
    sync = (lambda: torch.cuda.synchronize(dev)) if cuda else (lambda: None)
    block: dict[str, Any] = {"device": str(dev), "batch_size": batch_size, "steps_per_rep": steps, "reps": reps,
                             "optimizer": "adam (lr 1e-3, betas 0.9/0.999, eps 1e-7)", "loss": "cross-entropy",
                             "leukcore_mode": _fit_mode(cuda, compile, deterministic),
                             "plain_mode": "fp32 eager, pre-normalised float tensors, no DataLoader"
                             + (" (torch defaults: cuDNN convolutions may use TF32)" if cuda and
                                torch.backends.cudnn.allow_tf32 else ""),
                             "models": []}
    peak = gpu_peak_bf16(torch.cuda.get_device_name(dev)) if cuda else None
    for name, size in models:
        torch.manual_seed(seed)
        kw = {"input_size": size} if (name == "alnet" and size) else {}
        base = create_model(name, **kw)
        size = int(size or base.paper_input_size)
        n_classes = int(base.default_cfg["num_classes"])
        mean, std = base.default_cfg["mean"], base.default_cfg["std"]
        n = batch_size * steps
        g = torch.Generator().manual_seed(seed)
        xu8 = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
        y = torch.randint(0, n_classes, (n,), generator=g)
        row: dict[str, Any] = {"model": name, "image_size": size, "num_classes": n_classes,
                               "images_per_rep": n}
        try:
            row["train_flops_per_image"] = train_flops_per_image(copy.deepcopy(base), size, n_classes)
        except Exception as e:  # noqa: BLE001 - the count is an extra
            row["train_flops_per_image"] = None
            row["flops_error"] = f"{type(e).__name__}: {e}"

        # leukcore: one fit call (one epoch, uint8 data) per repetition; its epoch's ``seconds``
        m_lk = copy.deepcopy(base)
        cfg = TrainConfig(epochs=1, batch_size=batch_size, augment="none", progress=False, seed=seed,
                          device=str(dev), compile=compile, deterministic=deterministic, lr=1e-3)
        fit_calls = []

        def lk_epoch(m=m_lk, cfg=cfg, xu8=xu8, y=y, n=n, calls=fit_calls):
            t0 = time.perf_counter()
            res = fit(m, (xu8, y), config=cfg)
            calls.append(time.perf_counter() - t0)
            return n, res.history[0]["seconds"]

        # plain: fp32 eager on pre-normalised float tensors, already on the device
        m_pl = copy.deepcopy(base).to(dev)
        mt = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        st = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        xf = ((xu8.float() / 255.0 - mt) / st).to(dev)
        pl_epoch = _plain_epoch_fn(m_pl, xf, y.to(dev), batch_size=batch_size, lr=1e-3, sync=sync)
        timed = time_interleaved({"leukcore": (lk_epoch, lk_epoch), "plain": (pl_epoch, pl_epoch)}, reps, load)
        lk, pl = timed["leukcore"], timed["plain"]
        lk["warmup_epoch_s"] = fit_calls[0]
        lk["fit_call_s"] = summarize(fit_calls[1:])
        row["leukcore"], row["plain"] = lk, pl
        del m_lk, m_pl, xf
        row["ratio"] = lk["images_per_s"] / pl["images_per_s"]
        row["ratio_range"] = [lk["images_per_s_min"] / pl["images_per_s_max"],
                              lk["images_per_s_max"] / pl["images_per_s_min"]]
        f = row.get("train_flops_per_image")
        if f:
            row["leukcore_tflops"] = f * lk["images_per_s"] / 1e12
            row["plain_tflops"] = f * pl["images_per_s"] / 1e12
            if peak:
                row["leukcore_peak_fraction"] = f * lk["images_per_s"] / peak
                row["plain_peak_fraction"] = f * pl["images_per_s"] / peak
        log(f"  train {name}@{size}: leukcore {lk['images_per_s']:.1f} images/s, plain {pl['images_per_s']:.1f} "
            f"images/s, ratio {row['ratio']:.2f}")
        block["models"].append(row)
    if peak:
        block["gpu_peak_bf16_flops"] = peak
    return block
