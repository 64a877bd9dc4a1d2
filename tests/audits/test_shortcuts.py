"""The sufficiency tests and the audits of our own choices (issue 24): which pixels each corner crop takes, the
cell and background masks, the foreground fraction of planted images, Grad-CAM shares of planted maps, the
``choices`` arms, and the new audits at the smoke profile."""
from __future__ import annotations

import math

import numpy as np
import pytest

from leukcore import audits as A
from leukcore.audits.attribution import box_shares
from leukcore.audits.background_alone import region_masks
from leukcore.audits.choices import choice_arm
from leukcore.audits.inputs import corner_crop, foreground_fraction, foreground_mask, grow_mask, region_histogram
from leukcore.audits.segmented_artefacts import fraction_summary


def marked_image(side: int = 224) -> np.ndarray:
    """A grey image whose every pixel holds its own row in channel 0 and column in channel 1 (so a crop says
    where it came from), with a black mark filling the scale-bar box."""
    img = np.zeros((side, side, 3), np.uint8)
    img[..., 0] = np.arange(side)[:, None]
    img[..., 1] = np.arange(side)[None, :]
    img[..., 2] = 200
    y0, y1, x0, x1 = A.mask_box(side, side, "bottom-right")
    img[y0:y1, x0:x1, 2] = 0
    return img


def test_corner_crops_take_exactly_the_masked_box():
    img = marked_image()
    bar = corner_crop(img, "bottom-right")
    ctrl = corner_crop(img, "top-left")
    # ceil(0.16 * 224) = 36 rows, ceil(0.18 * 224) = 41 columns; rows 188-223, columns 183-223
    assert bar.shape == ctrl.shape == (36, 41, 3)
    assert (bar[0, 0, 0], bar[0, 0, 1]) == (188, 183) and (bar[-1, -1, 0], bar[-1, -1, 1]) == (223, 223)
    assert (ctrl[0, 0, 0], ctrl[0, 0, 1]) == (0, 0) and (ctrl[-1, -1, 0], ctrl[-1, -1, 1]) == (35, 40)
    assert (bar[..., 2] == 0).all() and (ctrl[..., 2] == 200).all()  # the whole mark, and none of it
    # the pixels the crop takes are exactly those the scale-bar mask changes (filled black)
    changed = (A.mask_scale_bar(img, fill="black") != img).any(axis=-1) | (img[..., 2] == 0)
    rows, cols = np.nonzero(changed)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (188, 223, 183, 223) and changed.sum() == 36 * 41
    batch = corner_crop(np.stack([img, img]), "bottom-right")
    assert batch.shape == (2, 36, 41, 3) and np.array_equal(batch[1], bar)
    assert corner_crop(marked_image(64), "bottom-right").shape == (11, 12, 3)  # ceil(10.24), ceil(11.52)


def test_foreground_fraction_of_planted_segmentations():
    seg = np.zeros((3, 10, 10, 3), np.uint8)
    seg[0, 2:5, 3:7] = (31, 0, 0)  # 12 cell pixels: one channel above 30 is enough
    seg[0, 9, 9] = (30, 30, 30)  # not above 30: background
    seg[1] = 255  # every pixel
    assert foreground_mask(seg)[0].sum() == 12 and not foreground_mask(seg)[0, 9, 9]
    assert np.allclose(foreground_fraction(seg), [0.12, 1.0, 0.0])
    assert np.allclose(foreground_fraction(seg, threshold=29), [0.13, 1.0, 0.0])
    s = fraction_summary(np.array([0.12, 1.0, 0.0, 0.005]), np.array([0, 0, 1, 1]), ["a", "b"], 0.01, 0.001)
    assert s["b"] == {"n": 2, "median": 0.0025, "q1": 0.00125, "q3": 0.00375, "min": 0.0, "mean": 0.0025,
                      "nearly_empty": 2, "almost_black": 1, "empty": 1}
    assert s["a"]["nearly_empty"] == 0 and s["all"]["n"] == 4 and s["all"]["nearly_empty"] == 2


