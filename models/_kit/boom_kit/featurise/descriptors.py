"""RDKit 2D descriptors, BOOM's features for the random forest and the MLP.

The full RDKit descriptor list, with ``Ipc`` replaced by ``log(Ipc + 1)`` (Ipc overflows on large
molecules).  Which columns are kept is decided on the training molecules only (BOOM chose them per
split): columns with any non-finite value or no variance on train are dropped, and a non-finite value
in a test molecule is replaced by the training median of that column.

The raw rows go through the shared feature cache (``boom_kit.feature_cache``, ``$BOOM_FEATURE_CACHE``):
computed once per (SMILES, RDKit version, descriptor code) and reused by every model, property and seed.
"""
from __future__ import annotations

import hashlib
import inspect
import math
from functools import lru_cache
from multiprocessing import get_context
from typing import Callable, Optional, Sequence

import numpy as np

from boom_kit.feature_cache import CacheStats, FeatureCache, Featuriser, cached_rows


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
            rows = pool.map(_one, smiles, chunksize=_chunk(len(smiles), workers))
    else:
        rows = [_one(s) for s in smiles]
    return _as_matrix(rows)


def _chunk(n: int, workers: int) -> int:
    return max(1, n // (workers * 8))


def _as_matrix(rows: list[list[float]]) -> np.ndarray:
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

    def imputation_note(self) -> str | None:
        """What the last :meth:`transform` (the test matrix) imputed, for ``ctx.note`` (None when nothing was)."""
        values, rows, n = self.imputed
        if not values:
            return None
        return (f"{values} non-finite descriptor values in {rows} of {n} test molecules replaced by the "
                f"training median of their column")

    def fit_train_test(self, X_train: np.ndarray, X_test: np.ndarray, names: Sequence[str] | None = None,
                       note: Optional[Callable[[str], None]] = None) -> tuple[np.ndarray, np.ndarray]:
        """Fit on the raw train matrix, transform train and test; ``note`` hears what the test gaps took.

        One place for the run-record note, so every descriptor model says the same about imputed test values.
        """
        self.fit(X_train, names)
        out = self.transform(X_train), self.transform(X_test)
        message = self.imputation_note()
        if message and note is not None:
            note(message)
        return out


@lru_cache(maxsize=1)
def featuriser() -> Featuriser:
    """The cache identity of these descriptors: RDKit's version, the descriptor list and this module's row code.

    The source of :func:`_one` and :func:`_as_matrix` is part of the key, so an edit of how a row is computed
    never reads rows computed the old way.
    """
    import rdkit

    code = inspect.getsource(_one) + inspect.getsource(_as_matrix)
    names = descriptor_names()
    return Featuriser(name="rdkit-descriptors", width=len(names),
                      params={"names": names, "code_sha256": hashlib.sha256(code.encode()).hexdigest()},
                      versions={"rdkit": rdkit.__version__})


class _Computer:
    """``compute(smiles)`` for the cache, with one worker pool kept open for all of its calls (the cache calls
    once per shard; starting a spawn pool each time would cost more than some shards take)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = None

    def __call__(self, smiles: list[str]) -> np.ndarray:
        if self.workers <= 1 or len(smiles) <= 200:
            return compute_descriptors(smiles)
        if self.pool is None:
            self.pool = get_context("spawn").Pool(self.workers)
        return _as_matrix(self.pool.map(_one, smiles, chunksize=_chunk(len(smiles), self.workers)))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()


def cached_descriptors(smiles: Sequence[str], workers: int = 1, note: Optional[Callable[[str], None]] = None,
                       cache: Optional[FeatureCache] = None) -> tuple[np.ndarray, Optional[CacheStats]]:
    """:func:`compute_descriptors` through the feature cache (``$BOOM_FEATURE_CACHE``; computed when unset)."""
    computer = _Computer(workers)
    try:
        return cached_rows(featuriser(), smiles, computer, note=note, cache=cache)
    finally:
        computer.close()


def train_test_descriptors(train_smiles: Sequence[str], test_smiles: Sequence[str], workers: int = 1,
                           note: Optional[Callable[[str], None]] = None, cache: Optional[FeatureCache] = None,
                           ) -> tuple[np.ndarray, np.ndarray, DescriptorColumns]:
    """Descriptor matrices of train and test with columns chosen (and test gaps imputed) on train only.

    Raw rows come from the feature cache when one is configured; ``note`` receives what a reader of the
    run should know (molecules computed in memory beside a read-only cache, a corrupt segment, test values
    imputed with the training median).
    """
    train_smiles, test_smiles = list(train_smiles), list(test_smiles)
    X_raw, stats = cached_descriptors(train_smiles + test_smiles, workers=workers, note=note, cache=cache)
    if stats is not None and note is not None:
        note(f"feature cache: {stats.hits} of {stats.molecules} molecules' descriptors read, {stats.computed} computed"
             f"{'' if stats.read_only else f', {stats.written} stored'}")
    X_train_raw, X_test_raw = X_raw[:len(train_smiles)], X_raw[len(train_smiles):]
    columns = DescriptorColumns()
    X_train, X_test = columns.fit_train_test(X_train_raw, X_test_raw, note=note)
    return X_train, X_test, columns
