"""Building a registered model: :func:`create_model` and the shared :func:`build`.

What every built model carries:

* ``paper_input_size`` (int): the square input side the model's paper used;
  ``paper_input_sizes`` maps paper id -> size where several papers use the model.
* ``default_cfg`` (dict): ``mean`` / ``std`` (applied to images scaled to ``[0, 1]``:
  ``x = (u8 / 255 - mean) / std``), ``input_size`` ``(3, S, S)``, ``interpolation``,
  ``num_classes``, ``classifier`` (the head's module name), ``norm`` (which convention).
  ImageNet-style backbones use the mean/std of the weights they would load (torchvision and
  DLA/Darknet: ImageNet ``(0.485, 0.456, 0.406) / (0.229, 0.224, 0.225)``; the TensorFlow /
  Keras ports of InceptionV3, Xception and Inception-ResNet-v2: ``0.5 / 0.5``, i.e. ``[-1, 1]``,
  which is also Keras' ``preprocess_input`` for those nets). The papers' own from-scratch
  nets (ALNet, DSCNet, CNN+LSTM) use **unit scaling**, ``mean 0, std 1`` (``x = u8 / 255``),
  the Keras ``rescale=1/255`` convention; no paper states its normalisation.
* ``leukcore_deviations`` (list of str): every interpretation (where the paper is silent)
  and deviation (where we differ from it), prefixed ``interpretation:`` / ``deviation:``;
  the run records and the book copy this list.
* ``leukcore_weights`` (dict or None): where loaded weights came from and which keys were
  dropped / missing / unexpected.
* ``forward_features(x)``: the representation before the classification head (timm models:
  their unpooled feature map; AlexNet: conv1..pool5 flattened, LoGMH's feature route;
  XIncept: the fused vector, see :class:`XIncept`; our own nets: the flattened vector fed
  to the first dense layer). Pool / flatten a 4-D result for the feature classifiers.

Outputs are always **logits** (the loss applies sigmoid / softmax).

Outputs are always **logits** (the loss applies sigmoid / softmax).
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from .registry import NORMS, ModelSpec, entrypoint, get_spec
from .weights import FROM_SCRATCH_DEVIATION, WeightsUnavailableError, load_file_into, load_pretrained


# ================================================================== create_model
def create_model(
    name: str,
    num_classes: int | None = None,
    pretrained: bool | str = False,
    weights: str | os.PathLike | None = None,
    **kw: Any,
) -> nn.Module:
    """Build a registered model with ``num_classes`` outputs (logits).

    Args:
        name: a name from :func:`list_models` (unknown names raise ``ValueError``).
        num_classes: number of outputs; default: the model's paper's class count.
        pretrained: ``False`` (random init), ``True`` (ImageNet weights, else
            :class:`WeightsUnavailableError`) or ``"if-available"`` (ImageNet weights when
            found, else from scratch with the deviation recorded).
        weights: a local state-dict file (``.pth`` / ``.pt`` / ``.safetensors``) for the whole
            model; loaded whatever ``pretrained`` says, without touching the network.
        **kw: model-specific options (e.g. ``dropout`` for ``alnet``).
    """
    spec = get_spec(name)
    if pretrained is None:
        pretrained = False
    if pretrained not in (False, True, "if-available"):
        raise ValueError(f"pretrained must be False, True or 'if-available', got {pretrained!r}")
    if num_classes is None:
        num_classes = spec.default_num_classes
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return entrypoint(name)(int(num_classes), pretrained=pretrained, weights=weights, **kw)


def build(
    spec: ModelSpec,
    factory: Callable[[], nn.Module],
    num_classes: int,
    pretrained: bool | str,
    weights: str | os.PathLike | None,
    input_size: int | None = None,
) -> nn.Module:
    """The one builder every registered constructor goes through: construct with ``factory``, attach
    the attributes every model carries (``default_cfg``, ``paper_input_size``, ``leukcore_deviations``,
    ``leukcore_weights``), load weights."""
    model = factory()
    mean, std = NORMS[spec.norm]
    size = int(input_size or spec.paper_input_size)
    cfg: dict[str, Any] = dict(
        {
            "architecture": spec.name,
            "mean": mean,
            "std": std,
            "norm": spec.norm,
            "input_size": (3, size, size),
            "paper_input_size": spec.paper_input_size,
            "interpolation": "bilinear",
            "num_classes": num_classes,
            "classifier": spec.head[0] if len(spec.head) == 1 else list(spec.head),
            "papers": dict(spec.papers),
        },
        **spec.extra_cfg,
    )
    model.default_cfg = cfg
    model.leukcore_name = spec.name
    model.paper_input_size = spec.paper_input_size
    model.paper_input_sizes = dict(spec.papers)
    model.leukcore_deviations = list(spec.deviations)
    model.leukcore_weights = None

    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
        model.leukcore_weights = load_file_into(model, "", path, spec.head, spec.name)
        return model
    if pretrained is False:
        if spec.paper_pretrained:
            model.leukcore_deviations.append(
                "deviation: built without pretrained weights (pretrained=False); "
                "the paper fine-tuned ImageNet weights"
            )
        return model

    try:
        model.leukcore_weights = load_pretrained(model, spec)
    except WeightsUnavailableError:
        if pretrained != "if-available":
            raise
        if spec.sources:  # ImageNet weights exist in principle but were not found
            model.leukcore_deviations.append(FROM_SCRATCH_DEVIATION)
    return model
