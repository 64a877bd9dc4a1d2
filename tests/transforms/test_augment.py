"""Tests of leukcore.transforms (augment, presets, both backends, normalize): batched, seeded augmentation of uint8 NCHW batches."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from leukcore.transforms import (
    PRESETS,
    Augment,
    list_presets,
    make_augment,
    normalize,
    uint8_to_normalized,
)


def _batch(n=6, h=20, w=24, seed=0, lo=0, hi=256):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(lo, hi, (n, 3, h, w), generator=g, dtype=torch.uint8)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(params=["torch", "opencv"])
def backend(request):
    """Each test taking ``backend`` runs on both: torch (the reference formulas) and OpenCV (CPU default)."""
    return request.param


def _tol(backend, atol):
    """``atol`` for torch; OpenCV rounds to uint8 after the warp and after the colour map, and
    its coordinates have 1/32-pixel precision: one grey level (1/255) more."""
    return atol if backend == "torch" else atol + 1.01 / 255


def _slice(params, i):
    return {k: v[i : i + 1] for k, v in params.items()}


# ------------------------------------------------------------------ presets / API
def test_presets_listed_and_unknown_preset_raises():
    assert list_presets() == ["alnet", "dscnet", "logmh", "none", "xincept"]
    with pytest.raises(ValueError) as e:
        make_augment("imagenet")
    for name in list_presets():
        assert name in str(e.value)


def test_unknown_override_field_raises_with_valid_fields():
    with pytest.raises(ValueError, match="rotation"):
        make_augment("alnet", rotate=10)


def test_overrides_replace_preset_values():
    a = make_augment("xincept", rotation=30, hflip=0.0)
    assert a.rotation == 30 and a.hflip == 0.0 and a.zoom == 0.2 and a.translate == (0.2, 0.0)
    assert a.name == "xincept"


def test_stated_paper_numbers_in_presets():
    assert PRESETS["alnet"]["rotation"] == 15 and PRESETS["alnet"]["hflip"] == 0.5
    x = PRESETS["xincept"]
    assert (x["zoom"], x["translate"], x["rotation"], x["hflip"]) == (0.2, (0.2, 0.0), 15.0, 0.5)
    d = PRESETS["dscnet"]
    assert d["hflip"] == d["vflip"] == 0.5 and d["crop_scale"] is not None and d["brightness"] > 0
    lm = PRESETS["logmh"]
    for k in ("brightness", "pad", "hflip", "translate", "rotation", "zoom", "crop_scale"):
        assert lm[k], k


def test_invalid_parameters_raise():
    with pytest.raises(ValueError):
        Augment(hflip=1.5)
    with pytest.raises(ValueError):
        Augment(fill="wrap")
    with pytest.raises(ValueError):
        Augment(crop_scale=(0.0, 1.0))


@pytest.mark.parametrize("preset", ["none", "dscnet", "alnet", "logmh", "xincept"])
def test_shapes_dtype_range_and_seed_determinism(preset, backend):
    x = _batch()
    a = make_augment(preset, backend=backend)
    y1 = a(x, generator=_gen(3))
    y2 = a(x, generator=_gen(3))
    assert y1.shape == x.shape and y1.dtype == torch.float32 and y1.device == x.device
    assert float(y1.min()) >= 0.0 and float(y1.max()) <= 1.0
    assert torch.equal(y1, y2)
    if preset != "none":
        assert not torch.equal(y1, a(x, generator=_gen(4)))
    assert torch.equal(x, _batch())  # input untouched


def test_none_is_identity_and_normalised_identity():
    x = _batch()
    a = make_augment("none")
    assert a.identity
    assert torch.equal(a(x, generator=_gen()), x.float() / 255.0)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    got = a(x, generator=_gen(), mean=mean, std=std)
    ref = (x.float() / 255.0 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-5)


def test_to_float_normalized_matches_formula():
    x = _batch()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    ref = (x.float() / 255.0 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(uint8_to_normalized(x, mean, std), ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(normalize(x.float() / 255.0, mean, std), ref, rtol=0, atol=1e-5)
    with pytest.raises(ValueError):
        uint8_to_normalized(x.float(), mean, std)


# ------------------------------------------------------------------ geometry
def test_flips_exact(backend):
    x = _batch()
    assert torch.equal(Augment(backend=backend, hflip=1.0)(x, generator=_gen()), torch.flip(x, dims=[-1]).float() / 255)
    assert torch.equal(Augment(backend=backend, vflip=1.0)(x, generator=_gen()), torch.flip(x, dims=[-2]).float() / 255)
    a = Augment(backend=backend, hflip=0.5)
    p = a.sample(x.shape[0], _gen(1))
    y = a.apply(x, p)
    assert 0 < int(p["hflip"].sum()) < x.shape[0]  # seed 1 flips some, not all
    for i in range(x.shape[0]):
        ref = torch.flip(x[i], dims=[-1]) if p["hflip"][i] else x[i]
        assert torch.equal(y[i], ref.float() / 255)


def test_flip_folded_into_affine_grid_matches_torch_flip(backend):
    x = _batch()
    a = Augment(backend=backend, hflip=1.0, vflip=1.0, rotation=10.0)
    p = a.sample(x.shape[0], _gen())
    p["angle"] = torch.zeros_like(p["angle"])
    y = a.apply(x, p)
    torch.testing.assert_close(y, torch.flip(x, dims=[-2, -1]).float() / 255, rtol=0, atol=1e-5)


def test_rotation_zero_is_identity_through_the_grid(backend):
    x = _batch()
    a = Augment(backend=backend, rotation=30.0)
    p = {"angle": torch.zeros(x.shape[0], dtype=torch.float64)}
    y = a.apply(x, p)
    torch.testing.assert_close(y, x.float() / 255, rtol=0, atol=1e-5)
    assert torch.equal((y * 255).round().to(torch.uint8), x)


def test_rotation_by_90_degrees_is_rot90(backend):
    x = _batch(h=16, w=16)
    a = Augment(backend=backend, rotation=90.0)
    y = a.apply(x, {"angle": torch.full((x.shape[0],), 90.0, dtype=torch.float64)})
    cands = [torch.rot90(x, k, dims=(-2, -1)).float() / 255 for k in (1, 3)]
    assert min(float((y - c).abs().max()) for c in cands) < 1e-5


def test_pad_shift_is_zero_filled_integer_shift(backend):
    x = _batch(n=2, h=10, w=12)
    a = Augment(backend=backend, pad=3)
    p = {"pad_shift": torch.tensor([[2.0, -1.0], [-3.0, 0.0]], dtype=torch.float64)}
    y = a.apply(x, p)
    for i, (dx, dy) in enumerate([(2, -1), (-3, 0)]):
        # output pixel (r, c) samples source (r + dy, c + dx); zero outside
        ref = torch.zeros_like(x[i], dtype=torch.float32)
        h, w = x.shape[-2:]
        for r in range(h):
            for c in range(w):
                sr, sc = r + dy, c + dx
                if 0 <= sr < h and 0 <= sc < w:
                    ref[:, r, c] = x[i, :, sr, sc].float() / 255
        torch.testing.assert_close(y[i], ref, rtol=0, atol=1e-5)


def test_crop_of_a_quadrant_resizes_that_quadrant(backend):
    # four constant quadrants; a crop of the top-left quarter fills the output with its colour
    x = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    x[..., :8, :8] = 200
    a = Augment(backend=backend, crop_scale=(0.25, 0.25))
    p = {"crop": torch.tensor([[0.5, 0.5, -0.5, -0.5]], dtype=torch.float64)}
    y = a.apply(x, p)[..., 1:-1, 1:-1]  # the outermost samples straddle the crop's edge
    torch.testing.assert_close(y, torch.full_like(y, 200 / 255), rtol=0, atol=1e-5)


def test_crop_parameters_respect_scale_and_bounds():
    a = make_augment("dscnet")
    p = a.sample(2000, _gen())
    w, h, cx, cy = p["crop"].unbind(1)
    area = w * h
    assert float(area.min()) >= 0.7 * (3 / 4) ** 0.5 * 0.99 - 1e-9  # clamping only shrinks the area
    assert float(area.max()) <= 1.0 + 1e-9
    assert bool(((cx.abs() + w) <= 1 + 1e-9).all()) and bool(((cy.abs() + h) <= 1 + 1e-9).all())
    frac = p["hflip"].double().mean().item()
    assert abs(frac - 0.5) < 0.05
    ang = p["angle"]
    assert float(ang.min()) >= -20 and float(ang.max()) <= 20 and float(ang.abs().max()) > 19


def test_zoom_xy_independent_only_for_xincept():
    pa = make_augment("alnet").sample(50, _gen())
    assert torch.equal(pa["zoom"][:, 0], pa["zoom"][:, 1])
    px = make_augment("xincept").sample(50, _gen())
    assert not torch.equal(px["zoom"][:, 0], px["zoom"][:, 1])
    assert float(px["zoom"].min()) >= 0.8 and float(px["zoom"].max()) <= 1.2


def test_affine_grid_equals_torch_affine_grid():
    from leukcore.transforms.torch_backend import affine_grid

    th = torch.randn(5, 2, 3, generator=_gen(), dtype=torch.float64)
    ref = F.affine_grid(th.float(), [5, 3, 9, 13], align_corners=False)
    torch.testing.assert_close(affine_grid(th, 9, 13, "cpu"), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("preset", ["dscnet", "alnet", "logmh", "xincept"])
def test_batched_equals_per_sample(preset, backend):
    x = _batch(n=5)
    a = make_augment(preset, backend=backend)
    p = a.sample(x.shape[0], _gen(7))
    full = a.apply(x, p)
    for i in range(x.shape[0]):
        one = a.apply(x[i : i + 1], _slice(p, i))
        torch.testing.assert_close(full[i : i + 1], one, rtol=0, atol=1e-6)


def test_call_equals_sample_then_apply(backend):
    x = _batch()
    a = make_augment("logmh", backend=backend)
    assert torch.equal(a(x, generator=_gen(5)), a.apply(x, a.sample(x.shape[0], _gen(5))))


# ------------------------------------------------------------------ colour
def _tv():
    return pytest.importorskip("torchvision.transforms.v2.functional")


@pytest.mark.parametrize("op", ["brightness", "contrast", "saturation"])
def test_colour_ops_match_torchvision(op, backend):
    tvf = _tv()
    x = _batch(lo=60, hi=190)  # no clipping at factors in [0.8, 1.2]
    a = Augment(backend=backend, **{op: 0.2})
    p = a.sample(x.shape[0], _gen(2))
    y = a.apply(x, p)
    fn = {"brightness": tvf.adjust_brightness, "contrast": tvf.adjust_contrast, "saturation": tvf.adjust_saturation}[op]
    for i in range(x.shape[0]):
        ref = fn(x[i].float() / 255, float(p[op][i]))
        torch.testing.assert_close(y[i], ref, rtol=0, atol=_tol(backend, 2e-5))


def test_composed_colour_jitter_matches_sequential_torchvision(backend):
    tvf = _tv()
    x = _batch(lo=70, hi=180)
    a = Augment(backend=backend, brightness=0.15, contrast=0.15, saturation=0.15)
    p = a.sample(x.shape[0], _gen(9))
    y = a.apply(x, p)
    for i in range(x.shape[0]):
        r = x[i].float() / 255
        r = tvf.adjust_brightness(r, float(p["brightness"][i]))
        r = tvf.adjust_contrast(r, float(p["contrast"][i]))
        r = tvf.adjust_saturation(r, float(p["saturation"][i]))
        torch.testing.assert_close(y[i], r, rtol=0, atol=_tol(backend, 2e-5))


def test_hue_rotation_keeps_grey_and_a_third_turn_permutes_channels(backend):
    a = Augment(backend=backend, hue=0.5)
    grey = torch.full((1, 3, 4, 4), 120, dtype=torch.uint8)
    y = a.apply(grey, {"hue": torch.tensor([0.3], dtype=torch.float64)})
    torch.testing.assert_close(y, grey.float() / 255, rtol=0, atol=_tol(backend, 1e-5))
    red = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    red[:, 0] = 255
    y = a.apply(red, {"hue": torch.tensor([1.0 / 3.0], dtype=torch.float64)})
    green = torch.zeros(1, 3, 2, 2)
    green[:, 1] = 1.0
    torch.testing.assert_close(y, green, rtol=0, atol=_tol(backend, 1e-5))
    y0 = a.apply(red, {"hue": torch.tensor([0.0], dtype=torch.float64)})
    torch.testing.assert_close(y0, red.float() / 255, rtol=0, atol=_tol(backend, 1e-6))


def test_contrast_uses_mean_grey_level_after_brightness(backend):
    # brightness then contrast composed in one matrix equals doing them one after the other
    x = _batch(lo=50, hi=150)
    a = Augment(backend=backend, brightness=0.3, contrast=0.5)
    p = a.sample(x.shape[0], _gen(11))
    y = a.apply(x, p)
    for i in range(x.shape[0]):
        b, c = float(p["brightness"][i]), float(p["contrast"][i])
        r = x[i].float() / 255 * b
        m = (0.2989 * r[0] + 0.587 * r[1] + 0.114 * r[2]).mean()
        r = (c * r + (1 - c) * m).clamp(0, 1)
        torch.testing.assert_close(y[i], r, rtol=0, atol=_tol(backend, 2e-5))


def test_normalisation_fused_equals_separate(backend):
    x = _batch()
    a = make_augment("dscnet", backend=backend)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    fused = a(x, generator=_gen(1), mean=mean, std=std)
    sep = normalize(a(x, generator=_gen(1)), mean, std)
    torch.testing.assert_close(fused, sep, rtol=0, atol=1e-5)
    b = make_augment("xincept", backend=backend)  # geometric only: 1/255 folded into the normalisation
    torch.testing.assert_close(
        b(x, generator=_gen(1), mean=mean, std=std), normalize(b(x, generator=_gen(1)), mean, std), rtol=0, atol=1e-5
    )


def test_to_dict_is_plain():
    d = make_augment("logmh").to_dict()
    assert d["name"] == "logmh" and d["translate"] == [0.1, 0.1] and d["crop_scale"] == [0.8, 1.0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_for_same_seed():
    x = _batch()
    a = make_augment("dscnet")
    cpu = a(x, generator=_gen(3))
    gpu = a(x.cuda(), generator=_gen(3))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-4)


def test_rotation_is_a_true_rotation_on_non_square_images(backend):
    # a centred disc stays a disc (same pixels, within interpolation) after rotation
    h, w = 21, 41
    yy, xx = torch.meshgrid(torch.arange(h) - 10.0, torch.arange(w) - 20.0, indexing="ij")
    disc = ((yy**2 + xx**2) <= 36).to(torch.uint8) * 255
    x = disc.expand(1, 3, h, w).contiguous()
    a = Augment(backend=backend, rotation=45.0)
    y = a.apply(x, {"angle": torch.tensor([45.0], dtype=torch.float64)})
    assert float((y[0, 0] - x[0, 0].float() / 255).abs().mean()) < 0.02
    assert math.isclose(float(y[0, 0].sum()), float(x[0, 0].float().sum() / 255), rel_tol=0.05)


# ------------------------------------------------------------------ backends
def _smooth_batch(n=8, h=48, w=56, seed=0):
    """Smooth images (blurred noise): what cells look like at the scale of a pixel, unlike raw noise,
    whose interpolation differences are dominated by OpenCV's 1/32-pixel coordinate steps."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h // 8, w // 8, generator=g)
    x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    return (x * 255).round().to(torch.uint8)


