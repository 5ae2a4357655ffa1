"""Molecule-bootstrap intervals: how sure an RMSE or MAE is, and whether two configurations really differ.

Pure functions over error matrices ``errors[k, i] = y_pred - y_true`` of ``k`` seeds (rows) on the same ``n``
molecules (columns, in one fixed order: the task's label order).  A replicate resamples the molecules with
replacement (the same draw for every seed and, in a paired comparison, for both configurations); its statistic
is the mean over seeds of the per-seed RMSE (or MAE), which is how a leaderboard row aggregates seeds.  The
interval is the percentile interval of the replicates.  Seeded: the same inputs give the same interval
everywhere (docs/leaderboard.md has the formulas).
"""
from __future__ import annotations

from typing import Callable, Iterator, Mapping, Optional

import numpy as np

N_BOOT = 1000
SEED = 0
LEVEL = 0.95
_CHUNK_CELLS = 4_000_000  # resampled cells held at once (replicates x molecules)


def _matrix(errors) -> np.ndarray:
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim == 1:
        e = e[None, :]
    if e.ndim != 2 or e.shape[1] == 0 or e.shape[0] == 0:
        raise ValueError(f"errors must be a non-empty (seeds, molecules) array, got shape {e.shape}")
    return e


def _draws(n: int, n_boot: int, seed: int, rows: int = 1) -> Iterator[np.ndarray]:
    """Bootstrap index arrays (replicates, n) in chunks of about _CHUNK_CELLS resampled values over ``rows`` seeds;
    one seeded stream, so chunking never changes a draw."""
    rng = np.random.default_rng(seed)
    per = max(1, _CHUNK_CELLS // (n * rows))
    done = 0
    while done < n_boot:
        b = min(per, n_boot - done)
        yield rng.integers(0, n, size=(b, n))
        done += b


def _rmse(sq: np.ndarray) -> np.ndarray:  # sq: (seeds, replicates, n) squared errors -> (replicates,)
    return np.sqrt(sq.mean(axis=2)).mean(axis=0)


def _mae(ab: np.ndarray) -> np.ndarray:
    return ab.mean(axis=2).mean(axis=0)


_STATS: Mapping[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "rmse": (np.square, _rmse),
    "mae": (np.abs, _mae),
}


def _percentile(values: np.ndarray, level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def point(errors, stat: str = "rmse") -> float:
    """The statistic on all molecules: mean over seeds of each seed's RMSE (or MAE)."""
    e = _matrix(errors)
    transform, reduce = _STATS[stat]
    return float(reduce(transform(e)[:, None, :])[0])


def replicates(errors, stat: str = "rmse", n_boot: int = N_BOOT, seed: int = SEED) -> np.ndarray:
    """The ``n_boot`` bootstrap replicates of :func:`point`."""
    if stat not in _STATS:
        raise ValueError(f"unknown statistic {stat!r}; use one of {sorted(_STATS)}")
    e = _matrix(errors)
    transform, reduce = _STATS[stat]
    t = transform(e)
    return np.concatenate([reduce(t[:, idx]) for idx in _draws(e.shape[1], n_boot, seed, e.shape[0])])


def interval(errors, stat: str = "rmse", n_boot: int = N_BOOT, seed: int = SEED,
             level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval (resampling molecules) of the mean-over-seeds RMSE or MAE."""
    return _percentile(replicates(errors, stat, n_boot, seed), level)


def paired_difference(errors_a, errors_b, stat: str = "rmse", n_boot: int = N_BOOT, seed: int = SEED,
                      level: float = LEVEL) -> tuple[float, float, float]:
    """(point, lo, hi) of stat(a) - stat(b) on the same molecules, both resampled by the same draws.

    ``errors_a`` and ``errors_b`` are (seeds, n) with their columns on the same molecules in the same order
    (match them by mol_id first: :func:`align`); the seed counts may differ.
    """
    a, b = _matrix(errors_a), _matrix(errors_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired comparison needs the same molecules: {a.shape[1]} vs {b.shape[1]} columns")
    transform, reduce = _STATS[stat]
    ta, tb = transform(a), transform(b)
    diffs = np.concatenate([reduce(ta[:, idx]) - reduce(tb[:, idx])
                            for idx in _draws(a.shape[1], n_boot, seed, a.shape[0] + b.shape[0])])
    lo, hi = _percentile(diffs, level)
    return point(a, stat) - point(b, stat), lo, hi


def align(order: list[str], by_mol: Mapping[str, float]) -> np.ndarray:
    """Values of ``by_mol`` in ``order`` (mol_ids); a missing molecule is an error, never a silent drop."""
    missing = [m for m in order if m not in by_mol]
    if missing:
        raise ValueError(f"{len(missing)} molecule(s) missing, e.g. {missing[:3]}; paired comparisons need every molecule")
    return np.array([by_mol[m] for m in order], dtype=np.float64)


def tied_with_best(errors_by_row: Mapping[str, np.ndarray], n_boot: int = N_BOOT, seed: int = SEED,
                   level: float = LEVEL) -> dict[str, tuple[bool, float, float, bool]]:
    """Per row: (tied, lo, hi, is_best) of the paired RMSE difference row - best on one task.

    The best row has the lowest :func:`point` RMSE (ties broken by row name); a row is tied with it when the
    paired interval of its difference contains 0.  The best row is tied with itself, interval (0, 0).
    """
    if not errors_by_row:
        return {}
    points = {name: point(e) for name, e in errors_by_row.items()}
    best = min(points, key=lambda name: (points[name], name))
    out: dict[str, tuple[bool, float, float, bool]] = {}
    for name, e in errors_by_row.items():
        if name == best:
            out[name] = (True, 0.0, 0.0, True)
            continue
        _, lo, hi = paired_difference(e, errors_by_row[best], "rmse", n_boot, seed, level)
        out[name] = (lo <= 0.0 <= hi, lo, hi, False)
    return out

