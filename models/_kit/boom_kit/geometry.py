"""3D geometries for geometry models: reading the task's extended XYZ and neighbour lists in plain torch.

The data layer writes ``geometries.extxyz`` with one frame per molecule and ``mol_id=...`` in each
comment line (qm9: QM9's DFT coordinates; 10k_csd: seeded ETKDG/MMFF conformers in RDKit's atom order
of the SMILES with explicit hydrogens).  Molecules whose embedding failed have no frame: a model must
still predict them and say so (``missing_geometries`` + ``ctx.note``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

# Full element table of both datasets (CHNO for 10k_csd, CHNOF for QM9): an OOD molecule with an element
# unseen in train must not crash a model.
ELEMENTS = ("H", "C", "N", "O", "F")
ATOMIC_NUMBERS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
_MOL_ID = re.compile(r"mol_id=(\S+)")


@dataclass(frozen=True)
class Geometry:
    symbols: tuple[str, ...]
    positions: np.ndarray  # (n_atoms, 3), Angstrom

    @property
    def atomic_numbers(self) -> np.ndarray:
        return np.array([ATOMIC_NUMBERS[s] for s in self.symbols], dtype=np.int64)

    @property
    def element_index(self) -> np.ndarray:
        """Index into :data:`ELEMENTS` (for one-hot features)."""
        return np.array([ELEMENTS.index(s) for s in self.symbols], dtype=np.int64)


def read_extxyz(path: str | Path) -> dict[str, Geometry]:
    """All frames of a task's geometry file, keyed by mol_id (fast, no ASE needed)."""
    out: dict[str, Geometry] = {}
    lines = Path(path).read_text().splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        n = int(lines[i])
        m = _MOL_ID.search(lines[i + 1])
        if m is None:
            raise ValueError(f"{path}: frame at line {i + 1} has no mol_id in its comment line")
        rows = [l.split() for l in lines[i + 2 : i + 2 + n]]
        symbols = tuple(r[0] for r in rows)
        unknown = set(symbols) - set(ELEMENTS)
        if unknown:
            raise ValueError(f"{path}: molecule {m.group(1)} has elements {sorted(unknown)} outside {ELEMENTS}")
        out[m.group(1)] = Geometry(symbols, np.array([[float(v) for v in r[1:4]] for r in rows], dtype=np.float64))
        i += 2 + n
    return out


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
