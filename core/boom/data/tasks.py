"""Per-task input folders handed to models, and the labels the orchestrator keeps for scoring.

A task folder holds ``train.csv`` (mol_id, smiles, y), one blind ``test.csv`` (mol_id, smiles: the ID and
OOD molecules together in a seeded shuffled order, no labels, nothing that names or orders them by split)
and, for geometry models, ``geometries.extxyz``; all three are written through ``boom_schema`` (the readers models
use check the same rules).  Folders are content-addressed (split, subsets, geometry)
and shared by every run of that task, so they are built once and can be mounted read-only into containers.
The split is checked against the pinned benchmark digest every time it is read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from boom_schema import PROPERTIES, TaskFiles, write_extxyz, write_test, write_train
from boom import paths
from boom.data import geometry, pinned
from boom.data.prepare import dataset_dir, prepare
from boom.hashing import sha256_file, sha256_json

SUBSET_SEED = 0
TEST_ORDER_SEED = 0  # the blind test file's shuffled order (the same for every run of a task)
LAYOUT = 2  # 2: contract 2 (one blind test.csv)


@dataclass(frozen=True)
class TaskData:
    """A prepared task: where its input folder is, and its test labels (kept by the orchestrator)."""

    property: str
    dataset: str
    input_dir: Path
    files: TaskFiles
    labels: pd.DataFrame  # mol_id, split (id | ood), y
    sha256: dict[str, str]
    subset: Optional[str]
    split_sha256: str = ""

    @property
    def expected(self) -> set[str]:
        """The mol_ids a model must predict: every test molecule, ID and OOD alike."""
        return set(self.labels["mol_id"])


def _subset(df: pd.DataFrame, n_train: int) -> pd.DataFrame:
    """Seeded subset: n_train train molecules and n_train // 4 (at least 10) of each test split."""
    rng = np.random.default_rng(SUBSET_SEED)
    n_test = max(10, n_train // 4)
    parts = []
    for split, n in (("train", n_train), ("id", n_test), ("ood", n_test)):
        rows = np.flatnonzero(df["split"].to_numpy() == split)
        take = np.sort(rng.choice(rows, size=min(n, rows.size), replace=False))
        parts.append(df.iloc[take])
    return pd.concat(parts).sort_index()


def _train_subset(df: pd.DataFrame, n_train: int) -> pd.DataFrame:
    """Seeded subset of train only: the ID and OOD test sets stay whole, so rows are comparable to full runs."""
    rng = np.random.default_rng(SUBSET_SEED)
    rows = np.flatnonzero(df["split"].to_numpy() == "train")
    drop = np.setdiff1d(rows, rng.choice(rows, size=min(n_train, rows.size), replace=False))
    return df.drop(index=df.index[drop])


def _table(prop: str, subset: Optional[int], train_subset: Optional[int] = None) -> tuple[pd.DataFrame, str]:
    info = PROPERTIES[prop]
    folder = dataset_dir(info.dataset)
    if not (folder / "manifest.json").exists():
        prepare(info.dataset)
    mols = pd.read_csv(folder / "molecules.csv", dtype={"mol_id": str, "smiles": str})
    split = pd.read_csv(folder / "splits" / f"{prop}.csv", dtype={"mol_id": str, "split": str})
    if not (mols["mol_id"].values == split["mol_id"].values).all():
        raise RuntimeError(f"{folder}: splits/{prop}.csv does not match molecules.csv; run 'boom data prepare --force'")
    digest = pinned.check(prop, split["mol_id"].tolist(), split["split"].tolist(), where=str(folder / "splits" / f"{prop}.csv"),
                          fix="no model was run; rewrite it with 'boom data prepare --force' (see 'boom data verify')")
    df = pd.DataFrame({"mol_id": mols["mol_id"], "smiles": mols["smiles"], "y": mols[prop], "split": split["split"]})
    if subset:
        df = _subset(df, subset)
    if train_subset:
        df = _train_subset(df, train_subset)
    return df, digest


def _geometries(dataset: str, df: pd.DataFrame, target: Path, workers: int) -> list[str]:
    """Write geometries for the task's molecules; return the ids without one."""
    if dataset == "qm9":
        src = pd.read_csv(dataset_dir("qm9") / "qm9_geometry_source.csv", dtype={"mol_id": str}).set_index("mol_id")
        rows = src.loc[df["mol_id"]]
        write_extxyz(target, ((m, geometry.parse_qm9(e, x)) for m, e, x in zip(rows.index, rows["elements"], rows["xyz"])))
        return []
    geoms, failed = geometry.conformers(df["mol_id"].tolist(), df["smiles"].tolist(),
                                        dataset_dir(dataset) / "conformers", workers=workers)
    write_extxyz(target, ((m, geoms[m]) for m in df["mol_id"] if m in geoms))
    return failed


def subset_label(subset: Optional[int], train_subset: Optional[int]) -> Optional[str]:
    """``n60`` (subset of every split), ``train2000`` (train only), both, or None for the full task."""
    parts = ([f"n{subset}"] if subset else []) + ([f"train{train_subset}"] if train_subset else [])
    return "-".join(parts) or None


def build(prop: str, subset: Optional[int] = None, with_geometry: bool = False, workers: int = 1,
          train_subset: Optional[int] = None) -> TaskData:
    """Prepare (or reuse) the input folder of one task."""
    info = PROPERTIES[prop]
    for name, value in (("subset", subset), ("train_subset", train_subset)):
        if value is not None and value < 2:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 2 training molecules, got {value}")
    df, split_sha = _table(prop, subset, train_subset)
    label = subset_label(subset, train_subset)
    key = sha256_json({"split": split_sha, "subset": subset, "train_subset": train_subset,
                       "geometry": with_geometry, "layout": LAYOUT})[:12]
    name = f"{prop}-{label or 'full'}-{key}"
    folder = paths.data_dir() / "tasks" / name
    files = TaskFiles(geometries="geometries.extxyz" if with_geometry else None)
    done = folder / "done.json"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        train = df.loc[df["split"] == "train"]
        write_train(folder / files.train, train["mol_id"].tolist(), train["smiles"].tolist(), train["y"].tolist())
        test = blind_test(df)
        write_test(folder / files.test, test["mol_id"].tolist(), test["smiles"].tolist())
        failed: list[str] = []
        if with_geometry:  # molecule order: train and test interleaved as in the dataset, no split named
            failed = _geometries(info.dataset, df, folder / "geometries.extxyz", workers)
        shas = {f: sha256_file(folder / f) for f in [files.train, files.test] + ([files.geometries] if files.geometries else [])}
        done.write_text(json.dumps({"sha256": shas, "geometry_failures": failed}, indent=2))
    meta = json.loads(done.read_text())
    labels = df.loc[df["split"] != "train", ["mol_id", "split", "y"]].reset_index(drop=True)
    return TaskData(property=prop, dataset=info.dataset, input_dir=folder, files=files, labels=labels,
                    sha256=meta["sha256"], subset=label, split_sha256=split_sha)


def blind_test(df: pd.DataFrame) -> pd.DataFrame:
    """ID and OOD molecules in one table, in a seeded shuffled order, with only mol_id and smiles."""
    test = df.loc[df["split"] != "train", ["mol_id", "smiles"]]
    order = np.random.default_rng(TEST_ORDER_SEED).permutation(len(test))
    return test.iloc[order].reset_index(drop=True)
