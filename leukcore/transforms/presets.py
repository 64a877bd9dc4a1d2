"""Per-paper augmentation presets: the papers name the operations; numbers a paper does not
give are ours, marked *chosen*.


=========  =====================================================================================
preset     parameters
=========  =====================================================================================
none       identity (``x / 255``)
dscnet     Kaur et al. sec. 3: h/v flips (p 0.5 each); rotation 20 deg *chosen* (MATLAB's
           ``imageDataAugmenter`` documentation example ``RandRotation [-20 20]``); random
           crop + resize, area (0.7, 1.0), ratio (3/4, 4/3) *chosen*; colour jitter brightness
           0.2, contrast 0.2, saturation 0.2, hue 0.02 *chosen*; fill zeros (MATLAB's FillValue 0)
alnet      Jawahar et al.: rotation 15 deg (stated), horizontal flip (stated, p 0.5), zoom 0.2
           *chosen* (same as XIncept's stated zoom), random contrast 0.2 *chosen* (the usual Keras
           ``RandomContrast`` factor); fill reflection (Keras preprocessing-layer default)
logmh      Haque et al.: brightness 0.2, padding 16 px (~7 % of 227), h/v flips p 0.5,
           translation 0.1, rotation 15 deg, zoom 0.1, crop area (0.8, 1.0) -- all numbers
           *chosen* (the paper lists only the operations); fill zeros (zero padding)
xincept    Khan et al.: zoom 0.2 (stated, x and y independent as in Keras'
           ``ImageDataGenerator``), width shift 0.2 (stated), rotation 15 (stated), horizontal
           flip (stated), crop area (0.8, 1.0) *chosen*; fill border (``fill_mode='nearest'``,
           the ``ImageDataGenerator`` default)
=========  =====================================================================================
"""

from __future__ import annotations
from __future__ import annotations

from dataclasses import fields, replace
from typing import Dict

from .augment import Augment

PRESETS: Dict[str, dict] = {
    "none": {},
    "dscnet": dict(
        hflip=0.5, vflip=0.5, rotation=20.0, crop_scale=(0.7, 1.0),
        brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02, fill="zeros",
    ),
    "alnet": dict(hflip=0.5, rotation=15.0, zoom=0.2, contrast=0.2, fill="reflection"),
    "logmh": dict(
        brightness=0.2, pad=16, hflip=0.5, vflip=0.5, translate=(0.1, 0.1), rotation=15.0,
        zoom=0.1, crop_scale=(0.8, 1.0), fill="zeros",
    ),
    "xincept": dict(
        zoom=0.2, zoom_xy=True, crop_scale=(0.8, 1.0), translate=(0.2, 0.0), rotation=15.0,
        hflip=0.5, fill="border",
    ),
}
"""Per-paper preset parameters (see the module docstring for sources and choices)."""


def list_presets() -> list:
    """Names of the augmentation presets."""
    return sorted(PRESETS)


def make_augment(preset: str = "none", **overrides) -> Augment:
    """Build the :class:`Augment` of a paper preset, with field ``overrides``.

    ``preset`` in ``none | dscnet | alnet | logmh | xincept`` (numbers in the module docstring).
    Unknown presets or fields raise ``ValueError`` listing the valid ones.
    """
    if isinstance(preset, Augment):
        return replace(preset, **overrides) if overrides else preset
    if preset not in PRESETS:
        raise ValueError(f"unknown augmentation preset {preset!r}; valid: {list_presets()}")
    valid = {f.name for f in fields(Augment)} - {"name"}
    bad = sorted(set(overrides) - valid)
    if bad:
        raise ValueError(f"unknown augmentation field(s) {bad}; valid: {sorted(valid)}")
    return Augment(name=preset, **{**PRESETS[preset], **overrides})
