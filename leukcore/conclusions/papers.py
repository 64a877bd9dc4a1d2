"""The comparative sentences of each paper's "What we found", each a declared test over its runs."""
from __future__ import annotations

from .registry import Evidence, declare
from .rule import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED
from .sources import paired, rel, run_values

VIJ = "dscnet_vijayalakshmi"


@declare("vijayalakshmi-darknet-above-dscnet", page=VIJ, kind="greater",
         claim="A Darknet-53 trained from scratch scores higher than our DSCNet on Vijayalakshmi and Deepa's split",
         test="test accuracy, Darknet-53 minus DSCNet, paired by seed, at the paper profile",
         sentences={
             SUPPORTED: "A Darknet-53 trained from scratch on the same split scores higher than our DSCNet in every "
                        "seed, by {{ e | effect }} over "
                        "{{ e.runs[0] | plural('seed') }}.",
             INCONCLUSIVE: "Whether a Darknet-53 trained from scratch beats our DSCNet on the same split is not "
                           "settled: {{ sides['Darknet-53'] | length | plural('Darknet-53 seed') }} against "
                           "{{ sides['DSCNet'] | length | plural('DSCNet seed') }}, and the rule needs 3 of each.",
             NOT_SUPPORTED: "A Darknet-53 trained from scratch does not beat our DSCNet on the same split: lower by "
                            "{{ (-e.mean) | pp }} over {{ e.runs[0] | plural('seed') }}."})
def _darknet_above_dscnet() -> Evidence:
    dk, p1 = run_values(VIJ, "darknet53")
    ds, p2 = run_values(VIJ, "dscnet")
    eff = paired(dk, ds)
    return Evidence(per_run=eff, sides={"Darknet-53": dk, "DSCNet": ds}, runs=(len(dk), len(ds)), records=p1 + p2)


KAUR = "dscnet_kaur2023"


def _leak(effect: str) -> Evidence:
    from .sources import audit_summary

    summ, path = audit_summary("leakage_augment")
    eff = summ["results"]["effects"][effect]
    seeds = summ["results"].get("seeds") or list(range(len(eff["values"])))
    per_run = dict(zip((int(s) for s in seeds), eff["values"]))
    return Evidence(per_run=per_run, records=[path] + [str(p) for p in summ.get("arm_records", [])])


@declare("kaur-leak-inflates", page=KAUR, kind="greater",
         claim="The leak inflates the number the paper would print: a model trained on augment-then-split scores "
               "higher on its own (leaky) test set than on originals it never saw",
         test="leakage_augment audit: the augment-then-split model's accuracy on its own test set minus on unseen "
              "originals, per seed",
         sentences={
             SUPPORTED: "That number is inflated: the same model scores {{ e | effect }} less on originals it never saw, in every seed.",
             INCONCLUSIVE: "Whether that number is inflated is not settled: the same model's accuracy on its own "
                           "test set minus on originals it never saw is {{ e | effect }}, an interval that includes no difference.",
             NOT_SUPPORTED: "That number is not inflated: the same model scores as well or better on originals it "
                            "never saw ({{ e.mean | pp }} over {{ e.runs[0] | plural('seed') }})."})
def _kaur_leak_inflates() -> Evidence:
    return _leak("own_minus_unseen")


XIN = "xincept_khan2024"


@declare("xincept-random-features-above-majority", page=XIN, kind="greater",
         claim="XIncept's pipeline with randomly initialised frozen backbones scores above the majority class",
         test="test accuracy per run (fold, seed) minus the majority class's share of the test set",
         sentences={
             SUPPORTED: "Random frozen features still score above the majority class in every run, by "
                        "{{ e | effect }}: the images carry signal that even random features pick up.",
             INCONCLUSIVE: "Whether random frozen features score above the majority class is not settled: "
                           "{{ e.runs[0] | plural('run') }} (the rule needs 3), {{ e | effect }} above it.",
             NOT_SUPPORTED: "Random frozen features score no better than the majority class "
                            "({{ e | effect }} over {{ e.runs[0] | plural('run') }})."})
def _xincept_above_majority() -> Evidence:
    import numpy as np

    from ..evaluation.verdicts import pooled_records, record_runs
    from ..runs.records import load_records

    recs = pooled_records(load_records(XIN), XIN, "xincept-xgboost")
    eff, paths, k = {}, [], 0
    for r in recs:
        for _, y, p in record_runs(r):
            majority = np.bincount(y).max() / len(y)
            eff[k] = float((p.argmax(axis=1) == y).mean() - majority)
            k += 1
        paths.append(rel(r["_path"]))
    return Evidence(per_run=eff, records=paths)
