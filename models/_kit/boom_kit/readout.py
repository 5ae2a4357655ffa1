"""One readout table for every 3D model: how atomic outputs become a molecular prediction, per property.

The physical readout of each property comes from ``boom_schema.PROPERTIES`` (sum for extensive, mean for
intensive, dipole for mu), refined here by what a model has:

* ``mean``    intensive (density, homo, lumo, gap): y = mean_y + std_y * mean_i o_i.  Duplicating a
  molecule leaves it unchanged.
* ``sum``     extensive (hof, alpha, zpve, cv; r2 and mu without coordinates):
  y = sum_e c_e n_e + s * (sum_i o_i) / n_bar, with per-element offsets c_e fit on TRAIN by least squares
  of y on the element counts n_e, s the RMS of the train residual and n_bar the mean train atom count (so a
  fresh model starts at O(1)).  Both terms are sums over atoms: two copies of a molecule predict twice.
* ``dipole``  mu with coordinates: |sum_i q_i (r_i - r_cm) + sum_i mu_i| with neutral charges
  q_i = o_i - mean_i o_i (translation invariant; mu_i are per-atom vectors where a model has them, ET).
* ``extent``  r2 (<R^2>) with coordinates: sum_i softplus(o_i) |r_i - r_cm|^2 (a non-negative per-atom
  weight times the squared distance from the centre of mass, TorchMD-Net's electronic-spatial-extent form),
  scaled by the train mean of sum_i |r_i - r_cm|^2.

The non-negative outputs (dipole, extent) are scaled by the train RMS only.  A model's ``readout``
hyperparameter (declared ``auto`` in its model.yaml) may override the table; the override is noted in the run
record.  :func:`describe` writes the table for a model's description, and tests check that it is stated.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Optional, Sequence

import numpy as np

from boom_kit.geometry import ELEMENTS
from boom_kit.pointcloud import MASS_TABLE

READOUTS = ("sum", "mean", "dipole", "extent")
_NEEDS_POSITIONS = ("dipole", "extent")


def physical_readout(prop: str, positions: bool = True) -> str:
    """The readout of ``prop`` for a model with (or without) atomic positions."""
    from boom_schema import property_info

    table = property_info(prop).readout.value
    if prop == "r2":
        return "extent" if positions else "sum"
    if table == "dipole" and not positions:
        return "sum"
    return table


def readout_table(tasks: Iterable[str], positions: bool = True) -> dict[str, str]:
    return {p: physical_readout(p, positions) for p in tasks}


def describe(tasks: Iterable[str], positions: bool = True) -> str:
    """The table as one line for a model.yaml, e.g. 'mean: density, homo; sum: hof, alpha; dipole: mu'."""
    table = readout_table(tasks, positions)
    parts = []
    for mode in READOUTS:
        props = [p for p, m in table.items() if m == mode]
        if props:
            parts.append(f"{mode}: {', '.join(props)}")
    return "readout per property: " + "; ".join(parts)


def choose(ctx, positions: bool = True, allowed: Sequence[str] = READOUTS) -> str:
    """The readout of this run: the table's (``readout: auto``) or a declared override, which is noted."""
    physical = physical_readout(ctx.task.property, positions)
    requested = ctx.param("readout")
    if requested == "auto":
        if physical != physical_readout(ctx.task.property, positions=True):
            ctx.note(f"{ctx.task.property} without coordinates: {physical} readout of per-atom outputs")
        return physical
    if requested not in allowed:
        raise ValueError(f"readout {requested!r}: choose auto or one of {', '.join(allowed)}")
    if requested in _NEEDS_POSITIONS and not positions:
        raise ValueError(f"readout {requested!r} needs atomic positions, which this model does not have")
    if requested != physical:
        ctx.note(f"readout {requested} overrides the physical readout ({physical}) of {ctx.task.property}")
    return requested


# ----------------------------------------------------------------------------------------- targets


def element_counts(elements: Sequence[np.ndarray]) -> np.ndarray:
    """(n_molecules, len(ELEMENTS)) counts from each molecule's element indices (into ELEMENTS)."""
    out = np.zeros((len(elements), len(ELEMENTS)), dtype=np.float64)
    for k, e in enumerate(elements):
        out[k] = np.bincount(np.asarray(e, dtype=np.int64), minlength=len(ELEMENTS))
    return out


