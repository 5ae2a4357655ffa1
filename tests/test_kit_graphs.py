"""boom_kit.graphs: graph atoms are the geometry's atoms (10k_csd and QM9), batching, readouts, scaling."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from boom_kit import graphs
from boom_kit.geometry import Geometry, read_extxyz


def _task_molecules(prop: str, subset: int):
    from boom.data.tasks import build

    data = build(prop, subset=subset, with_geometry=True)
    frames = [pd.read_csv(data.input_dir / f, dtype={"mol_id": str}) for f in ("train.csv", "test.csv")]
    table = pd.concat(frames, ignore_index=True)
    return table, read_extxyz(data.input_dir / data.files.geometries)


def _check_aligned(g: graphs.MolGraph, geom: Geometry, smiles: str) -> None:
    from rdkit import Chem

    assert g.symbols == geom.symbols  # same elements in the same order
    np.testing.assert_array_equal(g.pos, geom.positions)
    lengths = g.bond_lengths()
    assert lengths.min() > 0.9 and lengths.max() < 1.8, (smiles, lengths.min(), lengths.max())
    if g.n_atoms > 1:  # every atom is bonded to something
        assert set(np.unique(g.edge_index[0])) == set(range(g.n_atoms))
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert sorted(a.GetSymbol() for a in mol.GetAtoms()) == sorted(geom.symbols)
    assert g.edge_index.shape[1] == 2 * mol.GetNumBonds()


@pytest.mark.parametrize("prop,subset", [("density", 40), ("homo", 200)])
def test_graph_atoms_are_geometry_atoms_on_task_data(prepared, prop, subset):
    table, geoms = _task_molecules(prop, subset)
    assert len(geoms) >= 0.95 * len(table)
    built, counts = graphs.build_graphs(table["smiles"].tolist(), table["mol_id"].tolist(), geoms)
    for g, mol_id, smi in zip(built, table["mol_id"], table["smiles"]):
        if mol_id not in geoms:
            assert g is None
            continue
        _check_aligned(g, geoms[mol_id], smi)
        assert g.source in ("smiles-identity", "smiles-matched"), (mol_id, smi, g.source)
    assert counts["missing"] == len(table) - len(geoms)


def test_qm9_order_differs_from_smiles_and_is_mapped(prepared):
    """Shuffle QM9 atoms: the SMILES-order graph no longer fits the coordinates, the mapped graph does."""
    table, geoms = _task_molecules("homo", 200)
    rng = np.random.default_rng(0)
    checked = 0
    for mol_id, smi in zip(table["mol_id"], table["smiles"]):
        geom = geoms[mol_id]
        if len(geom.symbols) < 6:
            continue
        perm = rng.permutation(len(geom.symbols))
        shuffled = Geometry(tuple(geom.symbols[k] for k in perm), geom.positions[perm])
        naive = graphs.graph_from_smiles(smi)
        naive_lengths = np.linalg.norm(shuffled.positions[naive.edge_index[0]] - shuffled.positions[naive.edge_index[1]], axis=1)
        assert naive_lengths.max() > 1.8  # the misalignment BOOM's code had
        g = graphs.graph_from_geometry(smi, shuffled)
        assert g.source == "smiles-matched"
        _check_aligned(g, shuffled, smi)
        ref = graphs.graph_from_geometry(smi, geom)
        assert sorted(g.bond_type.tolist()) == sorted(ref.bond_type.tolist())
        checked += 1
        if checked == 25:
            break
    assert checked == 25


def test_strained_qm9_contacts_are_not_bonds(prepared):
    """Bicyclo[1.1.1] cages have 1,3 C...C contacts perceived as bonds; the SMILES bonds are kept."""
    from boom.data.geometry import parse_qm9
    from boom.data.prepare import dataset_dir

    src = pd.read_csv(dataset_dir("qm9") / "qm9_geometry_source.csv", dtype={"mol_id": str}).set_index("mol_id")
    mols = pd.read_csv(dataset_dir("qm9") / "molecules.csv", dtype={"mol_id": str}).set_index("mol_id")
    for mol_id in ("qm9-000317", "qm9-017733", "qm9-017809"):
        symbols, coords = parse_qm9(src.loc[mol_id, "elements"], src.loc[mol_id, "xyz"])
        geom = Geometry(tuple(symbols), np.array(coords))
        g = graphs.graph_from_geometry(mols.loc[mol_id, "smiles"], geom)
        _check_aligned(g, geom, mols.loc[mol_id, "smiles"])


def test_batching_is_a_disjoint_union():
    gs = [graphs.graph_from_smiles(s) for s in ("C", "CCO", "c1ccccc1", "N#N")]
    batch = graphs.GraphSet(gs, with_pairs=True).batch([2, 0, 1])
    sizes = [12, 5, 9]
    assert batch.n_graphs == 3 and batch.x.shape == (26, graphs.N_ATOM_FEATURES)
    assert batch.batch.tolist() == [0] * 12 + [1] * 5 + [2] * 9
    mol_of = batch.batch[batch.edge_index]
    assert (mol_of[0] == mol_of[1]).all()  # no edge crosses molecules
    assert batch.edge_index.shape[1] == 2 * (12 + 4 + 8)
    assert batch.pair_index.shape[1] == sum(n * (n - 1) for n in sizes)
    assert (batch.batch[batch.pair_index[0]] == batch.batch[batch.pair_index[1]]).all()
    # benzene: 6 aromatic C-C bonds, both directions, and the pair types agree with the bonds
    aromatic = batch.edge_attr[:, graphs.BOND_TYPES.index("AROMATIC")]
    assert aromatic.sum() == 12
    assert (batch.pair_type != graphs.NO_BOND).sum() == batch.edge_index.shape[1]
    # features: one-hot element + nuclear charge
    assert torch.allclose(batch.x[:, :5].sum(1), torch.ones(26))
    assert torch.allclose(batch.x[:12, -1] * 9, torch.tensor([6.0] * 6 + [1.0] * 6))
    x = torch.arange(26, dtype=torch.float32)
    assert graphs.scatter_sum(x, batch.batch, 3).tolist() == [sum(range(12)), sum(range(12, 17)), sum(range(17, 26))]
    assert graphs.scatter_mean(x, batch.batch, 3)[1].item() == pytest.approx(14.0)
