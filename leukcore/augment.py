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
last pass). :func:`to_float_normalized` does the same for an un-augmented uint8 batch.

Two backends compute this (``Augment.backend``; ``auto`` picks by device): **torch**, as
above, on any device (the reference: the tests check its formulas against torchvision), and
**opencv** for CPU batches (``auto``'s choice there): the same matrices applied image by image
with ``cv2.warpAffine`` (bilinear, uint8, SIMD) and ``cv2.transform``, rounded to uint8 after
each, then one ``cv2.LUT`` to normalised float. On a 2-core CPU the torch backend spends
most of its time in float ``grid_sample``; the OpenCV one is ~2-3x faster for the same
parameters and differs from it by the two roundings (mean absolute difference ~0.25 grey
levels on the Taleqani images, at most ~1.5).

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

Presets (the papers name the operations; numbers the paper does not give are ours, marked
*chosen*):

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

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "Augment",
    "PRESETS",
    "make_augment",
    "list_presets",
    "normalize",
    "to_float_normalized",
]

_FILL_MODES = {"zeros": "zeros", "border": "border", "reflection": "reflection"}
#: how :meth:`Augment.apply` computes: ``torch`` (one ``grid_sample`` + one ``baddbmm`` per batch, any
#: device), ``opencv`` (per image ``cv2.warpAffine`` + ``cv2.transform`` on uint8, CPU only), ``auto``
BACKENDS = ("auto", "torch", "opencv")


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
        if self.fill not in _FILL_MODES:
            raise ValueError(f"unknown fill {self.fill!r}; valid: {sorted(_FILL_MODES)}")
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
        w = np.asarray(_LUMA, dtype=np.float64).reshape(1, 3)
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
            return self._apply_opencv(x, params, mean, std)
        n, ch, height, width = x.shape
        dev = x.device
        geo = any(k in params for k in ("angle", "zoom", "shift", "pad_shift", "crop"))
        if not geo:  # exact index flips; with geometry they are folded into the affine matrix
            if "hflip" in params:
                x = torch.where(params["hflip"].to(dev).view(n, 1, 1, 1), x.flip(-1), x)
            if "vflip" in params:
                x = torch.where(params["vflip"].to(dev).view(n, 1, 1, 1), x.flip(-2), x)
        # contiguous NCHW float, 0..255 until the colour / normalisation pass
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if geo:
            th = self.theta(params, n, height, width)
            x = F.grid_sample(
                x, _affine_grid(th, height, width, dev), mode="bilinear", padding_mode=self.fill, align_corners=False
            )
        colour = any(k in params for k in ("brightness", "contrast", "saturation", "hue"))
        scale = 1.0 / 255.0
        if colour:
            if ch != 3:
                raise ValueError("colour operations need 3-channel images")
            a, o, g = self.colour_matrix(params)
            a = (a * scale).to(dev, torch.float32)
            o = o.to(dev, torch.float32).view(n, 3, 1)
            if "contrast" in params:  # offset term from the channel means, on the device
                mu = x.mean(dim=(2, 3)).view(n, 3, 1)
                o = torch.baddbmm(o, (g * scale).to(dev, torch.float32), mu)
            x = torch.baddbmm(o, a, x.reshape(n, 3, height * width)).view(n, 3, height, width)
            x.clamp_(0.0, 1.0)
            scale = 1.0
        if mean is not None or std is not None:
            m = _stats(0.0 if mean is None else mean, x)
            s = _stats(1.0 if std is None else std, x)
            return torch.addcmul(-m / s, x, scale / s)
        return x.div_(255.0) if scale != 1.0 else x

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

    def _apply_opencv(self, x: torch.Tensor, params: Dict[str, torch.Tensor], mean, std) -> torch.Tensor:
        """:meth:`apply` on the CPU with OpenCV, image by image on uint8 (its SIMD bilinear
        ``warpAffine`` is ~3x faster than float ``grid_sample`` on a 2-core machine).

        Same parameters, same formulas as the torch backend: the affine matrices of :meth:`theta`
        converted to pixel coordinates (``align_corners=False``: ``x = ((u + 1) W - 1) / 2``), the
        fill as OpenCV border (``zeros`` constant 0, ``border`` replicate, ``reflection``
        reflect, which is ``grid_sample``'s reflection about the pixel edges), then the composed
        colour map with the contrast mean taken on the warped image; the result is rounded to
        uint8 after the warp and after the colour map (saturating, which is the clamp to
        [0, 1]), then converted to float and normalised in one pass. The differences from the
        torch backend are those roundings (at most half a level each) and OpenCV's 1/32-pixel
        coordinate precision: mean absolute difference well under one level in 255
        (``tests/test_augment.py`` bounds it). Returns float32 NCHW with channels-last strides.
        """
        import cv2

        n, ch, height, width = x.shape
        geo = any(k in params for k in ("angle", "zoom", "shift", "pad_shift", "crop"))
        if not geo:  # exact index flips, as in the torch backend
            if "hflip" in params:
                x = torch.where(params["hflip"].view(n, 1, 1, 1), x.flip(-1), x)
            if "vflip" in params:
                x = torch.where(params["vflip"].view(n, 1, 1, 1), x.flip(-2), x)
        src = x.permute(0, 2, 3, 1)
        if not src.is_contiguous():
            src = src.contiguous()
        src = src.numpy()
        if ch == 1:
            src = src[..., 0]
        work = np.empty_like(src)  # uint8 after the warp and the colour map
        res = np.empty(src.shape, dtype=np.float32)  # normalised float, NHWC
        mats = _pixel_matrices(self.theta(params, n, height, width), height, width) if geo else None
        colour = any(k in params for k in ("brightness", "contrast", "saturation", "hue"))
        if colour:
            if ch != 3:
                raise ValueError("colour operations need 3-channel images")
            a, o, g = self.colour_matrix(params)
            a, o, g = a.numpy(), o.numpy() * 255.0, g.numpy()
            contrast = "contrast" in params
        border = _CV_BORDER[self.fill]
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        lut = _normalizing_lut(ch, 0.0 if mean is None else mean, 1.0 if std is None else std)

        def images(lo: int, hi: int) -> None:  # images lo..hi-1, start to end (OpenCV releases the GIL)
            cm = np.empty((3, 4), dtype=np.float32)
            if geo and ch == 3:  # OpenCV's SIMD warp serves 4 channels: 3.4x faster, same RGB values
                rgba, warped = np.empty((height, width, 4), np.uint8), np.empty((height, width, 4), np.uint8)
            for i in range(lo, hi):
                if geo and ch == 3:
                    cv2.cvtColor(src[i], cv2.COLOR_RGB2RGBA, dst=rgba)
                    cv2.warpAffine(rgba, mats[i], (width, height), dst=warped, flags=flags, borderMode=border,
                                   borderValue=0)
                    cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB, dst=work[i])
                elif geo:
                    cv2.warpAffine(src[i], mats[i], (width, height), dst=work[i], flags=flags, borderMode=border,
                                   borderValue=0)
                else:
                    work[i] = src[i]
                if colour:
                    off = o[i]
                    if contrast:  # the offset from the channel means of the warped image (0..255 units)
                        off = off + g[i] @ np.asarray(cv2.mean(work[i])[:3])
                    cm[:, :3] = a[i]
                    cm[:, 3] = off
                    cv2.transform(work[i], cm, dst=work[i])
            rows = (hi - lo) * height
            cv2.LUT(work[lo:hi].reshape(rows, width, ch), lut, dst=res[lo:hi].reshape(rows, width, ch))

        _in_chunks(images, n)
        t = torch.from_numpy(res)
        return t.unsqueeze(1) if ch == 1 else t.permute(0, 3, 1, 2)  # NCHW view, channels-last strides

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
            return to_float_normalized(x, 0.0 if mean is None else mean, 1.0 if std is None else std)
        return self.apply(x, self.sample(x.shape[0], generator), mean=mean, std=std)


