"""MACE: smoke runs through the local runner, the readouts behave as the contract table says, and an
element unseen in train (F) or a molecule without a geometry does not break a run."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, model_module, smoke_run

SMOKE_HP = {"readout": "auto", "dtype": "float64", "interaction": "RealAgnosticResidualInteractionBlock",
            "num_interactions": 2, "channels": 8, "max_L": 1, "max_ell": 2, "correlation": 2, "num_bessel": 4,
            "num_cutoff_basis": 5, "mlp_hidden": 8, "radial_hidden": 8, "r_max": 5.0}


@pytest.fixture(scope="module")
def mace_main():
    return model_module("mace")


@pytest.fixture(autouse=True)
def _restore_default_dtype():
    import torch

    before = torch.get_default_dtype()
    yield
    torch.set_default_dtype(before)


def _geometry(smiles: str, seed: int = 0):
    from rdkit import Chem
    from rdkit.Chem import AllChem

    from boom_kit.geometry import Geometry

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(mol, randomSeed=seed) == 0
    pos = mol.GetConformer().GetPositions()
    return Geometry(tuple(a.GetSymbol() for a in mol.GetAtoms()), np.asarray(pos, dtype=np.float64))


def _model(mace_main, readout: str):
    import torch

    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    from boom_kit.readout import ReadoutScaler

    e0 = np.array([-0.5, -37.8, -54.6, -75.0, -99.7])
    scaler = ReadoutScaler("sum" if readout == "energy" else readout)
    scaler.offsets, scaler.shift, scaler.scale = (e0 if readout in ("sum", "energy") else np.zeros(5)), \
        (1.5 if readout == "mean" else 0.0), 0.2
    model = mace_main.MaceProperty(readout, SMOKE_HP, avg_num_neighbors=10.0, scaler=scaler, atom_scale=0.7,
                                   extent_scale=0.05, energy=(e0, 0.7, 0.1) if readout == "energy" else None)
    return model.eval()


def _predict(mace_main, model, geoms) -> np.ndarray:
    import torch

    graphs = mace_main.Graphs(geoms, SMOKE_HP["r_max"])
    with torch.no_grad():
        return model(graphs.batch(range(len(geoms)), "cpu", torch.float64)).numpy()


def _shifted(geom, shift):
    from boom_kit.geometry import Geometry

    return Geometry(geom.symbols, geom.positions + np.asarray(shift, dtype=np.float64))


def _pair(geom, shift):
    """Two copies of a molecule, the second shifted far beyond r_max, as one molecule."""
    from boom_kit.geometry import Geometry

    far = _shifted(geom, shift)
    return Geometry(geom.symbols + far.symbols, np.concatenate([geom.positions, far.positions]))


def _rotated(geom, seed: int = 1):
    from boom_kit.geometry import Geometry

    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return Geometry(geom.symbols, geom.positions @ q.T)


def test_smoke_mu_dipole_readout(prepared):
    smoke_run("mace", "mu")


def test_smoke_energy_readout(prepared):
    smoke_run("mace", "density", sets={"readout": "energy"})


@pytest.mark.parametrize("readout", ["sum", "energy"])
def test_sum_readouts_are_extensive(mace_main, readout):
    model = _model(mace_main, readout)
    mol = _geometry("OCC(=O)N")
    single, pair, moved, rotated = _predict(mace_main, model, [mol, _pair(mol, [60.0, 0, 0]),
                                                               _shifted(mol, [3.0, -7.0, 11.0]), _rotated(mol)])
    assert abs(single) > 1e-6
    assert pair == pytest.approx(2 * single, rel=1e-9, abs=1e-9)
    assert moved == pytest.approx(single, rel=1e-9, abs=1e-9)
    assert rotated == pytest.approx(single, rel=1e-7, abs=1e-7)


def test_mean_readout_is_intensive(mace_main):
    model = _model(mace_main, "mean")
    mol = _geometry("OCC(=O)N")
    single, pair, bigger = _predict(mace_main, model, [mol, _pair(mol, [0, 60.0, 0]), _geometry("OCCCCCCC(=O)N")])
    assert pair == pytest.approx(single, rel=1e-9, abs=1e-9)
    assert bigger != pytest.approx(single)  # it does look at the molecule


def test_dipole_readout_is_translation_and_rotation_invariant(mace_main):
    model = _model(mace_main, "dipole")
    mol = _geometry("OCC(=O)N")
    single, moved, rotated, pair = _predict(mace_main, model, [mol, _shifted(mol, [25.0, -13.0, 4.0]), _rotated(mol),
                                                               _pair(mol, [0, 0, 60.0])])
    assert single > 1e-4
    assert moved == pytest.approx(single, rel=1e-8)
    assert rotated == pytest.approx(single, rel=1e-6)
    # two neutral copies with the same orientation: their dipoles add
    assert pair == pytest.approx(2 * single, rel=1e-6)


def test_charges_sum_to_zero_so_origin_does_not_matter(mace_main):
    import torch

    model = _model(mace_main, "dipole")
    mol = _geometry("C(F)(F)C#N")
    graphs = mace_main.Graphs([mol], SMOKE_HP["r_max"])
    data = graphs.batch([0], "cpu", torch.float64)
    with torch.no_grad():
        base = model(data)
        data2 = dict(data, positions=data["positions"] + 100.0)
        assert float(model(data2)) == pytest.approx(float(base), rel=1e-8)


def test_energy_scaling_leaves_unseen_elements_at_zero(mace_main):
    counts = np.array([[4, 1, 0, 1, 0], [6, 2, 0, 1, 0], [5, 2, 1, 0, 0], [8, 3, 0, 1, 0], [3, 1, 1, 1, 0]], float)
    y = counts @ np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    e0, scale, shift = mace_main.energy_scaling(counts, y)
    assert e0[4] == 0.0
    assert np.allclose(e0[:4], [1.0, 2.0, 3.0, 4.0])
    assert scale > 0 and math.isfinite(shift)


def test_extent_readout_is_invariant_and_positive(mace_main):
    model = _model(mace_main, "extent")
    mol = _geometry("OCC(=O)N")
    single, moved, rotated = _predict(mace_main, model, [mol, _shifted(mol, [25.0, -13.0, 4.0]), _rotated(mol)])
    assert single > 0
    assert moved == pytest.approx(single, rel=1e-8)
    assert rotated == pytest.approx(single, rel=1e-6)


def _write_extxyz(path: Path, geoms: dict) -> None:
    lines = []
    for mol_id, g in geoms.items():
        lines += [str(len(g.symbols)), f'Properties=species:S:1:pos:R:3 mol_id={mol_id} pbc="F F F"']
        lines += [f"{s} {x:.6f} {y:.6f} {z:.6f}" for s, (x, y, z) in zip(g.symbols, g.positions)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("prop", ["hof", "mu"])
def test_fluorine_unseen_in_train_and_missing_geometry(mace_main, tmp_path, prop):
    """Train on C/H/N/O only; the test set has a fluorinated molecule and one without a geometry."""
    import boom_kit
    from boom_kit.params import spec_defaults
    from boom_kit.runtime import Stopwatch
    from boom_schema import PROPERTIES, Task, TaskFiles

    train_smiles = ["CCO", "CC(=O)O", "CCN", "c1ccccc1O", "CC(C)=O", "NCC(=O)O", "OCCO", "CCCC", "C=CC#N", "COC"]
    test_smiles = {"t_f": "FC(F)(F)CO", "t_ok": "CCCO", "t_missing": "CCCCO"}
    geoms = {f"m{i}": _geometry(s, i) for i, s in enumerate(train_smiles)}
    geoms.update({m: _geometry(s) for m, s in test_smiles.items() if m != "t_missing"})
    _write_extxyz(tmp_path / "geometries.extxyz", geoms)
    info = PROPERTIES[prop]
    task = Task(run_id="t", model="mace", dataset=info.dataset, property=prop, unit=info.unit, readout=info.readout,
                input_dir=str(tmp_path), output_dir=str(tmp_path / "out"), files=TaskFiles(geometries="geometries.extxyz"),
                hyperparameters={**spec_defaults(REPO / "models" / "mace" / "main.py"), **SMOKE_HP, "epochs": 2,
                                 "batch_size": 4, "dtype": "float32"})  # what a run's task holds: the spec merged
    train = pd.DataFrame({"mol_id": [f"m{i}" for i in range(len(train_smiles))], "smiles": train_smiles,
                          "y": np.linspace(1.0, 3.0, len(train_smiles))})
    test = pd.DataFrame({"mol_id": list(test_smiles), "smiles": list(test_smiles.values())})
    ctx = boom_kit.Context(task=task, train=train, test=test, device="cpu", stopwatch=Stopwatch())
    out = mace_main.fit_predict(ctx)
    assert np.all(np.isfinite(out.y_pred)) and len(out.y_pred) == 3
    assert out.y_pred[2] == pytest.approx(train["y"].mean())
    assert any("no geometry" in n for n in ctx.notes)
    assert out.extra["readout"] == info.readout.value
    if prop == "hof":  # the per-element offsets are fit on train only, where F never occurs
        assert out.extra["scaler"]["offsets"]["F"] == 0.0
