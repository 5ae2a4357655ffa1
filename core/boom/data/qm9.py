"""QM9 from the ``qm9pack`` package: 130,831 molecules that passed QM9's consistency check, with DFT
geometries.  BOOM parsed the original 133,885-entry archive (including the 3,054 molecules that QM9's
authors flagged as failing the consistency check); with qm9pack those are absent, which is why our
split sizes differ from BOOM's while the definition is identical.

The CSVs are read directly from the installed package folder (``import qm9pack`` needs pkg_resources),
by column name, and ordered by the QM9 index, which also gives the stable ``mol_id``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from boom.hashing import sha256_file

PARTS = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
COLUMNS = {  # our property name -> qm9pack column
    "mu": "Dipole_debye",
    "alpha": "Polarizability_bohr3",
    "homo": "HOMO_au",
    "lumo": "LUMO_au",
    "gap": "HOMO_LUMO_gap_au",
    "r2": "R2_bohr2",
    "zpve": "ZPVE_au",
    "cv": "Heatcapacity_Cv_cal_mol_K",
}
N_MOLECULES = 130831


def package_data_dir() -> Path:
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the qm9pack package is not installed; run 'make setup' (pip install qm9pack)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def load() -> tuple[pd.DataFrame, dict[str, str]]:
    """Table ``mol_id, smiles, <8 properties>, elements, xyz`` ordered by QM9 index, and file sha256s."""
    folder = package_data_dir()
    wanted = ["Index", "SMILES", "Elements", "XYZ_Ang", *COLUMNS.values()]
    frames, shas = [], {}
    for part in PARTS:
        path = folder / part
        df = pd.read_csv(path, usecols=wanted)
        frames.append(df)
        shas[part] = sha256_file(path)
    df = pd.concat(frames, ignore_index=True).sort_values("Index", kind="stable").reset_index(drop=True)
    if df["Index"].duplicated().any():
        raise RuntimeError("qm9pack lists a QM9 index twice; the package data is corrupt")
    table = pd.DataFrame({"mol_id": [f"qm9-{i:06d}" for i in df["Index"]], "smiles": df["SMILES"].astype(str)})
    for prop, column in COLUMNS.items():
        table[prop] = df[column].astype(float)
    table["elements"] = df["Elements"]
    table["xyz"] = df["XYZ_Ang"]
    return table, shas
