"""The audits' declared conclusions read the committed audit records: each one's effect per seed is the paired
difference (or the difference from its reference) of the arm records, and its sentence renders."""
from __future__ import annotations

import json

import pytest

from leukcore.book.findings import MissingReference, finding
from leukcore.conclusions import STATUSES, evaluate, list_conclusions
from leukcore.conclusions.audits import HALF, contrast
from leukcore.files import PROJECT_ROOT

AUDIT_RESULTS = PROJECT_ROOT / "results" / "audits" / "audit"


def _summary(audit_id: str) -> dict:
    path = AUDIT_RESULTS / f"{audit_id}.json"
    if not path.is_file():
        pytest.skip(f"no committed {audit_id} summary")
    return json.loads(path.read_text())


def test_every_audit_conclusion_has_a_status_and_a_sentence():
    decls = [c for c in list_conclusions() if c.page == "audits" or c.id.startswith("landing-")]
    assert {c.id for c in decls} >= {"shortcut_cnn-scale-bar-not-needed", "scale_bar_alone-mark-grey",
                                      "background_alone-cells-vs-background", "choices-alexnet-lambda",
                                      "segmented_artefacts-fraction-suffices", "attribution-audit-cnn-corner"}
    rendered = 0
    for c in decls:
        try:
            text = finding(c.id)
        except (MissingReference, LookupError):  # an audit whose records are not committed yet
            continue
        assert evaluate(c.id).status in STATUSES and "status-" in text and "{{" not in text
        rendered += 1
    assert rendered or not AUDIT_RESULTS.is_dir()


def test_a_contrast_is_the_summary_paired_difference():
    s = _summary("shortcut_cnn")
    per_seed = s["results"]["effects"]["scale_bar"]["per_seed"]
    r = evaluate("shortcut_cnn-scale-bar-not-needed")
    assert {str(k): v for k, v in r.judgement.per_run.items()} == pytest.approx(per_seed)
    ev = contrast("shortcut_cnn", "mask_scale_bar", "mask_control", ("a", "b"))
    assert set(ev.sides) == {"a", "b"} and len(ev.records) == 2 * len(ev.sides["a"])


def test_an_external_claim_is_each_seed_against_one_half():
    rec = _summary("external_pbc")
    values = rec["results"]["models"]["original"]["benign_fraction"]["values"]
    r = evaluate("external_pbc-original-benign")
    assert sorted(v + HALF for v in r.judgement.per_run.values()) == pytest.approx(sorted(values))
