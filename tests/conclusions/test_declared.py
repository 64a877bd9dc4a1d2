"""Declared conclusions: the registry, every declaration graded from the committed records, and the
landing page's headline counting what it says."""
from __future__ import annotations

import pytest

from leukcore.conclusions import STATUSES, SUPPORTED, evaluate, list_conclusions
from leukcore.conclusions.registry import CONCLUSIONS, declare


def test_a_declaration_needs_a_sentence_for_every_status_and_a_known_kind():
    with pytest.raises(ValueError, match="no sentence"):
        declare("x-test", page="landing", claim="c", test="t", kind="greater", sentences={SUPPORTED: "s"})
    with pytest.raises(ValueError, match="unknown kind"):
        declare("x-test", page="landing", claim="c", test="t", kind="bigger", sentences={})
    assert "x-test" not in CONCLUSIONS


def test_every_declared_conclusion_grades_and_renders_from_the_records():
    from leukcore.book import findings as F

    found = list_conclusions()
    assert len(found) >= 5
    for c in found:
        r = evaluate(c.id)
        assert r.status in STATUSES
        assert r.evidence.records, f"{c.id}: reads no record"
        if c.kind != "exact":
            n = min(r.judgement.runs)
            assert r.status != SUPPORTED or n >= 3, f"{c.id}: supported on {n} runs"
            lo, hi = r.judgement.low, r.judgement.high
            if lo is not None and c.bounds:
                assert c.bounds[0] <= lo <= hi <= c.bounds[1], f"{c.id}: interval outside its range"
        text = F.statement(c.id)
        assert text and "None" not in text and "nan" not in text.split(), c.id


def test_the_consistency_headline_counts_what_it_says_and_its_examples_are_findings():
    from leukcore.book import findings as F
    from leukcore.evaluation.consistency import check_claims, consistency_counts

    r = evaluate("landing-consistency")
    text = F.statement("landing-consistency")
    f = check_claims()
    assert r.evidence.values["impossible"] == consistency_counts(kind="impossible") == int((f["kind"] == "impossible").sum())
    assert f"find {consistency_counts(kind='impossible')} places" in text
    assert f"{consistency_counts(kind='disagrees')} places print two values" in text
    labels = set(f.loc[f["kind"] == "impossible", "label"])
    examples = r.evidence.values["examples"].split("; ")
    assert examples and all(e in labels for e in examples)


def test_the_losses_finding_reads_the_audit_and_the_three_paper_runs():
    r = evaluate("landing-losses")
    assert any("loss_equivalence" in p for p in r.evidence.records)
    assert sum("dscnet-" in p and "/paper/" in p for p in r.evidence.records) >= 3
