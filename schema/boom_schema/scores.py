"""Scores computed by the orchestrator from raw predictions and the labels it kept."""
from __future__ import annotations

from typing import Optional

from pydantic import Field

from boom_schema.base import Contract
from boom_schema.version import CONTRACT_VERSION


class SplitScores(Contract):
    """Metrics of one test split."""

    n: int
    rmse: float
    mae: float
    r2: float
    spearman: Optional[float] = Field(None, description="None when a split has constant values.")
    max_error: float
    mean_y_std: Optional[float] = Field(None, description="Mean predicted std, when the model gives one.")


class Scores(Contract):
    """Scores of one run (``scores.json``)."""

    contract_version: str = CONTRACT_VERSION
    run_id: str
    model: str
    dataset: str
    property: str
    unit: str
    seed: int
    split_sha256: Optional[str] = Field(None, description="Digest of the split these scores were computed on.")
    id: SplitScores
    ood: SplitScores
    ood_id_rmse_ratio: float = Field(description="OOD RMSE / ID RMSE: how much worse the model extrapolates.")
