"""What happens to an image between the disk and the model, split by concern:

- :mod:`.filters`         the papers' image filters (LoGMH, DSCNet sharpening, grey, Reinhard)
- :mod:`.augment`         :class:`Augment`: per-sample random parameters and their matrices
- :mod:`.presets`         the per-paper presets, :func:`make_augment`
- :mod:`.torch_backend`   applying them with torch (any device)
- :mod:`.opencv_backend`  applying them with OpenCV (CPU)
- :mod:`.normalize`       uint8 -> ``(x / 255 - mean) / std``
"""
from __future__ import annotations

from .augment import BACKENDS, Augment
from .normalize import Normalizer, normalize, uint8_to_normalized
from .presets import PRESETS, list_presets, make_augment

__all__ = ["Augment", "BACKENDS", "Normalizer", "PRESETS", "list_presets", "make_augment", "normalize",
           "uint8_to_normalized"]
