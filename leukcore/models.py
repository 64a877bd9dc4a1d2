"""Every network the five reproduced papers use, behind one timm-style registry.

``create_model(name, num_classes, pretrained=False, weights=None, **kw)`` builds a model;
``list_models()`` names them; ``model_info(name)`` describes one without building it;
``model_summary`` / ``param_table`` count parameters (the book's model table).
Registered constructors are thin (``@register_model``) and all go through one builder,
:func:`_build`, which attaches the same attributes to every model:

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

Models (parameter counts: ``param_table()``; the test module pins them). At each model's
paper input side and paper class count, trainable / total parameters::

    alnet                224  2      535,010                (Table 2: 535,010)
    dscnet               224  4    1,193,604
    xincept              224  4      272,460 / 42,864,980   (backbones frozen)
    alexnet              227  2   57,012,034
    vgg16                224  4  134,276,932
    resnet50             224  4   23,516,228
    googlenet            224  2    5,601,954
    inception_v3         224  4   21,793,764
    xception             227  2   20,811,050
    inception_resnet_v2  227  2   54,309,538
    darknet53            224  4   40,589,028
    retinanet_cls        227  2   31,508,034
    centernet_cls        224  2   15,230,130
    cnn_lstm             224  4      767,364

``alnet`` -- Jawahar et al. 2022, Table 2, layer for layer (see :class:`ALNet`):
    535,010 trainable parameters at 224x224, exactly as printed.
``dscnet`` -- Kaur et al. 2023 Algorithm 1 (also Vijayalakshmi & Deepa): see
    :class:`DSCNet` for every width / kernel / pooling choice (the paper gives none).
``xincept`` -- Khan 2024 Algorithm 1: frozen InceptionV3 + Xception fusion, see
    :class:`XIncept`.
Baselines by the papers' names: ``alexnet``, ``vgg16``, ``resnet50``, ``googlenet``
    (torchvision architectures; GoogLeNet without its auxiliary classifiers),
    ``inception_v3`` (timm, TF/Keras-ported weights ``inception_v3.tf_in1k``), ``xception``
    (timm ``legacy_xception``: the original Chollet 2017 Xception, the Keras one),
    ``inception_resnet_v2`` (timm), ``darknet53`` (timm ``darknet53``: YOLO-V3's backbone as an
    ImageNet-style classifier), ``retinanet_cls`` (:class:`RetinaNetClassifier`: RetinaNet's
    published ResNet-50 + FPN P3-P7 backbone, each level average-pooled, concatenated, one
    linear layer), ``centernet_cls`` (timm ``dla34``: CenterNet's best published backbone,
    DLA-34, with its ImageNet classification head; CenterNet's up-sampling (IDA-up) and
    heat-map heads are dropped because a classifier only needs the deepest pooled features),
    ``cnn_lstm`` (:class:`CNNLSTM`, XIncept's CNN+LSTM baseline, our design).

Pretrained weights (``pretrained=True``) are looked for, in this order, and nothing touches
the network at import time:

1. ``weights=PATH`` (a state dict saved with ``torch.save`` or a ``.safetensors`` file;
   ``{"state_dict"|"model"|"model_state_dict": ...}`` checkpoints and ``module.`` prefixes are
   unwrapped) -- loaded even when ``pretrained`` is False; never touches the network;
2. ``$LEUKCORE_WEIGHTS/<name>.pth`` or ``.safetensors`` (the whole model, e.g. a file saved
   from this module), else the backbone's own file name (``resnet50.pth`` for
   ``retinanet_cls``, ``inception_v3`` + ``xception`` for ``xincept``; see ``model_info``);
3. the library's ImageNet weights: torchvision / timm download caches (``$TORCH_HOME/hub``,
   ``$HF_HUB_CACHE``), then a download -- only when the network is allowed (no
   ``HF_HUB_OFFLINE`` / ``LEUKCORE_OFFLINE``) and the host answers a 3 s connection probe;
   downloads run under a 60 s socket timeout.

Files are read with ``torch.load(path, map_location="cpu", weights_only=True)``. Keys whose
shape does not fit the model are dropped when they belong to the classification head (new
``num_classes``) and reported in ``model.leukcore_weights``; any other mismatch or missing
key is an error. With no weights found ``pretrained=True`` raises
:class:`WeightsUnavailableError` (saying which file to put where);
``pretrained="if-available"`` builds from scratch instead and appends
``"ImageNet weights unavailable: trained from scratch"`` to ``leukcore_deviations``.
"""
from __future__ import annotations

import fnmatch
import logging
import os
import socket
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "WeightsUnavailableError",
    "register_model",
    "create_model",
    "list_models",
    "model_info",
    "model_summary",
    "param_table",
    "count_params",
    "l2_params",
    "ALNet",
    "DSCNet",
    "XIncept",
    "CNNLSTM",
    "RetinaNetClassifier",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INCEPTION_MEAN",
    "INCEPTION_STD",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
INCEPTION_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
INCEPTION_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)
UNIT_MEAN: tuple[float, float, float] = (0.0, 0.0, 0.0)
UNIT_STD: tuple[float, float, float] = (1.0, 1.0, 1.0)

_NORMS = {
    "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
    "inception": (INCEPTION_MEAN, INCEPTION_STD),
    "unit": (UNIT_MEAN, UNIT_STD),
}

FROM_SCRATCH_DEVIATION = "ImageNet weights unavailable: trained from scratch"
_OFFLINE_ENV = ("LEUKCORE_OFFLINE", "HF_HUB_OFFLINE")
_log = logging.getLogger(__name__)
_PROBE_TIMEOUT_S = 3.0
_DOWNLOAD_TIMEOUT_S = 60.0


class WeightsUnavailableError(RuntimeError):
    """Raised by ``create_model(..., pretrained=True)`` when no pretrained weights can be found."""


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


def _spec(name: str) -> ModelSpec:
    if name not in _model_specs:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(list_models())}")
    return _model_specs[name]


def model_info(name: str) -> dict[str, Any]:
    """Static description of a model (no construction): papers, sizes, norm, weight files.

    Keys: ``name, papers, paper_input_size, default_num_classes, mean, std,
    small_input_size, paper_pretrained, weight_files`` (the ``$LEUKCORE_WEIGHTS`` stems
    looked for), ``imagenet_sources``, ``deviations``, ``paper_params``, ``description``.
    """
    s = _spec(name)
    mean, std = _NORMS[s.norm]
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
    }


# ================================================================== input limits
#: The smallest square input each model accepts (a forward pass fails below it); 32 otherwise.
#: AlexNet's stride-4 11x11 stem and three 3x3/2 pools need 63 px; ALNet's five valid 5x5
#: convolutions and five pools need 136; Inception stems with valid convolutions need 75.
_MIN_INPUT = {"alexnet": 64, "alnet": 136, "inception_v3": 75, "inception_resnet_v2": 75, "xincept": 75}


