"""RDKit 2D descriptors, BOOM's features for the random forest and the MLP.

The full RDKit descriptor list, with ``Ipc`` replaced by ``log(Ipc + 1)`` (Ipc overflows on large
molecules).  Which columns are kept is decided on the training molecules only (BOOM chose them per
split): columns with any non-finite value or no variance on train are dropped, and a non-finite value
in a test molecule is replaced by the training median of that column.
"""
from __future__ import annotations

import math
from multiprocessing import get_context
from typing import Sequence

import numpy as np


def descriptor_names() -> list[str]:
    from rdkit.Chem import Descriptors

    return [name for name, _ in Descriptors._descList]


def _one(smiles: str) -> list[float]:
    from rdkit import Chem, RDLogger
    from rdkit.Chem import Descriptors

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return [math.nan] * len(Descriptors._descList)
    row = []
    for name, fn in Descriptors._descList:
        try:
            value = float(fn(mol))
            if name == "Ipc":
                value = math.log(value + 1.0)
        except Exception:
            value = math.nan
        row.append(value)
    return row


def compute_descriptors(smiles: Sequence[str], workers: int = 1) -> np.ndarray:
    """Raw descriptor matrix (rows: molecules, columns: :func:`descriptor_names`), float64."""
    smiles = list(smiles)
    if workers > 1 and len(smiles) > 200:
        with get_context("spawn").Pool(workers) as pool:
            rows = pool.map(_one, smiles, chunksize=max(1, len(smiles) // (workers * 8)))
    else:
        rows = [_one(s) for s in smiles]
    with np.errstate(over="ignore", invalid="ignore"):
        arr = np.asarray(rows, dtype=np.float64)
    arr[np.abs(arr) > 1e30] = np.nan  # float32 downstream; treat absurd values as missing
    return arr


class DescriptorColumns:
    """Column selection and imputation fitted on the training matrix only."""

    def __init__(self) -> None:
        self.keep: np.ndarray | None = None
        self.median: np.ndarray | None = None
        self.names: list[str] = []
        self.imputed: tuple[int, int, int] = (0, 0, 0)  # (values, molecules, molecules seen) of the last transform

    def fit(self, X_train: np.ndarray, names: Sequence[str] | None = None) -> "DescriptorColumns":
        finite = np.all(np.isfinite(X_train), axis=0)
        with np.errstate(invalid="ignore"):
            varying = np.nanstd(X_train, axis=0) > 0
        self.keep = np.flatnonzero(finite & varying)
        self.median = np.median(X_train[:, self.keep], axis=0)
        names = list(names) if names is not None else descriptor_names()
        self.names = [names[i] for i in self.keep]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        if self.keep is None:
            raise RuntimeError("DescriptorColumns used before fit()")
        out = X[:, self.keep].copy()
        bad = ~np.isfinite(out)
        self.imputed = (int(bad.sum()), int(bad.any(axis=1).sum()), int(out.shape[0]))
        if bad.any():
            out[bad] = np.broadcast_to(self.median, out.shape)[bad]
        return out

    def imputation_note(self, what: str = "test") -> str | None:
        """What the last :meth:`transform` imputed, for ``ctx.note`` (None when nothing was)."""
        values, rows, n = self.imputed
        if not values:
            return None
        return (f"{values} non-finite descriptor values in {rows} of {n} {what} molecules replaced by the "
                f"training median of their column")


def train_test_descriptors(train_smiles: Sequence[str], test_smiles: Sequence[str],
                           workers: int = 1) -> tuple[np.ndarray, np.ndarray, DescriptorColumns]:
    """Descriptor matrices of train and test with columns chosen (and test gaps imputed) on train only."""
    X_train_raw = compute_descriptors(train_smiles, workers=workers)
    X_test_raw = compute_descriptors(test_smiles, workers=workers)
    columns = DescriptorColumns().fit(X_train_raw)
    return columns.transform(X_train_raw), columns.transform(X_test_raw), columns
