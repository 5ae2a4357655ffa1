"""Scores of a predicted y_std against values computed by hand (Φ from tables: Φ(0.5) = 0.691462, Φ(1.5) = 0.933193)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from boom import uncertainty
from boom.scoring import split_scores

PHI_05, PHI_15 = 0.6914624613, 0.9331927987


def test_gaussian_nll_by_hand() -> None:
    # molecule 1: error 0, sigma 1 -> 0.5 log(2 pi); molecule 2: error 1, sigma 2 -> 0.5 log(8 pi) + 1/8
    nll = uncertainty.gaussian_nll([0.0, 1.0], [0.0, 0.0], [1.0, 2.0])
    assert nll == pytest.approx((0.5 * math.log(2 * math.pi) + 0.5 * math.log(8 * math.pi) + 0.125) / 2, rel=1e-12)
    assert uncertainty.gaussian_nll([0.0], [1.0], [0.0]) is None  # a zero sigma has no density


def test_coverage_by_hand() -> None:
    # |errors| 0.5, 1.5, 2.5 with sigma 1: the 68% half-width is 0.9945 sigma, the 95% one 1.96 sigma
    y, mu, s = [0.0, 0.0, 0.0], [0.5, -1.5, 2.5], [1.0, 1.0, 1.0]
    assert uncertainty.coverage(y, mu, s, 0.68) == pytest.approx(1 / 3)
    assert uncertainty.coverage(y, mu, s, 0.95) == pytest.approx(2 / 3)
    # doubling sigma: 0.5 and 1.5 fall inside 1.989 (68%), all three inside 3.92 (95%)
    assert uncertainty.coverage(y, mu, [2.0] * 3, 0.68) == pytest.approx(2 / 3)
    assert uncertainty.coverage(y, mu, [2.0] * 3, 0.95) == pytest.approx(1.0)


def test_miscalibration_area_by_hand() -> None:
    # |errors| 0.5 and 1.5, sigma 1: molecule i is inside its central p interval from p_i = 2 Phi(|e_i|) - 1 on,
    # so F(p) = 0 below b1, 1/2 between b1 and b2, 1 above; area = int |F(p) - p| dp in three pieces
    b1, b2 = 2 * PHI_05 - 1, 2 * PHI_15 - 1
    expected = b1**2 / 2 + ((0.5 - b1) ** 2 / 2 + (b2 - 0.5) ** 2 / 2) + (1 - b2) ** 2 / 2
    got = uncertainty.miscalibration_area([0.0, 0.0], [0.5, -1.5], [1.0, 1.0])
    assert got == pytest.approx(expected, abs=1e-8)


def test_miscalibration_area_extremes() -> None:
    # sigma far too large: every molecule is inside at any p > 0, F = 1, area = int (1 - p) = 1/2
    assert uncertainty.miscalibration_area([0.0, 0.0], [1.0, -1.0], [1e6, 1e6]) == pytest.approx(0.5, abs=1e-5)
    # sigma far too small: nobody inside before p = 1, F = 0, area = int p = 1/2
    assert uncertainty.miscalibration_area([0.0, 0.0], [1.0, -1.0], [1e-6, 1e-6]) == pytest.approx(0.5, abs=1e-9)
    # exact predictions are inside from p = 0 on: F = 1 everywhere, area 1/2 as well
    assert uncertainty.miscalibration_area([1.0], [1.0], [0.0]) == pytest.approx(0.5)


def test_calibrated_gaussian_has_small_area_and_right_coverage() -> None:
    rng = np.random.default_rng(0)
    sigma = rng.uniform(0.5, 2.0, size=20000)
    y = rng.normal(0.0, sigma)
    mu = np.zeros_like(y)
    assert uncertainty.miscalibration_area(y, mu, sigma) < 0.01
    assert uncertainty.coverage(y, mu, sigma, 0.68) == pytest.approx(0.68, abs=0.01)
    assert uncertainty.coverage(y, mu, sigma, 0.95) == pytest.approx(0.95, abs=0.01)
    assert uncertainty.spearman_abs_error_std(y, mu, sigma) > 0.2  # larger sigma, larger errors


def test_spearman_of_error_and_sigma() -> None:
    # |errors| 1, 2, 3 against sigma 3, 2, 1: ranks reversed
    assert uncertainty.spearman_abs_error_std([0, 0, 0], [1.0, -2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    assert uncertainty.spearman_abs_error_std([0, 0, 0], [1.0, -2.0, 3.0], [1.0, 1.0, 1.0]) is None


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="one non-zero length"):
        uncertainty.coverage([0.0, 1.0], [0.0], [1.0], 0.95)
    with pytest.raises(ValueError, match="y_std must be finite and non-negative"):
        uncertainty.gaussian_nll([0.0], [0.0], [-1.0])
    with pytest.raises(ValueError, match="level must lie strictly between 0 and 1"):
        uncertainty.coverage([0.0], [0.0], [1.0], 1.0)


def test_split_scores_carries_them() -> None:
    s = split_scores(np.array([0.0, 0.0, 0.0]), np.array([0.5, -1.5, 2.5]), np.array([1.0, 1.0, 1.0]))
    assert s.coverage_68 == pytest.approx(1 / 3) and s.coverage_95 == pytest.approx(2 / 3)
    assert s.nll == pytest.approx(0.5 * math.log(2 * math.pi) + (0.25 + 2.25 + 6.25) / 6)
    assert s.spearman_abs_err_std is None  # constant sigma
    none = split_scores(np.array([0.0, 1.0]), np.array([0.0, 2.0]))
    assert none.nll is None and none.coverage_95 is None and none.miscalibration_area is None


def test_scores_use_the_signed_error_against_non_zero_labels() -> None:
    """Labels away from zero (every other fixture centres them at 0, where y_pred + y and y_pred - y agree)."""
    y, mu, sigma = [10.0, 20.0], [10.5, 19.0], [0.5, 1.0]  # |error| = 0.5, 1: both one sigma away
    nll = 0.5 * math.log(2 * math.pi) + (math.log(0.5) + math.log(1.0)) / 2 + 0.5
    assert uncertainty.gaussian_nll(y, mu, sigma) == pytest.approx(nll, rel=1e-12)
    assert uncertainty.coverage(y, mu, sigma, 0.95) == 1.0 and uncertainty.coverage(y, mu, sigma, 0.68) == 0.0


def test_boundaries_and_messages_word_for_word() -> None:
    from scipy.special import ndtri

    z = float(ndtri(0.975))
    # a label exactly on the interval's edge is inside (closed interval), at 1 sigma and at 2 sigma
    assert uncertainty.coverage([0.0, 0.0], [z, 2 * z], [1.0, 2.0], 0.95) == 1.0
    assert uncertainty.coverage([0.0], [z * 1.0000001], [1.0], 0.95) == 0.0
    # p_i = 2 Phi(|err| / sigma) - 1, also for an error of exactly 1
    assert uncertainty._inside_from(np.array([1.0, 0.0, 2.0]), np.array([2.0, 0.0, 0.0])) == pytest.approx(
        [0.382924922548026, 0.0, 1.0])
    # errors spanning exactly 1 are not constant
    assert uncertainty.spearman_abs_error_std([0.0, 0.0, 0.0], [0.0, 0.5, 1.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)
    for level in (0.0, 1.0):
        with pytest.raises(ValueError) as err:
            uncertainty.coverage([0.0], [0.0], [1.0], level)
        assert str(err.value) == f"level must lie strictly between 0 and 1, got {level}"
    with pytest.raises(ValueError) as err:
        uncertainty.gaussian_nll([0.0, 1.0], [0.0], [1.0])
    assert str(err.value) == ("y_true, y_pred and y_std must be 1-D arrays of one non-zero length, got "
                              "(2,), (1,), (1,)")
    with pytest.raises(ValueError) as err:
        uncertainty.gaussian_nll([0.0], [0.0], [-1.0])
    assert str(err.value) == "y_std must be finite and non-negative"
