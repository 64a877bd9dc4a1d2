"""The ``aggregate`` route (ALNet's ``alnet-cv``): trains nothing; pools the test predictions of the
experiments it names (``of``) into one record, whose settings are its parts' settings hashes."""
from __future__ import annotations

import pandas as pd

from ...metrics import metrics_and_intervals
from ..records import code_block, git_commit, library_versions, read_predictions, settings_hash
from .registry import Route, register_route


@register_route
class AggregateRoute(Route):
    name = "aggregate"
    trains = False

    def parts(self, exp) -> list[str]:
        return list(exp.of)

    def pooled_record(self, run, parts: list[dict], *, code: dict, wall_time_s: float) -> tuple[dict, pd.DataFrame]:
        """The record of ``run`` (a resolved run of this route) from its parts' records, and its
        predictions: theirs concatenated, metrics and intervals recomputed on them."""
        preds = pd.concat([read_predictions(r) for r in parts], ignore_index=True)
        y = preds["y_true"].to_numpy()
        prob = preds[[c for c in preds.columns if c.startswith("p_")]].to_numpy()
        first = parts[0]
        block = metrics_and_intervals(y, prob, first["class_names"], first.get("positive"), run.profile.bootstrap,
                                      run.seed)
        settings = {"aggregate_of": {r["experiment"]: r["settings_hash"] for r in parts},
                    "profile": run.profile.settings()}
        ds = dict(first["dataset"])
        ds["fingerprint"] = self.pooled_fingerprint(r["dataset"]["fingerprint"] for r in parts)
        rec = {"status": "complete", "paper": run.paper, "experiment": run.experiment.id, "profile": run.profile.name,
               "seed": run.seed, "spec": run.experiment.spec(), "settings": settings,
               "settings_hash": settings_hash(settings), "dataset": ds, "class_names": first["class_names"],
               "positive": first.get("positive"), "split": {"pooled_from": self.parts(run.experiment)},
               "skipped": sum((r.get("skipped", []) for r in parts), []),
               "deviations": list(dict.fromkeys(d for r in parts for d in r.get("deviations", []))),
               "params_trainable": first.get("params_trainable"), "history": [], "commit": git_commit(state=code),
               "versions": library_versions(), "device": first.get("device"),
               "wall_time_s": round(sum(r["wall_time_s"] for r in parts) + wall_time_s, 2), **block}
        rec["code"], rec["_diff"] = code_block(code)
        return rec, preds

    def matches(self, rec: dict, parts: list[dict]) -> bool:
        """Whether an existing record pooled exactly these parts' records (its key)."""
        return rec["settings"].get("aggregate_of") == {p["experiment"]: p["settings_hash"] for p in parts}
