"""Counting a model's parameters: the book's model table (:func:`param_table`); the counts are pinned
in ``tests/models/test_models.py``."""
from __future__ import annotations

import torch
from torch import nn

from . import registry
from .builder import create_model
from .registry import get_spec


def count_params(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (buffers such as BN running stats excluded)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total


def l2_params(model: nn.Module) -> list[nn.Parameter]:
    """Weights an L2 penalty ``lambda * sum(w ** 2)`` applies to.

    ``model.l2_params()`` when the model defines it (XIncept: its three "linear" layers, as
    Algorithm 1's ``kernel_regularizer=l2(0.01)``); otherwise every trainable weight of a
    convolution or linear layer (kernels only: no biases, no normalisation parameters,
    the Keras ``kernel_regularizer`` convention).
    """
    fn = getattr(model, "l2_params", None)
    if callable(fn):
        return list(fn())
    out = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.requires_grad:
            out.append(m.weight)
    return out


def model_summary(name: str, num_classes: int | None = None, input_size: int | None = None) -> dict:
    """Build ``name`` (random init) and run one zero image through it (eval, no grad).

    Returns ``dict(name, num_classes, params_trainable, params_total, input_size,
    output_shape)``; ``input_size`` defaults to the model's paper input size and
    ``output_shape`` is for a batch of one, ``(1, num_classes)``.
    """
    spec = get_spec(name)
    num_classes = spec.default_num_classes if num_classes is None else int(num_classes)
    size = int(input_size or spec.paper_input_size)
    kw = {"input_size": size} if name == "alnet" else {}
    model = create_model(name, num_classes, **kw).eval()
    trainable, total = count_params(model)
    with torch.no_grad():
        out = model(torch.zeros(1, 3, size, size))
    return {
        "name": name,
        "num_classes": num_classes,
        "params_trainable": trainable,
        "params_total": total,
        "input_size": size,
        "output_shape": tuple(out.shape),
    }


def param_table(num_classes_by_model: dict[str, int] | None = None):
    """A ``pandas.DataFrame`` of :func:`model_summary` for every registered model.

    Each model is built at its paper input size with ``num_classes_by_model[name]`` outputs
    (default: its paper's class count). Columns: ``model, papers, num_classes, input_size,
    params_trainable, params_total, output_shape, paper_params, paper_params_note``
    (``paper_params``: a count printed in a paper -- ALNet Table 8 gives 1000-class
    ImageNet counts for the baselines, so those differ from ours by the head).
    """
    import pandas as pd

    num_classes_by_model = dict(num_classes_by_model or {})
    unknown = set(num_classes_by_model) - set(registry.list_models())
    if unknown:
        raise ValueError(f"unknown model(s) {sorted(unknown)}; valid names: {', '.join(registry.list_models())}")
    rows = []
    for name in registry.list_models():
        spec = get_spec(name)
        s = model_summary(name, num_classes_by_model.get(name))
        rows.append(
            {
                "model": name,
                "papers": ", ".join(spec.papers),
                "num_classes": s["num_classes"],
                "input_size": s["input_size"],
                "params_trainable": s["params_trainable"],
                "params_total": s["params_total"],
                "output_shape": s["output_shape"],
                "paper_params": spec.paper_params,
                "paper_params_note": spec.paper_params_note,
            }
        )
    return pd.DataFrame(rows)