def test_grow_mask_and_region_histogram():
    m = np.zeros((1, 7, 7), bool)
    m[0, 3, 3] = True
    assert grow_mask(m, 1)[0].sum() == 9 and grow_mask(m, 1)[0, 2:5, 2:5].all()
    assert grow_mask(m, 2)[0].sum() == 25 and np.array_equal(grow_mask(m, 0), m)
    x = np.zeros((2, 2, 2, 3), np.uint8)
    x[0, 0, :, 0] = 255  # two red pixels in the top row of image 0
    mask = np.array([[[True, True], [True, True]], [[False, False], [False, False]]])
    h = region_histogram(x, mask, bins=4).reshape(2, 3, 4)
    assert np.allclose(h[0, 0], [0.5, 0, 0, 0.5]) and np.allclose(h[0, 1], [1, 0, 0, 0])  # 16 bins -> 4 here
    assert not h[1].any()  # an empty region: zeros
    top = mask.copy()
    top[0, 1] = False
    assert np.allclose(region_histogram(x, top, bins=4).reshape(2, 3, 4)[0, 0], [0, 0, 0, 1])


def test_background_and_cell_masks():
    st = A.audit_settings("background_alone", "smoke")
    seg = np.zeros((1, 224, 224, 3), np.uint8)
    seg[0, 100:110, 50:60] = 120  # one 10 x 10 cell
    m = region_masks(seg, st)
    assert m["cells"].sum() == 100 and m["whole"].all()
    grown = (10 + 2 * st["cell_margin_px"]) ** 2  # the cell grown by the margin on every side
    assert m["background"].sum() == 224 * 224 - grown - 36 * 41
    assert not m["background"][0, 188:, 183:].any() and not m["background"][0, 97:113, 47:63].any()
    assert m["background"][0, 96, 46] and m["background"][0, 0, 0]
    assert not (m["background"] & m["cells"]).any()


def test_grad_cam_shares_of_planted_maps():
    cams = np.zeros((3, 64, 64))
    cams[0] = 1.0  # uniform: each box holds its area's share
    cams[1, 53:, 52:] = 1.0  # all mass in the scale-bar box (rows >= 53, columns >= 52 at 64 px)
    s = box_shares(cams, A.SCALE_BAR_BOX, {"bar": "bottom-right", "control": "top-left"})
    assert math.isclose(s["bar"][0], 11 * 12 / 64 ** 2) and math.isclose(s["control"][0], 11 * 12 / 64 ** 2)
    assert s["bar"][1] == 1.0 and s["control"][1] == 0.0
    assert math.isnan(s["bar"][2])  # a map that is zero everywhere has no share


def test_choice_arms_and_the_filter():
    import torch

    from leukcore.models import create_model

    assert choice_arm("alexnet_keras") == {"model": "alexnet", "model_kw": {}, "reading": "keras", "l2": 0.01}
    assert choice_arm("resnet50_matlab")["l2"] == 0.005 and choice_arm("dscnet_none")["l2"] == 0.0
    assert choice_arm("dscnet_nofilter_keras")["model_kw"] == {"sharpen": False}
    for bad in ("alexnet_nofilter_keras", "dscnet_keras_extra", "dscnet_l1"):
        with pytest.raises(ValueError):
            choice_arm(bad)
    for arm in A.ARMS["choices"]:
        choice_arm(arm)
    torch.manual_seed(0)
    plain = create_model("dscnet", num_classes=4, sharpen=False)
    torch.manual_seed(0)
    sharp = create_model("dscnet", num_classes=4)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(plain.filter(x), x) and not torch.equal(sharp.filter(x), x)
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in sharp.parameters())


@pytest.mark.slow
def test_new_audits_at_the_smoke_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("LEUKCORE_CACHE", str(tmp_path / "cache"))
    for audit_id in ("choices", "scale_bar_alone", "background_alone", "segmented_artefacts", "attribution"):
        rec = A.get_or_run_audit(audit_id, "smoke", seeds=(0,), results_dir=tmp_path / "results", device="cpu")
        assert rec["status"] == "complete" and rec["seeds"] == [0] and rec["headline"]
        assert set(rec["results"]["effects"]) >= {e[0] for e in A.EFFECTS[audit_id]}
        for row in rec["rows"]:
            if row["low"] is not None:
                assert row["low"] <= row["point"] + 1e-12 <= row["high"] + 2e-12, (audit_id, row)
