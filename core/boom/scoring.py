"""Metrics, computed only here from raw predictions and the labels the orchestrator kept.

Besides the point metrics every split gets a seeded molecule-bootstrap interval of its RMSE and MAE
(:mod:`boom.intervals`) and, when the model gave ``y_std``, the uncertainty scores of :mod:`boom.uncertainty`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.stats import spearmanr

from boom_schema import SplitScores
from boom_schema.scores import Bootstrap
from boom import intervals, uncertainty

#: the interval settings every run's scores use (recorded in Scores.bootstrap)
BOOTSTRAP = Bootstrap(samples=intervals.N_BOOT, seed=intervals.SEED, level=intervals.LEVEL)


def split_scores(y_true: np.ndarray, y_pred: np.ndarray, y_std: Optional[np.ndarray] = None) -> SplitScores:
    """Scores of one split; the arrays are in the task's label order (the bootstrap draws depend on it)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.size == 0:
        raise ValueError("cannot score an empty split")
    err = y_pred - y_true
    ss_tot = float(((y_true - y_true.mean()) ** 2).sum())
    r2 = 1.0 - float((err**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    spearman = None
    if np.ptp(y_true) > 0 and np.ptp(y_pred) > 0:
        spearman = float(spearmanr(y_true, y_pred).statistic)
    b = BOOTSTRAP
    rmse_lo, rmse_hi = intervals.interval(err, "rmse", b.samples, b.seed, b.level)
    mae_lo, mae_hi = intervals.interval(err, "mae", b.samples, b.seed, b.level)
    extra = {} if y_std is None else uncertainty.scores(y_true, y_pred, y_std)
    return SplitScores(
        n=int(y_true.size),
        rmse=float(np.sqrt(np.mean(err**2))),
        mae=float(np.mean(np.abs(err))),
        r2=r2,
        spearman=spearman,
        max_error=float(np.max(np.abs(err))),
        mean_y_std=None if y_std is None else float(np.mean(y_std)),
        rmse_ci_lo=rmse_lo, rmse_ci_hi=rmse_hi, mae_ci_lo=mae_lo, mae_ci_hi=mae_hi,
        bootstrap=b, **extra,
    )
