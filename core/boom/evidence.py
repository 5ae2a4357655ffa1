"""Statistics of leaderboard rows recomputed from raw predictions and the task labels.

For every counted successful run the report reads its predictions (``predictions.csv``, or the
``predictions.csv.gz`` of an exported run), validates them as a run does, and matches them to the task's test
labels by mol_id.  From the (seeds x molecules) error matrices of a row it computes the bootstrap intervals of
the mean-over-seeds RMSE and MAE (:mod:`boom.intervals`), the uncertainty scores when every seed gave
``y_std`` (:mod:`boom.uncertainty`), and, per task, the paired interval of each row's OOD RMSE difference to the
best row (``tied_best``).  Old runs, whose scores.json predates the intervals, get them this way too.  A row
whose predictions or labels cannot be read keeps what its scores.json holds, and the report says why.
"""
from __future__ import annotations

import gzip
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import pandas as pd

from boom_schema import PredictionsError, limits, validate_predictions
from boom import intervals, runfiles, uncertainty

if TYPE_CHECKING:
    from boom.report import Row, Run

UNCERTAINTY = ("nll", "coverage_68", "coverage_95", "miscalibration_area", "spearman_abs_err_std")
GZ_NAME = "predictions.csv.gz"


@dataclass(frozen=True)
class TaskLabels:
    """The test labels of one task (label order) and its training labels (for the extrapolation view)."""

    labels: pd.DataFrame  # mol_id, split, y
    train_y: np.ndarray
    split_sha256: str

    def split(self, name: str) -> pd.DataFrame:
        return self.labels[self.labels["split"] == name]


@dataclass(frozen=True)
class SplitErrors:
    """One split of one row: molecules in label order, labels, errors (seeds x n) and y_std (or None)."""

    mol_id: list[str]
    y_true: np.ndarray
    errors: np.ndarray
    y_std: Optional[np.ndarray]


@lru_cache(maxsize=32)
def task_labels(prop: str, n_subset: Optional[int]) -> TaskLabels:
    """Labels of a task (the full test sets, or those of a ``--subset`` run); prepares the data if needed."""
    from boom.data import tasks

    data = tasks.build(prop, subset=n_subset)
    train = pd.read_csv(data.input_dir / data.files.train, usecols=["y"])
    return TaskLabels(labels=data.labels, train_y=train["y"].to_numpy(dtype=np.float64), split_sha256=data.split_sha256)


def read_predictions(folder: Path, expected: set[str]):
    """The run's validated predictions (plain or gzipped, size-capped like a run's own check)."""
    cap = limits.predictions_max_bytes(len(expected))
    if runfiles.lstat(folder / "predictions.csv") is None and runfiles.lstat(folder / GZ_NAME) is not None:
        raw = runfiles.read_bytes(folder / GZ_NAME, cap)
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
            data = fh.read(cap + 1)
        if len(data) > cap:
            raise PredictionsError(f"{GZ_NAME}: more than {cap} bytes once unpacked")
        text = data.decode("utf-8", errors="replace")
    else:
        from boom import results

        text = results.read_predictions(folder, len(expected))
    return validate_predictions(text, expected)


def run_errors(run: "Run", task: TaskLabels) -> dict[str, tuple[np.ndarray, Optional[np.ndarray]]]:
    """split -> (errors, y_std) of one run in the task's label order."""
    table = read_predictions(run.folder, set(task.labels["mol_id"]))
    pred = dict(zip(table.mol_id, table.y_pred))
    std = dict(zip(table.mol_id, table.y_std)) if table.y_std is not None else None
    out = {}
    for split in ("id", "ood"):
        lab = task.split(split)
        order = lab["mol_id"].tolist()
        err = intervals.align(order, pred) - lab["y"].to_numpy(dtype=np.float64)
        out[split] = (err, None if std is None else intervals.align(order, std))
    return out


def row_errors(row: "Row", task: TaskLabels) -> dict[str, SplitErrors]:
    """split -> SplitErrors over every ok seed of a row (raises ValueError/PredictionsError when unreadable)."""
    if row.config.split_sha256 and row.config.split_sha256 != task.split_sha256:
        raise ValueError(f"scored on split {row.config.split_sha256[:12]}, the data holds {task.split_sha256[:12]}")
    per_run = [run_errors(run, task) for run in row.ok]
    out = {}
    for split in ("id", "ood"):
        lab = task.split(split)
        stds = [r[split][1] for r in per_run]
        out[split] = SplitErrors(mol_id=lab["mol_id"].tolist(), y_true=lab["y"].to_numpy(dtype=np.float64),
                                 errors=np.stack([r[split][0] for r in per_run]),
                                 y_std=None if any(s is None for s in stds) else np.stack(stds))
    return out


def compare_runs(folder_a: Path, folder_b: Path, split: str = "ood") -> tuple[float, float, float]:
    """(point, lo, hi) of RMSE(a) - RMSE(b) on one split of two successful runs of the same task, paired by mol_id."""
    from boom import report, results

    runs = []
    for folder in (folder_a, folder_b):
        record, scores = results.read_record(folder), results.read_scores(folder)
        if record is None or scores is None:
            raise ValueError(f"{folder}: no readable record.json and scores.json of a successful run")
        runs.append(report.Run(record, scores, folder))
    (a, b) = (r.record for r in runs)
    n_a, n_b = report.subset_parts(a.subset)[0], report.subset_parts(b.subset)[0]
    if (a.dataset, a.property, n_a, a.split_sha256) != (b.dataset, b.property, n_b, b.split_sha256):
        raise ValueError(f"not the same task: {a.property} ({a.subset or 'full'}) vs {b.property} ({b.subset or 'full'});"
                         " a paired comparison needs the same test molecules")
    task = task_labels(a.property, n_a)
    err_a, err_b = (run_errors(r, task)[split][0] for r in runs)
    return intervals.paired_difference(err_a, err_b)