def element_offsets(counts: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares per-element offsets of y on element counts (0 for elements absent from train)."""
    counts = np.asarray(counts, dtype=np.float64)
    offsets = np.linalg.lstsq(counts, np.asarray(y, dtype=np.float64), rcond=None)[0]
    offsets[counts.sum(0) == 0] = 0.0
    return offsets


class ReadoutScaler:
    """Target scaling fit on train that keeps the readout's physics (see the module docstring).

    ``transform(y, counts)`` gives the network's target, ``inverse(z, counts)`` the prediction; ``counts`` are
    the molecules' element counts (:func:`element_counts`), used only by ``sum``.
    """

    def __init__(self, mode: str) -> None:
        if mode not in READOUTS:
            raise ValueError(f"unknown readout {mode!r}: choose one of {', '.join(READOUTS)}")
        self.mode = mode
        self.shift = 0.0
        self.scale = 1.0
        self.offsets = np.zeros(len(ELEMENTS))

    def fit(self, y: np.ndarray, counts: np.ndarray) -> "ReadoutScaler":
        y = np.asarray(y, dtype=np.float64)
        if y.size == 0 or not np.all(np.isfinite(y)):
            raise ValueError("cannot fit a scaler on empty or non-finite targets")
        if self.mode == "mean":
            self.shift, self.scale = float(y.mean()), float(y.std())
        elif self.mode == "sum":
            self.offsets = element_offsets(counts, y)
            self.scale = float(np.sqrt(np.mean((y - np.asarray(counts) @ self.offsets) ** 2)))
        else:  # dipole, extent: non-negative, scale only
            self.scale = float(np.sqrt(np.mean(y**2)))
        if not self.scale > 0:
            self.scale = 1.0
        return self

    def _base(self, counts: Optional[np.ndarray], n: int) -> np.ndarray:
        if self.mode != "sum":
            return np.full(n, self.shift)
        if counts is None:
            raise ValueError("the sum readout needs element counts")
        return np.asarray(counts, dtype=np.float64) @ self.offsets

    def transform(self, y: np.ndarray, counts: Optional[np.ndarray] = None) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        return (y - self._base(counts, len(y))) / self.scale

    def inverse(self, z: np.ndarray, counts: Optional[np.ndarray] = None) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64).reshape(-1)
        return z * self.scale + self._base(counts, len(z))

    def as_dict(self) -> dict:
        out = {"mode": self.mode, "shift": self.shift, "scale": self.scale}
        if self.mode == "sum":
            out["offsets"] = dict(zip(ELEMENTS, map(float, self.offsets)))
        return out


def mean_extent(elements: Sequence[np.ndarray], positions: Sequence[np.ndarray]) -> float:
    """Train mean of sum_i |r_i - r_cm|^2 (the extent readout's scale), from numpy arrays per molecule."""
    vals = []
    for e, p in zip(elements, positions):
        m = MASS_TABLE[np.asarray(e, dtype=np.int64)][:, None]
        p = np.asarray(p, dtype=np.float64)
        vals.append(float(((p - (m * p).sum(0) / m.sum()) ** 2).sum()))
    mean = float(np.mean(vals)) if vals else 1.0
    return mean if mean > 0 else 1.0


def pool_scales(mode: str, n_atoms: np.ndarray, elements: Sequence[np.ndarray] = (),
                positions: Sequence[np.ndarray] = ()) -> tuple[float, float]:
    """(atom_scale, extent_scale) of :class:`Pool` from the training molecules."""
    atom_scale = 1.0 / float(np.mean(n_atoms)) if mode == "sum" and len(n_atoms) else 1.0
    extent_scale = 1.0 / mean_extent(elements, positions) if mode == "extent" else 1.0
    return atom_scale, extent_scale


def fit_readout(mode: str, y: np.ndarray, elements: Sequence[np.ndarray],
                positions: Sequence[np.ndarray] = ()) -> tuple[ReadoutScaler, float, float]:
    """(scaler, atom_scale, extent_scale) of readout ``mode`` from the training molecules only.

    ``y``, ``elements`` (element indices per molecule) and ``positions`` (per molecule; needed by ``extent``)
    are the rows the model fits on: the one place every 3D model wires its targets and pooling scales.
    """
    scaler = ReadoutScaler(mode).fit(y, element_counts(elements))
    atom_scale, extent_scale = pool_scales(mode, np.array([len(e) for e in elements]), elements, positions)
    return scaler, atom_scale, extent_scale


# ----------------------------------------------------------------------------------------- pooling


@lru_cache(maxsize=None)
def _pool_class():
    import torch
    from torch import nn
    from torch.nn import functional as F

    from boom_kit.pointcloud import centre_of_mass, scatter_sum

    class Pool(nn.Module):
        """Atomic outputs ``o`` [A] -> molecular value [B] in scaled units (no parameters, no state).

        ``element`` [A] (index into ELEMENTS) and ``pos`` [A,3] are needed by dipole and extent; ``vec``
        [A,3] are optional per-atom dipoles.  The scales come from :func:`pool_scales` and are plain
        floats, so a checkpoint fine-tuned on other data gets that data's scales.
        """

        def __init__(self, mode: str, atom_scale: float = 1.0, extent_scale: float = 1.0) -> None:
            super().__init__()
            if mode not in READOUTS:
                raise ValueError(f"unknown readout {mode!r}: choose one of {', '.join(READOUTS)}")
            self.mode, self.atom_scale, self.extent_scale = mode, float(atom_scale), float(extent_scale)

        def forward(self, o, batch, n: int, element=None, pos=None, vec=None):
            o = o.reshape(-1)
            if self.mode == "sum":
                return scatter_sum(o, batch, n) * self.atom_scale
            count = scatter_sum(torch.ones_like(o), batch, n).clamp_min(1.0)
            if self.mode == "mean":
                return scatter_sum(o, batch, n) / count
            if pos is None or element is None:
                raise ValueError(f"the {self.mode} readout needs positions and elements")
            centre = centre_of_mass(element, pos, batch, n)[batch]
            if self.mode == "dipole":
                q = o - (scatter_sum(o, batch, n) / count)[batch]  # neutral: sum_i q_i = 0
                atomic = q.unsqueeze(-1) * (pos - centre)
                if vec is not None:
                    atomic = atomic + vec.reshape(-1, 3)
                mu = scatter_sum(atomic, batch, n)
                return torch.sqrt((mu**2).sum(-1) + 1e-12)
            r2 = ((pos - centre) ** 2).sum(-1)
            return scatter_sum(F.softplus(o) * r2, batch, n) * self.extent_scale

    return Pool


def Pool(mode: str, atom_scale: float = 1.0, extent_scale: float = 1.0):
    """A :class:`torch.nn.Module` pooling atomic outputs by ``mode`` (torch imported only when used)."""
    return _pool_class()(mode, atom_scale, extent_scale)
