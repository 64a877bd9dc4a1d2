"""Checkpoints of a training run: written atomically after every epoch, loaded without running code
(``weights_only``), with every RNG state so that a resumed run continues bit for bit.

Checkpoints. At the end of every epoch (after validation) ``checkpoint_dir/last.pt`` is written
atomically (temporary file, fsync, ``os.replace``) with the model, optimiser and scheduler
states, the number of completed epochs, the history, the best-epoch bookkeeping, the config and
the Python / NumPy / torch (CPU and CUDA) RNG states plus the shuffle and augmentation
generator states, all as tensors or plain types so that it loads with
``torch.load(..., weights_only=True)``. ``resume=True`` continues from it; on the CPU the
resumed run ends with weights bit-identical to an uninterrupted run (a run killed mid-epoch
redoes that epoch from the previous checkpoint, with the same shuffle, augmentation and dropout
draws). A checkpoint written with
a different config (other than ``epochs``, ``progress``, ``val_every``, ``num_threads``) is
refused.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Dict

import numpy as np
import torch
from torch import nn

CHECKPOINT_NAME = "last.pt"
#: the format tag of a checkpoint (kept from the module that first wrote them, so old checkpoints load)
CHECKPOINT_FORMAT = "leukcore.train/1"
#: config fields that may change between an interrupted run and its resumption
RESUME_MUTABLE = {"epochs", "progress", "val_every", "num_threads"}


def rng_state(gens: Dict[str, torch.Generator]) -> dict:
    """Python, NumPy, torch (CPU and CUDA) and the named generators' states, as tensors and plain types."""
    v, st, gauss = random.getstate()
    kind, key, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "python": {"version": int(v), "state": list(st), "gauss": gauss},
        "numpy": {
            "kind": str(kind),
            "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }
    for k, g in gens.items():
        state[k] = g.get_state()
    return state


def set_rng_state(state: dict, gens: Dict[str, torch.Generator]) -> None:
    """Restore what :func:`rng_state` saved."""
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
    for k, g in gens.items():
        g.set_state(state[k])


def save_atomic(obj, path) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (:func:`leukcore.files.atomic_write_with`)."""
    from ..files import atomic_write_with

    atomic_write_with(path, lambda f: torch.save(obj, f))


def load_checkpoint(path) -> dict:
    """Load a :func:`fit` checkpoint with ``torch.load(..., weights_only=True)`` on the CPU.

    A file holding pickled Python objects (which could run code when loaded) is refused with a
    ValueError naming it.
    """
    import pickle

    try:
        ck = torch.load(Path(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        why = next((ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln), "not plain tensors")
        raise ValueError(f"{path}: refused: it holds pickled Python objects that could run code when loaded "
                         f"({why[:200]}); delete it and train again (resume=False or another checkpoint_dir)") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a leukcore training checkpoint ({CHECKPOINT_FORMAT})")
    return ck


def cpu_state(model: nn.Module) -> dict:
    """A detached CPU copy of ``model``'s state dict."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

