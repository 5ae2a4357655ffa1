"""Scores computed by the orchestrator from raw predictions and the labels it kept."""
from __future__ import annotations

from typing import Optional

from pydantic import ConfigDict, Field

from boom_schema.base import Contract
from boom_schema.properties import PropertyName
from boom_schema.version import CONTRACT_VERSION


class Bootstrap(Contract):
    """How the intervals were drawn: molecules resampled with replacement, percentile interval."""

    samples: int
    seed: int
    level: float


#: scores can be infinite or NaN (OOD/ID ratio of a perfect ID split, R² of constant labels): written as JSON's
#: Infinity/NaN constants, which pydantic and Python's json read back, instead of null, which no float field accepts
_NUMBERS = ConfigDict(**Contract.model_config, ser_json_inf_nan="constants")


class SplitScores(Contract):
    """Metrics of one test split."""

    model_config = _NUMBERS

    n: int
    rmse: float
    mae: float
    r2: float
    spearman: Optional[float] = Field(None, description="None when a split has constant values.")
    max_error: float
    mean_y_std: Optional[float] = Field(None, description="Mean predicted std, when the model gives one.")
    # how sure the numbers are: seeded molecule bootstrap, percentile interval (settings in 'bootstrap')
    rmse_ci_lo: Optional[float] = Field(None, description="Lower end of the bootstrap interval of the RMSE.")
    rmse_ci_hi: Optional[float] = Field(None, description="Upper end of the bootstrap interval of the RMSE.")
    mae_ci_lo: Optional[float] = Field(None, description="Lower end of the bootstrap interval of the MAE.")
    mae_ci_hi: Optional[float] = Field(None, description="Upper end of the bootstrap interval of the MAE.")
    # uncertainty, when the model gives y_std (each prediction read as a Gaussian N(y_pred, y_std^2))
    nll: Optional[float] = Field(None, description="Mean Gaussian negative log-likelihood (None: no y_std, or a "
                                                    "y_std of 0).")
    coverage_68: Optional[float] = Field(None, description="Fraction of labels inside the central 68% interval.")
    coverage_95: Optional[float] = Field(None, description="Fraction of labels inside the central 95% interval.")
    miscalibration_area: Optional[float] = Field(
        None, description="Area between the central-interval calibration curve and the diagonal (0 = calibrated).")
    spearman_abs_err_std: Optional[float] = Field(None, description="Spearman rank correlation of |error| with y_std.")
    bootstrap: Optional[Bootstrap] = Field(None, description="Settings of the *_ci_* intervals (None: none drawn).")


class Scores(Contract):
    """Scores of one run (``scores.json``)."""

    model_config = _NUMBERS

    contract_version: str = CONTRACT_VERSION
    run_id: str
    model: str
    dataset: str
    property: PropertyName
    unit: str
    seed: int
    split_sha256: Optional[str] = Field(None, description="Digest of the split these scores were computed on.")
    id: SplitScores
    ood: SplitScores
    ood_id_rmse_ratio: float = Field(description="OOD RMSE / ID RMSE: how much worse the model extrapolates.")
