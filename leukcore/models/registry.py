"""The model registry (timm style): what is known about each model before it is built -- papers,
input sizes (the paper's and the smallest accepted), normalisation, head, ImageNet weight sources."""
from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn


IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
INCEPTION_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
INCEPTION_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)
UNIT_MEAN: tuple[float, float, float] = (0.0, 0.0, 0.0)
UNIT_STD: tuple[float, float, float] = (1.0, 1.0, 1.0)

NORMS = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "inception": (INCEPTION_MEAN, INCEPTION_STD),
    "unit": (UNIT_MEAN, UNIT_STD),
}


# ============================================================== weight sources / specs
@dataclass(frozen=True)
class WeightSource:
    """Where one part of a model gets its ImageNet weights.

    ``target``: dotted sub-module path the state dict is loaded into (``""`` = the whole
    model). ``library``: ``"torchvision"`` (``ref`` = ``"AlexNet_Weights.IMAGENET1K_V1"``) or
    ``"timm"`` (``ref`` = a pretrained tag, ``"dla34.in1k"``). ``stems``: file names looked for
    in ``$LEUKCORE_WEIGHTS`` (``<stem>.pth`` / ``<stem>.safetensors``). ``head``: key prefixes
    of the classifier inside the *source* checkpoint (dropped when the shape differs, tolerated
    when absent from the target).
    """

    target: str
    library: str
    ref: str
    stems: tuple[str, ...]
    head: tuple[str, ...] = ()


@dataclass
class ModelSpec:
    """Static facts about a registered model (what ``model_info`` returns)."""

    name: str
    papers: dict[str, int]  # paper id -> input side used there
    paper_input_size: int
    default_num_classes: int
    norm: str
    small_input_size: int  # the smallest side we test (forward works)
    head: tuple[str, ...]  # classifier key prefixes in this model's own state dict
    sources: tuple[WeightSource, ...] = ()  # ImageNet weights; empty: from scratch
    paper_pretrained: bool = False  # did the paper start from ImageNet weights?
    deviations: tuple[str, ...] = ()
    paper_params: int | None = None  # a parameter count printed by a paper, if any
    paper_params_note: str = ""
    description: str = ""
    extra_cfg: dict[str, Any] = field(default_factory=dict)
    #: the smallest square input a forward pass accepts (below it a valid convolution or pool has no
    #: pixels left: AlexNet's stride-4 stem and pools, ALNet's valid 5x5 convolutions, Inception stems)
    min_input_size: int = 32


_model_entrypoints: dict[str, Callable[..., nn.Module]] = {}
_model_specs: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a thin constructor ``fn(num_classes, pretrained, weights, **kw)``.

    The constructor's ``__name__`` must equal ``spec.name`` (the registry key, as in timm).
    """

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ != spec.name:
            raise ValueError(f"constructor {fn.__name__!r} registered as {spec.name!r}")
        if spec.name in _model_entrypoints:
            raise ValueError(f"model {spec.name!r} registered twice")
        _model_entrypoints[spec.name] = fn
        _model_specs[spec.name] = spec
        return fn

    return deco


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted names of the registered models, optionally filtered by an ``fnmatch`` pattern."""
    names = sorted(_model_entrypoints)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered as ``name`` (unknown names raise ``ValueError``)."""
    if name not in _model_specs:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(list_models())}")
    return _model_specs[name]


def model_info(name: str) -> dict[str, Any]:
    """Static description of a model (no construction): papers, sizes, norm, weight files.

    Keys: ``name, papers, paper_input_size, default_num_classes, mean, std,
    small_input_size, paper_pretrained, weight_files`` (the ``$LEUKCORE_WEIGHTS`` stems
    looked for), ``imagenet_sources``, ``deviations``, ``paper_params``, ``description``.
    """
    s = get_spec(name)
    mean, std = NORMS[s.norm]
    return {
        "name": s.name,
        "papers": dict(s.papers),
        "paper_input_size": s.paper_input_size,
        "default_num_classes": s.default_num_classes,
        "mean": mean,
        "std": std,
        "small_input_size": s.small_input_size,
        "paper_pretrained": s.paper_pretrained,
        "weight_files": [s.name] + [st for src in s.sources for st in src.stems],
        "imagenet_sources": [f"{src.library}:{src.ref}" for src in s.sources],
        "deviations": list(s.deviations),
        "paper_params": s.paper_params,
        "description": s.description,
        "min_input_size": s.min_input_size,
    }



def entrypoint(name: str) -> Callable[..., nn.Module]:
    """The registered constructor of ``name``."""
    get_spec(name)
    return _model_entrypoints[name]


def min_input_size(name: str) -> int:
    """The smallest square input side ``name`` accepts (unknown names raise ``ValueError``)."""
    return get_spec(name).min_input_size


#: prefixes of a model's ``leukcore_deviations`` entries: where the paper is silent / where we differ
INTERPRETATION = "interpretation: "
DEVIATION = "deviation: "
