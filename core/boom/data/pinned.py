"""The benchmark's pinned splits: every (dataset, property) split is one constant digest, checked everywhere.

A split is identified by ``split_digest`` (sha256 of the sorted ``mol_id,split`` lines).  The digests of
the published BOOM-TTE splits are constants below; ``pinned_splits.npz`` beside this file holds the same
splits' ID and OOD members (row indices in molecule order), so that a mismatch can say how many molecules
differ rather than only that something does.  ``boom data prepare`` checks every split it writes, every
run checks the split it reads, and ``boom data verify`` checks a prepared data folder.

To change a split on purpose (a new split definition is a new benchmark), regenerate both with
``python -m boom.data.pinned --write`` and say so in the changelog: every earlier result becomes
incomparable, and the leaderboard keeps them apart by digest.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from boom.data.splits import split_digest

PINNED_FILE = Path(__file__).with_name("pinned_splits.npz")

# sha256 of the sorted "mol_id,split" lines of each split (see boom.data.splits.split_digest)
PINNED_DIGESTS: dict[str, str] = {
    "density": "5f920c4fbe7f622826a2005c56ca2bef5d3df2659fd4938a6017cf5b2c3cbe82",
    "hof": "a937848e08604206fad92940e4c72a3df0b53e3d0316779fa81919b56a45fb7f",
    "mu": "188d3dfd729c0a03c98900327e9a17672a4546d80e62c0f3558838917b893260",
    "alpha": "5ec1a8e9d45d1534a6f7c0398ade1f1d137e2ae90f23747cd003ee87564a7c1b",
    "homo": "38a801fcda9f7b235965c60fd1513c2d21ec02415cb03334e5bcda1c7a51a23f",
    "lumo": "0db55e4a8d88f5ddbe3a8d1988f6d9b0e4f6b351a891ea92dcff3b80caaacd29",
    "gap": "4236c5d9fae06727b2e91019e8a9cb42aeb3fd66f61d76012db426720e0a504d",
    "r2": "ab57353b5c807172359ed882d5e1a69b7e9a8b04f2cb55cc4759ebd276afa5aa",
    "zpve": "ec922aab56675e7e1527762fcb448fc918784aa98277d8704d7d96480efd00d7",
    "cv": "cb87f7865b9e7d3fd88c036411af72948933e05735cc40faa309f1d70dae7d93",
}


class SplitMismatch(RuntimeError):
    """A split differs from the pinned benchmark; the message is one line saying how and what to do."""


def _members(prop: str) -> Optional[dict[str, np.ndarray]]:
    if not PINNED_FILE.exists():
        return None
    with np.load(PINNED_FILE) as z:
        if f"{prop}/id" not in z.files:
            return None
        return {s: np.cumsum(z[f"{prop}/{s}"].astype(np.int64)) for s in ("id", "ood")}


def differences(prop: str, assignment: Sequence[str]) -> Optional[int]:
    """How many molecules sit in another split than in the pinned one (None when no members are stored)."""
    members = _members(prop)
    if members is None:
        return None
    stored = np.concatenate([members["id"], members["ood"]])
    if stored.size and stored.max() >= len(assignment):
        return None  # another molecule table altogether
    pinned = np.full(len(assignment), "train", dtype=object)
    pinned[members["id"]] = "id"
    pinned[members["ood"]] = "ood"
    return int((pinned != np.asarray(assignment, dtype=object)).sum())


def check(prop: str, mol_ids: Sequence[str], assignment: Sequence[str], where: str, fix: str) -> str:
    """Return the split's digest; raise :class:`SplitMismatch` when it is not the pinned one.

    ``where`` names the split (e.g. a file), ``fix`` says what the user should do about it.
    """
    digest = split_digest(mol_ids, assignment)
    expected = PINNED_DIGESTS.get(prop)
    if expected is None or digest == expected:
        return digest
    moved = differences(prop, assignment)
    how = f"{moved} molecule(s) are in another split than" if moved is not None else "it differs from"
    raise SplitMismatch(f"{where}: the {prop} split is not the pinned benchmark split ({how} the pinned one; "
                        f"digest {digest[:12]} != {expected[:12]}); {fix}")


def _write(folder: Path) -> None:
    """Pin the splits found in a prepared data folder (developer tool: a new split is a new benchmark)."""
    import pandas as pd

    from boom.data.prepare import DATASETS, dataset_properties

    arrays: dict[str, np.ndarray] = {}
    for dataset in DATASETS:
        for prop in dataset_properties(dataset):
            s = pd.read_csv(folder / dataset / "splits" / f"{prop}.csv", dtype={"mol_id": str, "split": str})
            print(f'    "{prop}": "{split_digest(s["mol_id"], s["split"])}",')
            for name in ("id", "ood"):
                idx = np.flatnonzero(s["split"].to_numpy() == name)
                arrays[f"{prop}/{name}"] = np.diff(idx, prepend=0).astype(np.int32)
    np.savez_compressed(PINNED_FILE, **arrays)
    print(f"wrote {PINNED_FILE}; paste the digests above into PINNED_DIGESTS")


if __name__ == "__main__":
    if sys.argv[1:2] != ["--write"]:
        sys.exit("usage: python -m boom.data.pinned --write   (pins the splits of the prepared data folder)")
    from boom import paths

    _write(paths.data_dir())
