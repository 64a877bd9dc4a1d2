"""Tests of leukcore.audits: every audit at the smoke profile, and one real-value check per audit."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from leukcore import audits as A
from leukcore import data as D
from leukcore.runs.records import provenance_label, record_path, settings_hash

COMMON_FIELDS = ("status", "paper", "experiment", "profile", "seed", "settings", "settings_hash", "dataset", "commit",
                 "versions", "device", "wall_time_s", "results", "rows", "headline", "title", "question")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """All audits run once at the smoke profile into a temporary results folder and cache."""
    base = tmp_path_factory.mktemp("audits")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEUKCORE_CACHE", str(base / "cache"))
        mp.delenv("LEUKCORE_RESULTS", raising=False)
        # choices trains AlexNet and ResNet-50 even at smoke: its own (slow) test is in test_shortcuts.py
        recs = {a: A.run_audit(a, "smoke", results_dir=base / "results", device="cpu") for a in A.list_audits()
                if a != "choices"}
        yield {"recs": recs, "results": base / "results", "cache": base / "cache", "mp": mp}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LEUKCORE_CACHE", str(tmp_path / "cache"))
    return tmp_path


# ------------------------------------------------------------------------------ all audits


def test_every_audit_writes_a_complete_record(smoke):
    for audit_id, rec in smoke["recs"].items():
        for field in COMMON_FIELDS:
            assert field in rec, (audit_id, field)
        assert rec["status"] == "complete", (audit_id, rec.get("reason"))
        assert rec["paper"] == "audits" and rec["experiment"] == audit_id and rec["profile"] == "smoke"
        assert rec["settings_hash"] == settings_hash(A.audit_settings(audit_id, "smoke"))
        assert rec["settings"] == json.loads(json.dumps(A.audit_settings(audit_id, "smoke")))
        ds = rec["dataset"]
        assert {"id", "fingerprint", "is_papers"} <= set(ds)
        assert isinstance(ds["fingerprint"], str) and len(ds["fingerprint"]) == 16
        assert ds["is_papers"] == (ds["id"] != "synthetic")
        path = record_path("audits", "smoke", audit_id, smoke["results"])
        on_disk = json.loads(path.read_text())
        assert on_disk["settings_hash"] == rec["settings_hash"] and on_disk["status"] == "complete"
        assert provenance_label(rec).startswith("smoke · ")
        table = A.audit_table(rec)
        assert len(table) == len(rec["rows"]) and (table["profile · dataset"] == provenance_label(rec)).all()
        for row in rec["rows"]:
            if row["low"] is not None:
                assert row["low"] <= row["point"] + 1e-12 and row["point"] <= row["high"] + 1e-12, (audit_id, row)


def test_synthetic_fallback_is_said(cache):
    """Without any data every taleqani audit falls back to the synthetic stand-in and says so."""
    empty = cache / "no-data"
    empty.mkdir()
    rec = A.shortcut_colour("smoke", data_root=empty, results_dir=cache / "res")
    assert rec["dataset"]["id"] == "synthetic" and rec["dataset"]["stands_in_for"] == "taleqani-all"
    assert rec["dataset"]["is_papers"] is False
    assert "SYNTHETIC" in A.data_banner(rec)
    assert "stand-in for taleqani-all" in provenance_label(rec)


def test_get_or_run_reuses_a_record_with_the_same_key(smoke, monkeypatch):
    monkeypatch.setenv("LEUKCORE_CACHE", str(smoke["cache"]))
    calls = []

    def fake(profile, **kw):
        calls.append(kw)
        return {"status": "complete", "fake": True}

    monkeypatch.setitem(A.AUDIT_FUNCTIONS, "shortcut_colour", fake)
    rec = A.get_or_run_audit("shortcut_colour", "smoke", results_dir=smoke["results"])
    assert not calls and rec["settings_hash"] == smoke["recs"]["shortcut_colour"]["settings_hash"]
    assert A.get_or_run_audit("shortcut_colour", "smoke", results_dir=smoke["results"], seed=1)["fake"]
    assert A.get_or_run_audit("shortcut_colour", "smoke", results_dir=smoke["results"], force=True)["fake"]
    assert len(calls) == 2
    assert A.find_audit_record("shortcut_colour", "cpu", results_dir=smoke["results"]) is None


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="valid: shortcut_colour"):
        A.audit_settings("nope")
    with pytest.raises(ValueError, match="valid: smoke"):
        A.audit_settings("shortcut_colour", "huge")
    with pytest.raises(ValueError, match="valid: original"):
        A.apply_variant(np.zeros((1, 8, 8, 3), np.uint8), "sepia")


def test_settings_scale_with_the_profile():
    a = A.audit_settings("shortcut_cnn", "audit")
    assert a["image_size"] == 64 and a["model"] == "audit_cnn" and a["train"]["epochs"] == 12
    assert a["train"]["stop_from_epoch"] == 7 and a["profile"]["name"] == "audit"
    assert "colour_jitter" not in str(a["train"]["augment_kwargs"]) and a["max_per_class"] is None
    assert A.default_seeds("audit") == (0, 1, 2) and A.default_seeds("smoke") == (0,)
    assert A.audit_settings("loss_equivalence", "audit")["model"] == "dscnet"
    s, c, p = (A.audit_settings("leakage_augment", x) for x in ("smoke", "cpu", "paper"))
    assert p["per_class"] == 5000 and p["originals_fraction"] == 1.0
    assert c["image_size"] == 64 and c["train"]["epochs"] == 3 and c["per_class"] < 5000
    assert s["train"]["epochs"] == 1 and p["train"]["epochs"] == A.AUDIT_EPOCHS and p["image_size"] == 224
    assert c["max_per_class"] is None and c["profile"]["max_per_class"] is None  # the audits use every image
    assert A.audit_profile("cpu").name == "cpu" and A.audit_profile(A.audit_profile("cpu")) == A.audit_profile("cpu")


# ------------------------------------------------------------------------------ 1. colour


def test_colour_features_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 10, 12, 3), dtype=np.uint8)
    f = A.colour_features(x, "hist", bins=16)
    for i in range(3):
        for c in range(3):
            h, _ = np.histogram(x[i, :, :, c], bins=16, range=(0, 256))
            np.testing.assert_allclose(f[i, c * 16:(c + 1) * 16], h / 120)
    m = A.colour_features(x, "moments")
    np.testing.assert_allclose(m[:, :3], x.reshape(3, -1, 3).mean(1) / 255)
    np.testing.assert_allclose(m[:, 3:], (x.reshape(3, -1, 3) / 255).std(1))


def _tinted_tree(root, tint_by_class: bool, n=10, size=24, seed=0):
    """Taleqani layout of noise images; class c tinted towards one colour, or tints drawn at random."""
    rng = np.random.default_rng(seed)
    tints = np.array([[60, 0, 0], [0, 60, 0], [0, 0, 60], [40, 40, 0]])
    names = {"Benign": "WBC-Benign", "Early": "WBC-Malignant-Early", "Pre": "WBC-Malignant-Pre",
             "Pro": "WBC-Malignant-Pro"}
    import cv2

    for label, c in enumerate(D.DATASETS["taleqani-all"].classes):
        d = root / "Original" / c
        d.mkdir(parents=True)
        for i in range(n):
            t = tints[label] if tint_by_class else tints[rng.integers(0, 4)]
            img = np.clip(rng.integers(80, 180, (size, size, 3)) + t, 0, 255).astype(np.uint8)
            cv2.imwrite(str(d / f"{names[c]}-{i + 1:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root


def test_colour_baseline_finds_a_colour_shortcut_and_only_then(cache):
    tinted = A.shortcut_colour("smoke", data_root=_tinted_tree(cache / "tinted", True), results_dir=cache / "r1")
    assert tinted["dataset"]["id"] == "taleqani-all" and tinted["dataset"]["n_images"] == 40
    assert tinted["results"]["hist"]["accuracy"]["point"] >= 0.95
    assert tinted["results"]["moments"]["accuracy"]["point"] >= 0.95
    random = A.shortcut_colour("smoke", data_root=_tinted_tree(cache / "random", False), results_dir=cache / "r2")
    for kind in ("hist", "moments"):
        assert random["results"][kind]["accuracy"]["point"] < 0.5
    assert random["results"]["majority_rate"] == 0.25


# ------------------------------------------------------------------------------ 2. shortcut CNN


def test_scale_bar_box_covers_the_measured_label():
    y0, x0 = A.scale_bar_box(224, 224)
    assert (y0, x0) == (188, 183)  # label at rows 194-217, columns 193-217 of the 224 px originals
    assert A.scale_bar_box(64, 64) == (53, 52)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    m = A.mask_scale_bar(x)
    outside = np.ones((64, 64), bool)
    outside[53:, 52:] = False
    assert np.array_equal(m[:, outside], x[:, outside])
    for i in range(2):
        np.testing.assert_array_equal(m[i, 60, 60], np.rint(x[i][outside].mean(0)).astype(np.uint8))
        assert (m[i, 53:, 52:] == m[i, 60, 60]).all()
    assert (A.mask_scale_bar(x, fill="black")[:, 53:, 52:] == 0).all()


def test_variants_alter_the_images_as_stated():
    from leukcore.filters import reinhard_normalize, reinhard_target, to_grey

    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    assert A.apply_variant(x, "original") is x
    np.testing.assert_array_equal(A.apply_variant(x, "grey"), to_grey(x))
    stats = reinhard_target(x)
    np.testing.assert_array_equal(A.apply_variant(x, "reinhard", stats), reinhard_normalize(x, *stats))


def _arm(smoke, audit_id, arm, seed=0):
    return json.loads(A.arm_record_path(audit_id, arm, "smoke", seed, smoke["results"]).read_text())


def test_shortcut_cnn_mcnemar_matches_the_paired_difference(smoke):
    rec = smoke["recs"]["shortcut_cnn"]
    res = rec["results"]
    assert set(res["arms"]) == {"original", "grey", "reinhard", "mask_scale_bar", "mask_control",
                                "original@grey", "original@reinhard", "original@mask_scale_bar",
                                "original@mask_control"}
    orig = _arm(smoke, "shortcut_cnn", "original")["results"]
    n = orig["n_test"]
    for v in ("grey", "reinhard", "mask_scale_bar", "mask_control"):
        e = res["effects"][v]
        mc = e["mcnemar"]["0"] if "0" in e["mcnemar"] else e["mcnemar"][0]
        assert mc["n_common"] == n
        # acc_v - acc_orig = (images only v gets right - images only the original gets right) / n
        assert math.isclose(e["per_seed"]["0"] if "0" in e["per_seed"] else e["per_seed"][0], (mc["b"] - mc["c"]) / n,
                            abs_tol=1e-12)
    assert set(orig["test_time"]) == {"grey", "reinhard", "mask_scale_bar", "mask_control"}
    bar = res["effects"]["scale_bar"]
    assert (bar["a"], bar["b"]) == ("mask_scale_bar", "mask_control")
    assert res["effects"]["test_scale_bar"]["b"] == "original@mask_control"


# ------------------------------------------------------------------------------ 3. duplicates


def test_count_twins_on_the_real_data(shared_data):
    table = D.load_dataset("taleqani-all", shared_data, variant="original", verbose=False)
    groups = D.find_duplicates(table)
    assert len(groups) == 40
    split = D.split_fractions(table, {"train": 0.5, "test": 0.5}, seed=0, group_by=None)
    tw = A.count_twins(table, split)
    train = set(split["train"])
    brute = sum(1 for g in groups for i in g if i not in train and any(j in train for j in g))
    assert tw["test_with_twin"] == brute == tw["groups_straddling"] > 0  # pairs: one twin per straddling pair
    assert tw["duplicate_groups"] == 40
    safe = D.split_fractions(table, {"train": 0.5, "test": 0.5}, seed=0, group_by="duplicates")
    assert A.count_twins(table, safe)["test_with_twin"] == 0


def test_leakage_duplicates_record_counts_twins(smoke):
    rec = smoke["recs"]["leakage_duplicates"]
    aware, rand = _arm(smoke, "leakage_duplicates", "duplicate_aware"), _arm(smoke, "leakage_duplicates", "random")
    assert aware["results"]["test_with_twin"] == 0
    r = rand["results"]
    assert r["max_effect"] == r["test_with_twin"] / r["n_test"]
    assert rec["results"]["max_test_with_twin"] == r["test_with_twin"]
    if rec["dataset"]["id"] == "taleqani-all":  # smoke samples twins first: some pairs are in the table
        assert rec["results"]["duplicate_groups"] > 0


# ------------------------------------------------------------------------------ 4. augmentation


def test_expand_by_augmentation_counts_and_sources():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    xa, ya, src, orig = A.expand_by_augmentation(x, y, 10, seed=0)
    assert np.bincount(ya).tolist() == [10, 10] and (y[src] == ya).all()
    assert np.array_equal(xa[orig], x[src[orig]]) and orig.sum() == 7
    assert np.bincount(src, minlength=7)[:3].tolist() in ([4, 3, 3], [3, 4, 3], [3, 3, 4])  # round-robin copies
    assert not any(np.array_equal(xa[i], x[src[i]]) for i in np.flatnonzero(~orig))
    xb, *_ = A.expand_by_augmentation(x, y, 10, seed=0)
    assert np.array_equal(xa, xb)  # seeded


def test_leakage_augment_record(smoke):
    res = smoke["recs"]["leakage_augment"]["results"]
    leaky = _arm(smoke, "leakage_augment", "augment_then_split")["results"]
    clean = _arm(smoke, "leakage_augment", "split_then_augment")["results"]
    assert leaky["test_source_in_train"] > 0.9 and clean["test_source_in_train"] == 0.0
    assert leaky["n_train"] == clean["n_train"] and leaky["n_test"] == clean["n_test"]
    d = res["effects"]["leak_own_test"]["mean"]
    assert math.isclose(d, leaky["eval"]["accuracy"]["point"] - clean["eval"]["accuracy"]["point"])
    assert leaky["unseen"]["test_index"] == clean["unseen"]["test_index"]  # the same unseen originals
    assert res["effects"]["leak_unseen"]["mcnemar"]  # same images: McNemar applies


# ------------------------------------------------------------------------------ 5. subjects


def test_leakage_subject_on_a_synthetic_cnmc_tree(cache):
    D.write_synthetic(cache / "data" / "cnmc-2019", "cnmc", n_per_class=8, size=32, seed=0)
    rec = A.leakage_subject("smoke", data_root=cache / "data", results_dir=cache / "res", device="cpu")
    assert rec["status"] == "complete" and rec["dataset"]["id"] == "synthetic"
    assert rec["dataset"]["stands_in_for"] == "cnmc-2019"
    arms = rec["results"]["arms"]
    assert arms["subject_disjoint"]["subjects_on_both_sides"] == 0
    assert arms["image_level"]["subjects_on_both_sides"] > 0


def test_leakage_subject_is_not_run_without_cnmc(cache):
    empty = cache / "none"
    empty.mkdir()
    rec = A.leakage_subject("cpu", data_root=empty, results_dir=cache / "res")
    assert rec["status"] == "not run" and rec["reason"].startswith("not run: cnmc-2019 absent")
    assert json.loads(record_path("audits", "cpu", "leakage_subject", cache / "res").read_text())["status"] == "not run"
    assert A.find_audit_record("leakage_subject", "cpu", results_dir=cache / "res", data_root=empty) is None
    assert "not run" in A.audit_table(rec)["value"].iloc[0]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.close(A.plot_audit(rec))


# ------------------------------------------------------------------------------ 6. losses


def test_loss_equivalence_record(smoke):
    res = smoke["recs"]["loss_equivalence"]["results"]
    assert res["max_abs_loss_diff"] < 1e-5 and res["coincide"]
    assert set(res["curves"]) == {"mce", "sparse_ce", "kl"} and res["steps"] >= 1
    assert len({len(c) for c in res["curves"].values()}) == 1


def test_stepwise_losses_coincide_over_many_steps_and_focal_does_not():
    import torch
    from torch import nn

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (48, 12, 12, 3), dtype=np.uint8)
    y = rng.integers(0, 3, 48)

    def net():
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Dropout(0.2), nn.Linear(400, 3))

    curves = {k: A.stepwise_losses(net, x, y, k, epochs=5, batch_size=8, seed=0) for k in ("mce", "sparse_ce", "kl",
                                                                                          "focal")}
    assert len(curves["mce"][0]) == 30
    for k in ("sparse_ce", "kl"):
        assert np.max(np.abs(np.array(curves[k][0]) - curves["mce"][0])) < 1e-5
        for name, w in curves[k][1].items():
            assert torch.allclose(w, curves["mce"][1][name], atol=1e-5)
    assert np.max(np.abs(np.array(curves["focal"][0]) - curves["mce"][0])) > 1e-2  # the check can fail


# ------------------------------------------------------------------------------ 7. external


def test_wilson_interval_hand_values():
    w = A.wilson_interval(5, 10)
    assert math.isclose(w["low"], 0.236593, abs_tol=1e-6) and math.isclose(w["high"], 0.763407, abs_tol=1e-6)
    w0 = A.wilson_interval(0, 10)
    assert w0["low"] == 0.0 and math.isclose(w0["high"], 0.277533, abs_tol=1e-6)
    assert math.isnan(A.wilson_interval(0, 0)["point"])


def test_external_pbc_fractions(smoke):
    rec = smoke["recs"]["external_pbc"]
    models = rec["results"]["models"]
    assert set(models) == set(A.ARMS["external_pbc"])
    n = rec["results"]["n_external"]
    assert n == rec["external_dataset"]["n_images"] > 0
    for name in models:
        r = _arm(smoke, "external_pbc", name)["results"]
        b = r["benign_fraction"]
        assert 0.0 <= b["low"] <= b["point"] <= b["high"] <= 1.0, name
        assert b["n"] == n and sum(r["predicted_counts"].values()) == n
        assert b["k"] == r["predicted_counts"][list(r["predicted_counts"])[0]]
        assert 0.0 <= r["ood_auroc"] <= 1.0 and 0.0 <= r["mean_confidence_pbc"] <= 1.0
        assert models[name]["benign_fraction"]["mean"] == b["point"]  # one seed at smoke
    rng = rec["results"]["ranges"]["benign_fraction"]
    assert rng["min"] <= rng["max"] and rng["argmin"] in models
    assert rec["external_dataset"]["id"] in ("pbc-lymphocytes", "synthetic")


def test_plot_audit_draws_every_record(smoke):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for rec in smoke["recs"].values():
        fig = A.plot_audit(rec)
        assert fig.axes
        plt.close(fig)
    fig = A.plot_variant_examples(n=2, size=48)
    assert len(fig.axes) in (10, 12)  # five arms, and the Segmented variant when it is on disk
    plt.close(fig)
