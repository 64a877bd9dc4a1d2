"""What one experiment trains and tests on: its dataset (the paper's, a real substitute, or a
synthetic stand-in, capped by the profile), the protocol's split of it, and its decoded images."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import data as D
from .profiles import Profile
from .protocols import Experiment, protocol_folds, read_protocol, task_spec

_SYNTH_LAYOUT_OF = {"taleqani-all": "taleqani", "cnmc-2019": "cnmc", "leukemia-0.2": "leukemia-0.2",
                    "multicancer-all": "multicancer", "pbc-lymphocytes": "pbc"}


@dataclass
class ExperimentData:
    """The table an experiment used and what it is: the paper's data, a real substitute, or synthetic."""

    table: pd.DataFrame
    dataset_id: str
    is_papers: bool
    stands_in_for: str | None
    note: str

    def describe(self) -> dict:
        """The record's ``dataset`` block (id, whether it is the paper's, fingerprint, counts)."""
        return {"id": self.dataset_id, "is_papers": self.is_papers, "stands_in_for": self.stands_in_for,
                "note": self.note, "fingerprint": D.fingerprint(self.table), "n_images": int(len(self.table)),
                "root_source": self.table.attrs.get("root_source"),
                "counts": {str(k): int(v) for k, v in self.table["class_name"].value_counts().sort_index().items()}}


def experiment_data(paper: str, exp: Experiment, profile: Profile, data_root: str | None = None, *,
                    seed: int = 0, verbose: bool = False) -> ExperimentData:
    """Load the experiment's dataset; fall back to the protocol's real substitute, then to synthetic.

    The table is then capped at ``profile.max_per_class`` images per class (seeded, stratified).
    """
    proto = read_protocol(paper)
    task = task_spec(proto, exp)
    ds = task["dataset"]
    try:
        table = D.load_dataset(ds["id"], data_root, verbose=verbose, **ds.get("options", {}))
        out = ExperimentData(table, ds["id"], True, None, "the paper's dataset")
    except D.DataError as missing:
        sub = task.get("substitute")
        out = None
        if sub:
            try:
                table = D.load_dataset(sub["id"], data_root, verbose=verbose, **sub.get("options", {}))
                out = ExperimentData(table, sub["id"], False, ds["id"],
                                     f"real substitute for {ds['id']}: {' '.join(str(sub.get('why', '')).split())}")
            except D.DataError:
                out = None
        if out is None:
            layout = task.get("synthetic_layout") or _SYNTH_LAYOUT_OF[ds["id"]]
            size = max(profile.image_size or 64, 32)
            table = D.load_synthetic(layout=layout, n_per_class=profile.synthetic_per_class, size=min(size, 96),
                                     seed=seed, **ds.get("options", {}))
            out = ExperimentData(table, "synthetic", False, ds["id"],
                                 f"SYNTHETIC stand-in for {ds['id']} (absent: {str(missing).split(';')[0]})")
    t = out.table
    t = t[t["label"] >= 0].reset_index(drop=True) if (t["label"] < 0).any() else t
    if profile.max_per_class:
        rng = np.random.default_rng(seed)
        keep = []
        for _, g in t.groupby("label", sort=True):
            idx = g.index.to_numpy()
            keep += sorted(rng.permutation(idx)[: profile.max_per_class].tolist())
        attrs = dict(t.attrs)
        t = t.loc[sorted(keep)].reset_index(drop=True)
        t.attrs = attrs
    out.table = t
    return out


def experiment_split(paper: str, exp: Experiment, table: pd.DataFrame, profile: Profile, *, seed: int = 0) -> list[dict]:
    """The protocol's split of ``table`` for this experiment: a list of ``{train, val?, test}`` parts.

    One element for a fixed split or a fold experiment; several for a cross-validated
    experiment (capped at ``profile.max_folds``; their test predictions are pooled).  A
    ``fractions`` split with a ``cv`` block (``{k, routes}``) holds its test part out and runs
    stratified k-fold over the rest for the experiments of those routes: fold ``f`` trains on
    the other folds, validates on fold ``f`` and is tested on the held-out part.
    """
    split = read_protocol(paper)["split"]
    kind = split["kind"]
    if kind == "fractions":
        part = D.split_fractions(table, split["fractions"], seed=seed, group_by=split.get("group_by"))
        if protocol_folds(split, exp) is None:
            return [part]
        # Haque et al.: the test part is held out; stratified k-fold over the rest (train + val),
        # each fold validating on one k-th and training on the others, every fold tested on the test part
        dev = [i for name in part if name != "test" for i in part[name]]
        dev_table = table[table["id"].isin(set(dev))].reset_index(drop=True)
        folds = D.split_kfold(dev_table, int(split["cv"]["k"]), seed=seed, group_by=split.get("group_by"))
        folds = folds[: profile.max_folds] if profile.max_folds else folds
        return [{"train": f["train"], "val": f["test"], "test": list(part["test"])} for f in folds]
    if kind == "kfold":
        folds = D.split_kfold(table, split["k"], seed=seed, group_by=split.get("group_by"))
        return folds[: profile.max_folds] if profile.max_folds else folds
    if kind == "published_folds":
        fold = exp.fold or 0
        if "fold" in table and table["fold"].notna().any():
            part = table[table["fold"] == fold] if fold in set(table["fold"]) else table
        else:
            part = table
        return [D.split_fractions(part.reset_index(drop=True), split["within_fold"], seed=seed + fold)]
    raise ValueError(f"{paper}: unknown split kind {kind!r}")


def experiment_images(table: pd.DataFrame, settings: dict, on_bad: str) -> tuple[np.ndarray, pd.DataFrame]:
    """The table's images decoded at the settings' size (uint8, NHWC), pre-processed as the
    protocol says (``logmh``), and the rows kept (``on_bad="skip"`` leaves unreadable files out)."""
    x, kept = D.load_images(table, settings["image_size"], on_bad=on_bad)
    preprocess = settings.get("preprocess")
    if preprocess == "logmh":
        from ..filters import logmh

        x = np.stack([(logmh(im, **settings["logmh"]) * 255.0 + 0.5).astype(np.uint8) for im in x])
    elif preprocess:
        raise ValueError(f"unknown preprocess {preprocess!r}; valid: logmh")
    return x, kept


def row_positions(table: pd.DataFrame, ids: list[str]) -> np.ndarray:
    """Row positions in ``table`` of the ``ids`` it holds (in the order of ``ids``)."""
    pos = pd.Series(np.arange(len(table)), index=table["id"])
    return pos.loc[[i for i in ids if i in pos.index]].to_numpy()
