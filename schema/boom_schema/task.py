"""Task: everything a model receives for one run, written by the orchestrator as ``task.json``.

The input folder holds train (mol_id, smiles, y) and one blind test file (mol_id, smiles): the ID and OOD
test molecules together, in a seeded shuffled order, without labels and with nothing that says which
molecule is in the tail.  Labels and split membership never leave the orchestrator.  Paths are those seen by the
model's process (the Docker runner rewrites them to the container's mount points).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field

from boom_schema.base import Contract
from boom_schema.properties import DatasetName, PropertyName, Readout
from boom_schema.spec import Scalar
from boom_schema.version import CONTRACT_VERSION

Device = Literal["cpu", "cuda"]


class TaskFiles(Contract):
    """File names inside the input folder."""

    train: str = "train.csv"
    test: str = "test.csv"
    geometries: Optional[str] = Field(
        None, description="Extended XYZ file keyed by mol_id (geometry3d models only)."
    )


class Task(Contract):
    """One (model, property, seed) run as handed to a model."""

    contract_version: str = CONTRACT_VERSION
    run_id: str
    model: str
    dataset: DatasetName
    property: PropertyName
    unit: str
    readout: Readout = Field(description="Physically motivated readout for this property.")
    input_dir: str = Field(description="Read-only folder with the task's input files.")
    output_dir: str = Field(description="Folder where the model writes predictions.csv and model_report.json.")
    files: TaskFiles = Field(default_factory=TaskFiles)
    seed: int = 0
    hyperparameters: dict[str, Scalar] = Field(default_factory=dict)
    device: Device = "cpu"
    threads: int = Field(1, ge=1, description="CPU threads the model may use (torch, BLAS, joblib).")
    time_budget_s: int = Field(6 * 3600, gt=0)
    subset: Optional[str] = Field(None, description="Set when the run uses a data subset: 'n60' (every split "
                                                    "reduced, smoke tests), 'train2000' (train only), or both.")

    def path(self, name: Literal["train", "test", "geometries"]) -> Path:
        """Absolute path of one input file."""
        fname = getattr(self.files, name)
        if fname is None:
            raise FileNotFoundError(f"task {self.run_id} has no {name} file (is the model's input geometry3d?)")
        return Path(self.input_dir) / fname

    @property
    def predictions_path(self) -> Path:
        return Path(self.output_dir) / "predictions.csv"

    @property
    def report_path(self) -> Path:
        return Path(self.output_dir) / "model_report.json"
