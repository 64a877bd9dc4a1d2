"""Three names, one loss: Kaur et al.'s MCE, sparse CE and KL trained from the same seed and data order."""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from .. import data as D
from .base import cap_per_class, class_names_of, audit_record, taleqani_data, write_audit_record, audit_profile, audit_settings


def stepwise_losses(model_fn: Callable[[], Any], x: np.ndarray, y: np.ndarray, loss: str, *, epochs: int = 1,
                    batch_size: int = 32, lr: float = 1e-3, seed: int = 0) -> tuple[list[float], dict]:
    """Train ``model_fn()`` with ``loss`` on the CPU and return ``(per-step losses, final state dict)``.

    The step of :func:`leukcore.engine.fit` without its per-epoch bookkeeping: ``torch``
    seeded with ``seed`` before ``model_fn()`` (same initial weights and dropout masks for
    every loss), a ``torch.Generator(seed)`` permutation per epoch (same data order), inputs
    ``(u8 / 255 - mean) / std``, Adam (betas 0.9 / 0.999, eps 1e-7), deterministic algorithms,
    float32. Labels are passed as integers; ``mce`` and ``kl`` one-hot encode them.
    """
    import torch

    from ..losses import make_loss
    from ..engine import TrainConfig, make_optimizer, Normalizer, runtime, model_norm_stats

    cfg = TrainConfig(optimizer="adam", lr=lr, epochs=max(epochs, 1), batch_size=batch_size, loss=loss, seed=seed,
                      device="cpu", deterministic=True, progress=False)
    dev = torch.device("cpu")
    with runtime(cfg, dev):
        torch.manual_seed(seed)
        model = model_fn()
        opt = make_optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
        lf = make_loss(loss)
        norm = Normalizer(*model_norm_stats(model))
        xt = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous()
        yt = torch.as_tensor(np.array(y, dtype=np.int64))
        gen = torch.Generator().manual_seed(seed)
        curve: list[float] = []
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(len(yt), generator=gen)
            for s in range(0, len(yt), batch_size):
                idx = perm[s:s + batch_size]
                if len(idx) < 2:
                    continue
                logits = model(norm.from_uint8(xt[idx])).float()
                out = lf(logits, yt[idx])
                opt.zero_grad(set_to_none=True)
                out.backward()
                opt.step()
                curve.append(float(out.detach()))
    return curve, {k: v.detach().clone() for k, v in model.state_dict().items()}


def loss_equivalence(profile: str = "smoke", data_root=None, seed: int = 0, results_dir=None, device: str = "auto",
                     *, progress: bool = False, write: bool = True) -> dict:
    """DSCNet trained with ``mce``, ``sparse_ce`` and ``kl`` from the same weights in the same order.

    A seeded, stratified slice of taleqani-all (``AUDIT_BUDGET[profile]["leq_images"]``
    images, ``leq_epochs`` epochs) trained by :func:`stepwise_losses` on the CPU whatever
    ``device`` says (bit-level determinism is the point). Records the three per-step loss
    curves, the largest absolute difference between any two curves and between any two final
    weight sets, and whether the curves coincide within ``tolerance`` (1e-5).
    """
    from ..models import create_model

    prof = audit_profile(profile)
    st = audit_settings("loss_equivalence", profile)
    t0 = time.perf_counter()
    data = taleqani_data(prof, data_root, seed, cap=False)
    per_class = max(1, st["n_images"] // max(data.table["label"].nunique(), 1))
    data.table = cap_per_class(data.table, per_class, seed)
    x, table = D.load_images(data.table, st["image_size"])
    data.table = table
    y = table["label"].to_numpy()
    n_classes = len(class_names_of(table))

    def model_fn():
        return create_model(st["model"], num_classes=n_classes, **st["model_kw"])

    curves, states = {}, {}
    for loss in st["losses"]:
        curves[loss], states[loss] = stepwise_losses(model_fn, x, y, loss, epochs=st["epochs"],
                                                     batch_size=st["batch_size"], lr=st["lr"], seed=seed)
    pairs = {}
    names = st["losses"]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = names[i], names[j]
            dc = float(np.max(np.abs(np.array(curves[a]) - np.array(curves[b])))) if curves[a] else 0.0
            dw = max(float((states[a][k].double() - states[b][k].double()).abs().max()) for k in states[a]
                     if states[a][k].is_floating_point())
            pairs[f"{a} vs {b}"] = {"max_abs_loss_diff": dc, "max_abs_weight_diff": dw}
    max_curve = max(p["max_abs_loss_diff"] for p in pairs.values())
    max_weight = max(p["max_abs_weight_diff"] for p in pairs.values())
    weight_scale = max(float(v.double().abs().max()) for v in states[names[0]].values() if v.is_floating_point())
    results = {"curves": curves, "pairs": pairs, "max_abs_loss_diff": max_curve, "max_abs_weight_diff": max_weight,
               "max_abs_weight": weight_scale, "steps": len(curves[names[0]]), "n_images": int(len(y)),
               "coincide": bool(max_curve < st["tolerance"]), "tolerance": st["tolerance"],
               "loss_range": [float(min(curves[names[0]] or [0])), float(max(curves[names[0]] or [0]))]}
    rows = [{"arm": k, "metric": "max |loss difference| per step", "point": v["max_abs_loss_diff"], "low": None,
             "high": None, "n": results["steps"], "note": f"max |weight difference| {v['max_abs_weight_diff']:.2e}"}
            for k, v in pairs.items()]
    headline = (f"Over {results['steps']} steps the three loss curves differ by at most {max_curve:.1e} "
                f"(final weights by {max_weight:.1e}): with one-hot targets mce, sparse_ce and kl are one objective, "
                "so any difference between them in a paper's table is run-to-run noise, not the loss.")
    devs = ["interpretation: deterministic CPU float32; what differs between the losses is only floating-point "
            "rounding in their formulas"]
    rec = audit_record("loss_equivalence", prof, seed, st, data.describe(), t0, "cpu", results, rows, headline, devs,
                  implication=("DSCNet (Kaur et al. 2023) compares categorical CE, sparse categorical CE and KL "
                               "divergence and ranks KL first; for one-hot labels KL(y||p) = CE(y, p) - H(y) = CE(y, p), "
                               "so the three rows of that comparison train the same model: their differences "
                               "measure run-to-run variation (seed, data order, non-deterministic kernels), not the "
                               "choice of loss."))
    return write_audit_record(rec, results_dir, write)
