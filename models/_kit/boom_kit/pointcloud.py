"""Point clouds for 3D-geometry models: molecules as (elements, positions), batched flat or padded.

Shared by the geometry transformers (``et``, ``graphormer3d``) and the readout: one table of every
molecule's atoms built once from :func:`boom_kit.geometry.read_extxyz`, cheap batch assembly (flat atoms +
``batch`` vector for message passing, or padded ``(B, N)`` tensors with a mask for dense attention), element
counts, scatter sums in plain torch (no torch-scatter), centres of mass, random rotations for invariance tests.
Their training recipe is :mod:`boom_kit.pointcloud_recipe`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from boom_kit.geometry import ELEMENTS, Geometry

# Standard atomic weights (u) of ELEMENTS, for centres of mass.
MASSES = {"H": 1.008, "C": 12.011, "N": 14.007, "O": 15.999, "F": 18.998}
MASS_TABLE = np.array([MASSES[e] for e in ELEMENTS], dtype=np.float64)


class PointClouds:
    """Atoms of a list of molecules (in order), flattened once; rows without a geometry are flagged."""

    def __init__(self, mol_ids: Sequence[str], geometries: dict[str, Geometry]) -> None:
        self.mol_ids = list(mol_ids)
        self.has_geometry = np.array([m in geometries for m in self.mol_ids], dtype=bool)
        counts = np.array([len(geometries[m].symbols) if m in geometries else 0 for m in self.mol_ids], dtype=np.int64)
        self.counts = counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        present = [geometries[m] for m in self.mol_ids if m in geometries]
        self.element = (np.concatenate([g.element_index for g in present]) if present else np.zeros(0, np.int64))
        self.positions = (np.concatenate([g.positions for g in present]).astype(np.float32) if present
                          else np.zeros((0, 3), np.float32))

    def __len__(self) -> int:
        return len(self.mol_ids)

    @property
    def max_atoms(self) -> int:
        return int(self.counts.max()) if len(self.counts) else 0

    def element_counts(self, idx: np.ndarray | None = None) -> np.ndarray:
        """(n, len(ELEMENTS)) element counts of molecules ``idx`` (all by default; zeros without a geometry)."""
        from boom_kit.readout import element_counts

        return element_counts(self.molecules(np.arange(len(self)) if idx is None else idx)[0])

    def molecules(self, idx: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(element indices, positions) of each molecule ``idx`` as numpy arrays."""
        sl = [slice(self.offsets[i], self.offsets[i + 1]) for i in np.asarray(idx, dtype=np.int64)]
        return [self.element[s] for s in sl], [self.positions[s] for s in sl]

    def _atoms(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(idx, dtype=np.int64)
        if not self.has_geometry[idx].all():
            raise ValueError("batch contains molecules without a geometry")
        atom_idx = np.concatenate([np.arange(self.offsets[i], self.offsets[i + 1]) for i in idx])
        mol = np.repeat(np.arange(len(idx)), self.counts[idx])
        return atom_idx, mol

    def flat(self, idx: np.ndarray, device: str = "cpu"):
        """(element index [A], positions [A,3] float32, batch [A]) for molecules ``idx``."""
        import torch

        atom_idx, mol = self._atoms(idx)
        return (torch.as_tensor(self.element[atom_idx], device=device),
                torch.as_tensor(self.positions[atom_idx], device=device),
                torch.as_tensor(mol, device=device))

    def padded(self, idx: np.ndarray, device: str = "cpu"):
        """(element index + 1 with 0 = padding [B,N], positions [B,N,3], atom mask [B,N])."""
        import torch

        atom_idx, mol = self._atoms(idx)
        counts = self.counts[np.asarray(idx, dtype=np.int64)]
        n = int(counts.max())
        slot = np.arange(len(atom_idx)) - np.repeat(np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        z = np.zeros((len(idx), n), dtype=np.int64)
        pos = np.zeros((len(idx), n, 3), dtype=np.float32)
        z[mol, slot] = self.element[atom_idx] + 1
        pos[mol, slot] = self.positions[atom_idx]
        z_t = torch.as_tensor(z, device=device)
        return z_t, torch.as_tensor(pos, device=device), z_t > 0


def scatter_sum(src, index, n: int):
    """Sum rows of ``src`` into ``n`` groups given by ``index`` (plain torch index_add)."""
    import torch

    out = torch.zeros((n,) + tuple(src.shape[1:]), dtype=src.dtype, device=src.device)
    return out.index_add_(0, index, src)


def centre_of_mass(element, pos, batch, n: int):
    """Per-molecule centre of mass [n,3] of flat atoms (element index into ELEMENTS)."""
    import torch

    mass = torch.as_tensor(MASS_TABLE, dtype=pos.dtype, device=pos.device)[element].unsqueeze(-1)
    return scatter_sum(mass * pos, batch, n) / scatter_sum(mass, batch, n)


def random_rotation(seed: int) -> np.ndarray:
    """A random proper rotation matrix (QR of a Gaussian matrix), for invariance tests."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q
