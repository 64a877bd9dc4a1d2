"""The comparative sentences of each paper's "What we found", each a declared test over its runs."""
from __future__ import annotations

from .registry import Evidence, declare
from .rule import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED
from .sources import paired, run_values

VIJ = "dscnet_vijayalakshmi"


@declare("vijayalakshmi-darknet-above-dscnet", page=VIJ, kind="greater",
         claim="A Darknet-53 trained from scratch scores higher than our DSCNet on Vijayalakshmi and Deepa's split",
         test="test accuracy, Darknet-53 minus DSCNet, paired by seed, at the paper profile",
         sentences={
             SUPPORTED: "A Darknet-53 trained from scratch on the same split scores higher than our DSCNet in every "
                        "seed, by {{ e.mean | pp }} {{ (e.low, e.high) | ppinterval }} over "
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
