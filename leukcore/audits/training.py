"""The audit CNN's training: a validation part carved from the training part, early stopping in the
second half of the epochs only, the best epoch's weights, and a cache of trained models."""
from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import numpy as np

from .. import data as D
from ..runs.records import settings_hash
from .base import CACHE_VERSION


_MEMO: dict[str, tuple[dict, list]] = {}


def audit_train_config(settings: dict, *, seed: int, device: str, progress: bool):
    from ..engine import TrainConfig

    t = settings["train"]
    return TrainConfig(optimizer=t["optimizer"], lr=float(t["lr"]), epochs=int(t["epochs"]),
                       batch_size=int(t["batch_size"]), l2=float(t["l2"]), loss=t["loss"], augment=t["augment"],
                       augment_kwargs={k: (tuple(v) if isinstance(v, list) else v)
                                       for k, v in t.get("augment_kwargs", {}).items()},
                       scheduler=t.get("scheduler"),
                       seed=seed, device=device, progress=progress)


def model_cache_file(key: str) -> Path:
    return D.cache_dir() / "audits" / "models" / f"{key}.pt"


def validation_carve(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(fit, val)`` of a seeded, stratified hold-out of ``fraction`` of ``(x, y)``.

    Identical images (same bytes at the working size: the byte-identical twins of the data) stay on
    one side. Each class gives ``round(fraction * n_c)`` images (at least one when it has two
    groups or more); nothing is held out when ``fraction`` is 0 or the set is too small.
    """
    n = len(y)
    if fraction <= 0 or n < 4:
        return np.arange(n), np.zeros(0, dtype=int)
    keys = [hashlib.sha1(np.ascontiguousarray(x[i]).tobytes()).hexdigest() for i in range(n)]
    rng = np.random.default_rng(seed + 7919)
    val: list[int] = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        groups: dict[str, list[int]] = {}
        for i in idx:
            groups.setdefault(keys[i], []).append(int(i))
        order = list(groups.values())
        if len(order) < 2:
            continue
        order = [order[j] for j in rng.permutation(len(order))]
        want = max(1, int(round(fraction * len(idx))))
        taken = 0
        for g in order:
            if taken >= want:
                break
            val += g
            taken += len(g)
    val_arr = np.array(sorted(val), dtype=int)
    fit_arr = np.setdiff1d(np.arange(n), val_arr)
    return fit_arr, val_arr


class EarlyStop:
    """``fit`` callback: early stopping confined to the second half of the epochs.

    Only epochs from ``stop_from`` on compete for "best" (lowest validation loss); their best
    weights are kept (``best_state``), and training stops when ``patience`` epochs from then on
    have not improved on it. The first half is left alone: at a high learning rate the
    validation loss swings from epoch to epoch, and a best epoch taken there stops too early.
    """

    def __init__(self, patience: int, stop_from: int):
        self.patience, self.stop_from = int(patience), int(stop_from)
        self.best, self.best_epoch, self.best_state, self.stopped_at = math.inf, None, None, None

    def __call__(self, epoch: int, rec: dict, model) -> bool:
        vl = rec.get("val_loss")
        if vl is None or epoch < self.stop_from:
            return False
        if vl < self.best:
            self.best, self.best_epoch = vl, epoch
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if epoch - self.best_epoch >= self.patience:
            self.stopped_at = epoch
            return True
        return False


def trained_model(settings: dict, n_classes: int, x_train: np.ndarray, y_train: np.ndarray, *, seed: int = 0,
                  device: str = "cpu", progress: bool = False):
    """The audit CNN trained on ``(x_train, y_train)``; returns ``(model, info, from_cache)``.

    Initial weights come from ``torch.manual_seed(seed)``, the data order and augmentation from
    ``seed`` (:func:`leukcore.engine.fit`). When the recipe has a ``val_fraction``, that part of
    the training images (:func:`validation_carve`) is held out for early stopping
    (``patience``, from epoch ``stop_from_epoch``), and the best validation epoch's weights are
    kept. ``info``: ``history`` (per epoch), ``best_epoch``, ``epochs_run``, ``stopped_early``,
    ``n_fit``, ``n_val``, ``train_seconds``. A model is identified by the SHA-256 of the training
    images and labels (in order), the model, the recipe, ``n_classes``, the seed and the device
    type; it is kept in memory and under ``<cache_dir>/audits/models/<key>.pt`` so that audits
    sharing a model train it once.
    """
    import torch

    from ..engine import fit, save_atomic
    from ..models import create_model

    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x_train).tobytes())
    h.update(np.ascontiguousarray(y_train, dtype=np.int64).tobytes())
    key = settings_hash({"data": h.hexdigest(), "shape": list(np.shape(x_train)), "model": settings["model"],
                         "model_kw": settings["model_kw"], "train": settings["train"], "n_classes": int(n_classes),
                         "seed": int(seed), "device": device.split(":")[0], "v": CACHE_VERSION})
    model = create_model(settings["model"], num_classes=n_classes, **settings["model_kw"])
    cached = _MEMO.get(key)
    if cached is None:
        f = model_cache_file(key)
        if f.is_file():
            try:
                ck = torch.load(f, map_location="cpu", weights_only=True)
                cached = (ck["state"], dict(ck["info"]))
            except Exception:  # noqa: BLE001 - a damaged cache file is retrained
                cached = None
    if cached is not None:
        model.load_state_dict(cached[0])
        model.eval()
        _MEMO[key] = cached
        return model, cached[1], True
    t = settings["train"]
    fit_i, val_i = validation_carve(x_train, y_train, float(t.get("val_fraction", 0.0)), seed)
    if not len(val_i):
        fit_i = np.arange(len(y_train))
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = create_model(settings["model"], num_classes=n_classes, **settings["model_kw"])
    cfg = audit_train_config(settings, seed=seed, device=device, progress=progress)
    stop = EarlyStop(int(t.get("patience", 0) or 10 ** 6), int(t.get("stop_from_epoch", 1)))
    val = (x_train[val_i], y_train[val_i]) if len(val_i) else None
    res = fit(model, (x_train[fit_i], y_train[fit_i]), val, None, config=cfg, callbacks=[stop] if val else None)
    if stop.best_state is not None:
        model.load_state_dict(stop.best_state)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    info = {"history": [dict(r) for r in res.history],
            "best_epoch": stop.best_epoch if stop.best_state is not None else len(res.history),
            "epochs_run": len(res.history),
            "stopped_early": stop.stopped_at is not None and stop.stopped_at < int(t["epochs"]), "n_fit": int(len(fit_i)), "n_val": int(len(val_i)),
            "train_seconds": round(time.perf_counter() - t0, 2)}
    _MEMO[key] = (state, info)
    try:
        save_atomic({"state": state, "info": info}, model_cache_file(key))
    except OSError:
        pass
    return model, info, False


def predict_on(model, x: np.ndarray, device: str) -> np.ndarray:
    from ..engine import predict_proba

    if len(x) == 0:
        return np.zeros((0, 0))
    return predict_proba(model, x, device=device, batch_size=128)
