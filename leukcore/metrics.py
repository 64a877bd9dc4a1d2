"""The study's metrics, where their users import them: the public face of
:mod:`leukcore.evaluation.metrics` (``from leukcore.metrics import compute_metrics``)."""
from __future__ import annotations

from .evaluation.metrics import *  # noqa: F401,F403 - the face re-exports exactly the module's __all__
from .evaluation.metrics import __all__  # noqa: F401