@pytest.mark.parametrize("preset", ["dscnet", "alnet", "logmh", "xincept"])
def test_opencv_backend_matches_torch_backend(preset):
    x = _smooth_batch()
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ref_aug, cv_aug = make_augment(preset, backend="torch"), make_augment(preset, backend="opencv")
    p = ref_aug.sample(x.shape[0], _gen(4))
    ref, got = ref_aug.apply(x, p), cv_aug.apply(x, p)
    d = (ref - got).abs() * 255
    assert float(d.mean()) < 0.6 and float(d.max()) < 3.0, (float(d.mean()), float(d.max()))
    # normalised outputs agree the same way
    dn = (ref_aug.apply(x, p, mean=mean, std=std) - cv_aug.apply(x, p, mean=mean, std=std)).abs()
    assert float(dn.max()) < 3.0 / 255 / min(std)


def test_backend_resolution_and_errors():
    x = _batch()
    assert make_augment("dscnet").resolve_backend(x) == "opencv"  # auto on the CPU
    assert make_augment("dscnet", backend="torch").resolve_backend(x) == "torch"
    two = torch.zeros(2, 2, 8, 8, dtype=torch.uint8)
    assert make_augment("xincept").resolve_backend(two) == "torch"  # OpenCV path: 1 or 3 channels
    with pytest.raises(ValueError, match="opencv backend"):
        make_augment("xincept", backend="opencv").apply(two, {"angle": torch.zeros(2, dtype=torch.float64)})
    with pytest.raises(ValueError, match="unknown augmentation backend"):
        make_augment("dscnet", backend="cuda")


