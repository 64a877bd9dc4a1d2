"""The losses the papers compare, where their users import them: the public face of
:mod:`leukcore.engine.losses` (``from leukcore.losses import make_loss``)."""
from __future__ import annotations

from .engine.losses import (BinaryCrossEntropyLoss, CrossEntropyLoss, FocalLoss, KLDivergenceLoss,
                            SparseCrossEntropyLoss, l2_penalty, list_losses, make_loss)

__all__ = ["CrossEntropyLoss", "SparseCrossEntropyLoss", "KLDivergenceLoss", "FocalLoss", "BinaryCrossEntropyLoss",
           "make_loss", "list_losses", "l2_penalty"]
