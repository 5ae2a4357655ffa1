"""Scores of a predicted standard deviation (``y_std``), treating each prediction as a Gaussian N(y_pred, y_std²).

The field's usual four (uncertainty-toolbox, chemprop's uncertainty evaluators), written out here so each is a
few lines checked against hand-computed values (tests/test_uncertainty.py):

- Gaussian negative log-likelihood, mean over molecules: ½ log(2πσ²) + (y - μ)² / (2σ²);
- coverage of the central 68% and 95% intervals μ ± z σ, z = Φ⁻¹((1 + p) / 2);
- miscalibration area: ∫₀¹ |F(p) - p| dp, F(p) the fraction of molecules inside their central p interval.
  Molecule i is inside from p_i = 2Φ(|y - μ| / σ) - 1 on, so F is a step function and the integral is exact
  (uncertainty-toolbox evaluates it on a 100-point grid);
- Spearman rank correlation of |y - μ| with σ (do larger σ go with larger errors?).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import spearmanr


def _arrays(y_true, y_pred, y_std) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64)
    mu = np.asarray(y_pred, dtype=np.float64)
    sigma = np.asarray(y_std, dtype=np.float64)
    if not (y.shape == mu.shape == sigma.shape) or y.ndim != 1 or y.size == 0:
        raise ValueError(f"y_true, y_pred and y_std must be 1-D arrays of one non-zero length, got "
                         f"{y.shape}, {mu.shape}, {sigma.shape}")
    if not np.all(np.isfinite(sigma)) or np.any(sigma < 0):
        raise ValueError("y_std must be finite and non-negative")
    return np.abs(mu - y), sigma


def gaussian_nll(y_true, y_pred, y_std) -> Optional[float]:
    """Mean Gaussian negative log-likelihood; None when some σ is 0 (the density is then undefined)."""
    err, sigma = _arrays(y_true, y_pred, y_std)
    if np.any(sigma == 0):
        return None
    return float(np.mean(0.5 * np.log(2 * math.pi * sigma**2) + err**2 / (2 * sigma**2)))


def coverage(y_true, y_pred, y_std, level: float) -> float:
    """Fraction of molecules whose label lies in the central ``level`` interval μ ± Φ⁻¹((1+level)/2) σ."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    err, sigma = _arrays(y_true, y_pred, y_std)
    return float(np.mean(err <= ndtri((1 + level) / 2) * sigma))


def _inside_from(err: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """p_i: the smallest central probability whose interval holds molecule i (0 for an exact prediction)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(err == 0, 0.0, np.where(sigma == 0, np.inf, err / np.where(sigma == 0, 1.0, sigma)))
    return 2 * ndtr(z) - 1


def _area_to(x: float, c: float) -> float:
    """∫₀ˣ |c - p| dp for 0 <= x, c <= 1."""
    return c * x - x * x / 2 if x <= c else c * c / 2 + (x - c) ** 2 / 2


def miscalibration_area(y_true, y_pred, y_std) -> float:
    """Exact area between the calibration curve F(p) of central intervals and the diagonal (0 = calibrated)."""
    err, sigma = _arrays(y_true, y_pred, y_std)
    p = np.sort(_inside_from(err, sigma))
    n = p.size
    edges = np.concatenate([[0.0], p, [1.0]])
    area = 0.0
    for k in range(n + 1):  # on [edges[k], edges[k+1]) exactly k molecules are inside: F = k / n
        c = k / n
        area += _area_to(float(edges[k + 1]), c) - _area_to(float(edges[k]), c)
    return float(area)


def spearman_abs_error_std(y_true, y_pred, y_std) -> Optional[float]:
    """Spearman(|y - μ|, σ); None when either is constant."""
    err, sigma = _arrays(y_true, y_pred, y_std)
    if np.ptp(err) == 0 or np.ptp(sigma) == 0:
        return None
    return float(spearmanr(err, sigma).statistic)


def scores(y_true, y_pred, y_std) -> dict[str, Optional[float]]:
    """All four, keyed as in ``boom_schema.SplitScores``."""
    return {
        "nll": gaussian_nll(y_true, y_pred, y_std),
        "coverage_68": coverage(y_true, y_pred, y_std, 0.68),
        "coverage_95": coverage(y_true, y_pred, y_std, 0.95),
        "miscalibration_area": miscalibration_area(y_true, y_pred, y_std),
        "spearman_abs_err_std": spearman_abs_error_std(y_true, y_pred, y_std),
    }
