"""The seeded audits: the audit profile, one record per arm and seed (paths, reuse, resume), the control
mask, early stopping, and the conclusions rendered from summary records."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from leukcore import audits as A
from leukcore.book import findings as F
from leukcore.runs.profiles import PROFILE_RANK, best_profile, get_profile, list_profiles


def test_the_audit_profile():
    p = get_profile("audit")
    assert p.name == "audit" and p.image_size == 64 and p.max_per_class is None and p.epochs == 12
    assert "audit" in p.description
    assert list_profiles() == ["smoke", "cpu", "audit", "paper"]
    assert PROFILE_RANK["smoke"] < PROFILE_RANK["cpu"] < PROFILE_RANK["audit"] < PROFILE_RANK["paper"]
    assert best_profile(["cpu", "audit", "smoke"]) == "audit" and best_profile(["nope"]) is None
    assert A.audit_profile("audit").epochs == 12 and A.audit_settings("segmented", "audit")["profile"]["name"] == "audit"


def test_arm_record_path(tmp_path):
    p = A.arm_record_path("shortcut_cnn", "mask_control", "audit", 2, tmp_path)
    assert p == tmp_path / "audits" / "audit" / "shortcut_cnn" / "mask_control.seed2.json"
    with pytest.raises(ValueError, match="valid: original"):
        A.run_arm("shortcut_cnn", "sepia", "smoke")
    with pytest.raises(ValueError, match="not a seeded audit"):
        A.run_arm("shortcut_colour", "original", "smoke")


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    base = tmp_path_factory.mktemp("seeded")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEUKCORE_CACHE", str(base / "cache"))
        rec = A.get_or_run_audit("leakage_duplicates", "smoke", seeds=(0, 1), results_dir=base / "results",
                                 device="cpu")
        yield {"rec": rec, "results": base / "results", "mp": mp}


def test_one_record_per_arm_and_seed_and_a_summary(two_seeds):
    res = two_seeds["results"]
    for s in (0, 1):
        for arm in A.ARMS["leakage_duplicates"]:
            r = json.loads(A.arm_record_path("leakage_duplicates", arm, "smoke", s, res).read_text())
            assert r["status"] == "complete" and r["seed"] == s and r["arm"] == arm and r["profile"] == "smoke"
            assert r["settings_hash"] == json.loads(json.dumps(r))["settings_hash"]
    rec = two_seeds["rec"]
    assert rec["seeds"] == [0, 1] and len(rec["arm_records"]) == 4
    on_disk = json.loads((res / "audits" / "smoke" / "leakage_duplicates.json").read_text())
    assert on_disk["seeds"] == [0, 1] and on_disk["experiment"] == "leakage_duplicates"
    per = rec["results"]["arms"]["random"]
    accs = [json.loads(A.arm_record_path("leakage_duplicates", "random", "smoke", s, res).read_text())
            ["results"]["measures"]["random"]["accuracy"] for s in (0, 1)]
    assert per["values"] == accs and math.isclose(per["mean"], np.mean(accs))
    eff = rec["results"]["effects"]["random"]
    aware = [json.loads(A.arm_record_path("leakage_duplicates", "duplicate_aware", "smoke", s, res).read_text())
             ["results"]["measures"]["duplicate_aware"]["accuracy"] for s in (0, 1)]
    assert eff["per_seed"] == pytest.approx({0: accs[0] - aware[0], 1: accs[1] - aware[1]})
    wall = sum(json.loads(A.arm_record_path("leakage_duplicates", a, "smoke", s, res).read_text())["wall_time_s"]
               for a in A.ARMS["leakage_duplicates"] for s in (0, 1))
    assert math.isclose(rec["wall_time_s"], wall, abs_tol=0.05)


def test_a_second_run_reuses_the_records_and_resumes_a_missing_arm(two_seeds, monkeypatch):
    res = two_seeds["results"]
    monkeypatch.setenv("LEUKCORE_CACHE", str(res.parent / "cache"))
    calls = []
    real = A.seeded.run_arm

    def counting(audit_id, arm, profile, **kw):
        calls.append((arm, kw["seed"]))
        return real(audit_id, arm, profile, **kw)

    monkeypatch.setattr(A.seeded, "run_arm", counting)
    again = A.get_or_run_audit("leakage_duplicates", "smoke", seeds=(0, 1), results_dir=res, device="cpu")
    assert calls == [] and again["results"]["effects"]["random"]["per_seed"] == pytest.approx(
        two_seeds["rec"]["results"]["effects"]["random"]["per_seed"])
    assert A.find_audit_record("leakage_duplicates", "smoke", results_dir=res, seed=1) is not None
    assert A.find_audit_record("leakage_duplicates", "smoke", results_dir=res, seed=2) is None
    # an interrupted run: one arm's record is missing; only that arm runs again
    A.arm_record_path("leakage_duplicates", "random", "smoke", 1, res).unlink()
    assert A.find_audit_record("leakage_duplicates", "smoke", results_dir=res, seed=1) is None
    A.get_or_run_audit("leakage_duplicates", "smoke", seeds=(0, 1), results_dir=res, device="cpu")
    assert calls == [("random", 1)]


def test_control_mask_has_the_scale_bar_mask_size_in_another_corner():
    assert A.mask_box(64, 64, "bottom-right") == (53, 64, 52, 64)
    assert A.mask_box(64, 64, "top-left") == (0, 11, 0, 12)  # ceil(0.16 * 64) rows, ceil(0.18 * 64) columns
    assert A.mask_box(224, 224, "bottom-right")[::2] == A.scale_bar_box(224, 224)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    bar, ctrl = A.apply_variant(x, "mask_scale_bar"), A.apply_variant(x, "mask_control")
    changed_bar, changed_ctrl = (bar != x).any(-1), (ctrl != x).any(-1)
    assert not changed_ctrl[:, 11:, :].any() and not changed_ctrl[:, :, 12:].any()  # only the top-left box
    assert not changed_bar[:, :53, :].any() and not changed_bar[:, :, :52].any()
    assert (ctrl[:, :11, :12] == ctrl[:, :1, :1]).all()  # one fill colour per image
    y0, y1, x0, x1 = A.mask_box(64, 64, "top-left")
    b0, b1, c0, c1 = A.mask_box(64, 64, "bottom-right")
    assert (y1 - y0, x1 - x0) == (b1 - b0, c1 - c0)


def test_validation_carve_is_stratified_and_keeps_twins_together():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    x[1] = x[0]  # twins
    y = np.repeat([0, 1], 20)
    fit, val = A.validation_carve(x, y, 0.2, seed=0)
    assert len(set(fit) & set(val)) == 0 and len(fit) + len(val) == 40
    assert np.bincount(y[val]).tolist() in ([4, 4], [5, 4])  # about a fifth of each class
    assert (0 in val) == (1 in val)
    assert A.validation_carve(x, y, 0.0, seed=0)[1].size == 0


def test_early_stopping_only_in_the_second_half():
    import torch

    model = torch.nn.Linear(2, 2)
    stop = A.EarlyStop(patience=3, stop_from=7)
    losses = [0.1, 5, 5, 5, 5, 5, 2.0, 3.0, 3.0, 3.0]  # the best epoch of all is in the first half
    stopped = [e for e, vl in enumerate(losses, 1) if stop(e, {"val_loss": vl}, model)]
    assert stopped == [10] and stop.best_epoch == 7 and stop.best_state is not None
    quiet = A.EarlyStop(patience=3, stop_from=7)
    assert not any(quiet(e, {"val_loss": 9.0 - e}, model) for e in range(1, 13))  # always improving


# ------------------------------------------------------------------------------ conclusions


def _fake_summary():
    return {"status": "complete", "paper": "audits", "experiment": "shortcut_cnn", "profile": "audit", "seed": 0,
            "dataset": {"id": "taleqani-all"},
            "results": {"arms": {"original": {"mean": 0.99, "low": 0.98, "high": 1.0, "n": 3}},
                        "effects": {"grey": {"mean": -0.02, "low": -0.04, "high": -0.004, "n": 3}}}}


def test_conclusion_references_render_and_a_missing_key_fails(monkeypatch):
    monkeypatch.setattr(F, "_records_cached", lambda: (_fake_summary(),))
    out = F.render_string('{{ audit("shortcut_cnn", "effects.grey") | ppci }} / '
                          '{{ audit("shortcut_cnn", "arms.original") | pctci }} / '
                          '{{ excludes_zero(audit("shortcut_cnn", "effects.grey")) }}')
    assert out == ("-2.0\u00a0pp [-4.0\u00a0pp, -0.4\u00a0pp] / 99.0\u00a0% [98.0\u00a0%, 100.0\u00a0%] / True")
    with pytest.raises(F.MissingReference, match="no key 'nope'"):
        F.render_string('{{ audit("shortcut_cnn", "effects.nope") | ppci }}')
    with pytest.raises(F.MissingReference):
        F.render_string('{{ audit("shortcut_cnn", "effects") | ppci }}')  # not a mean over seeds
    with pytest.raises(F.MissingReference, match="audit_shortcut_cnn.md.j2"):
        F.render("audit_shortcut_cnn.md.j2")  # the real template needs keys the fake record lacks


def test_every_conclusion_template_renders_from_smoke_summaries(tmp_path, monkeypatch):
    """The templates and the summary records agree on every key (smoke records, one seed)."""
    from leukcore.book.audit_conclusions import has_conclusion

    monkeypatch.setenv("LEUKCORE_CACHE", str(tmp_path / "cache"))
    recs = []
    with_template = A.SEEDED_AUDITS + ("shortcut_colour", "loss_equivalence")
    for a in with_template:
        rec = A.get_or_run_audit(a, "smoke", results_dir=tmp_path / "results", device="cpu")
        recs.append(json.loads(json.dumps({k: v for k, v in rec.items() if k != "_path"}, default=str)))
    if any(r["dataset"]["id"] == "synthetic" for r in recs):
        for r in recs:
            r["dataset"] = {**r["dataset"], "id": "taleqani-all"}  # the accessor cites real data only
    monkeypatch.setattr(F, "_records_cached", lambda: tuple(recs))
    for a in with_template:
        assert has_conclusion(a)
        text = F.render(f"audit_{a}.md.j2")
        assert "**Conclusion.**" in text and "*Limits.*" in text
        assert not F.scan_prose(open(F.TEMPLATE_DIR / f"audit_{a}.md.j2").read())