def test_opencv_backend_single_channel_geometry():
    x = _smooth_batch()[:, :1]
    a_t, a_c = Augment(rotation=20.0, backend="torch"), Augment(rotation=20.0, backend="opencv")
    p = a_t.sample(x.shape[0], _gen(2))
    y = a_c.apply(x, p)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(((a_t.apply(x, p) - y).abs() * 255).max()) < 3.0


def test_uint8_to_normalized_lut_equals_formula_and_keeps_layout():

    x = _batch(n=4, h=9, w=11)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    ref = (x.double() / 255.0 - torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)) / torch.tensor(
        std, dtype=torch.float64).view(1, 3, 1, 1)
    cl = x.contiguous(memory_format=torch.channels_last)  # the table (cv2.LUT) path
    got = uint8_to_normalized(cl, mean, std)
    assert got.dtype == torch.float32 and got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got.double(), ref, rtol=0, atol=1e-6)
    got2 = uint8_to_normalized(x, mean, std)  # NCHW contiguous: the torch multiply-add
    torch.testing.assert_close(got2.double(), ref, rtol=0, atol=1e-5)
    one = x[:, :1].contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(uint8_to_normalized(one, (0.5,), (0.25,)).double(),
                               (one.double() / 255 - 0.5) / 0.25, rtol=0, atol=1e-6)
