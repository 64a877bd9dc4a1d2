"""Batched tensor augmentation of uint8 NCHW image batches (CPU or GPU).

Every preset of the study is one :class:`Augment`, built by :func:`make_augment`. A call
``aug(batch_uint8, generator=g)`` draws one set of random parameters *per sample* from the
CPU ``torch.Generator`` ``g`` (seeded => deterministic, and the same parameters on CPU and GPU
because they are always drawn on the CPU), then applies them to the whole batch at once:

1. **geometry**: one 2x3 affine matrix per sample composing flips, zoom, rotation,
   translation / padding shift and random resized crop, applied with a single
   ``F.grid_sample`` (bilinear, ``align_corners=False``) on float. When no other geometric
   operation is enabled, flips are exact index operations
   (``torch.where(flip, x.flip(-1), x)``) and no resampling happens;
2. **colour**: brightness, contrast, saturation and hue are linear maps of the RGB vector, so
   they are composed into one per-sample 3x3 matrix and offset, applied with one
   ``torch.baddbmm`` and clamped to [0, 1] once.

The result is **float32 in [0, 1]**, NCHW, on the input's device (no second rounding to uint8),
or, with ``mean`` / ``std`` given, the normalised batch ``(x - mean) / std`` (fused into the
last pass). :func:`~leukcore.transforms.normalize.uint8_to_normalized` does the same for an un-augmented uint8 batch.

Two backends compute this (``Augment.backend``; ``auto`` picks by device): **torch**
(:mod:`.torch_backend`, any device; the reference, checked against torchvision) and **opencv**
(:mod:`.opencv_backend`, CPU batches): the same matrices applied image by image on uint8, which
differs from torch by two roundings (bounded in the tests; speeds are in the benchmark records).

Geometry, in normalised coordinates ``u in [-1, 1]`` of the *output* image, the sampled source
point is ``s = C · T · R · Z · P · u`` (homogeneous 3x3 matrices), where

- ``P = diag(+-1, +-1)``: horizontal / vertical flip with probability ``hflip`` / ``vflip``;
- ``Z = diag(z_x, z_y)`` with ``z ~ U[1 - zoom, 1 + zoom]`` (``z < 1`` zooms in; one factor for
  both axes unless ``zoom_xy=True``, which draws them independently as Keras'
  ``ImageDataGenerator`` does);
- ``R`` the rotation by ``a ~ U[-rotation, rotation]`` degrees, aspect-corrected
  (``[[cos a, -sin a · H/W], [sin a · W/H, cos a]]``) so that it is a true rotation in pixels;
- ``T`` the shift ``(2 t_x + 2 d_x / W, 2 t_y + 2 d_y / H)`` with ``t ~ U[-translate, translate]``
  (fraction of the side) and ``d`` an integer in ``[-pad, pad]`` pixels: padding by ``pad``
  pixels and cropping back at a random position (torchvision ``RandomCrop(size, padding=pad)``)
  is exactly an integer shift with the fill of ``fill``;
- ``C`` the random resized crop: area fraction ``s ~ U[crop_scale]``, aspect ratio ``r``
  log-uniform in ``crop_ratio``, crop width / height (fractions of the side)
  ``w = min(1, sqrt(s r))``, ``h = min(1, sqrt(s / r))``, centre ``c ~ U[-(1-w), 1-w]`` (and
  likewise for ``h``); ``C = [[w, 0, c_x], [0, h, c_y]]`` resizes the crop back to the input
  size (bilinear, without antialiasing).

Pixels sampled outside the image take the ``fill`` rule (``zeros``, ``border`` = nearest edge
pixel, ``reflection``).

Colour (torchvision ``ColorJitter`` formulas, fixed order brightness, contrast, saturation, hue,
each factor drawn per sample), with ``w = (0.2989, 0.587, 0.114)`` the luma weights:

- brightness ``x' = b x``, ``b ~ U[max(0, 1 - brightness), 1 + brightness]``;
- contrast ``x' = c x + (1 - c) mean(w^T x)`` (mean over the image), ``c`` drawn as ``b``;
- saturation ``x' = s x + (1 - s) w^T x``, ``s`` drawn as ``b``;
- hue ``x' = R x`` with ``R`` the rotation about the grey axis ``(1, 1, 1) / sqrt 3`` by
  ``2 pi h``, ``h ~ U[-hue, hue]`` (the linear "hue-rotate" of image editors; it keeps greys
  grey and approximates torchvision's HSV hue shift).

Difference from torchvision, stated: torchvision clamps to [0, 1] after every colour step; we
clamp once after the composed map, which differs only for pixels that leave [0, 1] in an
intermediate step.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from .normalize import uint8_to_normalized
from .opencv_backend import apply_opencv
from .torch_backend import apply_torch

FILL_MODES = {"zeros": "zeros", "border": "border", "reflection": "reflection"}
#: how :meth:`Augment.apply` computes: ``torch`` (one ``grid_sample`` + one ``baddbmm`` per batch, any
#: device), ``opencv`` (per image ``cv2.warpAffine`` + ``cv2.transform`` on uint8, CPU only), ``auto``
BACKENDS = ("auto", "torch", "opencv")

#: luma weights of the colour formulas
LUMA = (0.2989, 0.587, 0.114)


@dataclass(frozen=True)
class Augment:
    """A batched augmentation pipeline; see the module docstring for the formulas.

    Fields (all magnitudes are symmetric ranges around the identity; 0 disables an op):
    ``hflip``/``vflip`` probabilities; ``rotation`` degrees; ``zoom`` (``z ~ U[1-zoom, 1+zoom]``)
    with ``zoom_xy`` for independent x/y factors; ``translate`` ``(t_x, t_y)`` fractions;
    ``pad`` pixels; ``crop_scale`` area range (``None`` = no crop) and ``crop_ratio``;
    ``brightness``, ``contrast``, ``saturation``, ``hue``; ``fill`` in ``zeros | border |
    reflection`` (``grid_sample`` padding modes) for pixels sampled outside the image;
    ``backend`` ``auto | torch | opencv`` (see :meth:`apply`; ``auto``: OpenCV for CPU
    batches, torch for GPU ones).

    ``aug(x, generator=g)`` returns float32 NCHW in [0, 1] on ``x``'s device;
    ``aug(x, generator=g, mean=m, std=s)`` the normalised batch ``(x_aug - m) / s``.
    ``aug.sample(n, g)`` + ``aug.apply(x, params)`` split the two steps (same result).
    """

    name: str = "custom"
    hflip: float = 0.0
    vflip: float = 0.0
    rotation: float = 0.0
    zoom: float = 0.0
    zoom_xy: bool = False
    translate: Tuple[float, float] = (0.0, 0.0)
    pad: int = 0
    crop_scale: Optional[Tuple[float, float]] = None
    crop_ratio: Tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    fill: str = "zeros"
    backend: str = "auto"

    def __post_init__(self):
        if self.fill not in FILL_MODES:
            raise ValueError(f"unknown fill {self.fill!r}; valid: {sorted(FILL_MODES)}")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown augmentation backend {self.backend!r}; valid: {list(BACKENDS)}")
        for p in ("hflip", "vflip"):
            v = getattr(self, p)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{p} is a probability in [0, 1], got {v}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {self.hue}")
        if not 0.0 <= self.zoom < 1.0:
            raise ValueError(f"zoom must be in [0, 1), got {self.zoom}")
        if self.crop_scale is not None:
            lo, hi = self.crop_scale
            if not 0.0 < lo <= hi <= 1.0:
                raise ValueError(f"crop_scale must satisfy 0 < lo <= hi <= 1, got {self.crop_scale}")
        # tuples for hashing / equality when built from lists
        object.__setattr__(self, "translate", tuple(float(t) for t in self.translate))
        object.__setattr__(self, "crop_ratio", tuple(float(t) for t in self.crop_ratio))
        if self.crop_scale is not None:
            object.__setattr__(self, "crop_scale", tuple(float(t) for t in self.crop_scale))

    # ------------------------------------------------------------------ properties
    @property
    def geometric(self) -> bool:
        """True when any affine operation (rotation, zoom, shift, pad, crop) is enabled."""
        return bool(
            self.rotation or self.zoom or any(self.translate) or self.pad or self.crop_scale is not None
        )

    @property
    def colour(self) -> bool:
        """True when any colour operation is enabled."""
        return bool(self.brightness or self.contrast or self.saturation or self.hue)

    @property
    def identity(self) -> bool:
        """True when the pipeline does nothing but ``x / 255``."""
        return not (self.hflip or self.vflip or self.geometric or self.colour)

    def to_dict(self) -> dict:
        """Plain-type description (for run records)."""
        d = asdict(self)
        d["translate"] = list(d["translate"])
        d["crop_ratio"] = list(d["crop_ratio"])
        if d["crop_scale"] is not None:
            d["crop_scale"] = list(d["crop_scale"])
        return d

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """Draw per-sample parameters for ``n`` images (CPU tensors, from ``generator``).

        Keys present only for enabled operations: ``hflip``/``vflip`` (bool, N), ``angle``
        (degrees, N), ``zoom`` (N, 2: x and y sampling scale), ``shift`` (N, 2: fractions of the
        side), ``pad_shift`` (N, 2: integer pixels), ``crop`` (N, 4: w, h, c_x, c_y in normalised
        units), ``brightness``/``contrast``/``saturation``/``hue`` (N). Draws happen in this
        fixed order.
        """
        g = generator

        def u(lo, hi, *shape):
            return torch.rand(n, *shape, generator=g, dtype=torch.float64) * (hi - lo) + lo

        p: Dict[str, torch.Tensor] = {}
        if self.hflip:
            p["hflip"] = torch.rand(n, generator=g) < self.hflip
        if self.vflip:
            p["vflip"] = torch.rand(n, generator=g) < self.vflip
        if self.rotation:
            p["angle"] = u(-self.rotation, self.rotation)
        if self.zoom:
            z = u(1.0 - self.zoom, 1.0 + self.zoom, 2 if self.zoom_xy else 1)
            p["zoom"] = z if self.zoom_xy else z.expand(n, 2).clone()
        if any(self.translate):
            tx, ty = self.translate
            p["shift"] = torch.stack([u(-tx, tx), u(-ty, ty)], 1)
        if self.pad:
            p["pad_shift"] = torch.randint(-self.pad, self.pad + 1, (n, 2), generator=g).double()
        if self.crop_scale is not None:
            lo, hi = self.crop_scale
            area = u(lo, hi)
            logr = u(math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1]))
            r = torch.exp(logr)
            w = torch.sqrt(area * r).clamp(max=1.0)
            h = torch.sqrt(area / r).clamp(max=1.0)
            cx = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * (1 - w)
            cy = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * (1 - h)
            p["crop"] = torch.stack([w, h, cx, cy], 1)
        for k in ("brightness", "contrast", "saturation"):
            m = getattr(self, k)
            if m:
                p[k] = u(max(0.0, 1.0 - m), 1.0 + m)
        if self.hue:
            p["hue"] = u(-self.hue, self.hue)
        return p

    # ------------------------------------------------------------------ application
    @staticmethod
    def theta(params: Dict[str, torch.Tensor], n: int, height: int, width: int) -> torch.Tensor:
        """The (N, 2, 3) float64 sampling matrices ``C · T · R · Z · P`` for ``params``
        (``P = diag(+-1, +-1)`` the flips). Computed with NumPy: a few dozen operations on (N, 3, 3)
        arrays cost ~10x less than the same torch calls, which matters once per batch."""
        p = {k: v.numpy() for k, v in params.items()}
        eye = np.eye(3)
        m = np.repeat(eye[None], n, axis=0)
        if "hflip" in p:
            m[:, 0, 0] = 1.0 - 2.0 * p["hflip"]
        if "vflip" in p:
            m[:, 1, 1] = 1.0 - 2.0 * p["vflip"]
        if "zoom" in p:
            z = np.repeat(eye[None], n, axis=0)
            z[:, 0, 0] = p["zoom"][:, 0]
            z[:, 1, 1] = p["zoom"][:, 1]
            m = z @ m
        if "angle" in p:
            ang = p["angle"] * (math.pi / 180.0)
            c, s = np.cos(ang), np.sin(ang)
            r = np.repeat(eye[None], n, axis=0)
            r[:, 0, 0] = c
            r[:, 0, 1] = -s * (height / width)
            r[:, 1, 0] = s * (width / height)
            r[:, 1, 1] = c
            m = r @ m
        if "shift" in p or "pad_shift" in p:
            t = np.repeat(eye[None], n, axis=0)
            if "shift" in p:
                t[:, 0, 2] += 2.0 * p["shift"][:, 0]
                t[:, 1, 2] += 2.0 * p["shift"][:, 1]
            if "pad_shift" in p:
                t[:, 0, 2] += 2.0 * p["pad_shift"][:, 0] / width
                t[:, 1, 2] += 2.0 * p["pad_shift"][:, 1] / height
            m = t @ m
        if "crop" in p:
            w, h, cx, cy = p["crop"].T
            cm = np.zeros((n, 3, 3))
            cm[:, 0, 0] = w
            cm[:, 1, 1] = h
            cm[:, 0, 2] = cx
            cm[:, 1, 2] = cy
            cm[:, 2, 2] = 1.0
            m = cm @ m
        return torch.from_numpy(np.ascontiguousarray(m[:, :2, :]))

    def colour_matrix(self, params: Dict[str, torch.Tensor]):
        """Per-sample colour map ``x' = A x + o0 + G mu`` as float64 ``(A, o0, G)``.

        ``A``, ``G`` are (N, 3, 3), ``o0`` (N, 3); ``mu`` is the image's per-channel mean at the
        colour stage, so the contrast offset is computed on the device without a sync. Each
        step maps ``(A, o) <- (L A, L o + t)`` with ``o = o0 + G mu``: brightness ``L = b I``;
        contrast ``L = c I``, ``t = (1 - c) w^T (A mu + o) 1`` (the current mean grey level,
        ``w`` the luma weights); saturation ``L = s I + (1 - s) 1 w^T``; hue ``L`` = rotation
        about the grey axis ``k = (1, 1, 1) / sqrt 3`` by ``2 pi h``
        (``cos I + sin [k]x + (1 - cos) k k^T``).
        """
        p = {k: v.numpy() for k, v in params.items() if k in ("brightness", "contrast", "saturation", "hue")}
        n = next(iter(params.values())).shape[0]
        eye = np.eye(3)
        a = np.repeat(eye[None], n, axis=0)
        g = np.zeros((n, 3, 3))
        o = np.zeros((n, 3, 1))
        w = np.asarray(LUMA, dtype=np.float64).reshape(1, 3)
        ones = np.ones((3, 1))

        def left(lmat, a, o, g):
            return lmat @ a, lmat @ o, lmat @ g

        if "brightness" in p:
            a, o, g = left(p["brightness"].reshape(n, 1, 1) * eye, a, o, g)
        if "contrast" in p:
            c = p["contrast"].reshape(n, 1, 1)
            # mean grey level m = w (A mu + o0 + G mu) = w o0 + w (A + G) mu
            o_new = c * o + (1.0 - c) * (ones @ (w @ o))
            g = c * g + (1.0 - c) * (ones @ (w @ (a + g)))
            a, o = c * a, o_new
        if "saturation" in p:
            s = p["saturation"].reshape(n, 1, 1)
            a, o, g = left(s * eye + (1.0 - s) * (ones @ w), a, o, g)
        if "hue" in p:
            phi = p["hue"] * (2.0 * math.pi)
            k = np.full(3, 1.0 / math.sqrt(3.0))
            kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
            cos, sin = np.cos(phi).reshape(n, 1, 1), np.sin(phi).reshape(n, 1, 1)
            a, o, g = left(cos * eye + sin * kx + (1.0 - cos) * np.outer(k, k), a, o, g)
        return torch.from_numpy(a), torch.from_numpy(np.ascontiguousarray(o[:, :, 0])), torch.from_numpy(g)

    def apply(
        self,
        x: torch.Tensor,
        params: Dict[str, torch.Tensor],
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
    ) -> torch.Tensor:
        """Apply given per-sample ``params`` (from :meth:`sample`) to ``x``.

        ``x``: uint8 NCHW (3 channels for colour operations). Returns float32 NCHW in [0, 1]
        on ``x``'s device, or, when ``mean`` and ``std`` are given, the normalised batch
        ``(x_aug - mean) / std`` (the normalisation is fused with the last pass). Deterministic
        given ``params``; sample ``i`` of the result depends only on ``x[i]`` and the ``i``-th
        parameters.
        """
        if x.ndim != 4:
            raise ValueError(f"expected an NCHW batch, got shape {tuple(x.shape)}")
        if x.dtype != torch.uint8:
            raise ValueError(f"expected a uint8 batch, got {x.dtype}")
        if self.resolve_backend(x) == "opencv":
            return apply_opencv(self, x, params, mean, std)
        return apply_torch(self, x, params, mean, std)

    def resolve_backend(self, x: torch.Tensor) -> str:
        """The backend :meth:`apply` uses for batch ``x``: ``opencv`` for a CPU batch of 1 or 3
        channels under ``auto`` (``torch`` otherwise); ``opencv`` asked for a GPU batch is an error."""
        if self.backend == "torch":
            return "torch"
        cpu_ok = x.device.type == "cpu" and x.ndim == 4 and x.shape[1] in (1, 3)
        if self.backend == "opencv":
            if not cpu_ok:
                raise ValueError(f"the opencv backend takes CPU batches of 1 or 3 channels, got {tuple(x.shape)} "
                                 f"on {x.device}; use backend='torch' (or 'auto')")
            return "opencv"
        return "opencv" if cpu_ok else "torch"

    def __call__(
        self,
        x: torch.Tensor,
        generator: Optional[torch.Generator] = None,
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
    ) -> torch.Tensor:
        """Sample per-sample parameters from ``generator`` and apply them (see :meth:`apply`)."""
        if self.identity:
            if mean is None and std is None:
                return x.float().div_(255.0)
            return uint8_to_normalized(x, 0.0 if mean is None else mean, 1.0 if std is None else std)
        return self.apply(x, self.sample(x.shape[0], generator), mean=mean, std=std)
