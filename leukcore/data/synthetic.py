"""Synthetic blood smears written in each published layout: a stand-in when the real data is absent."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .registry import DATASETS

SYNTHETIC_LAYOUTS = ("taleqani", "cnmc", "leukemia-0.2", "multicancer", "pbc")


def synthetic_image(label: int, n_classes: int, size: int, rng: np.random.Generator,
                    background: str = "smear") -> np.ndarray:
    """One blood-smear-like RGB uint8 image whose white cell depends on the class.

    Red-cell background (pink discs with pale centres on a light field, or black for
    segmented/C-NMC-style crops); one white cell (cytoplasm ring + purple nucleus) whose
    diameter grows with the class, whose nucleus gets more lobed/irregular with the class and
    whose chromatin texture gets finer and denser with the class.  Deterministic for ``rng``.
    """
    import cv2

    t = label / max(n_classes - 1, 1)  # 0 .. 1 along the classes
    s = size / 224.0
    if background == "black":
        img = np.zeros((size, size, 3), np.uint8)
    else:
        img = np.empty((size, size, 3), np.uint8)
        img[:] = (228 + rng.integers(-6, 6), 212 + rng.integers(-6, 6), 222 + rng.integers(-6, 6))  # RGB field
        for _ in range(int(26 + rng.integers(0, 10))):
            c = tuple(int(v) for v in rng.integers(0, size, 2))
            r = max(2, int(rng.normal(17, 2) * s))
            cv2.circle(img, c, r, (205, 120, 135), -1, lineType=cv2.LINE_AA)
            cv2.circle(img, c, max(1, r // 2), (222, 170, 178), -1, lineType=cv2.LINE_AA)
    cx, cy = (size // 2 + int(v) for v in rng.integers(-size // 12, size // 12 + 1, 2))
    cell_r = max(4, int((34 + 30 * t + rng.normal(0, 3)) * s))
    cv2.circle(img, (cx, cy), cell_r, (190, 170, 215), -1, lineType=cv2.LINE_AA)  # cytoplasm
    # nucleus: a polygon whose radius is modulated by lobes (more, deeper lobes for higher class)
    lobes = 2 + 2 * label
    depth = 0.08 + 0.25 * t
    ang = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    phase = rng.uniform(0, 2 * np.pi)
    rad = cell_r * (0.55 + 0.25 * t) * (1 + depth * np.sin(lobes * ang + phase) + 0.05 * rng.normal(size=ang.size))
    pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).astype(np.int32)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [pts], 1)
    # chromatin: noise low-passed at a class-dependent scale, darker and finer for higher classes
    noise = rng.normal(size=(size, size)).astype(np.float32)
    blur = max(0.5, (3.5 - 2.5 * t) * s)
    noise = cv2.GaussianBlur(noise, (0, 0), blur)
    noise /= noise.std() + 1e-6
    base = np.array([95 - 25 * t, 45, 140 - 20 * t], np.float32)
    nuc = base[None, None, :] + (12 + 10 * t) * noise[..., None]
    m = mask.astype(bool)
    img[m] = np.clip(nuc[m], 0, 255).astype(np.uint8)
    return img


def write_synthetic(root: str | os.PathLike, layout: str = "taleqani", *, n_per_class: int = 8, size: int = 64,
                    seed: int = 0) -> Path:
    """Write a deterministic synthetic dataset in a published layout under ``root``; return the dataset folder.

    Layouts: ``taleqani`` (Original + Segmented, 4 classes, JPEG, the Kaggle names), ``cnmc``
    (``training_data/fold_{0,1,2}/{all,hem}/UID_*.bmp`` on black, the preliminary test with its
    labels CSV and the final test; subject ids in names), ``leukemia-0.2`` (``train``/``test`` x 5
    classes), ``multicancer`` (``ALL/all_*``) and ``pbc`` (``Healthy/LY_*.jpg``).  The same
    arguments give byte-identical files.
    """
    import cv2

    if layout not in SYNTHETIC_LAYOUTS:
        raise ValueError(f"unknown synthetic layout {layout!r}; valid: {', '.join(SYNTHETIC_LAYOUTS)}")
    root = Path(root)
    rng = np.random.default_rng(seed)

    def save(p: Path, img: np.ndarray) -> None:
        p.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(p.suffix, cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, 92] if p.suffix == ".jpg" else [])
        assert ok
        p.write_bytes(buf.tobytes())

    if layout == "taleqani":
        names = {"Benign": "WBC-Benign", "Early": "WBC-Malignant-Early", "Pre": "WBC-Malignant-Pre",
                 "Pro": "WBC-Malignant-Pro"}
        for label, c in enumerate(DATASETS["taleqani-all"].classes):
            for i in range(1, n_per_class + 1):
                img = synthetic_image(label, 4, size, rng)
                save(root / "Original" / c / f"{names[c]}-{i:03d}.jpg", img)
                seg = img.copy()
                yy, xx = np.ogrid[:size, :size]
                seg[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 > (0.38 * size) ** 2] = 0
                save(root / "Segmented" / c / f"{names[c]}-{i:03d}.jpg", seg)
    elif layout == "cnmc":
        base = root / "C-NMC_Leukemia"
        n_subj = 3
        for fold in range(3):
            for c, lab in (("all", 1), ("hem", 0)):
                for i in range(n_per_class):
                    subj = f"{fold * n_subj + i % n_subj + 1}"
                    subj = subj if c == "all" else f"H{subj}"
                    img = synthetic_image(lab, 2, size, rng, background="black")
                    save(base / "training_data" / f"fold_{fold}" / c / f"UID_{subj}_{i + 1}_{i % 4 + 1}_{c}.bmp", img)
        rows = []
        for i in range(2 * n_per_class):
            lab = i % 2
            subj = f"{100 + i % 3}" if lab else f"H{100 + i % 3}"
            save(base / "validation_data" / "C-NMC_test_prelim_phase_data" / f"{i + 1}.bmp",
                 synthetic_image(lab, 2, size, rng, background="black"))
            rows.append(dict(Patient_ID=f"UID_{subj}_{i + 1}_1_{'all' if lab else 'hem'}.bmp", new_names=f"{i + 1}.bmp",
                             labels=lab))
        pd.DataFrame(rows).to_csv(base / "validation_data" / "C-NMC_test_prelim_phase_data_labels.csv", index=False)
        for i in range(n_per_class):
            save(base / "testing_data" / "C-NMC_test_final_phase_data" / f"{i + 1}.bmp",
                 synthetic_image(i % 2, 2, size, rng, background="black"))
    elif layout == "leukemia-0.2":
        for part in ("train", "test"):
            for label, c in enumerate(DATASETS["leukemia-0.2"].classes):
                for i in range(n_per_class):
                    save(root / part / c / f"{c}_{part}_{i + 1:04d}.jpg", synthetic_image(label, 5, size, rng))
    elif layout == "multicancer":
        for label, c in enumerate(DATASETS["multicancer-all"].classes):
            for i in range(n_per_class):
                save(root / "ALL" / c / f"{c}_{i + 1:04d}.jpg", synthetic_image(label, 4, size, rng))
    elif layout == "pbc":
        for i in range(n_per_class):
            save(root / "Healthy" / f"LY_{100000 + i}.jpg", synthetic_image(0, 4, size, rng))
    (root / "SYNTHETIC.txt").write_text("Synthetic images generated by leukcore.data.write_synthetic; not real data.\n")
    return root
