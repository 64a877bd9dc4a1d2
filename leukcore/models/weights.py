"""Loading a model's weights: a local file, ``$LEUKCORE_WEIGHTS``, or the torchvision / timm ImageNet
weights its :class:`~leukcore.models.registry.ModelSpec` declares (caches, then a guarded download).

Files are read with ``weights_only=True``; head keys of another shape are dropped and reported;
with no weights found :class:`WeightsUnavailableError` says which file to put where.
"""
from __future__ import annotations

import logging
import os
import socket
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .registry import ModelSpec, WeightSource


FROM_SCRATCH_DEVIATION = "ImageNet weights unavailable: trained from scratch"
_OFFLINE_ENV = ("LEUKCORE_OFFLINE", "HF_HUB_OFFLINE")
_log = logging.getLogger(__name__)
_PROBE_TIMEOUT_S = 3.0
_DOWNLOAD_TIMEOUT_S = 60.0


class WeightsUnavailableError(RuntimeError):
    """Raised by ``create_model(..., pretrained=True)`` when no pretrained weights can be found."""



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


def load_file_into(model: nn.Module, target: str, path: Path, head: Sequence[str], name: str) -> dict:
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


def load_pretrained(model: nn.Module, spec: ModelSpec) -> dict[str, Any]:
    """Resolve ``pretrained=True``: $LEUKCORE_WEIGHTS/<name>, per-part files, library weights."""
    post = getattr(model, "_leukcore_after_imagenet_load", None)
    whole = _weights_dir_file(spec.name)
    if whole is not None:
        report = load_file_into(model, "", whole, spec.head, spec.name)
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
            rep = load_file_into(model, src.target, payload, src.head, spec.name)
        else:
            sd, origin = payload
            rep = _load_state_dict_into(model, src.target, sd, src.head, origin)
        reports.append(rep)
        _log.info("%s: loaded %d tensors from %s; head keys dropped: %s", spec.name, rep["loaded"],
                  rep["source"], rep["dropped_head_keys"])
    if callable(post):
        post()
    return reports[0] if len(reports) == 1 else {"parts": reports}
