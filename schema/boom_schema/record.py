"""Run records: the model's own report and the orchestrator's record of every run, success or failure.

Every (model, property, seed) cell ends in a :class:`RunRecord`, so a leaderboard shows failures with
their reason instead of hiding them.  The model contributes a :class:`ModelReport` (its timings,
parameter count, library versions); resources, status and data checksums are measured by the
orchestrator, which never trusts a model's own metrics.
"""
from __future__ import annotations

from enum import Enum
from typing import Any, Optional

from pydantic import Field

from boom_schema.base import Contract
from boom_schema.properties import PropertyName
from boom_schema.spec import Scalar
from boom_schema.version import CONTRACT_VERSION


class RunStatus(str, Enum):
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"


class Timings(Contract):
    """Seconds spent in each phase (``None`` where a phase was not reported)."""

    featurise_s: Optional[float] = None
    train_s: Optional[float] = None
    predict_s: Optional[float] = None
    total_s: Optional[float] = None
    epochs: Optional[int] = Field(None, description="Epochs actually run (iterative models).")
    per_epoch_s: Optional[float] = None


class ModelReport(Contract):
    """Written by the model beside its predictions (``model_report.json``)."""

    contract_version: str = CONTRACT_VERSION
    timings: Timings = Field(default_factory=Timings)
    n_parameters: Optional[int] = None
    device: str = "cpu"
    versions: dict[str, str] = Field(default_factory=dict)
    best_epoch: Optional[int] = None
    pretrained: Optional[str] = Field(
        None, description="Checkpoint the weights started from (path or name); None means trained from scratch.")
    accelerator: Optional[dict[str, Any]] = Field(
        None, description="Where the tensors ran: {'device': 'cuda:0', 'name': ..., 'peak_memory_mb': ..., "
                          "'precision': 'fp32' | 'bf16'} (torch models; written by the kit).")
    notes: list[str] = Field(default_factory=list, description="Warnings or facts a reader should know.")
    artefacts: list[str] = Field(default_factory=list, description="Extra files in the output folder.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Model-specific results (JSON values).")


class RunRecord(Contract):
    """The orchestrator's record of one run (``record.json``)."""

    contract_version: str = CONTRACT_VERSION
    run_id: str
    model: str
    dataset: str
    property: PropertyName
    seed: int
    status: RunStatus
    reason: Optional[str] = Field(None, description="One line saying why a run failed.")
    runner: str
    device: str
    hyperparameters: dict[str, Scalar] = Field(default_factory=dict)
    subset: Optional[str] = None
    smoke: bool = Field(False, description="A smoke run (the spec's smoke overrides applied).")
    model_sha256: Optional[str] = Field(
        None, description="Digest of the model folder the run used (ModelEntry.content_hash); the leaderboard keys "
                          "configurations by it. None in records written before it was recorded.")
    started_at: str
    finished_at: str
    wall_s: float
    timings: Timings = Field(default_factory=Timings)
    peak_memory_mb: Optional[float] = None
    n_parameters: Optional[int] = None
    versions: dict[str, str] = Field(default_factory=dict)
    data_sha256: dict[str, str] = Field(default_factory=dict, description="sha256 of every task input file.")
    split_sha256: Optional[str] = Field(
        None, description="Digest of the (dataset, property) split the run was scored on (sha256 of the sorted "
                          "'mol_id,split' lines); runs on different splits are never compared or averaged.")
    model_report: Optional[ModelReport] = None
