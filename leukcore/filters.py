"""The papers' image filters, where their users import them: the public face of
:mod:`leukcore.transforms.filters` (``from leukcore.filters import logmh``)."""
from __future__ import annotations

from .transforms.filters import (BT601_WEIGHTS, LOGMH_DEFAULTS, SHARPEN_KERNEL, SharpenLayer, dscnet_sharpen, logmh,
                                 reinhard_normalize, reinhard_target, to_grey)

__all__ = ["LOGMH_DEFAULTS", "SHARPEN_KERNEL", "BT601_WEIGHTS", "logmh", "dscnet_sharpen", "SharpenLayer", "to_grey",
           "reinhard_target", "reinhard_normalize"]
