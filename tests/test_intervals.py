"""Bootstrap intervals, paired differences and the tie mark, on cases whose answer is known by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from boom import intervals


def test_constant_absolute_errors_give_a_point_interval() -> None:
    # every resample of |err| = 2 has RMSE 2 and MAE 2, whatever molecules it draws (signs do not matter)
    err = np.array([2.0, -2.0, 2.0, -2.0, 2.0])
    assert intervals.point(err, "rmse") == pytest.approx(2.0)
    assert intervals.interval(err, "rmse") == pytest.approx((2.0, 2.0))
    assert intervals.interval(err, "mae") == pytest.approx((2.0, 2.0))


def test_two_molecules_errors_0_and_2() -> None:
    # a resample holds the error 2 k times, k ~ Binomial(2, 1/2): RMSE 0, sqrt(2), 2 with p = 1/4, 1/2, 1/4;
    # MAE 0, 1, 2.  The 2.5% and 97.5% quantiles of 1000 draws are then 0 and 2 (P(no zero draw) = 0.75^1000).
    err = np.array([0.0, 2.0])
    reps = intervals.replicates(err, "rmse")
    assert reps.shape == (intervals.N_BOOT,)
    values, counts = np.unique(np.round(reps, 12), return_counts=True)
    assert values.tolist() == pytest.approx([0.0, math.sqrt(2), 2.0])
    assert counts[1] / reps.size == pytest.approx(0.5, abs=0.06)
    assert intervals.interval(err, "rmse") == pytest.approx((0.0, 2.0))
    assert sorted(set(np.round(intervals.replicates(err, "mae"), 12))) == [0.0, 1.0, 2.0]
    assert intervals.point(err, "rmse") == pytest.approx(math.sqrt(2))  # sqrt((0 + 4) / 2)
    assert intervals.point(err, "mae") == pytest.approx(1.0)


def test_seeds_are_averaged_per_replicate() -> None:
    # seed 0 errs by 1 everywhere, seed 1 by 3: every replicate is (1 + 3) / 2 = 2, not the pooled sqrt((1+9)/2)
    err = np.array([[1.0, -1.0, 1.0], [3.0, 3.0, -3.0]])
    assert intervals.point(err, "rmse") == pytest.approx(2.0)
    assert intervals.interval(err, "rmse") == pytest.approx((2.0, 2.0))


def test_seeded_and_chunking_does_not_change_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    err = np.random.default_rng(5).normal(size=200)
    a = intervals.replicates(err, "rmse", n_boot=300, seed=1)
    assert np.array_equal(a, intervals.replicates(err, "rmse", n_boot=300, seed=1))
    assert not np.array_equal(a, intervals.replicates(err, "rmse", n_boot=300, seed=2))
    monkeypatch.setattr(intervals, "_CHUNK_CELLS", 7 * 200)  # 7 replicates per chunk instead of all at once
    assert np.array_equal(a, intervals.replicates(err, "rmse", n_boot=300, seed=1))
    lo, hi = intervals.interval(err, "rmse", n_boot=300, seed=1)
    assert lo < intervals.point(err) < hi


def test_percentile_interval_is_the_quantiles_of_the_replicates() -> None:
    err = np.random.default_rng(0).normal(size=50)
    reps = intervals.replicates(err, "mae", n_boot=400, seed=3)
    lo, hi = intervals.interval(err, "mae", n_boot=400, seed=3, level=0.9)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(reps, [0.05, 0.95])))


def test_paired_difference_cancels_what_both_share() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=100)
    # b has the same |error| on every molecule: the paired difference is 0 in every replicate
    assert intervals.paired_difference(a, -a) == pytest.approx((0.0, 0.0, 0.0))
    lo, hi = intervals.interval(a)
    assert hi - lo > 0.1  # while each RMSE alone is uncertain
    # b = 2a: RMSE(b) - RMSE(a) = RMSE(a) on every resample, so the difference's interval is a's own interval
    d, dlo, dhi = intervals.paired_difference(2 * a, a)
    assert d == pytest.approx(intervals.point(a))
    assert (dlo, dhi) == pytest.approx((lo, hi))


def test_paired_difference_needs_the_same_molecules() -> None:
    with pytest.raises(ValueError, match="same molecules: 3 vs 2 columns"):
        intervals.paired_difference(np.zeros(3), np.zeros(2))


def test_align_matches_by_mol_id_and_refuses_a_missing_molecule() -> None:
    assert intervals.align(["b", "a"], {"a": 1.0, "b": 2.0}).tolist() == [2.0, 1.0]
    with pytest.raises(ValueError, match=r"1 molecule\(s\) missing, e.g. \['c'\]"):
        intervals.align(["a", "c"], {"a": 1.0})


def test_tied_with_best() -> None:
    rng = np.random.default_rng(2)
    e = rng.normal(size=120)
    rows = {"a": e, "b": -e, "c": 3 * e + 2.0, "d": np.stack([e, 1.01 * e])}
    out = intervals.tied_with_best(rows)
    assert out["a"] == (True, 0.0, 0.0, True)  # the best (a and b tie exactly; the name decides)
    assert out["b"][0] and out["b"][1:3] == pytest.approx((0.0, 0.0)) and not out["b"][3]
    tied_c, lo_c, hi_c, _ = out["c"]
    assert not tied_c and lo_c > 0  # clearly worse: the whole interval lies above 0
    # d: seeds e and 1.01 e, mean RMSE 1.005 RMSE(e) on every resample -> difference 0.005 RMSE(e) > 0, never tied
    lo_e, hi_e = intervals.interval(e)
    assert out["d"][0] is False and out["d"][1:3] == pytest.approx((0.005 * lo_e, 0.005 * hi_e))
    assert intervals.tied_with_best({}) == {}


def test_bad_inputs_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        intervals.interval(np.array([]))
    with pytest.raises(ValueError, match="level must lie strictly between 0 and 1"):
        intervals.interval(np.ones(3), level=95)
    with pytest.raises(ValueError, match="unknown statistic 'r2'"):
        intervals.replicates(np.ones(3), "r2")


def test_reference_intervals_at_the_defaults() -> None:
    """The defaults (1000 replicates, seed 0, 95%) give these intervals on any machine: pinned, so a changed
    default or stream shows up as a changed number, never silently (docs/leaderboard.md)."""
    assert (intervals.N_BOOT, intervals.SEED, intervals.LEVEL) == (1000, 0, 0.95)
    e = np.array([[0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 0.0, -2.5]])
    assert intervals.interval(e) == pytest.approx((0.7393774425097513, 1.8223863383227923), rel=1e-12)
    assert intervals.interval(e) == intervals.interval(e, "rmse"), "RMSE is the default statistic"
    assert np.array_equal(intervals.replicates(e), intervals.replicates(e, "rmse"))
    assert intervals.interval(e, "mae") == pytest.approx((0.53125, 1.625), rel=1e-12)
    assert intervals.paired_difference(e, e * 0.5) == pytest.approx(
        (0.6702378309227255, 0.3696887212548757, 0.9111931691613961), rel=1e-12)


def test_messages_word_for_word() -> None:
    for bad in (np.zeros((0, 3)), np.zeros((2, 0)), np.zeros((1, 2, 2))):
        with pytest.raises(ValueError) as err:
            intervals.interval(bad)
        assert str(err.value) == f"errors must be a non-empty (seeds, molecules) array, got shape {bad.shape}"
    for level in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError) as err:
            intervals.interval([1.0, 2.0], level=level)
        assert str(err.value) == f"level must lie strictly between 0 and 1, got {level}"
    with pytest.raises(ValueError) as err:
        intervals.replicates([1.0], "median")
    assert str(err.value) == "unknown statistic 'median'; use one of ['mae', 'rmse']"
    with pytest.raises(ValueError) as err:
        intervals.paired_difference([[1.0, 2.0]], [[1.0]])
    assert str(err.value) == "paired comparison needs the same molecules: 2 vs 1 columns"
    with pytest.raises(ValueError) as err:
        intervals.align(["a", "b", "c", "d", "e"], {"a": 1.0})
    assert str(err.value) == ("4 molecule(s) missing, e.g. ['b', 'c', 'd']; paired comparisons need every molecule")
