"""Train/validation/test splits: stratified, optionally grouped by subject or duplicate; k-fold; saved with hashes."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from ..files import atomic_write_text
from .errors import DataError


def _group_keys(table: pd.DataFrame, group_by: str | None) -> np.ndarray:
    if group_by is None:
        return table["id"].to_numpy()
    if group_by == "duplicates":
        return table["sha256"].to_numpy()
    if group_by == "subject":
        if table["subject"].isna().any():
            raise DataError(f"a subject-disjoint split needs a subject id for every image; "
                            f"{table.attrs.get('dataset', 'this dataset')} has none "
                            f"(taleqani-all publishes no patient ids)")
        return table["subject"].astype(str).to_numpy()
    raise ValueError(f"unknown group_by {group_by!r}; valid: None, 'duplicates', 'subject'")


def split_fractions(table: pd.DataFrame, fractions: dict[str, float] | None = None, *, seed: int = 0,
                    group_by: str | None = None) -> dict[str, list[str]]:
    """Stratified partition into named parts by fractions (default train/val/test 0.75/0.05/0.20).

    Groups (``group_by='duplicates'``: byte-identical images; ``'subject'``: one patient) are kept
    whole: a group is assigned by its majority label and never straddles two parts.  Within each
    label, groups are shuffled with ``seed`` and cut at the cumulative fractions (largest-remainder
    rounding), so each part's class proportions match the table's.  Returns ``{part: [ids]}``.
    """
    fractions = fractions or {"train": 0.75, "val": 0.05, "test": 0.20}
    if abs(sum(fractions.values()) - 1) > 1e-9:
        raise ValueError(f"fractions must sum to 1, got {fractions}")
    keys = _group_keys(table, group_by)
    df = pd.DataFrame({"id": table["id"].to_numpy(), "label": table["label"].to_numpy(), "g": keys})
    glabel = df.groupby("g")["label"].agg(lambda s: s.mode().iloc[0])
    rng = np.random.default_rng(seed)
    parts = {name: [] for name in fractions}
    names = list(fractions)
    for lab in sorted(glabel.unique()):
        groups = np.array(sorted(glabel.index[glabel == lab]), dtype=object)
        groups = groups[rng.permutation(len(groups))]
        n = len(groups)
        raw = np.array([fractions[k] * n for k in names])
        counts = np.floor(raw).astype(int)
        for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
            counts[i] += 1
        start = 0
        for name, c in zip(names, counts):
            parts[name] += list(groups[start:start + c])
            start += c
    g2part = {g: name for name, gs in parts.items() for g in gs}
    out = {name: [] for name in names}
    for i, g in zip(df["id"], df["g"]):
        out[g2part[g]].append(i)
    return out


def split_kfold(table: pd.DataFrame, k: int = 5, *, seed: int = 0, group_by: str | None = None) -> list[dict[str, list[str]]]:
    """Stratified k-fold (sklearn ``StratifiedKFold`` / ``StratifiedGroupKFold`` with shuffling and ``seed``).

    Returns one ``{"train": ids, "test": ids}`` per fold; with ``group_by`` a group never straddles.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = table["label"].to_numpy()
    ids = table["id"].to_numpy()
    if group_by is None:
        it = StratifiedKFold(k, shuffle=True, random_state=seed).split(ids, y)
    else:
        it = StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(ids, y, _group_keys(table, group_by))
    return [{"train": list(ids[tr]), "test": list(ids[te])} for tr, te in it]


def split_published_folds(table: pd.DataFrame) -> list[dict[str, list[str]]]:
    """C-NMC 2019's published training folds: fold ``f`` as test, the other folds as train."""
    if "fold" not in table or table["fold"].isna().all():
        raise DataError("published folds need the 'fold' column of cnmc-2019's training data")
    folds = sorted(int(f) for f in table["fold"].dropna().unique())
    return [{"train": list(table.loc[table["fold"] != f, "id"]), "test": list(table.loc[table["fold"] == f, "id"])}
            for f in folds]


def subset(table: pd.DataFrame, ids: Iterable[str]) -> pd.DataFrame:
    """Rows of ``table`` with these ids, in the given order."""
    ids = list(ids)
    out = table.set_index("id", drop=False).loc[ids].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out


def save_split(split: dict[str, list[str]], path: str | os.PathLike, table: pd.DataFrame | None = None) -> Path:
    """Write a split as JSON (``{part: [id ...]}``, plus each id's sha256 when ``table`` is given)."""
    doc: dict = {"parts": split}
    if table is not None:
        sha = dict(zip(table["id"], table["sha256"]))
        doc["sha256"] = {i: sha[i] for ids in split.values() for i in ids}
    path = Path(path)
    atomic_write_text(path, json.dumps(doc, indent=1, sort_keys=True))
    return path


def load_split(path: str | os.PathLike, table: pd.DataFrame | None = None) -> dict[str, list[str]]:
    """Read a split saved by :func:`save_split`; with ``table``, check every id exists with the same bytes."""
    doc = json.loads(Path(path).read_text())
    split = {k: list(v) for k, v in doc["parts"].items()}
    if table is not None:
        sha = dict(zip(table["id"], table["sha256"]))
        missing = [i for ids in split.values() for i in ids if i not in sha]
        changed = [i for i, h in doc.get("sha256", {}).items() if i in sha and sha[i] != h]
        if missing or changed:
            raise DataError(f"split {path} does not match the data: {len(missing)} ids missing "
                            f"(e.g. {missing[:3]}), {len(changed)} files changed (e.g. {changed[:3]})")
    return split
