"""leukcore.book.pages: the generated pages the book includes."""
from __future__ import annotations

import pandas as pd

from leukcore.book import pages as report
from leukcore.evaluation.claims import load_claims
from leukcore.evaluation.verdicts import claims_table


def test_every_claim_gets_a_row_and_only_exact_claims_are_judged_without_runs():
    df = claims_table("all", records=[])
    assert len(df) == len(load_claims())
    judged = df[df["verdict"] != "not run"]
    # with no run, only exact counts (model registry, dataset on disk) and timings get a verdict
    assert set(judged["metric"]) <= {"params", "count", "time_s", "confusion_matrix"}
    assert set(judged["verdict"]) <= {"reproduced", "differs", "not comparable"}


def test_build_pages_writes_every_fragment(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "load_records", lambda *a, **k: [])
    written = {p.name for p in report.build_pages(tmp_path)}
    for name in ("verdict_legend.md", "verdict_rule.md", "profiles.md", "datasets.md", "summary_table.md",
                 "summary_counts.md", "claims_vs_measured.png", "consistency.md", "evidence.md",
                 "rerun_dscnet_kaur2023.md", "claims.csv", "performance.md"):
        assert name in written
    assert len(pd.read_csv(tmp_path / "claims.csv")) == len(load_claims())
    rule = (tmp_path / "verdict_rule.md").read_text()
    assert "failed to train" in rule and "fewer than 3 runs" in rule
    table = (tmp_path / "summary_table.md").read_text()
    body = table[table.index("<tbody>"):table.index("</tbody>")]
    assert body.count("<tr>") == len(load_claims())  # one body row per claim
    assert "leukcore reproduce --paper dscnet_kaur2023 --profile paper" in (tmp_path / "rerun_dscnet_kaur2023.md").read_text()


def test_grad_cam_says_why_when_the_weights_are_elsewhere(tmp_path, capsys):
    from leukcore.book import figures as F

    rec = {"paper": "dscnet_vijayalakshmi", "experiment": "dscnet", "_path": str(tmp_path / "dscnet.json"),
           "metrics": {"accuracy": 0.9, "confusion_matrix": [[3, 1], [1, 3]]}, "profile": "paper",
           "dataset": {"id": "taleqani-all"}, "device": "NVIDIA H200 (CUDA 13.0)"}
    other = dict(rec, experiment="vgg16", metrics={**rec["metrics"], "accuracy": 0.3})
    assert F.gradcam_record([other, rec]) is rec  # no weights anywhere: the most accurate CNN
    assert F.plot_grad_cam(rec) is None
    out = capsys.readouterr().out
    assert "Grad-CAM of dscnet (paper · taleqani-all) is not shown" in out and "NVIDIA H200" in out