_LUMA = (0.2989, 0.587, 0.114)


_CV_BORDER = {"zeros": 0, "border": 1, "reflection": 2}  # cv2.BORDER_CONSTANT, _REPLICATE, _REFLECT


def _pixel_matrices(theta: torch.Tensor, height: int, width: int) -> np.ndarray:
    """(N, 2, 3) float64 ``theta`` (output -> input, normalised, ``align_corners=False``) as the
    float32 pixel matrices OpenCV's ``warpAffine(..., WARP_INVERSE_MAP)`` takes: ``P · T · Q`` with
    ``Q`` output pixel -> normalised (``u = (2 x + 1) / W - 1``) and ``P`` normalised -> input pixel."""
    n = theta.shape[0]
    t = np.zeros((n, 3, 3))
    t[:, :2, :] = theta.numpy()
    t[:, 2, 2] = 1.0
    q = np.array([[2.0 / width, 0.0, 1.0 / width - 1.0], [0.0, 2.0 / height, 1.0 / height - 1.0], [0.0, 0.0, 1.0]])
    p = np.array([[width / 2.0, 0.0, (width - 1) / 2.0], [0.0, height / 2.0, (height - 1) / 2.0], [0.0, 0.0, 1.0]])
    return np.ascontiguousarray((p @ t @ q)[:, :2, :], dtype=np.float32)


def _affine_grid(theta: torch.Tensor, height: int, width: int, device) -> torch.Tensor:
    """``F.affine_grid(theta, (N, C, H, W), align_corners=False)`` computed by broadcasting.

    Output pixel centres ``u_j = (2 j + 1) / W - 1``, ``v_i = (2 i + 1) / H - 1``; the grid is
    ``(t00 u + t01 v + t02, t10 u + t11 v + t12)`` per sample (same numbers, without the
    (N, H, W, 3) base grid and batched matmul that make ``affine_grid`` slow on the CPU).
    """
    n = theta.shape[0]
    th = theta.to(device=device, dtype=torch.float32)
    u = (torch.arange(width, device=device, dtype=torch.float32) * 2.0 + 1.0) / width - 1.0
    v = (torch.arange(height, device=device, dtype=torch.float32) * 2.0 + 1.0) / height - 1.0
    grid = torch.empty(n, height, width, 2, device=device, dtype=torch.float32)
    for k in range(2):
        gx = th[:, k, 0].view(n, 1) * u.view(1, width)  # (n, W)
        gy = th[:, k, 1].view(n, 1) * v.view(1, height) + th[:, k, 2].view(n, 1)  # (n, H)
        torch.add(gy.view(n, height, 1), gx.view(n, 1, width), out=grid[..., k])
    return grid


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


