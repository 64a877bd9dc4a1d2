"""leukcore.data: loaders on the real data and on synthetic trees, splits, cache, verify, fetch."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from leukcore import data
from leukcore.data import datasets, images

TALEQANI_COUNTS = {"Benign": 504, "Early": 985, "Pre": 963, "Pro": 804}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LEUKCORE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def taleqani(shared_data):
    return data.load_dataset("taleqani-all", shared_data, verbose=False)


# ---------------------------------------------------------------------------- real data


@pytest.mark.parametrize("variant", ["original", "segmented"])
def test_taleqani_counts_and_duplicates(shared_data, variant):
    t = data.load_dataset("taleqani-all", shared_data, variant=variant, verbose=False)
    assert dict(Counter(t["class_name"])) == TALEQANI_COUNTS
    assert set(t.columns) >= {"id", "path", "label", "class_name", "subject", "sha256"}
    assert t["subject"].isna().all()
    assert sorted(t["label"].unique()) == [0, 1, 2, 3]
    assert (t.groupby("class_name")["label"].nunique() == 1).all()
    dups = data.find_duplicates(t)
    assert len(dups) == 40 and all(len(g) == 2 for g in dups)
    assert all("/Pro/" in i for g in dups for i in g)
    # the same pairs (consecutive numbers) in both variants
    nums = [sorted(int(Path(i).stem.rsplit("-", 1)[1]) for i in g) for g in dups]
    assert all(b == a + 1 for a, b in nums)


def test_taleqani_hashes_match_published_sums(shared_data, taleqani):
    sums = {}
    for line in (shared_data / "taleqani-all" / "SHA256SUMS").read_text().splitlines():
        h, name = line.split(maxsplit=1)
        sums[name.removeprefix("./")] = h
    got = dict(zip(taleqani["id"], taleqani["sha256"]))
    assert got == {k: v for k, v in sums.items() if k.startswith("Original/")}


def test_pbc_lymphocytes(shared_data):
    t = data.load_dataset("pbc-lymphocytes", shared_data, verbose=False)
    assert len(t) == 1214 and set(t["class_name"]) == {"Healthy"}
    imgs, kept = data.load_images(t.iloc[:5], 96)
    assert imgs.shape == (5, 96, 96, 3) and imgs.dtype == np.uint8


def test_root_resolution_order(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEUKCORE_DATA", raising=False)
    path, rule = data.resolve_root("taleqani-all")  # falls through to the project's ../shared/data
    assert rule.endswith("shared/data") and path.resolve() == (shared_data / "taleqani-all").resolve()
    assert "taleqani-all from" in capsys.readouterr().out
    monkeypatch.setenv("LEUKCORE_DATA", str(shared_data))
    assert data.resolve_root("taleqani-all")[1] == "LEUKCORE_DATA"
    local = tmp_path / "data" / "taleqani-all"
    local.mkdir(parents=True)
    assert data.resolve_root("taleqani-all", tmp_path / "data")[1] == "argument"
    monkeypatch.delenv("LEUKCORE_DATA")
    assert data.resolve_root("taleqani-all")[1] == "./data"


def test_missing_and_wrong_roots_name_path_and_layout(tmp_path):
    with pytest.raises(data.DataError, match=str(tmp_path / "nope")):
        data.load_dataset("taleqani-all", tmp_path / "nope")
    (tmp_path / "wrong" / "Stuff").mkdir(parents=True)
    with pytest.raises(data.DataError) as e:
        data.load_dataset("taleqani-all", tmp_path / "wrong")
    msg = str(e.value)
    assert str(tmp_path / "wrong") in msg and "Original" in msg and "Stuff" in msg
    with pytest.raises(ValueError, match="valid ids: taleqani-all"):
        data.load_dataset("imagenet")


def test_empty_class_folder(tmp_path):
    root = data.write_synthetic(tmp_path / "t", "taleqani", n_per_class=2, size=32)
    for f in (root / "Original" / "Pre").iterdir():
        f.unlink()
    with pytest.raises(data.DataError, match=r"empty class folder.*|Pre"):
        data.load_dataset("taleqani-all", root)


# ---------------------------------------------------------------------------- synthetic layouts


def test_synthetic_is_deterministic(tmp_path):
    a = data.write_synthetic(tmp_path / "a", "taleqani", n_per_class=3, size=48, seed=7)
    b = data.write_synthetic(tmp_path / "b", "taleqani", n_per_class=3, size=48, seed=7)
    ta, tb = data.load_dataset("taleqani-all", a), data.load_dataset("taleqani-all", b)
    assert list(ta["sha256"]) == list(tb["sha256"])
    c = data.write_synthetic(tmp_path / "c", "taleqani", n_per_class=3, size=48, seed=8)
    assert list(data.load_dataset("taleqani-all", c)["sha256"]) != list(ta["sha256"])


def test_synthetic_classes_differ_in_morphology():
    rng = np.random.default_rng(0)
    imgs = {lab: np.stack([data.synthetic_image(lab, 4, 96, rng) for _ in range(10)]) for lab in range(4)}
    # the nucleus (dark purple) grows with the class
    dark = [float(((im[..., 1] < 80)).mean()) for im in imgs.values()]
    assert dark == sorted(dark) and dark[-1] > 2 * dark[0]


def test_cnmc_layout_and_subjects(tmp_path):
    root = data.write_synthetic(tmp_path / "cnmc", "cnmc", n_per_class=4, size=40)
    names = sorted(p.name for p in (root / "C-NMC_Leukemia" / "training_data" / "fold_0" / "hem").iterdir())
    assert all(n.startswith("UID_H") and n.endswith("_hem.bmp") for n in names)
    t = data.load_dataset("cnmc-2019", root)
    assert sorted(t["fold"].unique()) == [0, 1, 2]
    assert set(t["class_name"]) == {"all", "hem"}
    assert (t.loc[t["class_name"] == "all", "label"] == 1).all()  # leukemia is the positive class
    assert t["subject"].notna().all()
    assert all(s.startswith("H") for s in t.loc[t["class_name"] == "hem", "subject"])
    assert Image.open(t["path"][0]).format == "BMP"
    prelim = data.load_dataset("cnmc-2019", root, split="prelim")
    csv = pd.read_csv(root / "C-NMC_Leukemia" / "validation_data" / "C-NMC_test_prelim_phase_data_labels.csv")
    assert len(prelim) == len(csv) and list(prelim["label"]) == list(csv["labels"])
    final = data.load_dataset("cnmc-2019", root, split="final")
    assert (final["label"] == -1).all() and len(final) == 4
    folds = data.split_published_folds(t)
    assert len(folds) == 3 and all(set(f["train"]).isdisjoint(f["test"]) for f in folds)


def test_cnmc_name_that_breaks_the_pattern(tmp_path):
    root = data.write_synthetic(tmp_path / "cnmc", "cnmc", n_per_class=2, size=32)
    d = root / "C-NMC_Leukemia" / "training_data" / "fold_1" / "all"
    next(d.iterdir()).rename(d / "cell.bmp")
    with pytest.raises(data.DataError, match="cell.bmp"):
        data.load_dataset("cnmc-2019", root)


def test_leukemia02_and_multicancer_layouts(tmp_path):
    r = data.write_synthetic(tmp_path / "l", "leukemia-0.2", n_per_class=3, size=32)
    t = data.load_dataset("leukemia-0.2", r)
    assert set(t["class_name"]) == {"ALL", "AML", "CLL", "CML", "H"} and set(t["split"]) == {"train", "test"}
    assert len(data.load_dataset("leukemia-0.2", r, split="test")) == 15
    # multicancer: accept the Kaggle zip's nesting "Multi Cancer/Multi Cancer/ALL"
    m = data.write_synthetic(tmp_path / "m0", "multicancer", n_per_class=3, size=32)
    nested = tmp_path / "m" / "Multi Cancer" / "Multi Cancer"
    nested.mkdir(parents=True)
    (m / "ALL").rename(nested / "ALL")
    t = data.load_dataset("multicancer-all", tmp_path / "m")
    assert dict(Counter(t["class_name"])) == {c: 3 for c in data.DATASETS["multicancer-all"].classes}


def test_load_synthetic_marks_itself():
    t = data.load_dataset("synthetic", layout="cnmc", n_per_class=2, size=32)
    assert t.attrs["dataset"] == "synthetic" and t.attrs["stands_in_for"] == "cnmc-2019"


# ---------------------------------------------------------------------------- splits


def _table(n_per_class=(30, 50, 20), dup_every=7):
    rows, k = [], 0
    for lab, n in enumerate(n_per_class):
        for i in range(n):
            sha = f"{lab}-{i // 2}" if i % dup_every == 0 else f"{lab}-{i}-u"
            rows.append(dict(id=f"c{lab}/{i}.jpg", label=lab, sha256=sha, subject=f"s{lab}-{i % 6}"))
            k += 1
    return pd.DataFrame(rows)


def test_split_fractions_stratified_deterministic():
    t = _table()
    a = data.split_fractions(t, seed=3)
    assert a == data.split_fractions(t, seed=3) and a != data.split_fractions(t, seed=4)
    assert sorted(sum(a.values(), [])) == sorted(t["id"])
    lab = dict(zip(t["id"], t["label"]))
    for part, frac in (("train", 0.75), ("test", 0.20)):
        c = Counter(lab[i] for i in a[part])
        for k, n in zip(range(3), (30, 50, 20)):
            assert abs(c[k] - frac * n) <= 1


@pytest.mark.parametrize("group_by,col", [("duplicates", "sha256"), ("subject", "subject")])
def test_grouped_splits_never_straddle(group_by, col):
    t = _table()
    t.loc[0, "sha256"] = t.loc[1, "sha256"]  # a duplicate pair that a random split could cut
    g = dict(zip(t["id"], t[col]))
    for seed in range(5):
        s = data.split_fractions(t, {"train": 0.8, "test": 0.2}, seed=seed, group_by=group_by)
        assert {g[i] for i in s["train"]}.isdisjoint({g[i] for i in s["test"]})
        for f in data.split_kfold(t, 3, seed=seed, group_by=group_by):
            assert {g[i] for i in f["train"]}.isdisjoint({g[i] for i in f["test"]})


def test_random_split_does_straddle_real_duplicates(taleqani):
    s = data.split_fractions(taleqani, {"train": 0.5, "test": 0.5}, seed=0)
    train = set(s["train"])
    cut = [g for g in data.find_duplicates(taleqani) if len(set(g) & train) == 1]
    assert cut  # the leak the duplicate-aware split prevents
    s2 = data.split_fractions(taleqani, {"train": 0.5, "test": 0.5}, seed=0, group_by="duplicates")
    train2 = set(s2["train"])
    assert not [g for g in data.find_duplicates(taleqani) if len(set(g) & train2) == 1]


def test_kfold_stratified_and_deterministic():
    t = _table()
    f1 = data.split_kfold(t, 5, seed=1)
    assert f1 == data.split_kfold(t, 5, seed=1)
    assert sorted(sum((f["test"] for f in f1), [])) == sorted(t["id"])
    lab = dict(zip(t["id"], t["label"]))
    for f in f1:
        assert Counter(lab[i] for i in f["test"])[1] == 10


def test_subject_split_needs_subjects(taleqani):
    with pytest.raises(data.DataError, match="no patient ids|subject"):
        data.split_fractions(taleqani, seed=0, group_by="subject")


def test_split_save_and_reload(tmp_path, taleqani):
    s = data.split_fractions(taleqani, seed=0, group_by="duplicates")
    p = data.save_split(s, tmp_path / "split.json", taleqani)
    assert data.load_split(p, taleqani) == s
    other = taleqani.copy()
    other.loc[other["id"] == s["test"][0], "sha256"] = "0" * 64
    with pytest.raises(data.DataError, match="changed"):
        data.load_split(p, other)


# ---------------------------------------------------------------------------- cache and decoding


def test_cache_decodes_once_and_matches_pil(tmp_path, taleqani, monkeypatch):
    t = taleqani.iloc[:6]
    cache = data.ImageCache(tmp_path / "c")
    imgs, kept = data.load_images(t, 224, cache=cache)
    ref = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in t["path"]])
    assert imgs.dtype == np.uint8 and np.array_equal(imgs, ref)  # 224 -> 224: no resampling
    files = list((tmp_path / "c" / "decoded" / "224").rglob("*.npy"))
    assert len(files) == 6
    small, _ = data.load_images(t.iloc[:2], 64, cache=data.ImageCache(tmp_path / "c", disk=False))
    assert small.shape == (2, 64, 64, 3)
    calls = []
    monkeypatch.setattr(images, "read_image", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(AssertionError))
    fresh = data.ImageCache(tmp_path / "c")  # new process, same disk cache: no decoding
    again, _ = data.load_images(t, 224, cache=fresh)
    assert np.array_equal(again, imgs) and not calls


def _bad_tree(tmp_path):
    root = data.write_synthetic(tmp_path / "bad", "taleqani", n_per_class=3, size=32)
    pre = root / "Original" / "Pre" / "WBC-Malignant-Pre-001.jpg"
    pre.write_bytes(pre.read_bytes()[: len(pre.read_bytes()) // 2])
    (root / "Original" / "Early" / "WBC-Malignant-Early-002.jpg").write_bytes(b"")
    return root


def test_bad_images_raise_or_skip(tmp_path):
    root = _bad_tree(tmp_path)
    t = data.load_dataset("taleqani-all", root)
    with pytest.raises(data.BadImageError, match="Early-002.jpg: empty file"):
        data.load_images(t, 32, cache=data.ImageCache(disk=False))
    imgs, kept = data.load_images(t, 32, cache=data.ImageCache(disk=False), on_bad="skip")
    assert len(imgs) == len(t) - 2 == len(kept)
    assert {s["reason"] for s in kept.attrs["skipped"]} == {"empty file (0 bytes)", "truncated image"}


def test_verify_cli_on_real_and_bad_folders(shared_data, tmp_path):
    cmd = [sys.executable, "-m", "leukcore.cli", "data", "verify"]
    ok = subprocess.run(cmd + [str(shared_data / "taleqani-all")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("3256 images") == 2 and ok.stdout.count("40 duplicate groups") == 2
    root = _bad_tree(tmp_path)
    bad = subprocess.run(cmd + [str(root)], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "WBC-Malignant-Pre-001.jpg: truncated image" in bad.stdout
    assert "WBC-Malignant-Early-002.jpg: empty file" in bad.stdout


def test_verify_flags_misplaced_files(tmp_path):
    root = data.write_synthetic(tmp_path / "m", "taleqani", n_per_class=2, size=32)
    (root / "Original" / "Pro" / "WBC-Benign-001.jpg").write_bytes(
        (root / "Original" / "Benign" / "WBC-Benign-001.jpg").read_bytes())
    (root / "Original" / "Pre" / "notes.txt").write_text("x")
    rep = data.verify(root)
    reasons = {Path(b["path"]).name: b["reason"] for b in rep["bad"]}
    assert "misplaced: named Benign but in folder Pro" in reasons["WBC-Benign-001.jpg"]
    assert "not an image" in reasons["notes.txt"]
    assert not rep["ok"]


# ---------------------------------------------------------------------------- fetch


def test_fetch_without_credentials_says_what_to_do(tmp_path, monkeypatch):
    for v in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "nokaggle"))
    with pytest.raises(data.DataError) as e:
        data.fetch_dataset("taleqani-all", tmp_path / "d")
    assert "mehradaria/leukemia" in str(e.value) and "LEUKCORE_DATA=" in str(e.value)


def test_fetch_offline_failure_is_clear_and_redacts(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_KEY", "s3cr3tkey")

    def offline(handle):
        raise ConnectionError(f"cannot reach kaggle for {handle} with key s3cr3tkey")

    with pytest.raises(data.DataError) as e:
        data.fetch_dataset("cnmc-2019", tmp_path / "d", downloader=offline)
    assert "s3cr3tkey" not in str(e.value) and "by hand" in str(e.value)


def test_fetch_places_download_under_root(tmp_path):
    src = data.write_synthetic(tmp_path / "dl", "taleqani", n_per_class=1, size=16)
    dest = data.fetch_dataset("taleqani-all", tmp_path / "root", downloader=lambda h: str(src))
    assert dest == tmp_path / "root" / "taleqani-all"
    assert len(data.load_dataset("taleqani-all", tmp_path / "root")) == 4


def test_file_hashes_are_remembered_until_the_file_changes(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(b"abc")
    h1 = datasets._sha256_cached(p)
    assert h1 == data.sha256_file(p)
    assert datasets._sha256_cached(p) == h1  # remembered
    p.write_bytes(b"abcd")  # size and time change: hashed anew
    assert datasets._sha256_cached(p) == data.sha256_file(p) != h1
    st = os.stat(p)
    p.write_bytes(b"wxyz")  # same size, a later modification time: hashed anew
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
    assert datasets._sha256_cached(p) == data.sha256_file(p)
