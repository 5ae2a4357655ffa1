"""ModelSpec: what ``models/<name>/model.yaml`` declares about a model.

The orchestrator never guesses anything about a model: its input representation, the tasks it
supports (and why not the others), its default hyperparameters with their source, whether it wants a
GPU, and the resources a run should get all come from this file.
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Optional, Union

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from boom_schema.base import Contract
from boom_schema.limits import DEFAULT_DISK_GB
from boom_schema.properties import PROPERTIES

Scalar = Union[bool, int, float, str, None]


class InputKind(str, Enum):
    """The representation a model consumes; geometry3d models get the 3D geometry file."""

    SMILES = "smiles"
    DESCRIPTORS = "descriptors"
    GRAPH2D = "graph2d"
    GEOMETRY3D = "geometry3d"


class GpuUse(str, Enum):
    """Whether a model needs a GPU: never, when there is one, or always (a CPU run is then refused)."""

    NO = "no"
    OPTIONAL = "optional"
    REQUIRED = "required"


class ImageKind(str, Enum):
    """The shared image a model's image is built on (``models/_base/model.Dockerfile``): ``base`` (Python, the
    scientific stack, RDKit, boom-schema, boom-kit) or ``torch`` (the base plus the pinned torch)."""

    BASE = "base"
    TORCH = "torch"


class Resources(Contract):
    """Resource hints used by the runners (memory/CPU limits, wall-clock timeout)."""

    cpus: float = Field(2.0, gt=0, description="CPU cores a run may use (also sets the thread count).")
    memory_gb: float = Field(8.0, gt=0, description="Memory limit of a container run.")
    timeout_s: int = Field(6 * 3600, gt=0, description="Wall-clock limit of one run.")
    disk_gb: float = Field(DEFAULT_DISK_GB, gt=0, description="Most a run folder may hold after the run (everything the model "
                           "wrote, log included); a larger folder fails the run (boom_schema.limits).")


class ModelSpec(Contract):
    """A model as declared in ``models/<name>/model.yaml``."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Equal to the folder name.")
    description: str
    citation: str = Field(description="The paper (or software) the model implements.")
    input: InputKind
    tasks: list[str] = Field(description="Property names the model supports (see boom_schema.PROPERTIES).")
    unsupported: dict[str, str] = Field(
        default_factory=dict, description="Property -> why the model does not support it."
    )
    entrypoint: str = Field("main.py", description="Script, relative to the model folder, run with the task path.")
    defaults: dict[str, Scalar] = Field(default_factory=dict, description="Default hyperparameters.")
    defaults_source: str = Field(description="Where the defaults come from (paper, BOOM code, library).")
    smoke: dict[str, Scalar] = Field(
        default_factory=dict, description="Overrides for the tiny CPU smoke run (e.g. epochs: 1)."
    )
    gpu: GpuUse = GpuUse.NO
    image: ImageKind = Field(
        ImageKind.TORCH, description="Shared image the model's image is built on: 'torch' (default: most models) "
        "or 'base' (no torch). A Dockerfile in the model folder, when present, is used instead of the template.")
    resources: Resources = Field(default_factory=Resources)
    seeds: int = Field(1, ge=1, description="Seeds run per task by default in the matrix.")
    pretrained: Optional[str] = Field(
        None, description="The checkpoint the defaults start from (name or path); None means trained from scratch.")

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, tasks: list[str]) -> list[str]:
        unknown = [t for t in tasks if t not in PROPERTIES]
        if unknown:
            raise ValueError(f"unknown properties {unknown}; valid: {list(PROPERTIES)}")
        if len(set(tasks)) != len(tasks):
            raise ValueError("tasks lists a property twice")
        return tasks

    @model_validator(mode="after")
    def _every_task_accounted_for(self) -> "ModelSpec":
        missing = [p for p in PROPERTIES if p not in self.tasks and p not in self.unsupported]
        if missing:
            raise ValueError(
                f"properties {missing} are neither in tasks nor explained in unsupported"
            )
        both = [p for p in self.tasks if p in self.unsupported]
        if both:
            raise ValueError(f"properties {both} are both supported and unsupported")
        return self


class SpecError(ValueError):
    """An invalid model.yaml: the message names the file and the field."""


def load_spec(path: str | Path) -> ModelSpec:
    """Parse and validate a model.yaml; errors name the file and the offending field."""
    path = Path(path)
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: file not found (every model folder needs a model.yaml)") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping of fields, got {type(raw).__name__}")
    try:
        spec = ModelSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise SpecError(f"{path}: field '{field}': {first['msg']}") from None
    if spec.name != path.parent.name:
        raise SpecError(f"{path}: field 'name': {spec.name!r} must equal the folder name {path.parent.name!r}")
    return spec
