"""Target standardisation fit on train only, inverted exactly once (BOOM's MLP inverted twice)."""
from __future__ import annotations

import numpy as np


class TargetScaler:
    """z = (y - mean) / std with mean and std of the training targets."""

    def __init__(self) -> None:
        self.mean: float | None = None
        self.std: float | None = None

    def fit(self, y: np.ndarray) -> "TargetScaler":
        y = np.asarray(y, dtype=np.float64)
        if y.size == 0 or not np.all(np.isfinite(y)):
            raise ValueError("cannot fit a target scaler on empty or non-finite targets")
        self.mean = float(y.mean())
        std = float(y.std())
        self.std = std if std > 0 else 1.0
        return self

    def transform(self, y: np.ndarray) -> np.ndarray:
        self._check()
        return (np.asarray(y, dtype=np.float64) - self.mean) / self.std  # type: ignore[operator]

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Back to original units (call once, on the final predictions)."""
        self._check()
        return np.asarray(z, dtype=np.float64) * self.std + self.mean  # type: ignore[operator]

    def inverse_std(self, z_std: np.ndarray) -> np.ndarray:
        """A standard deviation in scaled units, in original units."""
        self._check()
        return np.asarray(z_std, dtype=np.float64) * self.std  # type: ignore[operator]

    def _check(self) -> None:
        if self.mean is None:
            raise RuntimeError("TargetScaler used before fit()")