def _mean(values) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(values)) if values else math.nan


def _from_scores(row: "Row") -> dict[str, float]:
    """What scores.json holds: intervals of a one-seed row, uncertainty means over seeds."""
    stats: dict[str, float] = {}
    for split in ("id", "ood"):
        parts = [getattr(r.scores, split) for r in row.ok]
        if len(parts) == 1:
            for name in ("rmse_ci_lo", "rmse_ci_hi", "mae_ci_lo", "mae_ci_hi"):
                v = getattr(parts[0], name)
                stats[f"{split}_{name}"] = math.nan if v is None else v
        for name in UNCERTAINTY:
            stats[f"{split}_{name}"] = _mean([getattr(p, name) for p in parts])
    return stats


def _from_errors(ev: dict[str, SplitErrors]) -> dict[str, float]:
    b = intervals
    stats: dict[str, float] = {}
    for split, se in ev.items():
        for metric in ("rmse", "mae"):
            lo, hi = b.interval(se.errors, metric, b.N_BOOT, b.SEED, b.LEVEL)
            stats[f"{split}_{metric}_ci_lo"], stats[f"{split}_{metric}_ci_hi"] = lo, hi
        if se.y_std is not None:
            per_seed = [uncertainty.scores(se.y_true, se.y_true + e, s) for e, s in zip(se.errors, se.y_std)]
            for name in UNCERTAINTY:
                stats[f"{split}_{name}"] = _mean([d[name] for d in per_seed])
    return stats


def annotate(rows: list["Row"]) -> list[str]:
    """Fill ``row.stats`` and ``row.evidence`` of every row; returns one-line notes on what could not be read."""
    notes: list[str] = []
    by_task: dict[tuple, list["Row"]] = {}
    for row in rows:
        if row.ok:
            by_task.setdefault(row.task, []).append(row)
    for (dataset, prop, test_set), task_rows in by_task.items():
        try:
            task = task_labels(prop, int(test_set[1:]) if test_set else None)
        except Exception as exc:  # no data here (e.g. a copied results tree): scores.json values only
            task = None
            notes.append(f"{prop}{' ' + test_set if test_set else ''}: labels not available ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); intervals from scores.json only, no tie marks")
        comparable: dict[str, np.ndarray] = {}
        for row in task_rows:
            row.stats.update(_from_scores(row))
            if task is None:
                continue
            try:
                row.evidence = row_errors(row, task)
            except (ValueError, OSError) as exc:  # PredictionsError and UnsafeEntry are ValueErrors
                notes.append(f"{row.model} [{row.config.config_id}] {prop}: predictions not usable ({exc}); "
                             "intervals from scores.json only")
                continue
            row.stats.update(_from_errors(row.evidence))
            comparable[row.config.config_id] = row.evidence["ood"].errors
        ties = intervals.tied_with_best(comparable)
        for row in task_rows:
            if row.config.config_id in ties:
                tied, lo, hi, best = ties[row.config.config_id]
                row.stats.update(tied_best=tied, best=best, ood_rmse_diff_lo=lo, ood_rmse_diff_hi=hi)
    return notes


# ---------------------------------------------------------------------------------------------------
# the extrapolation view: error against the distance of a label outside the training label range
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bins:
    """Molecules binned by how far their label lies outside the training range (bin 0: inside it)."""

    labels: list[str]
    index: np.ndarray  # bin of each molecule
    counts: list[int]
    train_range: tuple[float, float]


def distance_outside(y, train_y) -> np.ndarray:
    """max(y - max(train), min(train) - y, 0): 0 for a label inside the training label range."""
    y = np.asarray(y, dtype=np.float64)
    lo, hi = float(np.min(train_y)), float(np.max(train_y))
    return np.maximum(np.maximum(y - hi, lo - y), 0.0)


def extrapolation_bins(y, train_y, n_bins: int = 4) -> Bins:
    """Bin 0 holds the labels inside the training range; the others split the rest at quantiles of the distance.

    Outside bin k holds distances in (e[k-1], e[k]] (the first also e[0]), e the distinct quantiles; empty bins go.
    """
    d = distance_outside(y, train_y)
    outside = d > 0
    index = np.zeros(d.size, dtype=int)
    labels = ["inside"]
    if outside.any():
        edges = np.unique(np.quantile(d[outside], np.linspace(0, 1, n_bins + 1)))
        if edges.size == 1:
            edges = np.array([edges[0], edges[0]])
        index[outside] = 1 + np.searchsorted(edges[1:-1], d[outside], side="left")
        labels += [f"{edges[k]:.3g}–{edges[k + 1]:.3g}" for k in range(edges.size - 1)]
    counts = np.bincount(index, minlength=len(labels))
    keep = [k for k in range(len(labels)) if counts[k] > 0]
    remap = np.full(len(labels), -1)
    remap[keep] = np.arange(len(keep))
    return Bins(labels=[labels[k] for k in keep], index=remap[index], counts=[int(counts[k]) for k in keep],
                train_range=(float(np.min(train_y)), float(np.max(train_y))))


def binned_abs_error(errors, bins: Bins) -> np.ndarray:
    """Mean |error| per bin, over every seed (rows of ``errors``) and molecule of the bin."""
    ab = np.abs(np.atleast_2d(np.asarray(errors, dtype=np.float64)))
    return np.array([ab[:, bins.index == k].mean() for k in range(len(bins.labels))])
