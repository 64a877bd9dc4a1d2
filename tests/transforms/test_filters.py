"""leukcore.transforms.filters (public face leukcore.filters) against independent computations (scipy.ndimage, OpenCV, PIL)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from leukcore.transforms import filters
from leukcore.transforms.filters import (
    SHARPEN_KERNEL,
    SharpenLayer,
    dscnet_sharpen,
    logmh,
    reinhard_normalize,
    reinhard_target,
    to_grey,
)

LAP4 = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def _real_images(shared_data: Path, per_class: int = 1) -> list[np.ndarray]:
    root = shared_data / "taleqani-all" / "Original"
    files = []
    for cls in ("Benign", "Early", "Pre", "Pro"):
        files += sorted((root / cls).glob("*.jpg"))[:per_class]
    if not files:
        pytest.skip(f"no Taleqani images under {root}")
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


@pytest.fixture(scope="module")
def real_images(shared_data: Path) -> list[np.ndarray]:
    return _real_images(shared_data)


# ------------------------------------------------------------------ LoGMH reference
def _gauss_kernel(sigma: float) -> np.ndarray:
    """OpenCV's float Gaussian for ksize=(0, 0): round(8 sigma + 1) | 1 taps, sum 1."""
    ksize = int(round(sigma * 8 + 1)) | 1
    x = np.arange(ksize) - (ksize - 1) / 2
    k = np.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _logmh_reference(image: np.ndarray, sigma: float, alpha: float, beta: float) -> np.ndarray:
    """Eq. 1-4 with scipy.ndimage; 'mirror' == OpenCV BORDER_REFLECT_101."""
    img = np.asarray(image, dtype=np.float64)
    chans = img[..., None] if img.ndim == 2 else img
    k = _gauss_kernel(sigma)
    out = np.empty_like(chans)
    for ch in range(chans.shape[-1]):
        b = ndimage.correlate1d(chans[..., ch], k, axis=0, mode="mirror")
        b = ndimage.correlate1d(b, k, axis=1, mode="mirror")
        lap = ndimage.convolve(b, LAP4, mode="mirror")
        out[..., ch] = alpha * chans[..., ch] - beta * lap
    h = out.reshape(img.shape)
    return (h - h.min()) / (h.max() - h.min())


def _check_unit_range(out: np.ndarray, shape: tuple[int, ...]) -> None:
    assert out.dtype == np.float32
    assert out.shape == shape
    assert out.min() == 0.0 and out.max() == 1.0


@pytest.mark.parametrize("sigma", [0.7, 1.0, 2.2])
def test_logmh_matches_scipy_on_real_images(real_images, sigma):
    for img in real_images:
        out = logmh(img, sigma=sigma, alpha=1.5, beta=1.0)
        _check_unit_range(out, img.shape)
        np.testing.assert_allclose(out, _logmh_reference(img, sigma, 1.5, 1.0), atol=2e-6)


@pytest.mark.parametrize(
    "shape,sigma,alpha,beta",
    [((31, 45, 3), 1.0, 1.5, 1.0), ((20, 17), 1.3, 1.0, 2.0), ((16, 24, 3), 3.0, 2.0, 0.5),
     ((12, 9, 1), 0.5, 1.0, 1.0)],
)
def test_logmh_matches_scipy_on_random_arrays(shape, sigma, alpha, beta):
    img = np.random.default_rng(sum(shape)).random(shape) * 255
    out = logmh(img, sigma=sigma, alpha=alpha, beta=beta)
    _check_unit_range(out, shape)
    np.testing.assert_allclose(out, _logmh_reference(img, sigma, alpha, beta), atol=2e-6)