_STATS_CACHE: Dict[tuple, torch.Tensor] = {}


def _stats(values, x: torch.Tensor) -> torch.Tensor:
    """Per-channel statistics as a (1, C, 1, 1) float32 tensor on ``x``'s device (cached, so a
    training loop does not copy them to the GPU at every step)."""
    vals = tuple(float(v) for v in torch.as_tensor(values, dtype=torch.float64).reshape(-1).tolist())
    if len(vals) == 1:
        vals = vals * x.shape[1]
    key = (vals, str(x.device))
    t = _STATS_CACHE.get(key)
    if t is None:
        if len(_STATS_CACHE) > 64:
            _STATS_CACHE.clear()
        t = _STATS_CACHE[key] = torch.tensor(vals, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return t


def normalize(batch: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Per-channel normalisation of a float batch in [0, 1]: ``(x - mean) / std`` (NCHW)."""
    return (batch - _stats(mean, batch)) / _stats(std, batch)


def to_float_normalized(batch_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 NCHW -> float32 ``(x / 255 - mean) / std`` per channel, on the batch's device."""
    if batch_uint8.dtype != torch.uint8:
        raise ValueError(f"expected a uint8 batch, got {batch_uint8.dtype}")
    return uint8_to_normalized(batch_uint8, mean, std)


_LUT_CACHE: Dict[tuple, np.ndarray] = {}


def _normalizing_lut(ch: int, mean, std) -> np.ndarray:
    """The ``cv2.LUT`` table ``(v / 255 - mean_c) / std_c`` for ``v`` in 0..255, per channel,
    computed in float64 and stored as float32 (cached)."""
    m = np.broadcast_to(np.asarray(mean, dtype=np.float64).reshape(-1), (ch,))
    s = np.broadcast_to(np.asarray(std, dtype=np.float64).reshape(-1), (ch,))
    key = (ch, tuple(m.tolist()), tuple(s.tolist()))
    lut = _LUT_CACHE.get(key)
    if lut is None:
        if len(_LUT_CACHE) > 64:
            _LUT_CACHE.clear()
        lut = _LUT_CACHE[key] = ((np.arange(256.0)[:, None] / 255.0 - m) / s).astype(np.float32).reshape(1, 256, ch)
    return lut


_POOL = None
_POOL_WORKERS = 0


def _in_chunks(fn, n: int) -> None:
    """``fn(lo, hi)`` over ``0..n`` in contiguous chunks, one per torch intra-op thread, the first
    in this thread and the others in a small shared thread pool (OpenCV releases the GIL, so the
    chunks run in parallel; a batch split by image scales better than OpenCV's own row-splitting
    of a 224 px image). One thread: a plain call. Each image is computed alone, so the result does
    not depend on the split."""
    global _POOL, _POOL_WORKERS
    k = max(1, min(torch.get_num_threads(), n))
    if k == 1:
        fn(0, n)
        return
    from concurrent.futures import ThreadPoolExecutor

    if _POOL_WORKERS < k - 1:
        _POOL, _POOL_WORKERS = ThreadPoolExecutor(max_workers=k - 1, thread_name_prefix="leukcore-augment"), k - 1
    bounds = [round(j * n / k) for j in range(k + 1)]
    futures = [_POOL.submit(fn, bounds[j], bounds[j + 1]) for j in range(1, k)]
    fn(bounds[0], bounds[1])
    for f in futures:
        f.result()


def uint8_to_normalized(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 NCHW -> float32 ``(x / 255 - mean) / std`` per channel (the one place it is done).

    A CPU batch of 1 or 3 channels stored channels-last (NHWC, how :func:`leukcore.train.fit`
    holds images) goes through one ``cv2.LUT`` pass over a 256-entry table per channel, computed
    in float64 (exact to float32 rounding); the result keeps the channels-last strides. On the CPU
    a broadcast multiply-add over a channels-last tensor is ~8x slower than that (22 ms against
    3 ms for 32 images at 224 px on one core). Anything else: one ``torch.addcmul``.
    """
    n, ch = x.shape[0], x.shape[1]
    nhwc = x.permute(0, 2, 3, 1)
    if x.device.type == "cpu" and ch in (1, 3) and nhwc.is_contiguous() and x.numel() > 0:
        import cv2

        lut = _normalizing_lut(ch, mean, std)
        src = nhwc.numpy().reshape(n * x.shape[2], x.shape[3], ch)
        out = torch.from_numpy(cv2.LUT(src, lut).reshape(n, x.shape[2], x.shape[3], ch))
        return out.permute(0, 3, 1, 2)
    m, s = _stats(mean, x), _stats(std, x)
    return torch.addcmul(-m / s, x.float(), 1.0 / (255.0 * s))
