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
                 "summary_counts.md", "claims_vs_measured.png", "consistency.md", "consistency_kinds.md", "evidence.md",
                 "rerun_dscnet_kaur2023.md", "claims.csv", "records_manifest.md", "claims.manifest.sha256"):
        assert name in written
    assert len(pd.read_csv(tmp_path / "claims.csv")) == len(load_claims())
    rule = (tmp_path / "verdict_rule.md").read_text()
    assert "failed to train" in rule and "fewer than 3 runs" in rule
    table = (tmp_path / "summary_table.md").read_text()
    body = table[table.index("<tbody>"):table.index("</tbody>")]
    assert body.count("<tr>") == len(load_claims())  # one body row per claim
    assert "leukcore reproduce --paper dscnet_kaur2023 --profile paper" in (tmp_path / "rerun_dscnet_kaur2023.md").read_text()


def test_consistency_fragments_show_the_kind(tmp_path, monkeypatch):
    """The consistency page's tables carry the kind; the kinds list gives each kind's count."""
    from leukcore.evaluation.consistency import KINDS, check_claims

    findings = check_claims()
    shown = report.findings_shown(findings)
    assert list(shown.columns)[:2] == ["kind", "severity"] and len(shown) == len(findings)
    assert shown.claim_ids.iloc[0] == ", ".join(findings.claim_ids.iloc[0])
    kinds = report.kinds_markdown().splitlines()
    assert [line.split("**")[1] for line in kinds] == list(KINDS)
    n = {k: int((findings.kind == k).sum()) for k in KINDS}
    assert kinds[0] == f"- **impossible** (error, {n['impossible']} findings): no reading makes the printed numbers all true."
    assert "(warning," in kinds[-1]
    html = report.consistency_html("dscnet_vijayalakshmi")
    assert "split with more" not in html and "holds more images than the 6512" in html and ">impossible<" in html


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