def test_logmh_defaults_scale_invariance_and_batch():
    assert filters.LOGMH_DEFAULTS == {"sigma": 1.0, "alpha": 1.5, "beta": 1.0}
    img = np.random.default_rng(1).integers(0, 256, (2, 24, 28, 3), dtype=np.uint8)
    default = logmh(img[0])
    np.testing.assert_allclose(default, _logmh_reference(img[0], 1.0, 1.5, 1.0), atol=2e-6)
    # eq. 4 is a global affine rescaling: input scale/offset and a common factor on
    # (alpha, beta) do not matter
    np.testing.assert_allclose(logmh(img[0] / 255.0 + 3.0), default, atol=2e-6)
    np.testing.assert_allclose(logmh(img[0], alpha=3.0, beta=2.0), default, atol=2e-6)
    batch = logmh(img)
    assert batch.shape == img.shape and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[1], logmh(img[1]))


def test_logmh_constant_image_gives_zeros():
    for img in (np.full((10, 12, 3), 77, np.uint8), np.zeros((8, 8)), np.ones((5, 6, 3)) * 0.3):
        out = logmh(img)
        assert out.dtype == np.float32 and out.shape == img.shape
        assert not out.any()
    with pytest.raises(ValueError):
        logmh(np.zeros((4, 4)), sigma=0)


# --------------------------------------------------------------------- sharpening
def _sharpen_reference(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, dtype=np.float64)
    chans = img[..., None] if img.ndim == 2 else img
    out = np.stack(
        [ndimage.convolve(chans[..., c], SHARPEN_KERNEL, mode="mirror")
         for c in range(chans.shape[-1])],
        axis=-1,
    )
    return out.reshape(img.shape)


def test_sharpen_kernel_is_identity_minus_laplacian():
    delta = np.zeros((3, 3))
    delta[1, 1] = 1
    np.testing.assert_array_equal(SHARPEN_KERNEL, delta - LAP4)
    assert SHARPEN_KERNEL.sum() == 1


def _check_sharpen(images):
    for img in images:
        out = dscnet_sharpen(img)
        assert out.dtype == np.float32 and out.shape == img.shape
        ref = _sharpen_reference(img)
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-3)
        cv = cv2.filter2D(np.asarray(img, np.float64), -1, SHARPEN_KERNEL)  # BORDER_REFLECT_101
        np.testing.assert_allclose(out, cv.reshape(img.shape), rtol=1e-6, atol=1e-3)


