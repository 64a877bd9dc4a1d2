"""leukcore.audits.acquisition: signatures of planted acquisitions are grouped back together."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from leukcore.audits import acquisition as Q


def _planted(root, n_per=6, size=40, seed=0):
    """Three 'acquisitions' (background tint and brightness), two classes, and two byte-identical copies."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    backgrounds = [(235, 225, 245), (200, 230, 200), (250, 240, 190)]
    rows = []
    k = 0
    for acq, bg in enumerate(backgrounds):
        for i in range(n_per):
            img = np.empty((size, size, 3), np.uint8)
            img[:] = bg
            img = np.clip(img + rng.integers(-4, 5, img.shape), 0, 255).astype(np.uint8)
            c = rng.integers(10, size - 10, 2)
            img[c[0] - 5:c[0] + 5, c[1] - 5:c[1] + 5] = (120, 60, 160)  # a 'cell'
            p = root / f"WBC-x-{k + 1:03d}.jpg"
            Image.fromarray(img).save(p, quality=90)
            rows.append({"id": p.name, "path": str(p), "label": acq % 2, "acq": acq})
            k += 1
    for src in (0, n_per):  # byte-identical twins of two images
        p = root / f"WBC-x-{k + 1:03d}.jpg"
        shutil.copyfile(rows[src]["path"], p)
        rows.append({**rows[src], "id": p.name, "path": str(p)})
        k += 1
    t = pd.DataFrame(rows)
    import hashlib

    t["sha256"] = [hashlib.sha256(open(p, "rb").read()).hexdigest() for p in t["path"]]
    return t


def test_signature_columns_and_values(tmp_path):
    t = _planted(tmp_path)
    sig = Q.signatures(t)
    assert list(sig.columns) == list(Q.SIGNATURE_COLUMNS) and len(sig) == len(t)
    assert (sig["has_exif"] == 0).all() and sig["jpeg_q"].notna().all()
    assert sig["file_number"].tolist() == list(range(1, len(t) + 1))
    assert abs(sig["border_r"].iloc[0] - 235) < 3  # the background of acquisition 0


def test_grouping_recovers_planted_acquisitions_and_duplicates(tmp_path):
    t = _planted(tmp_path)
    sig = Q.signatures(t)
    g = Q.group_images(sig, 3, weights={"file_number": 0.0})
    # every planted acquisition is one group, and the groups are the acquisitions
    assert all(len(set(g[t["acq"] == a])) == 1 for a in range(3)) and len(set(g)) == 3
    rep = Q.group_report(t, g)
    assert rep["duplicate_pairs"] == 2 and rep["duplicate_pairs_together"] == 2
    assert rep["duplicate_pairs_together_fraction"] == 1.0
    assert rep["class_purity"] == 1.0 and rep["n_groups"] == 3  # each acquisition holds one class here
    assert Q.group_images(sig, 1).tolist() == [0] * len(t)


def test_group_report_counts_split_duplicates_and_impure_groups():
    t = pd.DataFrame({"sha256": ["a", "a", "b", "b", "c", "d"], "label": [0, 0, 1, 1, 0, 1]})
    rep = Q.group_report(t, np.array([0, 0, 0, 1, 1, 1]))
    assert rep["duplicate_pairs"] == 2 and rep["duplicate_pairs_together"] == 1
    assert rep["class_purity"] == 4 / 6 and rep["pure_groups"] == 0
