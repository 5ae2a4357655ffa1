"""3D geometries for geometry models: reading the task's extended XYZ and neighbour lists in plain torch.

The data layer writes ``geometries.extxyz`` with one frame per molecule and ``mol_id=...`` in each
comment line (qm9: QM9's DFT coordinates; 10k_csd: seeded ETKDG/MMFF conformers in RDKit's atom order
of the SMILES with explicit hydrogens).  Molecules whose embedding failed have no frame: a model must
still predict them and say so (``missing_geometries`` + ``ctx.note``).  The file format, its checks and the
:class:`Geometry` type are the contract's (``boom_schema.geometry``); this module gives positions as numpy arrays.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from boom_schema import geometry as schema_geometry
from boom_schema.geometry import ATOMIC_NUMBERS, ELEMENTS, Geometry, GeometryFileError

__all__ = ["ATOMIC_NUMBERS", "ELEMENTS", "Geometry", "GeometryFileError", "read_extxyz", "missing_geometries",
           "radius_edges"]


def read_extxyz(path: str | Path) -> dict[str, Geometry]:
    """All frames of a task's geometry file keyed by mol_id (``boom_schema.geometry`` checks the file), each
    :class:`Geometry`'s positions as an ``(n_atoms, 3)`` float64 array."""
    return {m: Geometry(g.symbols, np.array(g.positions, dtype=np.float64)) for m, g in schema_geometry.read_extxyz(path).items()}


def missing_geometries(mol_ids: Iterable[str], geometries: dict[str, Geometry]) -> list[str]:
    return [m for m in mol_ids if m not in geometries]


def radius_edges(positions, cutoff: float, batch=None):
    """Directed edges (src, dst) between atoms closer than ``cutoff`` in the same molecule (torch).

    Plain torch (torch-cluster has no wheels for our torch): dense distances per batch, which is fine for
    molecules of tens of atoms.  ``batch`` maps atoms to molecules; None means one molecule.
    """
    import torch

    pos = torch.as_tensor(positions)
    n = pos.shape[0]
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=pos.device)
    dist = torch.cdist(pos, pos)
    same = batch[:, None] == batch[None, :]
    mask = same & (dist < cutoff) & ~torch.eye(n, dtype=torch.bool, device=pos.device)
    src, dst = mask.nonzero(as_tuple=True)
    return src, dst
