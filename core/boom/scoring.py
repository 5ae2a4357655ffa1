"""Metrics, computed only here from raw predictions and the labels the orchestrator kept."""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy.stats import spearmanr

from boom_schema import SplitScores


def split_scores(y_true: np.ndarray, y_pred: np.ndarray, y_std: Optional[np.ndarray] = None) -> SplitScores:
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
    return SplitScores(
        n=int(y_true.size),
        rmse=float(np.sqrt(np.mean(err**2))),
        mae=float(np.mean(np.abs(err))),
        r2=r2,
        spearman=spearman,
        max_error=float(np.max(np.abs(err))),
        mean_y_std=None if y_std is None else float(np.mean(y_std)),
    )
