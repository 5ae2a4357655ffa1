"""Known-value checks of every number a run's scores.json holds, computed by hand (not by the code under test).

A wrong formula (RMSE without the root, R² with its sign flipped, the OOD/ID ratio inverted) or predictions
matched to labels by row order instead of by mol_id must fail here.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from boom.scoring import split_scores


def test_split_scores_hand_computed_negative_r2() -> None:
    # errors 0, 1, -1, 2: squares sum 6 -> MSE 1.5; |err| mean 1; SS_tot about mean 2.5 = 5 -> R² = 1 - 6/5
    # ranks of y_pred: 1, 3, 2, 4 -> d² sum 2 -> Spearman 1 - 6*2 / (4*(16-1)) = 0.8
    s = split_scores(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 6.0]))
    assert s.n == 4
    assert s.rmse == pytest.approx(math.sqrt(1.5), rel=1e-12)
    assert s.mae == pytest.approx(1.0, rel=1e-12)
    assert s.r2 == pytest.approx(-0.2, rel=1e-12)
    assert s.spearman == pytest.approx(0.8, rel=1e-12)
    assert s.max_error == pytest.approx(2.0, rel=1e-12)
    assert s.mean_y_std is None


def test_split_scores_hand_computed_positive_r2_and_std() -> None:
    # errors 1, 0, -1: MSE 2/3, MAE 2/3, SS_tot 8 -> R² = 1 - 2/8; monotone -> Spearman 1; max |err| 1
    s = split_scores(np.array([0.0, 2.0, 4.0]), np.array([1.0, 2.0, 3.0]), np.array([0.5, 1.0, 3.0]))
    assert s.rmse == pytest.approx(math.sqrt(2 / 3), rel=1e-12)
    assert s.mae == pytest.approx(2 / 3, rel=1e-12)
    assert s.r2 == pytest.approx(0.75, rel=1e-12)
    assert s.spearman == pytest.approx(1.0, rel=1e-12)
    assert s.max_error == pytest.approx(1.0, rel=1e-12)
    assert s.mean_y_std == pytest.approx(1.5, rel=1e-12)


def test_split_scores_intervals() -> None:
    # |errors| all 1: every bootstrap resample has RMSE 1 and MAE 1, so both intervals are exactly [1, 1]
    s = split_scores(np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0, 2.0]))
    assert (s.rmse_ci_lo, s.rmse_ci_hi, s.mae_ci_lo, s.mae_ci_hi) == pytest.approx((1.0, 1.0, 1.0, 1.0))
    assert (s.bootstrap.samples, s.bootstrap.seed, s.bootstrap.level) == (1000, 0, 0.95)
    # errors 0 and 2: resampled RMSE is 0, sqrt(2) or 2 (p = 1/4, 1/2, 1/4) -> the 95% interval is [0, 2]
    s = split_scores(np.array([0.0, 0.0]), np.array([0.0, 2.0]))
    assert (s.rmse_ci_lo, s.rmse_ci_hi) == pytest.approx((0.0, 2.0))
    assert s.rmse_ci_lo <= s.rmse <= s.rmse_ci_hi


def test_split_scores_max_error_is_the_largest_absolute_error() -> None:
    # the largest error is negative (-3): max_error is its magnitude, not the largest signed error (1)
    s = split_scores(np.array([0.0, 0.0, 10.0]), np.array([1.0, 0.0, 7.0]))
    assert s.max_error == pytest.approx(3.0)
    assert s.mae == pytest.approx(4 / 3)
    # ties: y_true ranks (1.5, 1.5, 3), y_pred ranks (2, 1, 3); Pearson of the ranks = 1.5 / sqrt(1.5 * 2)
    assert s.spearman == pytest.approx(math.sqrt(3) / 2, rel=1e-12)


def test_split_scores_anticorrelated_and_perfect() -> None:
    s = split_scores(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]))
    assert s.spearman == pytest.approx(-1.0)
    assert s.r2 == pytest.approx(1.0 - 8.0 / 2.0)  # errors 2, 0, -2 -> SSE 8; SS_tot 2
    perfect = split_scores(np.array([1.0, 5.0]), np.array([1.0, 5.0]))
    assert (perfect.rmse, perfect.mae, perfect.max_error, perfect.r2) == (0.0, 0.0, 0.0, 1.0)


def test_split_scores_on_a_range_below_one_unit() -> None:
    # QM9's homo/lumo/gap span well under 1 Hartree: R² and Spearman must still be defined there
    s = split_scores(np.array([0.0, 0.2, 0.4]), np.array([0.1, 0.2, 0.3]))  # errors .1, 0, -.1; SS_tot .08
    assert s.r2 == pytest.approx(1 - 0.02 / 0.08, rel=1e-9)
    assert s.spearman == pytest.approx(1.0)
    assert s.rmse == pytest.approx(np.sqrt(0.02 / 3), rel=1e-9)


def test_split_scores_constant_cases() -> None:
    const_true = split_scores(np.array([2.0, 2.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    assert math.isnan(const_true.r2) and const_true.spearman is None  # undefined, never a made-up number
    assert const_true.rmse == pytest.approx(math.sqrt(2 / 3))
    const_pred = split_scores(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0]))
    assert const_pred.spearman is None
    assert const_pred.r2 == pytest.approx(0.0)  # predicting the mean: SSE == SS_tot
    with pytest.raises(ValueError, match=r"^cannot score an empty split$"):
        split_scores(np.array([]), np.array([]))


# --- scoring a run folder: predictions matched by mol_id, in any row order -----------------------------------

#: the labels the orchestrator keeps: ID errors +-0.5 (RMSE 0.5), OOD errors 2, -2, 2 (RMSE 2) -> ratio 4
LABELS = pd.DataFrame({
    "mol_id": ["i1", "o1", "i2", "o2", "o3"],
    "split": ["id", "ood", "id", "ood", "ood"],
    "y": [1.0, 10.0, 3.0, 20.0, 30.0],
})
PREDICTED = {"i1": 1.5, "i2": 2.5, "o1": 12.0, "o2": 18.0, "o3": 32.0}


def write_predictions(folder: Path, values: dict[str, float], order: list[str]) -> Path:
    """predictions.csv in the contract's shape (mol_id, y_pred), rows in ``order``: the one place to adapt."""
    path = folder / "predictions.csv"
    lines = ["mol_id,y_pred"] + [f"{m},{values[m]!r}" for m in order]
    path.write_text("\n".join(lines) + "\n")
    return path


