"""The study's metrics, where their users import them: the public face of
:mod:`leukcore.evaluation.metrics` (``from leukcore.metrics import compute_metrics``)."""
from __future__ import annotations

from .evaluation.metrics import (AVERAGED_METRICS, bootstrap_ci, bootstrap_runs_ci, compute_metrics, mcnemar, metric_at,
                                 wilson_interval)

__all__ = ["AVERAGED_METRICS", "compute_metrics", "metric_at", "bootstrap_ci", "bootstrap_runs_ci", "wilson_interval",
           "mcnemar"]