def min_input_size(name: str) -> int:
    """The smallest square input side ``name`` accepts (unknown names raise ``ValueError``)."""
    _spec(name)
    return _MIN_INPUT.get(name, 32)


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
    spec = _spec(name)
    if pretrained is None:
        pretrained = False
    if pretrained not in (False, True, "if-available"):
        raise ValueError(f"pretrained must be False, True or 'if-available', got {pretrained!r}")
    if num_classes is None:
        num_classes = spec.default_num_classes
    if int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return _model_entrypoints[name](int(num_classes), pretrained=pretrained, weights=weights, **kw)


def _build(
    spec: ModelSpec,
    factory: Callable[[], nn.Module],
    num_classes: int,
    pretrained: bool | str,
    weights: str | os.PathLike | None,
    input_size: int | None = None,
) -> nn.Module:
    """The shared builder: construct, attach the attributes, load weights."""
    model = factory()
    mean, std = _NORMS[spec.norm]
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
        model.leukcore_weights = _load_file_into(model, "", path, spec.head, spec.name)
        return model
    if pretrained is False:
        if spec.paper_pretrained:
            model.leukcore_deviations.append(
                "deviation: built without pretrained weights (pretrained=False); "
                "the paper fine-tuned ImageNet weights"
            )
        return model

    try:
        model.leukcore_weights = _load_pretrained(model, spec)
    except WeightsUnavailableError:
        if pretrained != "if-available":
            raise
        if spec.sources:  # ImageNet weights exist in principle but were not found
            model.leukcore_deviations.append(FROM_SCRATCH_DEVIATION)
    return model


# ======================================================================= counting
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
    spec = _spec(name)
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
    unknown = set(num_classes_by_model) - set(list_models())
    if unknown:
        raise ValueError(f"unknown model(s) {sorted(unknown)}; valid names: {', '.join(list_models())}")
    rows = []
    for name in list_models():
        spec = _spec(name)
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


