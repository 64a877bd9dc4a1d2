"""leukcore.book.findings: prose whose numbers are references filled from records, and the check that
keeps typed-in measurements out of the book's prose."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from leukcore.book import findings as F
from leukcore.evaluation.claims import list_papers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _fresh():
    F.clear_cache()
    yield
    F.clear_cache()


def _json(path: str) -> dict:
    return json.loads((ROOT / path).read_text())


# ------------------------------------------------------------------------------ filters


def test_filters_format_hand_computed_values():
    nb = "\u00a0"  # no-break space between a number and its unit
    assert F.pct(0.976044226) == f"97.6{nb}%"
    assert F.pct(0.5, 2) == f"50.00{nb}%"
    assert F.pp(0.0899) == f"+9.0{nb}pp"
    assert F.pp(-0.0325) == f"-3.2{nb}pp"
    assert F.interval((0.97082, 0.98127)) == f"[97.1{nb}%, 98.1{nb}%]"
    assert F.num(1214) == "1,214"
    assert F.sci(2.384185791015625e-07) == "2.4e-07"
    assert F.plural(1, "run") == "1 run" and F.plural(3, "run") == "3 runs"
    with pytest.raises(F.MissingReference):
        F.pct(None)
    with pytest.raises(F.MissingReference):
        F.pct(float("nan"))


# ------------------------------------------------------------------------------ references


def test_references_read_the_records_and_the_ledger():
    rec = _json("results/dscnet_vijayalakshmi/paper/darknet53.json")
    assert F.m("dscnet_vijayalakshmi", "darknet53", "accuracy") == pytest.approx(rec["metrics"]["accuracy"])
    assert F.prof("dscnet_vijayalakshmi", "darknet53") == "paper"  # paper beats cpu and smoke
    # m, ci and runs are the pooled numbers of the claims table: "N runs" always goes with the pooled value
    row = F.claim_row("dscnet_vijayalakshmi", "dscnet-accuracy")
    assert F.m("dscnet_vijayalakshmi", "dscnet", "accuracy") == pytest.approx(row["measured"])
    assert F.ci("dscnet_vijayalakshmi", "dscnet", "accuracy") == pytest.approx((row["low"], row["high"]))
    assert F.runs("dscnet_vijayalakshmi", "dscnet") == row["runs"] >= 2
    seed0 = _json("results/dscnet_vijayalakshmi/paper/dscnet.json")["metrics"]["accuracy"]
    assert F.m_seed("dscnet_vijayalakshmi", "dscnet", 0) == seed0
    # the claim exactly as printed in the ledger, with its unit
    assert F.claim("dscnet_vijayalakshmi", "dscnet-accuracy") == "99.85\u00a0%"
    assert F.claim("xincept_khan2024", "xincept-xgboost-accuracy") == "0.990"
    assert F.claimed("dscnet_vijayalakshmi", "dscnet-accuracy") == pytest.approx(0.9985)
    colour = _json("results/audits/audit/shortcut_colour.json")["results"]  # audit beats cpu and smoke
    assert F.audit("shortcut_colour", "hist.accuracy.point") == colour["hist"]["accuracy"]["point"]
    pbc = _json("results/audits/audit/external_pbc.json")["results"]
    assert F.audit("external_pbc", "models.reinhard.benign_fraction.mean") == \
        pbc["models"]["reinhard"]["benign_fraction"]["mean"]
    assert F.audit("external_pbc", "ranges.benign_fraction.min") == pbc["ranges"]["benign_fraction"]["min"]
    assert F.audit_profile("external_pbc") == "audit"


def test_consistency_counts_match_check_claims():
    from leukcore.evaluation.consistency import check_claims

    f = check_claims()
    assert F.consistency_errors() == int((f["severity"] == "error").sum())
    assert F.consistency_errors("logmh_haque2024", "f1_outside_pr") == int(
        ((f["paper"] == "logmh_haque2024") & (f["rule"] == "f1_outside_pr") & (f["severity"] == "error")).sum())
    assert F.consistency_error_papers() == f[f["severity"] == "error"]["paper"].nunique()


@pytest.mark.parametrize("ref, name", [
    ('{{ m("dscnet_vijayalakshmi", "no-such-experiment") | pct }}', "no-such-experiment"),
    ('{{ m("dscnet_vijayalakshmi", "dscnet", "no_such_metric") | pct }}', "no_such_metric"),
    ('{{ claim("dscnet_vijayalakshmi", "no-such-claim") }}', "no-such-claim"),
    ('{{ audit("shortcut_colour", "hist.no_such_key") }}', "no_such_key"),
    ('{{ audit("leakage_subject", "anything") }}', "leakage_subject"),  # its record holds no results
    ('{{ no_such_reference }}', "no_such_reference"),
])
def test_a_reference_nothing_fills_fails_with_its_name(ref, name):
    with pytest.raises(F.MissingReference, match=re.escape(name)):
        F.render_string("The value is " + ref + ".", name="planted")


def test_a_missing_reference_in_a_template_file_names_the_template(tmp_path):
    (tmp_path / "page.md.j2").write_text('Ours: {{ m("alnet_jawahar2022", "alnet-cv") | pct }}.\n')
    with pytest.raises(F.MissingReference, match=r"page\.md\.j2.*alnet-cv"):
        F.render("page.md.j2", template_dir=tmp_path)


def test_compute_budget_sums_wall_time_by_device(monkeypatch):
    recs = (
        {"status": "complete", "wall_time_s": 3600.0, "device": "CPU: AMD EPYC, 2 cores"},
        {"status": "complete", "wall_time_s": 1800.0, "device": "CPU: AMD EPYC, 2 cores"},
        {"status": "complete", "wall_time_s": 7200.0, "device": "NVIDIA H200 (CUDA 13.0)"},
        {"status": "running", "wall_time_s": 9999.0, "device": "NVIDIA H200 (CUDA 13.0)"},
    )
    monkeypatch.setattr(F, "_records_cached", lambda: recs)
    c = F.compute()
    assert c["cpu_hours"] == pytest.approx(1.5) and c["cpu_runs"] == 2
    assert c["gpu_hours"] == pytest.approx(2.0) and c["gpu_runs"] == 1
    assert c["gpus"] == "NVIDIA H200 (CUDA 13.0)"


def test_identical_predictions_compares_predicted_classes():
    from leukcore.conclusions.landing import _identical

    assert _identical("dscnet_kaur2023", ("dscnet-kl-aug", "dscnet-mce-aug", "dscnet-sparse_ce-aug"))[0]
    assert not _identical("dscnet_vijayalakshmi", ("dscnet", "darknet53"))[0]


# ------------------------------------------------------------------------------ claims table


def test_claims_accessor_has_the_verdicts_columns_and_no_firm_verdict_from_one_run():
    df = F._claims()
    assert set(F.CLAIM_COLUMNS) <= set(df.columns)
    from leukcore.evaluation.claims import load_claims

    assert len(df) == len(load_claims())
    firm = df[df["verdict"].isin(F.FIRM) & ~df["metric"].isin(["params", "count"])]  # exact counts need no runs
    assert (firm["runs"] >= F.MIN_RUNS).all()


def test_every_ledger_names_an_existing_headline_claim():
    from leukcore.evaluation.claims import load_claims

    for p in list_papers():
        cid = F.headline_claim(p)
        assert cid in set(load_claims(p)["id"]), (p, cid)


def test_cards_carry_the_claims_table_values():
    text = F.cards()
    assert text.count(":::{grid-item-card}") == len(list_papers())
    for p in list_papers():
        row = F.claim_row(p, F.headline_claim(p))
        card = text.split(f":::{{grid-item-card}} {F.paper_name(p)}", 1)[1].split(":::", 1)[0]
        assert f'verdict-{row["verdict"].replace(" ", "-")}' in card
        assert F._printed(row["printed"], row["unit"]) in card
        if row["measured"] == row["measured"] and row["measured"] is not None:
            assert F.measurement_text(row) in card


def test_verdict_sentence_gives_every_reason_and_what_would_make_it_firmer():
    from leukcore.evaluation import verdicts as V

    base = {"paper": "dscnet_vijayalakshmi", "dataset": "taleqani-all", "paper_dataset": "taleqani-all", "runs": 1,
            "profile": "paper", "metric": "accuracy"}
    s = F.verdict_sentence({**base, "verdict": "indicative", "reasons": V.R_FEW_RUNS})
    assert s.startswith("Indicative: fewer than 3 runs.") and "--seeds 0,1,2" in s
    s = F.verdict_sentence({**base, "verdict": "not comparable",
                            "reasons": "; ".join([V.R_IMAGENET, V.R_DETECTOR, V.R_FEW_RUNS])})
    assert V.R_IMAGENET in s and V.R_DETECTOR in s and V.R_FEW_RUNS in s and "ImageNet weights the protocol" in s
    s = F.verdict_sentence({**base, "paper_dataset": "cnmc-2019", "dataset": "", "verdict": "not run",
                            "reasons": V.R_NO_DATA})
    assert "cnmc-2019" in s and "--data-root" in s
    s = F.verdict_sentence({**base, "verdict": "not comparable", "reasons": V.R_OUR_SPLIT, "metric": "count"})
    assert "No run here can make it comparable" in s


# ------------------------------------------------------------------------------ the pages


@pytest.mark.parametrize("paper", list_papers())
def test_what_we_found_renders_for_a_reader(paper):
    text = F.paper_findings(paper)
    words = len(re.sub(r"`[^`]*`", "x", text).split())
    assert 150 <= words <= 400, f"{paper}: {words} words"
    assert "None" not in text and "nan" not in text.split()
    assert F.claim(paper, F.headline_claim(paper)) in text


def test_landing_page_states_the_five_findings_with_their_numbers():
    text = F.render("landing.md.j2")
    findings = re.findall(r"^\d\. \*\*", text, flags=re.M)
    assert len(findings) == 5
    colour = _json("results/audits/audit/shortcut_colour.json")["results"]["hist"]["accuracy"]["point"]
    assert F.pct(colour) in text
    assert f"find {F.consistency(kind='impossible')} places" in text
    benign = F.audit("external_pbc", "models.original.benign_fraction.mean")
    assert f"{F.pct(benign)} on average" in text  # finding 3, a declared test over the external_pbc seeds
    assert text.count("{doc}`") >= 5  # each finding links to the section that shows it


def test_report_has_the_rescience_sections_and_the_compute_budget():
    text = F.render("report.md.j2")
    for section in ("Scope of reproducibility", "Methodology", "Results", "What was easy", "What was hard",
                    "Communication with the original authors", "Compute budget", "Limitations", "Conclusion"):
        assert f"## {section}" in text
    c = F.compute()
    assert f"{c['cpu_hours']:,.1f} CPU hours" in text and f"{c['gpu_hours']:,.2f} GPU hours" in text
    assert "None. We did not contact the authors" in text


def test_build_writes_every_findings_page(tmp_path):
    written = {p.name for p in F.build(tmp_path)}
    assert {"landing.md", "report.md"} | {f"findings_{p}.md" for p in list_papers()} == written


@pytest.mark.parametrize("paper", list_papers())
def test_paper_notebook_opens_with_what_we_found(paper):
    """Prose first: the title and the "What we found" cell come before parameters and imports."""
    cells = re.split(r"^# %%", (ROOT / "notebooks" / f"{paper}.py").read_text(), flags=re.M)[1:]
    assert cells[0].startswith(" [markdown]") and "## What we found" in cells[0]
    assert 'tags=["remove-input"]' in cells[1].splitlines()[0]
    assert f'show("{paper}")' in cells[1]
    params = next(i for i, c in enumerate(cells) if '"parameters"' in c.splitlines()[0])
    assert params > 1


# ------------------------------------------------------------------------------ no typed-in numbers


def test_scan_prose_finds_literal_measurements_and_allows_structural_numbers():
    assert F.scan_prose("Our model scored 97.6 % (0.975), 3 pp and 45% better, 2.4e-07 apart.") == \
        ["97.6 %", "0.975", "3 pp", "45%", "2.4e-07"]
    assert F.scan_prose("a gain of 9.0\u00a0pp") == ["9.0\u00a0pp"]  # a no-break space hides nothing
    clean = ('Table 5.1 of the thesis, the 95 % interval, torch 2.14.1, CC BY 4.0, doi:10.3390/x, '
             '`--lr 0.001`, {{ m("a", "b") | pct }}, {% if x > 0.5 %}y{% endif %}, 2023, 4 classes.')
    assert F.scan_prose(clean) == []


def test_no_prose_holds_a_literal_measurement():
    assert F.check_prose() == {}


def test_the_check_catches_a_planted_literal(tmp_path):
    for sub in ("book", "book/findings", "notebooks"):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "book" / "intro.md", tmp_path / "book" / "intro.md")
    shutil.copy(ROOT / "book" / "findings" / "landing.md.j2", tmp_path / "book" / "findings" / "landing.md.j2")
    shutil.copy(ROOT / "notebooks" / "dscnet_kaur2023.py", tmp_path / "notebooks" / "dscnet_kaur2023.py")
    assert F.check_prose(tmp_path) == {}
    with open(tmp_path / "book" / "intro.md", "a") as fh:
        fh.write("\nThe best model reaches 99.5 % on the test set.\n")
    tmpl = tmp_path / "book" / "findings" / "landing.md.j2"
    tmpl.write_text(tmpl.read_text().replace("## Five things this study found\n",
                                             "## Five things this study found\n\nColour classifies 97.6 %.\n", 1))
    nb = tmp_path / "notebooks" / "dscnet_kaur2023.py"
    nb.write_text(nb.read_text().replace("# ## What we found\n", "# ## What we found\n#\n# DSCNet gains 9.0 pp.\n", 1))
    assert F.check_prose(tmp_path) == {"book/intro.md": ["99.5 %"],
                                       "book/findings/landing.md.j2": ["97.6 %"],
                                       "notebooks/dscnet_kaur2023.py": ["9.0 pp"]}


# ------------------------------------------------------------------------------ "N runs" means the pool of N
def test_a_number_beside_n_runs_must_be_the_pool_of_those_runs():
    row = F.claim_row("dscnet_vijayalakshmi", "dscnet-accuracy")
    good = F.measurement_text(row).replace("`", "")
    assert F.pooled_runs_problems(f"our DSCNet scores {good}.") == []
    # seed 0's number beside the pool's run count (the mistake the check exists for)
    seed0 = F.m_seed("dscnet_vijayalakshmi", "dscnet", 0)
    n = int(row["runs"])
    bad = f"our DSCNet scores {F.pct(seed0)} [{F.pct(seed0 - 0.01)}, {F.pct(seed0 + 0.01)}] from {n} runs"
    assert n >= 2 and len(F.pooled_runs_problems(bad)) == 1
    # the pooled numbers with the wrong count fail too
    wrong = good.replace(f"{n} runs", f"{n + 1} runs")
    assert len(F.pooled_runs_problems(wrong)) == 1
