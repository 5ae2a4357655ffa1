"""3D geometries keyed by mol_id, in extended XYZ (readable by ASE, ``ase.io.read(path, ':')``).

qm9: the DFT coordinates shipped by qm9pack (atom order as in QM9's xyz files).  10k_csd: RDKit ETKDG
embedding + MMFF optimisation with explicit hydrogens, seeded, in parallel, cached one file per
molecule, so every geometry model sees the same conformers; atom order is RDKit's order of the SMILES
with hydrogens added.  Molecules whose embedding fails are listed, never dropped silently: models still
predict them (the kit falls back and notes it), and coverage is in the dataset manifest.  The file format and
the :class:`~boom_schema.geometry.Geometry` type are the contract's (``boom_schema.geometry``).
"""
from __future__ import annotations

import ast
from multiprocessing import get_context
from pathlib import Path
from typing import Optional, Sequence

from tqdm import tqdm

from boom_schema.geometry import Geometry, frame_text, read_extxyz

CONFORMER_SEED = 42


def parse_qm9(elements: str, xyz: str) -> Geometry:
    """qm9pack stores Python-literal lists (not always valid JSON): parse with ast.literal_eval."""
    symbols = tuple(str(s) for s in ast.literal_eval(elements))
    coords = tuple(tuple(float(v) for v in row) for row in ast.literal_eval(xyz))
    if len(symbols) != len(coords):
        raise ValueError(f"{len(symbols)} elements but {len(coords)} coordinates")
    return Geometry(symbols, coords)


def embed(smiles: str, seed: int = CONFORMER_SEED) -> Optional[Geometry]:
    """ETKDG + MMFF conformer of a SMILES with explicit hydrogens, or None when embedding fails."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    if AllChem.EmbedMolecule(mol, params) != 0:
        params.useRandomCoords = True  # RDKit's documented fallback for hard cases
        if AllChem.EmbedMolecule(mol, params) != 0:
            return None
    try:
        if AllChem.MMFFHasAllMoleculeParams(mol):
            AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    except Exception:
        pass  # keep the ETKDG geometry
    pos = mol.GetConformer().GetPositions()
    return Geometry(tuple(a.GetSymbol() for a in mol.GetAtoms()), tuple(tuple(map(float, p)) for p in pos))


def _embed_to_cache(args: tuple[str, str, str]) -> bool:
    mol_id, smiles, folder = args
    geom = embed(smiles)
    target = Path(folder) / f"{mol_id}.xyz"
    if geom is None:
        target.with_suffix(".failed").write_text(smiles + "\n")
        return False
    tmp = target.with_suffix(".part")
    tmp.write_text(frame_text(mol_id, geom))
    tmp.replace(target)
    return True


def conformers(mol_ids: Sequence[str], smiles: Sequence[str], cache: Path, workers: int = 1) -> tuple[dict[str, Geometry], list[str]]:
    """Cached ETKDG/MMFF geometries for the given molecules, and the ids whose embedding failed."""
    cache.mkdir(parents=True, exist_ok=True)
    todo = [(m, s, str(cache)) for m, s in zip(mol_ids, smiles)
            if not (cache / f"{m}.xyz").exists() and not (cache / f"{m}.failed").exists()]
    if todo:
        desc = f"conformers ({len(todo)} to embed)"
        if workers > 1 and len(todo) > 20:
            with get_context("spawn").Pool(workers) as pool:
                list(tqdm(pool.imap_unordered(_embed_to_cache, todo, chunksize=8), total=len(todo), desc=desc))
        else:
            for item in tqdm(todo, desc=desc):
                _embed_to_cache(item)
    geoms, failed = {}, []
    for m in mol_ids:
        path = cache / f"{m}.xyz"
        if path.exists():
            geoms[m] = read_extxyz(path)[m]
        else:
            failed.append(m)
    return geoms, failed

