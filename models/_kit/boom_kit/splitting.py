"""Validation slices carved from train with the task seed: the only validation data a model may use."""
from __future__ import annotations

import numpy as np


def validation_split(n: int, seed: int, fraction: float = 0.1, minimum: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train_idx, val_idx) over ``n`` training rows; val has ``max(minimum, round(fraction*n))`` rows."""
    if n < 2:
        raise ValueError(f"need at least 2 training molecules to carve a validation slice, got {n}")
    n_val = min(n - 1, max(minimum, int(round(fraction * n))))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
