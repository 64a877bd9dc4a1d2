"""leukcore.audits.stats: intervals over seeds, paired differences, McNemar and AUROC, checked by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from leukcore.audits import stats as S

T975_2 = 4.302652729911275  # Student t, 0.975 quantile, 2 degrees of freedom


def test_t_interval_by_hand():
    d = S.t_interval([0.90, 0.92, 0.94])
    assert math.isclose(d["mean"], 0.92) and math.isclose(d["sd"], 0.02)
    half = T975_2 * 0.02 / math.sqrt(3)
    assert math.isclose(d["low"], 0.92 - half) and math.isclose(d["high"], 0.92 + half)
    assert d["n"] == 3 and d["method"] == "t over seeds"
    one = S.t_interval([0.9])
    assert one["mean"] == 0.9 and one["low"] is None and one["high"] is None  # one run: no interval
    assert S.t_interval([0.9, None, float("nan"), 0.9])["n"] == 2


def test_paired_differences_by_hand():
    a = {0: 0.90, 1: 0.95, 2: 1.00}
    b = {0: 0.85, 1: 0.95, 2: 0.90, 3: 0.5}  # seed 3 has no partner: left out
    d = S.paired_differences(a, b)
    assert d["seeds"] == [0, 1, 2]
    assert d["per_seed"] == pytest.approx({0: 0.05, 1: 0.0, 2: 0.10})
    half = T975_2 * 0.05 / math.sqrt(3)  # differences 0.05, 0, 0.10: mean 0.05, sd 0.05
    assert math.isclose(d["mean"], 0.05) and math.isclose(d["low"], 0.05 - half) and math.isclose(d["high"], 0.05 + half)
    # pairing matters: the same values unpaired would give a wider interval
    assert S.paired_differences({0: 0.9, 1: None}, {0: 0.8, 1: 0.7})["seeds"] == [0]


def test_mcnemar_from_correctness_by_hand():
    a = [1, 1, 1, 1, 1, 1, 1, 0]
    b = [0, 0, 0, 0, 0, 0, 1, 0]  # A right and B wrong on 6 images, the reverse on none
    r = S.mcnemar_correct(a, b)
    assert (r["b"], r["c"]) == (6, 0)
    assert r["method"] == "exact" and math.isclose(r["p_value"], 2 * 0.5 ** 6)
    r2 = S.mcnemar_correct([1, 0, 1], [0, 1, 1])
    assert (r2["b"], r2["c"]) == (1, 1) and r2["p_value"] == 1.0
    with pytest.raises(ValueError, match="differ in length"):
        S.mcnemar_correct([1, 0], [1])


def test_auroc_by_hand():
    # 0.9 and 0.8 beat both negatives, 0.7 beats 0.6 only: 5 of 6 pairs
    assert math.isclose(S.auroc([0.9, 0.8, 0.7], [0.6, 0.75]), 5 / 6)
    assert S.auroc([0.5], [0.5]) == 0.5  # a tie counts one half
    assert S.auroc([0.1, 0.2], [0.3, 0.4]) == 0.0  # the negatives are the more confident
    assert math.isnan(S.auroc([], [0.3]))


def test_bits_round_trip():
    ok = np.array([True, False, True, True])
    assert S.to_bits(ok) == "1011"
    assert S.from_bits("1011").tolist() == [1, 0, 1, 1] and S.from_bits("").size == 0