def _task_data(folder: Path):
    from boom_schema import TaskFiles
    from boom.data.tasks import TaskData

    return TaskData(property="density", dataset="10k_csd", input_dir=folder, files=TaskFiles(), labels=LABELS.copy(),
                    sha256={}, subset=None, split_sha256="ab" * 32)


@pytest.mark.parametrize("order", [
    ["i1", "o1", "i2", "o2", "o3"],  # label order
    ["o3", "i2", "o1", "i1", "o2"],  # shuffled
    ["o2", "o3", "o1", "i2", "i1"],  # reversed splits
])
def test_score_run_matches_predictions_by_mol_id(tmp_path: Path, order: list[str]) -> None:
    from boom.orchestrate import score_run
    from boom_schema import Scores

    write_predictions(tmp_path, PREDICTED, order)
    scores = score_run(tmp_path, _task_data(tmp_path), "r" * 16, "fixture", seed=3)
    assert scores.id.n == 2 and scores.ood.n == 3
    assert scores.id.rmse == pytest.approx(0.5, rel=1e-12)
    assert scores.id.mae == pytest.approx(0.5, rel=1e-12)
    assert scores.id.max_error == pytest.approx(0.5, rel=1e-12)
    assert scores.id.r2 == pytest.approx(1 - 0.5 / 2.0, rel=1e-12)  # SSE 0.5, SS_tot (1-2)²+(3-2)² = 2
    assert scores.ood.rmse == pytest.approx(2.0, rel=1e-12)
    assert scores.ood.mae == pytest.approx(2.0, rel=1e-12)
    assert scores.ood.r2 == pytest.approx(1 - 12.0 / 200.0, rel=1e-12)  # SS_tot 100+0+100
    assert scores.ood.spearman == pytest.approx(1.0)
    assert scores.ood_id_rmse_ratio == pytest.approx(4.0, rel=1e-12)  # OOD / ID, not ID / OOD
    assert (scores.seed, scores.run_id, scores.split_sha256) == (3, "r" * 16, "ab" * 32)
    on_disk = Scores.model_validate_json((tmp_path / "scores.json").read_text())
    assert on_disk.ood_id_rmse_ratio == scores.ood_id_rmse_ratio and on_disk.id == scores.id


def test_score_run_ratio_is_infinite_for_a_perfect_id_split(tmp_path: Path) -> None:
    from boom.orchestrate import score_run

    values = {**PREDICTED, "i1": 1.0, "i2": 3.0}
    write_predictions(tmp_path, values, ["o1", "i2", "o3", "i1", "o2"])
    scores = score_run(tmp_path, _task_data(tmp_path), "r" * 16, "fixture", seed=0)
    assert scores.id.rmse == 0.0 and scores.ood_id_rmse_ratio == math.inf
    from boom.results import read_scores

    on_disk = read_scores(tmp_path)  # the report reads it back: an infinite ratio must not make it unreadable
    assert on_disk is not None and on_disk.ood_id_rmse_ratio == math.inf