def test_dscnet_sharpen_random_arrays():
    rng = np.random.default_rng(2)
    _check_sharpen([rng.random((13, 9)), rng.random((7, 11, 3)) * 255])
    batch = rng.integers(0, 256, (2, 6, 5, 3), dtype=np.uint8)  # NHWC: image by image
    out = dscnet_sharpen(batch)
    layer_out = SharpenLayer()(torch.from_numpy(batch).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    for i in range(2):
        np.testing.assert_allclose(out[i], _sharpen_reference(batch[i]), atol=1e-4)
        np.testing.assert_allclose(layer_out[i].numpy(), _sharpen_reference(batch[i]), atol=1e-4)


def test_dscnet_sharpen_real_images(real_images):
    _check_sharpen(real_images)
    # not clipped, affine-equivariant
    img = real_images[0].astype(np.float64)
    assert dscnet_sharpen(img).min() < 0 or dscnet_sharpen(img).max() > 255
    np.testing.assert_allclose(
        dscnet_sharpen(2 * img - 7), 2 * dscnet_sharpen(img) - 7, rtol=1e-5, atol=1e-2
    )


def test_sharpen_layer_equals_numpy(real_images):
    layer = SharpenLayer()
    assert list(layer.parameters()) == [] and "kernel" not in layer.state_dict()
    batch = np.stack(real_images)  # NHWC uint8
    x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().requires_grad_(True)
    y = layer(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    np.testing.assert_allclose(
        y.detach().permute(0, 2, 3, 1).numpy(), dscnet_sharpen(batch), rtol=1e-6, atol=1e-3
    )
    # uint8 input, gradient flows to the input, works for any channel count
    np.testing.assert_array_equal(layer(torch.from_numpy(batch).permute(0, 3, 1, 2)).numpy(),
                                  y.detach().numpy())
    y.sum().backward()
    assert x.grad is not None
    one = torch.rand(2, 1, 9, 10, dtype=torch.float64)
    assert layer(one).dtype == torch.float64
    np.testing.assert_allclose(layer(one).permute(0, 2, 3, 1).numpy(),
                               dscnet_sharpen(one.permute(0, 2, 3, 1).numpy()),
                               rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- grey-scale
def test_to_grey_bt601(real_images):
    for img in real_images:
        grey = to_grey(img)
        assert grey.dtype == np.uint8 and grey.shape == img.shape
        assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
        cv = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)  # same BT.601 weights, fixed point
        assert np.abs(grey[..., 0].astype(int) - cv).max() <= 1
        pil = np.asarray(Image.fromarray(img).convert("L"))  # ITU-R 601-2 luma
        assert np.abs(grey[..., 0].astype(int) - pil).max() <= 1
    px = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    assert to_grey(px)[0, :, 0].tolist() == [76, 150, 29, 18]  # rint(0.299*255)=76 ...
    batch = np.stack(real_images[:2])
    np.testing.assert_array_equal(to_grey(batch)[1], to_grey(real_images[1]))


# ------------------------------------------------------------------------ Reinhard
def _lab_stats(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
    return lab.mean(0), lab.std(0)


def test_reinhard_target_pools_pixels(real_images):
    m, s = reinhard_target(real_images[0])
    m_ref, s_ref = _lab_stats(real_images[0])
    np.testing.assert_allclose(m, m_ref, rtol=1e-10)
    np.testing.assert_allclose(s, s_ref, rtol=1e-8)
    pooled = np.concatenate(
        [cv2.cvtColor(im, cv2.COLOR_RGB2LAB).reshape(-1, 3) for im in real_images]
    ).astype(np.float64)
    m, s = reinhard_target(real_images)  # list
    np.testing.assert_allclose(m, pooled.mean(0), rtol=1e-10)
    np.testing.assert_allclose(s, pooled.std(0), rtol=1e-8)
    m2, s2 = reinhard_target(np.stack(real_images))  # batch
    np.testing.assert_allclose(m2, m)
    np.testing.assert_allclose(s2, s)


def test_reinhard_normalize_matches_target(real_images):
    target = reinhard_target(real_images[1])
    src = real_images[0]
    out = reinhard_normalize(src, *target)
    assert out.dtype == np.uint8 and out.shape == src.shape
    m, s = _lab_stats(out)
    # LAB->RGB->LAB rounding and gamut clipping leave small differences
    np.testing.assert_allclose(m, target[0], atol=2.0)
    np.testing.assert_allclose(s, target[1], rtol=0.1, atol=1.0)
    # the transfer is the per-channel affine map of the LAB values (before RGB round trip)
    lab = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float64)
    mu, sd = lab.reshape(-1, 3).mean(0), lab.reshape(-1, 3).std(0)
    expect = np.clip(np.rint((lab - mu) / sd * target[1] + target[0]), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(out, cv2.cvtColor(expect, cv2.COLOR_LAB2RGB))
    # normalising an image to its own statistics is (almost) the identity
    own = reinhard_normalize(src, *reinhard_target(src))
    assert np.abs(own.astype(int) - src).max() <= 3
    # a batch is normalised image by image; a constant image is moved to the target mean
    batch = reinhard_normalize(np.stack(real_images[:2]), *target)
    np.testing.assert_array_equal(batch[0], out)
    flat = reinhard_normalize(np.full((4, 4, 3), 200, np.uint8), *target)
    assert len(np.unique(flat.reshape(-1, 3), axis=0)) == 1
    with pytest.raises(ValueError):
        reinhard_normalize(src.astype(np.float32), *target)


def test_public_face_is_the_same_objects():
    import leukcore.filters as face

    assert face.__all__ == filters.__all__
    assert all(getattr(face, n) is getattr(filters, n) for n in filters.__all__)
