"""The status rule of our own conclusions, on hand-computed cases."""
from __future__ import annotations

import math

import pytest

from leukcore.conclusions.rule import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, judge, t_interval


def test_t_interval_by_hand():
    # values 0.1, 0.2, 0.3: mean 0.2, sd 0.1, t_{0.975, 2} = 4.302653, half = 4.302653 * 0.1 / sqrt(3) = 0.248414
    mean, low, high, clipped = t_interval([0.1, 0.2, 0.3])
    assert mean == pytest.approx(0.2)
    assert low == pytest.approx(0.2 - 0.248414, abs=1e-6)
    assert high == pytest.approx(0.2 + 0.248414, abs=1e-6)
    assert not clipped


def test_t_interval_is_clipped_to_the_quantitys_range():
    # a Benign share of 1.0, 1.0, 0.62 over 3 seeds: the raw interval reaches 1.347 > 1
    mean, low, high, clipped = t_interval([1.0, 1.0, 0.62], bounds=(0.0, 1.0))
    assert mean == pytest.approx(0.873333, abs=1e-6)
    assert high == 1.0 and clipped and 0.0 <= low < mean


def test_same_sign_in_every_run_and_interval_clear_of_zero_is_supported():
    j = judge({0: 0.02, 1: 0.03, 2: 0.025}, "greater")
    # mean 0.025, sd 0.005, half = 4.302653 * 0.005 / sqrt(3) = 0.012421 -> low 0.012579 > 0
    assert j.status == SUPPORTED
    assert j.low == pytest.approx(0.012579, abs=1e-6)
    assert j.runs == (3, 3)


def test_one_seed_flipping_makes_it_inconclusive():
    j = judge({0: 0.05, 1: 0.04, 2: -0.01}, "greater")
    assert j.status == INCONCLUSIVE
    assert "1 of 3 runs" in j.why


def test_same_sign_but_interval_across_zero_is_inconclusive():
    # mean 0.2, sd 0.3464 -> half 0.860 -> the interval includes 0 although every run is positive
    j = judge({0: 0.01, 1: 0.01, 2: 0.61}, "greater")
    assert j.status == INCONCLUSIVE and j.low < 0 < j.high


def test_two_runs_are_never_enough():
    j = judge({0: 0.30, 1: 0.31}, "greater")
    assert j.status == INCONCLUSIVE and "needs 3" in j.why


def test_unpaired_sides_count_the_smaller_one():
    # three DSCNet seeds against one Darknet-53 seed: 1 run on the smaller side
    j = judge({0: 0.02, 1: 0.03, 2: 0.04}, "greater", runs=(1, 3))
    assert j.status == INCONCLUSIVE and j.runs == (1, 3)


def test_the_other_way_round_is_not_supported():
    j = judge({0: -0.02, 1: -0.03, 2: -0.025}, "greater")
    assert j.status == NOT_SUPPORTED
    assert judge({0: -0.02, 1: -0.03, 2: -0.025}, "less").status == SUPPORTED


def test_within_a_margin():
    assert judge({0: 0.001, 1: -0.002, 2: 0.0}, "within", margin=0.01).status == SUPPORTED
    assert judge({0: 0.05, 1: 0.06, 2: 0.055}, "within", margin=0.01).status == NOT_SUPPORTED
    assert judge({0: 0.001, 1: 0.02, 2: 0.0}, "within", margin=0.01).status == INCONCLUSIVE


def test_exact_checks_need_no_runs():
    assert judge({}, "exact", holds=True).status == SUPPORTED
    assert judge({}, "exact", holds=False).status == NOT_SUPPORTED
    with pytest.raises(ValueError):
        judge({}, "exact")


def test_missing_values_are_not_runs():
    j = judge({0: 0.02, 1: math.nan, 2: 0.03, 3: None}, "greater")
    assert j.runs == (2, 2) and j.status == INCONCLUSIVE


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="valid"):
        judge({0: 1.0}, "bigger")
