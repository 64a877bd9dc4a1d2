"""The route registry: how an experiment runs, one :class:`Route` per file, registered by name.

A protocol names each experiment's ``route`` (``cnn`` when it names none). Everything that
depends on it asks the route object, never compares the name: :func:`get_route` returns it, and
its attributes and methods say whether it trains (:attr:`Route.trains`; an aggregate pools other
experiments' records instead), which network it builds (:meth:`Route.network`, whose smallest
input size and ImageNet weights apply), which classifier it fits on top (:meth:`Route.classifier`),
whether its model is explained by Grad-CAM (:attr:`Route.explained`), and how it trains and tests
one fold (:meth:`Route.fit_fold`). Adding a route is one module that subclasses :class:`Route` and
decorates it with :func:`register_route` (imported in ``leukcore/runs/routes/__init__.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

#: Every registered route by name (filled by :func:`register_route`).
ROUTES: dict[str, "Route"] = {}
#: The route of an experiment whose protocol entry names none.
DEFAULT_ROUTE = "cnn"


@dataclass
class FoldInputs:
    """What a route trains and tests on in one fold: the decoded images and labels of the whole
    table, the fold's parts as row indices, the run's settings, and how to run (seed, device)."""

    settings: dict
    n_classes: int
    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    val: np.ndarray | None
    test: np.ndarray
    test_ids: list
    seed: int
    device: str
    progress: bool = False
    checkpoint_dir: Path | None = None  #: resumable training checkpoints (None: none written)
    weights_path: Path | None = None     #: where a route that keeps its final weights puts them (fold 0)

    def validation(self):
        """``(x, y)`` of the validation part, or None when the fold has none."""
        va = self.val
        return (self.x[va], self.y[va]) if va is not None and len(va) else None


@dataclass
class FoldOutput:
    """What one fold gave: test probabilities ``(n_test, C)``, the training history, trainable
    parameters (None when nothing was trained end to end) and the model's interpretation lines."""

    prob: np.ndarray
    history: list
    params: int | None
    model_lines: list


class Route:
    """How one experiment runs. Subclasses set :attr:`name` and override what differs."""

    name: ClassVar[str] = ""
    #: False: the route trains nothing and pools the records of the experiments :meth:`parts` names
    trains: ClassVar[bool] = True
    #: True: the route's fold-0 model is a CNN whose final weights are kept for Grad-CAM
    explained: ClassVar[bool] = False

    def network(self, exp) -> str | None:
        """The network the run builds: its smallest input size and its ImageNet weights apply."""
        return exp.model

    def classifier(self, exp) -> str | None:
        """The classifier fitted on the network's features (None: the network classifies)."""
        return None

    def parts(self, exp) -> list[str]:
        """The experiments whose records a pooling route (``trains = False``) pools."""
        return []

    @staticmethod
    def pooled_fingerprint(fingerprints) -> str:
        """The data fingerprint of a record that pools others: the settings hash of their sorted
        data fingerprints."""
        from ..records import settings_hash

        return settings_hash({"fps": sorted(fingerprints)})

    def fit_fold(self, exp, inputs: FoldInputs) -> FoldOutput:
        """Train on ``inputs.train`` (validating on ``inputs.val``) and predict ``inputs.test``."""
        raise NotImplementedError(f"route {self.name!r} trains nothing")


def register_route(cls: type[Route]) -> type[Route]:
    """Class decorator: register one instance of ``cls`` under ``cls.name``."""
    if not cls.name or cls.name in ROUTES:
        raise ValueError(f"route name {cls.name!r} is empty or taken")
    ROUTES[cls.name] = cls()
    return cls


def list_routes() -> list[str]:
    """The registered route names."""
    return list(ROUTES)


def get_route(name: str | None) -> Route:
    """The route called ``name`` (None: :data:`DEFAULT_ROUTE`); unknown names raise a ValueError
    listing the valid ones."""
    try:
        return ROUTES[name or DEFAULT_ROUTE]
    except KeyError:
        raise ValueError(f"unknown route {name!r}; valid: {', '.join(ROUTES)}") from None