# ================================================================ weight loading
def _truthy_env(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _network_allowed(url: str) -> bool:
    """False when an offline variable is set or ``url``'s host does not answer within 3 s."""
    if any(_truthy_env(v) for v in _OFFLINE_ENV):
        return False
    host = urllib.parse.urlparse(url).hostname
    if not host:
        return False
    try:
        with socket.create_connection((host, 443), timeout=_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _torch_hub_checkpoint(url: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` caches ``url`` (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urllib.parse.urlparse(url).path)


def _hf_cache_dir() -> str:
    env = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if env:
        return env
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")), "huggingface"
    )
    return os.path.join(home, "hub")


_HF_FILES = ("model.safetensors", "pytorch_model.bin")


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a ``torch.save`` file (``weights_only=True``)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd: Any = load_file(str(path), device="cpu")
    else:
        import pickle

        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            why = next((ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln), "not plain tensors")
            raise ValueError(f"{path}: refused: it holds pickled Python objects that could run code when loaded "
                             f"({why[:200]}); use a plain state dict (torch.save(model.state_dict(), ...)) "
                             f"or a .safetensors file") from None
    if isinstance(sd, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = sd.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                sd = inner
                break
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def _in_prefixes(key: str, prefixes: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _load_state_dict_into(
    model: nn.Module, target: str, sd: dict[str, torch.Tensor], head: Sequence[str], origin: str
) -> dict[str, Any]:
    """Load ``sd`` into ``model`` (or its sub-module ``target``), replacing a mismatched head.

    A key whose shape differs from the model's is dropped if it lies under a ``head``
    prefix (the classifier, re-initialised for the new ``num_classes``); otherwise it is an
    error, as is a model key missing from ``sd`` outside the head (BN ``num_batches_tracked``
    excepted). Keys of ``sd`` the model lacks are ignored and reported (e.g. an ImageNet
    classifier when loading into a backbone, auxiliary heads).
    """
    module = model.get_submodule(target) if target else model
    own = module.state_dict()
    load, dropped, unexpected, bad = {}, [], [], []
    for k, v in sd.items():
        if k not in own:
            unexpected.append(k)
        elif tuple(v.shape) != tuple(own[k].shape):
            if _in_prefixes(k, head):
                dropped.append(k)
            else:
                bad.append(f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}")
        else:
            load[k] = v
    missing = [k for k in own if k not in load]
    bad_missing = [
        k for k in missing if not _in_prefixes(k, head) and not k.endswith("num_batches_tracked")
    ]
    if not load:
        raise ValueError(f"{origin}: no key matches the model ({model.leukcore_name}); wrong file?")
    if bad or bad_missing:
        raise ValueError(
            f"{origin} does not fit {getattr(model, 'leukcore_name', type(model).__name__)}"
            f"{' (' + target + ')' if target else ''}: "
            f"{len(bad)} shape mismatches outside the head {bad[:5]}, "
            f"{len(bad_missing)} missing keys {bad_missing[:5]}"
        )
    module.load_state_dict(load, strict=False)
    return {
        "source": origin,
        "target": target or "<model>",
        "loaded": len(load),
        "dropped_head_keys": sorted(dropped),
        "missing_keys": sorted(missing),
        "unexpected_keys": sorted(unexpected),
    }


def _load_file_into(model: nn.Module, target: str, path: Path, head: Sequence[str], name: str) -> dict:
    return _load_state_dict_into(model, target, _read_state_dict(path), head, f"file:{path}")


def _weights_dir_file(stem: str) -> Path | None:
    root = os.environ.get("LEUKCORE_WEIGHTS")
    if not root:
        return None
    for ext in (".safetensors", ".pth", ".pt"):
        p = Path(root).expanduser() / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


def _source_url(src: WeightSource) -> tuple[str, str | None, str]:
    """``(download_url, hf_repo_id, what)`` for a library source (no network)."""
    if src.library == "torchvision":
        import torchvision.models as tvm

        enum_name, member = src.ref.split(".")
        w = getattr(getattr(tvm, enum_name), member)
        return w.url, None, f"torchvision {src.ref} ({w.url})"
    if src.library == "timm":
        from timm.models import get_pretrained_cfg

        cfg = get_pretrained_cfg(src.ref)
        if cfg is None:
            raise ValueError(f"timm has no pretrained tag {src.ref!r}")
        if cfg.hf_hub_id:
            url = f"https://huggingface.co/{cfg.hf_hub_id}/resolve/main/model.safetensors"
            return url, cfg.hf_hub_id, f"timm {src.ref} (huggingface.co/{cfg.hf_hub_id})"
        return cfg.url, None, f"timm {src.ref} ({cfg.url})"
    raise ValueError(f"unknown weight library {src.library!r}")


def _library_state_dict(src: WeightSource) -> tuple[dict[str, torch.Tensor], str] | None:
    """ImageNet weights from the library cache, else a download when the network allows."""
    url, repo, what = _source_url(src)
    if repo:
        from huggingface_hub import try_to_load_from_cache

        for fname in _HF_FILES:
            hit = try_to_load_from_cache(repo, fname, cache_dir=_hf_cache_dir())
            if isinstance(hit, str) and os.path.isfile(hit):
                return _read_state_dict(Path(hit)), f"{src.library}:{src.ref} (cache {hit})"
    else:
        cached = _torch_hub_checkpoint(url)
        if cached.is_file():
            return _read_state_dict(cached), f"{src.library}:{src.ref} (cache {cached})"
    if not _network_allowed(url):
        return None
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
    try:
        if repo:
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(repo, _HF_FILES[0], cache_dir=_hf_cache_dir())
            return _read_state_dict(Path(path)), f"{src.library}:{src.ref} (downloaded {path})"
        sd = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=False, weights_only=True)
        return sd, f"{src.library}:{src.ref} (downloaded {url})"
    except Exception:  # network errors of every library: treat as unavailable
        return None
    finally:
        socket.setdefaulttimeout(old)


def _load_pretrained(model: nn.Module, spec: ModelSpec) -> dict[str, Any]:
    """Resolve ``pretrained=True``: $LEUKCORE_WEIGHTS/<name>, per-part files, library weights."""
    post = getattr(model, "_leukcore_after_imagenet_load", None)
    whole = _weights_dir_file(spec.name)
    if whole is not None:
        report = _load_file_into(model, "", whole, spec.head, spec.name)
        if callable(post):
            post()
        return report
    root = os.environ.get("LEUKCORE_WEIGHTS")
    if not spec.sources:
        raise WeightsUnavailableError(
            f"{spec.name!r} has no ImageNet weights (its paper trained it from scratch) and no "
            f"file {spec.name}.pth / {spec.name}.safetensors was found in $LEUKCORE_WEIGHTS "
            f"({root or 'unset'}). Pass weights=PATH to load your own, or pretrained=False / "
            f"pretrained='if-available'."
        )
    reports, missing = [], []
    plan = []
    for src in spec.sources:
        found = next((p for p in (_weights_dir_file(s) for s in src.stems) if p), None)
        if found is not None:
            plan.append((src, ("file", found)))
            continue
        got = _library_state_dict(src)
        if got is None:
            missing.append(src)
        else:
            plan.append((src, ("sd", got)))
    if missing:
        lines = []
        for src in missing:
            url, repo, what = _source_url(src)
            names = " or ".join(f"{st}.pth" for st in src.stems)
            lines.append(
                f"  - {what}: download {url} and save it as $LEUKCORE_WEIGHTS/{names} "
                f"(.safetensors also accepted)"
            )
        offline = any(_truthy_env(v) for v in _OFFLINE_ENV)
        raise WeightsUnavailableError(
            f"ImageNet weights for {spec.name!r} are not available: not in $LEUKCORE_WEIGHTS "
            f"({root or 'unset'}), not in the torchvision / timm caches (TORCH_HOME hub "
            f"{torch.hub.get_dir()}, HF cache {_hf_cache_dir()}), and "
            f"{'the network is disabled (' + ', '.join(v for v in _OFFLINE_ENV if _truthy_env(v)) + ')' if offline else 'the download host is unreachable'}.\n"
            f"Missing:\n" + "\n".join(lines) + "\n"
            f"Alternatively pass weights=PATH (a state dict of the whole model), or call "
            f"create_model({spec.name!r}, ..., pretrained='if-available') to train from scratch "
            f"with the deviation recorded."
        )
    for src, (kind, payload) in plan:
        if kind == "file":
            rep = _load_file_into(model, src.target, payload, src.head, spec.name)
        else:
            sd, origin = payload
            rep = _load_state_dict_into(model, src.target, sd, src.head, origin)
        reports.append(rep)
        _log.info("%s: loaded %d tensors from %s; head keys dropped: %s", spec.name, rep["loaded"],
                  rep["source"], rep["dropped_head_keys"])
    if callable(post):
        post()
    return reports[0] if len(reports) == 1 else {"parts": reports}


# ======================================================================= helpers
def _glorot_init(module: nn.Module) -> None:
    """Keras defaults: ``glorot_uniform`` kernels, zero biases (conv and dense layers)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _act(activation: str, negative_slope: float) -> nn.Module:
    if activation == "relu":
        return nn.ReLU()
    if activation == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    raise ValueError(f"unknown activation {activation!r}; valid: relu, leaky_relu")


# ========================================================================= ALNet
class ALNet(nn.Module):
    """ALNet, Jawahar et al. 2022, Table 2, layer for layer (Keras semantics).

    ::

        input 224x224x3
        cluster 1: conv1 5x5x32 valid -> 220, conv2 5x5x32 -> 216, maxpool 2 -> 108,
                   maxpool 2 -> 54, BN(32)
        cluster 2: conv3 5x5x64 -> 50, conv4 5x5x64 -> 46, maxpool 2 -> 23, maxpool 2 -> 11,
                   BN(64)
        cluster 3: conv5 5x5x128 -> 7, maxpool 2 -> 3, BN(128)
        flatten 3*3*128 = 1152, dropout, fc1 dense 128 ReLU, fc2 dense num_classes

    Parameters (Table 2's "Param" column): 2432 + 25632 + 51264 + 102464 + 204928 (convs)
    + 147584 + 258 (dense) + 2 * (32 + 64 + 128) (BN gamma, beta) = **535,010 trainable**;
    Keras also counts the BN moving mean / variance (448 more), which is why the Param
    column sums to 535,458. Here those two are buffers, not parameters.

    Choices: every convolution is 'valid' (the shapes require it) and followed by ReLU (the
    text names ReLU as the activation; Table 2 lists no separate activation layers, so they
    are inside ``Conv2D``); every max-pool is 2x2 stride 2 ('valid', floor) -- the text says
    3x3 pools in clusters 2 and 3, but the printed shapes (46 -> 23 -> 11, 7 -> 3) are those
    of 2x2 pools; BatchNorm uses Keras' ``epsilon=1e-3, momentum=0.99``; kernels are
    ``glorot_uniform`` with zero biases (Keras defaults). The paper's last layer is 2 sigmoid
    units trained with binary cross-entropy; we return the 2 logits and let the loss apply
    the sigmoid / softmax. ``dropout`` defaults to 0.2 (sec. 4.3; the model text says 30%).

    ``input_size`` (default 224) fixes the flatten width; inputs of another size raise.
    The smallest workable side is 136.
    """

    def __init__(self, num_classes: int = 2, dropout: float = 0.2, input_size: int = 224, in_chans: int = 3):
        super().__init__()
        self.input_size = int(input_size)
        side = self.flatten_side(self.input_size)
        if side < 1:
            raise ValueError(f"ALNet needs an input side >= 136, got {input_size}")
        bn = dict(eps=1e-3, momentum=0.01)  # Keras momentum 0.99 == PyTorch 0.01
        self.conv1 = nn.Conv2d(in_chans, 32, 5)
        self.conv2 = nn.Conv2d(32, 32, 5)
        self.pool1 = nn.MaxPool2d(2)
        self.pool2 = nn.MaxPool2d(2)
        self.bn1 = nn.BatchNorm2d(32, **bn)
        self.conv3 = nn.Conv2d(32, 64, 5)
        self.conv4 = nn.Conv2d(64, 64, 5)
        self.pool3 = nn.MaxPool2d(2)
        self.pool4 = nn.MaxPool2d(2)
        self.bn2 = nn.BatchNorm2d(64, **bn)
        self.conv5 = nn.Conv2d(64, 128, 5)
        self.pool5 = nn.MaxPool2d(2)
        self.bn3 = nn.BatchNorm2d(128, **bn)
        self.num_features = 128 * side * side
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(self.num_features, 128)
        self.fc2 = nn.Linear(128, num_classes)
        _glorot_init(self)

    @staticmethod
    def flatten_side(size: int) -> int:
        """Spatial side after cluster 3: ``((((s-8)//2//2 - 8)//2//2) - 4)//2`` (0 if invalid)."""
        s = size
        for op in ("c", "c", "p", "p", "c", "c", "p", "p", "c", "p"):
            s = s - 4 if op == "c" else s // 2
            if s < 1:
                return 0
        return s

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Clusters 1-3 then flatten: ``(N, 1152)`` at 224 (NCHW flatten order)."""
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            raise ValueError(
                f"ALNet was built for {self.input_size}x{self.input_size} inputs "
                f"(flatten {self.num_features}); got {tuple(x.shape[-2:])}: pass input_size="
            )
        x = self.bn1(self.pool2(self.pool1(F.relu(self.conv2(F.relu(self.conv1(x)))))))
        x = self.bn2(self.pool4(self.pool3(F.relu(self.conv4(F.relu(self.conv3(x)))))))
        x = self.bn3(self.pool5(F.relu(self.conv5(x))))
        return torch.flatten(x, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        return self.fc2(F.relu(self.fc1(self.dropout(self.forward_features(x)))))


# ======================================================================== DSCNet
class DSCNet(nn.Module):
    """DSCNet, Kaur et al. 2023 Algorithm 1 (Vijayalakshmi & Deepa re-tell it in Keras).

    Algorithm 1 fixes the topology and nothing else::

        X_f  = filter(X)                                   (line 2)
        Z1   = s(W1 * X_f + b1)                            conv block 1 (layer 1)
        Z2   = s([Z1, X_f])                                dense block 1 (layer 2)
        Z3   = s(W3 * Z2 + b3);   Z4 = s([Z3, Z2])         layers 3, 4
        ...  Z9 = s(W9 * Z8 + b9); Z10 = s([Z9, Z8])       layers 5-10
        Z11  = s(W11 * Z10 + b11)                          conv block 6 (layer 11)
        flatten -> FC + dropout 0.3 -> FC + dropout 0.2 -> softmax

    Our choices (none is given by either paper; all are interpretations):

    * **filter**: :class:`leukcore.filters.SharpenLayer`, a fixed (non-trainable) 3x3
      Laplacian sharpening kernel ``[[0,-1,0],[-1,5,-1],[0,-1,0]]`` with reflect padding;
    * **conv blocks** (layers 1, 3, 5, 7, 9, 11): one 3x3 'same' convolution each, widths
      ``32, 32, 64, 64, 128, 256`` (``widths``), bias, activation ``s`` = ReLU, or LeakyReLU
      (``activation="leaky_relu"``, slope 0.3 = Keras' default; Vijayalakshmi lists both);
      no BatchNorm (``batch_norm=True`` adds it) because Algorithm 1 writes ``s(W*Z + b)``;
    * **dense blocks** (layers 2, 4, 6, 8, 10): channel concatenation of the conv block's
      output and that block's input, the activation applied as written (idempotent for ReLU,
      it squares the negative slope for LeakyReLU), then a **2x2 max-pool** (a DenseNet
      "transition"), so the concatenated channels (3 -> 35 -> 67 -> 131 -> 195 -> 323)
      are convolved at 224, 112, 56, 28, 14 and 7 pixels;
    * **flatten**: a global average pool before the flatten, so the flattened vector is the
      256 channels of layer 11 (the model takes any input side >= 32; flattening the 7x7x256
      map instead would add ~3 M parameters to the first FC layer);
    * **FC layers**: layers 13 and 14 are hidden layers of 256 and 128 units (``fc_units``)
      with the activation and dropout 0.3 / 0.2 (``dropout``; Vijayalakshmi uses 0.1), then a
      linear classifier of ``num_classes`` logits. Algorithm 1 literally applies the softmax to
      ``Z14 = s(W Z13 + b)``, which would put a ReLU and dropout on the class scores; we read
      13-14 as hidden layers and add the classifier the softmax needs;
    * initialisation: ``glorot_uniform`` kernels, zero biases (Keras / MATLAB defaults).

    Inputs use unit scaling (``u8 / 255``); the sharpening kernel sums to 1 so it commutes
    with any per-channel normalisation.
    """

    def __init__(
        self,
        num_classes: int = 4,
        widths: Sequence[int] = (32, 32, 64, 64, 128, 256),
        fc_units: Sequence[int] = (256, 128),
        dropout: float | Sequence[float] = (0.3, 0.2),
        activation: str = "relu",
        negative_slope: float = 0.3,
        batch_norm: bool = False,
        kernel_size: int = 3,
        in_chans: int = 3,
    ):
        super().__init__()
        from .filters import SharpenLayer

        widths = tuple(int(w) for w in widths)
        if len(widths) != 6:
            raise ValueError(f"DSCNet has six conv blocks; widths has {len(widths)}")
        fc_units = tuple(int(u) for u in fc_units)
        if isinstance(dropout, (int, float)):
            dropout = (float(dropout),) * len(fc_units)
        dropout = tuple(float(d) for d in dropout)
        if len(dropout) != len(fc_units):
            raise ValueError(f"dropout {dropout} needs one rate per FC layer {fc_units}")
        self.filter = SharpenLayer()
        self.act = _act(activation, negative_slope)
        convs = []
        c_in = in_chans
        for i, w in enumerate(widths):
            layers: list[nn.Module] = [nn.Conv2d(c_in, w, kernel_size, padding=kernel_size // 2, bias=not batch_norm)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(w))
            convs.append(nn.Sequential(*layers))
            if i < len(widths) - 1:
                c_in = w + c_in  # the dense block concatenates output and input
        self.convs = nn.ModuleList(convs)
        self.pool = nn.MaxPool2d(2)
        self.num_features = widths[-1]
        fcs, drops = [], []
        prev = self.num_features
        for units, p in zip(fc_units, dropout):
            fcs.append(nn.Linear(prev, units))
            drops.append(nn.Dropout(p))
            prev = units
        self.fcs = nn.ModuleList(fcs)
        self.drops = nn.ModuleList(drops)
        self.classifier = nn.Linear(prev, num_classes)
        _glorot_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Filter, conv/dense blocks 1-11, global average pool: ``(N, widths[-1])``."""
        z = self.filter(x)
        for i, conv in enumerate(self.convs):
            out = self.act(conv(z))
            if i == len(self.convs) - 1:
                z = out
                break
            z = self.pool(self.act(torch.cat([out, z], dim=1)))
        return torch.flatten(F.adaptive_avg_pool2d(z, 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        z = self.forward_features(x)
        for fc, drop in zip(self.fcs, self.drops):
            z = drop(self.act(fc(z)))
        return self.classifier(z)


# ======================================================================= XIncept
class XIncept(nn.Module):
    """XIncept-ALL, Khan 2024 Algorithm 1: frozen ImageNet InceptionV3 + Xception fusion.

    ::

        fx = Xception(x)      -> GAP 2048      (timm legacy_xception: the original Xception)
        fi = InceptionV3(x)   -> GAP 2048      (timm inception_v3, TF/Keras weights)
        ox = Dense(branch_units, linear, L2)(Dense(64, relu)(fx))     steps 4-5
        oi = Dense(branch_units, linear, L2)(Dense(64, relu)(fi))
        fused = concat([ox, oi])                                      step 8
        h = Dense(64, relu)(Dense(128, relu)(fused))                  step 9
        logits = Dense(num_classes, linear, L2)(h)                    step 10

    Backbones are frozen (step 7, ``requires_grad=False``) and, as Keras does for frozen
    layers, kept in inference mode: their BatchNorm uses the ImageNet statistics even in
    ``model.train()``. The fusion uses global average pooling (chapter 4: "facilitated by
    global average pooling and concatenation"). ``l2_params()`` returns the kernels of the
    three linear layers that carry ``kernel_regularizer=l2(0.01)``; the trainer adds
    ``l2_lambda * sum(w ** 2)`` (Keras' convention: no 1/2). Heads use ``glorot_uniform``.

    ``branch_units`` defaults to ``num_classes``: Algorithm 1 prints ``units=2`` for the two
    branch outputs and the final layer of a 4-class task; each branch output is the logit
    layer of its own single-backbone model (step 6), so we give all three ``num_classes``
    units (pass ``branch_units=2`` for the literal thesis).

    ``forward_features(x, level)`` exposes the fused representation for the boosted-tree
    route: ``"fused"`` (default) the concatenation of step 8 (``2 * branch_units``),
    ``"refined"`` the 64-unit output of step 9 (Algorithm 1 still calls it ``Ffusion``),
    ``"backbone"`` the two pooled backbone vectors (4096).
    """

    def __init__(
        self,
        num_classes: int = 4,
        branch_units: int | None = None,
        hidden: int = 64,
        fusion_units: Sequence[int] = (128, 64),
        l2_lambda: float = 0.01,
        freeze: bool = True,
    ):
        super().__init__()
        import timm

        b = int(branch_units or num_classes)
        self.xception = timm.create_model("legacy_xception", pretrained=False, num_classes=0)
        self.inception = timm.create_model("inception_v3", pretrained=False, num_classes=0)
        nx, ni = self.xception.num_features, self.inception.num_features
        self.xception_dense = nn.Linear(nx, hidden)
        self.xception_out = nn.Linear(hidden, b)
        self.inception_dense = nn.Linear(ni, hidden)
        self.inception_out = nn.Linear(hidden, b)
        f1, f2 = (int(u) for u in fusion_units)
        self.fusion1 = nn.Linear(2 * b, f1)
        self.fusion2 = nn.Linear(f1, f2)
        self.classifier = nn.Linear(f2, num_classes)
        self.l2_lambda = float(l2_lambda)
        self.frozen = bool(freeze)
        for m in (self.xception_dense, self.xception_out, self.inception_dense, self.inception_out,
                  self.fusion1, self.fusion2, self.classifier):
            _glorot_init(m)
        if self.frozen:
            for p in list(self.xception.parameters()) + list(self.inception.parameters()):
                p.requires_grad_(False)
            self.xception.eval()
            self.inception.eval()

    def train(self, mode: bool = True) -> XIncept:
        """``nn.Module.train``, except that frozen backbones stay in eval mode (Keras semantics)."""
        super().train(mode)
        if self.frozen:
            self.xception.eval()
            self.inception.eval()
        return self

    def l2_params(self) -> list[nn.Parameter]:
        """Kernels regularised by ``l2(0.01)`` in Algorithm 1: both branch outputs and the final layer."""
        return [self.xception_out.weight, self.inception_out.weight, self.classifier.weight]

    def forward_features(self, x: torch.Tensor, level: str = "fused") -> torch.Tensor:
        """``"fused"`` ``(N, 2*branch_units)`` | ``"refined"`` ``(N, 64)`` | ``"backbone"`` ``(N, 4096)``."""
        if level not in ("fused", "refined", "backbone"):
            raise ValueError(f"unknown level {level!r}; valid: fused, refined, backbone")
        fx, fi = self.xception(x), self.inception(x)
        if level == "backbone":
            return torch.cat([fx, fi], dim=1)
        ox = self.xception_out(F.relu(self.xception_dense(fx)))
        oi = self.inception_out(F.relu(self.inception_dense(fi)))
        fused = torch.cat([ox, oi], dim=1)
        if level == "fused":
            return fused
        return F.relu(self.fusion2(F.relu(self.fusion1(fused))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        return self.classifier(self.forward_features(x, "refined"))


# ======================================================================= CNN+LSTM
class CNNLSTM(nn.Module):
    """XIncept's CNN+LSTM baseline (the thesis names it only): our small design.

    Four conv blocks (3x3 'same' conv -> BN -> ReLU -> 2x2 max-pool; widths 32, 64, 128,
    128) reduce a 224 image to a 128x14x14 map; the width axis is average-pooled to 7
    columns (``AdaptiveAvgPool2d((None, 7))``, so any input side >= 16 works); each of the
    14 rows, 128*7 = 896 values, is one time step of a single-layer LSTM (128 hidden units,
    top to bottom); the last hidden state -> dropout 0.2 -> linear logits.
    """

    def __init__(self, num_classes: int = 4, widths: Sequence[int] = (32, 64, 128, 128),
                 columns: int = 7, hidden: int = 128, dropout: float = 0.2, in_chans: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2)]
            c = w
        self.cnn = nn.Sequential(*layers)
        self.columns = int(columns)
        self.squeeze = nn.AdaptiveAvgPool2d((None, self.columns))
        self.lstm = nn.LSTM(c * self.columns, hidden, batch_first=True)
        self.num_features = hidden
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The LSTM's last hidden state, ``(N, hidden)``."""
        m = self.squeeze(self.cnn(x))  # (N, C, H', columns)
        seq = m.permute(0, 2, 1, 3).flatten(2)  # (N, H', C*columns): rows as time steps
        _, (h, _) = self.lstm(seq)
        return h[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        return self.fc(self.dropout(self.forward_features(x)))


# =================================================================== RetinaNet cls
class RetinaNetClassifier(nn.Module):
    """RetinaNet's published backbone as a classifier (our interpretation for LoGMH).

    Lin et al. 2017: ResNet-50 + FPN, pyramid levels P3-P7 of 256 channels, P6 a 3x3
    stride-2 conv on C5 and P7 a 3x3 stride-2 conv on ReLU(P6) (torchvision's
    ``BackboneWithFPN`` with ``LastLevelP6P7(2048, 256)``). The detection sub-nets (class
    and box heads over anchors) are replaced by a classification head: each level
    global-average-pooled, concatenated (5 x 256 = 1280), one linear layer. Plain
    BatchNorm (not the detector's frozen BN) so the body can be fine-tuned; ImageNet
    weights load into ``backbone.body`` (the FPN starts random, as in the paper).
    """

    def __init__(self, num_classes: int = 2):
        super().__init__()
        import torchvision
        from torchvision.models.detection.backbone_utils import BackboneWithFPN
        from torchvision.ops.feature_pyramid_network import LastLevelP6P7

        resnet = torchvision.models.resnet50(weights=None)
        self.backbone = BackboneWithFPN(
            resnet,
            return_layers={"layer2": "0", "layer3": "1", "layer4": "2"},
            in_channels_list=[512, 1024, 2048],
            out_channels=256,
            extra_blocks=LastLevelP6P7(2048, 256),
        )
        self.num_features = 5 * 256
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """P3-P7 average-pooled and concatenated: ``(N, 1280)``."""
        feats = self.backbone(x)
        return torch.cat([torch.flatten(F.adaptive_avg_pool2d(f, 1), 1) for f in feats.values()], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)``."""
        return self.fc(self.forward_features(x))


# ============================================================ torchvision baselines
def _tv_classes():
    """torchvision classifiers with a ``forward_features`` (defined lazily)."""
    import torchvision.models as tvm

    class AlexNet(tvm.AlexNet):
        """torchvision AlexNet; ``forward_features`` = conv1..pool5 flattened (9216 at 224/227)."""

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            return torch.flatten(self.features(x), 1)

    class VGG(tvm.VGG):
        """torchvision VGG; ``forward_features`` = the last conv block's pooled map."""

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            return self.features(x)

    class ResNet(tvm.ResNet):
        """torchvision ResNet; ``forward_features`` = the ``layer4`` map."""

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    class GoogLeNet(tvm.GoogLeNet):
        """torchvision GoogLeNet without auxiliary heads; ``forward_features`` = inception5b map."""

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            x = self._transform_input(x)
            x = self.maxpool1(self.conv1(x))
            x = self.maxpool2(self.conv3(self.conv2(x)))
            x = self.maxpool3(self.inception3b(self.inception3a(x)))
            x = self.inception4a(x)
            x = self.inception4e(self.inception4d(self.inception4c(self.inception4b(x))))
            x = self.maxpool4(x)
            return self.inception5b(self.inception5a(x))

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # plain tensor out, never a namedtuple
            x = torch.flatten(self.avgpool(self.forward_features(x)), 1)
            return self.fc(self.dropout(x))

        def _leukcore_after_imagenet_load(self) -> None:
            # torchvision's ImageNet GoogLeNet expects ImageNet-normalised input converted
            # to its own 0.5-scaling inside the model (what torchvision's weights=... sets);
            # called whenever pretrained=True loads weights, not for weights=PATH.
            self.transform_input = True

    return AlexNet, VGG, ResNet, GoogLeNet


def _timm(arch: str, num_classes: int, **kw: Any) -> nn.Module:
    import timm

    return timm.create_model(arch, pretrained=False, num_classes=num_classes, **kw)


# ====================================================================== registry
_C = "interpretation: "
_D = "deviation: "

_ALNET = ModelSpec(
    name="alnet",
    papers={"alnet_jawahar2022": 224},
    paper_input_size=224,
    default_num_classes=2,
    norm="unit",
    small_input_size=136,
    head=("fc2",),
    paper_params=535_010,
    paper_params_note="ALNet Table 2 / Table 8, trainable, 224x224, 2 outputs",
    description="Jawahar et al. 2022 Table 2, layer for layer (535,010 trainable at 224).",
    deviations=(
        _C + "ReLU after every convolution (the text names ReLU; Table 2 lists no activation layers)",
        _C + "2x2 max-pools throughout: Table 2's shapes require them (the text says 3x3 in clusters 2-3)",
        _C + "dropout 0.2 (sec. 4.3 grid search; sec. 3 text says 30%)",
        _C + "Keras defaults: glorot_uniform kernels, zero biases, BatchNorm eps 1e-3 momentum 0.99",
        _C + "inputs scaled to [0, 1] (u8/255); the paper states no normalisation",
        _D + "outputs 2 logits; the paper's last layer is 2 sigmoid units (the loss applies the sigmoid)",
    ),
)

_DSCNET = ModelSpec(
    name="dscnet",
    papers={"dscnet_kaur2023": 224, "dscnet_vijayalakshmi": 224},
    paper_input_size=224,
    default_num_classes=4,
    norm="unit",
    small_input_size=64,
    head=("classifier",),
    description="Kaur et al. 2023 Algorithm 1 with our widths (see DSCNet docstring).",
    deviations=(
        _C + "custom filtering layer = fixed 3x3 Laplacian sharpening (leukcore.filters.SharpenLayer)",
        _C + "conv blocks: one 3x3 'same' conv each, widths 32-32-64-64-128-256, bias, no BatchNorm",
        _C + "dense blocks: concat(conv output, its input), activation, then 2x2 max-pool",
        _C + "global average pool before the flatten (256 features)",
        _C + "FC layers 13-14 = hidden 256 and 128 units with dropout 0.3 / 0.2, then a linear classifier",
        _C + "glorot_uniform kernels, zero biases; inputs scaled to [0, 1]",
        _C + "input 224x224 (Vijayalakshmi Table 1; Kaur states none)",
    ),
)

_XINCEPT = ModelSpec(
    name="xincept",
    papers={"xincept_khan2024": 224},
    paper_input_size=224,
    default_num_classes=4,
    norm="inception",
    small_input_size=75,
    head=("xception_out", "inception_out", "fusion1", "classifier"),
    sources=(
        WeightSource("inception", "timm", "inception_v3.tf_in1k", ("inception_v3",), ("fc",)),
        WeightSource("xception", "timm", "legacy_xception.tf_in1k", ("xception", "legacy_xception"), ("fc",)),
    ),
    paper_pretrained=True,
    description="Khan 2024 Algorithm 1: frozen InceptionV3 + Xception, dense fusion head.",
    deviations=(
        _C + "input 224x224: Algorithm 1 builds both backbones with Input(shape=(224,224,3)) "
        "(the thesis also says images were resized to 700x600; the backbones' native size is 299)",
        _C + "global average pooling of each backbone before its Dense 64 (chapter 4)",
        _C + "frozen backbones run in inference mode (ImageNet BatchNorm statistics), as Keras does",
        _D + "branch outputs and final layer have num_classes units; Algorithm 1 prints 2 for a 4-class task",
        _C + "L2 0.01 on the kernels of the two branch output layers and the final layer (l2_params())",
        _C + "timm ports of the Keras weights: inception_v3.tf_in1k, legacy_xception.tf_in1k; inputs in [-1, 1]",
    ),
)


def _tv_spec(name, papers, size, ncls, head, ref, params=None, note="", extra=(), small=64) -> ModelSpec:
    return ModelSpec(
        name=name, papers=papers, paper_input_size=size, default_num_classes=ncls, norm="imagenet",
        small_input_size=small, head=(head,),
        sources=(WeightSource("", "torchvision", ref, (name,), (head,)),),
        paper_pretrained=True, paper_params=params, paper_params_note=note,
        description=f"torchvision {name}", deviations=tuple(extra),
    )


_ALNET_T8 = "ALNet Table 8 (1000-class ImageNet count)"


@register_model(_ALNET)
def alnet(num_classes: int = 2, pretrained: bool | str = False, weights=None,
          dropout: float = 0.2, input_size: int = 224) -> nn.Module:
    """ALNet (Jawahar et al. 2022 Table 2); see :class:`ALNet`."""
    return _build(_ALNET, lambda: ALNet(num_classes, dropout=dropout, input_size=input_size),
                  num_classes, pretrained, weights, input_size)


@register_model(_DSCNET)
def dscnet(num_classes: int = 4, pretrained: bool | str = False, weights=None, **kw) -> nn.Module:
    """DSCNet (Kaur et al. 2023 Algorithm 1); options of :class:`DSCNet` (dropout, activation, ...)."""
    spec = _DSCNET
    if kw.get("activation") == "leaky_relu":
        spec = ModelSpec(**{**spec.__dict__, "deviations": spec.deviations + (
            _C + f"LeakyReLU, negative slope {kw.get('negative_slope', 0.3)} (Keras default)",)})
    return _build(spec, lambda: DSCNet(num_classes, **kw), num_classes, pretrained, weights)


@register_model(_XINCEPT)
def xincept(num_classes: int = 4, pretrained: bool | str = False, weights=None, **kw) -> nn.Module:
    """XIncept-ALL fusion (Khan 2024 Algorithm 1); options of :class:`XIncept`."""
    return _build(_XINCEPT, lambda: XIncept(num_classes, **kw), num_classes, pretrained, weights)


_S_ALEXNET = _tv_spec(
    "alexnet", {"logmh_haque2024": 227, "alnet_jawahar2022": 227, "dscnet_kaur2023": 227}, 227, 2,
    "classifier.6", "AlexNet_Weights.IMAGENET1K_V1", 62_378_344, _ALNET_T8,
    extra=(_C + "torchvision AlexNet (one-tower 'OWT' variant, no LRN); 227x227 as LoGMH resizes to 227 "
           "and MATLAB's AlexNet takes 227",),
)


@register_model(_S_ALEXNET)
def alexnet(num_classes: int = 2, pretrained: bool | str = False, weights=None, dropout: float = 0.5) -> nn.Module:
    """torchvision AlexNet; ``forward_features`` = conv1..pool5 flattened (LoGMH's features)."""
    AlexNet = _tv_classes()[0]
    return _build(_S_ALEXNET, lambda: AlexNet(num_classes=num_classes, dropout=dropout),
                  num_classes, pretrained, weights)


_S_VGG16 = _tv_spec(
    "vgg16", {"dscnet_kaur2023": 224, "dscnet_vijayalakshmi": 224, "alnet_jawahar2022": 224,
              "xincept_khan2024": 224}, 224, 4, "classifier.6", "VGG16_Weights.IMAGENET1K_V1",
    138_423_208, _ALNET_T8,
)


@register_model(_S_VGG16)
def vgg16(num_classes: int = 4, pretrained: bool | str = False, weights=None, dropout: float = 0.5) -> nn.Module:
    """torchvision VGG-16 (configuration D, no BatchNorm)."""
    from torchvision.models.vgg import cfgs, make_layers

    VGG = _tv_classes()[1]
    return _build(_S_VGG16, lambda: VGG(make_layers(cfgs["D"], batch_norm=False), num_classes=num_classes,
                                        init_weights=True, dropout=dropout), num_classes, pretrained, weights)


_S_RESNET50 = _tv_spec(
    "resnet50", {"dscnet_kaur2023": 224, "alnet_jawahar2022": 224, "xincept_khan2024": 224}, 224, 4,
    "fc", "ResNet50_Weights.IMAGENET1K_V1", 25_636_712, _ALNET_T8,
    extra=(_C + "ImageNet weights: torchvision IMAGENET1K_V1 (the original recipe, closest to MATLAB/Keras)",),
)


@register_model(_S_RESNET50)
def resnet50(num_classes: int = 4, pretrained: bool | str = False, weights=None) -> nn.Module:
    """torchvision ResNet-50."""
    from torchvision.models.resnet import Bottleneck

    ResNet = _tv_classes()[2]
    return _build(_S_RESNET50, lambda: ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes),
                  num_classes, pretrained, weights)


_S_GOOGLENET = _tv_spec(
    "googlenet", {"alnet_jawahar2022": 224, "xincept_khan2024": 224}, 224, 2, "fc",
    "GoogLeNet_Weights.IMAGENET1K_V1", 6_414_360, _ALNET_T8,
    extra=(_C + "torchvision GoogLeNet (BatchNorm variant) without the two auxiliary classifiers",),
)


@register_model(_S_GOOGLENET)
def googlenet(num_classes: int = 2, pretrained: bool | str = False, weights=None, dropout: float = 0.2) -> nn.Module:
    """torchvision GoogLeNet, auxiliary logits off (``transform_input`` set when ImageNet weights load)."""
    GoogLeNet = _tv_classes()[3]
    return _build(_S_GOOGLENET, lambda: GoogLeNet(num_classes=num_classes, aux_logits=False, transform_input=False,
                                                  init_weights=True, dropout=dropout),
                  num_classes, pretrained, weights)


def _timm_spec(name, arch, tag, papers, size, ncls, norm, head, small=64, extra=(), desc="") -> ModelSpec:
    return ModelSpec(
        name=name, papers=papers, paper_input_size=size, default_num_classes=ncls, norm=norm,
        small_input_size=small, head=(head,),
        sources=(WeightSource("", "timm", tag, (name,) + ((arch,) if arch != name else ()), (head,)),),
        paper_pretrained=True, description=desc or f"timm {arch}", deviations=tuple(extra),
        extra_cfg={"timm_architecture": arch, "imagenet_tag": tag},
    )


_S_INCV3 = _timm_spec(
    "inception_v3", "inception_v3", "inception_v3.tf_in1k", {"xincept_khan2024": 224}, 224, 4, "inception", "fc",
    small=75, extra=(_C + "timm inception_v3 with the TF/Keras ImageNet weights (tf_in1k), inputs in [-1, 1]; "
                          "224x224 as in XIncept's data (native 299); smallest side 75",),
)


@register_model(_S_INCV3)
def inception_v3(num_classes: int = 4, pretrained: bool | str = False, weights=None) -> nn.Module:
    """timm InceptionV3 (auxiliary logits off)."""
    return _build(_S_INCV3, lambda: _timm("inception_v3", num_classes), num_classes, pretrained, weights)


_S_XCEPTION = _timm_spec(
    "xception", "legacy_xception", "legacy_xception.tf_in1k", {"logmh_haque2024": 227, "xincept_khan2024": 224},
    227, 2, "inception", "fc",
    extra=(_C + "the original Xception (Chollet 2017; Keras' Xception) = timm legacy_xception, inputs in [-1, 1]; "
                "227x227 as LoGMH (XIncept: 224; native 299)",),
)


@register_model(_S_XCEPTION)
def xception(num_classes: int = 2, pretrained: bool | str = False, weights=None) -> nn.Module:
    """timm ``legacy_xception`` (the original Xception)."""
    return _build(_S_XCEPTION, lambda: _timm("legacy_xception", num_classes), num_classes, pretrained, weights)


_S_IRV2 = _timm_spec(
    "inception_resnet_v2", "inception_resnet_v2", "inception_resnet_v2.tf_in1k", {"logmh_haque2024": 227}, 227, 2,
    "inception", "classif", small=75,
    extra=(_C + "timm inception_resnet_v2 (TF weights, inputs in [-1, 1]); 227x227 as LoGMH (native 299); "
                "smallest side 75",),
)


@register_model(_S_IRV2)
def inception_resnet_v2(num_classes: int = 2, pretrained: bool | str = False, weights=None) -> nn.Module:
    """timm Inception-ResNet-v2."""
    return _build(_S_IRV2, lambda: _timm("inception_resnet_v2", num_classes), num_classes, pretrained, weights)


_S_DARKNET = _timm_spec(
    "darknet53", "darknet53", "darknet53.c2ns_in1k", {"dscnet_vijayalakshmi": 224}, 224, 4, "imagenet", "head.fc",
    extra=(_C + "YOLO-V3 (a detector) compared as a classifier: its Darknet-53 backbone with a global-pool + "
                "linear head (timm darknet53); 224x224 as Vijayalakshmi's input",),
)


@register_model(_S_DARKNET)
def darknet53(num_classes: int = 4, pretrained: bool | str = False, weights=None) -> nn.Module:
    """timm Darknet-53 classifier (YOLO-V3's backbone)."""
    return _build(_S_DARKNET, lambda: _timm("darknet53", num_classes), num_classes, pretrained, weights)


_S_CENTERNET = _timm_spec(
    "centernet_cls", "dla34", "dla34.in1k", {"logmh_haque2024": 224}, 224, 2, "imagenet", "fc",
    desc="CenterNet's DLA-34 backbone as a classifier (timm dla34)",
    extra=(_C + "CenterNet (a detector) as a classifier: its published DLA-34 backbone (timm dla34) with a "
                "global-pool + linear (1x1 conv) head; IDA up-sampling and heat-map heads dropped",
           _D + "224x224, not LoGMH's 227: DLA-34's residual trees need sides divisible by 32 "
                "(CenterNet itself pads its inputs to a multiple of 32)"),
)


@register_model(_S_CENTERNET)
def centernet_cls(num_classes: int = 2, pretrained: bool | str = False, weights=None) -> nn.Module:
    """CenterNet's backbone (DLA-34) + classification head."""
    return _build(_S_CENTERNET, lambda: _timm("dla34", num_classes), num_classes, pretrained, weights)


_S_RETINANET = ModelSpec(
    name="retinanet_cls",
    papers={"logmh_haque2024": 227},
    paper_input_size=227,
    default_num_classes=2,
    norm="imagenet",
    small_input_size=64,
    head=("fc",),
    sources=(WeightSource("backbone.body", "torchvision", "ResNet50_Weights.IMAGENET1K_V1", ("resnet50",), ("fc",)),),
    paper_pretrained=True,
    description="RetinaNet's ResNet-50 + FPN (P3-P7) backbone, pooled levels + linear head",
    deviations=(
        _C + "RetinaNet (a detector) as a classifier: its published ResNet-50 + FPN P3-P7 backbone, each level "
             "average-pooled, concatenated (1280), one linear layer; anchor sub-nets dropped",
        _C + "ImageNet weights for the ResNet-50 body only (FPN random, as RetinaNet's own initialisation); "
             "plain BatchNorm; 227x227 as LoGMH",
    ),
)


@register_model(_S_RETINANET)
def retinanet_cls(num_classes: int = 2, pretrained: bool | str = False, weights=None) -> nn.Module:
    """RetinaNet backbone classifier; see :class:`RetinaNetClassifier`."""
    return _build(_S_RETINANET, lambda: RetinaNetClassifier(num_classes), num_classes, pretrained, weights)


_S_CNNLSTM = ModelSpec(
    name="cnn_lstm",
    papers={"xincept_khan2024": 224},
    paper_input_size=224,
    default_num_classes=4,
    norm="unit",
    small_input_size=64,
    head=("fc",),
    description="XIncept's CNN+LSTM baseline: 4 conv blocks, rows -> LSTM(128) -> linear",
    deviations=(
        _C + "CNN+LSTM baseline unspecified in the thesis: 4 conv blocks (32-64-128-128, BN, ReLU, max-pool), "
             "rows of the width-pooled 14x7 map as an LSTM(128) sequence, last state -> dropout 0.2 -> linear",
        _C + "trained from scratch; inputs scaled to [0, 1]",
    ),
)


@register_model(_S_CNNLSTM)
def cnn_lstm(num_classes: int = 4, pretrained: bool | str = False, weights=None, **kw) -> nn.Module:
    """CNN+LSTM baseline; see :class:`CNNLSTM`."""
    return _build(_S_CNNLSTM, lambda: CNNLSTM(num_classes, **kw), num_classes, pretrained, weights)
