"""The ten BOOM property tasks: dataset, unit and the physically sensible readout of each.

Models read the readout from here (one table, not one per model): a sum of atomic contributions for
extensive properties, a mean for intensive ones, and a dipole built from atomic charges and positions
for mu.  BOOM itself trained every property as an extensive total energy; models may offer that as an
option (``readout=sum``) but the default follows this table.
"""
from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import Field

from boom_schema.base import Contract

DatasetName = Literal["10k_csd", "qm9"]
# The ten property names, the type of every `property` field of the contract (Task, RunRecord, Scores).
PropertyName = Literal["density", "hof", "mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "cv"]


class Readout(str, Enum):
    """How per-atom outputs are pooled into one molecular value."""

    SUM = "sum"
    MEAN = "mean"
    DIPOLE = "dipole"


class PropertyInfo(Contract):
    """One BOOM task: a property of one dataset."""

    name: PropertyName = Field(description="Short property name used on the command line, e.g. 'density'.")
    dataset: DatasetName
    unit: str
    description: str
    readout: Readout
    n_ood: int = Field(description="Size of the OOD tail (BOOM: 1000 for 10k_csd, 10000 for qm9).")


PROPERTIES: dict[str, PropertyInfo] = {
    p.name: p
    for p in [
        PropertyInfo(name="density", dataset="10k_csd", unit="g/cm^3", readout=Readout.MEAN, n_ood=1000,
                     description="DFT-derived crystal density"),
        PropertyInfo(name="hof", dataset="10k_csd", unit="kcal/mol", readout=Readout.SUM, n_ood=1000,
                     description="DFT-derived solid heat of formation"),
        PropertyInfo(name="mu", dataset="qm9", unit="D", readout=Readout.DIPOLE, n_ood=10000,
                     description="Dipole moment"),
        PropertyInfo(name="alpha", dataset="qm9", unit="bohr^3", readout=Readout.SUM, n_ood=10000,
                     description="Isotropic polarizability"),
        PropertyInfo(name="homo", dataset="qm9", unit="Ha", readout=Readout.MEAN, n_ood=10000,
                     description="HOMO energy"),
        PropertyInfo(name="lumo", dataset="qm9", unit="Ha", readout=Readout.MEAN, n_ood=10000,
                     description="LUMO energy"),
        PropertyInfo(name="gap", dataset="qm9", unit="Ha", readout=Readout.MEAN, n_ood=10000,
                     description="HOMO-LUMO gap"),
        PropertyInfo(name="r2", dataset="qm9", unit="bohr^2", readout=Readout.SUM, n_ood=10000,
                     description="Electronic spatial extent <R^2>"),
        PropertyInfo(name="zpve", dataset="qm9", unit="Ha", readout=Readout.SUM, n_ood=10000,
                     description="Zero-point vibrational energy"),
        PropertyInfo(name="cv", dataset="qm9", unit="cal/mol/K", readout=Readout.SUM, n_ood=10000,
                     description="Heat capacity at 298.15 K"),
    ]
}


def property_info(name: str) -> PropertyInfo:
    """Look a property up by name, with an error that lists the valid names."""
    try:
        return PROPERTIES[name]
    except KeyError:
        raise KeyError(
            f"unknown property {name!r}: choose one of {', '.join(PROPERTIES)}"
        ) from None
