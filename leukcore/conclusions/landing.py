"""The landing page's findings, each a declared test over the records.

Findings 1 (colour) and 3 (external validity) are declared with the audits they rest on
(:mod:`leukcore.conclusions.audits`); the landing page calls every one by id.
"""
from __future__ import annotations

from .registry import Evidence, declare
from .rule import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED
from .sources import against, audit_summary, printed_claim, rel, run_values

KAUR = "dscnet_kaur2023"
VIJ = "dscnet_vijayalakshmi"


@declare("landing-consistency", page="landing", kind="exact",
         claim="The papers print numbers that cannot all be true",
         test="the consistency checks over the claims ledger: at least one finding of kind 'impossible'",
         sentences={
             SUPPORTED: "**The papers print numbers that cannot all be true.** The consistency checks find "
                        "{{ v.impossible }} places, in {{ v.impossible_papers }} of the {{ v.papers }} papers, where "
                        "no reading makes the printed numbers all true (the most frequent: {{ v.examples }}). "
                        "Besides these, {{ v.disagrees }} places print two values for one quantity, "
                        "{{ v.mislabelled }} numbers are printed under a wrong name and {{ v.typos }} are evident "
                        "typos.",
             NOT_SUPPORTED: "**The papers' numbers are consistent with each other.** The consistency checks find no "
                            "place where the printed numbers cannot all be true; {{ v.disagrees }} places print two "
                            "values for one quantity."})
def _consistency() -> Evidence:
    from ..evaluation.claims import list_papers
    from ..evaluation.consistency import check_claims, consistency_counts, consistency_examples

    f = check_claims()
    n = consistency_counts(kind="impossible")
    ex = consistency_examples("impossible", 3)
    return Evidence(holds=n > 0, records=[f"leukcore/ledger/{p}.yaml" for p in list_papers()],
                    values={"impossible": n, "impossible_papers": int(f[f["kind"] == "impossible"]["paper"].nunique()),
                            "papers": len(list_papers()), "examples": "; ".join(ex),
                            "disagrees": consistency_counts(kind="disagrees"),
                            "mislabelled": consistency_counts(kind="mislabelled"),
                            "typos": consistency_counts(kind="typo")})


def _identical(paper: str, experiments: tuple[str, ...]) -> tuple[bool, list[str]]:
    """Whether the pooled runs of these experiments predict the same class for every test image, run by
    run (:func:`leukcore.evaluation.verdicts.prediction_signature`), and the records compared."""
    from ..evaluation.verdicts import pooled_records, prediction_signature
    from ..runs.records import load_records

    records = load_records(paper)
    sigs = [prediction_signature(records, paper, e) for e in experiments]
    paths = [rel(r["_path"]) for e in experiments for r in pooled_records(records, paper, e)]
    return bool(sigs[0]) and all(s == sigs[0] for s in sigs[1:]), paths


@declare("landing-losses", page="landing", kind="exact",
         claim="Kaur et al.'s three losses are one objective",
         test="with one-hot targets KL(y‖p) = CE(y, p) - H(y) = CE(y, p): the stepwise loss_equivalence audit "
              "(loss curves and final weights from one seed, within its tolerance) and our three DSCNet runs at "
              "the paper profile (the same class for every test image)",
         sentences={
             SUPPORTED: "**Three \"different\" losses are one objective.** With one-hot targets the KL divergence "
                        "equals the cross-entropy, and sparse and one-hot cross-entropy are one function. Trained "
                        "from one seed, Kaur et al.'s MCE, sparse CE and KL losses give loss curves that differ by at "
                        "most {{ v.loss_diff | sci }} per step and {% if v.weight_diff == 0 %}identical final "
                        "weights{% else %}final weights within {{ v.weight_diff | sci }}{% endif %}, and our three "
                        "DSCNet runs at the paper's settings predict the same class for every test image. The "
                        "paper's table of three losses compares one loss with itself.",
             NOT_SUPPORTED: "**The three losses did not train identically here.** With one-hot targets they are one "
                            "objective, yet our runs differ (loss curves up to {{ v.loss_diff | sci }} apart per "
                            "step, or other predictions); the difference is numerical, not a property of the "
                            "losses."})
def _losses() -> Evidence:
    summ, path = audit_summary("loss_equivalence")
    res = summ["results"]
    same, paths = _identical(KAUR, ("dscnet-kl-aug", "dscnet-mce-aug", "dscnet-sparse_ce-aug"))
    coincide = bool(res.get("coincide")) and float(res["max_abs_weight_diff"]) <= float(res["tolerance"])
    return Evidence(holds=coincide and same, records=[path] + paths,
                    values={"loss_diff": res["max_abs_loss_diff"], "weight_diff": res["max_abs_weight_diff"]})


@declare("landing-dscnet-short-of-claim", page="landing", kind="less",
         claim="Rebuilt from its text and trained at the paper's settings on the paper's data, DSCNet scores below "
               "the accuracy Vijayalakshmi and Deepa print in Table 2",
         test="test accuracy per seed minus the accuracy claimed in Table 2, at the paper profile",
         sentences={
             SUPPORTED: "**Rebuilt from its text, DSCNet falls short of its printed accuracy.** At Vijayalakshmi and "
                        "Deepa's own settings on their own data, our DSCNet scores below the "
                        "{{ v.claim }} of their Table 2 in every one of {{ e.runs[0] | plural('seed') }}, by "
                        "{{ e | effect(sign=-1) }} over seeds.",
             INCONCLUSIVE: "**Whether a rebuilt DSCNet reaches its printed accuracy is not settled yet.** At "
                           "Vijayalakshmi and Deepa's own settings on their own data, "
                           "{% if e.runs[0] < 3 %}our DSCNet has {{ e.runs[0] | plural('seed') }} so far, and the "
                           "rule needs 3{% else %}our DSCNet's {{ e.runs[0] | plural('seed') }} do not all fall "
                           "below the {{ v.claim }} of their Table 2 with an interval clear of it{% endif %}.",
             NOT_SUPPORTED: "**Rebuilt from its text, DSCNet reaches its printed accuracy.** At Vijayalakshmi and "
                            "Deepa's own settings our DSCNet scores above the {{ v.claim }} of their Table 2 over "
                            "{{ e.runs[0] | plural('seed') }}."},
         bounds=(-1.0, 1.0))
def _dscnet_short() -> Evidence:
    from ..evaluation.claims import load_claims

    claims = load_claims(VIJ).set_index("id")
    acc, paths = run_values(VIJ, "dscnet")
    return Evidence(per_run=against(acc, float(claims.loc["dscnet-accuracy", "value01"])), sides={"DSCNet": acc},
                    records=paths, values={"claim": printed_claim(VIJ, "dscnet-accuracy")})

