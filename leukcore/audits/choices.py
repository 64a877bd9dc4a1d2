"""Our own choices tested: Kaur's models rerun at the audit scale under three readings of the paper's lambda
(as leukcore applies it today, as MATLAB applies ``L2Regularization``, none), and DSCNet with and without the
sharpening filter that stands for the paper's unspecified "custom filtering layer"."""
from __future__ import annotations

import numpy as np

from .arms import (
    evaluation_block,
    measured,
    pc_text,
    register_arms,
    register_headline,
    register_summary,
    seeds_text,
    taleqani_context,
    training_block,
)
from .base import AUDIT_BUDGET, CHOICES_MODELS, LAMBDA_READINGS
from .training import predict_on, trained_model


def choice_arm(arm: str) -> dict:
    """What one ``choices`` arm trains: ``<model>[_nofilter]_<reading>`` -> ``{"model", "model_kw", "reading",
    "l2"}`` (``reading`` one of :data:`leukcore.audits.base.LAMBDA_READINGS`; ``nofilter`` only for DSCNet)."""
    parts = arm.split("_")
    model, reading = parts[0], parts[-1]
    if reading not in LAMBDA_READINGS or len(parts) not in (2, 3) or (len(parts) == 3 and parts[1] != "nofilter"):
        raise ValueError(f"not a choices arm: {arm!r} (want <model>[_nofilter]_<{'|'.join(LAMBDA_READINGS)}>)")
    kw = {"sharpen": False} if len(parts) == 3 else {}
    if kw and model != "dscnet":
        raise ValueError(f"only DSCNet has a filter to remove, not {model!r}")
    return {"model": model, "model_kw": kw, "reading": reading, "l2": float(LAMBDA_READINGS[reading]["l2"])}


def penalty_at_init(model_name: str, model_kw: dict, n_classes: int, seed: int) -> dict:
    """The penalised weights of a freshly initialised model (seeded as its training starts): how many there are
    and ``sum(w^2)`` over them, the quantity each lambda reading multiplies."""
    import torch

    from ..models import create_model, l2_params

    torch.manual_seed(seed)
    model = create_model(model_name, num_classes=n_classes, **model_kw)
    ps = l2_params(model)
    return {"n_penalised": int(sum(p.numel() for p in ps)),
            "sum_w2": float(sum(float(p.detach().double().pow(2).sum()) for p in ps)),
            "n_params": int(sum(p.numel() for p in model.parameters()))}


@register_arms("choices")
def _arm_choices(arm: str, prof, st, data_root, seed, device, progress) -> tuple[dict, dict]:
    c = taleqani_context("choices", prof, st, data_root, seed, device)
    x, y, tr, te, names = c["x"], c["y"], c["tr"], c["te"], c["names"]
    what = choice_arm(arm)
    settings = {"model": what["model"], "model_kw": what["model_kw"], "train": {**st["train"], "l2": what["l2"]}}
    model, info, cached = trained_model(settings, len(names), x[tr], y[tr], seed=seed, device=device,
                                        progress=progress)
    prob = predict_on(model, x[te], device)
    ev = evaluation_block(y[te], prob, names, te)
    called = prob.argmax(1) if len(prob) else np.zeros(0, int)
    counts = np.bincount(called, minlength=len(names))
    share = float(counts.max() / max(len(called), 1))
    init = penalty_at_init(what["model"], what["model_kw"], len(names), seed)
    res = {"eval": ev, "training": training_block(info, cached), "measures": {arm: measured(ev)},
           "model": what["model"], "model_kw": what["model_kw"], "reading": what["reading"], "l2": what["l2"],
           "penalty_at_init": {**init, "term": what["l2"] * init["sum_w2"]},
           "predicted_counts": {names[k]: int(counts[k]) for k in range(len(names))},
           "majority_share": share, "collapsed": bool(share >= st["collapse_share"]),
           "test_majority_rate": float(np.bincount(y[te], minlength=len(names)).max() / max(len(te), 1)),
           "n_train": int(len(tr)), "n_test": int(len(te))}
    return res, c["data"].describe()


@register_summary("choices")
def _summary(by_seed: dict, seeds: list, results: dict) -> dict:
    arms = by_seed[seeds[0]]
    st = arms[next(iter(arms))]["settings"]
    return {"side": st["image_size"], "epochs": st["train"]["epochs"], "paper_epochs": AUDIT_BUDGET["paper"]["choices_epochs"],
            "lambda": st["lambda"], "collapse_share": st["collapse_share"],
            "collapsed": {a: [bool(by_seed[s][a]["results"]["collapsed"]) for s in seeds] for a in arms},
            "majority_share": {a: [by_seed[s][a]["results"]["majority_share"] for s in seeds] for a in arms},
            "penalty_at_init": {a: arms[a]["results"]["penalty_at_init"] for a in arms},
            "test_majority_rate": float(np.mean([by_seed[s][a]["results"]["test_majority_rate"] for s in seeds
                                                 for a in arms]))}


@register_headline("choices")
def _headline(res: dict) -> str:
    a = res["arms"]
    parts = [f"{m}: {pc_text(a[f'{m}_keras'])} with lambda as now, {pc_text(a[f'{m}_matlab'])} as MATLAB reads it, "
             f"{pc_text(a[f'{m}_none'])} without" for m in CHOICES_MODELS]
    return ("; ".join(parts) + f"; DSCNet without its filter {pc_text(a['dscnet_nofilter_keras'])} and "
            f"{pc_text(a['dscnet_nofilter_none'])} ({seeds_text(res)}).")
