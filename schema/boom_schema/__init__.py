"""The BOOM-TTE contract.

One source of truth for every file that crosses the boundary between the orchestrator (``boom``) and a
model (a process or a container): the model spec, the task handed to a model, the predictions it writes,
the report it may add, the run record and the scores, with readers and writers for the input tables
(train.csv, test.csv) and the geometry file.  The orchestrator and every model import these
models; non-Python models can follow the JSON Schema files generated from them (``schema/json``).
"""
from boom_schema.version import CONTRACT_VERSION
from boom_schema.properties import PROPERTIES, PropertyInfo, PropertyName, Readout, property_info
from boom_schema.spec import GpuUse, ImageKind, InputKind, ModelSpec, Resources, SpecError, load_spec
from boom_schema.task import Device, Task, TaskFiles
from boom_schema.predictions import (
    PREDICTION_COLUMNS,
    PredictionsError,
    Split,
    validate_predictions,
)
from boom_schema.inputs import InputFileError, InputTable, read_test, read_train, write_test, write_train
from boom_schema.geometry import Geometry, GeometryFileError, read_extxyz, write_extxyz
from boom_schema.record import ModelReport, RunRecord, RunStatus, Timings
from boom_schema.scores import Scores, SplitScores

__all__ = [
    "CONTRACT_VERSION",
    "PROPERTIES",
    "PropertyInfo",
    "PropertyName",
    "Readout",
    "property_info",
    "GpuUse",
    "ImageKind",
    "InputKind",
    "ModelSpec",
    "Resources",
    "SpecError",
    "load_spec",
    "Device",
    "Task",
    "TaskFiles",
    "PREDICTION_COLUMNS",
    "PredictionsError",
    "Split",
    "validate_predictions",
    "InputFileError",
    "InputTable",
    "read_test",
    "read_train",
    "write_test",
    "write_train",
    "Geometry",
    "GeometryFileError",
    "read_extxyz",
    "write_extxyz",
    "ModelReport",
    "RunRecord",
    "RunStatus",
    "Timings",
    "Scores",
    "SplitScores",
]
